//! A shard's cache of recent routing decisions.
//!
//! The key is exactly what the table can see: the table version, the called and caller
//! numbers, the context, and the value (or absence) of every parameter the table reads.
//! Decisions that used chance or global variables are never stored. The cache is bounded with
//! two generations: when the young one fills, it becomes the old one and the previous old one
//! is dropped; a hit in the old generation is promoted. Each shard owns one; nothing is shared.

use std::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashTable};

use super::eval::Decision;
use super::subst::{Env, Params};
use super::table::RouteTable;

/// Hit and miss counts, for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    /// Decisions that could not be cached (impure).
    pub uncacheable: u64,
    /// Times a new table version emptied the cache.
    pub flushes: u64,
}

pub struct RouteCache {
    version: u64,
    capacity: usize,
    hasher: DefaultHashBuilder,
    young: HashTable<Entry>,
    old: HashTable<Entry>,
    key: Vec<u8>,
    /// The last decision that could not be cached, lent out by [`RouteCache::route`].
    uncached: Decision,
    pub stats: CacheStats,
}

struct Entry {
    hash: u64,
    key: Box<[u8]>,
    decision: Box<Decision>,
}

const ABSENT: u8 = 0x01;
const SEP: u8 = 0x00;

impl RouteCache {
    /// A cache holding up to `capacity` decisions per generation (so at most twice that).
    pub fn new(capacity: usize) -> RouteCache {
        let capacity = capacity.max(1);
        RouteCache {
            version: 0,
            capacity,
            hasher: DefaultHashBuilder::default(),
            young: HashTable::with_capacity(capacity.min(4096)),
            old: HashTable::new(),
            key: Vec::with_capacity(64),
            uncached: Decision::default(),
            stats: CacheStats::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.young.len() + self.old.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn clear(&mut self) {
        self.young.clear();
        self.old.clear();
    }

    fn build_key(&mut self, table: &RouteTable, params: &Params) {
        let k = &mut self.key;
        k.clear();
        for name in ["called", "caller", "context"]
            .into_iter()
            .chain(table.reads.iter().map(String::as_str))
        {
            match params.get(name) {
                // Values cannot hold NUL through the SMPP path (C-octet strings); escape anyway
                // so that no two parameter lists share a key.
                Some(v) if !v.bytes().any(|b| b <= ABSENT) => k.extend_from_slice(v.as_bytes()),
                Some(v) => {
                    for &b in v.as_bytes() {
                        if b <= ABSENT {
                            k.push(ABSENT);
                        }
                        k.push(b);
                    }
                }
                None => k.push(ABSENT),
            }
            k.push(SEP);
        }
    }

    /// The decision for a message: from the cache when the same inputs were routed under the
    /// same table version, else evaluated (and stored when it is pure).
    pub fn route(&mut self, table: &RouteTable, params: &Params, env: &mut dyn Env) -> &Decision {
        if table.version != self.version {
            if !self.is_empty() {
                self.stats.flushes += 1;
            }
            self.clear();
            self.version = table.version;
        }
        self.build_key(table, params);
        let hash = self.hasher.hash_one(self.key.as_slice());
        let key = self.key.as_slice();
        let present = self
            .young
            .find(hash, |e| e.hash == hash && *e.key == *key)
            .is_some();
        if !present {
            self.fill(hash, table, params, env);
        } else {
            self.stats.hits += 1;
        }
        let key = self.key.as_slice();
        match self.young.find(hash, |e| e.hash == hash && *e.key == *key) {
            Some(e) => &e.decision,
            None => &self.uncached,
        }
    }

    /// A miss in the young generation: promote from the old one, or evaluate and store (or,
    /// for an impure decision, keep it aside in `uncached`).
    fn fill(&mut self, hash: u64, table: &RouteTable, params: &Params, env: &mut dyn Env) {
        let key = self.key.as_slice();
        if let Ok(e) = self
            .old
            .find_entry(hash, |e| e.hash == hash && *e.key == *key)
        {
            self.stats.hits += 1;
            let (entry, _) = e.remove();
            self.insert(entry);
            return;
        }
        self.stats.misses += 1;
        let decision = table.route(params, env, false);
        if decision.cacheable {
            let key: Box<[u8]> = self.key.as_slice().into();
            self.insert(Entry {
                hash,
                key,
                decision: Box::new(decision),
            });
        } else {
            self.stats.uncacheable += 1;
            self.uncached = decision;
        }
    }

    fn insert(&mut self, entry: Entry) {
        if self.young.len() >= self.capacity {
            self.old = std::mem::take(&mut self.young);
            self.young.reserve(self.capacity.min(4096), |e| e.hash);
        }
        self.young.insert_unique(entry.hash, entry, |e| e.hash);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct NoEnv;
    impl Env for NoEnv {
        fn var(&self, _: &str) -> Option<String> {
            None
        }
        fn set_var(&mut self, _: &str, _: &str) {}
        fn random_digit(&mut self) -> u8 {
            4
        }
        fn impure(&mut self) {}
    }

    fn p(called: &str, extra: &[(&str, &str)]) -> Params {
        let mut p: Params = extra
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        p.set("called", called);
        p
    }

    #[test]
    fn hits_depend_on_exactly_the_parameters_the_table_reads() {
        let t = RouteTable::load("r", "[default]\n${module}^smppserver$=a\n^1=b\n", 1).unwrap();
        let mut c = RouteCache::new(100);
        let mut env = NoEnv;
        assert_eq!(
            c.route(&t, &p("1", &[("module", "smppserver")]), &mut env)
                .target,
            "a"
        );
        assert_eq!(
            c.route(&t, &p("1", &[("module", "smppclient")]), &mut env)
                .target,
            "b"
        );
        // A parameter the table never reads does not split the key.
        assert_eq!(
            c.route(
                &t,
                &p("1", &[("module", "smppclient"), ("billid", "9")]),
                &mut env
            )
            .target,
            "b"
        );
        assert_eq!(c.stats.hits, 1);
        assert_eq!(c.stats.misses, 2);
        // Absent and empty are different keys.
        c.route(&t, &p("1", &[("module", "")]), &mut env);
        assert_eq!(c.stats.misses, 3);
    }

    #[test]
    fn a_new_version_empties_the_cache() {
        let t1 = RouteTable::load("r", "[default]\n^1=a\n", 1).unwrap();
        let t2 = RouteTable::load("r", "[default]\n^1=b\n", 2).unwrap();
        let mut c = RouteCache::new(100);
        let mut env = NoEnv;
        assert_eq!(c.route(&t1, &p("1", &[]), &mut env).target, "a");
        assert_eq!(c.route(&t2, &p("1", &[]), &mut env).target, "b");
        assert_eq!(c.stats.flushes, 1);
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn a_parameter_only_substituted_into_a_target_is_not_in_the_key_and_not_cached() {
        // The seed's status-report URL carries billid: unique per message. Submits must still
        // be cached; status reports through that line must not be.
        let t = RouteTable::load(
            "r",
            "[default]\n${sms_type}^status_report$=http://x/?b=${billid}\n^1=smppclient/a\n",
            1,
        )
        .unwrap();
        assert_eq!(t.reads, vec!["sms_type".to_string()]);
        let mut c = RouteCache::new(100);
        let mut env = NoEnv;
        for b in ["1", "2"] {
            assert_eq!(
                c.route(&t, &p("1", &[("billid", b)]), &mut env).target,
                "smppclient/a"
            );
        }
        assert_eq!((c.stats.hits, c.stats.misses), (1, 1));
        for b in ["1", "2"] {
            let d = c.route(
                &t,
                &p("1", &[("billid", b), ("sms_type", "status_report")]),
                &mut env,
            );
            assert_eq!(d.target, format!("http://x/?b={b}"));
        }
        assert_eq!(c.stats.uncacheable, 2);
    }

    #[test]
    fn impure_decisions_are_never_stored() {
        let t = RouteTable::load("r", "[default]\n^1=a;x=$(random,?)\n", 1).unwrap();
        let mut c = RouteCache::new(100);
        let mut env = NoEnv;
        c.route(&t, &p("1", &[]), &mut env);
        c.route(&t, &p("1", &[]), &mut env);
        assert_eq!(c.stats.misses, 2);
        assert_eq!(c.stats.uncacheable, 2);
        assert!(c.is_empty());
    }

    #[test]
    fn the_cache_is_bounded_and_keeps_recent_entries() {
        let t = RouteTable::load("r", "[default]\n^\\(.*\\)$=x/\\1\n", 1).unwrap();
        let mut c = RouteCache::new(10);
        let mut env = NoEnv;
        for i in 0..1000 {
            c.route(&t, &p(&i.to_string(), &[]), &mut env);
            assert!(c.len() <= 20);
        }
        let before = c.stats.hits;
        assert_eq!(c.route(&t, &p("999", &[]), &mut env).target, "x/999");
        assert_eq!(c.stats.hits, before + 1);
    }

    #[test]
    fn values_with_separator_bytes_do_not_collide() {
        let t = RouteTable::load("r", "[default]\n^\\(.*\\)$=x/\\1;c=${caller}\n", 1).unwrap();
        let mut c = RouteCache::new(10);
        let mut env = NoEnv;
        let a = c
            .route(&t, &p("1\u{0}", &[("caller", "2")]), &mut env)
            .target
            .clone();
        let b = c
            .route(&t, &p("1", &[("caller", "\u{0}2")]), &mut env)
            .target
            .clone();
        assert_ne!(a, b);
    }
}
