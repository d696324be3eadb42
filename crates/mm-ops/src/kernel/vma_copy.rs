//! The parts of `mm/vma.c` that `mremap` uses: `vma_merge_extend` (grow a
//! VMA in place, merging with the next) and `copy_vma` (set up the
//! destination of a move). Re-exported from [`crate::vma`].

use mm_core::{BarrierPolicy, MmWrite, Vma, VmaId, VmaView};

use crate::uapi::PAGE_SHIFT;
use crate::vma::{Vmg, new_vma_allocs_fail, vma_merge_new_range};

/// `vma_merge_extend` (`mm/vma.c`): grows `id` in place by `delta` bytes
/// (mremap), merging with the next VMA when the new end reaches it and it
/// is compatible. Returns the resulting VMA, or `None` if no merge was
/// possible (`VM_SPECIAL`).
pub fn vma_merge_extend<P: BarrierPolicy>(mm: &mut MmWrite<'_, P>, id: VmaId, delta: u64) -> Option<VmaId> {
    let v = mm.vma(id);
    let next = mm.vma_next(id);
    let mut vmg = Vmg {
        prev: Some(id),
        next,
        start: v.end,
        end: v.end + delta,
        pgoff: v.pgoff + v.pages(),
        flags: v.flags,
        file: v.file,
        anon_vma: v.anon_vma,
        ..Vmg::default()
    };
    vma_merge_new_range(mm, &mut vmg)
}

/// The result of [`copy_vma`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Copied {
    /// The VMA now covering the destination.
    pub new: VmaId,
    /// The source VMA (it changes when the source merged into the copy).
    pub src: VmaId,
}

/// `copy_vma` (`mm/vma.c`): sets up `[addr, addr + len)` as a copy of VMA
/// `id` at file offset `pgoff` (mremap's move), merging with the
/// neighbours of the destination when possible. An anonymous VMA that was
/// never faulted takes the offset of its new address, so that it can merge
/// there. `None` when the VMA cannot be allocated.
pub fn copy_vma<P: BarrierPolicy>(
    mm: &mut MmWrite<'_, P>,
    id: VmaId,
    addr: u64,
    len: u64,
    mut pgoff: u64,
) -> Option<Copied> {
    let v = mm.vma(id);
    if v.anon_vma.is_none() && crate::util::vma_is_anonymous(&mm.files(), &v) {
        pgoff = addr >> PAGE_SHIFT;
    }
    let end = addr + len;
    if mm.find_vma_intersection(addr, end).is_some() {
        return None;
    }
    let prev = mm.vma_before(addr);
    let next = mm.find_vma(addr);
    let mut vmg = Vmg {
        prev,
        next,
        start: addr,
        end,
        pgoff,
        flags: v.flags,
        file: v.file,
        anon_vma: v.anon_vma,
        copied_from: Some(id),
        ..Vmg::default()
    };
    if let Some(new) = vma_merge_new_range(mm, &mut vmg) {
        let n = mm.vma(new);
        // The source itself may have been absorbed into the copy.
        let src = if n.start <= v.start && v.start < n.end { new } else { id };
        return Some(Copied { new, src });
    }
    let copy = Vma {
        start: addr,
        end,
        pgoff,
        ..v
    };
    if new_vma_allocs_fail(mm, v.anon_vma.is_some()) {
        return None;
    }
    let new = mm.vma_link(copy).ok()?;
    if let Some(f) = v.file {
        mm.files().get(f);
    }
    mm.st().map_count += 1;
    Some(Copied { new, src: id })
}
