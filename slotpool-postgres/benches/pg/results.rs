//! Results: one row per cell and pool, printed and written as JSON, with
//! criterion's own means read back.

use super::*;

pub(super) struct Row {
    pub(super) workload: Workload,
    pub(super) pool_size: u32,
    pub(super) tasks: usize,
    pub(super) kind: Kind,
    pub(super) ops: u64,
    pub(super) elapsed: Duration,
    pub(super) latencies: Histogram<u64>,
    /// Operations that failed (counted in `ops`, not in `latencies`).
    pub(super) errors: u64,
    pub(super) first_error: Option<String>,
    pub(super) load: f64,
}

impl Row {
    pub(super) fn group(&self) -> String {
        group_name(self.workload, self.pool_size, self.tasks)
    }

    pub(super) fn ops_per_s(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
    }

    pub(super) fn json(&self, criterion_means: &HashMap<(String, String), f64>) -> Value {
        let l = &self.latencies;
        json!({
            "workload": self.workload.name(),
            "pool_size": self.pool_size,
            "tasks": self.tasks,
            "pool": self.kind.name(),
            "criterion_group": self.group(),
            "ops": self.ops,
            "elapsed_s": self.elapsed.as_secs_f64(),
            "ops_per_s": self.ops_per_s(),
            "ns_per_op": 1e9 / self.ops_per_s(),
            "criterion_mean_ns": criterion_means
                .get(&(self.group(), self.kind.name().to_owned()))
                .copied(),
            "latency_mean_ns": l.mean(),
            "latency_p50_ns": l.value_at_quantile(0.5),
            "latency_p99_ns": l.value_at_quantile(0.99),
            "latency_p999_ns": l.value_at_quantile(0.999),
            "latency_max_ns": l.max(),
            "errors": self.errors,
            "first_error": self.first_error,
            "load_average": self.load,
        })
    }
}

pub(super) fn group_name(workload: Workload, pool_size: u32, tasks: usize) -> String {
    format!("pg/{}/pool={pool_size}/tasks={tasks}", workload.name())
}

pub(super) fn us(nanos: u64) -> String {
    format!("{:.1}", nanos as f64 / 1_000.0)
}

pub(super) fn print_header() {
    println!(
        "{:<11} {:>4} {:>5} {:<18} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>5}",
        "workload",
        "pool",
        "tasks",
        "pool",
        "ops",
        "ops/s",
        "p50 us",
        "p99 us",
        "p99.9 us",
        "max us",
        "load"
    );
}

pub(super) fn print_row(row: &Row) {
    let l = &row.latencies;
    println!(
        "{:<11} {:>4} {:>5} {:<18} {:>9} {:>9.0} {:>9} {:>9} {:>9} {:>9} {:>5.2}",
        row.workload.name(),
        row.pool_size,
        row.tasks,
        row.kind.name(),
        row.ops,
        row.ops_per_s(),
        us(l.value_at_quantile(0.5)),
        us(l.value_at_quantile(0.99)),
        us(l.value_at_quantile(0.999)),
        us(l.max()),
        row.load,
    );
    if let Some(error) = &row.first_error {
        println!(
            "    !! {} of {} operations failed; the first: {error}",
            row.errors, row.ops
        );
    }
}

/// Criterion's mean estimates, `(group, function) -> ns`, from
/// `<target>/criterion/**/new/{benchmark,estimates}.json` (as
/// `scripts/bench_report.py` reads them).
pub(super) fn criterion_means() -> HashMap<(String, String), f64> {
    fn walk(dir: &std::path::Path, out: &mut HashMap<(String, String), f64>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.file_name().is_some_and(|n| n == "benchmark.json")
                && path
                    .parent()
                    .and_then(|p| p.file_name())
                    .is_some_and(|n| n == "new")
            {
                let read = |p: &std::path::Path| -> Option<Value> {
                    serde_json::from_str(&std::fs::read_to_string(p).ok()?).ok()
                };
                let (Some(info), Some(estimates)) =
                    (read(&path), read(&path.with_file_name("estimates.json")))
                else {
                    continue;
                };
                let (Some(group), Some(function), Some(mean)) = (
                    info["group_id"].as_str(),
                    info["function_id"].as_str(),
                    estimates["mean"]["point_estimate"].as_f64(),
                ) else {
                    continue;
                };
                if group.starts_with("pg/") {
                    out.insert((group.to_owned(), function.to_owned()), mean);
                }
            }
        }
    }
    let mut out = HashMap::new();
    walk(&common::target_dir().join("criterion"), &mut out);
    out
}
