//! The x86-64 address-space layout policy (`arch/x86/kernel/sys_x86_64.c`):
//! `arch_get_unmapped_area`, `arch_get_unmapped_area_topdown`,
//! `find_start_end` and `mmap_address_hint_valid`.

use mm_core::{VmFlags, VmaView};

use crate::uapi::*;
use crate::util::vm_start_gap;
use crate::vma_region::{UnmappedAreaInfo, vm_unmapped_area};

/// What `get_unmapped_area` needs to know about the file being mapped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AreaFile {
    /// A hugetlbfs file: areas are aligned to `huge_size`.
    pub hugetlb: bool,
    /// Huge page size of a hugetlbfs file.
    pub huge_size: u64,
}

/// `DEFAULT_MAP_WINDOW` with 4-level page tables.
const DEFAULT_MAP_WINDOW: u64 = 0x7fff_ffff_f000;

/// `stack_guard_placement` (`mm/mmap.c`).
fn stack_guard_placement(vm_flags: VmFlags) -> u64 {
    if vm_flags.contains(VmFlags::SHADOW_STACK) {
        PAGE_SIZE
    } else {
        0
    }
}

/// `get_align_mask`: only hugetlbfs files are aligned (the AMD F15h
/// `align_va_addr` quirk is off).
fn get_align_mask(file: Option<AreaFile>) -> u64 {
    match file {
        Some(f) if f.hugetlb => PAGE_MASK & (f.huge_size - 1),
        _ => 0,
    }
}

/// `mmap_address_hint_valid` (`arch/x86/mm/hugetlbpage.c`).
fn mmap_address_hint_valid(task_size: u64, addr: u64, len: u64) -> bool {
    if task_size - len < addr {
        return false;
    }
    (addr > DEFAULT_MAP_WINDOW) == (addr + len > DEFAULT_MAP_WINDOW)
}

/// `find_start_end`: the bottom-up search window. Its end is
/// `task_size_64bit(addr > DEFAULT_MAP_WINDOW)`: with 5-level page tables
/// only a hint above the 47-bit window opens the space above it.
fn find_start_end(mm: &impl VmaView, addr: u64, flags: u64) -> (u64, u64) {
    let cfg = &mm.state().cfg;
    if flags & MAP_32BIT != 0 {
        // Without PF_RANDOMIZE the window is exactly 1 GiB .. 2 GiB.
        return (0x4000_0000, 0x8000_0000);
    }
    (cfg.mmap_legacy_base, window_end(cfg.task_size, addr))
}

/// `task_size_64bit(addr > DEFAULT_MAP_WINDOW)`: the whole `TASK_SIZE`
/// (2^56 − 4 KiB with 5-level page tables) for a hint above the 47-bit
/// window, the window otherwise (the same with 4-level page tables).
fn window_end(task_size: u64, addr: u64) -> u64 {
    if addr > DEFAULT_MAP_WINDOW {
        task_size
    } else {
        task_size.min(DEFAULT_MAP_WINDOW)
    }
}

/// `arch_get_unmapped_area`: bottom-up placement.
pub fn arch_get_unmapped_area(
    mm: &impl VmaView,
    file: Option<AreaFile>,
    addr: u64,
    len: u64,
    pgoff: u64,
    flags: u64,
    vm_flags: VmFlags,
) -> Result<u64, Errno> {
    if flags & MAP_FIXED != 0 {
        return Ok(addr);
    }
    let (begin, end) = find_start_end(mm, addr, flags);
    if len > end {
        return Err(Errno::ENOMEM);
    }
    if addr != 0 {
        let addr = crate::util::page_align(addr);
        let ok = end - len >= addr
            && match mm.find_vma(addr) {
                None => true,
                Some(v) => {
                    let v = mm.vma_ref(v);
                    addr + len <= vm_start_gap(mm.state(), v.start, v.flags)
                }
            };
        if ok {
            return Ok(addr);
        }
    }
    let hugetlb = file.is_some_and(|f| f.hugetlb);
    let mut info = UnmappedAreaInfo {
        length: len,
        low_limit: begin,
        high_limit: end,
        ..Default::default()
    };
    if !hugetlb {
        info.align_offset = pgoff << PAGE_SHIFT;
        info.start_gap = stack_guard_placement(vm_flags);
    }
    if file.is_some() {
        info.align_mask = get_align_mask(file);
    }
    vm_unmapped_area(mm, &info)
}

/// `arch_get_unmapped_area_topdown`: top-down placement below `mmap_base`,
/// falling back to bottom-up.
pub fn arch_get_unmapped_area_topdown(
    mm: &impl VmaView,
    file: Option<AreaFile>,
    addr0: u64,
    len: u64,
    pgoff: u64,
    flags: u64,
    vm_flags: VmFlags,
) -> Result<u64, Errno> {
    let cfg = &mm.state().cfg;
    if len > cfg.task_size {
        return Err(Errno::ENOMEM);
    }
    if flags & MAP_FIXED != 0 {
        return Ok(addr0);
    }
    if flags & MAP_32BIT == 0 {
        let mut addr = addr0;
        if addr != 0 {
            addr &= PAGE_MASK;
            if mmap_address_hint_valid(cfg.task_size, addr, len) {
                let ok = match mm.find_vma(addr) {
                    None => true,
                    Some(v) => {
                        let v = mm.vma_ref(v);
                        addr + len <= vm_start_gap(mm.state(), v.start, v.flags)
                    }
                };
                if ok {
                    return Ok(addr);
                }
            }
        }
        let mut info = UnmappedAreaInfo {
            topdown: true,
            length: len,
            low_limit: if flags & MAP_ABOVE4G != 0 { 1 << 32 } else { PAGE_SIZE },
            // A hint above the 47-bit window opens the space above it
            // (5-level page tables; nothing with 4-level ones).
            high_limit: cfg.mmap_base + (window_end(cfg.task_size, addr0) - window_end(cfg.task_size, 0)),
            start_gap: stack_guard_placement(vm_flags),
            align_offset: pgoff << PAGE_SHIFT,
            ..Default::default()
        };
        if file.is_some() {
            info.align_mask = get_align_mask(file);
        }
        if let Ok(a) = vm_unmapped_area(mm, &info) {
            return Ok(a);
        }
    }
    // A failed top-down search falls back to bottom-up.
    arch_get_unmapped_area(mm, file, addr0, len, pgoff, flags, VmFlags::NONE)
}
