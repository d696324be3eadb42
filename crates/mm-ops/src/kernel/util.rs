//! Accounting and flag helpers shared by the mutators: `mm/util.c`,
//! `mm/mmap.c` (`may_expand_vm`, `vm_stat_account`, `mlock_future_ok`) and
//! `include/linux/mman.h` (`calc_vm_prot_bits`, `calc_vm_flag_bits`).

use mm_core::mm::Overcommit;
use mm_core::{MmState, VmFlags};

use crate::uapi::*;

/// `PAGE_ALIGN`, wrapping like the kernel's (0 on overflow).
#[inline]
pub fn page_align(x: u64) -> u64 {
    x.wrapping_add(PAGE_SIZE - 1) & PAGE_MASK
}

/// `offset_in_page`.
#[inline]
pub fn offset_in_page(x: u64) -> u64 {
    x & !PAGE_MASK
}

/// `calc_vm_prot_bits` (no protection keys are in use).
pub fn calc_vm_prot_bits(prot: u64) -> VmFlags {
    let mut f = VmFlags::NONE;
    if prot & PROT_READ != 0 {
        f |= VmFlags::READ;
    }
    if prot & PROT_WRITE != 0 {
        f |= VmFlags::WRITE;
    }
    if prot & PROT_EXEC != 0 {
        f |= VmFlags::EXEC;
    }
    f
}

/// `calc_vm_flag_bits`: `MAP_GROWSDOWN`, `MAP_LOCKED`, `MAP_SYNC` and
/// `MAP_STACK` (→ `VM_NOHUGEPAGE`).
pub fn calc_vm_flag_bits(flags: u64) -> VmFlags {
    let mut f = VmFlags::NONE;
    if flags & MAP_GROWSDOWN != 0 {
        f |= VmFlags::GROWSDOWN;
    }
    if flags & MAP_LOCKED != 0 {
        f |= VmFlags::LOCKED;
    }
    if flags & MAP_SYNC != 0 {
        f |= VmFlags::SYNC;
    }
    if flags & MAP_STACK != 0 {
        f |= VmFlags::NOHUGEPAGE;
    }
    f
}

/// `vma_is_anonymous` (`include/linux/mm.h`): a VMA without `vm_ops`,
/// which is one without a file, or a private mapping of `/dev/zero`
/// (`mmap_zero` → `vma_set_anonymous` keeps the file; a shared one has a
/// shmem object instead) — never a special mapping.
pub fn vma_is_anonymous(files: &mm_core::file::FileTable, v: &mm_core::Vma) -> bool {
    v.special.is_none()
        && v.file
            .is_none_or(|f| files.file_inode(f).kind == mm_core::file::InodeKind::DevZero)
}

/// `vma_is_secretmem` (`include/linux/secretmem.h`): a `memfd_secret`
/// mapping, whose pages `gup` refuses (`check_vma_flags`) and whose lock
/// bits `mlock` leaves alone.
pub fn vma_is_secretmem(files: &mm_core::file::FileTable, v: &mm_core::Vma) -> bool {
    v.file
        .is_some_and(|f| files.file_inode(f).kind == mm_core::file::InodeKind::Secretmem)
}

/// `vm_stat_account` (`mm/mmap.c`): `total_vm` and the exec/stack/data split.
pub fn vm_stat_account(st: &mut MmState, flags: VmFlags, npages: i64) {
    let add = |c: &mut u64| *c = c.wrapping_add_signed(npages);
    add(&mut st.total_vm);
    if flags.is_exec_mapping() {
        add(&mut st.exec_vm);
    } else if flags.is_stack_mapping() {
        add(&mut st.stack_vm);
    } else if flags.is_data_mapping() {
        add(&mut st.data_vm);
    }
}

/// `may_expand_vm` (`mm/mmap.c`): `RLIMIT_AS` and `RLIMIT_DATA`.
pub fn may_expand_vm(st: &MmState, flags: VmFlags, npages: u64) -> bool {
    let cfg = &st.cfg;
    if st.total_vm + npages > cfg.rlimit_as >> PAGE_SHIFT {
        return false;
    }
    if flags.is_data_mapping() && st.data_vm + npages > cfg.rlimit_data >> PAGE_SHIFT {
        // The kernel's valgrind workaround for RLIMIT_DATA = 0 is not modeled.
        return false;
    }
    true
}

/// `security_vm_enough_memory_mm` → `__vm_enough_memory` (`mm/util.c`):
/// charges `pages` to the commit count if the overcommit policy allows it.
///
/// Under `OVERCOMMIT_NEVER` only this address space's own commitments are
/// counted (the kernel counts every process's).
pub fn vm_enough_memory(st: &mut MmState, pages: u64) -> bool {
    let cfg = &st.cfg;
    let ok = match cfg.overcommit {
        Overcommit::Always => true,
        Overcommit::Guess => pages <= cfg.totalram_pages + cfg.total_swap_pages,
        Overcommit::Never => st.committed + pages < vm_commit_limit(cfg),
    };
    if ok {
        st.committed += pages;
    }
    ok
}

/// `vm_commit_limit` (`mm/util.c`): `vm.overcommit_kbytes` if set, else
/// `vm.overcommit_ratio` percent of RAM outside the huge-page pool; plus
/// swap.
pub fn vm_commit_limit(cfg: &mm_core::MmConfig) -> u64 {
    let allowed = if cfg.overcommit_kbytes != 0 {
        cfg.overcommit_kbytes >> (PAGE_SHIFT - 10)
    } else {
        cfg.totalram_pages.saturating_sub(cfg.hugetlb_total_pages) * cfg.overcommit_ratio / 100
    };
    allowed + cfg.total_swap_pages
}

/// `vm_unacct_memory`.
pub fn vm_unacct_memory(st: &mut MmState, pages: u64) {
    st.committed -= pages;
}

/// `can_do_mlock` (`mm/mlock.c`).
pub fn can_do_mlock(st: &MmState) -> bool {
    st.cfg.rlimit_memlock != 0 || st.cfg.cap_ipc_lock
}

/// `mlock_future_ok` (`mm/mmap.c`).
pub fn mlock_future_ok(st: &MmState, flags: VmFlags, bytes: u64) -> bool {
    if !flags.contains(VmFlags::LOCKED) || st.cfg.cap_ipc_lock {
        return true;
    }
    (bytes >> PAGE_SHIFT) + st.locked_vm <= st.cfg.rlimit_memlock >> PAGE_SHIFT
}

/// `accountable_mapping` (`mm/vma.c`): private writable mappings without
/// `VM_NORESERVE` are charged.
pub fn accountable_mapping(flags: VmFlags) -> bool {
    flags.0 & (VmFlags::NORESERVE.0 | VmFlags::SHARED.0 | VmFlags::WRITE.0) == VmFlags::WRITE.0
}

/// `vm_start_gap` (`include/linux/mm.h`): a grows-down VMA keeps
/// `stack_guard_gap` free below it.
pub fn vm_start_gap(st: &MmState, start: u64, flags: VmFlags) -> u64 {
    let gap = if flags.contains(VmFlags::GROWSDOWN) {
        st.cfg.stack_guard_gap
    } else if flags.contains(VmFlags::SHADOW_STACK) {
        PAGE_SIZE
    } else {
        0
    };
    let s = start.wrapping_sub(gap);
    if s > start { 0 } else { s }
}
