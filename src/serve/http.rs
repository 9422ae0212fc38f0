//! One HTTP request: `/probe`, `/metrics`, `/`. Never panics on anything a
//! client sends; every refusal is a status code and a one-line reason.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};

use super::own::Rejection;
use super::State;
use crate::conn::{self, Flags};
use crate::plan::{self, Module};
use crate::policy::Report;
use crate::render;

/// The longest target or module name taken from a URL.
const MAX_NAME: usize = 256;

/// Prometheus's header: how long it waits for this scrape.
const SCRAPE_TIMEOUT_HEADER: &str = "x-prometheus-scrape-timeout-seconds";

pub async fn handle(state: &State, req: Request<Incoming>) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET\n".into());
    }
    match req.uri().path() {
        "/probe" => probe(state, &req).await,
        "/metrics" => metrics(state.own.encode()),
        "/" => text(
            StatusCode::OK,
            "pg-tls-probe exporter\n\nGET /probe?target=SERVICE[&module=NAME]  one probe, as Prometheus metrics\nGET /metrics                           the exporter's own metrics\n"
                .into(),
        ),
        _ => text(StatusCode::NOT_FOUND, "not found\n".into()),
    }
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn metrics(body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static(prometheus_client::encoding::prometheus_text::CONTENT_TYPE),
    );
    response
}

async fn probe(state: &State, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let refuse = |why: Rejection, status: StatusCode, message: String| {
        state.own.rejected(why);
        text(status, message + "\n")
    };
    let query = match Query::parse(req.uri().query().unwrap_or("")) {
        Ok(q) => q,
        Err(e) => return refuse(Rejection::BadRequest, StatusCode::BAD_REQUEST, e),
    };
    let Some(name) = query.target else {
        return refuse(
            Rejection::BadRequest,
            StatusCode::BAD_REQUEST,
            "the target parameter is missing".into(),
        );
    };
    let (module_name, module): (&str, &Module) = match query.module.as_deref() {
        None | Some("default") => ("default", &state.default_module),
        Some(m) => match state.modules.get_key_value(m) {
            Some((k, module)) => (k.as_str(), module),
            None => {
                return refuse(
                    Rejection::UnknownModule,
                    StatusCode::BAD_REQUEST,
                    format!("unknown module \"{}\"", render::one_line(m)),
                )
            }
        },
    };
    let flags = match inventory(state, &name) {
        Ok(Some(flags)) => flags,
        Ok(None) => {
            return refuse(
                Rejection::UnknownTarget,
                StatusCode::NOT_FOUND,
                format!(
                    "unknown target \"{}\": only the services of the service files and the targets of --config are probed",
                    render::one_line(&name)
                ),
            )
        }
        Err(e) => {
            return refuse(
                Rejection::Inventory,
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("the service files cannot be read: {}", render::one_line(&e)),
            )
        }
    };
    let timeout = match scrape_timeout(req, module.timeout, state.offset) {
        Ok(t) => t,
        Err(e) => return refuse(Rejection::BadRequest, StatusCode::BAD_REQUEST, e),
    };
    let Ok(_permit) = state.in_flight.try_acquire() else {
        return refuse(
            Rejection::InFlight,
            StatusCode::SERVICE_UNAVAILABLE,
            "too many probes in flight (--max-in-flight)".into(),
        );
    };
    let _counted = state.own.in_flight();
    let started = Instant::now();
    let report = check(state, &flags, module, started + timeout).await;
    let seconds = started.elapsed().as_secs_f64();
    state.own.probed(module_name, report.status, seconds);
    metrics(render::metrics::probe(&report, seconds))
}

/// The connection sources for `name`: a target of --config, or a group of
/// the service files the exporter's environment names (read afresh, so an
/// edited inventory needs no restart). None: not ours. A file that cannot
/// be read is the exporter's problem, not an unknown target.
fn inventory(state: &State, name: &str) -> Result<Option<Flags>, String> {
    if let Some(conninfo) = state.targets.get(name) {
        return Ok(Some(Flags {
            conninfo: Some(conninfo.clone()),
            ..Flags::default()
        }));
    }
    let var = |k: &str| (state.env.var)(k).map(|v| v.to_string_lossy().into_owned());
    let files = conn::service_files(&Flags::default(), &var, state.env.home.as_deref())
        .map_err(|e| e.to_string())?;
    let names = files.names().map_err(|e| e.to_string())?;
    Ok(names.iter().any(|n| n == name).then(|| Flags {
        service: Some(name.to_string()),
        ..Flags::default()
    }))
}

/// Resolves and probes; a target that cannot be planned is an UNKNOWN
/// report (its metrics say so), not an HTTP error.
async fn check(state: &State, flags: &Flags, module: &Module, deadline: Instant) -> Report {
    let var = |k: &str| (state.env.var)(k).map(|v| v.to_string_lossy().into_owned());
    let planned = conn::resolve(flags, &var, state.env.home.as_deref(), &state.env.os_user)
        .map_err(|e| e.to_string())
        .and_then(plan::endpoint);
    match planned {
        Ok(endpoint) => crate::fleet::check(module, &endpoint, deadline, Duration::ZERO).await,
        Err(reason) => Report::unusable(reason),
    }
}

/// The module's timeout, or Prometheus's own minus the offset when that
/// is shorter (blackbox_exporter's rule).
fn scrape_timeout(
    req: &Request<Incoming>,
    module: Duration,
    offset: Duration,
) -> Result<Duration, String> {
    let Some(header) = req.headers().get(SCRAPE_TIMEOUT_HEADER) else {
        return Ok(module);
    };
    let seconds = header
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0 && *s <= 3600.0)
        .ok_or_else(|| format!("{SCRAPE_TIMEOUT_HEADER} is not a number of seconds"))?;
    let scrape = Duration::from_secs_f64(seconds).saturating_sub(offset);
    if scrape.is_zero() {
        return Err(format!(
            "{SCRAPE_TIMEOUT_HEADER} leaves no time after --timeout-offset"
        ));
    }
    Ok(scrape.min(module))
}

/// `target` and `module` from a query string, percent-decoded; a
/// parameter given twice is ambiguous and refused.
#[derive(Debug, Default, PartialEq, Eq)]
struct Query {
    target: Option<String>,
    module: Option<String>,
}

impl Query {
    fn parse(query: &str) -> Result<Query, String> {
        let mut q = Query::default();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let slot = match key {
                "target" => &mut q.target,
                "module" => &mut q.module,
                _ => continue,
            };
            if slot.is_some() {
                return Err(format!("{key} given more than once"));
            }
            let plus = value.replace('+', " ");
            let decoded = percent_encoding::percent_decode_str(&plus)
                .decode_utf8()
                .map_err(|_| format!("{key} is not valid UTF-8"))?;
            if decoded.is_empty()
                || decoded.len() > MAX_NAME
                || decoded.chars().any(char::is_control)
            {
                return Err(format!(
                    "{key} must be 1 to {MAX_NAME} bytes without control characters"
                ));
            }
            *slot = Some(decoded.into_owned());
        }
        Ok(q)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_decoded_and_bounded() {
        assert_eq!(
            Query::parse("target=prod%2Deu+1&module=quick&x=y").unwrap(),
            Query {
                target: Some("prod-eu 1".into()),
                module: Some("quick".into())
            }
        );
        assert_eq!(Query::parse("").unwrap(), Query::default());
        for bad in [
            "target=a&target=b",
            "target=",
            "target=%ff",
            "target=a%0Ab",
            &format!("target={}", "a".repeat(MAX_NAME + 1)),
        ] {
            assert!(Query::parse(bad).is_err(), "{bad}");
        }
    }
}
