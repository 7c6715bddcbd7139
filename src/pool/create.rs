//! Opening a connection: reserve room, claim an empty slot, connect (on a
//! connector thread), fill the slot and publish the new connection.
//!
//! Owns: one connect attempt and what it records (the last error, failures
//! in a row, progress for `WaitForMinIdle`), and putting a checked
//! connection back into a slot. It may not loop or back off: the connect
//! loop (`background/connect.rs`) decides when to try again.

use std::time::Duration;

use super::shared::{PoolError, Shared};
use crate::backend::Backend;
use crate::backend::Call;
use crate::background::panics::{guarded, guarded_future};
use crate::clock::{Nanos, nanos};
use crate::manager::ErrorClass;
use crate::slot::{Claim, Expiry, Lease, SlotMeta, SlotState};
use crate::stats::{Callback, Event};
use crate::sync::{self, Ordering};
use crate::telemetry::log;

impl<M: Backend> Shared<M> {
    /// Opens one connection (a blocking manager, on a connector thread)
    /// and publishes it.
    pub(crate) fn create_one(&self) -> CreateOutcome {
        let Some((claim, started)) = self.begin_create() else {
            return CreateOutcome::NoRoom;
        };
        let connected = guarded(&self.name, &self.stats, Callback::Connect, || {
            match self.manager.connect() {
                Call::Done(result) => result,
                // Only an async manager's calls are pending: never here.
                Call::Pending(_) => unreachable!("a blocking manager's connect is done"),
            }
        });
        self.finish_create(claim, started, connected)
    }

    /// [`create_one`](Self::create_one) for an async manager: the connect
    /// future runs in this task (on the manager's runtime).
    pub(crate) async fn create_one_async(&self) -> CreateOutcome {
        let Some((claim, started)) = self.begin_create() else {
            return CreateOutcome::NoRoom;
        };
        let connected = match self.manager.connect() {
            Call::Done(result) => Ok(result),
            Call::Pending(future) => {
                guarded_future(&self.name, &self.stats, Callback::Connect, future).await
            }
        };
        self.finish_create(claim, started, connected)
    }

    /// Reserves room and an empty slot for a connect; `None`: no room.
    fn begin_create(&self) -> Option<(Claim, Nanos)> {
        if !self.reserve_room() {
            return None;
        }
        let claim = self.claim_reserved_slot();
        self.connecting.fetch_add(1, Ordering::SeqCst);
        Some((claim, self.clock.now()))
    }

    /// Records a connect attempt begun at `started` and fills or gives up
    /// its slot.
    fn finish_create(
        &self,
        claim: Claim,
        started: Nanos,
        connected: Result<Result<M::Connection, M::Error>, Box<dyn std::any::Any + Send>>,
    ) -> CreateOutcome {
        let now = self.clock.now();
        let took = now.saturating_sub(started);
        self.connecting.fetch_sub(1, Ordering::SeqCst);
        match connected {
            Ok(Ok(conn)) => {
                self.stats.record(Event::Created(took));
                self.consecutive_failures.store(0, Ordering::SeqCst);
                self.last_error_permanent.store(false, Ordering::SeqCst);
                *sync::lock(&self.last_connect_error) = None;
                let _ = self
                    .demand
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
                let lease =
                    self.slots
                        .fill(claim, conn, now, self.expiry_for(now, fastrand::u64(..)));
                if let Some(events) = &self.events {
                    let _ = guarded(&self.name, &self.stats, Callback::OnCreate, || {
                        events.on_create(lease.index(), Duration::from_nanos(took));
                    });
                }
                log!(debug, pool = %self.name, slot = lease.index(), "connection opened");
                self.publish(lease);
                self.notify_progress();
                // The dispatcher ticks the coarse clock only while
                // connections exist: one that slept through an empty pool
                // must re-plan its wait, or the clock stands still and no
                // checkout ever looks stale.
                self.background.poke();
                CreateOutcome::Created
            }
            Ok(Err(error)) => {
                self.stats.record(Event::ConnectFailed);
                self.slots.abandon(claim);
                self.total.fetch_sub(1, Ordering::SeqCst);
                let error = std::sync::Arc::new(error);
                log!(warn, pool = %self.name, error = %error, "connect failed");
                let class = self.classify(&error);
                let permanent = class == ErrorClass::Permanent;
                *sync::lock(&self.last_connect_error) = Some(error.clone());
                self.last_error_permanent.store(permanent, Ordering::SeqCst);
                self.consecutive_failures.fetch_add(1, Ordering::SeqCst);
                if self.failing_fast() {
                    // Nothing open, nothing coming: end current waits now
                    // with the typed cause instead of letting them time out.
                    self.waiters.reject_all();
                }
                self.notify_progress();
                CreateOutcome::Failed(class)
            }
            Err(_panic) => {
                // Logged and counted by the boundary; a failed attempt.
                self.stats.record(Event::ConnectFailed);
                self.consecutive_failures.fetch_add(1, Ordering::SeqCst);
                self.slots.abandon(claim);
                self.total.fetch_sub(1, Ordering::SeqCst);
                self.notify_progress();
                CreateOutcome::Panicked
            }
        }
    }

    /// The manager's classification of a connect error; a panicking
    /// `classify` counts as transient (retrying is the safe side).
    pub(crate) fn classify(&self, error: &M::Error) -> ErrorClass {
        guarded(&self.name, &self.stats, Callback::Classify, || {
            self.manager.classify(error)
        })
        .unwrap_or(ErrorClass::Transient)
    }

    /// Claims an empty slot for room already reserved. A reservation
    /// guarantees one once in-flight retires (which give back room before
    /// vacating) finish: a few instructions.
    fn claim_reserved_slot(&self) -> Claim {
        loop {
            match self.slots.claim_empty() {
                Some(claim) => return claim,
                None => sync::thread::yield_now(),
            }
        }
    }

    /// Puts a checked connection back into a slot (its room was kept while
    /// it was out), with the times it had.
    pub(crate) fn reenter(
        &self,
        conn: M::Connection,
        meta: SlotMeta,
        now: Nanos,
    ) -> Lease<M::Connection> {
        let claim = self.claim_reserved_slot();
        self.slots.refill(claim, conn, &meta, now)
    }

    /// The retirement stamp of a connection opened at `created_at`:
    /// `max_lifetime` scaled by a factor in [1 - jitter, 1] that `draw` (a
    /// random number kept with the connection) picks, so connections opened
    /// together do not expire together and a new lifetime moves each
    /// connection's expiry without reshuffling them. 0: never.
    pub(crate) fn expiry_for(&self, created_at: Nanos, draw: u64) -> Expiry {
        // The epoch before the configuration: reconfigure stores the
        // configuration first, so a stamp of the new epoch is never computed
        // from the old settings (an old epoch only costs a re-stamp).
        let epoch = self.hot.lifetime_epoch.load(Ordering::SeqCst);
        let config = self.config.load();
        let at = match config.max_lifetime {
            Some(lifetime) => {
                let unit = draw as f64 / (u64::MAX as f64 + 1.0);
                let factor = 1.0 - config.max_lifetime_jitter * unit;
                created_at.saturating_add(nanos(lifetime.mul_f64(factor)).max(1))
            }
            None => 0,
        };
        Expiry { at, draw, epoch }
    }

    /// Re-stamps the leased connection's retirement if its stamp predates a
    /// change of `max_lifetime` or its jitter; returns the current stamp.
    pub(crate) fn current_expiry(&self, lease: &Lease<M::Connection>) -> Expiry {
        let meta = self.slots.meta(lease);
        if meta.expiry.epoch == self.hot.lifetime_epoch.load(Ordering::Relaxed) {
            return meta.expiry;
        }
        let expiry = self.expiry_for(meta.created_at, meta.expiry.draw);
        self.slots.stamp_expiry(lease, expiry);
        expiry
    }

    pub(crate) fn notify_progress(&self) {
        let _guard = sync::lock(&self.progress.0);
        self.progress.1.notify_all();
    }

    /// Waits until `min_idle` connections are idle, or fails within
    /// `timeout` with the typed cause (start-up mode `WaitForMinIdle`).
    pub(crate) fn wait_for_idle(
        &self,
        min_idle: usize,
        timeout: Duration,
    ) -> Result<(), PoolError<M>> {
        let start = self.clock.now();
        let deadline = start.saturating_add(nanos(timeout));
        let mut guard = sync::lock(&self.progress.0);
        loop {
            if self.count(SlotState::Idle) >= min_idle {
                return Ok(());
            }
            if self.failing_fast() {
                return Err(self.connect_error());
            }
            let now = self.clock.now();
            if now >= deadline {
                return Err(self.timeout_error(now - start));
            }
            let wait = Duration::from_nanos(deadline - now).min(Duration::from_millis(100));
            guard = sync::wait_timeout(&self.progress.1, guard, wait);
        }
    }
}

/// What one connect attempt came to.
pub(crate) enum CreateOutcome {
    Created,
    NoRoom,
    /// The manager's error, classified.
    Failed(ErrorClass),
    Panicked,
}
