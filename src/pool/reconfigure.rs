//! Reconfiguring a running pool: swap the configuration, update the hot
//! copies, retire idle excess after a shrink, serve waiters after a grow.
//!
//! Owns: the order of those steps. It may not validate beyond
//! `PoolConfig::validate` and the run-time limits (capacity and name are
//! fixed at build).

use super::shared::Shared;
use crate::backend::Backend;
use crate::background::panics::guarded;
use crate::clock::nanos;
use crate::config::{ConfigError, PoolConfig};
use crate::pool::CloseReason;
use crate::stats::Callback;
use crate::sync::{self, Ordering};
use crate::telemetry::log;

impl<M: Backend> Shared<M> {
    /// Swaps in a new configuration (its derived defaults filled in, then
    /// validated) and applies size changes.
    pub(crate) fn reconfigure(&self, mut config: PoolConfig) -> Result<(), ConfigError> {
        config.derive_unset_defaults();
        config.validate()?;
        let capacity = self.slots.capacity();
        if config.max_size as usize > capacity {
            return Err(ConfigError::Invalid {
                setting: "max_size",
                value: config.max_size.to_string(),
                rule: format!("must be <= the slot array's capacity ({capacity}), fixed at build"),
            });
        }
        if let Some(asked) = config.capacity.filter(|&asked| asked as usize != capacity) {
            return Err(ConfigError::Invalid {
                setting: "capacity",
                value: asked.to_string(),
                rule: format!(
                    "cannot change while the pool runs (it is {capacity}, fixed at build; \
                     \"auto\" keeps it)"
                ),
            });
        }
        if *config.pool_name != *self.name {
            return Err(ConfigError::Invalid {
                setting: "pool_name",
                value: config.pool_name.clone(),
                rule: format!("cannot change while the pool runs (it is '{}')", self.name),
            });
        }
        let max_size = config.max_size as usize;
        let window = nanos(config.validation_idle_window);
        let leak_threshold = config.leak_detection_threshold.map_or(0, nanos);
        let hand_off_after = nanos(config.hand_off_after);
        let _ = guarded(&self.name, &self.stats, Callback::OnReconfigure, || {
            self.manager.on_reconfigure(&config);
        });
        self.background.set_bounds(
            config.max_concurrent_connects as usize,
            config.max_concurrent_validations as usize,
        );
        self.config.store(config);
        // After the store (see `expiry_for`), and on every change rather
        // than only a lifetime change: comparing with the configuration
        // replaced would race a concurrent reconfigure, and a re-stamp costs
        // each connection one slow return.
        self.hot.lifetime_epoch.fetch_add(1, Ordering::SeqCst);
        self.hot.validation_window.store(window, Ordering::Relaxed);
        self.hot
            .leak_threshold
            .store(leak_threshold, Ordering::Relaxed);
        self.hot
            .hand_off_after
            .store(hand_off_after, Ordering::Relaxed);

        self.hot.max_size.store(max_size, Ordering::SeqCst);
        sync::dekker_fence();
        log!(info, pool = %self.name, max_size, "pool reconfigured");
        // Shrink: retire idle excess now; in-use excess retires on return.
        for index in 0..self.slots.high_water() {
            if self.total.load(Ordering::SeqCst) <= max_size {
                break;
            }
            if let Some(lease) = self.slots.try_reserve(index) {
                if self.try_retire() {
                    self.vacate_retired(lease, CloseReason::Shrink);
                } else {
                    self.publish(lease);
                }
            }
        }
        // Grow: serve current waiters; min_idle changes: refill. The
        // dispatcher also re-plans its sleep (intervals may have changed).
        self.background.request_connect();
        self.background.poke();
        Ok(())
    }
}
