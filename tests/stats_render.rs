#![cfg(not(feature = "loom"))]
//! Statistics end to end: exact counters and percentiles from known scenarios
//! on a real pool, counters that add up under concurrency, the Prometheus
//! text parsed back with a text-format parser, histograms that keep one
//! shape from scrape to scrape, the OpenMetrics text checked line by line,
//! the OpenTelemetry names, JSON, the health rules (each triggered by its
//! scenario and absent otherwise), and the `metrics` facade export (with
//! `--features metrics`).

mod support;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

use prometheus_parse::{Scrape, Value};
use slotpool::stats::{
    Callback, Counters, HealthStatus, HealthThresholds, HistogramSnapshot, LatencyBuckets,
    LatencyBucketsError, MetricNames,
};
use slotpool::{CloseReason, Error, ManualClock, Pool, PoolConfig, Stats, TryGetError};
use support::{Faults, TestManager, eventually};

const LIMIT: Duration = Duration::from_secs(10);
const MS: Duration = Duration::from_millis(1);

/// A pool driven by a manual clock, measuring every hold.
fn manual_pool(max_size: u32) -> (Pool<TestManager>, Arc<Faults>, Arc<ManualClock>) {
    let (manager, faults) = TestManager::new();
    let clock = ManualClock::new();
    let pool = Pool::builder()
        .pool_name("orders")
        .max_size(max_size)
        .connection_timeout(Duration::from_secs(3600))
        .usage_sampling(1)
        .clock(clock.clone())
        .build(manager)
        .unwrap();
    // Start at 1 ms: a hold sampled at time 0 would be stamped at 1 ns.
    clock.advance(MS);
    (pool, faults, clock)
}

/// Holds a connection while another thread's `get_timeout(timeout)` queues;
/// advances the clock by `after` and then returns the held connection (or,
/// when `after >= timeout`, lets the waiter time out first). Returns whether
/// the waiter was served.
fn wait_behind_holder(
    pool: &Pool<TestManager>,
    clock: &ManualClock,
    timeout: Duration,
    after: Duration,
) -> bool {
    let held = pool.get().unwrap();
    let served = thread::scope(|scope| {
        let waiter = scope.spawn(|| pool.get_timeout(timeout).map(drop));
        eventually("waiter queued", LIMIT, || pool.state().waiting == 1);
        clock.advance(after);
        if after >= timeout {
            let result = waiter.join().unwrap();
            drop(held);
            result
        } else {
            drop(held);
            waiter.join().unwrap()
        }
    });
    match served {
        Ok(()) => true,
        Err(error) => {
            assert!(error.is_timeout(), "{error}");
            false
        }
    }
}

/// Asserts `got` is `want` up to the histogram's bucket precision (12.5%).
fn within_bucket(got: Duration, want: Duration) {
    let (got_ns, want_ns) = (got.as_nanos() as f64, want.as_nanos() as f64);
    assert!(
        got_ns >= want_ns && got_ns <= want_ns * 1.125,
        "{got:?} not within 12.5% above {want:?}"
    );
}

/// The known scenario: 12 hits, 5 waits (three of 4 ms), 2 timeouts, one
/// broken connection and one try_get miss, on a max_size 1 pool.
fn known_scenario() -> (Pool<TestManager>, Arc<Faults>) {
    let (pool, faults, clock) = manual_pool(1);
    // A cold pool: the first get waits for the connect (0 ns on this clock).
    let conn = pool.get().unwrap();
    clock.advance(10 * MS);
    drop(conn);
    // 5 hits held 2 ms each.
    for _ in 0..5 {
        let conn = pool.get().unwrap();
        clock.advance(2 * MS);
        drop(conn);
    }
    // 3 waits of 4 ms behind a holder (a hit held 4 ms; the waiter holds 0).
    for _ in 0..3 {
        assert!(wait_behind_holder(
            &pool,
            &clock,
            Duration::from_secs(1),
            4 * MS
        ));
    }
    // 2 timeouts of 50 ms behind a holder (a hit held 50 ms).
    for _ in 0..2 {
        assert!(!wait_behind_holder(&pool, &clock, 50 * MS, 50 * MS));
    }
    // A broken connection; the next get waits for its replacement.
    let mut conn = pool.get().unwrap();
    conn.mark_broken();
    drop(conn);
    drop(pool.get().unwrap());
    eventually("broken one closed", LIMIT, || faults.closed() == 1);
    // A try_get miss while the connection is out (last: the miss asks the
    // worker for a connection, which must not race a later get).
    let held = pool.get().unwrap();
    assert!(matches!(pool.try_get(), Err(TryGetError::NoIdle { .. })));
    drop(held);
    (pool, faults)
}

#[test]
fn known_scenario_counts_exactly() {
    let (pool, faults) = known_scenario();
    let stats = pool.stats();
    let c = &stats.counters;
    assert_eq!(stats.pool, "orders");
    assert_eq!(c.hits, 5 + 3 + 2 + 1 + 1, "{c:?}");
    assert_eq!(c.waited, 1 + 3 + 1, "{c:?}");
    assert_eq!(c.timeouts, 2);
    assert_eq!(c.no_idle, 1);
    assert_eq!(
        (c.rejected_waiter_cap, c.rejected_closed, c.failed_fast),
        (0, 0, 0)
    );
    assert_eq!(c.gets, 20);
    assert_eq!(
        c.gets,
        c.hits
            + c.waited
            + c.timeouts
            + c.rejected_waiter_cap
            + c.rejected_closed
            + c.failed_fast
            + c.no_idle
    );
    assert_eq!(c.created, 2);
    assert_eq!(c.created as usize, faults.opened());
    assert_eq!(c.connect_failures, 0);
    assert_eq!(c.closed(CloseReason::Broken), 1);
    for reason in CloseReason::ALL {
        if reason != CloseReason::Broken {
            assert_eq!(c.closed(reason), 0, "{reason:?}");
        }
    }
    assert_eq!((c.validations, c.validation_failures, c.leaks), (0, 0, 0));
    assert!((stats.hit_ratio - 12.0 / 20.0).abs() < 1e-12);

    // Gauges back at rest.
    let g = stats.gauges;
    assert_eq!(
        (g.total, g.idle, g.in_use, g.connecting, g.waiting),
        (1, 1, 0, 0, 0),
        "{g:?}"
    );
    assert_eq!((g.max, g.min_idle), (1, 0));
    assert_eq!(stats.utilisation, 0.0);

    // Acquire waits: 0, 4, 4, 4, 0 ms.
    let acquire = &stats.acquire_wait;
    assert_eq!(acquire.count, 5);
    assert_eq!(acquire.sum, 12 * MS);
    assert_eq!(acquire.max, 4 * MS);
    within_bucket(acquire.p50, 4 * MS);
    within_bucket(acquire.p99, 4 * MS);
    // Holds: 10 ms, 5 x 2 ms, 3 x (4 ms, 0), 2 x 50 ms, then four of 0.
    let usage = &stats.usage;
    assert_eq!(usage.count, 17);
    assert_eq!(usage.sum, 132 * MS);
    assert_eq!(usage.max, 50 * MS);
    within_bucket(usage.p50, 2 * MS);
    within_bucket(usage.p95, 50 * MS);
    within_bucket(usage.p99, 50 * MS);
    assert_eq!(usage.buckets.iter().map(|(_, n)| n).sum::<u64>(), 17);
    assert_eq!(stats.connect_time.count, 2);

    // Closing closes the idle one and refuses the next get.
    let _ = pool.close_timeout(Duration::ZERO);
    assert!(pool.get().unwrap_err().is_closed());
    let stats = pool.stats();
    assert_eq!(stats.counters.rejected_closed, 1);
    assert_eq!(stats.counters.gets, 21);
    assert_eq!(stats.counters.closed(CloseReason::PoolClosed), 1);
}

#[test]
fn counters_add_up_under_concurrency() {
    const THREADS: u64 = 6;
    const GETS: u64 = 1_500;
    let (manager, _faults) = TestManager::new();
    let pool = Pool::builder()
        .max_size(3)
        .usage_sampling(1)
        .build(manager)
        .unwrap();
    let (served, timeouts, misses) = (AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0));
    thread::scope(|scope| {
        for t in 0..THREADS {
            let (pool, served, timeouts, misses) = (&pool, &served, &timeouts, &misses);
            scope.spawn(move || {
                for i in 0..GETS {
                    // `None`: a `try_get` miss; `Some`: a get's error.
                    let result = match (i + t) % 5 {
                        0 => pool
                            .get_timeout(Duration::from_micros(i % 40))
                            .map_err(Some),
                        1 => pool.try_get().map_err(|error| {
                            assert!(matches!(error, TryGetError::NoIdle { .. }), "{error}");
                            None
                        }),
                        _ => pool.get_timeout(LIMIT).map_err(Some),
                    };
                    match result {
                        Ok(conn) => {
                            conn.claim();
                            std::hint::spin_loop();
                            conn.unclaim();
                            served.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(None) => {
                            misses.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(Some(error)) => {
                            assert!(error.is_timeout(), "{error}");
                            timeouts.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            });
        }
    });
    let stats = pool.stats();
    let c = &stats.counters;
    let served = served.into_inner();
    assert_eq!(c.gets, THREADS * GETS);
    assert_eq!(c.hits + c.waited, served, "{c:?}");
    assert_eq!(c.timeouts, timeouts.into_inner());
    assert_eq!(c.no_idle, misses.into_inner());
    assert_eq!(
        c.gets,
        c.hits
            + c.waited
            + c.timeouts
            + c.rejected_waiter_cap
            + c.rejected_closed
            + c.failed_fast
            + c.no_idle
    );
    assert_eq!(stats.acquire_wait.count, c.waited);
    assert_eq!(stats.usage.count, served, "every hold sampled");
    assert_eq!(stats.connect_time.count, c.created);
    let g = stats.gauges;
    assert_eq!((g.in_use, g.waiting, g.connecting), (0, 0, 0), "{g:?}");
    assert_eq!(g.total, g.idle);
    assert!(g.total <= 3);
}

// ------------------------------------------------------------- prometheus

fn parse(text: &str) -> Scrape {
    Scrape::parse(text.lines().map(|line| Ok(line.to_owned()))).unwrap()
}

/// The sample of `metric` whose pool label (`pool_label`) is as given, with
/// `label` (if any).
fn sample_in<'a>(
    scrape: &'a Scrape,
    metric: &str,
    (pool_key, pool): (&str, &str),
    label: Option<(&str, &str)>,
) -> &'a Value {
    let found: Vec<_> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric && s.labels.get(pool_key) == Some(pool))
        .filter(|s| label.is_none_or(|(key, value)| s.labels.get(key) == Some(value)))
        .collect();
    assert_eq!(found.len(), 1, "{metric} {label:?}: {found:?}");
    &found[0].value
}

fn gauge(scrape: &Scrape, metric: &str, pool: &str) -> f64 {
    gauge_in(scrape, metric, ("pool", pool), None)
}

fn gauge_in(scrape: &Scrape, metric: &str, pool: (&str, &str), label: Option<(&str, &str)>) -> f64 {
    match sample_in(scrape, metric, pool, label) {
        Value::Gauge(v) => *v,
        other => panic!("{metric} is not a gauge: {other:?}"),
    }
}

fn counter(scrape: &Scrape, metric: &str, pool: &str, label: Option<(&str, &str)>) -> f64 {
    counter_in(scrape, metric, ("pool", pool), label)
}

fn counter_in(
    scrape: &Scrape,
    metric: &str,
    pool: (&str, &str),
    label: Option<(&str, &str)>,
) -> f64 {
    match sample_in(scrape, metric, pool, label) {
        Value::Counter(v) => *v,
        other => panic!("{metric} is not a counter: {other:?}"),
    }
}

/// Checks a parsed histogram against its snapshot: the cumulative counts at
/// every one of the snapshot's fixed bounds, in order, `+Inf`, `_sum` and
/// `_count`.
fn check_histogram(scrape: &Scrape, metric: &str, pool: &str, snapshot: &HistogramSnapshot) {
    check_histogram_in(scrape, metric, ("pool", pool), snapshot);
}

fn check_histogram_in(
    scrape: &Scrape,
    metric: &str,
    pool: (&str, &str),
    snapshot: &HistogramSnapshot,
) {
    let Value::Histogram(buckets) = sample_in(scrape, metric, pool, None) else {
        panic!("{metric} is not a histogram");
    };
    // Every fixed bound, zero or not (this replaced an assertion that the
    // buckets were the fine histogram's non-empty ones).
    assert_eq!(
        buckets.len(),
        snapshot.cumulative_buckets.len() + 1,
        "{metric}"
    );
    for (parsed, &(bound, cumulative)) in buckets.iter().zip(&snapshot.cumulative_buckets) {
        assert_eq!(parsed.less_than, bound, "{metric}");
        assert_eq!(parsed.count, cumulative as f64, "{metric}");
    }
    let last = buckets.last().unwrap();
    assert_eq!(last.less_than, f64::INFINITY);
    assert_eq!(last.count, snapshot.count as f64);
    // The parser leaves _sum and _count untyped.
    let untyped = |suffix: &str| match sample_in(scrape, &format!("{metric}{suffix}"), pool, None) {
        Value::Untyped(v) => *v,
        other => panic!("{metric}{suffix}: {other:?}"),
    };
    assert_eq!(untyped("_sum"), snapshot.sum.as_secs_f64());
    assert_eq!(untyped("_count"), snapshot.count as f64);
}

/// Checks every family of `stats` in a parsed exposition.
fn check_exposition(scrape: &Scrape, stats: &Stats) {
    let pool = stats.pool.as_str();
    let (g, c) = (&stats.gauges, &stats.counters);
    let gauges = [
        ("slotpool_connections", g.total),
        ("slotpool_connections_active", g.in_use),
        ("slotpool_connections_idle", g.idle),
        ("slotpool_connections_pending", g.waiting),
        ("slotpool_connections_connecting", g.connecting),
        ("slotpool_connections_max", g.max),
        ("slotpool_connections_min", g.min_idle),
    ];
    for (name, want) in gauges {
        assert_eq!(gauge(scrape, name, pool), f64::from(want), "{name}");
    }
    let counters = [
        ("slotpool_connections_gets_total", c.gets),
        ("slotpool_connections_hits_total", c.hits),
        ("slotpool_connections_waited_total", c.waited),
        ("slotpool_connections_timeout_total", c.timeouts),
        ("slotpool_connections_no_idle_total", c.no_idle),
        ("slotpool_connections_created_total", c.created),
        (
            "slotpool_connections_connect_failures_total",
            c.connect_failures,
        ),
        ("slotpool_connections_validations_total", c.validations),
        (
            "slotpool_connections_validation_failures_total",
            c.validation_failures,
        ),
        (
            "slotpool_connections_validation_timeouts_total",
            c.validation_timeouts,
        ),
        ("slotpool_connections_leaked_total", c.leaks),
    ];
    for (name, want) in counters {
        assert_eq!(counter(scrape, name, pool, None), want as f64, "{name}");
    }
    let rejected = "slotpool_connections_rejected_total";
    assert_eq!(
        counter(scrape, rejected, pool, Some(("reason", "waiter_cap"))),
        c.rejected_waiter_cap as f64
    );
    assert_eq!(
        counter(scrape, rejected, pool, Some(("reason", "closed"))),
        c.rejected_closed as f64
    );
    assert_eq!(
        counter(scrape, rejected, pool, Some(("reason", "fail_fast"))),
        c.failed_fast as f64
    );
    for reason in CloseReason::ALL {
        let got = counter(
            scrape,
            "slotpool_connections_closed_total",
            pool,
            Some(("reason", reason.as_str())),
        );
        assert_eq!(got, c.closed(reason) as f64, "{reason:?}");
    }
    for callback in Callback::ALL {
        let got = counter(
            scrape,
            "slotpool_callback_panics_total",
            pool,
            Some(("callback", callback.as_str())),
        );
        assert_eq!(got, c.callback_panics(callback) as f64, "{callback:?}");
    }
    check_histogram(
        scrape,
        "slotpool_connections_acquire_seconds",
        pool,
        &stats.acquire_wait,
    );
    check_histogram(
        scrape,
        "slotpool_connections_usage_seconds",
        pool,
        &stats.usage,
    );
    check_histogram(
        scrape,
        "slotpool_connections_creation_seconds",
        pool,
        &stats.connect_time,
    );
}

/// The `# TYPE` lines of an exposition, name to type.
fn types(text: &str) -> HashMap<&str, &str> {
    let mut types = HashMap::new();
    for line in text.lines().filter(|line| line.starts_with("# TYPE ")) {
        let mut words = line.split(' ').skip(2);
        let (name, kind) = (words.next().unwrap(), words.next().unwrap());
        assert!(
            types.insert(name, kind).is_none(),
            "second TYPE line for {name}"
        );
    }
    types
}

#[test]
fn prometheus_text_parses_back_to_the_stats() {
    let (pool, _faults) = known_scenario();
    let stats = pool.stats();
    let text = stats.to_prometheus();
    let scrape = parse(&text);
    check_exposition(&scrape, &stats);

    // Every family has HELP and TYPE, and the types are the documented ones.
    let types = types(&text);
    // 22 families, and the callback panics and validation timeouts.
    assert_eq!(types.len(), 24, "{types:?}");
    for (name, kind) in &types {
        assert!(scrape.docs.contains_key(*name), "no HELP for {name}");
        let want = if name.ends_with("_seconds") {
            "histogram"
        } else if name.ends_with("_total") {
            "counter"
        } else {
            "gauge"
        };
        assert_eq!(*kind, want, "{name}");
    }
    // Every sample line is labelled with the pool.
    for line in text.lines().filter(|line| !line.starts_with('#')) {
        assert!(line.contains("{pool=\"orders\""), "{line}");
    }
    assert!(
        text.contains("slotpool_connections_timeout_total{pool=\"orders\"} 2\n"),
        "{text}"
    );
    assert!(
        text.contains("slotpool_connections_closed_total{pool=\"orders\",reason=\"broken\"} 1\n")
    );
    assert!(
        text.contains(
            "slotpool_connections_acquire_seconds_bucket{pool=\"orders\",le=\"+Inf\"} 5\n"
        )
    );
    assert!(text.contains("slotpool_connections_acquire_seconds_sum{pool=\"orders\"} 0.012\n"));

    // to_prometheus_into appends the same text.
    let mut appended = String::from("# prefix\n");
    stats.to_prometheus_into(&mut appended);
    assert_eq!(appended, format!("# prefix\n{text}"));
}

#[test]
fn several_pools_share_one_exposition() {
    let (pool, _faults) = known_scenario();
    let (manager, _other_faults) = TestManager::new();
    let other = Pool::builder()
        .pool_name("reports")
        .max_size(7)
        .build(manager)
        .unwrap();
    drop(other.get().unwrap());
    let both = [pool.stats(), other.stats()];
    let mut text = String::new();
    Stats::render_prometheus(&both, &mut text);
    assert_eq!(types(&text).len(), 24, "each family typed once");
    let scrape = parse(&text);
    check_exposition(&scrape, &both[0]);
    check_exposition(&scrape, &both[1]);
    // A family's samples stay together, under its TYPE line.
    let lines: Vec<_> = text.lines().collect();
    let at = lines
        .iter()
        .position(|l| *l == "# TYPE slotpool_connections_max gauge")
        .unwrap();
    assert_eq!(lines[at + 1], "slotpool_connections_max{pool=\"orders\"} 1");
    assert_eq!(
        lines[at + 2],
        "slotpool_connections_max{pool=\"reports\"} 7"
    );
    let mut none = String::new();
    Stats::render_prometheus(&[], &mut none);
    assert!(none.is_empty());
}

#[test]
fn label_values_are_escaped() {
    let (manager, _faults) = TestManager::new();
    let pool = Pool::builder().build(manager).unwrap();
    let mut stats = pool.stats();
    stats.pool = "a\\b\"c\nd".to_owned();
    let text = stats.to_prometheus();
    assert!(
        text.contains("slotpool_connections_max{pool=\"a\\\\b\\\"c\\nd\"} 10\n"),
        "{text}"
    );
    assert_eq!(
        text.lines().filter(|l| !l.starts_with('#')).count(),
        text.matches("{pool=").count()
    );
}

#[test]
fn empty_histograms_render_an_inf_bucket() {
    let (manager, _faults) = TestManager::new();
    let pool = Pool::builder().build(manager).unwrap();
    let text = pool.stats().to_prometheus();
    assert!(
        text.contains(
            "slotpool_connections_usage_seconds_bucket{pool=\"slotpool\",le=\"+Inf\"} 0\n"
        )
    );
    // prometheus-client writes floats with dtoa: an empty sum is `0.0`
    // (the hand-written text wrote `0`; both parse as zero).
    assert!(text.contains("slotpool_connections_usage_seconds_sum{pool=\"slotpool\"} 0.0\n"));
    assert!(text.contains("slotpool_connections_usage_seconds_count{pool=\"slotpool\"} 0\n"));
    // Every fixed bucket is there before anything was observed.
    assert!(text.contains(
        "slotpool_connections_usage_seconds_bucket{pool=\"slotpool\",le=\"0.0001\"} 0\n"
    ));
    assert_eq!(
        text.matches("slotpool_connections_usage_seconds_bucket{")
            .count(),
        LatencyBuckets::DEFAULT_BOUNDS.len() + 1
    );
    check_exposition(&parse(&text), &pool.stats());
}

// ------------------------------------------------- fixed histogram shape

/// Parses a float as the expositions write them (`+Inf` included).
fn float(text: &str) -> f64 {
    match text {
        "+Inf" => f64::INFINITY,
        _ => text
            .parse()
            .unwrap_or_else(|error| panic!("{text}: {error}")),
    }
}

/// The labels of a sample line (`name{k="v",...} value`), unescaped, as
/// written.
fn labels_of(line: &str) -> Vec<(String, String)> {
    let Some(open) = line.find('{') else {
        return Vec::new();
    };
    let mut labels = Vec::new();
    let mut chars = line[open + 1..].chars();
    loop {
        let key: String = chars.by_ref().take_while(|&ch| ch != '=').collect();
        if key.is_empty() || key.starts_with('}') {
            break;
        }
        assert_eq!(chars.next(), Some('"'), "{line}");
        let mut value = String::new();
        while let Some(ch) = chars.next() {
            match ch {
                '\\' => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(other) => value.push(other),
                    None => panic!("{line}"),
                },
                '"' => break,
                other => value.push(other),
            }
        }
        labels.push((key.trim_start_matches(',').to_owned(), value));
        if chars.as_str().starts_with('}') {
            break;
        }
    }
    labels
}

/// Histogram bucket series: name and labels but `le`, to the `le` bounds in
/// the order written with their counts.
type BucketSeries = BTreeMap<String, Vec<(f64, f64)>>;

/// Every histogram bucket series of an exposition.
fn bucket_series(text: &str) -> BucketSeries {
    let mut series = BucketSeries::new();
    for line in text.lines().filter(|line| !line.starts_with('#')) {
        let name = line.split(['{', ' ']).next().unwrap();
        if !name.ends_with("_bucket") {
            continue;
        }
        let mut labels = labels_of(line);
        let at = labels.iter().position(|(key, _)| key == "le").unwrap();
        let le = float(&labels.remove(at).1);
        labels.sort();
        let value = float(line.rsplit_once(' ').unwrap().1);
        series
            .entry(format!("{name}{labels:?}"))
            .or_default()
            .push((le, value));
    }
    series
}

/// The four expositions of one snapshot: Prometheus and OpenMetrics text,
/// each with HikariCP's and OpenTelemetry's names.
fn expositions(stats: &Stats) -> Vec<(&'static str, String)> {
    let pools = std::slice::from_ref(stats);
    let mut otel = String::new();
    Stats::render_prometheus_with(pools, MetricNames::OpenTelemetry, &mut otel);
    let mut otel_open = String::new();
    Stats::render_openmetrics_with(pools, MetricNames::OpenTelemetry, &mut otel_open);
    vec![
        ("prometheus", stats.to_prometheus()),
        ("openmetrics", stats.to_openmetrics()),
        ("prometheus, otel names", otel),
        ("openmetrics, otel names", otel_open),
    ]
}

/// Asserts `later` has exactly `earlier`'s bucket series, each with the same
/// `le` bounds in the same order, with counts no lower.
fn assert_same_shape(format: &str, earlier: &BucketSeries, later: &BucketSeries) {
    assert_eq!(
        earlier.keys().collect::<Vec<_>>(),
        later.keys().collect::<Vec<_>>(),
        "{format}: the same bucket series"
    );
    for (series, before) in earlier {
        let after = &later[series];
        let bounds = |buckets: &[(f64, f64)]| buckets.iter().map(|b| b.0).collect::<Vec<_>>();
        assert_eq!(bounds(before), bounds(after), "{format} {series}");
        for ((le, old), (_, new)) in before.iter().zip(after) {
            assert!(new >= old, "{format} {series} le={le}: {old} -> {new}");
        }
    }
}

#[test]
fn histograms_keep_their_shape_from_the_first_scrape() {
    let (pool, _faults, clock) = manual_pool(1);
    let mut default_le: Vec<f64> = LatencyBuckets::DEFAULT_BOUNDS.to_vec();
    default_le.push(f64::INFINITY);
    let scrape = |stats: &Stats| -> Vec<(&'static str, BucketSeries)> {
        expositions(stats)
            .into_iter()
            .map(|(format, text)| (format, bucket_series(&text)))
            .collect()
    };

    // Before anything was observed: every bound of the three histograms.
    let first = scrape(&pool.stats());
    for (format, series) in &first {
        assert_eq!(series.len(), 3, "{format}: {series:?}");
        for (name, buckets) in series {
            let le: Vec<f64> = buckets.iter().map(|b| b.0).collect();
            assert_eq!(le, default_le, "{format} {name}");
            assert!(buckets.iter().all(|b| b.1 == 0.0), "{format} {name}");
        }
    }

    // Waits (and holds) in new ranges: 50 µs, 3 ms, 700 ms.
    for after in [Duration::from_micros(50), 3 * MS, 700 * MS] {
        assert!(wait_behind_holder(
            &pool,
            &clock,
            Duration::from_secs(60),
            after
        ));
    }
    let second = scrape(&pool.stats());
    // And one beyond the last bound, which only `+Inf` counts.
    assert!(wait_behind_holder(
        &pool,
        &clock,
        Duration::from_secs(60),
        Duration::from_secs(20)
    ));
    let third = scrape(&pool.stats());

    for ((format, a), ((_, b), (_, c))) in first.iter().zip(second.iter().zip(&third)) {
        assert_same_shape(format, a, b);
        assert_same_shape(format, b, c);
        // The waits moved the acquire histogram: the first one (a cold get,
        // 0 ns) and the 50 µs one at 100 µs, all four by 1 s; the 20 s one
        // only in +Inf.
        let acquire = |series: &BucketSeries| {
            let found: Vec<_> = series
                .iter()
                .filter(|(name, _)| name.contains("acquire") || name.contains("wait_time"))
                .map(|(_, buckets)| buckets.clone())
                .collect();
            assert_eq!(found.len(), 1, "{format}");
            found.into_iter().next().unwrap()
        };
        let count = |buckets: &[(f64, f64)], le: f64| buckets.iter().find(|b| b.0 == le).unwrap().1;
        let (b, c) = (acquire(b), acquire(c));
        assert_eq!(count(&b, 0.0001), 2.0, "{format}");
        assert_eq!(count(&b, 1.0), 4.0, "{format}");
        assert_eq!(count(&b, f64::INFINITY), 4.0, "{format}");
        assert_eq!(count(&c, 10.0), 4.0, "{format}");
        assert_eq!(count(&c, f64::INFINITY), 5.0, "{format}");
    }
}

#[test]
fn default_bounds_appear_exactly() {
    assert_eq!(
        LatencyBuckets::DEFAULT_BOUNDS,
        [
            0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
            2.5, 5.0, 10.0
        ]
    );
    assert_eq!(
        LatencyBuckets::default().bounds(),
        &LatencyBuckets::DEFAULT_BOUNDS
    );
    let (manager, _faults) = TestManager::new();
    let pool = Pool::builder().pool_name("orders").build(manager).unwrap();
    drop(pool.get().unwrap());
    let stats = pool.stats();
    for histogram in [&stats.acquire_wait, &stats.usage, &stats.connect_time] {
        let bounds: Vec<f64> = histogram.cumulative_buckets.iter().map(|b| b.0).collect();
        assert_eq!(bounds, LatencyBuckets::DEFAULT_BOUNDS);
    }
    // As written in the Prometheus text (as Go's client writes them).
    let text = stats.to_prometheus();
    for family in ["acquire", "usage", "creation"] {
        let prefix = format!("slotpool_connections_{family}_seconds_bucket{{");
        let le: Vec<String> = text
            .lines()
            .filter(|line| line.starts_with(&prefix))
            .map(|line| labels_of(line).pop().unwrap().1)
            .collect();
        assert_eq!(
            le,
            [
                "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05",
                "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"
            ],
            "{family}"
        );
    }
}

#[test]
fn custom_bounds_are_validated_and_rendered_exactly() {
    let custom = LatencyBuckets::new([0.002, 0.02, 0.2, 2.0]).unwrap();
    assert_eq!(custom.bounds(), &[0.002, 0.02, 0.2, 2.0]);
    assert_eq!(
        LatencyBuckets::from_durations([2 * MS, 20 * MS, 200 * MS, Duration::from_secs(2)])
            .unwrap(),
        custom
    );
    // From configuration (serde), validated the same way.
    let parsed: LatencyBuckets = serde_json::from_str("[0.002, 0.02, 0.2, 2.0]").unwrap();
    assert_eq!(parsed, custom);
    assert_eq!(
        serde_json::to_string(&custom).unwrap(),
        "[0.002,0.02,0.2,2.0]"
    );
    let error = serde_json::from_str::<LatencyBuckets>("[0.02, 0.002]").unwrap_err();
    assert!(
        error.to_string().contains("must be greater than"),
        "{error}"
    );

    // A snapshot carries the bounds it was recorded with; they are written
    // as they are, every one, then +Inf.
    let (manager, _faults) = TestManager::new();
    let pool = Pool::builder().pool_name("orders").build(manager).unwrap();
    let mut stats = pool.stats();
    stats.usage.cumulative_buckets = custom.bounds().iter().map(|&b| (b, 0)).collect();
    let text = stats.to_prometheus();
    let le: Vec<String> = text
        .lines()
        .filter(|line| line.starts_with("slotpool_connections_usage_seconds_bucket{"))
        .map(|line| labels_of(line).pop().unwrap().1)
        .collect();
    assert_eq!(le, ["0.002", "0.02", "0.2", "2", "+Inf"]);
    check_exposition(&parse(&text), &stats);
}

#[test]
fn invalid_bounds_name_the_rule_they_break() {
    let error = |bounds: &[f64]| LatencyBuckets::new(bounds.iter().copied()).unwrap_err();
    let cases: [(&[f64], &str); 8] = [
        (&[], "non_empty"),
        (&[0.001; 65], "at_most_64"),
        (&[0.001, f64::NAN], "finite"),
        (&[0.001, f64::INFINITY], "finite"),
        (&[0.0], "positive"),
        (&[-0.5], "positive"),
        (&[1e-12], "nanosecond_range"),
        (&[0.1, 0.05], "increasing"),
    ];
    for (bounds, rule) in cases {
        assert_eq!(error(bounds).rule(), rule, "{bounds:?}");
    }
    assert_eq!(error(&[]), LatencyBucketsError::Empty);
    assert_eq!(
        error(&[0.1, 0.1]),
        LatencyBucketsError::NotIncreasing {
            index: 1,
            bound: 0.1,
            previous: 0.1
        }
    );
    assert!(matches!(
        error(&[0.1, -1.0]),
        LatencyBucketsError::NotPositive { index: 1, .. }
    ));
    assert!(matches!(
        error(&[0.001; 65]),
        LatencyBucketsError::TooMany { count: 65 }
    ));
    let message = error(&[0.5, 0.25]).to_string();
    assert!(
        message.contains("bound #1 (0.25) must be greater than the one before it (0.5)"),
        "{message}"
    );
    let error: Box<dyn std::error::Error> = Box::new(error(&[f64::NAN]));
    assert!(error.to_string().contains("must be finite"), "{error}");
    // At the limit: 64 increasing bounds are accepted.
    let many: Vec<f64> = (1..=64).map(|i| f64::from(i) * 0.01).collect();
    assert_eq!(LatencyBuckets::new(many).unwrap().bounds().len(), 64);
}

// ------------------------------------------------------------ openmetrics

/// Checks an OpenMetrics text exposition line by line and returns its
/// families (name to type): it ends with `# EOF` and has nothing after it;
/// each family has one `# HELP` and one `# TYPE` before its samples, and its
/// samples follow together; a counter family is named without `_total` and
/// its samples with it; a gauge's samples carry the family's name; a
/// histogram has only `_bucket`, `_sum` and `_count` samples, ascending `le`
/// ending in `+Inf` equal to `_count`; a `# UNIT` line matches the name's
/// suffix; every value parses.
fn check_openmetrics(text: &str) -> HashMap<String, String> {
    let body = text
        .strip_suffix("# EOF\n")
        .unwrap_or_else(|| panic!("no final # EOF: {text}"));
    assert!(!body.contains("# EOF"), "# EOF before the end");
    let mut types: HashMap<String, String> = HashMap::new();
    let mut helped = HashSet::new();
    let mut current: Option<(String, String)> = None;
    let mut finished = HashSet::new();
    // Histogram series (name and labels but le): the +Inf bucket, _count,
    // and the last le seen.
    let mut inf: HashMap<String, f64> = HashMap::new();
    let mut counts: HashMap<String, f64> = HashMap::new();
    let mut last_le: HashMap<String, f64> = HashMap::new();
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap().to_owned();
            if let Some((family, _)) = current.take() {
                finished.insert(family);
            }
            assert!(!finished.contains(&name), "{name} split in two");
            assert!(helped.insert(name.clone()), "second HELP for {name}");
            current = Some((name, String::new()));
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            let (family, current_kind) = current.as_mut().expect("TYPE before HELP");
            assert_eq!(family, name, "TYPE of another family than its HELP");
            assert!(current_kind.is_empty(), "second TYPE for {name}");
            match kind {
                "counter" => assert!(!name.ends_with("_total"), "{name}"),
                "gauge" | "histogram" => {}
                other => panic!("{name}: unexpected type {other}"),
            }
            *current_kind = kind.to_owned();
            types.insert(name.to_owned(), kind.to_owned());
        } else if let Some(rest) = line.strip_prefix("# UNIT ") {
            let (name, unit) = rest.split_once(' ').unwrap();
            let (family, _) = current.as_ref().expect("UNIT before HELP");
            assert_eq!(family, name);
            assert!(name.ends_with(&format!("_{unit}")), "{line}");
        } else {
            assert!(!line.starts_with('#'), "unknown comment: {line}");
            let (family, kind) = current.as_ref().expect("sample before any family");
            assert!(!kind.is_empty(), "sample before TYPE: {line}");
            let (series, value) = line.rsplit_once(' ').unwrap();
            let value = float(value);
            let name = series.split('{').next().unwrap();
            let suffix = name
                .strip_prefix(family.as_str())
                .unwrap_or_else(|| panic!("{line} outside its family {family}"));
            let mut labels = labels_of(line);
            match kind.as_str() {
                "counter" => assert_eq!(suffix, "_total", "{line}"),
                "gauge" => assert_eq!(suffix, "", "{line}"),
                _ => {
                    let le = labels
                        .iter()
                        .position(|(key, _)| key == "le")
                        .map(|at| float(&labels.remove(at).1));
                    labels.sort();
                    let key = format!("{family}{labels:?}");
                    match (suffix, le) {
                        ("_bucket", Some(le)) => {
                            let previous = last_le.insert(key.clone(), le);
                            assert!(previous.is_none_or(|p| p < le), "{line}");
                            if le == f64::INFINITY {
                                inf.insert(key, value);
                            }
                        }
                        ("_sum", None) => {}
                        ("_count", None) => {
                            counts.insert(key, value);
                        }
                        _ => panic!("not a histogram sample: {line}"),
                    }
                }
            }
        }
    }
    assert_eq!(helped.len(), types.len(), "a family without TYPE");
    assert_eq!(inf.len(), counts.len(), "histograms without +Inf or _count");
    for (series, count) in &counts {
        assert_eq!(inf.get(series), Some(count), "{series}: +Inf != _count");
    }
    types
}

#[test]
fn openmetrics_text_is_well_formed() {
    let (pool, _faults) = known_scenario();
    let (manager, _other_faults) = TestManager::new();
    let other = Pool::builder()
        .pool_name("reports")
        .max_size(7)
        .build(manager)
        .unwrap();
    drop(other.get().unwrap());
    let both = [pool.stats(), other.stats()];

    let single = both[0].to_openmetrics();
    let types = check_openmetrics(&single);
    assert_eq!(types.len(), 24, "{types:?}");
    assert_eq!(types["slotpool_connections_active"], "gauge");
    assert_eq!(types["slotpool_connections_gets"], "counter");
    assert_eq!(types["slotpool_callback_panics"], "counter");
    assert_eq!(types["slotpool_connections_acquire_seconds"], "histogram");
    assert!(single.contains("slotpool_connections_timeout_total{pool=\"orders\"} 2\n"));
    assert!(single.contains("# UNIT slotpool_connections_acquire_seconds seconds\n"));
    assert!(
        single.contains(
            "slotpool_connections_acquire_seconds_bucket{le=\"0.005\",pool=\"orders\"} 5\n"
        )
    );

    let mut text = String::new();
    Stats::render_openmetrics(&both, &mut text);
    assert_eq!(check_openmetrics(&text), types, "each family once");
    assert!(text.contains("slotpool_connections_max{pool=\"reports\"} 7\n"));

    let mut otel = String::new();
    Stats::render_openmetrics_with(&both, MetricNames::OpenTelemetry, &mut otel);
    let otel_types = check_openmetrics(&otel);
    assert_eq!(otel_types["db_client_connection_timeouts"], "counter");
    assert_eq!(otel_types["db_client_connection_count"], "gauge");
    assert_eq!(
        otel_types["db_client_connection_wait_time_seconds"],
        "histogram"
    );
    assert!(otel.contains(
        "db_client_connection_timeouts_total{db_client_connection_pool_name=\"orders\"} 2\n"
    ));

    let mut none = String::new();
    Stats::render_openmetrics(&[], &mut none);
    assert_eq!(none, "# EOF\n");
}

// ---------------------------------------------------------- OpenTelemetry

#[test]
fn open_telemetry_names_carry_the_conventions_labels_and_types() {
    let (pool, _faults) = known_scenario();
    let held = pool.get().unwrap();
    let stats = pool.stats();
    drop(held);
    let (g, c) = (&stats.gauges, &stats.counters);
    assert_eq!((g.idle, g.in_use), (0, 1));
    let mut text = String::new();
    Stats::render_prometheus_with(
        std::slice::from_ref(&stats),
        MetricNames::OpenTelemetry,
        &mut text,
    );
    let scrape = parse(&text);
    let pool = ("db_client_connection_pool_name", "orders");
    let state = "db_client_connection_state";

    let count = "db_client_connection_count";
    assert_eq!(gauge_in(&scrape, count, pool, Some((state, "idle"))), 0.0);
    assert_eq!(gauge_in(&scrape, count, pool, Some((state, "used"))), 1.0);
    let gauges = [
        ("db_client_connection_idle_max", g.max),
        ("db_client_connection_idle_min", g.min_idle),
        ("db_client_connection_max", g.max),
        ("db_client_connection_pending_requests", g.waiting),
        ("slotpool_connection_connecting", g.connecting),
    ];
    for (name, want) in gauges {
        assert_eq!(
            gauge_in(&scrape, name, pool, None),
            f64::from(want),
            "{name}"
        );
    }
    assert_eq!(
        counter_in(&scrape, "db_client_connection_timeouts_total", pool, None),
        2.0
    );
    check_histogram_in(
        &scrape,
        "db_client_connection_create_time_seconds",
        pool,
        &stats.connect_time,
    );
    check_histogram_in(
        &scrape,
        "db_client_connection_wait_time_seconds",
        pool,
        &stats.acquire_wait,
    );
    check_histogram_in(
        &scrape,
        "db_client_connection_use_time_seconds",
        pool,
        &stats.usage,
    );
    // What the conventions do not cover, under slotpool's namespace.
    assert_eq!(
        counter_in(&scrape, "slotpool_connection_gets_total", pool, None),
        c.gets as f64
    );
    assert_eq!(
        counter_in(
            &scrape,
            "slotpool_connection_closed_total",
            pool,
            Some(("slotpool_reason", "broken"))
        ),
        1.0
    );
    assert_eq!(
        counter_in(
            &scrape,
            "slotpool_callback_panics_total",
            pool,
            Some(("slotpool_callback", "is_valid"))
        ),
        0.0
    );

    let types = types(&text);
    let want = [
        ("db_client_connection_count", "gauge"),
        ("db_client_connection_idle_max", "gauge"),
        ("db_client_connection_idle_min", "gauge"),
        ("db_client_connection_max", "gauge"),
        ("db_client_connection_pending_requests", "gauge"),
        ("db_client_connection_timeouts_total", "counter"),
        ("db_client_connection_create_time_seconds", "histogram"),
        ("db_client_connection_wait_time_seconds", "histogram"),
        ("db_client_connection_use_time_seconds", "histogram"),
    ];
    for (name, kind) in want {
        assert_eq!(types.get(name), Some(&kind), "{name}");
    }
    // Every sample names its pool with the conventions' attribute, first;
    // none of HikariCP's names or labels is left.
    for line in text.lines().filter(|line| !line.starts_with('#')) {
        assert!(
            line.contains("{db_client_connection_pool_name=\"orders\""),
            "{line}"
        );
    }
    assert!(
        scrape
            .samples
            .iter()
            .all(|s| s.labels.get("pool").is_none())
    );
    assert!(!text.contains("slotpool_connections"), "{text}");
}

// ------------------------------------------------------------ new counters

#[test]
fn callback_panics_and_validation_timeouts_render() {
    let (pool, _faults, _clock) = manual_pool(2);
    hits(&pool, 3);
    let stats = pool.stats();
    assert_eq!(stats.counters.gets, 3);
    // Before anything panicked: every callback, at zero.
    let text = stats.to_prometheus();
    for callback in Callback::ALL {
        let line = format!(
            "slotpool_callback_panics_total{{pool=\"orders\",callback=\"{}\"}} 0\n",
            callback.as_str()
        );
        assert!(text.contains(&line), "{line}");
    }
    assert!(text.contains("slotpool_connections_validation_timeouts_total{pool=\"orders\"} 0\n"));

    // A snapshot with panics and abandoned checks recorded (set on the
    // snapshot, as the leaks rule's test does).
    let mut panics = stats.counters.callback_panics.clone();
    for (callback, n) in &mut panics {
        *n = match callback {
            Callback::Reset => 3,
            Callback::Background => 1,
            _ => 0,
        };
    }
    let recorded = Stats {
        counters: Counters {
            callback_panics: panics,
            validation_timeouts: 2,
            ..stats.counters.clone()
        },
        ..stats.clone()
    };
    assert_eq!(recorded.counters.callback_panics(Callback::Reset), 3);
    assert_eq!(recorded.counters.callback_panics(Callback::Connect), 0);

    let text = recorded.to_prometheus();
    check_exposition(&parse(&text), &recorded);
    assert!(
        text.contains("slotpool_callback_panics_total{pool=\"orders\",callback=\"reset\"} 3\n")
    );
    assert!(text.contains("slotpool_connections_validation_timeouts_total{pool=\"orders\"} 2\n"));

    let open = recorded.to_openmetrics();
    check_openmetrics(&open);
    assert!(
        open.contains(
            "slotpool_callback_panics_total{pool=\"orders\",callback=\"background\"} 1\n"
        )
    );

    let mut otel = String::new();
    Stats::render_prometheus_with(
        std::slice::from_ref(&recorded),
        MetricNames::OpenTelemetry,
        &mut otel,
    );
    let scrape = parse(&otel);
    let pool_label = ("db_client_connection_pool_name", "orders");
    assert_eq!(
        counter_in(
            &scrape,
            "slotpool_callback_panics_total",
            pool_label,
            Some(("slotpool_callback", "reset"))
        ),
        3.0
    );
    assert_eq!(
        counter_in(
            &scrape,
            "slotpool_connection_validation_timeouts_total",
            pool_label,
            None
        ),
        2.0
    );

    let json = serde_json::to_value(&recorded).unwrap();
    assert_eq!(json["counters"]["callback_panics"]["reset"], 3);
    assert_eq!(json["counters"]["callback_panics"]["background"], 1);
    assert_eq!(json["counters"]["validation_timeouts"], 2);
    // The health rules read neither, and the gets add up as before.
    fired(&recorded, &[]);
}

// ------------------------------------------------------------------- JSON

#[test]
fn stats_and_health_serialise_to_json() {
    let (pool, _faults) = known_scenario();
    let stats = pool.stats();
    let json: serde_json::Value = serde_json::to_value(&stats).unwrap();
    assert_eq!(json["pool"], "orders");
    assert_eq!(json["gauges"]["max"], 1);
    assert_eq!(json["counters"]["gets"], 20);
    assert_eq!(json["counters"]["timeouts"], 2);
    let closed = json["counters"]["closed"].as_object().unwrap();
    assert_eq!(closed.len(), CloseReason::ALL.len());
    assert_eq!(closed["broken"], 1, "{closed:?}");
    assert_eq!(json["acquire_wait"]["count"], 5);
    // Durations are seconds, as dashboards expect.
    let p99 = json["usage"]["p99"].as_f64().unwrap();
    assert!(p99 > 0.0 && p99 < 1.0, "{p99}");
    // Panics by callback, as an object; the fixed buckets as [bound, count].
    let panics = json["counters"]["callback_panics"].as_object().unwrap();
    assert_eq!(panics.len(), Callback::ALL.len());
    assert_eq!(panics["background"], 0);
    assert_eq!(json["counters"]["validation_timeouts"], 0);
    let buckets = json["acquire_wait"]["cumulative_buckets"]
        .as_array()
        .unwrap();
    assert_eq!(buckets.len(), LatencyBuckets::DEFAULT_BOUNDS.len());
    // Acquire waits 0, 4, 4, 4, 0 ms: two at or below 100 µs, five at 5 ms.
    assert_eq!(buckets[0], serde_json::json!([0.0001, 2]));
    assert_eq!(buckets[5], serde_json::json!([0.005, 5]));

    let report = pool.health();
    let json: serde_json::Value = serde_json::to_value(&report).unwrap();
    assert_eq!(json["pool"], "orders");
    assert_eq!(json["status"], report.status.as_str());
    assert_eq!(json["status"], "unhealthy", "{report}");
    let findings = json["findings"].as_array().unwrap();
    assert!(!findings.is_empty());
    for finding in findings {
        for key in ["severity", "rule", "reason", "recommendation"] {
            assert!(finding[key].is_string(), "{key}: {finding}");
        }
    }
    assert_eq!(json["summary"]["gets"], 20);
    assert_eq!(json["summary"]["max_size"], 1);

    // Thresholds round-trip, and missing fields take their defaults.
    let thresholds = HealthThresholds {
        min_gets: 7,
        ..HealthThresholds::default()
    };
    let text = serde_json::to_string(&thresholds).unwrap();
    assert_eq!(
        serde_json::from_str::<HealthThresholds>(&text).unwrap(),
        thresholds
    );
    let partial: HealthThresholds = serde_json::from_str(r#"{"min_hit_ratio": 0.5}"#).unwrap();
    assert_eq!(partial.min_hit_ratio, 0.5);
    assert_eq!(partial.max_p99_acquire_wait, Duration::from_millis(100));
}

// ----------------------------------------------------------------- health

const RULES: [&str; 8] = [
    "connect_failures",
    "acquire_timeouts",
    "saturated",
    "frequent_waits",
    "low_hit_ratio",
    "slow_acquire",
    "leaks",
    "validation_failures",
];

/// Asserts exactly `rules` fired in `stats`' default-threshold report, and
/// returns it.
fn fired(stats: &Stats, rules: &[&str]) -> slotpool::stats::HealthReport {
    let report = stats.health(&HealthThresholds::default());
    for rule in RULES {
        assert_eq!(
            report.finding(rule).is_some(),
            rules.contains(&rule),
            "rule {rule}: {report}"
        );
    }
    report
}

/// `n` gets served at once, held for no time.
fn hits(pool: &Pool<TestManager>, n: usize) {
    for _ in 0..n {
        drop(pool.get().unwrap());
    }
}

#[test]
fn healthy_pool_fires_no_rule() {
    let (pool, _faults, _clock) = manual_pool(4);
    hits(&pool, 200);
    let report = fired(&pool.stats(), &[]);
    assert_eq!(report.status, HealthStatus::Healthy);
    assert!(report.is_healthy());
    assert_eq!(pool.health(), report);
    assert_eq!(report.to_string(), "pool 'orders': healthy");
}

#[test]
fn low_hit_ratio_recommends_min_idle() {
    // Every connection breaks, so every get waits for a new one.
    let (pool, _faults, _clock) = manual_pool(4);
    for _ in 0..100 {
        pool.get().unwrap().mark_broken();
    }
    let stats = pool.stats();
    assert_eq!((stats.counters.hits, stats.counters.waited), (0, 100));
    let report = fired(&stats, &["low_hit_ratio"]);
    assert_eq!(report.status, HealthStatus::Degraded);
    let finding = report.finding("low_hit_ratio").unwrap();
    assert_eq!(finding.severity, HealthStatus::Degraded);
    assert!(
        finding.reason.contains("0 of 100 gets"),
        "{}",
        finding.reason
    );
    assert!(
        finding
            .recommendation
            .contains("raise `min_idle` from 0 to 1"),
        "{}",
        finding.recommendation
    );
    // Judged only after min_gets gets.
    let lenient = HealthThresholds {
        min_gets: 101,
        ..HealthThresholds::default()
    };
    assert!(stats.health(&lenient).is_healthy());
}

#[test]
fn frequent_waits_recommend_max_size_with_the_sizing_rule() {
    let (pool, _faults, clock) = manual_pool(1);
    for _ in 0..60 {
        assert!(wait_behind_holder(
            &pool,
            &clock,
            Duration::from_secs(1),
            Duration::ZERO
        ));
    }
    let report = fired(&pool.stats(), &["frequent_waits"]);
    let finding = report.finding("frequent_waits").unwrap();
    assert!(
        finding.recommendation.contains("raise `max_size` (now 1)"),
        "{}",
        finding.recommendation
    );
    assert!(
        finding
            .recommendation
            .contains("connections = (cores × 2) + effective spindles"),
        "{}",
        finding.recommendation
    );
    let cores = thread::available_parallelism().unwrap().get();
    assert!(
        finding
            .recommendation
            .contains(&format!("this machine has {cores} cores"))
    );
    assert_eq!(report.summary.cores, cores);
}

#[test]
fn slow_acquire_judges_the_p99_over_served_gets() {
    let (pool, _faults, clock) = manual_pool(1);
    hits(&pool, 100);
    // Two gets of 104 wait 200 ms: beyond the p99 (the other 102 waited 0).
    for _ in 0..2 {
        assert!(wait_behind_holder(
            &pool,
            &clock,
            Duration::from_secs(1),
            200 * MS
        ));
    }
    let report = fired(&pool.stats(), &["slow_acquire"]);
    within_bucket(
        Duration::from_secs_f64(report.summary.p99_acquire_wait_ms / 1e3),
        200 * MS,
    );
    assert!(
        report
            .finding("slow_acquire")
            .unwrap()
            .reason
            .contains("threshold 100.0 ms")
    );
    // A higher threshold is met.
    let lenient = HealthThresholds {
        max_p99_acquire_wait: Duration::from_millis(250),
        ..HealthThresholds::default()
    };
    assert!(pool.stats().health(&lenient).is_healthy());
}

#[test]
fn timeouts_degrade_then_make_unhealthy() {
    let (pool, _faults, clock) = manual_pool(1);
    hits(&pool, 60);
    assert!(!wait_behind_holder(&pool, &clock, 10 * MS, 10 * MS));
    // 1 of 62 gets timed out: 1.6% > 1%.
    let report = fired(&pool.stats(), &["acquire_timeouts"]);
    assert_eq!(report.status, HealthStatus::Degraded);
    assert!(
        report.findings[0].reason.contains("1.6% (threshold 1.0%)"),
        "{report}"
    );
    let finding = report.finding("acquire_timeouts").unwrap();
    assert!(finding.recommendation.contains("raise `max_size`"));
    assert!(
        finding
            .recommendation
            .contains("(cores × 2) + effective spindles")
    );
    for _ in 0..3 {
        assert!(!wait_behind_holder(&pool, &clock, 10 * MS, 10 * MS));
    }
    // 4 of 68: 5.9% > 5%.
    let report = fired(&pool.stats(), &["acquire_timeouts"]);
    assert_eq!(report.status, HealthStatus::Unhealthy);
    assert_eq!(report.findings[0].severity, HealthStatus::Unhealthy);
    assert!(
        report.findings[0].reason.contains("5.9% (threshold 5.0%)"),
        "{report}"
    );
}

#[test]
fn saturation_is_judged_now() {
    let (pool, _faults, clock) = manual_pool(1);
    hits(&pool, 1);
    let held = pool.get().unwrap();
    thread::scope(|scope| {
        let waiter = scope.spawn(|| pool.get().map(drop));
        eventually("waiter queued", LIMIT, || pool.state().waiting == 1);
        let stats = pool.stats();
        assert_eq!(stats.utilisation, 1.0);
        let report = fired(&stats, &["saturated"]);
        assert!(
            report
                .finding("saturated")
                .unwrap()
                .reason
                .contains("1 callers are waiting")
        );
        clock.advance(MS);
        drop(held);
        waiter.join().unwrap().unwrap();
    });
    fired(&pool.stats(), &[]);
}

#[test]
fn connect_failures_point_at_the_database() {
    // Down: nothing open, connects fail.
    let (manager, faults) = TestManager::new();
    faults.down.store(true, Ordering::SeqCst);
    let pool = Pool::builder()
        .max_size(2)
        .connect_backoff_initial(Duration::from_millis(1))
        .connect_backoff_max(Duration::from_millis(5))
        .build(manager)
        .unwrap();
    // The first get times out (or fails fast once `fail_fast_after`
    // failures piled up while it waited); later ones fail fast.
    for _ in 0..2 {
        let error = pool.get_timeout(Duration::from_millis(100)).unwrap_err();
        assert!(
            error.is_timeout() || matches!(error, Error::Connect { .. }),
            "{error}"
        );
    }
    let stats = pool.stats();
    assert_eq!(stats.counters.timeouts + stats.counters.failed_fast, 2);
    assert!(stats.counters.connect_failures >= 1);
    let report = fired(&stats, &["connect_failures", "acquire_timeouts"]);
    assert_eq!(report.status, HealthStatus::Unhealthy);
    let finding = report.finding("connect_failures").unwrap();
    assert_eq!(finding.severity, HealthStatus::Unhealthy);
    assert!(
        finding.reason.starts_with("no connection is open"),
        "{}",
        finding.reason
    );
    assert!(finding.recommendation.starts_with("check the database"));
    let timeouts = report.finding("acquire_timeouts").unwrap();
    assert!(
        timeouts.reason.contains("connects fail"),
        "{}",
        timeouts.reason
    );

    // Flaky: one failure in two attempts, but a connection is open.
    let (manager, faults) = TestManager::new();
    faults.fail_next.store(1, Ordering::SeqCst);
    let pool = Pool::builder()
        .max_size(2)
        .connect_backoff_initial(Duration::from_millis(1))
        .build(manager)
        .unwrap();
    drop(pool.get_timeout(LIMIT).unwrap());
    let report = fired(&pool.stats(), &["connect_failures"]);
    assert_eq!(report.status, HealthStatus::Degraded);
    assert!(
        report.findings[0]
            .reason
            .contains("1 of 2 connect attempts failed")
    );
}

#[test]
fn validation_failures_recommend_keepalive() {
    let (pool, faults, clock) = manual_pool(1);
    hits(&pool, 1);
    faults.invalid.store(true, Ordering::SeqCst);
    clock.advance(Duration::from_millis(600)); // past the validation window
    drop(pool.get().unwrap()); // the invalid one is replaced within the get
    let stats = pool.stats();
    assert_eq!(
        (
            stats.counters.validations,
            stats.counters.validation_failures
        ),
        (1, 1)
    );
    assert_eq!(stats.counters.closed(CloseReason::Invalid), 1);
    let report = fired(&stats, &["validation_failures"]);
    assert!(
        report.findings[0]
            .recommendation
            .contains("keepalive_interval")
    );
}

#[test]
fn leaks_name_the_threshold_and_where_to_look() {
    // Judged on a snapshot: a real pool's, with leaks recorded.
    let (pool, _faults, _clock) = manual_pool(2);
    hits(&pool, 10);
    let stats = pool.stats();
    fired(&stats, &[]);
    let leaky = Stats {
        counters: Counters {
            leaks: 3,
            ..stats.counters.clone()
        },
        ..stats.clone()
    };
    let report = fired(&leaky, &["leaks"]);
    let finding = report.finding("leaks").unwrap();
    assert!(
        finding
            .reason
            .starts_with("3 connections were held longer than `leak_detection_threshold`")
    );
    assert!(finding.recommendation.contains("checkout location"));
    assert!(finding.recommendation.contains("leak_detection_threshold"));
    // The same configuration, via PoolConfig, is what the text refers to.
    assert!(PoolConfig::default().leak_detection_threshold.is_none());
}

/// Prints a sample of both renderings (`--nocapture`), for the README.
#[test]
fn sample_output() {
    let (pool, _faults) = known_scenario();
    let stats = pool.stats();
    let text = stats.to_prometheus();
    let report = pool.health();
    println!("{text}");
    println!("{}", serde_json::to_string_pretty(&report).unwrap());
    println!("{report}");
}

// ---------------------------------------------------------------- metrics

#[cfg(feature = "metrics")]
#[test]
fn metrics_facade_publishes_the_same_figures() {
    use metrics_util::MetricKind;
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    let (pool, _faults) = known_scenario();
    let stats = pool.stats();
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || stats.publish_metrics());
    // (kind, name, labels besides `pool`) -> value.
    type Seen = HashMap<(MetricKind, String, Vec<(String, String)>), DebugValue>;
    let mut seen = Seen::new();
    for (key, _unit, _description, value) in snapshotter.snapshot().into_vec() {
        let (kind, key) = key.into_parts();
        let labels: Vec<(String, String)> = key
            .labels()
            .map(|label| (label.key().to_owned(), label.value().to_owned()))
            .collect();
        assert_eq!(labels[0], ("pool".to_owned(), "orders".to_owned()));
        seen.insert((kind, key.name().to_owned(), labels[1..].to_vec()), value);
    }
    let get = |kind, name: &str, extra: &[(&str, &str)]| {
        let extra = extra
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        seen.get(&(kind, name.to_owned(), extra))
            .unwrap_or_else(|| panic!("{kind:?} {name} missing"))
    };
    let gauge = |name: &str, extra: &[(&str, &str)]| match get(MetricKind::Gauge, name, extra) {
        DebugValue::Gauge(v) => v.into_inner(),
        other => panic!("{name}: {other:?}"),
    };
    let counter = |name: &str, extra: &[(&str, &str)]| match get(MetricKind::Counter, name, extra) {
        DebugValue::Counter(v) => *v,
        other => panic!("{name}: {other:?}"),
    };
    let (g, c) = (&stats.gauges, &stats.counters);
    assert_eq!(gauge("slotpool_connections", &[]), f64::from(g.total));
    assert_eq!(gauge("slotpool_connections_idle", &[]), f64::from(g.idle));
    assert_eq!(gauge("slotpool_connections_max", &[]), f64::from(g.max));
    assert_eq!(counter("slotpool_connections_gets_total", &[]), c.gets);
    assert_eq!(
        counter("slotpool_connections_timeout_total", &[]),
        c.timeouts
    );
    assert_eq!(
        counter("slotpool_connections_created_total", &[]),
        c.created
    );
    assert_eq!(
        counter(
            "slotpool_connections_rejected_total",
            &[("reason", "closed")]
        ),
        0
    );
    for reason in CloseReason::ALL {
        let got = counter(
            "slotpool_connections_closed_total",
            &[("reason", reason.as_str())],
        );
        assert_eq!(got, c.closed(reason), "{reason:?}");
    }
    let acquire = "slotpool_connections_acquire_seconds";
    assert_eq!(
        gauge(acquire, &[("quantile", "0.99")]),
        stats.acquire_wait.p99.as_secs_f64()
    );
    assert_eq!(
        gauge(acquire, &[("quantile", "0.5")]),
        stats.acquire_wait.p50.as_secs_f64()
    );
    assert_eq!(gauge(&format!("{acquire}_sum"), &[]), 0.012);
    assert_eq!(counter(&format!("{acquire}_count"), &[]), 5);
    assert_eq!(gauge("slotpool_connections_usage_seconds_max", &[]), 0.05);
    // Publishing again after more gets moves the counters to the new totals.
    hits(&pool, 3);
    metrics::with_local_recorder(&recorder, || pool.stats().publish_metrics());
    let gets = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .find(|(key, ..)| key.key().name() == "slotpool_connections_gets_total")
        .map(|(.., value)| value);
    assert_eq!(gets, Some(DebugValue::Counter(c.gets + 3)));
}

#[cfg(feature = "metrics")]
#[test]
fn metrics_facade_publishes_open_telemetry_names() {
    use metrics_util::MetricKind;
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    let (pool, _faults) = known_scenario();
    let stats = pool.stats();
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        stats.publish_metrics_with(MetricNames::OpenTelemetry)
    });
    // (kind, name, labels besides the pool's) -> value.
    type Seen = HashMap<(MetricKind, String, Vec<(String, String)>), DebugValue>;
    let mut seen = Seen::new();
    for (key, _unit, _description, value) in snapshotter.snapshot().into_vec() {
        let (kind, key) = key.into_parts();
        let labels: Vec<(String, String)> = key
            .labels()
            .map(|label| (label.key().to_owned(), label.value().to_owned()))
            .collect();
        assert_eq!(
            labels[0],
            (
                "db.client.connection.pool.name".to_owned(),
                "orders".to_owned()
            )
        );
        assert!(!key.name().starts_with("slotpool_"), "{}", key.name());
        seen.insert((kind, key.name().to_owned(), labels[1..].to_vec()), value);
    }
    let get = |kind, name: &str, extra: &[(&str, &str)]| {
        let extra = extra
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        seen.get(&(kind, name.to_owned(), extra))
            .unwrap_or_else(|| panic!("{kind:?} {name} missing"))
    };
    let gauge = |name: &str, extra: &[(&str, &str)]| match get(MetricKind::Gauge, name, extra) {
        DebugValue::Gauge(v) => v.into_inner(),
        other => panic!("{name}: {other:?}"),
    };
    let counter = |name: &str, extra: &[(&str, &str)]| match get(MetricKind::Counter, name, extra) {
        DebugValue::Counter(v) => *v,
        other => panic!("{name}: {other:?}"),
    };
    let g = &stats.gauges;
    let state = "db.client.connection.state";
    assert_eq!(
        gauge("db.client.connection.count", &[(state, "idle")]),
        f64::from(g.idle)
    );
    assert_eq!(
        gauge("db.client.connection.count", &[(state, "used")]),
        f64::from(g.in_use)
    );
    assert_eq!(gauge("db.client.connection.max", &[]), f64::from(g.max));
    assert_eq!(
        gauge("db.client.connection.idle.max", &[]),
        f64::from(g.max)
    );
    assert_eq!(
        gauge("db.client.connection.idle.min", &[]),
        f64::from(g.min_idle)
    );
    assert_eq!(gauge("db.client.connection.pending_requests", &[]), 0.0);
    assert_eq!(counter("db.client.connection.timeouts", &[]), 2);
    let wait = "db.client.connection.wait_time";
    assert_eq!(
        gauge(wait, &[("quantile", "0.99")]),
        stats.acquire_wait.p99.as_secs_f64()
    );
    assert_eq!(gauge(&format!("{wait}.sum"), &[]), 0.012);
    assert_eq!(counter(&format!("{wait}.count"), &[]), 5);
    assert_eq!(gauge("db.client.connection.use_time.max", &[]), 0.05);
    assert_eq!(
        counter(
            "slotpool.connection.closed",
            &[("slotpool.reason", "broken")]
        ),
        1
    );
    assert_eq!(
        counter(
            "slotpool.callback.panics",
            &[("slotpool.callback", "reset")]
        ),
        0
    );
}
