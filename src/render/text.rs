//! `--format text`: a report for a person at a terminal.

use std::fmt::Write;

use super::one_line;
use crate::facts::{date, CertFacts};
use crate::policy::scan::ScanReport;
use crate::policy::{days_left, presented_role, Report};

pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "pg-tls-probe: {}", report.status.label());
    if let Some(t) = &report.target {
        let _ = writeln!(
            out,
            "target:  {}:{} user={} dbname={}{}",
            t.host,
            t.port,
            t.user,
            t.dbname,
            t.hostaddr
                .map(|a| format!(" hostaddr={a}"))
                .unwrap_or_default()
        );
        for note in &t.notes {
            let _ = writeln!(out, "note:    {}", one_line(note));
        }
    }
    let _ = writeln!(out, "\nchecks:");
    for f in &report.findings {
        let _ = writeln!(
            out,
            "  {:<8} {:<18} {}",
            f.status.label(),
            f.check.name(),
            one_line(&f.summary)
        );
    }
    let Some(facts) = &report.facts else {
        return out;
    };
    if let Some(s) = &facts.session.pg_stat_ssl {
        let _ = writeln!(out, "\nsession (pg_stat_ssl):");
        let _ = writeln!(out, "  ssl       {}", s.ssl);
        for (key, value) in [
            ("version", s.version.clone()),
            ("cipher", s.cipher.clone()),
            ("bits", s.bits.map(|b| b.to_string())),
            ("client_dn", s.client_dn.clone()),
            ("issuer_dn", s.issuer_dn.clone()),
            (
                "server",
                facts.session.server_version_num.map(|v| v.to_string()),
            ),
        ] {
            if let Some(value) = value {
                let _ = writeln!(out, "  {key:<9} {}", one_line(&value));
            }
        }
    }
    if let Some(n) = &facts.session.negotiated {
        let _ = writeln!(out, "\nhandshake (the probe's own TLS session):");
        let _ = writeln!(out, "  version   {}", n.version.name());
        let _ = writeln!(out, "  cipher    {}", one_line(&n.cipher));
    }
    if let Some(a) = &facts.session.auth {
        let _ = writeln!(out, "\nauthentication (observed on the wire):");
        let _ = writeln!(out, "  method    {}", one_line(&a.method.to_string()));
        if !a.offered.is_empty() {
            let _ = writeln!(out, "  offered   {}", one_line(&a.offered.join(", ")));
        }
        let cert = match (a.client_cert.requested, a.client_cert.sent) {
            (_, true) => "sent",
            (true, false) => "requested by the server, none sent",
            (false, false) => "not requested",
        };
        let _ = writeln!(out, "  client certificate {cert}");
        if !a.completed {
            let _ = writeln!(out, "  (not completed)");
        }
    }
    let chain = &facts.session.chain;
    for (i, cert) in chain.presented.iter().enumerate() {
        let role = format!("{} (sent by the server)", presented_role(i, cert).name());
        cert_block(&mut out, &role, cert, facts.now);
    }
    // Servers often send the root they chain to; show it once.
    if let Some(anchor) = chain.anchor.as_ref().filter(|a| {
        !chain
            .presented
            .iter()
            .any(|c| c.sha256_fingerprint == a.sha256_fingerprint)
    }) {
        cert_block(&mut out, "root (sslrootcert)", anchor, facts.now);
    }
    if !chain.strict_only_issues.is_empty() {
        let _ = writeln!(out, "\nstrict clients would refuse this certificate:");
        for issue in &chain.strict_only_issues {
            let _ = writeln!(out, "  - {}", one_line(&issue.to_string()));
        }
    }
    if let Some(scan) = &report.scan {
        scan_table(&mut out, scan);
    }
    if let Some(audit) = &report.audit {
        super::audit::text_section(&mut out, audit);
    }
    let _ = writeln!(out, "\ntimings:");
    if let Some(s) = facts.session.connect_seconds {
        let _ = writeln!(out, "  connect   {:.1} ms", s * 1000.0);
    }
    if let Some(p) = &facts.plaintext {
        let _ = writeln!(out, "  plaintext {:.1} ms", p.seconds * 1000.0);
    }
    let _ = writeln!(out, "  total     {:.1} ms", facts.total_seconds * 1000.0);
    if let Some(scan) = &report.scan {
        let _ = writeln!(out, "  scan      {:.1} ms", scan.seconds * 1000.0);
    }
    out
}

/// "accepted", "refused" or "unknown" for a scan attempt.
fn verdict(accepted: Option<bool>) -> &'static str {
    match accepted {
        Some(true) => "accepted",
        Some(false) => "refused",
        None => "unknown",
    }
}

fn scan_table(out: &mut String, scan: &ScanReport) {
    let _ = writeln!(out, "\nprotocol scan:");
    for p in &scan.protocols {
        let _ = writeln!(
            out,
            "  {:<9} {:<9} {}",
            p.version.name(),
            verdict(p.accepted),
            one_line(&p.detail)
        );
    }
    for c in scan.ciphers.iter().flatten() {
        let _ = writeln!(
            out,
            "  {:<9} {:<9} {}",
            c.class.name(),
            verdict(c.accepted),
            one_line(&c.detail)
        );
    }
}

fn cert_block(out: &mut String, role: &str, c: &CertFacts, now: i64) {
    let _ = writeln!(out, "\n{role} certificate:");
    let _ = writeln!(out, "  subject   {}", one_line(&c.subject));
    let _ = writeln!(out, "  issuer    {}", one_line(&c.issuer));
    let mut names: Vec<String> = c.san_dns.iter().map(|n| format!("DNS:{n}")).collect();
    names.extend(c.san_ip.iter().map(|n| format!("IP:{n}")));
    if !names.is_empty() {
        let _ = writeln!(out, "  SAN       {}", one_line(&names.join(", ")));
    }
    let _ = writeln!(
        out,
        "  validity  {} to {} ({} days left)",
        date(c.not_before),
        date(c.not_after),
        days_left(c.not_after, now)
    );
    let _ = writeln!(out, "  key       {}, {}", c.key, c.signature_algorithm);
    let _ = writeln!(out, "  version   v{}, serial {}", c.version, c.serial);
    let _ = writeln!(out, "  sha256    {}", c.sha256_fingerprint);
}
