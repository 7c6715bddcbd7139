//! [`Acquire`]: the future behind `Pool::get_async`.
//!
//! Owns: the future's states and its cancellation. It may not hand
//! connections out except through the shared queue.
//!
//! Owns: the async side of waiting. It shares the waiter queue, the hand-off
//! and the deadline rules with the sync path in `core`; only the wake-up
//! differs (a `Waker` instead of unparking a thread). No runtime is needed:
//! the deadline is a timer served by the pool's worker thread (or by the
//! `ManualClock` in tests), so it works under tokio, async-std, or a plain
//! `block_on`, with no `spawn_blocking` hop.
//!
//! Dropping the future at any point is safe: a connection handed to it at
//! the same instant goes to the next waiter or back to idle (invariant 4).

use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use super::PooledConnection;
use super::Shared;
use super::checkout::Joined;
use crate::backend::Backend;
use crate::background::CheckPurpose;
use crate::clock::{Nanos, nanos};
use crate::error::Error;
use crate::stats::Event;
use crate::sync::{self, Arc};
use crate::telemetry::AcquireSpan;
use crate::waiters::{Notifier, Outcome, WaitNode};

/// A pending async checkout; resolves to a [`PooledConnection`] or an error
/// within its timeout. Cancel it by dropping it.
#[must_use = "futures do nothing unless polled"]
pub struct Acquire<'a, M: Backend> {
    shared: &'a Shared<M>,
    site: &'static Location<'static>,
    /// `None`: the pool's `connection_timeout`, read only if we must wait.
    timeout: Option<Duration>,
    wait: Option<Wait<M::Connection>>,
}

/// The state of a started wait.
struct Wait<C> {
    node: Arc<WaitNode<C>>,
    start: Nanos,
    deadline: Nanos,
    timer: Option<(Nanos, u64)>,
    /// The wait's `slotpool.acquire` span, entered on every poll.
    span: AcquireSpan,
}

impl<'a, M: Backend> Acquire<'a, M> {
    pub(crate) fn new(
        shared: &'a Shared<M>,
        timeout: Option<Duration>,
        site: &'static Location<'static>,
    ) -> Self {
        Self {
            shared,
            site,
            timeout,
            wait: None,
        }
    }

    fn finish_wait(&mut self) {
        if let Some(Wait {
            timer: Some(key), ..
        }) = self.wait.take()
        {
            self.shared.background.cancel_timer(key);
        }
    }

    /// Joins the queue (or is served at once). `Ok(None)`: now waiting.
    fn start(
        &mut self,
        cx: &Context<'_>,
    ) -> Result<Option<PooledConnection<'a, M>>, Error<M::Error>> {
        let shared = self.shared;
        if let Some(lease) = shared.try_acquire_fast::<false>(self.site) {
            return Ok(Some(PooledConnection::borrowed(shared, lease)));
        }
        shared.refuse_if_failing_fast()?;
        let start = shared.clock.now();
        let config = shared.config();
        let timeout = self.timeout.unwrap_or(config.connection_timeout);
        let deadline = start.saturating_add(nanos(timeout));
        let max_waiters = config.max_waiters as usize;
        let node = match shared
            .join_queue(Notifier::Waker(cx.waker().clone()), max_waiters)
            .inspect_err(|error| shared.record_failure(error))?
        {
            Joined::Served(lease) => {
                return match shared.checkout_after_wait(lease, start, self.site) {
                    Some(lease) => Ok(Some(PooledConnection::borrowed(shared, lease))),
                    // Invalid and discarded: the caller starts over.
                    None => Ok(None),
                };
            }
            Joined::Queued(node) => node,
        };
        let timer = match shared.clock.as_manual() {
            Some(manual) => {
                manual.wake_at(deadline, cx.waker());
                None
            }
            None => Some(shared.background.add_timer(deadline, cx.waker())),
        };
        let span = AcquireSpan::new(&shared.name, timeout);
        self.wait = Some(Wait {
            node,
            start,
            deadline,
            timer,
            span,
        });
        Ok(None)
    }
}

impl<'a, M: Backend> Future for Acquire<'a, M> {
    type Output = Result<PooledConnection<'a, M>, Error<M::Error>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let shared = this.shared;
        loop {
            let Some(wait) = &this.wait else {
                match this.start(cx) {
                    Ok(Some(conn)) => return Poll::Ready(Ok(conn)),
                    Ok(None) => continue,
                    Err(error) => return Poll::Ready(Err(error)),
                }
            };
            let node = wait.node.clone();
            let (start, deadline) = (wait.start, wait.deadline);
            let span = wait.span.clone();
            let _entered = span.enter();
            let now = shared.clock.now();
            let mut outcome = shared.waiters.poll(&node);
            if let Outcome::Roused = outcome {
                outcome = match shared.rescan_roused(&node) {
                    Ok(Some(lease)) => Outcome::Handed(lease),
                    Ok(None) => Outcome::Waiting,
                    Err(error) => {
                        this.finish_wait();
                        shared.record_failure(&error);
                        return Poll::Ready(Err(error));
                    }
                };
            }
            let outcome = match outcome {
                Outcome::Waiting if now >= deadline => shared.waiters.cancel(&node),
                other => other,
            };
            match outcome {
                Outcome::Handed(lease) if shared.needs_off_thread_check(&lease) => {
                    if now >= deadline {
                        // Out of time to wait for its check: pass it on.
                        shared.check_later(lease, CheckPurpose::Checkout);
                        continue;
                    }
                    // Queue again, then send it to be checked: the check's
                    // end finds this future waiting.
                    let notifier = Notifier::Waker(cx.waker().clone());
                    match shared.requeue_while_checked(lease, notifier, start) {
                        Ok(node) => {
                            if let Some(wait) = &mut this.wait {
                                wait.node = node;
                            }
                            continue;
                        }
                        Err(error) => {
                            this.finish_wait();
                            shared.stats.record(Event::RejectedClosed);
                            return Poll::Ready(Err(error));
                        }
                    }
                }
                Outcome::Handed(lease) => {
                    this.finish_wait();
                    sync::set_slot_hint(lease.index());
                    match shared.checkout_after_wait(lease, start, this.site) {
                        Some(lease) => {
                            return Poll::Ready(Ok(PooledConnection::borrowed(shared, lease)));
                        }
                        // Invalid and discarded: wait again (new deadline
                        // window starts from the original start).
                        None => continue,
                    }
                }
                Outcome::Closed => {
                    this.finish_wait();
                    shared.stats.record(Event::RejectedClosed);
                    return Poll::Ready(Err(shared.closed_error()));
                }
                Outcome::Rejected => {
                    this.finish_wait();
                    shared.stats.record(Event::FailedFast);
                    return Poll::Ready(Err(shared.connect_error()));
                }
                Outcome::Cancelled => {
                    // Only our own cancel (deadline) leads here.
                    this.finish_wait();
                    shared.stats.record(Event::TimedOut);
                    let waited = shared.clock.now().saturating_sub(start);
                    return Poll::Ready(Err(shared.timeout_error(waited)));
                }
                Outcome::Waiting | Outcome::Roused => {
                    shared.waiters.renotify(&node, cx.waker());
                    // A hand-off may have taken the old waker just before the
                    // swap; look once more so it is never missed.
                    if !shared.waiters.is_waiting(&node) {
                        continue;
                    }
                    return Poll::Pending;
                }
            }
        }
    }
}

impl<M: Backend> Drop for Acquire<'_, M> {
    fn drop(&mut self) {
        if let Some(wait) = &self.wait {
            let node = wait.node.clone();
            self.finish_wait();
            // Cancelled mid-wait: never swallow a connection handed to us.
            if let Outcome::Handed(lease) = self.shared.waiters.cancel(&node) {
                self.shared.publish(lease);
            }
        }
    }
}

impl<M: Backend> std::fmt::Debug for Acquire<'_, M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Acquire")
            .field("pool", &&*self.shared.name)
            .field("waiting", &self.wait.is_some())
            .finish()
    }
}
