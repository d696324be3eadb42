//! The VMA tree against a `BTreeMap` model: lookups, neighbours, gap search,
//! and the lockless view, over random insert/remove/resize sequences.
#![cfg(not(loom))]

use std::collections::BTreeMap;

use mm_core::tree::{Tree, TreeShared};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Insert { start: u64, len: u64 },
    Remove { at: u64 },
    Resize { at: u64, dstart: i64, dend: i64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u64..400, 1u64..6).prop_map(|(start, len)| Op::Insert { start, len }),
        2 => (0u64..400).prop_map(|at| Op::Remove { at }),
        1 => (0u64..400, -3i64..4, -3i64..4).prop_map(|(at, dstart, dend)| Op::Resize { at, dstart, dend }),
    ]
}

/// Reference: highest gap with clipped size >= size, by brute force.
fn model_gaps(m: &BTreeMap<u64, (u64, u32)>) -> Vec<(u64, u64)> {
    let mut gaps = vec![];
    let mut prev = 0;
    for (&s, &(e, _)) in m {
        if s > prev {
            gaps.push((prev, s));
        }
        prev = e;
    }
    gaps.push((prev, u64::MAX));
    gaps
}

fn clip(g: (u64, u64), low: u64, high: u64, size: u64) -> Option<(u64, u64)> {
    let (a, b) = (g.0.max(low), g.1.min(high));
    (b > a && b - a >= size).then_some((a, b))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]
    #[test]
    fn tree_matches_btreemap(ops in prop::collection::vec(op(), 1..300)) {
        let sh = TreeShared::new(4096);
        let mut t = Tree::default();
        let mut m: BTreeMap<u64, (u64, u32)> = BTreeMap::new();
        let mut next_val = 0u32;
        for op in ops {
            match op {
                Op::Insert { start, len } => {
                    let (s, e) = (start * 4096, (start + len) * 4096);
                    let overlaps = m.range(..e).next_back().is_some_and(|(_, &(pe, _))| pe > s);
                    if !overlaps {
                        next_val += 1;
                        t.insert(&sh, s, e, next_val).unwrap();
                        m.insert(s, (e, next_val));
                    }
                }
                Op::Remove { at } => {
                    let a = at * 4096;
                    if let Some(p) = t.lookup(a) {
                        let e = t.get(p);
                        t.remove(&sh, p);
                        prop_assert!(m.remove(&e.start).is_some());
                    } else {
                        prop_assert!(m.range(..=a).next_back().is_none_or(|(_, &(e, _))| e <= a));
                    }
                }
                Op::Resize { at, dstart, dend } => {
                    let a = at * 4096;
                    if let Some(p) = t.lookup(a) {
                        let e = t.get(p);
                        let ns = e.start as i64 + dstart * 4096;
                        let ne = e.end as i64 + dend * 4096;
                        if ns >= 0 && ne > ns {
                            let (ns, ne) = (ns as u64, ne as u64);
                            let lo_ok = m.range(..e.start).next_back().is_none_or(|(_, &(pe, _))| pe <= ns);
                            let hi_ok = m.range(e.start + 1..).next().is_none_or(|(&nx, _)| nx >= ne);
                            if lo_ok && hi_ok {
                                t.set_range(&sh, p, ns, ne);
                                m.remove(&e.start);
                                m.insert(ns, (ne, e.val));
                            }
                        }
                    }
                }
            }
            t.check(&sh).map_err(TestCaseError::fail)?;
            let got: Vec<_> = t.iter().map(|e| (e.start, e.end, e.val)).collect();
            let want: Vec<_> = m.iter().map(|(&s, &(e, v))| (s, e, v)).collect();
            prop_assert_eq!(&got, &want);
        }
        // Queries at every page boundary.
        let gaps = model_gaps(&m);
        for a in (0..410u64).map(|p| p * 4096) {
            let want_vma = m.range(..=a).next_back().filter(|&(_, &(e, _))| e > a).map(|(_, &(_, v))| v);
            prop_assert_eq!(t.lookup(a).map(|p| t.get(p).val), want_vma);
            prop_assert_eq!(sh.lookup_le(a).filter(|_| want_vma.is_some()), want_vma);
            // The lockless walk: the greatest start <= a, else the first
            // entry (the reader's range check rejects it).
            let want_le = m.range(..=a).next_back().or_else(|| m.iter().next()).map(|(_, &(_, v))| v);
            prop_assert_eq!(sh.lookup_le(a), want_le);
            let want_gt = m.range(a + 1..).next().map(|(_, &(_, v))| v);
            prop_assert_eq!(sh.first_gt(a), want_gt);
            let want_find = m.iter().find(|&(_, &(e, _))| e > a).map(|(_, &(_, v))| v);
            prop_assert_eq!(t.find_vma(a).map(|p| t.get(p).val), want_find);
            for size in [4096u64, 3 * 4096, 7 * 4096] {
                for high in [a + 4096, a + 50 * 4096, u64::MAX] {
                    let low = a / 2;
                    let want_hi = gaps.iter().rev().find_map(|&g| clip(g, low, high, size));
                    prop_assert_eq!(t.highest_gap(low, high, size), want_hi, "highest low={:#x} high={:#x} size={:#x}", low, high, size);
                    let want_lo = gaps.iter().find_map(|&g| clip(g, low, high, size));
                    prop_assert_eq!(t.lowest_gap(low, high, size), want_lo, "lowest low={:#x} high={:#x} size={:#x}", low, high, size);
                }
            }
        }
    }
}

#[test]
fn many_entries_grow_and_shrink() {
    let sh = TreeShared::new(100_000);
    let mut t = Tree::default();
    for i in 0..20_000u64 {
        t.insert(&sh, i * 8192, i * 8192 + 4096, i as u32).unwrap();
    }
    t.check(&sh).unwrap();
    assert!(t.height() >= 4, "height {}", t.height());
    for i in (0..20_000u64).step_by(97) {
        assert_eq!(
            sh.first_gt(i * 8192),
            (i < 19_999).then_some(i as u32 + 1),
            "first_gt of entry {i}"
        );
    }
    for i in (0..20_000u64).step_by(3) {
        let p = t.lookup(i * 8192).unwrap();
        t.remove(&sh, p);
    }
    t.check(&sh).unwrap();
    assert_eq!(t.len(), 20_000 - 6667);
    for i in 0..20_000u64 {
        if let Some(p) = t.lookup(i * 8192) {
            t.remove(&sh, p);
        }
    }
    t.check(&sh).unwrap();
    assert!(t.is_empty());
    assert_eq!(sh.lookup_le(u64::MAX), None);
}

#[test]
fn sequential_growth_keeps_the_tree_shallow() {
    // Address spaces grow upwards (brk, MAP_FIXED runs) and downwards
    // (top-down mmap): both must leave nodes nearly full.
    for ascending in [true, false] {
        let sh = TreeShared::new(100_000);
        let mut t = Tree::default();
        for i in 0..65_000u64 {
            let k = if ascending { i } else { 65_000 - i };
            t.insert(&sh, k * 8192, k * 8192 + 4096, i as u32).unwrap();
        }
        t.check(&sh).unwrap();
        // 15 of 16 slots filled per node: 15^4 < 65,000 <= 15^5.
        assert_eq!(t.height(), 5, "ascending {ascending}");
        for i in 0..65_000u64 {
            let k = if ascending { i } else { 65_000 - i };
            assert_eq!(t.get(t.lookup(k * 8192 + 100).unwrap()).val, i as u32);
        }
    }
}

#[test]
fn growth_between_fixed_entries_stays_shallow() {
    // A real address space grows between fixed entries (top-down mmap
    // between the heap and the stack). An append to a full node splits
    // off one entry, so that the next insert next to it finds room; no
    // pattern may leave nodes of one entry or a deep tree.
    for descending in [true, false] {
        let sh = TreeShared::new(100_000);
        let mut t = Tree::default();
        let top = 70_000u64 * 8192;
        t.insert(&sh, 0, 4096, 0).unwrap();
        t.insert(&sh, top, top + 4096, 1).unwrap();
        for i in 1..65_000u64 {
            let k = if descending { 65_000 - i } else { i };
            t.insert(&sh, k * 8192, k * 8192 + 4096, i as u32 + 1).unwrap();
        }
        t.check(&sh).unwrap();
        assert!(t.height() <= 5, "descending {descending}: height {}", t.height());
        assert!(
            t.node_count() <= 65_000 / 7,
            "descending {descending}: {} nodes",
            t.node_count()
        );
    }
}

/// `MM_KEY_SEARCH=portable` (CI's second run of these tests) turns the
/// vector key search off, so that the walks above ran the binary search.
#[cfg(all(target_arch = "x86_64", not(miri)))]
#[test]
fn portable_key_search_is_used_when_asked() {
    if std::env::var_os("MM_KEY_SEARCH").is_some_and(|v| v == "portable") {
        assert!(mm_core::ordering::keys::Avx2Search::detect().is_none());
    } else if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("popcnt") {
        assert!(mm_core::ordering::keys::Avx2Search::detect().is_some());
    }
}
