//! `--format json`: one document, schema in README and in [`wire`]'s
//! types. Field names are a public interface: add, never rename.

mod wire;

#[cfg(test)]
mod tests;

use crate::policy::Report;

pub fn render(report: &Report) -> String {
    let doc = wire::Document::new(report, super::summary(report));
    let mut text = serde_json::to_string_pretty(&doc).unwrap_or_else(|e| {
        format!(
            "{{\"status\":\"UNKNOWN\",\"exit_code\":3,\"summary\":\"cannot encode report: {e}\"}}"
        )
    });
    text.push('\n');
    text
}
