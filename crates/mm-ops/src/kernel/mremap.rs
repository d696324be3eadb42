//! `mremap(2)` (`mm/mremap.c`, Linux 6.18): the argument checks, resizing
//! in place (shrink by unmapping the tail, growth by `vma_merge_extend`),
//! moves to a new area or to a fixed address (`MREMAP_MAYMOVE`,
//! `MREMAP_FIXED`, `MREMAP_DONTUNMAP`), and fixed same-size moves of a
//! range spanning several VMAs (`remap_move`). The move itself is in
//! `mremap_move.rs`.
//!
//! Page tables are not modeled: what moves with them here is the VMA's
//! `anon_vma` (through `copy_vma`) and the guard markers.

use mm_core::{BarrierPolicy, MmStruct, MmWrite, VmFlags, VmaId, VmaView};

use super::mremap_move::move_vma;
use crate::memory::mm_populate;
use crate::uapi::*;
use crate::util::*;
use crate::vma::vma_merge_extend;
use crate::vma_region::do_vmi_munmap;

/// `enum mremap_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RemapType {
    /// `old_len == new_len`.
    NoResize,
    /// `old_len > new_len`.
    Shrink,
    /// `old_len < new_len`.
    Expand,
}

/// `struct vma_remap_struct`: one mremap operation as it proceeds.
#[derive(Clone, Debug)]
pub(crate) struct Vrm {
    /// Source address.
    pub addr: u64,
    /// Source length (page aligned; hugetlb aligned once the VMA is known).
    pub old_len: u64,
    /// New length.
    pub new_len: u64,
    /// `MREMAP_*` flags.
    pub flags: u64,
    /// Destination (or the source address when the VMA stays).
    pub new_addr: u64,
    /// The source VMA.
    pub vma: Option<VmaId>,
    /// `|old_len - new_len|`.
    pub delta: u64,
    /// Expand, shrink or neither.
    pub remap_type: RemapType,
    /// A locked VMA grew: populate the new part after unlocking.
    pub populate_expand: bool,
    /// Pages charged to the commit count.
    pub charged: u64,
}

impl Vrm {
    /// `vrm_implies_new_addr`: `MREMAP_FIXED` or `MREMAP_DONTUNMAP`.
    pub fn implies_new_addr(&self) -> bool {
        self.flags & (MREMAP_FIXED | MREMAP_DONTUNMAP) != 0
    }

    /// `vrm_overlaps`.
    fn overlaps(&self) -> bool {
        let (s_old, e_old) = (self.addr, self.addr.wrapping_add(self.old_len));
        let (s_new, e_new) = (self.new_addr, self.new_addr.wrapping_add(self.new_len));
        e_old > s_new && e_new > s_old
    }

    /// `vrm_will_map_new`.
    fn will_map_new(&self) -> bool {
        self.remap_type == RemapType::Expand || self.implies_new_addr()
    }

    /// `vrm_move_only`: fixed and the same size.
    fn move_only(&self) -> bool {
        self.flags & MREMAP_FIXED != 0 && self.old_len == self.new_len
    }

    /// The source VMA (set once looked up).
    pub fn vma(&self) -> VmaId {
        self.vma.expect("source VMA looked up")
    }
}

/// `check_mremap_params`: the checks made before taking the lock.
fn check_mremap_params(vrm: &Vrm, st: &mm_core::MmState) -> Result<(), Errno> {
    let task_size = st.cfg.task_size;
    if vrm.flags & !(MREMAP_FIXED | MREMAP_MAYMOVE | MREMAP_DONTUNMAP) != 0 {
        return Err(Errno::EINVAL);
    }
    if offset_in_page(vrm.addr) != 0 {
        return Err(Errno::EINVAL);
    }
    // A zero old_len duplicates a shared mapping; a zero new_len is nonsense.
    if vrm.new_len == 0 || vrm.new_len > task_size {
        return Err(Errno::EINVAL);
    }
    if !vrm.implies_new_addr() {
        return Ok(());
    }
    if vrm.new_addr > task_size - vrm.new_len || offset_in_page(vrm.new_addr) != 0 {
        return Err(Errno::EINVAL);
    }
    if vrm.flags & MREMAP_MAYMOVE == 0 {
        return Err(Errno::EINVAL);
    }
    if vrm.flags & MREMAP_DONTUNMAP != 0 && vrm.old_len != vrm.new_len {
        return Err(Errno::EINVAL);
    }
    if vrm.overlaps() {
        return Err(Errno::EINVAL);
    }
    // Both the target and the source may be split in three before the move
    // (which itself wants four maps of headroom).
    if st.map_count + 2 >= st.cfg.max_map_count.saturating_sub(3) {
        return Err(Errno::ENOMEM);
    }
    Ok(())
}

/// `align_hugetlb`: lengths round up to the huge page size, addresses
/// must be aligned to it, and hugetlb mappings cannot grow.
fn align_hugetlb<P: BarrierPolicy>(w: &MmWrite<'_, P>, vrm: &mut Vrm) -> bool {
    let v = w.vma(vrm.vma());
    let huge = v
        .file
        .map_or(PMD_SIZE, |f| w.files().file_inode(f).huge_size.max(PAGE_SIZE));
    vrm.old_len = vrm.old_len.wrapping_add(huge - 1) & !(huge - 1);
    vrm.new_len = vrm.new_len.wrapping_add(huge - 1) & !(huge - 1);
    if vrm.addr & (huge - 1) != 0 || vrm.new_addr & (huge - 1) != 0 {
        return false;
    }
    vrm.new_len <= vrm.old_len
}

/// `check_prep_vma`: checks against the source VMA; sets the kind of
/// operation.
fn check_prep_vma<P: BarrierPolicy>(w: &MmWrite<'_, P>, vrm: &mut Vrm) -> Result<(), Errno> {
    let Some(id) = vrm.vma else {
        return Err(Errno::EFAULT);
    };
    let v = w.vma(id);
    if v.flags.contains(VmFlags::SEALED) {
        return Err(Errno::EPERM);
    }
    if v.flags.contains(VmFlags::HUGETLB) && !align_hugetlb(w, vrm) {
        return Err(Errno::EINVAL);
    }
    vrm.delta = vrm.old_len.abs_diff(vrm.new_len);
    vrm.remap_type = match vrm.old_len.cmp(&vrm.new_len) {
        std::cmp::Ordering::Equal => RemapType::NoResize,
        std::cmp::Ordering::Greater => RemapType::Shrink,
        std::cmp::Ordering::Less => RemapType::Expand,
    };
    if !vrm.implies_new_addr() {
        vrm.new_addr = vrm.addr;
    }
    if !vrm.will_map_new() {
        return Ok(());
    }
    let new_len = vrm.new_len;
    if vrm.old_len == 0 && !v.flags.intersects(VmFlags::SHARED | VmFlags::MAYSHARE) {
        return Err(Errno::EINVAL);
    }
    if vrm.flags & MREMAP_DONTUNMAP != 0 && v.flags.intersects(VmFlags::DONTEXPAND | VmFlags::PFNMAP) {
        return Err(Errno::EINVAL);
    }
    // A shrink may unmap across VMA boundaries; only what stays must fit.
    let old_len = if vrm.remap_type == RemapType::Shrink {
        new_len
    } else {
        vrm.old_len
    };
    if old_len > v.end - vrm.addr {
        return Err(Errno::EFAULT);
    }
    if new_len == old_len {
        return Ok(());
    }
    if v.flags.contains(VmFlags::LOCKED) {
        vrm.populate_expand = true;
    }
    let pgoff = v.pgoff + ((vrm.addr - v.start) >> PAGE_SHIFT);
    if pgoff.checked_add(new_len >> PAGE_SHIFT).is_none() {
        return Err(Errno::EINVAL);
    }
    if v.flags.intersects(VmFlags::DONTEXPAND | VmFlags::PFNMAP) {
        return Err(Errno::EFAULT);
    }
    if !mlock_future_ok(w.state(), v.flags & VmFlags::LOCKED, vrm.delta) {
        return Err(Errno::EAGAIN);
    }
    if !may_expand_vm(w.state(), v.flags, vrm.delta >> PAGE_SHIFT) {
        return Err(Errno::ENOMEM);
    }
    Ok(())
}

/// `vrm_calc_charge`: charges the pages the operation adds to an
/// accounted VMA (all of the copy for `MREMAP_DONTUNMAP`).
pub(crate) fn vrm_calc_charge<P: BarrierPolicy>(w: &mut MmWrite<'_, P>, vrm: &mut Vrm) -> bool {
    if !w.vma(vrm.vma()).flags.contains(VmFlags::ACCOUNT) {
        return true;
    }
    let charged = if vrm.flags & MREMAP_DONTUNMAP != 0 {
        vrm.new_len >> PAGE_SHIFT
    } else {
        vrm.delta >> PAGE_SHIFT
    };
    if !vm_enough_memory(w.st(), charged) {
        return false;
    }
    vrm.charged = charged;
    true
}

/// `vrm_uncharge`.
pub(crate) fn vrm_uncharge<P: BarrierPolicy>(w: &mut MmWrite<'_, P>, vrm: &mut Vrm) {
    if w.vma(vrm.vma()).flags.contains(VmFlags::ACCOUNT) {
        vm_unacct_memory(w.st(), vrm.charged);
        vrm.charged = 0;
    }
}

/// `vrm_stat_account`: `total_vm` and friends, and `locked_vm`.
pub(crate) fn vrm_stat_account<P: BarrierPolicy>(w: &mut MmWrite<'_, P>, vrm: &Vrm, bytes: u64) {
    let flags = w.vma(vrm.vma()).flags;
    let pages = bytes >> PAGE_SHIFT;
    vm_stat_account(w.st(), flags, pages as i64);
    if flags.contains(VmFlags::LOCKED) {
        w.st().locked_vm += pages;
    }
}

/// `shrink_vma`: unmaps the tail `[addr + new_len, addr + old_len)`.
fn shrink_vma<P: BarrierPolicy>(w: &mut MmWrite<'_, P>, vrm: &mut Vrm) -> Result<(), Errno> {
    vrm.vma = None;
    do_vmi_munmap(w, vrm.addr + vrm.new_len, vrm.delta)?;
    vrm.vma = Some(w.vma_lookup(vrm.addr).ok_or(Errno::EFAULT)?);
    Ok(())
}

/// `vrm_set_new_addr`: the destination from `get_unmapped_area`, as mmap
/// would place the VMA's file at that offset (`MAP_FIXED` for
/// `MREMAP_FIXED`, the address as a hint for `MREMAP_DONTUNMAP` alone).
fn vrm_set_new_addr<P: BarrierPolicy>(w: &MmWrite<'_, P>, vrm: &mut Vrm) -> Result<(), Errno> {
    let v = w.vma(vrm.vma());
    let pgoff = v.pgoff + ((vrm.addr - v.start) >> PAGE_SHIFT);
    let hint = if vrm.implies_new_addr() { vrm.new_addr } else { 0 };
    let mut map_flags = 0;
    if vrm.flags & MREMAP_FIXED != 0 {
        map_flags |= MAP_FIXED;
    }
    if v.flags.contains(VmFlags::MAYSHARE) {
        map_flags |= MAP_SHARED;
    }
    let file = v.file.map(|f| crate::mmap::MapFile::describe_locked(w, f));
    vrm.new_addr =
        crate::mmap::get_unmapped_area(w, file.as_ref(), hint, vrm.new_len, pgoff, map_flags, VmFlags::NONE)?;
    Ok(())
}

/// `mremap_to`: moves to `new_addr` (unmapping it first for
/// `MREMAP_FIXED`), shrinking first if asked to.
fn mremap_to<P: BarrierPolicy>(w: &mut MmWrite<'_, P>, vrm: &mut Vrm) -> Result<u64, Errno> {
    if vrm.flags & MREMAP_FIXED != 0 {
        vrm.vma = None;
        do_vmi_munmap(w, vrm.new_addr, vrm.new_len)?;
        vrm.vma = Some(w.vma_lookup(vrm.addr).ok_or(Errno::EFAULT)?);
    }
    if vrm.remap_type == RemapType::Shrink {
        shrink_vma(w, vrm)?;
        vrm.old_len = vrm.new_len;
    }
    if vrm.flags & MREMAP_DONTUNMAP != 0 {
        let flags = w.vma(vrm.vma()).flags;
        if !may_expand_vm(w.state(), flags, vrm.old_len >> PAGE_SHIFT) {
            return Err(Errno::ENOMEM);
        }
    }
    vrm_set_new_addr(w, vrm)?;
    let shrunk = vrm.remap_type == RemapType::Shrink;
    let r = move_vma(w, vrm);
    // A shrink then move charges `delta` again (`vrm_calc_charge`), though
    // the shrink gave those pages back and the moved VMA holds only
    // `new_len`: 6.18 strands that charge (Committed_AS grew by about
    // 1 GB over 5,000 moves of 65 pages shrunk to 1 on the host; none for
    // plain moves).
    if shrunk && r.is_ok() && vrm.flags & MREMAP_DONTUNMAP == 0 {
        w.st().committed_stranded += vrm.charged;
    }
    r
}

/// `vma_expandable`: nothing in `[vm_end, vm_end + delta)` and the grown
/// VMA passes `get_unmapped_area(MAP_FIXED)`.
fn vma_expandable<P: BarrierPolicy>(w: &MmWrite<'_, P>, id: VmaId, delta: u64) -> bool {
    let v = w.vma(id);
    let Some(end) = v.end.checked_add(delta) else {
        return false;
    };
    if w.find_vma_intersection(v.end, end).is_some() {
        return false;
    }
    let cfg = &w.state().cfg;
    let len = end - v.start;
    len <= cfg.task_size && v.start <= cfg.task_size - len && (v.start >= cfg.mmap_min_addr || cfg.cap_sys_rawio)
}

/// `expand_vma`: grows in place when the range ends at the VMA's end and
/// the space after it is free, else moves (with `MREMAP_MAYMOVE`).
fn expand_vma<P: BarrierPolicy>(w: &mut MmWrite<'_, P>, vrm: &mut Vrm) -> Result<u64, Errno> {
    let id = vrm.vma();
    let v = w.vma(id);
    if v.end - vrm.addr == vrm.old_len && vma_expandable(w, id, vrm.delta) {
        // expand_vma_in_place.
        if !vrm_calc_charge(w, vrm) {
            return Err(Errno::ENOMEM);
        }
        let Some(merged) = vma_merge_extend(w, id, vrm.delta) else {
            vrm_uncharge(w, vrm);
            return Err(Errno::ENOMEM);
        };
        vrm.vma = Some(merged);
        vrm_stat_account(w, vrm, vrm.delta);
        return Ok(vrm.addr);
    }
    if vrm.flags & MREMAP_MAYMOVE == 0 {
        return Err(Errno::ENOMEM);
    }
    vrm_set_new_addr(w, vrm)?;
    move_vma(w, vrm)
}

/// `mremap_at`: resize without a required new address.
fn mremap_at<P: BarrierPolicy>(w: &mut MmWrite<'_, P>, vrm: &mut Vrm) -> Result<u64, Errno> {
    match vrm.remap_type {
        RemapType::NoResize => Ok(vrm.addr),
        RemapType::Shrink => {
            vrm.vma = None;
            do_vmi_munmap(w, vrm.addr + vrm.new_len, vrm.delta)?;
            Ok(vrm.addr)
        }
        RemapType::Expand => expand_vma(w, vrm),
    }
}

/// `vma_multi_allowed` (`mm/mremap.c`): a VMA may move with others unless
/// its file places its own mappings (`f_op->get_unmapped_area`), which
/// might not obey `MREMAP_FIXED`; shmem and hugetlbfs excepted. Of the
/// files the model knows: `/dev/zero` (`get_unmapped_area_zero`, a private
/// mapping's file) and ramfs files ([`Inode::own_unmapped_area`](mm_core::file::Inode::own_unmapped_area)).
/// Measured on the host (6.18): an ext4 or tmpfs file's VMA moves with its
/// neighbours, a private `/dev/zero` or ramfs one does not (`EFAULT`).
/// A hugetlb VMA always may (`is_vm_hugetlb_page`), a `SHM_HUGETLB`
/// segment's attach too, though its file has `shm_get_unmapped_area`
/// (found by the random fork sessions, seed 5915: host `EINVAL` for an
/// unaligned start, model `EFAULT`). Userfaultfd, the other reason, is not
/// modeled.
fn vma_multi_allowed<P: BarrierPolicy>(w: &MmWrite<'_, P>, v: &mm_core::Vma) -> bool {
    v.flags.contains(VmFlags::HUGETLB) || v.file.is_none_or(|f| !w.files().file_inode(f).own_unmapped_area)
}

/// `remap_move`: a fixed, same-size move of `[addr, addr + old_len)`, which
/// may span several VMAs; the gaps between them are kept. Fails with
/// `EFAULT` when no VMA starts the range; an error on a later VMA leaves
/// the earlier ones moved.
fn remap_move<P: BarrierPolicy>(w: &mut MmWrite<'_, P>, vrm: &mut Vrm) -> Result<u64, Errno> {
    // A range past 2^64 wraps, as the kernel's unsigned sum does: the walk
    // then finds nothing, and the answer is EFAULT.
    let (start, end) = (vrm.addr, vrm.addr.wrapping_add(vrm.old_len));
    let mut target = vrm.new_addr;
    let mut res = Err(Errno::EFAULT);
    let mut last_end = 0;
    let mut seen = false;
    let mut cursor = start;
    // The walk resumes past the end the last VMA had when it was found
    // (the maple state's index), even if the move grew it back over the
    // range (a DONTUNMAP copy merging with its source).
    while cursor < end
        && let Some(id) = w.find_vma_intersection(cursor, end)
    {
        let v = w.vma(id);
        if !seen && start < v.start {
            return Err(Errno::EFAULT);
        }
        let addr = v.start.max(start);
        let len = end.min(v.end) - addr;
        let offset = if seen { v.start - last_end } else { 0 };
        last_end = v.end;
        cursor = v.end;
        vrm.vma = Some(id);
        vrm.addr = addr;
        vrm.new_addr = target + offset;
        vrm.old_len = len;
        vrm.new_len = len;
        // A VMA that cannot move with others moves only alone: as the
        // first VMA, and the range ends within it.
        if !vma_multi_allowed(w, &v) && (seen || v.end < end) {
            return Err(Errno::EFAULT);
        }
        check_prep_vma(w, vrm)?;
        let moved = mremap_to(w, vrm)?;
        if !seen {
            res = Ok(moved);
        }
        seen = true;
        target = moved + vrm.new_len;
    }
    res
}

/// `SYSCALL_DEFINE5(mremap)` → `do_mremap`: takes the write lock, resizes
/// or moves, unlocks, then populates what a locked VMA gained.
pub fn sys_mremap<P: BarrierPolicy>(
    mm: &MmStruct<P>,
    old_addr: u64,
    old_len: u64,
    new_len: u64,
    flags: u64,
    new_addr: u64,
) -> Result<u64, Errno> {
    let mut vrm = Vrm {
        addr: old_addr,
        old_len: page_align(old_len),
        new_len: page_align(new_len),
        flags,
        new_addr,
        vma: None,
        delta: 0,
        remap_type: RemapType::NoResize,
        populate_expand: false,
        charged: 0,
    };
    let res = {
        let mut w = mm.write();
        check_mremap_params(&vrm, w.state())?;
        if vrm.move_only() {
            remap_move(&mut w, &mut vrm)
        } else {
            vrm.vma = w.vma_lookup(vrm.addr);
            check_prep_vma(&w, &mut vrm).and_then(|()| {
                if vrm.implies_new_addr() {
                    mremap_to(&mut w, &mut vrm)
                } else {
                    mremap_at(&mut w, &mut vrm)
                }
            })
        }
    };
    if res.is_ok() && vrm.populate_expand {
        mm_populate(mm, vrm.new_addr + vrm.old_len, vrm.delta);
    }
    res
}
