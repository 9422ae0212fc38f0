//! A fleet's verdict: one report per target, the run's status the worst
//! of theirs, and how many there are of each.

use super::{Report, Status};

/// One target's report under its name (the service, or host:port).
#[derive(Debug, Clone)]
pub struct NamedReport {
    pub name: String,
    pub report: Report,
}

/// How many targets ended in each status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub ok: usize,
    pub warning: usize,
    pub critical: usize,
    pub unknown: usize,
}

impl Counts {
    pub fn total(&self) -> usize {
        self.ok + self.warning + self.critical + self.unknown
    }
}

#[derive(Debug, Clone)]
pub struct FleetReport {
    /// The worst target's status (UNKNOWN for an empty fleet).
    pub status: Status,
    pub counts: Counts,
    pub targets: Vec<NamedReport>,
    /// Wall time of the whole run, seconds.
    pub total_seconds: f64,
}

impl FleetReport {
    pub fn new(targets: Vec<NamedReport>, total_seconds: f64) -> FleetReport {
        let mut counts = Counts::default();
        for t in &targets {
            match t.report.status {
                Status::Ok => counts.ok += 1,
                Status::Warning => counts.warning += 1,
                Status::Critical => counts.critical += 1,
                Status::Unknown => counts.unknown += 1,
            }
        }
        let status = targets
            .iter()
            .map(|t| t.report.status)
            .max()
            .unwrap_or(Status::Unknown);
        FleetReport {
            status,
            counts,
            targets,
            total_seconds,
        }
    }

    /// The targets, worst first (then in fleet order).
    pub fn worst_first(&self) -> Vec<&NamedReport> {
        let mut sorted: Vec<&NamedReport> = self.targets.iter().collect();
        sorted.sort_by_key(|t| std::cmp::Reverse(t.report.status));
        sorted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(name: &str, status: Status) -> NamedReport {
        let mut report = Report::unusable("x".into());
        report.status = status;
        NamedReport {
            name: name.into(),
            report,
        }
    }

    #[test]
    fn the_worst_target_sets_the_status() {
        let fleet = FleetReport::new(
            vec![
                named("a", Status::Ok),
                named("b", Status::Unknown),
                named("c", Status::Warning),
                named("d", Status::Ok),
            ],
            0.1,
        );
        assert_eq!(fleet.status, Status::Unknown);
        assert_eq!(
            fleet.counts,
            Counts {
                ok: 2,
                warning: 1,
                critical: 0,
                unknown: 1
            }
        );
        let order: Vec<&str> = fleet
            .worst_first()
            .iter()
            .map(|t| t.name.as_str())
            .collect();
        assert_eq!(order, ["b", "c", "a", "d"]);
        assert_eq!(FleetReport::new(vec![], 0.0).status, Status::Unknown);
    }
}
