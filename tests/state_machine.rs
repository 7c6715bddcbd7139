#![cfg(not(feature = "loom"))]
//! The pool as a state machine, property-tested: proptest generates a build
//! setup and a list of operations (get, return, mark broken, reconfigure,
//! advance the clock, inject connect and validation failures, make the next
//! call of a user callback panic, run the background step, run it on a
//! second thread while its connect hangs, close), applies them to a pool
//! with a `ManualClock` and manual background work, and checks it against a
//! reference model after every step. A failure shrinks to a minimal
//! sequence and prints it with the bytes that replay it through the fuzz
//! target (`fuzz/seeds/pool_ops/`).
//!
//! The ops, the model and the checks live in `fuzz/harness/pool_ops.rs`,
//! shared with the cargo-fuzz target `pool_ops`; see there for the model
//! and the invariants. `PROPTEST_CASES=N` runs more cases.

#[path = "../fuzz/harness/pool_ops.rs"]
mod pool_ops;

use pool_ops::{Op, Setup, decode, encode, run};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

fn setup() -> impl Strategy<Value = Setup> {
    (
        1..=pool_ops::CAPACITY,
        0..=pool_ops::CAPACITY,
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(max_size, min_idle, validate_always, events)| Setup {
            max_size,
            min_idle: min_idle.min(max_size),
            window_ms: if validate_always { 0 } else { 1000 },
            events,
        })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => Just(Op::TryGet),
        2 => Just(Op::GetZero),
        5 => any::<u8>().prop_map(Op::Return),
        2 => any::<u8>().prop_map(Op::MarkBrokenAndReturn),
        1 => any::<u8>().prop_map(Op::BreakAndReturn),
        2 => (1..=pool_ops::CAPACITY, 0..=pool_ops::CAPACITY)
            .prop_map(|(max_size, min_idle)| Op::Reconfigure { max_size, min_idle }),
        3 => (0..=255u16).prop_map(|steps| Op::AdvanceClock(steps * 20)),
        1 => Just(Op::FailNextConnect),
        1 => Just(Op::FailNextValidation),
        5 => Just(Op::StepBackground),
        1 => Just(Op::Close),
        3 => prop::sample::select(pool_ops::PANICKY.to_vec()).prop_map(Op::PanicNext),
        3 => (0..=pool_ops::HANG_MAX).prop_map(Op::HangConnect),
    ]
}

fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(500),
        max_shrink_iters: 10_000,
        ..ProptestConfig::default()
    })]

    /// Every step agrees with the reference model and keeps invariants 1,
    /// 2 and 6 (see `fuzz/harness/pool_ops.rs`).
    #[test]
    fn pool_matches_model(setup in setup(), ops in prop::collection::vec(op(), 1..120)) {
        run(setup, &ops).map_err(|failure| TestCaseError::fail(failure.to_string()))?;
    }

    /// The fuzz decoder reads back what `encode` writes, so a shrunk
    /// proptest failure can be saved as a fuzz seed.
    #[test]
    fn decode_inverts_encode(setup in setup(), ops in prop::collection::vec(op(), 0..64)) {
        prop_assert_eq!(decode(&encode(setup, &ops)), (setup, ops));
    }
}

fn must_pass(setup: Setup, ops: &[Op]) {
    if let Err(failure) = run(setup, ops) {
        panic!("{failure}");
    }
}

const SMALL: Setup = Setup {
    max_size: 2,
    min_idle: 0,
    window_ms: 1000,
    events: false,
};

#[test]
fn shrink_below_in_use_retires_on_return() {
    use Op::*;
    must_pass(
        Setup {
            max_size: 3,
            ..SMALL
        },
        &[
            TryGet,
            StepBackground,
            TryGet,
            TryGet,
            StepBackground,
            TryGet,
            TryGet,
            StepBackground,
            TryGet, // three held
            Reconfigure {
                max_size: 1,
                min_idle: 0,
            },
            Return(0),
            Return(0), // retired: over max_size
            Return(0), // kept: now within max_size
            TryGet,
        ],
    );
}

#[test]
fn close_with_connections_out_closes_them_on_return() {
    use Op::*;
    must_pass(
        SMALL,
        &[
            TryGet,
            StepBackground,
            TryGet,
            TryGet,
            StepBackground,
            Return(0),
            Close,
            TryGet,
            GetZero,
            Return(0),
        ],
    );
}

#[test]
fn stale_connection_failing_validation_is_replaced() {
    use Op::*;
    must_pass(
        SMALL,
        &[
            TryGet,
            StepBackground,
            TryGet,
            Return(0),
            AdvanceClock(1000),
            FailNextValidation,
            TryGet, // validated, fails, closed: NoIdle, asks for one
            FailNextConnect,
            StepBackground,
            StepBackground,
            TryGet,
        ],
    );
}

#[test]
fn min_idle_refill_stops_at_max_size() {
    use Op::*;
    must_pass(
        Setup {
            max_size: 2,
            min_idle: 2,
            window_ms: 0,
            events: false,
        },
        &[
            StepBackground,
            TryGet,
            TryGet,
            TryGet,
            StepBackground,
            Reconfigure {
                max_size: 4,
                min_idle: 4,
            },
            StepBackground,
        ],
    );
}

/// Scenarios for the callbacks that panic and the connect that hangs, each
/// also checked in as a fuzz seed (`fuzz/seeds/pool_ops/<name>.bin`):
/// `seeds_match_scenarios` fails when a seed differs from its scenario, and
/// writes them all with `POOL_OPS_WRITE_SEEDS=1`.
fn scenarios() -> Vec<(&'static str, Setup, Vec<Op>)> {
    use Op::*;
    use slotpool::stats::Callback;
    vec![
        (
            // Every manager callback panics once: connect (a failed
            // attempt), is_valid (a failed check), has_broken (broken),
            // reset (reset failed, room given back and reused), classify
            // (transient), on_reconfigure (ignored), a connection's drop
            // (closed all the same).
            "panicking_manager_callbacks",
            Setup {
                max_size: 2,
                min_idle: 0,
                window_ms: 0,
                events: false,
            },
            vec![
                PanicNext(Callback::Connect),
                TryGet,
                StepBackground, // the connect panics: nothing opened
                StepBackground, // opens 1
                PanicNext(Callback::IsValid),
                TryGet, // checked, panics: 1 closed as invalid
                StepBackground,
                TryGet, // checked, passes
                PanicNext(Callback::HasBroken),
                Return(0), // discarded as broken
                TryGet,
                StepBackground,
                TryGet,
                PanicNext(Callback::Reset),
                Return(0), // discarded as reset failed
                FailNextConnect,
                PanicNext(Callback::Classify),
                TryGet,
                StepBackground, // fails, classify panics: transient
                StepBackground,
                TryGet,
                PanicNext(Callback::OnReconfigure),
                Reconfigure {
                    max_size: 1,
                    min_idle: 0,
                },
                PanicNext(Callback::Close),
                MarkBrokenAndReturn(0), // its drop panics
                TryGet,
                StepBackground,
                PanicNext(Callback::Close),
                Close, // the idle one's drop panics
            ],
        ),
        (
            // Every hook panics once; the operation it observes goes on.
            "panicking_hooks",
            Setup {
                max_size: 2,
                min_idle: 1,
                window_ms: 1000,
                events: true,
            },
            vec![
                PanicNext(Callback::OnCreate),
                StepBackground, // min_idle: opens 1, on_create panics
                PanicNext(Callback::OnAcquire),
                TryGet,
                PanicNext(Callback::OnTimeout),
                GetZero, // times out, on_timeout panics
                PanicNext(Callback::OnRelease),
                Return(0), // kept
                TryGet,
                PanicNext(Callback::OnClose),
                BreakAndReturn(0), // closed, on_close panics
                StepBackground,
                PanicNext(Callback::OnClose),
                PanicNext(Callback::Close),
                Close, // both the hook and the drop panic
                PanicNext(Callback::OnAcquire),
                TryGet,
            ],
        ),
        (
            // One connect hangs while gets, returns and injections run; it
            // then panics, fails (classify panicking), succeeds; the last
            // hang finds nothing wanted.
            "hanging_connects",
            Setup {
                max_size: 2,
                min_idle: 0,
                window_ms: 1000,
                events: true,
            },
            vec![
                TryGet,
                StepBackground,
                TryGet,
                TryGet, // no idle: asks for one
                HangConnect(4),
                Return(0), // kept: 1 idle + 1 connecting is max_size
                TryGet,
                GetZero,                      // times out while the connect hangs
                PanicNext(Callback::Connect), // the hung connect panics
                HangConnect(3),
                FailNextConnect,
                PanicNext(Callback::Classify),
                AdvanceClock(2000), // the hung connect fails after 2 s
                HangConnect(2),
                TryGet, // room is held by the connect: no request
                BreakAndReturn(0),
                TryGet,
                HangConnect(1),
                TryGet, // nothing wanted: the step is over first
                Return(0),
                Return(0),
            ],
        ),
        (
            // The pool closes while a connect hangs: gets fail at once, the
            // held connection closes on return, and the connect's result
            // (its on_create hook panicking) is closed as it arrives.
            "close_while_connecting",
            Setup {
                max_size: 3,
                min_idle: 1,
                window_ms: 0,
                events: true,
            },
            vec![
                StepBackground, // min_idle: opens 1
                TryGet,
                HangConnect(5), // min_idle again
                PanicNext(Callback::OnCreate),
                TryGet, // no idle: asks for one more
                Close,
                GetZero, // closed
                Return(0),
                TryGet,
            ],
        ),
        (
            // A panicking reset gives its room back: with max_size 1, the
            // next connect can only open if it did.
            "reset_panic_frees_room",
            Setup {
                max_size: 1,
                min_idle: 0,
                window_ms: 1000,
                events: false,
            },
            vec![
                TryGet,
                StepBackground,
                TryGet,
                PanicNext(Callback::Reset),
                Return(0),
                TryGet,
                StepBackground,
                TryGet,
                PanicNext(Callback::HasBroken),
                HangConnect(2),
                Return(0),
                TryGet,
                StepBackground,
            ],
        ),
        (
            // Shrinks below in_use + connecting while a connect hangs: the
            // in-use excess retires on return and the connect's connection
            // on arrival (both `Shrink`), never idle above max_size; then a
            // shrink that retires an idle connection for the hanging
            // connect's room, a grow and a raised min_idle while it hangs
            // (it arrives idle and the step goes on to min_idle); then a
            // shrink and a close while it hangs (it arrives with 2 > 1:
            // `Shrink`, as a return would be; the last return, at the end,
            // finds 1 <= 1 and a closed pool: `PoolClosed`).
            "shrink_while_connecting",
            Setup {
                max_size: 3,
                min_idle: 0,
                window_ms: 1000,
                events: true,
            },
            vec![
                TryGet,
                StepBackground, // opens 1
                TryGet,
                TryGet,
                StepBackground, // opens 2
                TryGet,         // 2 held
                TryGet,         // asks for a third
                HangConnect(3),
                Reconfigure {
                    max_size: 1,
                    min_idle: 0,
                }, // 2 held + 1 connecting: nothing idle to retire
                TryGet,    // no idle and no room: asks for nothing
                Return(0), // retired: 3 > max_size 1
                // The connect arrives with 2 > 1: retired on arrival.
                Return(0), // kept: 1 <= 1
                TryGet,
                Reconfigure {
                    max_size: 3,
                    min_idle: 0,
                },
                TryGet, // asks for one
                HangConnect(5),
                Reconfigure {
                    max_size: 2,
                    min_idle: 0,
                }, // 1 held + 1 connecting: nothing over
                Return(0), // kept: 2 <= 2
                Reconfigure {
                    max_size: 1,
                    min_idle: 0,
                }, // 1 idle + 1 connecting: the idle one retired
                Reconfigure {
                    max_size: 4,
                    min_idle: 3,
                },
                TryGet, // no idle, room beyond the connect: asks for one
                // The connect arrives idle (1 <= 4); the step opens two more
                // for min_idle 3.
                TryGet,
                TryGet, // 2 held, 1 idle, min_idle wants more
                HangConnect(3),
                Reconfigure {
                    max_size: 1,
                    min_idle: 0,
                }, // the idle one retired: 2 held + 1 connecting
                Close,
                Return(0), // retired as Shrink, not PoolClosed: 3 > 1
            ],
        ),
    ]
}

#[test]
fn scenarios_pass() {
    for (name, setup, ops) in scenarios() {
        if let Err(failure) = run(setup, &ops) {
            panic!("{name}: {failure}");
        }
    }
}

#[test]
fn seeds_match_scenarios() {
    let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/pool_ops");
    let write = std::env::var_os("POOL_OPS_WRITE_SEEDS").is_some();
    for (name, setup, ops) in scenarios() {
        let path = folder.join(format!("{name}.bin"));
        let bytes = encode(setup, &ops);
        assert_eq!(decode(&bytes), (setup, ops), "{name} does not round-trip");
        if write {
            std::fs::write(&path, &bytes).unwrap();
        }
        let seed =
            std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
        assert_eq!(
            seed, bytes,
            "{name}.bin differs from its scenario (POOL_OPS_WRITE_SEEDS=1 rewrites it)"
        );
    }
}
