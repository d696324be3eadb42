//! Mapping and unmapping ranges (`mm/vma.c`, second half): `mmap_region`,
//! `do_vmi_munmap` with `vms_gather_munmap_vmas` (`do_brk_flags` is in
//! [`crate::mmap`], next to `sys_brk`; the free-area searches
//! `unmapped_area` / `unmapped_area_topdown` are in
//! [`crate::unmapped_area`], re-exported here).

use mm_core::failslab::AllocSite;
use mm_core::file::{Inode, InodeKind};
use mm_core::{BarrierPolicy, MmWrite, VmFlags, Vma, VmaId, VmaView};
use smallvec::SmallVec;

pub use crate::mmap::do_brk_flags;
use crate::uapi::{Errno, PAGE_SHIFT};
use crate::util::*;
use crate::vma::{Vmg, may_split, remove_vma, split_vma, vma_merge_new_range};

use crate::unmapped_area::vma_at_or_after;
pub use crate::unmapped_area::{UnmappedAreaInfo, unmapped_area, unmapped_area_topdown, vm_unmapped_area};

/// `struct vma_munmap_struct`: VMAs gathered for removal and their totals.
#[derive(Debug, Default)]
pub struct Vms {
    /// The gathered VMAs (after splitting at the range ends). Held inline
    /// up to eight, so that a munmap of a few VMAs does not allocate (the
    /// kernel gathers into a maple tree of its own, preallocated).
    pub list: SmallVec<[VmaId; 8]>,
    /// The VMA before the range.
    pub prev: Option<VmaId>,
    /// The VMA after the range.
    pub next: Option<VmaId>,
    /// Pages in the range.
    pub nr_pages: u64,
    /// Locked pages in the range.
    pub locked_vm: u64,
    /// Charged pages in the range.
    pub nr_accounted: u64,
    exec_vm: u64,
    stack_vm: u64,
    data_vm: u64,
}

impl Vms {
    /// Counts `pages` of a VMA with `flags` as unmapped.
    fn add(&mut self, flags: VmFlags, pages: u64) {
        self.nr_pages += pages;
        if flags.contains(VmFlags::LOCKED) {
            self.locked_vm += pages;
        }
        if flags.contains(VmFlags::ACCOUNT) {
            self.nr_accounted += pages;
        }
        if flags.is_exec_mapping() {
            self.exec_vm += pages;
        } else if flags.is_stack_mapping() {
            self.stack_vm += pages;
        } else if flags.is_data_mapping() {
            self.data_vm += pages;
        }
    }

    /// The accounting half of `vms_complete_munmap_vmas`.
    fn unaccount(&self, st: &mut mm_core::MmState) {
        st.locked_vm -= self.locked_vm;
        st.total_vm -= self.nr_pages;
        st.exec_vm -= self.exec_vm;
        st.stack_vm -= self.stack_vm;
        st.data_vm -= self.data_vm;
        vm_unacct_memory(st, self.nr_accounted);
    }
}

/// `vms_gather_munmap_vmas`: splits the VMAs straddling `start` and `end`
/// and collects those inside. On failure, splits already made stay.
pub fn vms_gather_munmap_vmas<P: BarrierPolicy>(
    mm: &mut MmWrite<'_, P>,
    first: VmaId,
    start: u64,
    end: u64,
) -> Result<Vms, Errno> {
    let mut vms = Vms::default();
    let v = *mm.vma_ref(first);
    if start > v.start {
        // Punching a hole must not push map_count over its limit.
        if end < v.end && mm.st().map_count >= mm.st().cfg.max_map_count {
            return Err(Errno::ENOMEM);
        }
        if v.flags.contains(VmFlags::SEALED) {
            return Err(Errno::EPERM);
        }
        split_vma(mm, first, start, true, false)?;
    }
    vms.prev = mm.vma_before(start);
    let mut cur = mm.find_vma(start);
    while let Some(id) = cur {
        let v = *mm.vma_ref(id);
        if v.start >= end {
            break;
        }
        if v.flags.contains(VmFlags::SEALED) {
            return Err(Errno::EPERM);
        }
        if v.end > end {
            split_vma(mm, id, end, false, false)?;
        }
        // As the kernel's loop does, each gathered VMA is write-locked
        // here, before a later one can fail the gather (a sealed VMA): a
        // failed munmap leaves the earlier ones locked until the section
        // ends, and faults on them fall back to mmap_lock meanwhile.
        mm.vma_start_write(id);
        // mas_store_gfp into the detached tree.
        if mm.fail_nth().should_fail(AllocSite::TreePrealloc) {
            return Err(Errno::ENOMEM);
        }
        let v = *mm.vma_ref(id);
        vms.add(v.flags, v.pages());
        vms.list.push(id);
        cur = mm.vma_next(id);
    }
    vms.next = vma_at_or_after(mm, end);
    Ok(vms)
}

/// `vms_complete_munmap_vmas`: removes the gathered VMAs and undoes their
/// accounting.
pub fn vms_complete_munmap_vmas<P: BarrierPolicy>(mm: &mut MmWrite<'_, P>, vms: &Vms) {
    for &id in &vms.list {
        // The page tables go, and any guard markers with them.
        let v = *mm.vma_ref(id);
        crate::guards::remove(mm.st(), v.start, v.end);
        remove_vma(mm, id);
    }
    vms.unaccount(mm.st());
}

/// `do_vmi_munmap`: the checks and work of `munmap(2)`. Nothing changes on
/// failure except splits the kernel also keeps.
#[inline]
pub fn do_vmi_munmap<P: BarrierPolicy>(mm: &mut MmWrite<'_, P>, start: u64, len: u64) -> Result<(), Errno> {
    let task_size = mm.st().cfg.task_size;
    if offset_in_page(start) != 0 || start > task_size || len > task_size - start {
        return Err(Errno::EINVAL);
    }
    let end = start.wrapping_add(page_align(len));
    if end == start {
        return Err(Errno::EINVAL);
    }
    let Some(first) = mm.find_vma_intersection(start, end) else {
        return Ok(());
    };
    do_vmi_align_munmap(mm, first, start, end)
}

/// `do_vmi_align_munmap`.
#[inline]
pub fn do_vmi_align_munmap<P: BarrierPolicy>(
    mm: &mut MmWrite<'_, P>,
    first: VmaId,
    start: u64,
    end: u64,
) -> Result<(), Errno> {
    if let Some(r) = unmap_in_place(mm, first, start, end) {
        return r;
    }
    gather_and_unmap(mm, first, start, end)
}

/// [`do_vmi_align_munmap`] past the in-place trim.
fn gather_and_unmap<P: BarrierPolicy>(
    mm: &mut MmWrite<'_, P>,
    first: VmaId,
    start: u64,
    end: u64,
) -> Result<(), Errno> {
    let vms = vms_gather_munmap_vmas(mm, first, start, end)?;
    // vma_iter_clear_gfp: clearing the range from the tree may allocate;
    // on failure the gathered VMAs stay (clear_tree_failed).
    if mm.fail_nth().should_fail(AllocSite::TreePrealloc) {
        return Err(Errno::ENOMEM);
    }
    vms_complete_munmap_vmas(mm, &vms);
    Ok(())
}

/// The unmapping of exactly one VMA, or of exactly its head or tail, in
/// place, after the general path's checks (sealing; for a head or tail
/// `may_split` and a free VMA slot, which the split's `vm_area_dup` needs).
///
/// For a head or tail the kernel splits the VMA at the range's edge
/// (`__split_vma`: a new VMA for one part, the original's range changed in
/// place) and removes the unmapped part; the model moves the edge in
/// place. For a whole VMA it gathers a list of one and looks up the
/// neighbours (which only `mmap_region` uses); the model removes the VMA
/// straight away. What the address space shows afterwards — ranges,
/// offsets, flags, `anon_vma`, counters, `map_count`, guard markers, and
/// what speculative readers see published — is the same. `None`: another
/// shape, or an injected allocation failure is pending (the general path
/// has the kernel's failure points and partial effects); otherwise the
/// general path's points are counted as passed.
fn unmap_in_place<P: BarrierPolicy>(
    mm: &mut MmWrite<'_, P>,
    id: VmaId,
    start: u64,
    end: u64,
) -> Option<Result<(), Errno>> {
    if mm.fail_nth().pending() {
        return None;
    }
    let v = mm.vma_ref(id);
    // What stays of the VMA, and where it is cut (`None`: nothing stays).
    let keep = if start == v.start && end == v.end {
        None
    } else if start > v.start && end == v.end {
        Some((v.start, start, start))
    } else if start == v.start && end < v.end {
        Some((end, v.end, end))
    } else {
        return None;
    };
    if keep.is_some() && mm.free_vma_slots() == 0 {
        return None;
    }
    if v.flags.contains(VmFlags::SEALED) {
        return Some(Err(Errno::EPERM));
    }
    if let Some((_, _, cut)) = keep
        && let Err(e) = may_split(mm, v, cut)
    {
        return Some(Err(e));
    }
    let (flags, v_start, v_pgoff) = (v.flags, v.start, v.pgoff);
    // The kernel's points: for a head or tail the split's vm_area_dup and
    // vma_iter_prealloc, and anon_vma_clone if there is an anon_vma; for
    // both the detached-tree store and the range clear.
    if mm.fail_nth().armed() {
        let split = match keep {
            Some(_) => 2 + u64::from(mm.vma_anon_vma(id).is_some()),
            None => 0,
        };
        mm.fail_nth().pass(split + 2);
    }
    let mut vms = Vms::default();
    vms.add(flags, (end - start) >> PAGE_SHIFT);
    match keep {
        Some((keep_start, keep_end, _)) => {
            crate::guards::remove(mm.st(), start, end);
            let pgoff = v_pgoff + ((keep_start - v_start) >> PAGE_SHIFT);
            if flags.contains(VmFlags::HUGETLB) {
                crate::hugetlb::trim_hugetlb(mm, id, (keep_start, keep_end, pgoff), start, end);
            } else {
                mm.vma_set_range(id, keep_start, keep_end, pgoff);
            }
        }
        None => {
            // The gather write-locks the VMA before anything is removed.
            mm.vma_start_write(id);
            crate::guards::remove(mm.st(), start, end);
            remove_vma(mm, id);
        }
    }
    vms.unaccount(mm.st());
    Some(Ok(()))
}

/// `vma_supports_mlock` (`mm/internal.h`).
pub fn vma_supports_mlock(flags: VmFlags) -> bool {
    !flags.intersects(VmFlags::SPECIAL | VmFlags::DROPPABLE | VmFlags::HUGETLB)
}

/// The object behind a new mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapSource {
    /// Private anonymous memory.
    Anon,
    /// Shared anonymous memory: a new shmem object (`shmem_zero_setup`).
    SharedAnon,
    /// A file.
    File(mm_core::file::FileId),
}

/// Whether the System V segment behind attach file `f` is gone: removed,
/// with its last attaches in this address space
/// ([`Inode::shm_last_attaches`](mm_core::file::Inode::shm_last_attaches)),
/// none of which is left.
#[cold]
fn shm_segment_gone<P: BarrierPolicy>(mm: &MmWrite<'_, P>, f: mm_core::file::FileId) -> bool {
    let files = mm.files();
    let inode = files.file(f).inode;
    if !files.inode(inode).shm_last_attaches {
        return false;
    }
    let mut attached = false;
    mm.for_each_vma_ref(|v| attached |= v.file.is_some_and(|g| files.file(g).inode == inode));
    !attached
}

/// `mmap_region` / `__mmap_region`: maps `[addr, addr + len)` (page
/// aligned, checked), replacing what is there, merging where possible.
pub fn mmap_region<P: BarrierPolicy>(
    mm: &mut MmWrite<'_, P>,
    src: MapSource,
    addr: u64,
    len: u64,
    mut flags: VmFlags,
    pgoff: u64,
) -> Result<u64, Errno> {
    let end = addr + len;
    let pglen = len >> PAGE_SHIFT;
    // __mmap_setup: gather what the new mapping replaces. With nothing
    // in the range, the first VMA ending above `addr` starts at or above
    // `end`: it is the next VMA.
    let found = mm.find_vma(addr);
    let (mut vms, prev, next) = match found.filter(|&id| mm.vma_ref(id).start < end) {
        Some(first) => {
            let vms = vms_gather_munmap_vmas(mm, first, addr, end)?;
            let (p, n) = (vms.prev, vms.next);
            (vms, p, n)
        }
        None => (Vms::default(), mm.vma_before(addr), found),
    };
    let gathered = !vms.list.is_empty();
    if !may_expand_vm(mm.st(), flags, pglen - vms.nr_pages) {
        return Err(Errno::ENOMEM);
    }
    let hugetlb = match src {
        MapSource::File(f) => mm.files().file_inode(f).is_hugetlb(),
        _ => false,
    };
    let (mut charged, mut carried) = (0, 0);
    if !hugetlb && accountable_mapping(flags) {
        charged = pglen - vms.nr_accounted;
        if charged > 0 && !vm_enough_memory(mm.st(), charged) {
            return Err(Errno::ENOMEM);
        }
        // The replaced range's charge carries over to the new mapping.
        carried = vms.nr_accounted;
        vms.nr_accounted = 0;
        flags |= VmFlags::ACCOUNT;
    }
    // Until the new mapping exists, nothing owns the carried charge: an
    // error from here on leaves it charged (vms_abort_munmap_vmas after
    // the page tables were cleared completes the unmap with nothing to
    // give back).
    mm.st().committed_stranded += carried;
    // The new VMA overwrites the old ones in the tree (the kernel finishes
    // the unmap after linking the new VMA; the outcome is the same). With
    // nothing gathered there is nothing to remove or unaccount.
    if gathered {
        vms_complete_munmap_vmas(mm, &vms);
    }
    // The file system's mmap_prepare/mmap: ext4/xfs refuse VM_SYNC without
    // DAX; hugetlbfs checks the offset and reserves pages. The old VMAs' page
    // tables are already gone (vms_clean_up_area), so on error the kernel
    // gives up and leaves a gap where they were (and keeps the charge).
    if let MapSource::File(f) = src {
        let inode = mm.files().file_inode(f).clone();
        if flags.contains(VmFlags::SYNC) && inode.rejects_sync {
            // The charge is not given back on this path.
            mm.st().committed_stranded += charged;
            return Err(Errno::EOPNOTSUPP);
        }
        if inode.is_hugetlb() {
            // hugetlbfs_file_mmap: offset in huge pages, and the
            // reservation (hugetlb_reserve_pages), which may fail.
            if pgoff & ((inode.huge_size >> PAGE_SHIFT) - 1) != 0 {
                return Err(Errno::EINVAL);
            }
            flags |= VmFlags::HUGETLB | VmFlags::DONTEXPAND;
            // A SHM_HUGETLB segment's pages were reserved by shmget
            // (S_PRIVATE): its mappings reserve nothing.
            let resv = if inode.kind == mm_core::file::InodeKind::SysvShmHuge {
                flags | VmFlags::NORESERVE
            } else {
                flags
            };
            crate::hugetlb::hugetlb_reserve_pages(&mut mm.files(), f, addr, end, pgoff, resv)?;
        }
    }
    let kind = match src {
        MapSource::File(f) => Some(mm.files().file_inode(f).kind),
        _ => None,
    };
    // mmap_zero: with VM_SHARED (a writable description), /dev/zero gives
    // the mapping a new shmem object, keeping the offset; otherwise the
    // mapping is anonymous memory that keeps /dev/zero as its file.
    let dev_zero_shared = kind == Some(InodeKind::DevZero) && flags.contains(VmFlags::SHARED);
    let file = match src {
        MapSource::File(f) => Some(f),
        _ => None,
    };
    let mut merged = None;
    if src != MapSource::SharedAnon && !dev_zero_shared && (prev.is_some() || next.is_some()) {
        let mut vmg = Vmg {
            prev,
            next,
            start: addr,
            end,
            pgoff,
            flags,
            file,
            ..Vmg::default()
        };
        merged = vma_merge_new_range(mm, &mut vmg);
    }
    if merged.is_none() {
        // __mmap_new_vma.
        if let MapSource::File(f) = src
            && matches!(kind, Some(InodeKind::SysvShm | InodeKind::SysvShmHuge))
            && shm_segment_gone(mm, f)
        {
            // shm_mmap → __shm_open: the unmap above closed the removed
            // segment's last attach, which destroyed it.
            vm_unacct_memory(mm.st(), charged);
            return Err(Errno::EINVAL);
        }
        if let Some(InodeKind::MmapRefuses(e)) = kind {
            // The file's mmap refuses (__mmap_new_file_vma → unacct_error);
            // the range was cleared before it was called.
            vm_unacct_memory(mm.st(), charged);
            return Err(Errno(e));
        }
        if kind == Some(InodeKind::Secretmem) {
            // secretmem_mmap, once the range was cleared: shared only, and
            // within RLIMIT_MEMLOCK, as the VMA becomes locked.
            let e = if !flags.contains(VmFlags::MAYSHARE) {
                Some(Errno::EINVAL)
            } else if !crate::util::mlock_future_ok(mm.st(), flags | VmFlags::LOCKED, len) {
                Some(Errno::EAGAIN)
            } else {
                None
            };
            if let Some(e) = e {
                vm_unacct_memory(mm.st(), charged);
                return Err(e);
            }
            flags |= VmFlags::LOCKED | VmFlags::DONTDUMP;
        }
        let file = match src {
            MapSource::Anon => None,
            MapSource::File(_) if dev_zero_shared => match shmem_zero_setup(mm, len, flags) {
                Ok(f) => Some(f),
                Err(e) => {
                    vm_unacct_memory(mm.st(), charged);
                    return Err(e);
                }
            },
            MapSource::File(f) => {
                mm.files().get(f);
                Some(f)
            }
            MapSource::SharedAnon => match shmem_zero_setup(mm, len, flags) {
                Ok(f) => Some(f),
                Err(e) => {
                    // unacct_error.
                    vm_unacct_memory(mm.st(), charged);
                    return Err(e);
                }
            },
        };
        let v = Vma {
            start: addr,
            end,
            pgoff,
            flags,
            file,
            anon_vma: None,
            special: None,
        };
        if crate::vma::new_vma_allocs_fail(mm, false) || mm.vma_link(v).is_err() {
            // unacct_error: the mapping's charge and a new shmem object's.
            let mut given_back = charged;
            if let Some(f) = file {
                given_back += mm.files().put(f);
            }
            vm_unacct_memory(mm.st(), given_back);
            return Err(Errno::ENOMEM);
        }
        mm.st().map_count += 1;
    }
    // __mmap_complete: the new mapping owns the carried charge.
    let st = mm.st();
    st.committed_stranded -= carried;
    vm_stat_account(st, flags, pglen as i64);
    if flags.contains(VmFlags::LOCKED) {
        let id = mm.vma_lookup(addr).expect("just mapped");
        if !vma_supports_mlock(flags) {
            let f = mm.vma_ref(id).flags;
            mm.vma_set_flags(id, VmFlags(f.0 & !VmFlags::LOCKED_MASK.0));
        } else {
            mm.st().locked_vm += pglen;
        }
    }
    Ok(addr)
}

/// `shmem_zero_setup` (`mm/shmem.c`): the shmem object behind a shared
/// anonymous mapping, shown as `/dev/zero (deleted)`. Unless
/// `VM_NORESERVE`, the object charges its size to the commit count
/// (`__shmem_file_setup` → `shmem_acct_size`), which fails with `ENOMEM`
/// as a private mapping's charge does; the charge lasts as long as the
/// object (not the mapping).
pub fn shmem_zero_setup<P: BarrierPolicy>(
    mm: &mut MmWrite<'_, P>,
    size: u64,
    flags: VmFlags,
) -> Result<mm_core::file::FileId, Errno> {
    let acct = if flags.contains(VmFlags::NORESERVE) {
        0
    } else {
        let pages = size.div_ceil(crate::uapi::PAGE_SIZE);
        if !vm_enough_memory(mm.st(), pages) {
            return Err(Errno::ENOMEM);
        }
        pages
    };
    let slots = mm.file_slots();
    // shmem_kernel_file_setup's inode and file, before the inode number.
    if mm.fail_nth().should_fail(AllocSite::File) {
        vm_unacct_memory(mm.st(), acct);
        return Err(Errno::ENOMEM);
    }
    let opened = {
        let mut files = mm.files();
        let ino = files.fresh_ino();
        let mut inode = Inode::new(ino, (0, 1), size, "/dev/zero".into(), InodeKind::ShmemAnon);
        inode.set_deleted(true);
        inode.acct_pages = acct;
        let id = files.add_inode(inode);
        files.open(slots, id, true, true, false)
    };
    opened.ok_or_else(|| {
        vm_unacct_memory(mm.st(), acct);
        Errno::ENOMEM
    })
}
