//! `--format json`: one document, schema in README and in [`wire`]'s
//! types. Field names are a public interface: add, never rename.

mod wire;

#[cfg(test)]
mod tests;

use crate::policy::fleet::FleetReport;
use crate::policy::Report;

pub fn render(report: &Report) -> String {
    encode(&wire::Document::new(report, super::summary(report)))
}

/// A fleet: counts, then each target's document with its name.
pub fn fleet(report: &FleetReport, summary: String) -> String {
    encode(&wire::FleetDocument::new(report, summary))
}

fn encode(doc: &impl serde::Serialize) -> String {
    let mut text = serde_json::to_string_pretty(doc).unwrap_or_else(|e| {
        format!(
            "{{\"status\":\"UNKNOWN\",\"exit_code\":3,\"summary\":\"cannot encode report: {e}\"}}"
        )
    });
    text.push('\n');
    text
}
