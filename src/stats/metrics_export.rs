//! Placeholder: the `metrics` facade export is being written.
