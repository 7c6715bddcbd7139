//! The process-wide closer: one thread, shared by every pool, that closes
//! discarded connections.
//!
//! Owns: that thread and its queue. Closing a connection may block (a server
//! that does not answer a goodbye, a file system that stalls), and a close
//! must never delay a caller or a connect. The pool's own worker opens
//! connections, so closing there would let one slow close hold up the refill;
//! a per-pool second thread would break the "one background thread per pool"
//! rule. So closes go to a single shared thread, started on first use, that
//! only ever runs `drop`s. It may not run anything but the closes it is
//! given.

use std::sync::mpsc::{Sender, channel};
use std::sync::{Mutex, OnceLock};

type Job = Box<dyn FnOnce() + Send>;

static QUEUE: OnceLock<Option<Mutex<Sender<Job>>>> = OnceLock::new();

fn queue() -> Option<&'static Mutex<Sender<Job>>> {
    QUEUE
        .get_or_init(|| {
            let (sender, receiver) = channel::<Job>();
            std::thread::Builder::new()
                .name("slotpool-closer".into())
                .spawn(move || {
                    for job in receiver {
                        // A panicking destructor must not kill the closer.
                        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                    }
                })
                .ok()
                .map(|_| Mutex::new(sender))
        })
        .as_ref()
}

/// Closes `conn` on the closer thread (inline if that thread could not be
/// started).
pub(crate) fn close<C: Send + 'static>(conn: C) {
    let job: Job = Box::new(move || drop(conn));
    match queue() {
        Some(sender) => {
            let sender = sender
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if let Err(returned) = sender.send(job) {
                drop(sender);
                (returned.0)();
            }
        }
        None => job(),
    }
}
