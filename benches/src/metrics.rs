//! The metrics table: every metric of the `limits`, `core` and `http` groups, in
//! table order, with its unit and target (the `transfer`, `s3proto` and
//! `durability` groups declare their own).
//!
//! Labels and ids are templates: `{b}` the backend, `{size}` the big transfer's
//! size, `{c}` the load's concurrency, `{n}` the objects in the listing bucket,
//! `{f}` the keys of the deleted folder,
//! `{cold}` ", cold" on the local backend (whose first download reads cold).

use crate::report::Better::{self, Higher, Lower};
use crate::report::{Results, Target};
use crate::Plan;

/// What a metric is judged against.
#[derive(Clone, Copy)]
enum Goal {
    None,
    /// At least this share of the backend's write limit.
    OfWriteLimit(f64),
    /// At least this share of the backend's read limit (cold on local).
    OfReadLimit(f64),
    /// Shown as a ratio to another metric.
    Compare(&'static str),
    AtLeast(f64),
    AtMost(f64),
    Under(f64),
}

/// One row: id and label templates, unit, direction, goal, and the one backend
/// it is limited to (`None`: every backend).
struct Row(
    &'static str,
    &'static str,
    &'static str,
    Better,
    Goal,
    Option<&'static str>,
);

/// Rows of the `limits` group that need the local disk.
#[rustfmt::skip]
const LIMITS_DISK: &[Row] = &[
    Row("limit.disk.write", "limit: disk write {size} (fdatasync)", "MB/s", Higher, Goal::None, None),
    Row("limit.disk.read_cold", "limit: disk read {size}, cold", "MB/s", Higher, Goal::None, None),
    Row("limit.disk.read_warm", "limit: disk read {size}, warm", "MB/s", Higher, Goal::None, None),
];

/// Rows of the `limits` group on every run.
#[rustfmt::skip]
const LIMITS_TCP: &[Row] = &[Row("limit.tcp", "limit: loopback TCP {size}", "MB/s", Higher, Goal::None, None)];

/// Rows of the `limits` group that need the S3 engine.
#[rustfmt::skip]
const LIMITS_S3: &[Row] = &[
    Row("limit.s3.put", "limit: S3 engine direct PUT {size}", "MB/s", Higher, Goal::None, None),
    Row("limit.s3.get", "limit: S3 engine direct GET {size}", "MB/s", Higher, Goal::None, None),
    Row("limit.s3.small_get", "limit: S3 engine direct 4 KiB GETs ×{c}", "req/s", Higher, Goal::None, None),
    Row("limit.s3.small_get_p99", "limit: S3 engine direct 4 KiB GET p99", "ms", Lower, Goal::None, None),
    Row("limit.s3.small_get_quickack", "limit: S3 engine direct 4 KiB GETs ×{c}, quick-ACK client", "req/s", Higher, Goal::None, None),
    Row("limit.s3.small_get_quickack_p99", "limit: S3 engine direct 4 KiB GET p99, quick-ACK client", "ms", Lower, Goal::None, None),
    Row("limit.s3.list_page", "limit: S3 engine direct 1000-key page", "ms", Lower, Goal::None, None),
];

/// Rows of the `core` group, per backend.
#[rustfmt::skip]
const CORE: &[Row] = &[
    Row("core.{b}.upload", "core {b}: upload {size}", "MB/s", Higher, Goal::OfWriteLimit(0.7), None),
    Row("core.{b}.download", "core {b}: download {size}{cold}", "MB/s", Higher, Goal::OfReadLimit(0.8), None),
    Row("core.{b}.download_warm", "core {b}: download {size}, warm", "MB/s", Higher, Goal::Compare("limit.disk.read_warm"), Some("local")),
];

/// Rows of the `http` group, per backend.
#[rustfmt::skip]
const HTTP: &[Row] = &[
    Row("http.{b}.upload", "HTTP {b}: upload {size}", "MB/s", Higher, Goal::OfWriteLimit(0.7), None),
    Row("http.{b}.download", "HTTP {b}: download {size}{cold}", "MB/s", Higher, Goal::OfReadLimit(0.8), None),
    Row("http.{b}.download_warm", "HTTP {b}: download {size}, warm", "MB/s", Higher, Goal::Compare("limit.tcp"), Some("local")),
    Row("http.{b}.upload_cpu", "HTTP {b}: daemon CPU per GiB uploaded", "s", Lower, Goal::None, None),
    Row("http.{b}.download_cpu", "HTTP {b}: daemon CPU per GiB downloaded", "s", Lower, Goal::None, None),
    Row("http.{b}.small_get", "HTTP {b}: 4 KiB GETs ×{c}", "req/s", Higher, Goal::None, Some("local")),
    Row("http.{b}.small_get", "HTTP {b}: 4 KiB GETs ×{c}", "req/s", Higher, Goal::AtLeast(2210.0), Some("s3")),
    Row("http.{b}.small_get_p50", "HTTP {b}: 4 KiB GET p50", "ms", Lower, Goal::None, None),
    Row("http.{b}.small_get_p99", "HTTP {b}: 4 KiB GET p99", "ms", Lower, Goal::Under(50.0), None),
    Row("http.{b}.small_get_errors", "HTTP {b}: 4 KiB GET errors", "", Lower, Goal::AtMost(0.0), None),
    Row("http.{b}.small_get_cpu", "HTTP {b}: daemon CPU per 4 KiB GET", "µs", Lower, Goal::None, None),
    Row("http.{b}.after_load_get", "HTTP {b}: one GET right after the load", "ms", Lower, Goal::None, None),
    Row("http.{b}.list_page_uncached", "HTTP {b}: first 1000-key page of {n} objects, first request", "ms", Lower, Goal::None, None),
    Row("http.{b}.list_page", "HTTP {b}: first 1000-key page of {n} objects", "ms", Lower, Goal::Under(50.0), Some("local")),
    Row("http.{b}.list_page", "HTTP {b}: first 1000-key page of {n} objects", "ms", Lower, Goal::None, Some("s3")),
    Row("http.{b}.list_walk", "HTTP {b}: full walk of {n} objects (1000/page)", "s", Lower, Goal::None, None),
    Row("http.{b}.folder_delete", "HTTP {b}: delete a {f}-key folder in a bucket of {n} objects", "ms", Lower, Goal::Compare("http.local.folder_delete_alone"), Some("local")),
    Row("http.{b}.folder_delete_alone", "HTTP {b}: delete a {f}-key folder in a bucket of only it", "ms", Lower, Goal::None, Some("local")),
    Row("http.{b}.startup", "HTTP {b}: start-up to first answer", "ms", Lower, Goal::AtMost(100.0), None),
    Row("http.{b}.idle_rss", "HTTP {b}: idle RSS after start", "MiB", Lower, Goal::AtMost(15.0), None),
    Row("http.{b}.peak_rss_upload", "HTTP {b}: peak RSS during upload", "MiB", Lower, Goal::AtMost(64.0), None),
    Row("http.{b}.peak_rss_download", "HTTP {b}: peak RSS during download", "MiB", Lower, Goal::AtMost(64.0), None),
    Row("http.{b}.rss_after", "HTTP {b}: RSS at the end (after all loads)", "MiB", Lower, Goal::None, None),
];

/// Declares every metric of the run in table order, with its target.
pub(crate) fn declare(r: &mut Results, plan: &Plan) {
    if plan.transfer {
        crate::transfer::declare(r, plan);
    }
    if plan.s3proto {
        crate::s3proto::declare(r, plan);
    }
    let mut backends = Vec::new();
    if plan.local {
        backends.push("local");
    }
    if plan.s3.is_some() {
        backends.push("s3");
    }
    if plan.limits {
        if plan.local {
            rows(r, plan, LIMITS_DISK, "");
        }
        rows(r, plan, LIMITS_TCP, "");
        if plan.s3.is_some() {
            rows(r, plan, LIMITS_S3, "");
        }
    }
    for (enabled, table) in [(plan.core, CORE), (plan.http, HTTP)] {
        if enabled {
            for b in &backends {
                rows(r, plan, table, b);
            }
        }
    }
}

/// Declares `table`'s rows for backend `b` ("" for rows without one).
fn rows(r: &mut Results, plan: &Plan, table: &[Row], b: &str) {
    let n = if b == "s3" {
        plan.s3_list_objects
    } else {
        plan.list_objects
    };
    let fill = |template: &str| {
        template
            .replace("{b}", b)
            .replace("{size}", &format!("{} MiB", plan.size >> 20))
            .replace("{c}", &plan.concurrency.to_string())
            .replace("{n}", &n.to_string())
            .replace("{f}", &plan.folder_keys().to_string())
            .replace("{cold}", if b == "local" { ", cold" } else { "" })
    };
    for Row(id, label, unit, better, goal, only) in table {
        if only.is_some_and(|only| only != b) {
            continue;
        }
        r.declare(
            &fill(id),
            &fill(label),
            unit,
            *better,
            target(*goal, b, plan),
        );
    }
}

/// The target of `goal` for backend `b`.
fn target(goal: Goal, b: &str, plan: &Plan) -> Option<Target> {
    let ratio = |reference: &str, factor: f64| {
        Some(Target::RatioOf {
            reference: reference.to_string(),
            factor,
        })
    };
    match goal {
        Goal::None => None,
        Goal::OfWriteLimit(factor) if b == "local" => ratio("limit.disk.write", factor),
        Goal::OfWriteLimit(factor) => ratio("limit.s3.put", factor),
        // Without the local disk's limits (an S3-only run) there is no cold read
        // to compare with.
        Goal::OfReadLimit(factor) if b == "local" => ratio(
            if plan.local {
                "limit.disk.read_cold"
            } else {
                ""
            },
            factor,
        ),
        Goal::OfReadLimit(factor) => ratio("limit.s3.get", factor),
        Goal::Compare(reference) => Some(Target::Compare(reference.to_string())),
        Goal::AtLeast(v) => Some(Target::AtLeast(v)),
        Goal::AtMost(v) => Some(Target::AtMost(v)),
        Goal::Under(v) => Some(Target::Under(v)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table declares exactly the metrics of the last full run
    /// (`benches/results-latest.json`, 1024 MiB, both backends, every default
    /// group; its other groups declare their own metrics): same ids in the same
    /// order, labels, units, directions and targets (metrics added since it was
    /// made aside).
    #[test]
    fn table_matches_the_last_full_run() {
        let work_dir = std::env::temp_dir().join("s4-bench-metrics-test");
        let this = std::env::current_exe().expect("test binary");
        let flags = <crate::plan::Flags as clap::Parser>::parse_from([
            "s4-bench".as_ref(),
            "--work-dir".as_ref(),
            work_dir.as_os_str(),
            "--s4-bin".as_ref(),
            this.as_os_str(),
            "--backends".as_ref(),
            "local".as_ref(),
        ]);
        let mut plan = crate::plan::plan(flags).expect("plan");
        plan.s3 = Some(s4_core::storage::S3Config {
            endpoint: "http://127.0.0.1:1".into(),
            access_key_id: String::new(),
            secret_access_key: String::new(),
            region: "us-east-1".into(),
        });
        let mut r = Results::default();
        declare(&mut r, &plan);
        let fields = |m: &serde_json::Value| {
            ["id", "label", "unit", "better", "target"].map(|f| m[f].to_string())
        };
        let last: serde_json::Value = serde_json::from_str(include_str!("../results-latest.json"))
            .expect("results-latest.json");
        let last: Vec<_> = last["metrics"]
            .as_array()
            .expect("metrics")
            .iter()
            .filter(|m| {
                let id = m["id"].as_str().unwrap_or_default();
                ["limit.", "core.", "http."]
                    .iter()
                    .any(|g| id.starts_with(g))
            })
            .map(fields)
            .collect();
        let ours: Vec<_> = r.to_json(serde_json::Value::Null)["metrics"]
            .as_array()
            .expect("metrics")
            .iter()
            .map(fields)
            .collect();
        // Metrics added since that run are not in it; every other one is the same.
        let known: Vec<_> = ours
            .iter()
            .filter(|m| last.iter().any(|l| l[0] == m[0]))
            .cloned()
            .collect();
        assert_eq!(known, last);
        assert!(ours.iter().any(|m| m[0] == "\"http.local.folder_delete\""));
    }
}
