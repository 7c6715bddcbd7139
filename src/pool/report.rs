//! What the pool reports: its state, its statistics, and the errors a get
//! ends with.
//!
//! Owns: building [`State`], [`Stats`] and every error value a get or a
//! `try_get` ends with. It may not change the pool.

use std::fmt;
use std::time::Duration;

use super::shared::{PoolError, Shared};
use crate::backend::Backend;
use crate::background::panics::guarded;
use crate::clock::Nanos;
use crate::error::{Error, TryGetError};
use crate::slot::SlotState;
use crate::stats::{Callback, Event, Gauges, Stats};
use crate::sync::{self, Ordering};
use crate::telemetry::log;

impl<M: Backend> Shared<M> {
    pub(crate) fn count(&self, wanted: SlotState) -> usize {
        (0..self.slots.high_water())
            .filter(|&index| self.slots.state(index) == wanted)
            .count()
    }

    /// A snapshot of the counts (not atomic as a whole).
    pub(crate) fn state(&self) -> State {
        let mut state = State {
            waiting: self.waiters.signal().waiting() as u32,
            max_size: self.hot.max_size.load(Ordering::Relaxed) as u32,
            ..State::default()
        };
        for index in 0..self.slots.high_water() {
            match self.slots.state(index) {
                SlotState::Empty => {}
                SlotState::Connecting => state.connecting += 1,
                SlotState::Idle => state.idle_connections += 1,
                SlotState::InUse | SlotState::Reserved => state.in_use += 1,
            }
        }
        // Connections out of their slots for a check are the pool's, in use
        // by it.
        state.in_use += self.validating.load(Ordering::Relaxed) as u32;
        state.connections = state.idle_connections + state.in_use + state.connecting;
        state
    }

    /// How often the dispatcher refreshes the coarse clock while connections
    /// exist: a quarter of the validation window, within [10 ms, 250 ms].
    pub(crate) fn tick_interval(&self) -> Option<Duration> {
        if self.clock.is_manual() || self.total.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let window = Duration::from_nanos(self.hot.validation_window.load(Ordering::Relaxed));
        Some((window / 4).clamp(Duration::from_millis(10), Duration::from_millis(250)))
    }

    /// A statistics snapshot.
    pub(crate) fn stats(&self) -> Stats {
        let state = self.state();
        let gauges = Gauges {
            total: state.connections,
            idle: state.idle_connections,
            in_use: state.in_use,
            connecting: state.connecting,
            waiting: state.waiting,
            max: state.max_size,
            min_idle: self.config.load().min_idle,
        };
        let counters = self.stats.counters(self.slots.total_checkouts());
        Stats::assemble(&self.name, gauges, counters, &self.stats)
    }

    pub(crate) fn closed_error(&self) -> PoolError<M> {
        Error::Closed {
            pool: self.name.clone(),
        }
    }

    pub(crate) fn timeout_error(&self, waited: Nanos) -> PoolError<M> {
        if let Some(events) = &self.events {
            let _ = guarded(&self.name, &self.stats, Callback::OnTimeout, || {
                events.on_timeout(Duration::from_nanos(waited));
            });
        }
        log!(debug, pool = %self.name, waited = ?Duration::from_nanos(waited), "get timed out");
        Error::TimedOut {
            pool: self.name.clone(),
            waited: Duration::from_nanos(waited),
            state: self.state(),
            last_connect_error: sync::lock(&self.last_connect_error).clone(),
        }
    }

    /// `try_get` found nothing idle: from two counters, no slot scan.
    pub(crate) fn no_idle_error(&self) -> TryGetError {
        self.stats.record(Event::NoIdle);
        TryGetError::NoIdle {
            pool: self.name.clone(),
            open: u32::try_from(self.total.load(Ordering::Relaxed)).unwrap_or(u32::MAX),
            max_size: self.hot.max_size.load(Ordering::Relaxed) as u32,
        }
    }

    pub(crate) fn too_many_waiters_error(&self, limit: usize) -> PoolError<M> {
        Error::TooManyWaiters {
            pool: self.name.clone(),
            limit: limit as u32,
            state: self.state(),
        }
    }

    pub(crate) fn connect_error(&self) -> PoolError<M> {
        // Bind first: a guard in the match scrutinee would live through the
        // arms, and `timeout_error` below locks the same mutex (a deadlock
        // a teammate caught under the PostgreSQL recovery test).
        let last = sync::lock(&self.last_connect_error).clone();
        match last {
            Some(source) => Error::Connect {
                pool: self.name.clone(),
                state: self.state(),
                source,
            },
            // A success cleared the error in between: the caller may retry.
            None => self.timeout_error(0),
        }
    }
}

/// A snapshot of the pool's counts (r2d2's names where they exist).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct State {
    /// Connections open or being opened (`idle + in_use + connecting`).
    pub connections: u32,
    /// Connections nobody uses.
    pub idle_connections: u32,
    /// Connections handed to a caller (or reserved by maintenance).
    pub in_use: u32,
    /// Connections being opened.
    pub connecting: u32,
    /// Callers waiting for a connection.
    pub waiting: u32,
    /// The `max_size` in force.
    pub max_size: u32,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "total={}, idle={}, in use={}, connecting={}, waiting={}, max={}",
            self.connections,
            self.idle_connections,
            self.in_use,
            self.connecting,
            self.waiting,
            self.max_size
        )
    }
}
