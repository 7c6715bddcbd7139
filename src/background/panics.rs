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
use crate::telemetry::log;

/// Runs `call` (the user's `callback`) inside a panic boundary. A panic is
/// logged and counted against `pool`, and comes back as `Err` with its
/// payload (for `retain`, which re-raises it).
#[cfg_attr(not(feature = "tracing"), allow(unused_variables))] // only logged
pub(crate) fn guarded<R>(
    pool: &str,
    stats: &Recorder,
    callback: Callback,
    call: impl FnOnce() -> R,
) -> Result<R, Box<dyn Any + Send>> {
    catch_unwind(AssertUnwindSafe(call)).inspect_err(|payload| {
        stats.record(Event::CallbackPanicked(callback));
        log!(error,
            pool = %pool,
            callback = callback.as_str(),
            panic = message(payload.as_ref()),
            "a user callback panicked; the pool carries on"
        );
    })
}

/// The text of a panic's payload, when it has one.
#[cfg_attr(not(feature = "tracing"), allow(dead_code))] // only logged
pub(crate) fn message(payload: &(dyn Any + Send)) -> &str {
    if let Some(text) = payload.downcast_ref::<&'static str>() {
        text
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text
    } else {
        "(a non-string payload)"
    }
}

/// [`guarded`] for a future: polls `future` inside a panic boundary. A
/// panic while polling is logged and counted against `pool`, and ends the
/// future with `Err`.
#[cfg_attr(not(feature = "tracing"), allow(unused_variables))] // only logged
pub(crate) async fn guarded_future<R>(
    pool: &str,
    stats: &Recorder,
    callback: Callback,
    future: std::pin::Pin<Box<dyn std::future::Future<Output = R> + Send + '_>>,
) -> Result<R, Box<dyn Any + Send>> {
    CatchUnwind { future }.await.inspect_err(|payload| {
        stats.record(Event::CallbackPanicked(callback));
        log!(error,
            pool = %pool,
            callback = callback.as_str(),
            panic = message(payload.as_ref()),
            "a user callback panicked; the pool carries on"
        );
    })
}

/// A future that turns a panic while polling its inner future into `Err`
/// (the `futures` crate's `CatchUnwind`, which the core does not depend on).
struct CatchUnwind<'a, R> {
    future: std::pin::Pin<Box<dyn std::future::Future<Output = R> + Send + 'a>>,
}

impl<R> std::future::Future for CatchUnwind<'_, R> {
    type Output = Result<R, Box<dyn Any + Send>>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        // The inner future is boxed, so this one is `Unpin`.
        let future = &mut self.future;
        match catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx))) {
            Ok(std::task::Poll::Ready(value)) => std::task::Poll::Ready(Ok(value)),
            Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
            Err(payload) => std::task::Poll::Ready(Err(payload)),
        }
    }
}
