//! The dispatcher: the one per-pool thread that must never be late.
//!
//! Owns: the dispatcher's loop ([`run`]), the manual-mode step ([`step`]),
//! firing async deadlines and validation deadlines, the coarse-clock tick,
//! scheduling maintenance, and starting lane threads. It may not run user
//! code: every manager call and hook goes to a lane (`mod.rs` has the
//! table), so nothing a user writes can delay a deadline here.
//!
//! Each turn sleeps until the earliest of: an async deadline, a validation
//! deadline, the next clock tick, the next maintenance pass, or a poke; then
//! it fires what is due, starts the threads lanes want, and runs
//! maintenance when due. A turn runs inside a panic boundary: a bug in a
//! turn is logged and counted, and the next turn runs.

use std::task::Waker;
use std::time::Duration;

use super::lane::Lane;
use super::panics::guarded;
use super::{LINGER, Ticket};
use crate::backend::Backend;
use crate::clock::{Nanos, nanos};
use crate::pool::Shared;
use crate::stats::Callback;
use crate::sync::{self, Arc};
use crate::telemetry::log;

/// What a turn decided.
enum Flow {
    Continue,
    Exit,
}

/// The dispatcher thread's body: turns until the pool is closed and
/// drained.
pub(crate) fn run<M: Backend>(shared: Arc<Shared<M>>) {
    // When the last maintenance pass ran: the next is due a period later,
    // the period read afresh each turn, so a reconfigured interval acts at
    // once instead of after the pass planned under the old one.
    let mut last_pass = shared.clock.now();
    loop {
        let flow = guarded(&shared.name, &shared.stats, Callback::Background, || {
            turn(&shared, &mut last_pass)
        });
        match flow {
            Ok(Flow::Continue) => {}
            Ok(Flow::Exit) => break,
            // Logged and counted by the boundary; do not spin on a bug.
            Err(_) => {
                let _ = shared.background.sleep(Duration::from_millis(100));
            }
        }
    }
    finish(&shared);
    log!(debug, pool = %shared.name, "dispatcher exited");
}

/// One turn of the dispatcher.
fn turn<M: Backend>(shared: &Arc<Shared<M>>, last_pass: &mut Nanos) -> Flow {
    let next_pass = super::maintenance::period(shared)
        .map_or(Nanos::MAX, |period| last_pass.saturating_add(nanos(period)));
    let (wakers, checks, shutdown) = wait_for_work(shared, next_pass);
    for waker in wakers {
        waker.wake();
    }
    let timeout = shared.config().validation_timeout;
    for ticket in checks {
        shared.abandon_check(&ticket, timeout);
    }
    let now = shared.clock.now(); // the tick: refreshes the coarse clock
    start_lane_threads(shared);
    if shutdown {
        return if shared.drained() {
            Flow::Exit
        } else {
            Flow::Continue
        };
    }
    let next_pass = super::maintenance::period(shared)
        .map_or(Nanos::MAX, |period| last_pass.saturating_add(nanos(period)));
    if now >= next_pass {
        shared.maintain();
        *last_pass = now;
        start_lane_threads(shared);
    }
    if shared.wants_connection() {
        shared.background.request_connect();
        start_lane_threads(shared);
    }
    Flow::Continue
}

/// Sleeps until something is due or somebody pokes, then takes the due
/// async timers and validation deadlines, and whether the pool is closing.
fn wait_for_work<M: Backend>(
    shared: &Shared<M>,
    next_pass: Nanos,
) -> (Vec<Waker>, Vec<Arc<Ticket>>, bool) {
    let background = &shared.background;
    let mut control = sync::lock(&background.control);
    if !control.requested && !control.shutdown {
        let now = shared.clock.now();
        let until = |deadline: Nanos| Duration::from_nanos(deadline.saturating_sub(now));
        let until_pass = super::maintenance::period(shared).map(|_| until(next_pass));
        let until_timer = control
            .timers
            .keys()
            .next()
            .map(|(deadline, _)| until(*deadline));
        let until_check = control
            .checks
            .keys()
            .next()
            .map(|(deadline, _)| until(*deadline));
        let wait = [shared.tick_interval(), until_pass, until_timer, until_check]
            .into_iter()
            .flatten()
            .min();
        control.wakes_at = wait.map_or(Nanos::MAX, |wait| now.saturating_add(nanos(wait)));
        control = match wait {
            Some(wait) => sync::wait_timeout(&background.wake, control, wait),
            None => match background.wake.wait(control) {
                Ok(control) => control,
                Err(poisoned) => poisoned.into_inner(),
            },
        };
        control.wakes_at = 0;
    }
    control.requested = false;
    let now = shared.clock.now();
    let later = control.timers.split_off(&(now.saturating_add(1), 0));
    let wakers = std::mem::replace(&mut control.timers, later)
        .into_values()
        .collect();
    let later = control.checks.split_off(&(now.saturating_add(1), 0));
    let checks = std::mem::replace(&mut control.checks, later)
        .into_values()
        .collect();
    (wakers, checks, control.shutdown)
}

/// Starts the threads each lane wants (jobs waiting, no thread idle, under
/// its bound). An async manager's connects and checks run as tasks on its
/// runtime instead: the same lanes and bounds, with a task in place of each
/// thread.
fn start_lane_threads<M: Backend>(shared: &Arc<Shared<M>>) {
    if shared.manager.runtime().is_some() {
        start_tasks(
            shared,
            |s| &s.background.connector,
            |s| {
                Box::pin(async move {
                    while s.background.connector.try_next().is_some() {
                        s.connect_loop_async().await;
                    }
                })
            },
        );
        start_tasks(
            shared,
            |s| &s.background.checker,
            |s| {
                Box::pin(async move {
                    while let Some(job) = s.background.checker.try_next() {
                        s.run_check_async(job).await;
                    }
                })
            },
        );
    } else {
        start(shared, |s| &s.background.connector, |s, _| s.connect_loop());
        start(shared, |s| &s.background.checker, |s, job| s.run_check(job));
    }
    start(shared, |s| &s.background.closer, |s, job| s.run_close(job));
}

/// Starts the tasks an async manager's lane wants, on its runtime.
fn start_tasks<M: Backend, J>(
    shared: &Arc<Shared<M>>,
    lane: fn(&Shared<M>) -> &Lane<J>,
    task: fn(Arc<Shared<M>>) -> crate::runtime::BoxFuture,
) {
    let Some(runtime) = shared.manager.runtime() else {
        return;
    };
    while lane(shared).reserve_thread() {
        runtime.spawn(task(shared.clone()));
    }
}

fn start<M: Backend, J: Send + 'static>(
    shared: &Arc<Shared<M>>,
    lane: fn(&Shared<M>) -> &Lane<J>,
    run_job: fn(&Shared<M>, J),
) {
    while lane(shared).reserve_thread() {
        let owned = shared.clone();
        let name = format!("slotpool-{}-{}", shared.name, lane(shared).name);
        let spawned = sync::thread::Builder::new()
            .name(name)
            .spawn(move || lane_thread(&owned, lane, run_job));
        #[cfg_attr(not(feature = "tracing"), allow(unused_variables))] // only logged
        if let Err(error) = spawned {
            lane(shared).thread_failed();
            log!(error, pool = %shared.name, lane = lane(shared).name, %error, "could not start a background thread");
            break;
        }
    }
}

/// A lane thread: runs jobs until the lane has none for [`LINGER`].
fn lane_thread<M: Backend, J>(
    shared: &Shared<M>,
    lane: fn(&Shared<M>) -> &Lane<J>,
    run_job: fn(&Shared<M>, J),
) {
    while let Some(job) = lane(shared).next(LINGER) {
        // The jobs guard every user call themselves; this boundary catches
        // a bug in the pool's own code, so the lane keeps its thread count.
        let _ = guarded(&shared.name, &shared.stats, Callback::Background, || {
            run_job(shared, job);
        });
    }
}

/// The pool is closed and drained: stop the lanes. Closes still queued get
/// a thread of their own (the connections are out of the pool; their drop
/// may block, and nothing may wait for it).
fn finish<M: Backend>(shared: &Arc<Shared<M>>) {
    let background = &shared.background;
    drop(background.connector.shut_down());
    for job in background.checker.shut_down() {
        // Abandoned or not, a queued check of a closed pool only closes.
        shared.run_check(job);
    }
    let leftover = background.closer.shut_down();
    if !leftover.is_empty() {
        let owned = shared.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("slotpool-{}-closer", shared.name))
            .spawn(move || {
                for job in leftover {
                    owned.run_close(job);
                }
            });
        #[cfg_attr(not(feature = "tracing"), allow(unused_variables))] // only logged
        if let Err(error) = spawned {
            log!(error, pool = %shared.name, %error, "could not start a thread to close the last connections");
        }
    }
}

/// One pass of background work on the caller's thread (manual mode: tests
/// and loom models): maintenance, queued validations and their deadlines
/// (with `Builder::queued_checks`), then connects while wanted, a failure
/// ending the pass.
#[cfg(feature = "test-util")]
pub(crate) fn step<M: Backend>(shared: &Shared<M>) {
    shared.maintain();
    if shared.background.queues_checks() {
        let timeout = shared.config().validation_timeout;
        let expired = {
            let mut control = sync::lock(&shared.background.control);
            let now = shared.clock.now();
            let later = control.checks.split_off(&(now.saturating_add(1), 0));
            std::mem::replace(&mut control.checks, later)
                .into_values()
                .collect::<Vec<_>>()
        };
        for ticket in expired {
            shared.abandon_check(&ticket, timeout);
        }
        for job in shared.background.checker.drain() {
            shared.run_check(job);
        }
    }
    // Stops by itself once the pool is closed (nothing is wanted then).
    shared.connect_while_wanted(true);
}
