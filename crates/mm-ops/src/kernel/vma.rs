//! VMA merging and splitting (`mm/vma.c`): `vma_merge_new_range`,
//! `vma_merge_existing_range`, `vma_expand`, `commit_merge`, `__split_vma`,
//! `vma_modify` (the `anon_vma` reuse rules of `find_mergeable_anon_vma`
//! are in [`crate::anon_vma`]).

use mm_core::failslab::AllocSite;
use mm_core::file::FileId;
use mm_core::mm::NoMem;
use mm_core::{AnonVmaId, BarrierPolicy, FaultView, MmWrite, VmFlags, Vma, VmaId, VmaView};

pub use crate::anon_vma::{anon_vma_prepare, find_mergeable_anon_vma};
use crate::uapi::{Errno, PAGE_SHIFT};
pub use crate::vma_copy::{Copied, copy_vma, vma_merge_extend};

/// `struct vma_merge_struct`: a proposed range and its attributes.
#[derive(Clone, Debug, Default)]
pub struct Vmg {
    /// The VMA before the range.
    pub prev: Option<VmaId>,
    /// The VMA being modified (existing-range merges), if any.
    pub middle: Option<VmaId>,
    /// The VMA after the range.
    pub next: Option<VmaId>,
    /// The VMA that survives a merge.
    pub target: Option<VmaId>,
    /// Start of the range.
    pub start: u64,
    /// End of the range.
    pub end: u64,
    /// `vm_pgoff` the range would have.
    pub pgoff: u64,
    /// `vm_flags` the range would have.
    pub flags: VmFlags,
    /// `vm_file` the range would have.
    pub file: Option<FileId>,
    /// `anon_vma` the range brings.
    pub anon_vma: Option<AnonVmaId>,
    /// Only expand `prev` (brk).
    pub just_expand: bool,
    /// mremap's source VMA (`copied_from`).
    pub copied_from: Option<VmaId>,
    /// A merge allocation failed (`VMA_MERGE_ERROR_NOMEM`): nothing was
    /// changed, and the caller decides what the failure means.
    pub nomem: bool,
    pub(crate) remove_middle: bool,
    pub(crate) remove_next: bool,
    pub(crate) adjust_middle_start: bool,
    pub(crate) adjust_next_start: bool,
}

impl Vmg {
    /// `VMG_VMA_STATE`: a range `[start, end)` of the existing VMA `vma`.
    pub fn for_vma(v: &Vma, id: VmaId, prev: Option<VmaId>, start: u64, end: u64) -> Vmg {
        Vmg {
            prev,
            middle: Some(id),
            start,
            end,
            pgoff: v.pgoff + ((start - v.start) >> PAGE_SHIFT),
            flags: v.flags,
            file: v.file,
            anon_vma: v.anon_vma,
            ..Vmg::default()
        }
    }
}

fn pages(start: u64, end: u64) -> u64 {
    (end - start) >> PAGE_SHIFT
}

/// `is_mergeable_vma`: flags (but soft-dirty), file and the unmodeled
/// attributes (mempolicy, userfaultfd context, anon name) must match.
fn is_mergeable_vma(v: &Vma, vmg: &Vmg) -> bool {
    (v.flags ^ vmg.flags).0 & !VmFlags::IGNORE_MERGE.0 == 0 && v.file == vmg.file
}

/// `is_mergeable_anon_vma` of VMA `tgt`: two distinct `anon_vma`s
/// conflict, and so does one on a fork child's side only
/// (`vma_is_fork_child`: an `anon_vma_chain` of more than one entry, see
/// [`AnonVmaId::FORK_CHILD`]), whether the target has it or the range
/// brings it (from `middle` or mremap's `copied_from`, whose `anon_vma`
/// the range carries).
#[inline]
fn is_mergeable_anon_vma<P: BarrierPolicy>(mm: &MmWrite<'_, P>, tgt: VmaId, vmg: &Vmg) -> bool {
    anon_vmas_mergeable(mm.vma_anon_vma(tgt), vmg.anon_vma)
}

/// The rule of [`is_mergeable_anon_vma`] on the two `anon_vma`s: the
/// target's and the one the range brings.
#[inline]
pub(crate) fn anon_vmas_mergeable(tgt: Option<AnonVmaId>, src: Option<AnonVmaId>) -> bool {
    match (tgt, src) {
        (None, None) => true,
        (None, Some(src)) => !src.is_fork_child(),
        (Some(t), None) => !t.is_fork_child(),
        (Some(t), Some(src)) => t == src,
    }
}

/// `can_merge_remove_vma`: a merge may delete VMA `id` only if its
/// `vm_ops` has no `close`. Of the model's VMAs only System V segments'
/// have one (`shm_close`); hugetlb and special mappings, which also do,
/// never merge (`VM_SPECIAL`).
#[inline]
fn can_merge_remove_vma<P: BarrierPolicy>(mm: &MmWrite<'_, P>, id: VmaId) -> bool {
    let v = mm.vma_ref(id);
    // hugetlb_vm_ops has close too (hugetlb_vm_op_close).
    !v.flags.contains(VmFlags::HUGETLB) && v.file.is_none_or(|f| !mm.files().file_inode(f).is_sysv_shm())
}

/// `can_vma_merge_before`: the range can merge into `next`.
#[inline]
fn can_vma_merge_before<P: BarrierPolicy>(mm: &MmWrite<'_, P>, vmg: &Vmg) -> bool {
    let id = vmg.next.expect("caller checked");
    let next = mm.vma_ref(id);
    is_mergeable_vma(next, vmg)
        && next.pgoff == vmg.pgoff + pages(vmg.start, vmg.end)
        && is_mergeable_anon_vma(mm, id, vmg)
}

/// `can_vma_merge_left` with `can_vma_merge_after`: `prev` ends at the
/// range and can absorb it.
#[inline]
fn can_vma_merge_left<P: BarrierPolicy>(mm: &MmWrite<'_, P>, vmg: &Vmg) -> bool {
    let Some(id) = vmg.prev else { return false };
    let prev = mm.vma_ref(id);
    prev.end == vmg.start
        && is_mergeable_vma(prev, vmg)
        && prev.pgoff + prev.pages() == vmg.pgoff
        && is_mergeable_anon_vma(mm, id, vmg)
}

/// `can_vma_merge_right`: also refuses when `prev` and `next` carry two
/// different `anon_vma`s (the merge then degrades to the left side).
#[inline]
fn can_vma_merge_right<P: BarrierPolicy>(mm: &MmWrite<'_, P>, vmg: &Vmg, left: bool) -> bool {
    let Some(next) = vmg.next else { return false };
    if vmg.end != mm.vma_ref(next).start || !can_vma_merge_before(mm, vmg) {
        return false;
    }
    if !left {
        return true;
    }
    let Some(a) = mm.vma_anon_vma(vmg.prev.expect("left merge")) else {
        return true;
    };
    mm.vma_anon_vma(next).is_none_or(|b| a == b)
}

/// `dup_anon_vma`: a target without an `anon_vma` takes the source's.
#[inline]
pub(crate) fn dup_anon_vma<P: BarrierPolicy>(mm: &mut MmWrite<'_, P>, dst: VmaId, src: VmaId) {
    let s = mm.vma_anon_vma(src);
    if s.is_some() && mm.vma_anon_vma(dst).is_none() {
        mm.set_anon_vma(dst, s);
    }
}

/// The allocations a merge makes before it changes anything: maple-tree
/// nodes (`vma_iter_prealloc` in `commit_merge`) and, when the target
/// takes a source's `anon_vma`, `anon_vma_clone` (`dup_anon_vma`). True
/// when one fails ([`failslab`](mm_core::failslab)); nothing has changed
/// then.
#[inline]
pub(crate) fn merge_allocs_fail<P: BarrierPolicy>(mm: &MmWrite<'_, P>, dst: VmaId, srcs: &[VmaId]) -> bool {
    mm.fail_nth().armed() && merge_allocs_fail_armed(mm, dst, srcs)
}

/// [`merge_allocs_fail`] under failure injection.
#[cold]
fn merge_allocs_fail_armed<P: BarrierPolicy>(mm: &MmWrite<'_, P>, dst: VmaId, srcs: &[VmaId]) -> bool {
    let f = mm.fail_nth();
    if f.should_fail(AllocSite::TreePrealloc) {
        return true;
    }
    let mut has = mm.vma_anon_vma(dst).is_some();
    for &src in srcs {
        if !has && mm.vma_anon_vma(src).is_some() {
            if f.should_fail(AllocSite::AnonVmaClone) {
                return true;
            }
            has = true;
        }
    }
    false
}

/// The allocations of a new VMA, before anything changes: `vm_area_alloc`
/// (or `vm_area_dup`), the tree nodes to store it (`vma_iter_prealloc`),
/// and for a copy of a VMA with an `anon_vma`, `anon_vma_clone`. True when
/// one fails ([`failslab`](mm_core::failslab)).
pub(crate) fn new_vma_allocs_fail<P: BarrierPolicy>(mm: &MmWrite<'_, P>, clones_anon_vma: bool) -> bool {
    let f = mm.fail_nth();
    f.armed()
        && (f.should_fail(AllocSite::VmAreaAlloc)
            || f.should_fail(AllocSite::TreePrealloc)
            || (clones_anon_vma && f.should_fail(AllocSite::AnonVmaClone)))
}

/// `remove_vma` after a merge or unmap: unlinks, drops the file reference
/// and `map_count`.
pub fn remove_vma<P: BarrierPolicy>(mm: &mut MmWrite<'_, P>, id: VmaId) {
    let v = mm.vma_ref(id);
    let file = v.file;
    if v.flags.contains(VmFlags::HUGETLB) {
        crate::hugetlb::unlink_hugetlb(mm, id);
    } else {
        mm.vma_unlink(id);
    }
    mm.st().map_count -= 1;
    if let Some(f) = file {
        let acct = mm.files().put(f);
        if acct > 0 {
            crate::util::vm_unacct_memory(mm.st(), acct);
        }
    }
}

/// `commit_merge`: applies the range changes and removals decided by a
/// merge. Shrinks and removals go first so that the tree never holds
/// overlapping ranges.
fn commit_merge<P: BarrierPolicy>(mm: &mut MmWrite<'_, P>, vmg: &Vmg) {
    let target = vmg.target.expect("merge has a target");
    if vmg.remove_middle {
        remove_vma(mm, vmg.middle.expect("middle"));
    }
    if vmg.remove_next {
        remove_vma(mm, vmg.next.expect("next"));
    }
    if vmg.adjust_next_start {
        // Middle shrinks to [start, end); next grows down to end.
        let mid = vmg.middle.expect("middle");
        let (m, next) = (mm.vma_ref(mid), mm.vma_ref(target));
        let (m_start, m_end) = (m.start, m.end);
        let (next_start, next_end) = (next.start, next.end);
        let pgoff = next.pgoff - ((next_start - vmg.end) >> PAGE_SHIFT);
        if m_start == vmg.start && m_end == next_start {
            mm.vma_move_boundary(mid, target, vmg.end, pgoff);
        } else {
            mm.vma_set_range(mid, vmg.start, vmg.end, vmg.pgoff);
            mm.vma_set_range(target, vmg.end, next_end, pgoff);
        }
        return;
    }
    if vmg.adjust_middle_start {
        let mid = vmg.middle.expect("middle");
        let (m, t) = (mm.vma_ref(mid), mm.vma_ref(target));
        let m_end = m.end;
        let pgoff = m.pgoff + ((vmg.end - m.start) >> PAGE_SHIFT);
        if t.start == vmg.start && t.end == m.start {
            // Target grows up to end, middle starts there.
            mm.vma_move_boundary(target, mid, vmg.end, pgoff);
            return;
        }
        mm.vma_set_range(mid, vmg.end, m_end, pgoff);
    }
    mm.vma_set_range(target, vmg.start, vmg.end, vmg.pgoff);
}

/// `vma_expand`: grows `vmg.target` over `[vmg.start, vmg.end)`, absorbing
/// `vmg.next` when the range reaches its end. False (and `vmg.nomem`)
/// when an allocation fails, before anything changed.
pub fn vma_expand<P: BarrierPolicy>(mm: &mut MmWrite<'_, P>, vmg: &mut Vmg) -> bool {
    let target = vmg.target.expect("expand has a target");
    let mut sticky = (vmg.flags | mm.vma_ref(target).flags) & VmFlags::STICKY;
    let remove_next = vmg.next.is_some_and(|n| n != target && vmg.end == mm.vma_ref(n).end);
    let (mut srcs, mut n) = ([0; 2], 0);
    for src in [vmg.next.filter(|_| remove_next), vmg.copied_from]
        .into_iter()
        .flatten()
    {
        srcs[n] = src;
        n += 1;
    }
    if merge_allocs_fail(mm, target, &srcs[..n]) {
        vmg.nomem = true;
        return false;
    }
    if remove_next {
        let next = vmg.next.expect("next");
        sticky |= mm.vma_ref(next).flags & VmFlags::STICKY;
        dup_anon_vma(mm, target, next);
    }
    if let Some(src) = vmg.copied_from {
        dup_anon_vma(mm, target, src);
    }
    vmg.remove_next = remove_next;
    commit_merge(mm, vmg);
    add_flags(mm, target, sticky);
    true
}

/// `vm_flags_set`: adds `flags` to VMA `id`.
#[inline]
pub(crate) fn add_flags<P: BarrierPolicy>(mm: &mut MmWrite<'_, P>, id: VmaId, flags: VmFlags) {
    let f = mm.vma_ref(id).flags;
    if !f.contains(flags) {
        mm.vma_set_flags(id, f | flags);
    }
}

/// `vma_merge_new_range`: tries to place a new range `[vmg.start, vmg.end)`
/// by expanding `vmg.prev` and/or `vmg.next`. Returns the expanded VMA.
#[inline]
pub fn vma_merge_new_range<P: BarrierPolicy>(mm: &mut MmWrite<'_, P>, vmg: &mut Vmg) -> Option<VmaId> {
    if vmg.flags.intersects(VmFlags::SPECIAL) || (vmg.prev.is_none() && vmg.next.is_none()) {
        return None;
    }
    let left = can_vma_merge_left(mm, vmg);
    let right = !vmg.just_expand && can_vma_merge_right(mm, vmg, left);
    if left && !right && vmg.copied_from.is_none() && vmg.next.is_none_or(|n| mm.vma_ref(n).end != vmg.end) {
        return expand_prev(mm, vmg);
    }
    let end = vmg.end;
    if right {
        let next = vmg.next.expect("right merge");
        vmg.end = mm.vma_ref(next).end;
        vmg.target = Some(next);
    }
    if left {
        let prev = vmg.prev.expect("left merge");
        let p = mm.vma_ref(prev);
        vmg.start = p.start;
        vmg.pgoff = p.pgoff;
        vmg.target = Some(prev);
        // A next that may not be deleted: merge with prev only.
        if right && !can_merge_remove_vma(mm, vmg.next.expect("right merge")) {
            vmg.end = end;
        }
    }
    vmg.target?;
    if !vma_expand(mm, vmg) {
        vmg.target = None;
    }
    vmg.target
}

/// [`vma_expand`] of `vmg.prev` up to `vmg.end` when nothing else merges
/// (no `next` reaches `vmg.end`, no source VMA): the common expansion, as
/// `vma_merge_new_range` → `vma_expand` → `commit_merge` make it.
#[inline]
fn expand_prev<P: BarrierPolicy>(mm: &mut MmWrite<'_, P>, vmg: &mut Vmg) -> Option<VmaId> {
    let prev = vmg.prev.expect("left merge");
    let p = mm.vma_ref(prev);
    let sticky = (vmg.flags | p.flags) & VmFlags::STICKY;
    (vmg.start, vmg.pgoff, vmg.target) = (p.start, p.pgoff, Some(prev));
    if merge_allocs_fail(mm, prev, &[]) {
        vmg.nomem = true;
        vmg.target = None;
        return None;
    }
    mm.vma_set_range(prev, vmg.start, vmg.end, vmg.pgoff);
    add_flags(mm, prev, sticky);
    vmg.target
}

/// `vma_merge_existing_range`: after a range of `vmg.middle` changes
/// attributes, merges it into an identical neighbour when it touches one.
pub fn vma_merge_existing_range<P: BarrierPolicy>(mm: &mut MmWrite<'_, P>, vmg: &mut Vmg) -> Option<VmaId> {
    let middle = vmg.middle.expect("existing-range merge has a middle");
    // `anon_vma` aside, which is not read from `m`.
    let m = *mm.vma_ref(middle);
    let (start, end) = (vmg.start, vmg.end);
    let left_side = start == m.start;
    let right_side = end == m.end;
    if vmg.flags.intersects(VmFlags::SPECIAL) || (!left_side && !right_side) {
        return None;
    }
    let merge_left = left_side && can_vma_merge_left(mm, vmg);
    let mut merge_right = if right_side {
        vmg.next = mm.vma_next(middle);
        can_vma_merge_right(mm, vmg, merge_left)
    } else {
        vmg.next = None;
        false
    };
    if !merge_left && !merge_right {
        return None;
    }
    // Deleting middle (the whole VMA merges) or next (both sides) needs
    // their vm_ops without close: without middle, no merge; without next,
    // the left side alone.
    if left_side && right_side && !can_merge_remove_vma(mm, middle) {
        return None;
    }
    if merge_left && merge_right && !can_merge_remove_vma(mm, vmg.next.expect("right")) {
        merge_right = false;
    }
    let merge_both = merge_left && merge_right;
    // Sticky flags of every VMA merged end up on the result.
    let mut sticky = vmg.flags & VmFlags::STICKY;
    if merge_right {
        sticky |= mm.vma_ref(vmg.next.expect("right")).flags & VmFlags::STICKY;
    }
    if merge_left {
        sticky |= mm.vma_ref(vmg.prev.expect("left")).flags & VmFlags::STICKY;
    }
    // The target and the VMA whose `anon_vma` it would take.
    let (dst, src) = if merge_both {
        let next = vmg.next.expect("right");
        (
            vmg.prev.expect("left"),
            if mm.vma_anon_vma(next).is_some() { next } else { middle },
        )
    } else if merge_left {
        (vmg.prev.expect("left"), middle)
    } else {
        (vmg.next.expect("right"), middle)
    };
    if merge_allocs_fail(mm, dst, &[src]) {
        vmg.nomem = true;
        return None;
    }
    vmg.remove_middle = left_side && right_side;
    vmg.remove_next = merge_both;
    if merge_both {
        let (prev, next) = (vmg.prev.expect("left"), vmg.next.expect("right"));
        vmg.target = Some(prev);
        let p = mm.vma_ref(prev);
        vmg.start = p.start;
        vmg.pgoff = p.pgoff;
        vmg.end = mm.vma_ref(next).end;
        let src = if mm.vma_anon_vma(next).is_some() { next } else { middle };
        dup_anon_vma(mm, prev, src);
    } else if merge_left {
        let prev = vmg.prev.expect("left");
        vmg.target = Some(prev);
        let p = mm.vma_ref(prev);
        vmg.start = p.start;
        vmg.pgoff = p.pgoff;
        if !vmg.remove_middle {
            vmg.adjust_middle_start = true;
        }
        dup_anon_vma(mm, prev, middle);
    } else {
        let next = vmg.next.expect("right");
        vmg.target = Some(next);
        let pglen = pages(vmg.start, vmg.end);
        if vmg.remove_middle {
            let n = mm.vma_ref(next);
            vmg.end = n.end;
            vmg.pgoff = n.pgoff - pglen;
        } else {
            vmg.adjust_next_start = true;
            vmg.start = m.start;
            vmg.end = start;
            vmg.pgoff = m.pgoff;
        }
        dup_anon_vma(mm, next, middle);
    }
    commit_merge(mm, vmg);
    let target = vmg.target.expect("merged");
    add_flags(mm, target, sticky);
    vmg.target
}

/// `vm_ops->may_split`: special mappings refuse any split, hugetlb ones a
/// split that is not huge-page aligned (`special_mapping_split`,
/// `hugetlb_vm_op_split`).
#[inline]
pub fn may_split<P: BarrierPolicy>(mm: &MmWrite<'_, P>, v: &Vma, addr: u64) -> Result<(), Errno> {
    if v.special.is_some() {
        return Err(Errno::EINVAL);
    }
    if v.flags.contains(VmFlags::HUGETLB) {
        return hugetlb_may_split(mm, v, addr);
    }
    Ok(())
}

/// `hugetlb_vm_op_split` (`mm/hugetlb.c`): the split must be huge-page
/// aligned.
#[cold]
fn hugetlb_may_split<P: BarrierPolicy>(mm: &MmWrite<'_, P>, v: &Vma, addr: u64) -> Result<(), Errno> {
    let huge = v.file.map_or(2 << 20, |f| mm.files().file_inode(f).huge_size.max(4096));
    if addr & (huge - 1) != 0 {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

/// `__split_vma` (and `split_vma` when `check_count`): splits `id` at
/// `addr`. The new VMA takes the part below `addr` if `new_below`, else the
/// part above; the original is shrunk in place. Returns the new VMA.
pub fn split_vma<P: BarrierPolicy>(
    mm: &mut MmWrite<'_, P>,
    id: VmaId,
    addr: u64,
    new_below: bool,
    check_count: bool,
) -> Result<VmaId, Errno> {
    if check_count && mm.st().map_count >= mm.st().cfg.max_map_count {
        return Err(Errno::ENOMEM);
    }
    let v = mm.vma(id);
    debug_assert!(v.start < addr && addr < v.end);
    may_split(mm, &v, addr)?;
    if new_vma_allocs_fail(mm, v.anon_vma.is_some()) {
        return Err(Errno::ENOMEM);
    }
    let mut new = v;
    if new_below {
        new.end = addr;
        mm.vma_set_range(id, addr, v.end, v.pgoff + ((addr - v.start) >> PAGE_SHIFT));
    } else {
        new.start = addr;
        new.pgoff += (addr - v.start) >> PAGE_SHIFT;
        mm.vma_set_range(id, v.start, addr, v.pgoff);
    }
    let nid = match mm.vma_link(new) {
        Ok(n) => n,
        Err(NoMem) => {
            mm.vma_set_range(id, v.start, v.end, v.pgoff);
            return Err(Errno::ENOMEM);
        }
    };
    if let Some(f) = new.file {
        mm.files().get(f);
    }
    mm.st().map_count += 1;
    Ok(nid)
}

/// `vma_modify`: merge if possible, else split off the parts of `middle`
/// outside `[start, end)`. Returns the VMA now covering exactly the range
/// (or the merged VMA containing it). A failed second split leaves the
/// first in place, as in the kernel.
pub fn vma_modify<P: BarrierPolicy>(mm: &mut MmWrite<'_, P>, vmg: &mut Vmg) -> Result<VmaId, Errno> {
    let (start, end) = (vmg.start, vmg.end);
    let vma = vmg.middle.expect("modify has a middle");
    if let Some(merged) = vma_merge_existing_range(mm, vmg) {
        return Ok(merged);
    }
    if vmg.nomem {
        return Err(Errno::ENOMEM);
    }
    if mm.vma_ref(vma).start < start {
        split_vma(mm, vma, start, true, true)?;
    }
    if mm.vma_ref(vma).end > end {
        split_vma(mm, vma, end, false, true)?;
    }
    Ok(vma)
}
