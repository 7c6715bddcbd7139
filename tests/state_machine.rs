#![cfg(not(feature = "loom"))]
//! The pool as a state machine, property-tested: proptest generates a build
//! setup and a list of operations (get, return, mark broken, reconfigure,
//! advance the clock, inject connect and validation failures, run the
//! background step, close), applies them on one thread to a pool with a
//! `ManualClock` and manual background work, and checks it against a
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
    )
        .prop_map(|(max_size, min_idle, validate_always)| Setup {
            max_size,
            min_idle: min_idle.min(max_size),
            window_ms: if validate_always { 0 } else { 1000 },
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
