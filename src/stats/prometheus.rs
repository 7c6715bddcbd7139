//! Placeholder: Prometheus text rendering is being written.
