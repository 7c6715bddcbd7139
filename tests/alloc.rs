#![cfg(not(feature = "loom"))]
//! The hot-path budget: an uncontended `get()` + drop allocates nothing.
//!
//! A counting global allocator counts only the allocations made by the thread
//! under test (the pool's worker may allocate on its own thread at any time).

// A global allocator can only be written as an `unsafe impl GlobalAlloc`;
// the library itself keeps all its `unsafe` in `src/slot.rs`.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use slotpool::{Manager, Pool};

struct CountingAllocator;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn note_allocation() {
    // `try_with`: the allocator may run while thread-locals are torn down.
    let _ = COUNTING.try_with(|counting| {
        if counting.get() {
            let _ = ALLOCATIONS.try_with(|count| count.set(count.get() + 1));
        }
    });
}

// SAFETY: every call is forwarded unchanged to the system allocator; the
// counting touches only const-initialised thread-locals, which never allocate.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation();
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

struct Noop;

impl Manager for Noop {
    type Connection = u64;
    type Error = std::io::Error;
    fn connect(&self) -> Result<u64, std::io::Error> {
        Ok(7)
    }
    fn is_valid(&self, _: &mut u64) -> Result<(), std::io::Error> {
        Ok(())
    }
    fn has_broken(&self, _: &mut u64) -> bool {
        false
    }
}

#[test]
fn uncontended_get_and_drop_allocate_nothing() {
    let pool = Pool::builder().max_size(4).build(Noop).unwrap();
    // Warm up: the first get opens the connection (that path may allocate).
    drop(pool.get().unwrap());
    COUNTING.with(|counting| counting.set(true));
    let mut sum = 0;
    for _ in 0..10_000 {
        let conn = pool.get().unwrap();
        sum += *conn;
    }
    for _ in 0..10_000 {
        let conn = pool.try_get().unwrap();
        sum += *conn;
    }
    COUNTING.with(|counting| counting.set(false));
    assert_eq!(sum, 7 * 20_000);
    let allocations = ALLOCATIONS.with(Cell::get);
    assert_eq!(allocations, 0, "the hot path allocated {allocations} times");
}

#[test]
fn the_counter_does_count() {
    // Guards the test above against a counter that cannot fail.
    COUNTING.with(|counting| counting.set(true));
    let boxed = std::hint::black_box(Box::new(1u64));
    COUNTING.with(|counting| counting.set(false));
    drop(boxed);
    assert!(ALLOCATIONS.with(Cell::get) >= 1);
}
