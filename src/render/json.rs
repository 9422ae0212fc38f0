//! `--format json`: one document, schema in README. Field names are a
//! public interface: add, never rename.

use serde_json::{json, Value};

use crate::facts::{CertChainFacts, Facts};
use crate::policy::{days_left, Report};
use crate::conn::{RootCerts, Target};

pub fn render(report: &Report) -> String {
    let facts = report.facts.as_ref();
    let doc = json!({
        "status": report.status,
        "exit_code": report.status.exit_code(),
        "summary": super::summary(report),
        "target": report.target.as_ref().map(target),
        "checks": report.findings,
        "tls": facts.and_then(tls),
        "certificate": facts.and_then(|f| certificate(&f.session.chain, report)),
        "plaintext": facts.map(|f| &f.plaintext),
        "direct_tls": facts.and_then(|f| f.direct_tls.as_ref()),
        "failure": facts.map(|f| &f.session.failure),
        "timings": facts.map(timings),
        "scan": facts.and_then(|f| f.scan.as_ref()),
        "audit": report.audit,
    });
    let mut text = serde_json::to_string_pretty(&doc).unwrap_or_else(|e| {
        format!(
            "{{\"status\":\"UNKNOWN\",\"exit_code\":3,\"summary\":\"cannot encode report: {e}\"}}"
        )
    });
    text.push('\n');
    text
}

fn target(t: &Target) -> Value {
    json!({
        "host": t.host,
        "hostaddr": t.hostaddr.map(|a| a.to_string()),
        "port": t.port,
        "user": t.user,
        "dbname": t.dbname,
        "sslmode": t.sslmode,
        "sslrootcert": match &t.sslrootcert {
            RootCerts::File(p) => p.display().to_string(),
            RootCerts::System => "system".to_string(),
        },
        "sslcert": t.sslcert.as_ref().map(|p| p.display().to_string()),
        "channel_binding": t.channel_binding,
        "application_name": t.application_name,
        "sslnegotiation": t.sslnegotiation,
        "notes": t.notes,
    })
}

fn tls(facts: &Facts) -> Option<Value> {
    let s = facts.session.pg_stat_ssl.as_ref()?;
    Some(json!({
        "ssl": s.ssl,
        "version": s.version,
        "cipher": s.cipher,
        "bits": s.bits,
        "client_dn": s.client_dn,
        "client_serial": s.client_serial,
        "issuer_dn": s.issuer_dn,
        "server_version_num": facts.session.server_version_num,
    }))
}

fn certificate(chain: &CertChainFacts, report: &Report) -> Option<Value> {
    let leaf = chain.presented.first()?;
    let now = report.facts.as_ref().map_or(0, |f| f.now);
    Some(json!({
        "leaf": leaf,
        "days_left": days_left(leaf.not_after, now),
        "chain": chain.presented,
        "anchor": chain.anchor,
        "checked_name": chain.checked_name,
        "libpq": match &chain.libpq {
            Some(Ok(())) => json!("accepted"),
            Some(Err(problem)) => json!(problem),
            None => Value::Null,
        },
        "strict": match &chain.strict {
            Some(Ok(())) => json!("accepted"),
            Some(Err(reason)) => json!(reason),
            None => Value::Null,
        },
        "strict_only_issues": chain.strict_only_issues,
        "soonest_expiry": report.expiry,
    }))
}

fn timings(facts: &Facts) -> Value {
    json!({
        "connect_seconds": facts.session.connect_seconds,
        "plaintext_seconds": facts.plaintext.as_ref().map(|p| p.seconds),
        "total_seconds": facts.total_seconds,
    })
}
