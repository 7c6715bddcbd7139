//! TEMPORARY stub: replaced by the configuration module (issue 3).
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PoolConfig {
    pub pool_name: String,
    pub max_size: u32,
    pub min_idle: u32,
    pub capacity: Option<u32>,
    pub connection_timeout: Duration,
    pub validation_timeout: Duration,
    pub validation_idle_window: Duration,
    pub idle_timeout: Option<Duration>,
    pub max_lifetime: Option<Duration>,
    pub max_lifetime_jitter: f64,
    pub keepalive_interval: Option<Duration>,
    pub leak_detection_threshold: Option<Duration>,
    pub max_waiters: u32,
    pub connect_backoff_initial: Duration,
    pub connect_backoff_max: Duration,
    pub fail_fast_after: u32,
    pub close_timeout: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            pool_name: "slotpool".into(),
            max_size: 10,
            min_idle: 0,
            capacity: None,
            connection_timeout: Duration::from_secs(30),
            validation_timeout: Duration::from_secs(5),
            validation_idle_window: Duration::from_millis(500),
            idle_timeout: Some(Duration::from_secs(600)),
            max_lifetime: Some(Duration::from_secs(1800)),
            max_lifetime_jitter: 0.025,
            keepalive_interval: Some(Duration::from_secs(120)),
            leak_detection_threshold: None,
            max_waiters: 0,
            connect_backoff_initial: Duration::from_millis(100),
            connect_backoff_max: Duration::from_secs(10),
            fail_fast_after: 5,
            close_timeout: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("invalid `{setting}` = {value}: {rule}")]
    Invalid { setting: &'static str, value: String, rule: String },
}

impl PoolConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_size < 1 {
            return Err(ConfigError::Invalid { setting: "max_size", value: self.max_size.to_string(), rule: "must be >= 1".into() });
        }
        if self.min_idle > self.max_size {
            return Err(ConfigError::Invalid { setting: "min_idle", value: self.min_idle.to_string(), rule: format!("must be <= max_size ({})", self.max_size) });
        }
        if let Some(capacity) = self.capacity {
            if capacity < self.max_size || capacity > 65_536 {
                return Err(ConfigError::Invalid { setting: "capacity", value: capacity.to_string(), rule: format!("must be >= max_size ({}) and <= 65536", self.max_size) });
            }
        }
        Ok(())
    }
}
