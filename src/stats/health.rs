//! Placeholder: health assessment is being written.
use super::Stats;

/// Thresholds for [`assess`].
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct HealthThresholds {}

/// Overall verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum HealthStatus {
    /// All good.
    Healthy,
}

/// The pool's health.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct HealthReport {
    /// Overall verdict.
    pub status: HealthStatus,
}

/// Assesses the pool's health from a statistics snapshot.
pub fn assess(_stats: &Stats, _thresholds: &HealthThresholds) -> HealthReport {
    HealthReport {
        status: HealthStatus::Healthy,
    }
}
