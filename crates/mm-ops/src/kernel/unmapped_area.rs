//! The free-area searches of `mm/vma.c`: `unmapped_area` (bottom-up) and
//! `unmapped_area_topdown`, over the tree's gap maxima (`mas_empty_area`,
//! `mas_empty_area_rev`), behind `vm_unmapped_area` (`mm/mmap.c`).

use mm_core::{VmFlags, VmaId, VmaView};

use crate::uapi::Errno;
use crate::util::vm_start_gap;

/// `struct vm_unmapped_area_info`.
#[derive(Clone, Copy, Debug, Default)]
pub struct UnmappedAreaInfo {
    /// `VM_UNMAPPED_AREA_TOPDOWN`.
    pub topdown: bool,
    /// Length wanted.
    pub length: u64,
    /// Lowest start.
    pub low_limit: u64,
    /// Highest end.
    pub high_limit: u64,
    /// Alignment mask.
    pub align_mask: u64,
    /// Alignment offset.
    pub align_offset: u64,
    /// Gap to keep below the area (shadow stacks).
    pub start_gap: u64,
}

/// `vm_unmapped_area`.
pub fn vm_unmapped_area(mm: &impl VmaView, info: &UnmappedAreaInfo) -> Result<u64, Errno> {
    if info.topdown {
        unmapped_area_topdown(mm, info)
    } else {
        unmapped_area(mm, info)
    }
}

/// The first VMA starting at or above `addr`.
pub(crate) fn vma_at_or_after(mm: &impl VmaView, addr: u64) -> Option<VmaId> {
    mm.find_vma(addr).map(|v| {
        if mm.vma_ref(v).start >= addr {
            Some(v)
        } else {
            mm.vma_next(v)
        }
    })?
}

/// `unmapped_area`: the lowest fitting area.
pub fn unmapped_area(mm: &impl VmaView, info: &UnmappedAreaInfo) -> Result<u64, Errno> {
    let st = mm.state();
    let length = info
        .length
        .checked_add(info.align_mask)
        .and_then(|l| l.checked_add(info.start_gap))
        .ok_or(Errno::ENOMEM)?;
    let mut low = info.low_limit.max(st.cfg.effective_mmap_min_addr());
    let high = info.high_limit;
    loop {
        let (gap_start, _) = mm.area_lowest(low, high, length).ok_or(Errno::ENOMEM)?;
        let mut gap = gap_start + info.start_gap;
        gap = gap.wrapping_add(info.align_offset.wrapping_sub(gap) & info.align_mask);
        match vma_at_or_after(mm, gap_start) {
            Some(t) if mm.vma_ref(t).flags.intersects(VmFlags::STARTGAP_FLAGS) => {
                let tv = mm.vma_ref(t);
                if vm_start_gap(st, tv.start, tv.flags) < gap + length - 1 {
                    low = tv.end;
                    continue;
                }
            }
            _ => {
                // vm_end_gap() is vm_end on x86 (no VM_GROWSUP).
                if let Some(p) = mm.vma_before(gap_start)
                    && mm.vma_ref(p).end > gap
                {
                    low = mm.vma_ref(p).end;
                    continue;
                }
            }
        }
        return Ok(gap);
    }
}

/// `unmapped_area_topdown`: the highest fitting area.
pub fn unmapped_area_topdown(mm: &impl VmaView, info: &UnmappedAreaInfo) -> Result<u64, Errno> {
    let st = mm.state();
    let length = info
        .length
        .checked_add(info.align_mask)
        .and_then(|l| l.checked_add(info.start_gap))
        .ok_or(Errno::ENOMEM)?;
    let low = info.low_limit.max(st.cfg.effective_mmap_min_addr());
    let mut high = info.high_limit;
    loop {
        let (_, gap_end) = mm.area_highest(low, high, length).ok_or(Errno::ENOMEM)?;
        let mut gap = gap_end - info.length;
        gap = gap.wrapping_sub(gap.wrapping_sub(info.align_offset) & info.align_mask);
        match vma_at_or_after(mm, gap_end) {
            Some(t) if mm.vma_ref(t).flags.intersects(VmFlags::STARTGAP_FLAGS) => {
                let tv = mm.vma_ref(t);
                let sg = vm_start_gap(st, tv.start, tv.flags);
                if sg < gap_end {
                    high = sg;
                    continue;
                }
            }
            _ => {
                if let Some(p) = mm.vma_before(gap_end)
                    && mm.vma_ref(p).end > gap
                {
                    high = mm.vma_ref(p).start;
                    continue;
                }
            }
        }
        return Ok(gap);
    }
}
