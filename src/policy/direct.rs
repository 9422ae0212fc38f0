//! The `direct_tls` finding: information, never a problem. A server
//! without PostgreSQL 17's direct TLS is fine for every client using the
//! default negotiation; when the probe itself was told to negotiate
//! directly, a refusal is already the `connection` finding.

use super::{Finding, Status};
use crate::facts::DirectTlsFacts;

pub(super) fn finding(facts: &DirectTlsFacts) -> Finding {
    let what = match facts.supported {
        Some(true) => "direct TLS supported",
        Some(false) => "direct TLS not supported",
        None => "direct TLS support",
    };
    Finding {
        name: "direct_tls",
        status: Status::Ok,
        summary: format!("{what}: {}", facts.detail),
    }
}

#[cfg(test)]
mod tests {
    use crate::cli::Format;
    use crate::facts::DirectTlsFacts;
    use crate::policy::evaluate;
    use crate::policy::tests::{healthy, target, thresholds};
    use crate::render::render;

    fn with(supported: Option<bool>, detail: &str) -> crate::policy::Report {
        let mut facts = healthy();
        facts.direct_tls = Some(DirectTlsFacts {
            supported,
            detail: detail.into(),
        });
        evaluate(facts, target(), thresholds())
    }

    /// Information only: whatever the answer, the run stays OK, and every
    /// format says it on the finding's line.
    #[test]
    fn direct_tls_is_an_ok_finding_in_every_format() {
        for (supported, line) in [
            (Some(true), "OK direct_tls: direct TLS supported: d\n"),
            (Some(false), "OK direct_tls: direct TLS not supported: d\n"),
            (None, "OK direct_tls: direct TLS support: d\n"),
        ] {
            let report = with(supported, "d");
            assert_eq!(report.status, crate::policy::Status::Ok);
            let nagios = render(&report, Format::Nagios);
            assert!(nagios.ends_with(line), "{nagios}");
            let text = render(&report, Format::Text);
            assert!(text.contains("direct_tls"), "{text}");
            let doc: serde_json::Value =
                serde_json::from_str(&render(&report, Format::Json)).unwrap();
            assert_eq!(doc["direct_tls"]["supported"], serde_json::json!(supported));
            assert_eq!(doc["direct_tls"]["detail"], "d");
        }
        let doc: serde_json::Value = serde_json::from_str(&render(
            &evaluate(healthy(), target(), thresholds()),
            Format::Json,
        ))
        .unwrap();
        assert!(doc["direct_tls"].is_null());
        assert_eq!(doc["target"]["sslnegotiation"], "postgres");
    }
}
