//! Validation rules: [`PoolConfig::validate`] and [`PoolConfig::problems`].
//! Each rule is checked independently so that `problems` reports them all.
//!
//! Owns: every rule over the pool's settings. It may not change a value: it
//! only reports.

use std::time::Duration;

use super::error::ConfigError;
use super::schema::{Problems, SettingValue};
use super::settings::{MAX_CAPACITY, PoolConfig};

/// Longest allowed `pool_name`, in characters.
pub const MAX_POOL_NAME_LEN: usize = 64;
/// Largest allowed `max_lifetime_jitter`.
pub const MAX_LIFETIME_JITTER: f64 = 0.5;
/// Shortest allowed `keepalive_interval` (HikariCP requires 30s; shorter
/// intervals are allowed for tests).
pub const MIN_KEEPALIVE_INTERVAL: Duration = Duration::from_millis(100);
/// Largest `hand_off_after`.
pub const MAX_HAND_OFF_AFTER: Duration = Duration::from_secs(1);
/// Largest `max_concurrent_connects` and `max_concurrent_validations`.
pub const MAX_CONCURRENCY: u32 = 256;

/// `"10s"`, for rule texts.
fn show<T: SettingValue>(value: &T) -> String {
    value.shown()
}

impl PoolConfig {
    /// Checks every rule; returns the first violation.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match self.problems().into_iter().next() {
            Some(problem) => Err(problem),
            None => Ok(()),
        }
    }

    /// Checks every rule; returns all violations (empty when valid), each a
    /// [`ConfigError::Invalid`] naming the setting, its value and the rule.
    #[must_use]
    pub fn problems(&self) -> Vec<ConfigError> {
        let mut p = Problems::default();
        self.check_pool_name(&mut p);
        self.check_sizing(&mut p);
        self.check_timeouts(&mut p);
        self.check_lifetimes(&mut p);
        self.check_backoff(&mut p);
        self.check_concurrency(&mut p);
        p.into_vec()
    }

    fn check_pool_name(&self, p: &mut Problems) {
        let name = &self.pool_name;
        if name.is_empty() {
            p.require(false, "pool_name", name, || "must not be empty".to_owned());
            return;
        }
        p.require(
            name.chars().count() <= MAX_POOL_NAME_LEN,
            "pool_name",
            name,
            || format!("must be at most {MAX_POOL_NAME_LEN} characters"),
        );
        p.require(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')),
            "pool_name",
            name,
            || "may only contain ASCII letters, digits, `_`, `.` and `-`".to_owned(),
        );
    }

    fn check_sizing(&self, p: &mut Problems) {
        let max = self.max_size;
        p.require(max >= 1, "max_size", &max, || {
            "must be at least 1".to_owned()
        });
        p.require(max <= MAX_CAPACITY, "max_size", &max, || {
            format!("must be <= {MAX_CAPACITY}, the largest slot-array capacity")
        });
        p.require(self.min_idle <= max, "min_idle", &self.min_idle, || {
            format!("must be <= max_size ({max})")
        });
        if let Some(capacity) = self.capacity {
            p.require(capacity >= max, "capacity", &self.capacity, || {
                format!("must be >= max_size ({max})")
            });
            p.require(capacity <= MAX_CAPACITY, "capacity", &self.capacity, || {
                format!("must be <= {MAX_CAPACITY}")
            });
        }
    }

    fn check_timeouts(&self, p: &mut Problems) {
        let connection = self.connection_timeout;
        p.require(
            !connection.is_zero(),
            "connection_timeout",
            &connection,
            || "must be greater than 0".to_owned(),
        );
        let validation = self.validation_timeout;
        p.require(
            !validation.is_zero(),
            "validation_timeout",
            &validation,
            || "must be greater than 0".to_owned(),
        );
        p.require(
            validation < connection,
            "validation_timeout",
            &validation,
            || {
                format!(
                    "must be less than connection_timeout ({})",
                    show(&connection)
                )
            },
        );
        p.require(
            self.hand_off_after <= MAX_HAND_OFF_AFTER,
            "hand_off_after",
            &self.hand_off_after,
            || {
                format!(
                    "must be at most {} (it bounds how long a waiter may be passed over)",
                    show(&MAX_HAND_OFF_AFTER)
                )
            },
        );
        // validation_idle_window: any value; 0 validates on every checkout.
        // close_timeout: any value; 0 closes in-use connections at once.
    }

    fn check_lifetimes(&self, p: &mut Problems) {
        let off = || "must be greater than 0 (use \"off\" to disable)".to_owned();
        if let Some(idle) = self.idle_timeout {
            p.require(!idle.is_zero(), "idle_timeout", &self.idle_timeout, off);
        }
        if let Some(lifetime) = self.max_lifetime {
            p.require(!lifetime.is_zero(), "max_lifetime", &self.max_lifetime, off);
            if let Some(idle) = self.idle_timeout {
                p.require(lifetime > idle, "max_lifetime", &self.max_lifetime, || {
                    format!(
                        "must be greater than idle_timeout ({})",
                        show(&self.idle_timeout)
                    )
                });
            }
        }
        let jitter = self.max_lifetime_jitter;
        p.require(
            jitter.is_finite() && (0.0..=MAX_LIFETIME_JITTER).contains(&jitter),
            "max_lifetime_jitter",
            &jitter,
            || format!("must be a number from 0 to {MAX_LIFETIME_JITTER}"),
        );
        if let Some(keepalive) = self.keepalive_interval {
            p.require(
                keepalive >= MIN_KEEPALIVE_INTERVAL,
                "keepalive_interval",
                &self.keepalive_interval,
                || {
                    format!(
                        "must be at least {} (or \"off\")",
                        show(&MIN_KEEPALIVE_INTERVAL)
                    )
                },
            );
            if let Some(lifetime) = self.max_lifetime {
                p.require(
                    keepalive < lifetime,
                    "keepalive_interval",
                    &self.keepalive_interval,
                    || {
                        format!(
                            "must be less than max_lifetime ({})",
                            show(&self.max_lifetime)
                        )
                    },
                );
            }
        }
        if let Some(leak) = self.leak_detection_threshold {
            p.require(
                !leak.is_zero(),
                "leak_detection_threshold",
                &self.leak_detection_threshold,
                off,
            );
            if let Some(lifetime) = self.max_lifetime {
                p.require(
                    leak < lifetime,
                    "leak_detection_threshold",
                    &self.leak_detection_threshold,
                    || {
                        format!(
                            "must be less than max_lifetime ({})",
                            show(&self.max_lifetime)
                        )
                    },
                );
            }
        }
    }

    fn check_backoff(&self, p: &mut Problems) {
        let initial = self.connect_backoff_initial;
        p.require(
            !initial.is_zero(),
            "connect_backoff_initial",
            &initial,
            || "must be greater than 0".to_owned(),
        );
        p.require(
            self.connect_backoff_max >= initial,
            "connect_backoff_max",
            &self.connect_backoff_max,
            || format!("must be >= connect_backoff_initial ({})", show(&initial)),
        );
    }

    fn check_concurrency(&self, p: &mut Problems) {
        for (setting, value) in [
            ("max_concurrent_connects", self.max_concurrent_connects),
            (
                "max_concurrent_validations",
                self.max_concurrent_validations,
            ),
        ] {
            p.require(value >= 1, setting, &value, || {
                "must be at least 1".to_owned()
            });
            p.require(value <= MAX_CONCURRENCY, setting, &value, || {
                format!("must be <= {MAX_CONCURRENCY} (each is a thread)")
            });
        }
    }
}
