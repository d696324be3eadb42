//! Guard markers (`MADV_GUARD_INSTALL`, `mm/madvise.c`): page-table entries
//! that make an access fault with `SIGSEGV` (`handle_pte_marker` in
//! `mm/memory.c`). They are page-table state, so they go with the page
//! tables: unmapping a range drops them (`zap_pte_range`), mremap carries
//! them to the new address (`move_ptes`), mprotect, `MADV_DONTNEED` and
//! `MADV_FREE` leave them alone.
//!
//! The set lives in [`MmState::guard_pages`] as disjoint `start -> end`
//! ranges of page addresses.

use mm_core::MmState;

/// Marks `[start, end)` as guard pages.
pub fn install(st: &mut MmState, start: u64, end: u64) {
    if start >= end {
        return;
    }
    let (mut lo, mut hi) = (start, end);
    // Absorb every range that overlaps or touches [start, end).
    let touching: Vec<(u64, u64)> = st
        .guard_pages
        .range(..=end)
        .rev()
        .take_while(|&(_, &e)| e >= start)
        .map(|(&s, &e)| (s, e))
        .collect();
    for (s, e) in touching {
        st.guard_pages.remove(&s);
        lo = lo.min(s);
        hi = hi.max(e);
    }
    st.guard_pages.insert(lo, hi);
}

/// Removes the guard markers in `[start, end)`.
#[inline]
pub fn remove(st: &mut MmState, start: u64, end: u64) {
    if start < end && !st.guard_pages.is_empty() {
        remove_some(st, start, end);
    }
}

/// [`remove`] when some guard markers exist.
fn remove_some(st: &mut MmState, start: u64, end: u64) {
    let hit: Vec<(u64, u64)> = st
        .guard_pages
        .range(..end)
        .rev()
        .take_while(|&(_, &e)| e > start)
        .map(|(&s, &e)| (s, e))
        .collect();
    for (s, e) in hit {
        st.guard_pages.remove(&s);
        if s < start {
            st.guard_pages.insert(s, start);
        }
        if e > end {
            st.guard_pages.insert(end, e);
        }
    }
}

/// Does the page at `addr` hold a guard marker?
pub fn is_guard(st: &MmState, addr: u64) -> bool {
    st.guard_pages
        .range(..=addr)
        .next_back()
        .is_some_and(|(_, &e)| addr < e)
}

/// Moves the markers of `[from, from + len)` to `[to, to + len)` (the
/// destination has none: it was just unmapped or never mapped).
pub fn relocate(st: &mut MmState, from: u64, to: u64, len: u64) {
    let end = from + len;
    let moved: Vec<(u64, u64)> = st
        .guard_pages
        .range(..end)
        .rev()
        .take_while(|&(_, &e)| e > from)
        .map(|(&s, &e)| (s.max(from), e.min(end)))
        .collect();
    if moved.is_empty() {
        return;
    }
    remove(st, from, end);
    remove(st, to, to + len);
    for (s, e) in moved {
        install(st, s - from + to, e - from + to);
    }
}

#[cfg(test)]
mod tests {
    use mm_core::MmStruct;

    use super::*;

    #[test]
    fn ranges_merge_split_and_move() {
        let mm: MmStruct = MmStruct::default();
        let mut w = mm.write();
        let st = w.st();
        install(st, 0x1000, 0x3000);
        install(st, 0x3000, 0x4000);
        install(st, 0x8000, 0x9000);
        assert_eq!(
            st.guard_pages.iter().collect::<Vec<_>>(),
            [(&0x1000, &0x4000), (&0x8000, &0x9000)]
        );
        remove(st, 0x2000, 0x3000);
        assert!(is_guard(st, 0x1000) && !is_guard(st, 0x2000) && is_guard(st, 0x3fff));
        relocate(st, 0x1000, 0x10000, 0x8000);
        assert!(!is_guard(st, 0x1000) && is_guard(st, 0x10000) && is_guard(st, 0x17000));
        assert!(!is_guard(st, 0x11000) && is_guard(st, 0x12000) && !is_guard(st, 0x13000));
    }
}
