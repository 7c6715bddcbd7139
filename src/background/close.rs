//! Closing connections and running the hooks that must not run on the
//! dispatcher, on the closer lane.
//!
//! Owns: [`CloseJob`] and what the closer does with one: the `on_close` hook
//! and the connection's drop, or the `on_leak` hook, each in a panic
//! boundary. It may not touch slots or room: a connection reaches the
//! closer after it has left the pool (`vacate.rs`).
//!
//! One closer thread per pool (HikariCP's closer executor): a close that
//! blocks delays only the pool's later closes and close/leak hooks, never a
//! caller, a connect or a deadline.

use std::time::Duration;

use super::panics::guarded;
use crate::backend::Backend;
use crate::pool::{CloseReason, Shared};
use crate::slot::LeakReport;
use crate::stats::Callback;
use crate::sync::Ordering;

/// What the closer lane runs.
pub(crate) enum CloseJob<C> {
    /// Close a connection that left slot `slot` for `reason`.
    Close {
        conn: C,
        slot: usize,
        reason: CloseReason,
    },
    /// Tell the `on_leak` hook about a leak maintenance found.
    Leak(LeakReport),
}

impl<M: Backend> Shared<M> {
    /// Closes a connection that has left the pool: on the closer lane, or
    /// here when there is none (manual mode, or after the pool drained).
    pub(crate) fn bury(&self, conn: M::Connection, slot: usize, reason: CloseReason) {
        self.closing.fetch_add(1, Ordering::SeqCst);
        let job = CloseJob::Close { conn, slot, reason };
        if let Err(job) = self.background.submit_close(job) {
            self.run_close(job);
        }
    }

    /// Sends a leak report to the `on_leak` hook, off the dispatcher.
    pub(crate) fn report_leak_to_hook(&self, report: LeakReport) {
        if self.events.is_none() {
            return;
        }
        if let Err(job) = self.background.submit_close(CloseJob::Leak(report)) {
            self.run_close(job);
        }
    }

    /// The closer's work: a hook, then the drop, each guarded.
    pub(crate) fn run_close(&self, job: CloseJob<M::Connection>) {
        match job {
            CloseJob::Close { conn, slot, reason } => {
                if let Some(events) = &self.events {
                    let _ = guarded(&self.name, &self.stats, Callback::OnClose, || {
                        events.on_close(slot, reason);
                    });
                }
                let _ = guarded(&self.name, &self.stats, Callback::Close, move || drop(conn));
                self.closing.fetch_sub(1, Ordering::SeqCst);
                if self.waiters.signal().closed() {
                    self.notify_drained();
                }
            }
            CloseJob::Leak(report) => {
                if let Some(events) = &self.events {
                    let _ = guarded(&self.name, &self.stats, Callback::OnLeak, || {
                        events.on_leak(
                            report.index,
                            Duration::from_nanos(report.held),
                            report.site,
                        );
                    });
                }
            }
        }
    }
}
