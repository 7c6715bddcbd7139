//! Placeholder: the r2d2 adapter (`R2d2Manager`) is being written.
