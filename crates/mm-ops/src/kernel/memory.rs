//! Page faults and population: `handle_mm_fault` and the fault handlers of
//! `mm/memory.c`, `access_error` and `do_user_addr_fault` of
//! `arch/x86/mm/fault.c`, `lock_mm_and_find_vma`/`expand_downwards`
//! (`mm/mmap.c`, `mm/vma.c`), and `__mm_populate` (`mm/gup.c`).
//!
//! The model keeps no page tables: a fault's only lasting effects on the
//! address space are the `anon_vma` it assigns and the stack it grows, and
//! its outcome is `0`, `SIGSEGV` or `SIGBUS`.

use mm_core::ThpMode;
use mm_core::file::{FileId, InodeKind};
use mm_core::vma_lock::{VmaReadLock, lock_vma_under_rcu};
use mm_core::{BarrierPolicy, FaultView, MmRead, MmStruct, MmWrite, VmFlags, VmaId, VmaView};

use crate::call::{Access, Signal};
use crate::uapi::*;
use crate::util::*;
use crate::vma::anon_vma_prepare;

/// Is the page at `addr` of a VMA mapping `file` (from `start`, at page
/// offset `pgoff`) beyond the end of its object? (`filemap_fault` /
/// `shmem_fault` answer `VM_FAULT_SIGBUS`.)
fn beyond_eof(files: &mm_core::file::FileTable, file: FileId, start: u64, pgoff: u64, addr: u64) -> bool {
    let inode = files.file_inode(file);
    if inode.kind == InodeKind::DevZero {
        // A private /dev/zero mapping is anonymous memory (no vm_ops): its
        // faults never look at a size.
        return false;
    }
    let index = pgoff + ((addr - start) >> PAGE_SHIFT);
    index >= inode.size().div_ceil(PAGE_SIZE)
}

/// `thp_vma_allowable_order` for a fault: mode `always` unless
/// `VM_NOHUGEPAGE`, mode `madvise` with `VM_HUGEPAGE`.
fn thp_allowed(flags: VmFlags, thp: ThpMode) -> bool {
    !flags.contains(VmFlags::NOHUGEPAGE)
        && match thp {
            ThpMode::Always => true,
            ThpMode::Madvise => flags.contains(VmFlags::HUGEPAGE),
            ThpMode::Never => false,
        }
}

/// What a fault needs of a VMA, read under `mmap_lock` or under the VMA's
/// own read lock.
#[derive(Clone, Copy)]
struct FaultVma {
    start: u64,
    end: u64,
    pgoff: u64,
    flags: VmFlags,
    file: Option<FileId>,
    special: Option<&'static str>,
    /// `vma_is_anonymous`: no file, or a private `/dev/zero` mapping.
    anon: bool,
}

impl FaultVma {
    /// The fault's view of VMA `v` (from the writer's copy).
    fn of(files: &mm_core::file::FileTable, v: &mm_core::Vma) -> FaultVma {
        FaultVma {
            start: v.start,
            end: v.end,
            pgoff: v.pgoff,
            flags: v.flags,
            file: v.file,
            special: v.special,
            anon: crate::util::vma_is_anonymous(files, v),
        }
    }

    /// Does a fault of this kind need an `anon_vma` (`vmf_anon_prepare`)?
    /// Anonymous write faults (`do_anonymous_page`) and private file write
    /// faults (`do_cow_fault`, `wp_page_copy`), and any fault that takes
    /// the huge-page path ([`thp_anon_fault`](Self::thp_anon_fault)).
    fn needs_anon_vma(&self, write: bool, addr: u64, thp: ThpMode) -> bool {
        (write && self.special.is_none() && (self.file.is_none() || !self.flags.contains(VmFlags::SHARED)))
            || self.thp_anon_fault(addr, thp)
    }

    /// `__handle_mm_fault` → `create_huge_pmd` → `do_huge_pmd_anonymous_page`,
    /// which prepares an `anon_vma` before it looks at the access (a read
    /// maps the huge zero page): an anonymous VMA that THP may back
    /// (`thp_vma_allowable_order`: mode `always` unless `VM_NOHUGEPAGE`,
    /// mode `madvise` with `VM_HUGEPAGE`) and that covers the whole 2 MiB
    /// range around `addr` (`thp_vma_suitable_order`, which checks no
    /// offset for an anonymous VMA). The model keeps no page tables: it
    /// assumes the range's PMD is still empty.
    fn thp_anon_fault(&self, addr: u64, thp: ThpMode) -> bool {
        if !self.anon || !thp_allowed(self.flags, thp) {
            return false;
        }
        // thp_vma_suitable_order: an anonymous VMA's offset is not checked
        // (a private /dev/zero mapping keeps the offset it was mapped at).
        let haddr = addr & !(PMD_SIZE - 1);
        haddr >= self.start && haddr + PMD_SIZE <= self.end
    }

    /// Whether prefaulting `[start, stop)` by reads (`populate_vma_page_range`,
    /// `faultin_page_range`) takes the huge-page path at some page, as the
    /// first fault in a whole aligned 2 MiB range of the VMA does
    /// ([`thp_anon_fault`](Self::thp_anon_fault)).
    fn thp_populate(&self, start: u64, stop: u64, thp: ThpMode) -> bool {
        if !self.anon || !thp_allowed(self.flags, thp) {
            return false;
        }
        let Some(first) = self.start.checked_next_multiple_of(PMD_SIZE) else {
            return false;
        };
        let last = self.end & !(PMD_SIZE - 1);
        first < last && start.max(first) < stop.min(last)
    }

    /// The fault's outcome once any `anon_vma` is in place: special
    /// mappings have pages only at some offsets, files none beyond EOF.
    fn outcome(&self, files: &mm_core::file::FileTable, addr: u64, write: bool) -> Result<(), Signal> {
        match self.file {
            Some(f) if self.flags.contains(VmFlags::HUGETLB) => {
                if crate::hugetlb::hugetlb_fault(files, f, self.start, self.pgoff, self.flags, addr, write) {
                    Ok(())
                } else {
                    Err(Signal::Bus)
                }
            }
            Some(f) if self.special.is_none() && beyond_eof(files, f, self.start, self.pgoff, addr) => Err(Signal::Bus),
            _ => self.outcome_no_file(addr),
        }
    }

    /// [`outcome`](Self::outcome) for a VMA with no file, or a special one.
    fn outcome_no_file(&self, addr: u64) -> Result<(), Signal> {
        if let Some(name) = self.special {
            // special_mapping_fault / vvar_fault: only some pages have a page
            // behind them (on the host: vDSO data at 0 and 2 of [vvar], the
            // kvm-clock page at 0 of [vvar_vclock]); the others raise SIGBUS.
            let index = self.pgoff + ((addr - self.start) >> PAGE_SHIFT);
            let present = match name {
                "[vvar]" => index == 0 || index == 2,
                "[vvar_vclock]" => index == 0,
                _ => true,
            };
            return if present { Ok(()) } else { Err(Signal::Bus) };
        }
        Ok(())
    }
}

/// `handle_mm_fault` under `mmap_lock` on a VMA that passed
/// `access_error`: assigns an `anon_vma` where the kernel would, and
/// reports `SIGBUS` beyond EOF.
fn handle_mm_fault(
    mm: &impl FaultView,
    files: &mm_core::file::FileTable,
    id: VmaId,
    addr: u64,
    write: bool,
) -> Result<(), Signal> {
    let v = mm.vma(id);
    let fv = FaultVma::of(files, &v);
    if fv.needs_anon_vma(write, addr, mm.state().cfg.thp_enabled) {
        anon_vma_prepare(mm, id);
    }
    fv.outcome(files, addr, write)
}

/// `access_error` (`arch/x86/mm/fault.c`) for a not-present page. With
/// protection keys, `arch_vma_access_permitted` first: a data access that
/// PKRU refuses for the VMA's key ([`pkeys`](crate::pkeys)); instruction
/// fetches never are. `pkru` is 0 without keys.
fn access_error(flags: VmFlags, access: Access, pkru: u32) -> bool {
    match access {
        Access::Write => {
            flags.contains(VmFlags::SHADOW_STACK)
                || !flags.contains(VmFlags::WRITE)
                || !crate::pkeys::access_permitted(flags, pkru, true)
        }
        Access::Read => !flags.is_accessible() || !crate::pkeys::access_permitted(flags, pkru, false),
        Access::Exec => !flags.is_accessible(),
    }
}

/// `acct_stack_growth` (`mm/vma.c`).
fn acct_stack_growth<P: BarrierPolicy>(w: &mut MmWrite<'_, P>, flags: VmFlags, size: u64, grow: u64) -> bool {
    let st = w.st();
    let ok = may_expand_vm(st, flags, grow)
        && size <= st.cfg.rlimit_stack
        && mlock_future_ok(st, VmFlags(flags.0 & VmFlags::LOCKED.0), grow << PAGE_SHIFT)
        && vm_enough_memory(st, grow);
    if ok && !flags.contains(VmFlags::ACCOUNT) {
        st.committed_stranded += grow;
    }
    ok
}

/// `expand_downwards` (`mm/vma.c`): grows a stack VMA down to `addr`.
pub fn expand_downwards<P: BarrierPolicy>(w: &mut MmWrite<'_, P>, id: VmaId, addr: u64) -> Result<(), Errno> {
    let v = w.vma(id);
    if !v.flags.contains(VmFlags::GROWSDOWN) {
        return Err(Errno::EFAULT);
    }
    let address = addr & PAGE_MASK;
    if address < w.st().cfg.effective_mmap_min_addr() {
        return Err(Errno::EPERM);
    }
    if let Some(p) = w.vma_prev(id) {
        let p = w.vma(p);
        if !p.flags.contains(VmFlags::GROWSDOWN)
            && p.flags.is_accessible()
            && address - p.end < w.st().cfg.stack_guard_gap
        {
            return Err(Errno::ENOMEM);
        }
    }
    anon_vma_prepare(&*w, id);
    if address < v.start {
        let size = v.end - address;
        let grow = (v.start - address) >> PAGE_SHIFT;
        if grow > v.pgoff || !acct_stack_growth(w, v.flags, size, grow) {
            return Err(Errno::ENOMEM);
        }
        let st = w.st();
        if v.flags.contains(VmFlags::LOCKED) {
            st.locked_vm += grow;
        }
        vm_stat_account(st, v.flags, grow as i64);
        w.vma_set_range(id, address, v.end, v.pgoff - grow);
    }
    Ok(())
}

/// How a fault was handled (`count_vm_vma_lock_event`'s events).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultPath {
    /// Handled under the VMA's read lock (`VMA_LOCK_SUCCESS`).
    VmaLock,
    /// The VMA was locked, but the fault needed `mmap_lock` it could not
    /// take (`VM_FAULT_RETRY`, `VMA_LOCK_RETRY`); `mmap_lock` handled it.
    VmaRetry,
    /// No VMA could be locked (none there, or write-locked:
    /// `VMA_LOCK_ABORT`); `mmap_lock` handled it.
    MmapLock,
    /// An address in kernel space: no lookup at all.
    KernelSpace,
}

/// One user access to `addr` (`do_user_addr_fault` through
/// `handle_mm_fault`): `Ok(())`, or the signal delivered.
///
/// An instruction fetch from a page without `VM_EXEC` first faults the page
/// in like a read (so it may raise `SIGBUS`), then fails the protection
/// check on the retry with `SIGSEGV`, as on x86.
pub fn handle_user_fault<P: BarrierPolicy>(mm: &MmStruct<P>, addr: u64, access: Access) -> Result<(), Signal> {
    handle_user_fault_path(mm, addr, access).0
}

/// [`handle_user_fault`], saying which path handled it. As
/// `do_user_addr_fault` (`arch/x86/mm/fault.c`): `lock_vma_under_rcu`
/// first; `lock_mm_and_find_vma` (`mmap_read_lock`, stack expansion) when
/// no VMA could be locked or the fault under the VMA lock asks to retry.
pub fn handle_user_fault_path<P: BarrierPolicy>(
    mm: &MmStruct<P>,
    addr: u64,
    access: Access,
) -> (Result<(), Signal>, FaultPath) {
    if addr >= mm.task_size() {
        return (Err(Signal::Segv), FaultPath::KernelSpace);
    }
    let path = match lock_vma_under_rcu(mm, addr) {
        Some(lock) => match fault_under_vma_lock(mm, &lock, addr, access) {
            Some(r) => return (r, FaultPath::VmaLock),
            None => FaultPath::VmaRetry,
        },
        None => FaultPath::MmapLock,
    };
    (fault_under_mmap_lock(mm, addr, access), path)
}

/// The fault under the VMA's read lock; `None` for `VM_FAULT_RETRY`.
fn fault_under_vma_lock<P: BarrierPolicy>(
    mm: &MmStruct<P>,
    lock: &VmaReadLock<'_>,
    addr: u64,
    access: Access,
) -> Option<Result<(), Signal>> {
    let s = lock.slot();
    // Whether a file-backed VMA is anonymous memory (private /dev/zero)
    // needs the file table: asked only where the huge-page path could
    // follow, so that other faults stay off its lock.
    let (file, special) = (s.file(), s.special());
    let anon = special.is_none()
        && file.is_none_or(|f| {
            thp_allowed(s.flags(), mm.thp_enabled()) && mm.files().file_inode(f).kind == InodeKind::DevZero
        });
    let fv = FaultVma {
        start: s.start(),
        end: s.end(),
        pgoff: s.pgoff(),
        flags: s.flags(),
        file,
        special,
        anon,
    };
    if access_error(fv.flags, access, mm.pkru()) {
        return Some(Err(Signal::Segv));
    }
    // Guard markers are page-table state, which the kernel reads under
    // the VMA lock; the model keeps them under mmap_lock, so a VMA that
    // may hold some needs a read trylock (a model choice: a failed
    // trylock retries under mmap_lock, with the same outcome).
    if fv.flags.contains(VmFlags::MAYBE_GUARD) {
        let r = mm.try_read()?;
        if crate::guards::is_guard(r.state(), addr & PAGE_MASK) {
            return Some(Err(Signal::Segv));
        }
    }
    let write = access == Access::Write;
    if fv.needs_anon_vma(write, addr, mm.thp_enabled()) && s.anon_vma().is_none() {
        // vmf_anon_prepare under FAULT_FLAG_VMA_LOCK: needs mmap_lock for
        // reading, and retries if it cannot have it at once.
        let r = mm.try_read()?;
        anon_vma_prepare(&r, lock.id());
    }
    // Only a file's size needs the file table: an anonymous fault takes
    // no lock beyond the VMA's (the kernel reads `i_size` locklessly; the
    // model's file table is behind a mutex, so file-backed faults under
    // the VMA lock still serialize on it).
    let out = if fv.file.is_some() && fv.special.is_none() {
        fv.outcome(&mm.files(), addr, write)
    } else {
        fv.outcome_no_file(addr)
    };
    Some(out.and_then(|()| exec_check(fv.flags, access)))
}

/// After the fault: an instruction fetch from a page without `VM_EXEC`
/// fails the protection check on the retry.
fn exec_check(flags: VmFlags, access: Access) -> Result<(), Signal> {
    if access == Access::Exec && !flags.contains(VmFlags::EXEC) {
        Err(Signal::Segv)
    } else {
        Ok(())
    }
}

/// [`handle_user_fault`] as a kernel without `CONFIG_PER_VMA_LOCK` takes
/// it (`do_user_addr_fault` before 6.4): every fault under `mmap_lock`
/// for reading, through `lock_mm_and_find_vma`. The benches compare the
/// two entries; the outcome is the same.
pub fn handle_user_fault_mmap_lock<P: BarrierPolicy>(
    mm: &MmStruct<P>,
    addr: u64,
    access: Access,
) -> Result<(), Signal> {
    if addr >= mm.task_size() {
        return Err(Signal::Segv);
    }
    fault_under_mmap_lock(mm, addr, access)
}

/// `lock_mm_and_find_vma` and the fault under `mmap_lock`.
fn fault_under_mmap_lock<P: BarrierPolicy>(mm: &MmStruct<P>, addr: u64, access: Access) -> Result<(), Signal> {
    let r = mm.read();
    let Some(mut id) = r.find_vma(addr) else {
        return Err(Signal::Segv);
    };
    let r = if r.vma(id).start > addr {
        if !r.vma(id).flags.contains(VmFlags::GROWSDOWN) {
            return Err(Signal::Segv);
        }
        // Upgrade: drop the read lock, take the write lock, look again.
        drop(r);
        let mut w = mm.write();
        id = match w.find_vma(addr) {
            Some(v) => v,
            None => return Err(Signal::Segv),
        };
        if w.vma(id).start > addr
            && (!w.vma(id).flags.contains(VmFlags::GROWSDOWN) || expand_downwards(&mut w, id, addr).is_err())
        {
            return Err(Signal::Segv);
        }
        w.downgrade()
    } else {
        r
    };
    let flags = r.vma(id).flags;
    if access_error(flags, access, mm.pkru()) {
        return Err(Signal::Segv);
    }
    // A guard marker in the page table: handle_pte_marker answers SIGSEGV.
    if crate::guards::is_guard(r.state(), addr & PAGE_MASK) {
        return Err(Signal::Segv);
    }
    {
        let files = r.files();
        handle_mm_fault(&r, &files, id, addr, access == Access::Write)?;
    }
    exec_check(flags, access)
}

/// `__mm_populate(start, len, ignore_errors = 1)` (`mm/gup.c`): prefaults
/// a range under the read lock. Private writable VMAs are faulted for
/// writing (breaking COW), which assigns their `anon_vma`; others are read.
pub fn mm_populate<P: BarrierPolicy>(mm: &MmStruct<P>, start: u64, len: u64) {
    let end = start.saturating_add(len);
    let r = mm.read();
    let mut cur = r.find_vma_intersection(start, end);
    while let Some(id) = cur {
        let v = r.vma(id);
        if v.start >= end {
            break;
        }
        let skip = v.flags.intersects(VmFlags::IO | VmFlags::PFNMAP | VmFlags::LOCKONFAULT)
            || crate::util::vma_is_secretmem(&r.files(), &v);
        let write = v.flags.0 & (VmFlags::WRITE.0 | VmFlags::SHARED.0) == VmFlags::WRITE.0;
        if !skip && v.flags.contains(VmFlags::HUGETLB) {
            // Huge pages from the pool, until one cannot be had (ignored).
            let _ = crate::hugetlb::hugetlb_populate(&r.files(), &v, start.max(v.start), end.min(v.end), write);
        }
        // check_vma_flags' arch_vma_access_permitted: a key PKRU refuses
        // stops gup before any fault (EFAULT, ignored here).
        let keyed_out = !crate::pkeys::access_permitted(v.flags, r.pkru(), write);
        if !skip && write && !keyed_out {
            // The first write fault prepares the anon_vma, even if the page
            // itself then fails (beyond EOF).
            anon_vma_prepare(&r, id);
        } else if !skip && !write && v.flags.intersects(VmFlags::ACCESS_FLAGS) && !keyed_out {
            // Read faults: the huge-page path prepares one too. They stop
            // at the VMA's first guard marker.
            let (from, to) = (start.max(v.start), end.min(v.end));
            let stop = first_guard(&r, from, to).unwrap_or(to);
            let fv = FaultVma::of(&r.files(), &v);
            if fv.thp_populate(from, stop, r.state().cfg.thp_enabled) {
                anon_vma_prepare(&r, id);
            }
        }
        cur = r.vma_next(id);
    }
}

/// `populate_vma_page_range` of `[start, end)` in VMA `id` under the
/// write lock (mprotect of a locked private VMA becoming writable): write
/// faults assign the `anon_vma`. None is made for a lock-on-fault VMA, nor
/// when the first page is a guard marker, nor when PKRU refuses writes
/// under the VMA's key (`check_vma_flags`' `arch_vma_access_permitted`
/// stops `__get_user_pages` before any fault).
pub fn mm_populate_locked<P: BarrierPolicy>(w: &mut MmWrite<'_, P>, id: VmaId, start: u64, end: u64) {
    let v = w.vma(id);
    if v.flags.intersects(VmFlags::LOCKONFAULT)
        || !crate::pkeys::access_permitted(v.flags, w.pkru(), true)
        || first_guard(w, start, end) == Some(start)
    {
        return;
    }
    anon_vma_prepare(&*w, id);
}

/// The faults of `faultin_page_range` (`mm/gup.c`, for
/// `MADV_POPULATE_READ`/`WRITE`) on `[start, end)` of VMA `id`, whose
/// flags allow the access: `EFAULT` when a page faults with `SIGBUS` or
/// `SIGSEGV` (beyond the end of the file, a guard marker). A write fault
/// on a private mapping that reaches the fault handler gives it an
/// `anon_vma` (`do_anonymous_page`, and `do_cow_fault` even for a page
/// beyond EOF); a guard marker stops the fault before that.
pub fn populate_pages<P: BarrierPolicy>(
    mm: &MmRead<'_, P>,
    id: VmaId,
    start: u64,
    end: u64,
    write: bool,
) -> Result<(), Errno> {
    let v = mm.vma(id);
    let guard = first_guard(mm, start, end);
    let eof = v.file.and_then(|f| {
        let files = mm.files();
        let inode = files.file_inode(f);
        if v.flags.contains(VmFlags::HUGETLB) {
            return crate::hugetlb::hugetlb_populate(&files, &v, start, end, write);
        }
        if inode.kind == InodeKind::DevZero {
            // Anonymous memory (see `beyond_eof`): no end of file.
            return None;
        }
        let size_pages = inode.size().div_ceil(PAGE_SIZE);
        let first_bad = v.start
            + size_pages
                .saturating_sub(v.pgoff)
                .saturating_mul(PAGE_SIZE)
                .min(u64::MAX - v.start);
        (first_bad < end).then_some(first_bad.max(start))
    });
    let fail = match (guard, eof) {
        (Some(g), Some(e)) => Some(g.min(e)),
        (g, e) => g.or(e),
    };
    if write && !v.flags.contains(VmFlags::SHARED) && v.special.is_none() {
        let reaches = match fail {
            None => true,
            Some(f) => f > start || guard != Some(f),
        };
        if reaches {
            anon_vma_prepare(mm, id);
        }
    } else if !write
        && FaultVma::of(&mm.files(), &v).thp_populate(start, fail.unwrap_or(end), mm.state().cfg.thp_enabled)
    {
        // A read that takes the huge-page path prepares one as well.
        anon_vma_prepare(mm, id);
    }
    if fail.is_some() { Err(Errno::EFAULT) } else { Ok(()) }
}

/// The first guard marker (`MADV_GUARD_INSTALL`) in `[start, end)`.
fn first_guard(mm: &impl VmaView, start: u64, end: u64) -> Option<u64> {
    mm.state()
        .guard_pages
        .range(..end)
        .find(|&(_, &e)| e > start)
        .map(|(&s, _)| s.max(start))
}
