//! The order in which a read tries the routable replicas: least loaded
//! first, load being `(in use + waiting) / max_size` from each pool's
//! `State`; ties go round-robin so equal replicas share the reads.
//!
//! Owns: that order, as a pure function of the pools' states (unit-tested
//! without a server). It may not look at health (the caller passes only
//! routable replicas) or touch a pool.

use slotpool::State;

/// A replica that may serve the read: its index in the set and its pool's
/// state.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Candidate {
    pub(crate) index: usize,
    pub(crate) state: State,
}

/// Sorts `candidates` least loaded first; among equal loads, the one whose
/// index comes first from `rotation` (modulo `members`) first.
pub(crate) fn order(candidates: &mut [Candidate], rotation: usize, members: usize) {
    let members = members.max(1);
    let start = rotation % members;
    candidates.sort_by(|a, b| {
        compare_load(&a.state, &b.state).then_with(|| {
            let turn = |index: usize| (index + members - start) % members;
            turn(a.index).cmp(&turn(b.index))
        })
    });
}

/// `(in_use + waiting) / max_size` of `a` against `b`, exactly (cross
/// multiplied); a pool with `max_size` 0 is the most loaded.
fn compare_load(a: &State, b: &State) -> std::cmp::Ordering {
    let busy = |state: &State| u64::from(state.in_use) + u64::from(state.waiting);
    match (a.max_size, b.max_size) {
        (0, 0) => std::cmp::Ordering::Equal,
        (0, _) => std::cmp::Ordering::Greater,
        (_, 0) => std::cmp::Ordering::Less,
        (max_a, max_b) => (busy(a) * u64::from(max_b)).cmp(&(busy(b) * u64::from(max_a))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(index: usize, in_use: u32, waiting: u32, max_size: u32) -> Candidate {
        Candidate {
            index,
            state: State {
                connections: in_use,
                in_use,
                waiting,
                max_size,
                ..State::default()
            },
        }
    }

    fn chosen(mut candidates: Vec<Candidate>, rotation: usize, members: usize) -> Vec<usize> {
        order(&mut candidates, rotation, members);
        candidates.iter().map(|c| c.index).collect()
    }

    #[test]
    fn the_least_loaded_replica_comes_first() {
        let candidates = vec![
            candidate(0, 8, 0, 10),
            candidate(1, 2, 0, 10),
            candidate(2, 5, 0, 10),
        ];
        assert_eq!(chosen(candidates, 0, 3), [1, 2, 0]);
    }

    #[test]
    fn load_is_relative_to_the_pool_size() {
        // 4 of 20 in use (0.2) is less loaded than 1 of 4 (0.25).
        let candidates = vec![candidate(0, 1, 0, 4), candidate(1, 4, 0, 20)];
        assert_eq!(chosen(candidates, 0, 2), [1, 0]);
    }

    #[test]
    fn waiters_count_as_load() {
        let candidates = vec![candidate(0, 10, 5, 10), candidate(1, 10, 0, 10)];
        assert_eq!(chosen(candidates, 0, 2), [1, 0]);
    }

    #[test]
    fn ties_rotate_so_idle_replicas_share_the_reads() {
        let idle = || {
            vec![
                candidate(0, 0, 0, 5),
                candidate(1, 0, 0, 5),
                candidate(2, 0, 0, 5),
            ]
        };
        assert_eq!(chosen(idle(), 0, 3), [0, 1, 2]);
        assert_eq!(chosen(idle(), 1, 3), [1, 2, 0]);
        assert_eq!(chosen(idle(), 2, 3), [2, 0, 1]);
        assert_eq!(chosen(idle(), 3, 3), [0, 1, 2]);
    }

    #[test]
    fn rotation_skips_missing_members_without_bias() {
        // Replica 1 is unhealthy (not a candidate): the turn that would be
        // its goes to the next one.
        let some = || vec![candidate(0, 0, 0, 5), candidate(2, 0, 0, 5)];
        assert_eq!(chosen(some(), 1, 3), [2, 0]);
        assert_eq!(chosen(some(), 2, 3), [2, 0]);
        assert_eq!(chosen(some(), 0, 3), [0, 2]);
    }

    #[test]
    fn a_pool_of_size_zero_is_last() {
        let candidates = vec![candidate(0, 0, 0, 0), candidate(1, 9, 9, 10)];
        assert_eq!(chosen(candidates, 0, 2), [1, 0]);
    }
}
