//! The per-connection prepared-statement cache behind
//! `PgConnection::prepare_cached`: bounded, least-recently-used eviction,
//! hit/miss/eviction counts.
//!
//! Owns: the cache and its counters (per connection, and summed per
//! manager). It may not prepare statements (the connection does, outside
//! the lock, and inserts the result).
//!
//! # Why LRU
//!
//! A service runs a small set of hot statements over and over, with bursts
//! of one-off statements (reports, migrations, ad-hoc queries) passing
//! through. Under FIFO every statement leaves after `capacity` newer
//! misses however hot it is, so a burst flushes the hot set and each hot
//! statement pays a prepare round trip again; under LRU a hit moves the
//! statement to the front and the one-offs evict each other. The cost is
//! relinking two list nodes on a hit, under a lock held for that long only
//! (never across an await), with no allocation: entries live in a slab and
//! the map is keyed by the SQL text, so a lookup borrows the caller's
//! `&str`.
//!
//! An evicted statement is dropped, and tokio-postgres then closes it on
//! the server (once no clone a borrower holds is left).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio_postgres::Statement;
use tokio_postgres::types::Type;

use crate::keywords::PoolerMode;

/// Counts of one cache, or of every cache of a manager.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StatementCacheStats {
    /// Lookups answered from the cache.
    pub hits: u64,
    /// Lookups that had to prepare.
    pub misses: u64,
    /// Statements dropped to make room.
    pub evictions: u64,
    /// Statements cached now (0 for a manager's sum).
    pub len: usize,
    /// The bound (`statement_cache_capacity`).
    pub capacity: usize,
}

/// A manager's counters, shared by the caches of all its connections.
#[derive(Debug, Default)]
pub(crate) struct SharedCounters {
    hits: AtomicU64,
    misses: AtomicU64,
    evictions: AtomicU64,
}

impl SharedCounters {
    pub(crate) fn stats(&self, capacity: usize) -> StatementCacheStats {
        StatementCacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            evictions: self.evictions.load(Ordering::Relaxed),
            len: 0,
            capacity,
        }
    }
}

/// One connection's cache. Behind a transaction-mode pooler
/// (`postgres.pooler = "transaction"`) it holds no statements, only the
/// parameter types of SQL texts sent unnamed, with the same bound and
/// counters.
#[derive(Debug)]
pub(crate) struct StatementCache {
    lru: Mutex<Lru<Statement>>,
    types: Mutex<Lru<Arc<[Type]>>>,
    shared: Arc<SharedCounters>,
    pooler: PoolerMode,
}

impl StatementCache {
    pub(crate) fn new(capacity: usize, shared: Arc<SharedCounters>, pooler: PoolerMode) -> Self {
        let (statements, types) = if pooler == PoolerMode::Transaction {
            (0, capacity)
        } else {
            (capacity, 0)
        };
        Self {
            lru: Mutex::new(Lru::new(statements)),
            types: Mutex::new(Lru::new(types)),
            shared,
            pooler,
        }
    }

    /// The connection's `postgres.pooler` setting.
    pub(crate) fn pooler(&self) -> PoolerMode {
        self.pooler
    }

    /// The parameter types learnt for `sql`, counting a hit or a miss.
    pub(crate) fn parameter_types(&self, sql: &str) -> Option<Arc<[Type]>> {
        let found = self
            .types
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(sql, &[]);
        self.count_lookup(found.is_some());
        found
    }

    /// Keeps the parameter types of `sql`.
    pub(crate) fn insert_parameter_types(&self, sql: &str, types: Arc<[Type]>) {
        let evicted = self
            .types
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(sql, &[], types);
        if evicted.is_some() {
            self.shared.evictions.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn lock(&self) -> MutexGuard<'_, Lru<Statement>> {
        // The lock guards plain data and no code that can panic while
        // holding it leaves it inconsistent, so a poisoned lock is usable.
        self.lru
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The cached statement for `sql` with parameter `types`, counting a
    /// hit or a miss.
    pub(crate) fn get(&self, sql: &str, types: &[Type]) -> Option<Statement> {
        let found = self.lock().get(sql, types);
        self.count_lookup(found.is_some());
        found
    }

    /// Counts a lookup as a hit or a miss.
    fn count_lookup(&self, hit: bool) {
        let counter = if hit {
            &self.shared.hits
        } else {
            &self.shared.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Caches `statement`, evicting the least recently used one if full.
    pub(crate) fn insert(&self, sql: &str, types: &[Type], statement: Statement) {
        let evicted = self.lock().insert(sql, types, statement);
        if evicted.is_some() {
            self.shared.evictions.fetch_add(1, Ordering::Relaxed);
        }
        drop(evicted); // closed on the server, outside the lock
    }

    /// Drops the statement for `sql` with `types`; whether it was cached.
    pub(crate) fn remove(&self, sql: &str, types: &[Type]) -> bool {
        let removed = self.lock().remove(sql, types);
        removed.is_some()
    }

    /// Drops every statement.
    pub(crate) fn clear(&self) {
        let dropped = self.lock().clear();
        drop(dropped);
        let types = self
            .types
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
        drop(types);
    }

    pub(crate) fn stats(&self) -> StatementCacheStats {
        if self.pooler == PoolerMode::Transaction {
            return self
                .types
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .stats();
        }
        self.lock().stats()
    }
}

/// An index entry: the parameter types (the rest of the key) and the slot.
type Keyed = (Box<[Type]>, usize);

/// A slab node of the recency list.
#[derive(Debug)]
struct Node<V> {
    sql: Box<str>,
    statement: V,
    prev: Option<usize>,
    next: Option<usize>,
}

/// The LRU itself (generic over the value so it can be tested without a
/// server): a slab of nodes in a doubly linked list (head = most
/// recently used) and an index by SQL text.
#[derive(Debug)]
struct Lru<V> {
    capacity: usize,
    index: HashMap<Box<str>, Vec<Keyed>>,
    nodes: Vec<Option<Node<V>>>,
    free: Vec<usize>,
    head: Option<usize>,
    tail: Option<usize>,
    len: usize,
    hits: u64,
    misses: u64,
    evictions: u64,
}

impl<V: Clone> Lru<V> {
    fn new(capacity: usize) -> Self {
        Self {
            capacity,
            index: HashMap::new(),
            nodes: Vec::new(),
            free: Vec::new(),
            head: None,
            tail: None,
            len: 0,
            hits: 0,
            misses: 0,
            evictions: 0,
        }
    }

    fn find(&self, sql: &str, types: &[Type]) -> Option<usize> {
        self.index
            .get(sql)?
            .iter()
            .find(|(t, _)| **t == *types)
            .map(|&(_, slot)| slot)
    }

    fn node(&mut self, slot: usize) -> &mut Node<V> {
        match self.nodes[slot].as_mut() {
            Some(node) => node,
            None => unreachable!("indexed slots hold nodes"),
        }
    }

    fn get(&mut self, sql: &str, types: &[Type]) -> Option<V> {
        let Some(slot) = self.find(sql, types) else {
            self.misses += 1;
            return None;
        };
        self.hits += 1;
        self.unlink(slot);
        self.push_front(slot);
        Some(self.node(slot).statement.clone())
    }

    /// Returns the evicted statement, if one was.
    fn insert(&mut self, sql: &str, types: &[Type], statement: V) -> Option<V> {
        if self.capacity == 0 {
            return None;
        }
        if let Some(slot) = self.find(sql, types) {
            let old = std::mem::replace(&mut self.node(slot).statement, statement);
            self.unlink(slot);
            self.push_front(slot);
            drop(old); // replaced, not evicted
            return None;
        }
        let evicted = if self.len == self.capacity {
            self.tail.and_then(|tail| self.take(tail)).map(|node| {
                self.evictions += 1;
                node.statement
            })
        } else {
            None
        };
        let node = Node {
            sql: sql.into(),
            statement,
            prev: None,
            next: None,
        };
        let slot = match self.free.pop() {
            Some(slot) => {
                self.nodes[slot] = Some(node);
                slot
            }
            None => {
                self.nodes.push(Some(node));
                self.nodes.len() - 1
            }
        };
        self.index
            .entry(sql.into())
            .or_default()
            .push((types.into(), slot));
        self.push_front(slot);
        self.len += 1;
        evicted
    }

    fn remove(&mut self, sql: &str, types: &[Type]) -> Option<V> {
        let slot = self.find(sql, types)?;
        self.take(slot).map(|node| node.statement)
    }

    /// Unlinks and frees `slot`, dropping it from the index.
    fn take(&mut self, slot: usize) -> Option<Node<V>> {
        self.unlink(slot);
        let node = self.nodes[slot].take()?;
        if let Some(entries) = self.index.get_mut(&*node.sql) {
            entries.retain(|&(_, s)| s != slot);
            if entries.is_empty() {
                self.index.remove(&*node.sql);
            }
        }
        self.free.push(slot);
        self.len -= 1;
        Some(node)
    }

    fn clear(&mut self) -> Vec<Option<Node<V>>> {
        self.index.clear();
        self.free.clear();
        self.head = None;
        self.tail = None;
        self.len = 0;
        std::mem::take(&mut self.nodes)
    }

    fn unlink(&mut self, slot: usize) {
        let (prev, next) = {
            let node = self.node(slot);
            (node.prev.take(), node.next.take())
        };
        match prev {
            Some(prev) => self.node(prev).next = next,
            None if self.head == Some(slot) => self.head = next,
            None => {}
        }
        match next {
            Some(next) => self.node(next).prev = prev,
            None if self.tail == Some(slot) => self.tail = prev,
            None => {}
        }
    }

    fn push_front(&mut self, slot: usize) {
        let old_head = self.head;
        {
            let node = self.node(slot);
            node.prev = None;
            node.next = old_head;
        }
        if let Some(old) = old_head {
            self.node(old).prev = Some(slot);
        }
        self.head = Some(slot);
        if self.tail.is_none() {
            self.tail = Some(slot);
        }
    }

    fn stats(&self) -> StatementCacheStats {
        StatementCacheStats {
            hits: self.hits,
            misses: self.misses,
            evictions: self.evictions,
            len: self.len,
            capacity: self.capacity,
        }
    }

    /// SQL texts from most to least recently used (tests).
    #[cfg(test)]
    fn order(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut at = self.head;
        while let Some(slot) = at {
            let node = self.nodes[slot].as_ref().expect("linked slots hold nodes");
            out.push(node.sql.to_string());
            at = node.next;
        }
        out
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    #[test]
    fn least_recently_used_goes_first() {
        let mut lru = Lru::new(3);
        for (i, sql) in ["a", "b", "c"].into_iter().enumerate() {
            assert_eq!(lru.insert(sql, &[], i), None);
        }
        assert_eq!(lru.order(), ["c", "b", "a"]);
        assert_eq!(lru.get("a", &[]), Some(0)); // a is now the most recent
        assert_eq!(lru.order(), ["a", "c", "b"]);
        assert_eq!(lru.insert("d", &[], 3), Some(1)); // b was the least recent
        assert_eq!(lru.order(), ["d", "a", "c"]);
        assert_eq!(lru.get("b", &[]), None);
        let stats = lru.stats();
        assert_eq!(
            (stats.hits, stats.misses, stats.evictions, stats.len),
            (1, 1, 1, 3)
        );
    }

    #[test]
    fn parameter_types_are_part_of_the_key() {
        let mut lru = Lru::new(4);
        lru.insert("q", &[], 1);
        lru.insert("q", &[Type::INT4], 2);
        lru.insert("q", &[Type::INT8], 3);
        assert_eq!(lru.get("q", &[Type::INT4]), Some(2));
        assert_eq!(lru.get("q", &[]), Some(1));
        assert_eq!(lru.remove("q", &[Type::INT8]), Some(3));
        assert_eq!(lru.get("q", &[Type::INT8]), None);
        assert_eq!(lru.stats().len, 2);
    }

    #[test]
    fn replacing_moves_to_front_without_evicting() {
        let mut lru = Lru::new(2);
        lru.insert("a", &[], 1);
        lru.insert("b", &[], 2);
        assert_eq!(lru.insert("a", &[], 10), None);
        assert_eq!(lru.order(), ["a", "b"]);
        assert_eq!(lru.get("a", &[]), Some(10));
        assert_eq!(lru.stats().evictions, 0);
    }

    #[test]
    fn slots_are_reused_and_clear_empties() {
        let mut lru = Lru::new(2);
        for i in 0..100 {
            lru.insert(&format!("q{i}"), &[], i);
        }
        assert_eq!(lru.nodes.len(), 2, "evicted slots are reused");
        assert_eq!(lru.order(), ["q99", "q98"]);
        assert_eq!(lru.stats().evictions, 98);
        lru.clear();
        assert_eq!(lru.stats().len, 0);
        assert_eq!(lru.get("q99", &[]), None);
        lru.insert("x", &[], 1);
        assert_eq!(lru.order(), ["x"]);
    }

    #[test]
    fn zero_capacity_caches_nothing() {
        let mut lru = Lru::new(0);
        assert_eq!(lru.insert("a", &[], 1), None);
        assert_eq!(lru.get("a", &[]), None);
        assert_eq!(lru.stats().len, 0);
    }
}
