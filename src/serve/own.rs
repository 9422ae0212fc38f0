//! The exporter's own metrics (`/metrics`): probes by module and result,
//! their durations, scrapes turned away, probes in flight, the version.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::policy::Status;

type Labels = Vec<(String, String)>;

pub struct Metrics {
    registry: Registry,
    probes: Family<Labels, Counter>,
    durations: Family<Labels, Histogram, fn() -> Histogram>,
    rejected: Family<Labels, Counter>,
    in_flight: Gauge<i64>,
}

/// 5 ms to about 20 s.
fn buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 13))
}

/// Why a scrape got no probe.
#[derive(Debug, Clone, Copy)]
pub enum Rejection {
    /// No such service or configured target.
    UnknownTarget,
    UnknownModule,
    BadRequest,
    /// `--max-in-flight` probes were running.
    InFlight,
    /// The service files could not be read or parsed.
    Inventory,
}

impl Rejection {
    fn name(self) -> &'static str {
        match self {
            Rejection::UnknownTarget => "unknown_target",
            Rejection::UnknownModule => "unknown_module",
            Rejection::BadRequest => "bad_request",
            Rejection::InFlight => "in_flight",
            Rejection::Inventory => "inventory",
        }
    }
}

impl Metrics {
    /// Registers everything; the series of `modules` (and "default") and
    /// every result start at zero, so a rate never lacks its first point.
    pub fn new(modules: &[&str]) -> Metrics {
        let mut registry = Registry::default();
        let probes = Family::<Labels, Counter>::default();
        registry.register(
            "pgtls_exporter_probes",
            "Probes run, by module and result (the Nagios status)",
            probes.clone(),
        );
        let durations =
            Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(buckets);
        registry.register(
            "pgtls_exporter_probe_duration_seconds",
            "Time each probe took, by module",
            durations.clone(),
        );
        let rejected = Family::<Labels, Counter>::default();
        registry.register(
            "pgtls_exporter_scrapes_rejected",
            "Scrapes answered without a probe, by reason (unknown_target, unknown_module, bad_request, in_flight, inventory)",
            rejected.clone(),
        );
        let in_flight = Gauge::<i64>::default();
        registry.register(
            "pgtls_exporter_probes_in_flight",
            "Probes running now",
            in_flight.clone(),
        );
        let build = Family::<Labels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "pgtls_exporter_build_info",
            "The exporter's version, as a label",
            build.clone(),
        );
        build
            .get_or_create(&vec![("version".into(), env!("CARGO_PKG_VERSION").into())])
            .set(1.0);
        for module in modules.iter().copied().chain(["default"]) {
            for status in [
                Status::Ok,
                Status::Warning,
                Status::Critical,
                Status::Unknown,
            ] {
                drop(probes.get_or_create(&labels(module, status)));
            }
            drop(durations.get_or_create(&module_label(module)));
        }
        for reason in [
            Rejection::UnknownTarget,
            Rejection::UnknownModule,
            Rejection::BadRequest,
            Rejection::InFlight,
            Rejection::Inventory,
        ] {
            drop(rejected.get_or_create(&vec![("reason".into(), reason.name().into())]));
        }
        Metrics {
            registry,
            probes,
            durations,
            rejected,
            in_flight,
        }
    }

    pub fn probed(&self, module: &str, status: Status, seconds: f64) {
        self.probes.get_or_create(&labels(module, status)).inc();
        self.durations
            .get_or_create(&module_label(module))
            .observe(seconds);
    }

    pub fn rejected(&self, why: Rejection) {
        self.rejected
            .get_or_create(&vec![("reason".into(), why.name().into())])
            .inc();
    }

    /// Counts a probe in flight until the guard is dropped.
    pub fn in_flight(&self) -> InFlight<'_> {
        self.in_flight.inc();
        InFlight(&self.in_flight)
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        match prometheus_text::encode(&mut out, &self.registry) {
            Ok(()) => out,
            Err(_) => "# pg-tls-probe: metrics could not be encoded\n".into(),
        }
    }
}

pub struct InFlight<'a>(&'a Gauge<i64>);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

fn labels(module: &str, status: Status) -> Labels {
    vec![
        ("module".into(), module.into()),
        ("result".into(), status.label().to_ascii_lowercase()),
    ]
}

fn module_label(module: &str) -> Labels {
    vec![("module".into(), module.into())]
}
