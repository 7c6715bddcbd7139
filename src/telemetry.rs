//! Log lines and the `slotpool.acquire` span: the one place the core talks
//! to `tracing`.
//!
//! Owns: the [`log!`] macro every module logs through and [`AcquireSpan`],
//! the span a waiting get runs in. It may not decide anything: what is
//! logged is already counted in [`Stats`](crate::Stats) and, where a hook
//! exists, passed to [`PoolEvents`](crate::PoolEvents) by the caller.
//!
//! With the `tracing` feature, both go to `tracing` (events at `error`,
//! `warn`, `info` and `debug`; the span at `debug`). Without it they compile
//! to nothing and the core depends on no logging crate: `tracing` and
//! `tracing-core` are about 1.3 s of a clean build's CPU time and sit on its
//! critical path, which a service that reads the pool through `Stats` and
//! hooks alone should not pay. The backend crates turn the feature on.
//! Trade-off, stated: without it, a leak, a panicking callback or a failed
//! connect is counted (and a leak reaches `on_leak`, a failed connect the
//! caller's error), but no text is written anywhere.

/// Logs through `tracing` at `$level` (`error`, `warn`, `info`, `debug`)
/// with `tracing`'s field syntax; nothing without the `tracing` feature.
macro_rules! log {
    ($level:ident, $($field:tt)*) => {
        #[cfg(feature = "tracing")]
        ::tracing::$level!($($field)*);
    };
}
pub(crate) use log;

/// The `slotpool.acquire` span of one waiting get: entered while the caller
/// waits, so a subscriber sees the wait's length and its outcome (the
/// error's event is recorded inside it). Zero-sized without `tracing`.
#[derive(Clone)]
pub(crate) struct AcquireSpan {
    #[cfg(feature = "tracing")]
    span: tracing::Span,
}

/// What [`AcquireSpan::enter`] returns: the span stays entered until it is
/// dropped.
#[cfg(feature = "tracing")]
pub(crate) type Entered<'a> = tracing::span::Entered<'a>;
/// What [`AcquireSpan::enter`] returns: nothing to leave without `tracing`.
#[cfg(not(feature = "tracing"))]
pub(crate) type Entered<'a> = std::marker::PhantomData<&'a ()>;

impl AcquireSpan {
    /// A span for a get on `pool` that may wait up to `timeout`.
    #[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
    pub(crate) fn new(pool: &str, timeout: std::time::Duration) -> Self {
        Self {
            #[cfg(feature = "tracing")]
            span: tracing::debug_span!("slotpool.acquire", pool = %pool, ?timeout),
        }
    }

    /// Enters the span until the returned guard drops.
    pub(crate) fn enter(&self) -> Entered<'_> {
        #[cfg(feature = "tracing")]
        return self.span.enter();
        #[cfg(not(feature = "tracing"))]
        std::marker::PhantomData
    }
}
