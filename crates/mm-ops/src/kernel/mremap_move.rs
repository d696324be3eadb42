//! The move half of `mremap(2)` (`mm/mremap.c`): `move_vma` with
//! `prep_move_vma`, `copy_vma_and_data`, `unmap_source_vma` and
//! `dontunmap_complete`.

use mm_core::{BarrierPolicy, FaultView, MmWrite, VmFlags, VmaView};

use crate::mremap::{Vrm, vrm_calc_charge, vrm_stat_account, vrm_uncharge};
use crate::uapi::*;
use crate::vma::copy_vma;
use crate::vma_region::do_vmi_munmap;

/// `prep_move_vma`: room for the splits of the move, and
/// `vm_ops->may_split` at the ends of the moved range (special mappings
/// refuse any split, hugetlb refuses unaligned ones).
fn prep_move_vma<P: BarrierPolicy>(w: &MmWrite<'_, P>, vrm: &Vrm) -> Result<(), Errno> {
    let st = w.state();
    if st.map_count >= st.cfg.max_map_count.saturating_sub(3) {
        return Err(Errno::ENOMEM);
    }
    let v = w.vma(vrm.vma());
    let end = vrm.addr + vrm.old_len;
    let splits = |at: u64| -> Result<(), Errno> {
        if v.special.is_some() {
            return Err(Errno::EINVAL);
        }
        if v.flags.contains(VmFlags::HUGETLB) {
            let huge = v
                .file
                .map_or(PMD_SIZE, |f| w.files().file_inode(f).huge_size.max(PAGE_SIZE));
            if at & (huge - 1) != 0 {
                return Err(Errno::EINVAL);
            }
        }
        Ok(())
    };
    if v.start != vrm.addr {
        splits(vrm.addr)?;
    }
    if v.end != end {
        splits(end)?;
    }
    // ksm_madvise(MADV_UNMERGEABLE) on the range: no KSM pages here.
    Ok(())
}

/// `unmap_source_vma`: unmaps what was moved. An accounted VMA is unmapped
/// without giving back its charge (the copy took it over): `VM_ACCOUNT` is
/// cleared on the whole VMA first and set again on what remains of it. If
/// the unmap fails (a split beyond `max_map_count`, an allocation), the
/// charge is simply taken again and the call still succeeds, with the
/// source still mapped.
fn unmap_source_vma<P: BarrierPolicy>(w: &mut MmWrite<'_, P>, vrm: &mut Vrm) {
    let id = vrm.vma();
    let v = w.vma(id);
    let (addr, len) = (vrm.addr, vrm.old_len);
    let accountable = v.flags.contains(VmFlags::ACCOUNT) && vrm.flags & MREMAP_DONTUNMAP == 0;
    if accountable {
        w.vma_set_flags(id, v.flags & !VmFlags::ACCOUNT);
    }
    vrm.vma = None;
    if do_vmi_munmap(w, addr, len).is_err() {
        // The source stays mapped, without VM_ACCOUNT if it had it: its
        // whole charge (the copy owns what it took over; this adds as
        // much again) is never given back.
        let st = w.st();
        st.committed += len >> PAGE_SHIFT;
        st.committed_stranded += if accountable { v.pages() } else { len >> PAGE_SHIFT };
        return;
    }
    if accountable {
        let end = addr + len;
        if v.start < addr
            && let Some(prev) = w.vma_before(addr)
        {
            let f = w.vma(prev).flags;
            w.vma_set_flags(prev, f | VmFlags::ACCOUNT);
        }
        if v.end > end
            && let Some(next) = w.find_vma(addr)
        {
            let f = w.vma(next).flags;
            w.vma_set_flags(next, f | VmFlags::ACCOUNT);
        }
    }
}

/// `dontunmap_complete`: the source VMA stays, without its pages: it is no
/// longer locked, and loses its `anon_vma` when all of it moved.
fn dontunmap_complete<P: BarrierPolicy>(w: &mut MmWrite<'_, P>, vrm: &Vrm, new: mm_core::VmaId) {
    let id = vrm.vma();
    let v = w.vma(id);
    if v.flags.contains(VmFlags::LOCKED) {
        // The whole source VMA (not split: only the moved range's pages
        // went) is no longer locked, but its pages stay in locked_vm.
        w.st().locked_vm_stranded += v.pages();
    }
    w.vma_set_flags(id, v.flags & !VmFlags::LOCKED_MASK);
    if new != id && vrm.addr == v.start && vrm.addr + vrm.old_len == v.end {
        w.set_anon_vma(id, None);
    }
}

/// `move_vma`: copies the VMA (range) to `vrm.new_addr`, moves its page
/// tables (here: guard markers), then unmaps the source — or, for
/// `MREMAP_DONTUNMAP`, leaves it in place, empty.
pub(crate) fn move_vma<P: BarrierPolicy>(w: &mut MmWrite<'_, P>, vrm: &mut Vrm) -> Result<u64, Errno> {
    prep_move_vma(w, vrm)?;
    if !vrm_calc_charge(w, vrm) {
        return Err(Errno::ENOMEM);
    }
    // copy_vma_and_data.
    let v = w.vma(vrm.vma());
    let pgoff = v.pgoff + ((vrm.addr - v.start) >> PAGE_SHIFT);
    let Some(copied) = copy_vma(w, vrm.vma(), vrm.new_addr, vrm.new_len, pgoff) else {
        vrm_uncharge(w, vrm);
        return Err(Errno::ENOMEM);
    };
    vrm.vma = Some(copied.src);
    crate::guards::relocate(w.st(), vrm.addr, vrm.new_addr, vrm.old_len.min(vrm.new_len));
    vrm_stat_account(w, vrm, vrm.new_len);
    if vrm.flags & MREMAP_DONTUNMAP != 0 {
        dontunmap_complete(w, vrm, copied.new);
    } else {
        unmap_source_vma(w, vrm);
    }
    Ok(vrm.new_addr)
}
