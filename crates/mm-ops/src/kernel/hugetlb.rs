//! The huge page pool's rules (`mm/hugetlb.c`, `fs/hugetlbfs/inode.c`):
//! reservations at `mmap` (`hugetlb_reserve_pages`), pages at faults
//! (`hugetlb_no_page` → `alloc_hugetlb_folio`), and what unmapping,
//! `MADV_DONTNEED`, `MADV_REMOVE` and truncation give back
//! (`hugetlb_vm_op_close`, `unmap_hugepage_range`, `remove_inode_hugepages`,
//! `hugetlb_unreserve_pages`). The counters and maps are
//! [`mm_core::hugetlb`].
//!
//! * A shared mapping reserves the indices of its range the object has
//!   not reserved yet; the reservations stay with the object until it dies,
//!   is truncated or has holes punched.
//! * A private mapping reserves its whole range; a fault uses the
//!   index's reservation once, and the mapping's unused reservations go
//!   back when it is unmapped, with its pages.
//! * `MAP_NORESERVE` reserves nothing: its faults take pages nobody
//!   reserved (`available_huge_pages`), or fail with `SIGBUS`.
//! * A reservation the pool cannot give is `ENOMEM` (no surplus pages:
//!   `nr_overcommit_hugepages` is 0).
//!
//! A fork child's copy of a privately mapped object starts with state of
//! its own (`hugetlb_dup_vma_private`: no reservations), so that what it
//! unmaps leaves the parent's pages and reservations alone.
//!
//! Not modeled: a fork child's sharing of the parent's private pages
//! (the model's child takes a page of its own at its first fault of each,
//! where the kernel maps the parent's until a write copies it), more than
//! one private mapping of one hugetlbfs file
//! (the model keeps private reservations with the object), hugetlbfs
//! mounts' `size=`/`min_size=` subpools, and surplus pages.

use mm_core::file::{FileId, FileTable, Inode, InodeId};
use mm_core::hugetlb::{HugeInode, HugePage, hstate_index};
use mm_core::{BarrierPolicy, MmWrite, VmFlags, Vma, VmaId, VmaView};

use crate::uapi::{Errno, PAGE_SHIFT};

/// Huge-page indices `[first, last)` of the file that `[start, end)` of a
/// VMA at `vma_start` with offset `pgoff` (base pages) covers.
fn indices(inode: &Inode, vma_start: u64, pgoff: u64, start: u64, end: u64) -> (u64, u64) {
    let shift = inode.huge_size.trailing_zeros();
    let base = (pgoff << PAGE_SHIFT) + (start - vma_start);
    let first = base >> shift;
    (first, first + ((end - start) >> shift))
}

/// The object's pool state, made at its first mapping.
fn state(files: &mut FileTable, inode: InodeId) -> std::sync::Arc<HugeInode> {
    let pool = files.hugetlb_pool.clone();
    let i = files.inode_mut(inode);
    i.huge
        .get_or_insert_with(|| HugeInode::new(pool, hstate_index(i.huge_size)))
        .clone()
}

/// `hugetlb_reserve_pages` for a new mapping of `[start, end)` at page
/// offset `pgoff` of `file` with `flags` (`VM_NORESERVE`: nothing;
/// `VM_MAYSHARE`: the object's map). `ENOMEM` when the pool lacks the
/// pages; nothing is reserved then.
pub fn hugetlb_reserve_pages(
    files: &mut FileTable,
    file: FileId,
    start: u64,
    end: u64,
    pgoff: u64,
    flags: VmFlags,
) -> Result<(), Errno> {
    let id = files.file(file).inode;
    let st = state(files, id);
    let shared = flags.contains(VmFlags::MAYSHARE);
    let mut m = st.maps();
    m.private |= !shared;
    if flags.contains(VmFlags::NORESERVE) {
        return Ok(());
    }
    let (first, last) = indices(files.inode(id), start, pgoff, start, end);
    let chg = if shared {
        (first..last).filter(|i| !m.reserved.contains(i)).count() as u64
    } else {
        last - first
    };
    let mut pool = st.pool.lock();
    let h = &mut pool[st.h];
    // hugetlb_acct_memory → gather_surplus_pages.
    if h.resv + chg > h.free {
        return Err(Errno::ENOMEM);
    }
    h.resv += chg;
    if shared {
        m.reserved.extend(first..last);
    } else {
        m.priv_resv.extend(first..last);
    }
    Ok(())
}

/// `hugetlb_fault` for the page at `addr` of a hugetlb VMA mapping `f`
/// from `vma_start` at page offset `pgoff` with `flags`, a write or not:
/// `false` for `SIGBUS` (beyond the object's end, or no page to take).
/// A page already there (the page cache of a shared mapping, the private
/// mapping's own) faults without taking another, unless a write finds a
/// private page a fork copy also maps (`hugetlb_wp`): the copy takes a
/// page nobody reserved; with none, the owner of the reservations takes
/// the page back from the copies (`unmap_ref_private`) and a copy gets
/// `SIGBUS`. A copy the owner took pages from gets `SIGBUS` at every
/// fault that needs a page (`HPAGE_RESV_UNMAPPED`).
pub fn hugetlb_fault(
    files: &FileTable,
    f: FileId,
    vma_start: u64,
    pgoff: u64,
    flags: VmFlags,
    addr: u64,
    write: bool,
) -> bool {
    let inode = files.file_inode(f);
    let Some(st) = inode.huge.as_ref() else {
        return false;
    };
    let shift = inode.huge_size.trailing_zeros();
    let haddr = addr & !(inode.huge_size - 1);
    let (idx, _) = indices(inode, vma_start, pgoff, haddr, haddr);
    if idx >= inode.size() >> shift {
        return false;
    }
    let shared = flags.contains(VmFlags::MAYSHARE);
    let mut m = st.maps();
    let mut pool = st.pool.lock();
    let h = &mut pool[st.h];
    if shared {
        if m.cached.contains(&idx) {
            return true;
        }
        // vma_needs_reservation: the object's map has the index (even for
        // a VM_NORESERVE mapping, vma_has_reserves).
        if m.reserved.contains(&idx) {
            h.resv -= 1;
        } else if h.available() == 0 {
            return false;
        } else {
            m.reserved.insert(idx);
        }
        h.free -= 1;
        m.cached.insert(idx);
        return true;
    }
    if let Some(p) = m.priv_pages.get(&idx) {
        if !write || !p.shared() {
            return true;
        }
        if h.available() > 0 {
            h.free -= 1;
            let old = m.priv_pages.insert(idx, HugePage::new()).expect("present");
            old.release(h);
            return true;
        }
        if m.copy {
            return false;
        }
        let page = p.clone();
        drop(pool);
        drop(m);
        st.unmap_from_copies(idx, &page);
        let mut pool = st.pool.lock();
        page.release(&mut pool[st.h]);
        return true;
    }
    if m.unmapped {
        return false;
    }
    if !flags.contains(VmFlags::NORESERVE) && m.priv_resv.remove(&idx) {
        h.resv -= 1;
    } else if h.available() == 0 {
        return false;
    }
    h.free -= 1;
    m.priv_pages.insert(idx, HugePage::new());
    true
}

/// `copy_hugetlb_page_range` for the VMAs `dup_mmap` copied: a fork
/// child's copy of a privately mapped object keeps the parent's pages
/// only where one of its private hugetlb VMAs maps them (not under a
/// `MADV_DONTFORK` VMA, which the child does not get).
pub fn hugetlb_fork_prune<P: BarrierPolicy>(w: &MmWrite<'_, P>) {
    let files = w.files();
    let mut covered: Vec<(*const HugeInode, u64, u64)> = Vec::new();
    w.for_each_vma_ref(|v| {
        if let Some(f) = v.file
            && v.flags.contains(VmFlags::HUGETLB)
            && !v.flags.contains(VmFlags::MAYSHARE)
        {
            let inode = files.file_inode(f);
            if let Some(st) = &inode.huge {
                let (a, b) = indices(inode, v.start, v.pgoff, v.start, v.end);
                covered.push((std::sync::Arc::as_ptr(st), a, b));
            }
        }
    });
    for inode in files.live_inodes() {
        let Some(st) = &inode.huge else { continue };
        let mut m = st.maps();
        if !m.copy {
            continue;
        }
        let me = std::sync::Arc::as_ptr(st);
        let keep = |i: u64| covered.iter().any(|&(p, a, b)| p == me && a <= i && i < b);
        let gone: Vec<u64> = m.priv_pages.keys().copied().filter(|&i| !keep(i)).collect();
        let mut pool = st.pool.lock();
        for i in gone {
            let p = m.priv_pages.remove(&i).expect("present");
            p.release(&mut pool[st.h]);
        }
    }
}

/// The faults of a prefault (`MAP_POPULATE`, `mlock`, `MADV_POPULATE_*`)
/// of `[start, end)` of hugetlb VMA `v`, huge page by huge page: the
/// first address whose page cannot be had (from `start` on), or `None`.
pub fn hugetlb_populate(files: &FileTable, v: &Vma, start: u64, end: u64, write: bool) -> Option<u64> {
    let f = v.file?;
    let h = files.file_inode(f).huge_size;
    let mut a = start & !(h - 1);
    while a < end {
        if !hugetlb_fault(files, f, v.start, v.pgoff, v.flags, a, write) {
            return Some(a.max(start));
        }
        a += h;
    }
    None
}

/// `[start, end)` of hugetlb VMA `v` is unmapped (`unmap_hugepage_range`
/// and `hugetlb_vm_op_close`), `v` being the VMA as it was: a private
/// mapping's pages and unused reservations there go back to the pool,
/// except at indices another private VMA of this address space still maps
/// (an `mremap` move unmaps its source after the copy took the pages and
/// the reservations: `clear_vma_resv_huge_pages`); a shared mapping's
/// stay with the object.
pub fn hugetlb_unmap<P: BarrierPolicy>(mm: &MmWrite<'_, P>, v: &Vma, start: u64, end: u64) {
    let Some(f) = v.file else { return };
    if v.flags.contains(VmFlags::MAYSHARE) {
        return;
    }
    let files = mm.files();
    let inode = files.file_inode(f);
    let Some(st) = inode.huge.as_ref() else { return };
    let (first, last) = indices(inode, v.start, v.pgoff, start, end);
    let mut kept = std::collections::BTreeSet::new();
    mm.for_each_vma_ref(|o| {
        if o.file == Some(f) && !o.flags.contains(VmFlags::MAYSHARE) {
            let (a, b) = indices(inode, o.start, o.pgoff, o.start, o.end);
            kept.extend(a.max(first)..b.min(last));
        }
    });
    let mut m = st.maps();
    let mut pool = st.pool.lock();
    let h = &mut pool[st.h];
    for i in (first..last).filter(|i| !kept.contains(i)) {
        if let Some(p) = m.priv_pages.remove(&i) {
            p.release(h);
        }
        if m.priv_resv.remove(&i) {
            h.resv -= 1;
        }
    }
}

/// `vma_unlink` of a hugetlb VMA, then its `hugetlb_vm_op_close` (out of
/// line).
#[cold]
#[inline(never)]
pub(crate) fn unlink_hugetlb<P: BarrierPolicy>(mm: &mut MmWrite<'_, P>, id: VmaId) {
    let v = *mm.vma_ref(id);
    mm.vma_unlink(id);
    hugetlb_unmap(mm, &v, v.start, v.end);
}

/// A hugetlb VMA keeps `keep` (start, end, offset) and gives `[start,
/// end)` back to the pool (`hugetlb_vm_op_close` of the part the split
/// removed). Out of line.
#[cold]
#[inline(never)]
pub(crate) fn trim_hugetlb<P: BarrierPolicy>(
    mm: &mut MmWrite<'_, P>,
    id: VmaId,
    keep: (u64, u64, u64),
    start: u64,
    end: u64,
) {
    let old = *mm.vma_ref(id);
    mm.vma_set_range(id, keep.0, keep.1, keep.2);
    hugetlb_unmap(mm, &old, start, end);
}

/// `MADV_DONTNEED` on a hugetlb VMA (`__unmap_hugepage_range`): a private
/// mapping's pages go back to the pool, and one with reservations gets
/// each page's reservation back (`folio_set_hugetlb_restore_reserve`,
/// `vma_add_reservation`), so that the page is there for its next fault.
pub fn hugetlb_zap(files: &FileTable, v: &Vma, start: u64, end: u64) {
    let Some(f) = v.file else { return };
    let inode = files.file_inode(f);
    let Some(st) = inode.huge.as_ref() else { return };
    if v.flags.contains(VmFlags::MAYSHARE) {
        return;
    }
    let (first, last) = indices(inode, v.start, v.pgoff, start, end);
    let mut m = st.maps();
    let mut pool = st.pool.lock();
    let h = &mut pool[st.h];
    // A fork copy has no reservation map to restore into. A page a fork
    // copy still maps is not freed here, and the model then restores no
    // reservation for it (the kernel restores it when the page is freed).
    let restore = !v.flags.contains(VmFlags::NORESERVE) && !m.copy;
    for i in first..last {
        if let Some(p) = m.priv_pages.remove(&i)
            && p.release(h)
            && restore
        {
            h.resv += 1;
            m.priv_resv.insert(i);
        }
    }
}

/// `remove_inode_hugepages` and `hugetlb_unreserve_pages` for the indices
/// from `first` on (truncation) or in `[first, last)` (`MADV_REMOVE`'s
/// hole): the object's pages go back to the pool, and so do the
/// reservations no page used.
pub fn hugetlb_punch(inode: &Inode, first: u64, last: u64) {
    let Some(st) = inode.huge.as_ref() else { return };
    let mut m = st.maps();
    let mut pool = st.pool.lock();
    let h = &mut pool[st.h];
    let gone: Vec<u64> = m.reserved.range(first..last).copied().collect();
    for i in gone {
        m.reserved.remove(&i);
        if m.cached.remove(&i) {
            h.free += 1;
        } else {
            h.resv -= 1;
        }
    }
}
