//! Pure functions from a [`Report`] to the text the user sees.
//!
//! Nothing here decides a status or touches the network; `main` prints what
//! these return.

mod json;
mod nagios;
mod text;

use crate::cli::Format;
use crate::policy::{Report, Status};

pub fn render(report: &Report, format: Format) -> String {
    match format {
        Format::Nagios => nagios::render(report),
        Format::Json => json::render(report),
        Format::Text => text::render(report),
    }
}

/// One line saying what matters most: on success the key facts, otherwise
/// the reasons of the findings that set the run's status.
pub fn summary(report: &Report) -> String {
    if report.status == Status::Ok {
        if let Some(line) = ok_summary(report) {
            return line;
        }
    }
    report
        .findings
        .iter()
        .filter(|f| f.status == report.status)
        .map(|f| f.summary.as_str())
        .collect::<Vec<_>>()
        .join("; ")
}

fn ok_summary(report: &Report) -> Option<String> {
    let facts = report.facts.as_ref()?;
    let target = report.target.as_ref()?;
    let version = facts.session.pg_stat_ssl.as_ref()?.version.clone()?;
    let mut parts = vec![format!("{}:{} {version}", target.host, target.port)];
    if let Some(e) = &report.expiry {
        parts.push(format!("{} expires in {} days", e.role, e.days_left));
    }
    parts.push(match facts.plaintext {
        Some(_) => "plaintext rejected".to_string(),
        None => "plaintext not checked".to_string(),
    });
    Some(parts.join(", "))
}
