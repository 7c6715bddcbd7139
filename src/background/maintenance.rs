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
//! 4. sends connections idle longer than `keepalive_interval` to be checked
//!    (the check closes the ones that fail, and abandons one that hangs past
//!    `validation_timeout`).
//!
//! Connections in use are never touched: an expired one retires when it
//! comes back (`Shared::release`). Refilling to `min_idle` is the worker's
//! connect loop, which runs after every pass.

use std::time::Duration;

use super::CheckPurpose;
use super::panics::guarded;
use crate::backend::Backend;
use crate::backend::Call;
use crate::clock::nanos;
use crate::pool::{CloseReason, Shared};
use crate::slot::SlotState;
use crate::stats::{Callback, Event};
use crate::telemetry::log;

/// What a pass does with one idle connection.
enum Verdict {
    Keep,
    Retire(CloseReason),
    Check,
}

impl<M: Backend> Shared<M> {
    /// One maintenance pass at the pool clock's current time.
    pub(crate) fn maintain(&self) {
        let config = self.config();
        let now = self.clock.now();
        self.report_leaks(now);

        if config.idle_timeout.is_none()
            && config.keepalive_interval.is_none()
            && config.max_lifetime.is_none()
        {
            return;
        }
        let min_idle = config.min_idle as usize;
        let mut idle = (0..self.slots.high_water())
            .filter(|&index| self.slots.state(index) == SlotState::Idle)
            .count();
        let idle_timeout = config.idle_timeout.map(nanos);
        let keepalive = config.keepalive_interval.map(nanos);
        for index in 0..self.slots.high_water() {
            let Some(mut lease) = self.slots.try_reserve(index) else {
                continue;
            };
            let expiry = self.current_expiry(&lease);
            let meta = self.slots.meta(&lease);
            let verdict = if expiry.at != 0 && now >= expiry.at {
                Verdict::Retire(CloseReason::MaxLifetime)
            } else if idle_timeout.is_some_and(|timeout| {
                idle > min_idle && now.saturating_sub(meta.returned_at) >= timeout
            }) {
                Verdict::Retire(CloseReason::IdleTimeout)
            } else if keepalive.is_some_and(|interval| {
                now.saturating_sub(meta.returned_at.max(meta.kept_alive_at)) >= interval
            }) {
                Verdict::Check
            } else {
                Verdict::Keep
            };
            match verdict {
                Verdict::Keep => self.publish_unstamped(lease),
                Verdict::Retire(reason) => {
                    idle = idle.saturating_sub(1);
                    self.discard(lease, reason);
                }
                Verdict::Check if self.checks_inline() => {
                    let valid = guarded(&self.name, &self.stats, Callback::IsValid, || {
                        matches!(
                            self.manager.is_valid(self.slots.conn_mut(&mut lease)),
                            Call::Done(Ok(()))
                        )
                    });
                    let ok = matches!(valid, Ok(true));
                    self.stats.record(Event::Validated { ok });
                    if ok {
                        self.slots.stamp_kept_alive(&lease, now);
                        self.publish_unstamped(lease);
                    } else {
                        idle = idle.saturating_sub(1);
                        self.discard(lease, CloseReason::Invalid);
                    }
                }
                Verdict::Check => {
                    idle = idle.saturating_sub(1);
                    self.check_later(lease, CheckPurpose::Keepalive);
                }
            }
        }
    }

    /// Reports connections held past `leak_detection_threshold`, once per
    /// checkout: logged here, counted, and passed to the `on_leak` hook on
    /// the closer lane.
    fn report_leaks(&self, now: u64) {
        let threshold = self.leak_threshold();
        if threshold == 0 {
            return;
        }
        for index in 0..self.slots.high_water() {
            let Some(report) = self.slots.check_leak(index, now, threshold) else {
                continue;
            };
            self.note_leak_reported();
            self.stats.record(Event::Leak);
            log!(
                warn,
                pool = %self.name,
                slot = report.index,
                held = ?Duration::from_nanos(report.held),
                threshold = ?Duration::from_nanos(threshold),
                checked_out_at = %report.site.map_or_else(|| "unknown".to_owned(), ToString::to_string),
                backtrace = report.trace.as_deref().unwrap_or("(set RUST_BACKTRACE=1 to capture)"),
                "connection leak detected: held past leak_detection_threshold"
            );
            self.report_leak_to_hook(report);
        }
    }
}

/// How often a pass is due: a quarter of the shortest enabled interval,
/// within [10 ms, 30 s] (HikariCP's housekeeper runs every 30 s). `None`
/// when nothing is enabled.
pub(crate) fn period<M: Backend>(shared: &Shared<M>) -> Option<Duration> {
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
