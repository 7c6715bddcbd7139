//! The listener's buffer, and the task that drives its connection and
//! fills it.
//!
//! Owns: reading the connection (`Connection::poll_message`) for as long
//! as it lives, the bounded queue of notifications between that task and
//! the [`Listener`](super::Listener), the "lagged" marker that records
//! notifications dropped because the queue was full, and the end-of-
//! connection record. It may not reconnect or send statements (the
//! listener does).
//!
//! The task never waits for the caller: it keeps reading the socket
//! whether or not anyone calls `recv`, so the server is never blocked
//! writing to this session (a blocked listener holds back the tail of the
//! server's shared notification queue, and once that queue is full every
//! session's `NOTIFY` fails), and `LISTEN`/`UNLISTEN` responses are read
//! even while the queue is full. What does not fit is counted and reported
//! in order, as a gap, rather than kept.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Notify;
use tokio_postgres::{AsyncMessage, Connection, Notification};

use crate::error::describe;

/// What the queue hands out, in arrival order.
#[derive(Debug)]
pub(super) enum Item {
    /// A notification.
    Notification(Notification),
    /// This many notifications arrived here while the queue was full, and
    /// were dropped.
    Lagged(u64),
}

/// The next thing for the caller.
#[derive(Debug)]
pub(super) enum Next {
    Item(Item),
    /// Nothing buffered; the connection lives.
    Empty,
    /// Nothing buffered, and the connection has ended for this reason.
    Closed(String),
}

/// The queue shared by one connection's task and the listener.
#[derive(Debug)]
pub(super) struct Queue {
    state: Mutex<State>,
    /// Notifications it holds at most.
    capacity: usize,
    /// One permit per push or close, so a `recv` that found the queue empty
    /// and then waits cannot miss what arrived in between.
    ready: Notify,
}

#[derive(Debug)]
struct State {
    items: VecDeque<Item>,
    /// Notifications (not markers) in `items`.
    notifications: usize,
    /// Notifications dropped because the queue was full, in total.
    dropped: u64,
    closed: Option<String>,
}

impl Queue {
    /// An empty queue holding at most `capacity` notifications (at least 1).
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            state: Mutex::new(State {
                items: VecDeque::new(),
                notifications: 0,
                dropped: 0,
                closed: None,
            }),
            capacity: capacity.max(1),
            ready: Notify::new(),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock; a poisoned queue is still
        // consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push(&self, notification: Notification) {
        {
            let mut state = self.state();
            if state.notifications < self.capacity {
                state.items.push_back(Item::Notification(notification));
                state.notifications += 1;
            } else {
                state.dropped += 1;
                if let Some(Item::Lagged(missed)) = state.items.back_mut() {
                    *missed += 1;
                } else {
                    state.items.push_back(Item::Lagged(1));
                }
            }
        }
        self.ready.notify_one();
    }

    fn close(&self, cause: String) {
        self.state().closed = Some(cause);
        self.ready.notify_one();
    }

    /// Takes the next item, or says why there is none.
    pub(super) fn pop(&self) -> Next {
        let mut state = self.state();
        match state.items.pop_front() {
            Some(item) => {
                if matches!(item, Item::Notification(_)) {
                    state.notifications -= 1;
                }
                Next::Item(item)
            }
            None => match &state.closed {
                Some(cause) => Next::Closed(cause.clone()),
                None => Next::Empty,
            },
        }
    }

    /// Notifications buffered now.
    pub(super) fn len(&self) -> usize {
        self.state().notifications
    }

    /// Notifications dropped because the queue was full, in total.
    pub(super) fn dropped(&self) -> u64 {
        self.state().dropped
    }

    /// The capacity it was built with.
    pub(super) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Waits until something was pushed or the connection closed since the
    /// last wait (or now). Cancel-safe: it takes nothing off the queue.
    pub(super) async fn wait(&self) {
        self.ready.notified().await;
    }
}

/// Reads `connection` until it ends: notifications into `queue`, notices
/// to the log, and the reason it ended into `queue` last.
pub(super) async fn drive<S, T>(
    mut connection: Connection<S, T>,
    queue: std::sync::Arc<Queue>,
    server: String,
) where
    S: AsyncRead + AsyncWrite + Unpin,
    T: AsyncRead + AsyncWrite + Unpin,
{
    let cause = loop {
        match poll_fn(|cx| connection.poll_message(cx)).await {
            Some(Ok(AsyncMessage::Notification(notification))) => queue.push(notification),
            Some(Ok(AsyncMessage::Notice(notice))) => {
                tracing::debug!(
                    server = %server,
                    severity = notice.severity(),
                    code = notice.code().code(),
                    message = notice.message(),
                    "notice on a PostgreSQL listener connection"
                );
            }
            // `AsyncMessage` is non-exhaustive; nothing else exists today.
            Some(Ok(_)) => {}
            Some(Err(error)) => break describe(&error),
            None => break "the connection was closed".to_owned(),
        }
    };
    tracing::debug!(server = %server, cause = %cause, "a PostgreSQL listener connection ended");
    queue.close(cause);
}

#[cfg(test)]
mod tests {
    use super::*;

    // `Notification` has no public constructor, so the full-queue path is
    // exercised against a server in tests/listener.rs; here, the markers
    // and the close record.
    #[test]
    fn an_empty_queue_reports_its_close_once_drained() {
        let queue = Queue::new(0);
        assert_eq!(queue.capacity(), 1);
        assert!(matches!(queue.pop(), Next::Empty));
        queue.close("gone".to_owned());
        assert!(matches!(queue.pop(), Next::Closed(cause) if cause == "gone"));
        assert!(matches!(queue.pop(), Next::Closed(_)), "stays closed");
    }
}
