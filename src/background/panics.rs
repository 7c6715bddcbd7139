//! The panic boundary around every user call: `connect`, `is_valid`,
//! `has_broken`, `reset`, `classify`, `on_reconfigure`, the `PoolEvents`
//! hooks, `retain`'s predicate, and dropping a connection; and around the
//! background loops themselves.
//!
//! Owns: turning a panic into a logged, counted outcome. It may not decide
//! what the outcome means for the connection: each caller says (a panicking
//! `is_valid` is a failed check, a panicking `reset` discards the
//! connection, a panicking hook is ignored).
//!
//! Each panic is logged once, at `error`, with the callback's name and the
//! panic's message, and counted in `Stats::counters.callback_panics`. The
//! pool never re-raises a panic from a background thread; on a caller's
//! thread only `retain` re-raises its predicate's panic (after putting the
//! connection back), as `Vec::retain` would.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::stats::{Callback, Event, Recorder};

/// Runs `call` (the user's `callback`) inside a panic boundary. A panic is
/// logged and counted against `pool`, and comes back as `Err` with its
/// payload (for `retain`, which re-raises it).
pub(crate) fn guarded<R>(
    pool: &str,
    stats: &Recorder,
    callback: Callback,
    call: impl FnOnce() -> R,
) -> Result<R, Box<dyn Any + Send>> {
    catch_unwind(AssertUnwindSafe(call)).inspect_err(|payload| {
        stats.record(Event::CallbackPanicked(callback));
        tracing::error!(
            pool = %pool,
            callback = callback.as_str(),
            panic = message(payload.as_ref()),
            "a user callback panicked; the pool carries on"
        );
    })
}

/// The text of a panic's payload, when it has one.
pub(crate) fn message(payload: &(dyn Any + Send)) -> &str {
    if let Some(text) = payload.downcast_ref::<&'static str>() {
        text
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text
    } else {
        "(a non-string payload)"
    }
}
