//! `mmap(2)`, `munmap(2)` and `brk(2)` (`mm/mmap.c`, `mm/util.c`,
//! `arch/x86/kernel/sys_x86_64.c`): argument checks in the kernel's order,
//! placement (`__get_unmapped_area` with THP alignment), and the call into
//! `mmap_region`.

use mm_core::file::{FileId, FileTable, InodeKind};
use mm_core::{BarrierPolicy, MmStruct, MmWrite, VmFlags, Vma, VmaId, VmaView};

use crate::memory::mm_populate;
use crate::shmem::{ShmemSb, shmem_get_unmapped_area};
use crate::sys_x86_64::{AreaFile, arch_get_unmapped_area, arch_get_unmapped_area_topdown};
use crate::uapi::*;
use crate::util::*;
use crate::vma::{Vmg, vma_merge_new_range};
use crate::vma_region::{MapSource, do_vmi_align_munmap, do_vmi_munmap, mmap_region};

/// What `do_mmap` needs to know about the file being mapped.
#[derive(Clone, Copy, Debug)]
pub struct MapFile {
    /// The open file description.
    pub id: FileId,
    /// `FMODE_READ`.
    pub readable: bool,
    /// `FMODE_WRITE`.
    pub writable: bool,
    /// `IS_APPEND(inode)`.
    pub append_only: bool,
    /// `path_noexec`.
    pub noexec: bool,
    /// `is_file_hugepages`.
    pub hugetlb: bool,
    /// Its huge page size.
    pub huge_size: u64,
    /// Kind of object.
    pub kind: InodeKind,
    /// `f_op->get_unmapped_area == thp_get_unmapped_area`.
    pub thp_unmapped_area: bool,
    /// `FOP_MMAP_SYNC`: `MAP_SYNC` passes `MAP_SHARED_VALIDATE` (ext4, xfs),
    /// to be refused later by `mmap_prepare` without DAX.
    pub fop_mmap_sync: bool,
    /// A shmem object placed by `shmem_get_unmapped_area`, and the super
    /// block whose huge setting it follows.
    pub shmem: Option<ShmemSb>,
}

impl MapFile {
    /// Describes file `id` from the file table.
    pub fn describe<P: BarrierPolicy>(mm: &MmStruct<P>, id: FileId) -> MapFile {
        Self::from_table(&mm.files(), id)
    }

    /// Like [`describe`](Self::describe), from inside a write section.
    pub fn describe_locked<P: BarrierPolicy>(w: &MmWrite<'_, P>, id: FileId) -> MapFile {
        Self::from_table(&w.files(), id)
    }

    fn from_table(files: &FileTable, id: FileId) -> MapFile {
        let f = files.file(id);
        let i = files.inode(f.inode);
        MapFile {
            id,
            readable: f.readable,
            writable: f.writable,
            append_only: i.append_only,
            noexec: i.noexec,
            hugetlb: i.is_hugetlb(),
            huge_size: i.huge_size,
            kind: i.kind,
            thp_unmapped_area: i.thp_unmapped_area,
            fop_mmap_sync: i.rejects_sync,
            shmem: match (i.kind, i.tmpfs_huge) {
                (InodeKind::Memfd | InodeKind::ShmemAnon | InodeKind::SysvShm, _) => Some(ShmemSb::Internal),
                (InodeKind::Regular, Some(h)) => Some(ShmemSb::Mount(h)),
                _ => None,
            },
        }
    }

    fn area(&self) -> AreaFile {
        AreaFile {
            hugetlb: self.hugetlb,
            huge_size: self.huge_size,
        }
    }
}

/// `MAX_ERRNO` (`include/linux/err.h`).
const MAX_ERRNO: u64 = 4095;

/// `round_hint_to_min`.
fn round_hint_to_min(mm: &impl VmaView, hint: u64) -> u64 {
    let hint = hint & PAGE_MASK;
    let min = mm.state().cfg.effective_mmap_min_addr();
    if hint != 0 && hint < min { page_align(min) } else { hint }
}

/// `mm_get_unmapped_area_vmflags`: top-down or bottom-up by `MMF_TOPDOWN`.
pub(crate) fn mm_get_unmapped_area(
    mm: &impl VmaView,
    file: Option<AreaFile>,
    addr: u64,
    len: u64,
    pgoff: u64,
    flags: u64,
    vm_flags: VmFlags,
) -> Result<u64, Errno> {
    if mm.state().cfg.topdown {
        arch_get_unmapped_area_topdown(mm, file, addr, len, pgoff, flags, vm_flags)
    } else {
        arch_get_unmapped_area(mm, file, addr, len, pgoff, flags, vm_flags)
    }
}

/// `__thp_get_unmapped_area` (`mm/huge_memory.c`): searches with a padded
/// length, then aligns the result so that file offset and address agree
/// modulo 2 MiB. Returns `None` to fall back to an unpadded search.
fn thp_get_unmapped_area_padded(
    mm: &impl VmaView,
    file: Option<AreaFile>,
    addr: u64,
    len: u64,
    off: i64,
    flags: u64,
    vm_flags: VmFlags,
) -> Option<u64> {
    let size = PMD_SIZE as i64;
    let off_end = off.wrapping_add(len as i64);
    let off_align = off.wrapping_add(size - 1) & !(size - 1);
    if off_end <= off_align || off_end.wrapping_sub(off_align) < size {
        return None;
    }
    let len_pad = len.wrapping_add(PMD_SIZE);
    if len_pad < len || off.wrapping_add(len_pad as i64) < off {
        return None;
    }
    let ret = mm_get_unmapped_area(mm, file, addr, len_pad, (off as u64) >> PAGE_SHIFT, flags, vm_flags).ok()?;
    if ret == addr {
        return Some(addr);
    }
    let off_sub = (off as u64).wrapping_sub(ret) & (PMD_SIZE - 1);
    if mm.state().cfg.topdown && off_sub == 0 {
        return Some(ret + PMD_SIZE);
    }
    Some(ret + off_sub)
}

/// `thp_get_unmapped_area_vmflags`.
fn thp_get_unmapped_area(
    mm: &impl VmaView,
    file: Option<AreaFile>,
    addr: u64,
    len: u64,
    pgoff: u64,
    flags: u64,
    vm_flags: VmFlags,
) -> Result<u64, Errno> {
    let off = (pgoff << PAGE_SHIFT) as i64;
    if let Some(a) = thp_get_unmapped_area_padded(mm, file, addr, len, off, flags, vm_flags) {
        return Ok(a);
    }
    mm_get_unmapped_area(mm, file, addr, len, pgoff, flags, vm_flags)
}

/// `__get_unmapped_area` (`mm/mmap.c`): picks or checks the address of a
/// new mapping.
pub fn get_unmapped_area(
    mm: &impl VmaView,
    file: Option<&MapFile>,
    addr: u64,
    len: u64,
    pgoff: u64,
    flags: u64,
    vm_flags: VmFlags,
) -> Result<u64, Errno> {
    let cfg = &mm.state().cfg;
    if len > cfg.task_size {
        return Err(Errno::ENOMEM);
    }
    let area = file.map(MapFile::area);
    let addr = match file {
        // hugetlbfs: hugetlb_get_unmapped_area.
        Some(f) if f.hugetlb => {
            let huge = f.huge_size;
            if len & (huge - 1) != 0 || (flags & MAP_FIXED != 0 && addr & (huge - 1) != 0) {
                return Err(Errno::EINVAL);
            }
            let addr0 = if addr != 0 {
                (addr.wrapping_add(huge - 1)) & !(huge - 1)
            } else {
                0
            };
            mm_get_unmapped_area(mm, area, addr0, len, pgoff, flags, VmFlags::NONE)?
        }
        // get_unmapped_area_zero: a shared /dev/zero mapping is a new
        // shmem object's.
        Some(f) if f.kind == InodeKind::DevZero && flags & MAP_SHARED != 0 => {
            shmem_get_unmapped_area(mm, None, None, addr, len, pgoff, flags)?
        }
        // ext4-like files: f_op->get_unmapped_area = thp_get_unmapped_area.
        Some(f) if f.thp_unmapped_area => thp_get_unmapped_area(mm, area, addr, len, pgoff, flags, vm_flags)?,
        // shmem: memfd, tmpfs files, System V segments, shared anonymous
        // objects (mremap).
        Some(f) if f.shmem.is_some() => shmem_get_unmapped_area(mm, area, f.shmem, addr, len, pgoff, flags)?,
        // hugetlbfs, ramfs and others.
        Some(_) => mm_get_unmapped_area(mm, area, addr, len, pgoff, flags, vm_flags)?,
        // Shared anonymous memory: shmem_get_unmapped_area.
        None if flags & MAP_SHARED != 0 => shmem_get_unmapped_area(mm, None, None, addr, len, 0, flags)?,
        None if cfg.thp && addr == 0 && len.is_multiple_of(PMD_SIZE) => {
            thp_get_unmapped_area(mm, None, addr, len, 0, flags, vm_flags)?
        }
        None => mm_get_unmapped_area(mm, None, addr, len, 0, flags, vm_flags)?,
    };
    // IS_ERR_VALUE: a fixed address in the top 4095 bytes comes back from
    // the arch function as it was, and reads as an error number (-1 is
    // EPERM).
    if addr > u64::MAX - MAX_ERRNO {
        return Err(Errno(addr.wrapping_neg() as i32));
    }
    if addr > cfg.task_size - len {
        return Err(Errno::ENOMEM);
    }
    if offset_in_page(addr) != 0 {
        return Err(Errno::EINVAL);
    }
    // security_mmap_addr → cap_mmap_addr.
    if addr < cfg.mmap_min_addr && !cfg.cap_sys_rawio {
        return Err(Errno::EPERM);
    }
    Ok(addr)
}

/// The result of [`do_mmap`]: the address, and how much to populate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapped {
    /// Start of the new mapping.
    pub addr: u64,
    /// Bytes to prefault after the lock is dropped (`MAP_POPULATE`, `MAP_LOCKED`).
    pub populate: u64,
}

/// `do_mmap` (`mm/mmap.c`), under the write lock.
pub fn do_mmap<P: BarrierPolicy>(
    mm: &mut MmWrite<'_, P>,
    file: Option<&MapFile>,
    mut addr: u64,
    len: u64,
    mut prot: u64,
    mut flags: u64,
    mut pgoff: u64,
) -> Result<Mapped, Errno> {
    if len == 0 {
        return Err(Errno::EINVAL);
    }
    if prot & PROT_READ != 0 && mm.st().cfg.read_implies_exec && !file.is_some_and(|f| f.noexec) {
        prot |= PROT_EXEC;
    }
    if flags & MAP_FIXED_NOREPLACE != 0 {
        flags |= MAP_FIXED;
    }
    if flags & MAP_FIXED == 0 {
        addr = round_hint_to_min(mm, addr);
    }
    let len = page_align(len);
    if len == 0 {
        return Err(Errno::ENOMEM);
    }
    if pgoff.wrapping_add(len >> PAGE_SHIFT) < pgoff {
        return Err(Errno::EOVERFLOW);
    }
    if mm.st().map_count > mm.st().cfg.max_map_count {
        return Err(Errno::ENOMEM);
    }
    let mut vm_flags = calc_vm_prot_bits(prot)
        | calc_vm_flag_bits(flags)
        | mm.st().def_flags
        | VmFlags::MAYREAD
        | VmFlags::MAYWRITE
        | VmFlags::MAYEXEC;
    // The execute-only key is taken before the placement: a mapping that
    // fails after this keeps it allocated, as in the kernel.
    if prot == PROT_EXEC {
        vm_flags |= crate::pkeys::execute_only_flags(mm);
    }
    addr = get_unmapped_area(mm, file, addr, len, pgoff, flags, vm_flags)?;
    if flags & MAP_FIXED_NOREPLACE != 0 && mm.find_vma_intersection(addr, addr + len).is_some() {
        return Err(Errno::EEXIST);
    }
    if flags & MAP_LOCKED != 0 && !can_do_mlock(mm.st()) {
        return Err(Errno::EPERM);
    }
    if !mlock_future_ok(mm.st(), vm_flags, len) {
        return Err(Errno::EAGAIN);
    }
    let src = match file {
        Some(f) => {
            // file_mmap_ok: regular files end at MAX_LFS_FILESIZE.
            let maxsize = i64::MAX as u64 - len;
            if pgoff > maxsize >> PAGE_SHIFT {
                return Err(Errno::EOVERFLOW);
            }
            match flags & MAP_TYPE {
                t @ (MAP_SHARED | MAP_SHARED_VALIDATE) => {
                    if t == MAP_SHARED {
                        flags &= LEGACY_MAP_MASK;
                    }
                    let mask = if f.fop_mmap_sync {
                        LEGACY_MAP_MASK | MAP_SYNC
                    } else {
                        LEGACY_MAP_MASK
                    };
                    if flags & !mask != 0 {
                        return Err(Errno::EOPNOTSUPP);
                    }
                    if prot & PROT_WRITE != 0 && !f.writable {
                        return Err(Errno::EACCES);
                    }
                    if f.append_only && f.writable {
                        return Err(Errno::EACCES);
                    }
                    vm_flags |= VmFlags::SHARED | VmFlags::MAYSHARE;
                    if !f.writable {
                        vm_flags = VmFlags(vm_flags.0 & !(VmFlags::MAYWRITE.0 | VmFlags::SHARED.0));
                    }
                    file_private_checks(f, &mut vm_flags)?;
                }
                MAP_PRIVATE => file_private_checks(f, &mut vm_flags)?,
                _ => return Err(Errno::EINVAL),
            }
            MapSource::File(f.id)
        }
        None => match flags & MAP_TYPE {
            MAP_SHARED => {
                if vm_flags.contains(VmFlags::GROWSDOWN) {
                    return Err(Errno::EINVAL);
                }
                pgoff = 0;
                vm_flags |= VmFlags::SHARED | VmFlags::MAYSHARE;
                MapSource::SharedAnon
            }
            t @ (MAP_DROPPABLE | MAP_PRIVATE) => {
                if t == MAP_DROPPABLE {
                    if flags & (MAP_LOCKED | MAP_HUGETLB) != 0 || vm_flags.contains(VmFlags::GROWSDOWN) {
                        return Err(Errno::EINVAL);
                    }
                    vm_flags |= VmFlags::DROPPABLE | VmFlags::NORESERVE | VmFlags::WIPEONFORK | VmFlags::DONTDUMP;
                }
                pgoff = addr >> PAGE_SHIFT;
                MapSource::Anon
            }
            _ => return Err(Errno::EINVAL),
        },
    };
    if flags & MAP_NORESERVE != 0 {
        if mm.st().cfg.overcommit != mm_core::mm::Overcommit::Never {
            vm_flags |= VmFlags::NORESERVE;
        }
        if file.is_some_and(|f| f.hugetlb) {
            vm_flags |= VmFlags::NORESERVE;
        }
    }
    let addr = mmap_region(mm, src, addr, len, vm_flags, pgoff)?;
    let populate = if vm_flags.contains(VmFlags::LOCKED) || flags & (MAP_POPULATE | MAP_NONBLOCK) == MAP_POPULATE {
        len
    } else {
        0
    };
    Ok(Mapped { addr, populate })
}

/// The `MAP_PRIVATE` part of `do_mmap`'s file checks (also reached by
/// `MAP_SHARED`).
fn file_private_checks(f: &MapFile, vm_flags: &mut VmFlags) -> Result<(), Errno> {
    if !f.readable {
        return Err(Errno::EACCES);
    }
    if f.noexec {
        if vm_flags.contains(VmFlags::EXEC) {
            return Err(Errno::EPERM);
        }
        *vm_flags = VmFlags(vm_flags.0 & !VmFlags::MAYEXEC.0);
    }
    if f.kind == InodeKind::NoMmap {
        // !file_has_valid_mmap_hooks(file).
        return Err(Errno::ENODEV);
    }
    if vm_flags.contains(VmFlags::GROWSDOWN) {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

/// `vm_mmap_pgoff` (`mm/util.c`): takes the lock, maps, unlocks, then
/// populates under the read lock.
pub fn vm_mmap_pgoff<P: BarrierPolicy>(
    mm: &MmStruct<P>,
    file: Option<&MapFile>,
    addr: u64,
    len: u64,
    prot: u64,
    flags: u64,
    pgoff: u64,
) -> Result<u64, Errno> {
    let m = {
        let mut w = mm.write();
        do_mmap(&mut w, file, addr, len, prot, flags, pgoff)?
    };
    if m.populate != 0 {
        mm_populate(mm, m.addr, m.populate);
    }
    Ok(m.addr)
}

/// `__vm_munmap` (`mm/vma.c`): `munmap(2)`.
pub fn vm_munmap<P: BarrierPolicy>(mm: &MmStruct<P>, start: u64, len: u64) -> Result<(), Errno> {
    let mut w = mm.write();
    do_vmi_munmap(&mut w, start, len)?;
    // do_vmi_munmap(unlock=true) finishes under the downgraded lock.
    drop(w.downgrade());
    Ok(())
}

/// `SYSCALL_DEFINE1(brk)` (`mm/mmap.c`): returns the new break, or the old
/// one on any failure.
pub fn sys_brk<P: BarrierPolicy>(mm: &MmStruct<P>, brk: u64) -> u64 {
    let mut w = mm.write();
    let st = w.st();
    let origbrk = st.brk;
    // CONFIG_COMPAT_BRK is off: the minimum is start_brk.
    let min_brk = st.start_brk;
    if brk < min_brk {
        return origbrk;
    }
    // check_data_rlimit.
    if st.cfg.rlimit_data != u64::MAX
        && brk.wrapping_sub(st.start_brk).wrapping_add(st.end_data - st.start_data) > st.cfg.rlimit_data
    {
        return origbrk;
    }
    let newbrk = page_align(brk);
    let oldbrk = page_align(st.brk);
    if oldbrk == newbrk {
        st.brk = brk;
        return brk;
    }
    if brk <= st.brk {
        // Always allow shrinking brk, if a VMA is there to shrink.
        let Some(brkvma) = w.find_vma_intersection(newbrk, oldbrk) else {
            return origbrk;
        };
        w.st().brk = brk;
        if do_vmi_align_munmap(&mut w, brkvma, newbrk, oldbrk).is_err() {
            w.st().brk = origbrk;
            return origbrk;
        }
        drop(w.downgrade());
        return brk;
    }
    // check_brk_limits: get_unmapped_area(MAP_FIXED) and the mlock limit.
    // (Wraps like the kernel's arithmetic when the request aligns to 0; the
    // length check below then refuses it.)
    let len = newbrk.wrapping_sub(oldbrk);
    let task_size = w.st().cfg.task_size;
    if len > task_size || oldbrk > task_size - len {
        return origbrk;
    }
    if oldbrk < w.st().cfg.mmap_min_addr && !w.st().cfg.cap_sys_rawio {
        return origbrk;
    }
    let def_flags = w.st().def_flags;
    if !mlock_future_ok(w.st(), def_flags, len) {
        return origbrk;
    }
    // The next VMA must stay a page (and a stack guard gap) away.
    let gap = w.st().cfg.stack_guard_gap;
    let limit = newbrk.wrapping_add(PAGE_SIZE).wrapping_add(gap);
    // (`find_vma_intersection`; `oldbrk` is usually in a gap, which
    // `find_vma` handles without its inline attempt at a VMA there.)
    if let Some(next) = w.find_vma(oldbrk).filter(|&v| w.vma_ref(v).start < limit) {
        let n = *w.vma_ref(next);
        if newbrk + PAGE_SIZE > vm_start_gap(w.st(), n.start, n.flags) {
            return origbrk;
        }
    }
    // vma_prev_limit(start_brk): the VMA below oldbrk, if it reaches above start_brk.
    let start_brk = w.st().start_brk;
    let brkvma = w.vma_before(oldbrk).filter(|&v| w.vma_ref(v).end > start_brk);
    if do_brk_flags(&mut w, brkvma, oldbrk, len).is_err() {
        return origbrk;
    }
    w.st().brk = brk;
    // mlockall(MCL_FUTURE): the new heap is prefaulted once unlocked.
    let populate = w.st().def_flags.contains(VmFlags::LOCKED);
    drop(w);
    if populate {
        mm_populate(mm, oldbrk, len);
    }
    brk
}

/// `do_brk_flags` (`mm/vma.c`): grows the heap by `[addr, addr + len)`, expanding
/// `brkvma` when it ends at `addr` and is compatible.
pub fn do_brk_flags<P: BarrierPolicy>(
    mm: &mut MmWrite<'_, P>,
    brkvma: Option<VmaId>,
    addr: u64,
    len: u64,
) -> Result<(), Errno> {
    let flags = VmFlags::DATA_DEFAULT | VmFlags::ACCOUNT | mm.st().def_flags;
    let npages = len >> PAGE_SHIFT;
    if !may_expand_vm(mm.st(), flags, npages) {
        return Err(Errno::ENOMEM);
    }
    if mm.st().map_count > mm.st().cfg.max_map_count {
        return Err(Errno::ENOMEM);
    }
    if !vm_enough_memory(mm.st(), npages) {
        return Err(Errno::ENOMEM);
    }
    let mut done = false;
    if let Some(b) = brkvma
        && mm.vma_ref(b).end == addr
    {
        let mut vmg = Vmg {
            prev: Some(b),
            start: addr,
            end: addr + len,
            pgoff: addr >> PAGE_SHIFT,
            flags,
            just_expand: true,
            ..Vmg::default()
        };
        done = vma_merge_new_range(mm, &mut vmg).is_some();
        if vmg.nomem {
            // unacct_fail.
            vm_unacct_memory(mm.st(), npages);
            return Err(Errno::ENOMEM);
        }
    }
    if !done {
        let v = Vma {
            start: addr,
            end: addr + len,
            pgoff: addr >> PAGE_SHIFT,
            flags,
            file: None,
            anon_vma: None,
            special: None,
        };
        if crate::vma::new_vma_allocs_fail(mm, false) || mm.vma_link(v).is_err() {
            vm_unacct_memory(mm.st(), npages);
            return Err(Errno::ENOMEM);
        }
        mm.st().map_count += 1;
    }
    let st = mm.st();
    st.total_vm += npages;
    st.data_vm += npages;
    if flags.contains(VmFlags::LOCKED) {
        st.locked_vm += npages;
    }
    Ok(())
}
