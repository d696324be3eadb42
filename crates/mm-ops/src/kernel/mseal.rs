//! `mseal(2)` (`mm/mseal.c`, Linux 6.18): sets `VM_SEALED` on every VMA
//! of a range without holes, splitting or merging through
//! `vma_modify_flags`. What a seal then refuses is checked where each
//! call makes its changes: `munmap` and `MAP_FIXED` over a sealed VMA
//! (`vms_gather_munmap_vmas`, [`crate::vma_region`]), `mprotect`
//! (`mprotect_fixup`), `mremap` of or onto a sealed VMA, and the
//! discarding `madvise` advice on read-only anonymous memory
//! (`can_madvise_modify`), each with `EPERM`.

use mm_core::{BarrierPolicy, MmStruct, MmWrite, VmFlags, VmaView};

use crate::uapi::*;
use crate::util::page_align;
use crate::vma::{Vmg, vma_modify};
use crate::vma_edge::vma_modify_flags_edge;

/// `do_mseal` (`mm/mseal.c`): `mseal(start, len, flags)`.
///
/// 1. `flags` must be 0 and `start` page aligned (`EINVAL`); `len` is
///    rounded up to whole pages, and a length that rounds up to 0 or a
///    range that wraps is `EINVAL`; an empty range succeeds.
/// 2. Under the write lock, a range with any hole in it (before the first
///    VMA, between two, or after the last) is `ENOMEM`, with nothing
///    changed.
/// 3. Otherwise each VMA of the range not yet sealed is sealed from the
///    range's part of it ([`mseal_apply`]). A split that fails (`ENOMEM`
///    at `vm.max_map_count`) ends the call with the VMAs before it sealed.
///
/// Sealing twice is not an error, and nothing unseals.
pub fn do_mseal<P: BarrierPolicy>(mm: &MmStruct<P>, start: u64, len_in: u64, flags: u64) -> Result<(), Errno> {
    if flags != 0 || start & !PAGE_MASK != 0 {
        return Err(Errno::EINVAL);
    }
    let len = page_align(len_in);
    if len_in != 0 && len == 0 {
        return Err(Errno::EINVAL);
    }
    let end = start.wrapping_add(len);
    if end < start {
        return Err(Errno::EINVAL);
    }
    if end == start {
        return Ok(());
    }
    let mut w = mm.write();
    if range_contains_unmapped(&w, start, end) {
        return Err(Errno::ENOMEM);
    }
    mseal_apply(&mut w, start, end)
}

/// `range_contains_unmapped` (`mm/mseal.c`): whether some address of
/// `[start, end)` lies in no VMA.
pub fn range_contains_unmapped<P: BarrierPolicy>(w: &MmWrite<'_, P>, start: u64, end: u64) -> bool {
    let mut covered = start;
    let mut cur = w.find_vma_intersection(start, end);
    while let Some(id) = cur {
        let v = w.vma_ref(id);
        if v.start > covered {
            return true;
        }
        covered = v.end;
        cur = w.vma_next(id).filter(|&n| w.vma_ref(n).start < end);
    }
    covered < end
}

/// `mseal_apply` (`mm/mseal.c`): seals `[start, end)`, which holes do not
/// interrupt. `prev` starts as the VMA before the range (or the first VMA
/// itself when the range starts inside it), as `vma_modify_flags` wants,
/// and follows the VMA each step leaves covering its part.
pub fn mseal_apply<P: BarrierPolicy>(w: &mut MmWrite<'_, P>, start: u64, end: u64) -> Result<(), Errno> {
    let Some(first) = w.vma_lookup(start) else {
        return Ok(());
    };
    let mut prev = if start > w.vma_ref(first).start {
        Some(first)
    } else {
        w.vma_prev(first)
    };
    let mut cur = Some(first);
    while let Some(id) = cur {
        let v = *w.vma_ref(id);
        let mut res = id;
        if !v.flags.contains(VmFlags::SEALED) {
            let (cs, ce) = (v.start.max(start), v.end.min(end));
            let newflags = v.flags | VmFlags::SEALED;
            res = match vma_modify_flags_edge(w, id, prev, cs, ce, newflags) {
                Some(r) => r,
                None => {
                    let mut vmg = Vmg::for_vma(&w.vma(id), id, prev, cs, ce);
                    vmg.flags = newflags;
                    vma_modify(w, &mut vmg)
                }
            }?;
            // A merge keeps the flags of the VMA it extends.
            let f = w.vma_ref(res).flags | VmFlags::SEALED;
            w.vma_set_flags(res, f);
        }
        prev = Some(res);
        cur = w.vma_next(res).filter(|&n| w.vma_ref(n).start < end);
    }
    Ok(())
}
