//! [`Lane`]: a queue of one kind of background job and the threads that run
//! it, at most `max_threads` at a time, started on demand and gone after
//! they have had nothing to do for a while (HikariCP's executors with
//! `allowCoreThreadTimeOut`).
//!
//! Owns: the job queue, the count of threads and of idle threads, and the
//! rule for when another thread is wanted. It may not start threads itself
//! (the dispatcher does, because starting one needs an `Arc` of the pool,
//! which only the dispatcher holds) and may not know what a job does.
//!
//! A lane exists so that user code (a connect, a validity check, a close, a
//! hook) never runs on the dispatcher, the thread that fires deadlines; and
//! its thread bound is what makes the concurrency of each kind of user call
//! explicit.

use std::collections::VecDeque;
use std::time::Duration;

use crate::sync::{self, AtomicUsize, Condvar, Mutex, Ordering};

struct LaneState<J> {
    queue: VecDeque<J>,
    /// Threads started and not yet exited.
    threads: usize,
    /// Threads waiting for a job.
    idle: usize,
    /// No more jobs are taken; threads exit once the queue is empty.
    shutdown: bool,
}

/// One kind of background job, its queue and its threads.
pub(crate) struct Lane<J> {
    /// For thread names and logs: `connector`, `checker`, `closer`.
    pub(crate) name: &'static str,
    max_threads: AtomicUsize,
    state: Mutex<LaneState<J>>,
    work: Condvar,
}

/// What [`Lane::submit`] did with a job.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Submitted {
    /// An idle thread was woken for it, or it waits behind running jobs.
    Queued,
    /// It waits for a thread the dispatcher should start.
    WantsThread,
}

impl<J> Lane<J> {
    pub(crate) fn new(name: &'static str, max_threads: usize) -> Self {
        Self {
            name,
            max_threads: AtomicUsize::new(max_threads.max(1)),
            state: Mutex::new(LaneState {
                queue: VecDeque::new(),
                threads: 0,
                idle: 0,
                shutdown: false,
            }),
            work: Condvar::new(),
        }
    }

    /// Changes the thread bound (live reconfiguration); extra running
    /// threads finish their job and exit when they next find the lane over
    /// its bound.
    pub(crate) fn set_max_threads(&self, max_threads: usize) {
        self.max_threads
            .store(max_threads.max(1), Ordering::Relaxed);
    }

    /// Queues `job`. After shutdown the job is handed back, to be run by
    /// the caller or dropped.
    pub(crate) fn submit(&self, job: J) -> Result<Submitted, J> {
        let mut state = sync::lock(&self.state);
        if state.shutdown {
            return Err(job);
        }
        state.queue.push_back(job);
        if state.idle > 0 {
            self.work.notify_one();
            return Ok(Submitted::Queued);
        }
        let wants = state.threads < self.max_threads.load(Ordering::Relaxed);
        Ok(if wants {
            Submitted::WantsThread
        } else {
            Submitted::Queued
        })
    }

    /// The dispatcher's question: should a thread be started? If so, counts
    /// it as started (the dispatcher must then start it, or call
    /// [`thread_failed`](Self::thread_failed)).
    pub(crate) fn reserve_thread(&self) -> bool {
        let mut state = sync::lock(&self.state);
        let wanted = !state.queue.is_empty()
            && state.idle == 0
            && state.threads < self.max_threads.load(Ordering::Relaxed);
        if wanted {
            state.threads += 1;
        }
        wanted
    }

    /// Undoes a [`reserve_thread`](Self::reserve_thread) whose thread could
    /// not be started.
    pub(crate) fn thread_failed(&self) {
        sync::lock(&self.state).threads -= 1;
    }

    /// A lane thread's next job: waits up to `linger` for one, and returns
    /// `None` (the thread must exit) after that, on shutdown with an empty
    /// queue, or when the lane has more threads than its bound.
    pub(crate) fn next(&self, linger: Duration) -> Option<J> {
        let mut state = sync::lock(&self.state);
        let mut lingered = false;
        loop {
            if state.threads > self.max_threads.load(Ordering::Relaxed) {
                state.threads -= 1;
                return None;
            }
            if let Some(job) = state.queue.pop_front() {
                return Some(job);
            }
            if state.shutdown || lingered {
                state.threads -= 1;
                return None;
            }
            state.idle += 1;
            state = sync::wait_timeout(&self.work, state, linger);
            state.idle -= 1;
            // A timed-out wait (or a spurious one after it) ends the thread
            // at the next empty look; a job queued meanwhile is still taken.
            lingered = true;
        }
    }

    /// A lane task's next job (an async manager's lane runs tasks, not
    /// threads): the next queued job without waiting, or `None`, and the
    /// task must end (it is counted out).
    pub(crate) fn try_next(&self) -> Option<J> {
        let mut state = sync::lock(&self.state);
        if state.threads <= self.max_threads.load(Ordering::Relaxed) {
            if let Some(job) = state.queue.pop_front() {
                return Some(job);
            }
        }
        state.threads -= 1;
        None
    }

    /// Every queued job, for running inline (manual mode).
    #[cfg(feature = "test-util")]
    pub(crate) fn drain(&self) -> Vec<J> {
        sync::lock(&self.state).queue.drain(..).collect()
    }

    /// Stops taking jobs; idle threads wake and exit, busy ones exit after
    /// their job. Returns the jobs still queued.
    pub(crate) fn shut_down(&self) -> Vec<J> {
        let mut state = sync::lock(&self.state);
        state.shutdown = true;
        self.work.notify_all();
        state.queue.drain(..).collect()
    }
}
