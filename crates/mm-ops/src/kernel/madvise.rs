//! `madvise(2)` (`mm/madvise.c`, Linux 6.18): argument validation
//! (`madvise_should_skip`), the walk over the VMAs of the range with its
//! `ENOMEM` for holes (`madvise_walk_vmas`), the advice that changes
//! `vm_flags` through `vma_modify_flags` (`madvise_update_vma`), and the
//! checks and lasting effects of the advice that acts on pages.
//!
//! The host kernel's configuration decides which advice exists:
//! `CONFIG_KSM` and `CONFIG_TRANSPARENT_HUGEPAGE` are on, so
//! `MADV_MERGEABLE`/`UNMERGEABLE` and `MADV_HUGEPAGE`/`NOHUGEPAGE`/`COLLAPSE`
//! are valid; `CONFIG_MEMORY_FAILURE` is off, so `MADV_HWPOISON` and
//! `MADV_SOFT_OFFLINE` are `EINVAL` like unknown advice.

use mm_core::{BarrierPolicy, MmStruct, MmWrite, VmFlags, VmaId, VmaView};

use crate::uapi::madv::*;
use crate::uapi::*;
use crate::util::*;
use crate::vma::{Vmg, anon_vma_prepare, vma_modify};

/// `madvise_behavior_valid` for the host's configuration.
fn behavior_valid(behavior: i32) -> bool {
    let Ok(b) = u64::try_from(behavior) else {
        return false;
    };
    matches!(
        b,
        DOFORK
            | DONTFORK
            | NORMAL
            | SEQUENTIAL
            | RANDOM
            | REMOVE
            | WILLNEED
            | DONTNEED
            | DONTNEED_LOCKED
            | FREE
            | COLD
            | PAGEOUT
            | POPULATE_READ
            | POPULATE_WRITE
            | MERGEABLE
            | UNMERGEABLE
            | HUGEPAGE
            | NOHUGEPAGE
            | COLLAPSE
            | DONTDUMP
            | DODUMP
            | WIPEONFORK
            | KEEPONFORK
            | GUARD_INSTALL
            | GUARD_REMOVE
    )
}

/// `is_madv_discard`: advice that sealing forbids on read-only anonymous
/// memory.
fn is_discard(behavior: u64) -> bool {
    matches!(
        behavior,
        FREE | DONTNEED | DONTNEED_LOCKED | REMOVE | DONTFORK | WIPEONFORK | GUARD_INSTALL
    )
}

/// `can_madvise_modify` (`mm/madvise.c`): a sealed VMA refuses
/// discarding advice when it is anonymous (no `vm_ops`: no file, or
/// `/dev/zero` not shared, [`crate::util::vma_is_anonymous`]) and not
/// writable. File mappings and shmem (shared anonymous) are permitted.
fn can_madvise_modify(files: &mm_core::file::FileTable, v: &mm_core::Vma, behavior: u64) -> bool {
    if !v.flags.contains(VmFlags::SEALED) || !is_discard(behavior) {
        return true;
    }
    !crate::util::vma_is_anonymous(files, v) || v.flags.contains(VmFlags::WRITE)
}

/// `vma_ksm_compatible` (`mm/ksm.c`).
fn vma_ksm_compatible(flags: VmFlags) -> bool {
    let bad = VmFlags::SHARED
        | VmFlags::MAYSHARE
        | VmFlags::PFNMAP
        | VmFlags::IO
        | VmFlags::DONTEXPAND
        | VmFlags::HUGETLB
        | VmFlags::MIXEDMAP
        | VmFlags::DROPPABLE;
    !flags.intersects(bad)
}

/// The new `vm_flags` for flag-changing advice (`madvise_vma_behavior`,
/// `ksm_madvise`, `hugepage_madvise`), or its error.
fn new_flags(v: &mm_core::Vma, behavior: u64) -> Result<VmFlags, Errno> {
    let f = v.flags;
    Ok(match behavior {
        NORMAL => f & !(VmFlags::RAND_READ | VmFlags::SEQ_READ),
        SEQUENTIAL => (f & !VmFlags::RAND_READ) | VmFlags::SEQ_READ,
        RANDOM => (f & !VmFlags::SEQ_READ) | VmFlags::RAND_READ,
        DONTFORK => f | VmFlags::DONTCOPY,
        DOFORK => {
            if f.contains(VmFlags::IO) {
                return Err(Errno::EINVAL);
            }
            f & !VmFlags::DONTCOPY
        }
        WIPEONFORK => {
            // Anonymous private memory only.
            if v.file.is_some() || f.contains(VmFlags::SHARED) {
                return Err(Errno::EINVAL);
            }
            f | VmFlags::WIPEONFORK
        }
        KEEPONFORK => {
            if f.contains(VmFlags::DROPPABLE) {
                return Err(Errno::EINVAL);
            }
            f & !VmFlags::WIPEONFORK
        }
        DONTDUMP => f | VmFlags::DONTDUMP,
        DODUMP => {
            if (!f.contains(VmFlags::HUGETLB) && f.intersects(VmFlags::SPECIAL)) || f.contains(VmFlags::DROPPABLE) {
                return Err(Errno::EINVAL);
            }
            f & !VmFlags::DONTDUMP
        }
        // ksm_madvise: incompatible VMAs ignore the advice.
        MERGEABLE if !f.contains(VmFlags::MERGEABLE) && vma_ksm_compatible(f) => f | VmFlags::MERGEABLE,
        MERGEABLE => f,
        UNMERGEABLE => f & !VmFlags::MERGEABLE,
        // hugepage_madvise.
        HUGEPAGE => (f & !VmFlags::NOHUGEPAGE) | VmFlags::HUGEPAGE,
        NOHUGEPAGE => (f & !VmFlags::HUGEPAGE) | VmFlags::NOHUGEPAGE,
        _ => f,
    })
}

/// `madvise_update_vma` → `vma_modify_flags`: applies `flags` to
/// `[start, end)` of `id`, splitting or merging. Returns the VMA now
/// covering the range. `ENOMEM` (a split beyond `max_map_count`) becomes
/// `EAGAIN`, as `madvise_vma_behavior` reports it.
fn madvise_update_vma<P: BarrierPolicy>(
    w: &mut MmWrite<'_, P>,
    id: VmaId,
    prev: Option<VmaId>,
    start: u64,
    end: u64,
    flags: VmFlags,
) -> Result<VmaId, Errno> {
    let v = w.vma(id);
    if flags == v.flags {
        return Ok(id);
    }
    let mut vmg = Vmg::for_vma(&v, id, prev, start, end);
    vmg.flags = flags;
    let res = vma_modify(w, &mut vmg).map_err(|e| if e == Errno::ENOMEM { Errno::EAGAIN } else { e })?;
    // A merge may have brought sticky flags from a neighbour.
    let flags = flags | (w.vma(res).flags & VmFlags::STICKY);
    w.vma_set_flags(res, flags);
    Ok(res)
}

/// The huge page size of a hugetlb VMA.
fn huge_size<P: BarrierPolicy>(w: &MmWrite<'_, P>, v: &mm_core::Vma) -> u64 {
    v.file
        .map_or(PMD_SIZE, |f| w.files().file_inode(f).huge_size.max(PAGE_SIZE))
}

/// `thp_vma_allowable_order(vma, TVA_FORCED_COLLAPSE, PMD_ORDER)` as far
/// as the model knows its VMAs: not `VM_NOHUGEPAGE`, special or hugetlb;
/// holding a whole aligned 2 MiB block (`thp_vma_suitable_order`, with
/// the file offset aligned too for files); anonymous memory needs an
/// `anon_vma`, shmem (memfd, shared anonymous) is always eligible when
/// forced, other files are not (`CONFIG_READ_ONLY_THP_FOR_FS` is off).
fn collapse_allowed<P: BarrierPolicy>(w: &MmWrite<'_, P>, v: &mm_core::Vma) -> bool {
    if v.flags
        .intersects(VmFlags::NOHUGEPAGE | VmFlags::SPECIAL | VmFlags::HUGETLB)
        || v.special.is_some()
    {
        return false;
    }
    let pmd_pages = PMD_SIZE >> PAGE_SHIFT;
    // thp_vma_suitable_order: only a VMA with vm_ops has its offset checked.
    if !crate::util::vma_is_anonymous(&w.files(), v)
        && !((v.start >> PAGE_SHIFT).wrapping_sub(v.pgoff)).is_multiple_of(pmd_pages)
    {
        return false;
    }
    let haddr = v.end.saturating_sub(PMD_SIZE) & !(PMD_SIZE - 1);
    if haddr < v.start || haddr + PMD_SIZE > v.end {
        return false;
    }
    // Anonymous memory (a private /dev/zero mapping included: its vm_ops
    // are cleared) needs an anon_vma.
    if crate::util::vma_is_anonymous(&w.files(), v) {
        return v.anon_vma.is_some();
    }
    v.file.is_some_and(|f| w.files().file_inode(f).is_shmem())
}

/// `madvise_vma_behavior` for one VMA and `[start, end)` inside it.
/// Returns the VMA that now covers the range.
fn madvise_vma_behavior<P: BarrierPolicy>(
    w: &mut MmWrite<'_, P>,
    id: VmaId,
    prev: Option<VmaId>,
    start: u64,
    end: u64,
    behavior: u64,
) -> Result<VmaId, Errno> {
    let v = w.vma(id);
    if v.flags.contains(VmFlags::SEALED) && !can_madvise_modify(&w.files(), &v, behavior) {
        return Err(Errno::EPERM);
    }
    let f = v.flags;
    match behavior {
        // madvise_remove: punch a hole in a shared writable file mapping.
        REMOVE => {
            if f.contains(VmFlags::LOCKED) || v.file.is_none() {
                return Err(Errno::EINVAL);
            }
            if !f.contains(VmFlags::SHARED | VmFlags::MAYWRITE) {
                return Err(Errno::EACCES);
            }
            // vfs_fallocate(PUNCH_HOLE | KEEP_SIZE, offset, end - start).
            let offset = (i128::from(v.pgoff) << PAGE_SHIFT) + i128::from(start - v.start);
            let (append_only, maxbytes, punch_hole) = {
                let files = w.files();
                let inode = files.file_inode(v.file.expect("file-backed"));
                (inode.append_only, inode.max_bytes, inode.punch_hole)
            };
            if offset > i128::from(i64::MAX) {
                // A negative loff_t.
                return Err(Errno::EINVAL);
            }
            if append_only {
                return Err(Errno::EPERM);
            }
            if offset + i128::from(end - start) > i128::from(maxbytes) {
                return Err(Errno::EFBIG);
            }
            // No f_op->fallocate (ramfs), or one that cannot punch (vfat).
            if !punch_hole {
                return Err(Errno::EOPNOTSUPP);
            }
            if f.contains(VmFlags::HUGETLB) {
                // hugetlbfs_punch_hole: the whole huge pages inside.
                let files = w.files();
                let inode = files.file_inode(v.file.expect("file-backed"));
                let h = inode.huge_size;
                let (lo, hi) = (offset as u64, offset as u64 + (end - start));
                crate::hugetlb::hugetlb_punch(inode, lo.div_ceil(h), hi / h);
            }
            Ok(id)
        }
        WILLNEED => Ok(id),
        // madvise_cold / madvise_pageout: can_madv_lru_vma.
        COLD | PAGEOUT => {
            if f.intersects(VmFlags::LOCKED | VmFlags::PFNMAP | VmFlags::HUGETLB) {
                return Err(Errno::EINVAL);
            }
            Ok(id)
        }
        // madvise_dontneed_free / madvise_dontneed_free_valid_vma. Pages
        // go, guard markers stay.
        FREE | DONTNEED | DONTNEED_LOCKED => {
            if !f.contains(VmFlags::HUGETLB) {
                let mut forbidden = VmFlags::PFNMAP;
                if behavior != DONTNEED_LOCKED {
                    forbidden |= VmFlags::LOCKED;
                }
                if f.intersects(forbidden) {
                    return Err(Errno::EINVAL);
                }
            } else {
                let huge = huge_size(w, &v);
                if behavior == FREE || start & (huge - 1) != 0 {
                    return Err(Errno::EINVAL);
                }
                if end & !(huge - 1) == start {
                    return Ok(id);
                }
                if behavior != FREE {
                    crate::hugetlb::hugetlb_zap(&w.files(), &v, start, end & !(huge - 1));
                }
            }
            if behavior == FREE && !crate::util::vma_is_anonymous(&w.files(), &v) {
                return Err(Errno::EINVAL);
            }
            Ok(id)
        }
        // madvise_collapse: only what the VMA allows is modeled; a range
        // holding no whole aligned 2 MiB block has nothing to collapse.
        COLLAPSE => {
            if !collapse_allowed(w, &v) {
                return Err(Errno::EINVAL);
            }
            let hstart = start.wrapping_add(PMD_SIZE - 1) & !(PMD_SIZE - 1);
            let hend = end & !(PMD_SIZE - 1);
            match hstart.cmp(&hend) {
                // No whole block: zero blocks collapsed of zero.
                std::cmp::Ordering::Equal => Ok(id),
                // Inside one block: the kernel's block count wraps and
                // cannot match the zero collapsed.
                std::cmp::Ordering::Greater => Err(Errno::EINVAL),
                // Not modeled (it depends on the pages): untouched memory
                // has no page table to collapse.
                std::cmp::Ordering::Less => Err(Errno::EINVAL),
            }
        }
        // madvise_guard_install: is_valid_guard_vma, anon_vma_prepare, markers.
        GUARD_INSTALL => {
            if f.intersects(VmFlags::SPECIAL | VmFlags::HUGETLB | VmFlags::LOCKED) || v.special.is_some() {
                return Err(Errno::EINVAL);
            }
            // The whole VMA is marked (no split); only anonymous memory
            // gets an anon_vma.
            w.vma_set_flags(id, f | VmFlags::MAYBE_GUARD);
            if crate::util::vma_is_anonymous(&w.files(), &v) {
                anon_vma_prepare(&*w, id);
            }
            crate::guards::install(w.st(), start, end);
            Ok(id)
        }
        GUARD_REMOVE => {
            if f.intersects(VmFlags::SPECIAL | VmFlags::HUGETLB) || v.special.is_some() {
                return Err(Errno::EINVAL);
            }
            crate::guards::remove(w.st(), start, end);
            Ok(id)
        }
        _ => {
            let flags = new_flags(&v, behavior)?;
            madvise_update_vma(w, id, prev, start, end, flags)
        }
    }
}

/// `madvise_walk_vmas`: applies the advice to every VMA of `[start,
/// end)`. An error stops the walk (earlier VMAs keep their change); holes
/// do not, but the call then fails with `ENOMEM`.
fn madvise_walk_vmas<P: BarrierPolicy>(
    w: &mut MmWrite<'_, P>,
    mut start: u64,
    last_end: u64,
    behavior: u64,
) -> Result<(), Errno> {
    let mut unmapped = false;
    let mut vma = w.find_vma(start);
    let mut prev = match vma {
        Some(v) if start > w.vma(v).start => Some(v),
        Some(v) => w.vma_prev(v),
        None => None,
    };
    loop {
        let Some(id) = vma else {
            return Err(Errno::ENOMEM);
        };
        let v = w.vma(id);
        if start < v.start {
            unmapped = true;
            start = v.start;
            if start >= last_end {
                break;
            }
        }
        let mut end = v.end.min(last_end);
        let res = madvise_vma_behavior(w, id, prev, start, end, behavior)?;
        prev = Some(res);
        let r = w.vma(res);
        end = end.max(r.end);
        if end >= last_end {
            break;
        }
        vma = w.find_vma(r.end);
        start = end;
    }
    if unmapped { Err(Errno::ENOMEM) } else { Ok(()) }
}

/// `check_vma_flags` (`mm/gup.c`) for `MADV_POPULATE_*`: no I/O or PFN
/// maps, and the access must be allowed without `FOLL_FORCE`.
fn populate_allowed(flags: VmFlags, write: bool) -> bool {
    if flags.intersects(VmFlags::IO | VmFlags::PFNMAP) {
        return false;
    }
    if write {
        flags.contains(VmFlags::WRITE) && !flags.contains(VmFlags::SHADOW_STACK)
    } else {
        flags.contains(VmFlags::READ)
    }
}

/// `madvise_populate` → `faultin_page_range`: faults `[start, end)` in VMA
/// by VMA. A hole is `ENOMEM`, a VMA that refuses the access `EINVAL`, a
/// fault that fails (`SIGBUS` beyond the end of a file, a guard page)
/// `EFAULT`; what was faulted before stays (write faults on private
/// mappings give them an `anon_vma`).
fn madvise_populate<P: BarrierPolicy>(mm: &MmStruct<P>, mut start: u64, end: u64, write: bool) -> Result<(), Errno> {
    let r = mm.read();
    while start < end {
        let Some(id) = r.vma_lookup(start) else {
            return Err(Errno::ENOMEM);
        };
        let v = r.vma(id);
        // A secretmem VMA, or a protection key the thread's PKRU refuses
        // the access (check_vma_flags' arch_vma_access_permitted): gup's
        // EFAULT, which madvise_populate reports as EINVAL.
        if !populate_allowed(v.flags, write)
            || crate::util::vma_is_secretmem(&r.files(), &v)
            || !crate::pkeys::access_permitted(v.flags, r.pkru(), write)
        {
            return Err(Errno::EINVAL);
        }
        let stop = v.end.min(end);
        crate::memory::populate_pages(&r, id, start, stop, write)?;
        start = stop;
    }
    Ok(())
}

/// `do_madvise` (`SYSCALL_DEFINE3(madvise)`): `advice` is the C `int`
/// (the low 32 bits of the register).
pub fn do_madvise<P: BarrierPolicy>(mm: &MmStruct<P>, start: u64, len_in: u64, advice: u64) -> Result<(), Errno> {
    let behavior = advice as u32 as i32;
    // madvise_should_skip / is_valid_madvise.
    if !behavior_valid(behavior) || offset_in_page(start) != 0 {
        return Err(Errno::EINVAL);
    }
    let len = page_align(len_in);
    if (len_in != 0 && len == 0) || start.checked_add(len).is_none() {
        return Err(Errno::EINVAL);
    }
    if len == 0 {
        return Ok(());
    }
    let behavior = behavior as u64;
    let end = start + len;
    match behavior {
        POPULATE_READ | POPULATE_WRITE => madvise_populate(mm, start, end, behavior == POPULATE_WRITE),
        _ => {
            // Flag changes take the lock for writing (get_lock_mode); the
            // page advice only reads VMAs in the kernel, but guard markers
            // live behind the write lock here.
            let mut w = mm.write();
            madvise_walk_vmas(&mut w, start, end, behavior)
        }
    }
}
