//! `/health` from the real state of storage, and the log's own counters
//! for `/metrics`.

use crate::http::HttpResponse;
use hyper::StatusCode;
use runnel_log::Log;
use std::fmt::Write;

/// Why the node is not healthy; empty when it is.
pub fn problems(log: &Log) -> Vec<String> {
    let mut out = Vec::new();
    for d in log.damage_report() {
        out.push(format!("log recovery skipped damaged data: {d}"));
    }
    if let Some(p) = log.poisoned() {
        out.push(format!("the record log refuses writes: {p}"));
    }
    out
}

/// 200 "ok", or 503 with one reason a line.
pub fn health(log: &Log) -> HttpResponse {
    let p = problems(log);
    if p.is_empty() {
        return text(StatusCode::OK, "ok\n".into());
    }
    let mut body = String::from("not ok\n");
    for line in p {
        body.push_str(&line);
        body.push('\n');
    }
    text(StatusCode::SERVICE_UNAVAILABLE, body)
}

fn text(status: StatusCode, body: String) -> HttpResponse {
    let mut r = hyper::Response::new(crate::http::full(body));
    *r.status_mut() = status;
    r
}

/// Appends the log's counters in the Prometheus text format.
pub fn log_metrics(log: &Log, out: &mut String) {
    let s = log.stats();
    let rows: [(&str, &str, &str, u64); 8] = [
        (
            "runnel_log_commits_total",
            "counter",
            "Group commits since start.",
            s.commits,
        ),
        (
            "runnel_log_syncs_total",
            "counter",
            "Data syncs since start.",
            s.syncs,
        ),
        (
            "runnel_log_records_total",
            "counter",
            "Records appended since start.",
            s.records,
        ),
        ("runnel_log_segments", "gauge", "Segment files.", s.segments),
        (
            "runnel_log_bytes_on_disk",
            "gauge",
            "Bytes in segment files.",
            s.bytes_on_disk,
        ),
        (
            "runnel_log_cache_bytes",
            "gauge",
            "Bytes held by the caches of sealed segments' details and frame lists.",
            s.cache_bytes,
        ),
        (
            "runnel_log_open_segments",
            "gauge",
            "Sealed segment files open in the file cache.",
            s.open_segments,
        ),
        (
            "runnel_log_damaged_ranges",
            "gauge",
            "Damaged ranges recovery skipped at start (data lost).",
            log.damage_report().len() as u64,
        ),
    ];
    for (name, kind, help, v) in rows {
        let _ = write!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}\n"
        );
    }
    let poisoned = u64::from(log.poisoned().is_some());
    let _ = write!(
        out,
        "# HELP runnel_log_poisoned 1 when the log refuses writes.\n# TYPE runnel_log_poisoned gauge\nrunnel_log_poisoned {poisoned}\n"
    );
}
