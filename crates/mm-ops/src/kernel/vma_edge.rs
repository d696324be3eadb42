//! The commonest `vma_modify_flags` (`mm/vma.c`): a head or a tail of one
//! VMA takes new flags and the neighbour it touches absorbs it, so that
//! only the boundary between the two moves (`vma_merge_existing_range`
//! with `commit_merge`'s `adjust_middle_start` / `adjust_next_start`).
//!
//! [`vma_modify_flags_edge`] decides this case straight from the two VMAs,
//! without building a [`Vmg`](crate::vma::Vmg), and makes exactly the
//! checks, failslab calls and changes that [`vma_modify`](crate::vma::vma_modify)
//! makes for it. Any other case is left to `vma_modify`, untouched.

use mm_core::{BarrierPolicy, MmWrite, VmFlags, VmaId, VmaView};

use crate::uapi::{Errno, PAGE_SHIFT};
use crate::vma::{add_flags, anon_vmas_mergeable, dup_anon_vma, merge_allocs_fail};

/// `vma_modify_flags` of `[start, end)` of VMA `id` to `flags` when that
/// range is the VMA's head and `prev` absorbs it, or its tail and the next
/// VMA absorbs it: moves the boundary and returns the VMA that grew.
/// `None` when the range is not such an edge or the neighbour cannot merge
/// (nothing has changed then: the caller goes through `vma_modify`);
/// `Some(Err(ENOMEM))` when the merge's allocation fails, as `vma_modify`
/// fails then.
#[inline]
pub fn vma_modify_flags_edge<P: BarrierPolicy>(
    mm: &mut MmWrite<'_, P>,
    id: VmaId,
    prev: Option<VmaId>,
    start: u64,
    end: u64,
    flags: VmFlags,
) -> Option<Result<VmaId, Errno>> {
    if flags.intersects(VmFlags::SPECIAL) {
        return None;
    }
    let m = mm.vma_ref(id);
    let (m_start, m_end, m_pgoff, file) = (m.start, m.end, m.pgoff, m.file);
    // `is_mergeable_vma` of a neighbour with the range's attributes.
    let mergeable = |f: VmFlags, nf| (f ^ flags).0 & !VmFlags::IGNORE_MERGE.0 == 0 && nf == file;
    if start == m_start && end < m_end {
        // The head: `can_vma_merge_left`.
        let p = prev?;
        let pv = mm.vma_ref(p);
        if pv.end != start || !mergeable(pv.flags, pv.file) || pv.pgoff + pv.pages() != m_pgoff {
            return None;
        }
        let sticky = (flags | pv.flags) & VmFlags::STICKY;
        if !anon_vma_ok(mm, id, p) {
            return None;
        }
        if merge_allocs_fail(mm, p, &[id]) {
            return Some(Err(Errno::ENOMEM));
        }
        dup_anon_vma(mm, p, id);
        let pgoff = m_pgoff + ((end - m_start) >> PAGE_SHIFT);
        mm.vma_move_boundary(p, id, end, pgoff);
        add_flags(mm, p, sticky);
        Some(Ok(p))
    } else if start > m_start && end == m_end {
        // The tail: `can_vma_merge_right` (no left merge, so `prev`'s
        // `anon_vma` does not matter).
        let n = mm.vma_next(id)?;
        let nv = mm.vma_ref(n);
        let pgoff = m_pgoff + ((start - m_start) >> PAGE_SHIFT);
        if nv.start != end || !mergeable(nv.flags, nv.file) || nv.pgoff != pgoff + ((end - start) >> PAGE_SHIFT) {
            return None;
        }
        let sticky = (flags | nv.flags) & VmFlags::STICKY;
        if !anon_vma_ok(mm, id, n) {
            return None;
        }
        if merge_allocs_fail(mm, n, &[id]) {
            return Some(Err(Errno::ENOMEM));
        }
        dup_anon_vma(mm, n, id);
        mm.vma_move_boundary(id, n, start, pgoff);
        add_flags(mm, n, sticky);
        Some(Ok(n))
    } else {
        None
    }
}

/// `is_mergeable_anon_vma` of neighbour `tgt` for a range of `id`: a fork
/// child's `anon_vma` (`vma_had_uncowed_parents`) merges with none but
/// itself, on either side (found by the random fork sessions, seed 214:
/// this path once let a fork child's range join a neighbour without one).
#[inline]
fn anon_vma_ok<P: BarrierPolicy>(mm: &MmWrite<'_, P>, id: VmaId, tgt: VmaId) -> bool {
    match mm.vma_anon_vma(id) {
        // The common case, neither has one: decided by the target alone.
        None => mm.vma_anon_vma(tgt).is_none_or(|t| !t.is_fork_child()),
        src => anon_vmas_mergeable(mm.vma_anon_vma(tgt), src),
    }
}
