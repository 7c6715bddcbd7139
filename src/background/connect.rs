//! The connect loop: what a connector thread runs while connections are
//! wanted.
//!
//! Owns: retrying with capped exponential backoff and jitter, and when a
//! loop stops. It may not make a connect attempt itself (`pool/create.rs`
//! does: reserve room, connect, publish) or run on the dispatcher.
//!
//! At most `max_concurrent_connects` loops run at once (default 1: as in
//! HikariCP's single adder thread, a burst grows the pool one connection at
//! a time, and each finished connect re-checks whether anyone still waits;
//! that is what keeps HikariCP's spike test at a few connections instead of
//! 45). A connect that hangs holds one loop; the dispatcher, deadlines and
//! maintenance go on without it.

use std::time::Duration;

use crate::backend::Backend;
use crate::manager::ErrorClass;
use crate::pool::Shared;
use crate::pool::create::CreateOutcome;

impl<M: Backend> Shared<M> {
    /// A connector thread's job: open connections while they are wanted,
    /// backing off between failures, then give the loop back (and take it
    /// again if a request came in meanwhile).
    pub(crate) fn connect_loop(&self) {
        loop {
            self.connect_while_wanted(false);
            self.background.release_connect_loop();
            // A request made after our last look found the loop count at its
            // bound and started nothing: look again now that it is lower.
            if !self.wants_connection() || !self.background.claim_connect_loop() {
                return;
            }
        }
    }

    /// Opens connections while [`wants_connection`](Self::wants_connection)
    /// says so. In `manual` mode (a test's step) a failure ends the pass
    /// instead of sleeping.
    pub(crate) fn connect_while_wanted(&self, manual: bool) {
        let config = self.config();
        let mut backoff = config.connect_backoff_initial;
        while self.wants_connection() {
            match self.create_one() {
                CreateOutcome::Created => backoff = self.config().connect_backoff_initial,
                CreateOutcome::NoRoom => break,
                CreateOutcome::Failed(ErrorClass::Permanent) => {
                    // Retrying cannot help; waiters end with this error. The
                    // next request (a new waiter) tries again.
                    break;
                }
                CreateOutcome::Failed(_) | CreateOutcome::Panicked => {
                    if manual {
                        break;
                    }
                    if !self.background.sleep(jittered(backoff)) {
                        break;
                    }
                    // Read live: a reconfigured backoff applies to the next pause.
                    let config = self.config();
                    backoff = (backoff * 2)
                        .max(config.connect_backoff_initial)
                        .min(config.connect_backoff_max);
                }
            }
        }
    }
}

impl<M: Backend> Shared<M> {
    /// [`connect_loop`](Self::connect_loop) for an async manager: a task on
    /// its runtime, backing off with the runtime's timer.
    pub(crate) async fn connect_loop_async(&self) {
        loop {
            let config = self.config();
            let mut backoff = config.connect_backoff_initial;
            while self.wants_connection() {
                match self.create_one_async().await {
                    CreateOutcome::Created => backoff = self.config().connect_backoff_initial,
                    CreateOutcome::NoRoom | CreateOutcome::Failed(ErrorClass::Permanent) => break,
                    CreateOutcome::Failed(_) | CreateOutcome::Panicked => {
                        let Some(runtime) = self.manager.runtime() else {
                            break;
                        };
                        runtime.sleep(jittered(backoff)).await;
                        if self.waiters.signal().closed() {
                            break;
                        }
                        let config = self.config();
                        backoff = (backoff * 2)
                            .max(config.connect_backoff_initial)
                            .min(config.connect_backoff_max);
                    }
                }
            }
            self.background.release_connect_loop();
            if !self.wants_connection() || !self.background.claim_connect_loop() {
                return;
            }
        }
    }
}

/// `base` scaled by a pseudo-random factor in [0.5, 1.0) ("equal jitter"), so
/// pools that failed together do not retry in lock-step.
fn jittered(base: Duration) -> Duration {
    base.mul_f64(0.5 + fastrand::f64() / 2.0)
}
