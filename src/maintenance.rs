//! Maintenance: what the worker does on a schedule.
//!
//! Owns: one maintenance pass ([`run_pass`]) and its period. It runs on the
//! worker thread (or on the test's thread in manual mode), never on a
//! caller's path, and touches connections only through reservations (`Idle →
//! Reserved`), so a borrower never sees a half-checked connection. It may not
//! open connections (the worker's connect loop does).
//!
//! A pass:
//! 1. reports connections held past `leak_detection_threshold`, once per
//!    checkout, with the checkout's location (and backtrace when
//!    `RUST_BACKTRACE` asked for one), and counts them;
//! 2. retires idle connections past their jittered `max_lifetime`;
//! 3. retires connections idle longer than `idle_timeout`, down to `min_idle`;
//! 4. validates connections idle longer than `keepalive_interval` and closes
//!    the ones that fail.
//!
//! Connections in use are never touched: an expired one retires when it
//! comes back (`Shared::release`). Refilling to `min_idle` is the worker's
//! connect loop, which runs after every pass.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use crate::clock::nanos;
use crate::manager::Manager;
use crate::pool::CloseReason;
use crate::pool::Shared;
use crate::slot::SlotState;
use crate::stats::Event;

/// One maintenance pass at the pool clock's current time.
pub(crate) fn run_pass<M: Manager>(shared: &Shared<M>) {
    let config = shared.config();
    let now = shared.clock.now();

    let threshold = shared.leak_threshold();
    if threshold != 0 {
        for index in 0..shared.slots.high_water() {
            if let Some(report) = shared.slots.check_leak(index, now, threshold) {
                shared.note_leak_reported();
                shared.stats.record(Event::Leak);
                if let Some(events) = &shared.events {
                    events.on_leak(report.index, Duration::from_nanos(report.held), report.site);
                }
                let site = report
                    .site
                    .map_or_else(|| "unknown".to_owned(), ToString::to_string);
                tracing::warn!(
                    pool = %shared.name,
                    slot = report.index,
                    held = ?Duration::from_nanos(report.held),
                    threshold = ?Duration::from_nanos(threshold),
                    checked_out_at = %site,
                    backtrace = report.trace.as_deref().unwrap_or("(set RUST_BACKTRACE=1 to capture)"),
                    "connection leak detected: held past leak_detection_threshold"
                );
            }
        }
    }

    if config.idle_timeout.is_none()
        && config.keepalive_interval.is_none()
        && config.max_lifetime.is_none()
    {
        return;
    }
    let min_idle = config.min_idle as usize;
    let mut idle = (0..shared.slots.high_water())
        .filter(|&index| shared.slots.state(index) == SlotState::Idle)
        .count();
    let idle_timeout = config.idle_timeout.map(nanos);
    let keepalive = config.keepalive_interval.map(nanos);
    shared.sweep_idle(|lease, meta| {
        if meta.expires_at != 0 && now >= meta.expires_at {
            idle = idle.saturating_sub(1);
            return Some(CloseReason::MaxLifetime);
        }
        if let Some(idle_timeout) = idle_timeout {
            if idle > min_idle && now.saturating_sub(meta.returned_at) >= idle_timeout {
                idle -= 1;
                return Some(CloseReason::IdleTimeout);
            }
        }
        if let Some(keepalive) = keepalive {
            let last_seen = meta.returned_at.max(meta.kept_alive_at);
            if now.saturating_sub(last_seen) >= keepalive {
                let valid = catch_unwind(AssertUnwindSafe(|| {
                    shared.manager.is_valid(shared.slots.conn_mut(lease))
                }));
                let ok = matches!(valid, Ok(Ok(())));
                shared.stats.record(Event::Validated { ok });
                if !ok {
                    idle = idle.saturating_sub(1);
                    return Some(CloseReason::Invalid);
                }
                shared.slots.stamp_kept_alive(lease, now);
            }
        }
        None
    });
}

/// How often a pass is due: a quarter of the shortest enabled interval,
/// within [10 ms, 30 s] (HikariCP's housekeeper runs every 30 s). `None`
/// when nothing is enabled.
pub(crate) fn period<M: Manager>(shared: &Shared<M>) -> Option<Duration> {
    let config = shared.config();
    let lifetime_spread = config
        .max_lifetime
        .map(|lifetime| lifetime.mul_f64(config.max_lifetime_jitter.max(0.01)));
    [
        config.idle_timeout,
        config.keepalive_interval,
        config.leak_detection_threshold,
        lifetime_spread,
    ]
    .into_iter()
    .flatten()
    .min()
    .map(|shortest| (shortest / 4).clamp(Duration::from_millis(10), Duration::from_secs(30)))
}
