//! `mprotect(2)` (`mm/mprotect.c`): `do_mprotect_pkey` and
//! `mprotect_fixup`, with their accounting and partial application.

use mm_core::{BarrierPolicy, MmStruct, MmWrite, VmFlags, VmaId, VmaView};

use crate::memory::mm_populate_locked;
use crate::pkeys::{arch_override_mprotect_pkey, mm_pkey_is_allocated, pkey_flags};
use crate::uapi::*;
use crate::util::*;
use crate::vma::{Vmg, vma_modify};
use crate::vma_edge::vma_modify_flags_edge;

/// `VM_FLAGS_CLEAR`: bits every mprotect recomputes (the access bits and the
/// protection key).
const MASK_OFF: u64 = VmFlags::ACCESS_FLAGS.0 | VmFlags::PKEY_MASK.0;

/// `vma_is_anonymous(vma) && !vma->anon_vma` (a private `/dev/zero`
/// mapping is anonymous: the file table tells). Out of line: only an
/// accounted VMA losing write permission asks.
#[cold]
#[inline(never)]
fn anon_without_anon_vma<P: BarrierPolicy>(w: &MmWrite<'_, P>, id: VmaId) -> bool {
    let v = w.vma_ref(id);
    (v.is_anonymous() || (v.file.is_some() && vma_is_anonymous(&w.files(), v))) && w.vma_anon_vma(id).is_none()
}

/// `newflags` with the key `arch_override_mprotect_pkey` gives (machines
/// with protection keys only: out of line, off the common path).
#[cold]
#[inline(never)]
fn with_pkey<P: BarrierPolicy>(
    w: &mut MmWrite<'_, P>,
    newflags: VmFlags,
    oldflags: VmFlags,
    prot: u64,
    pkey: i32,
) -> VmFlags {
    newflags | pkey_flags(arch_override_mprotect_pkey(w, oldflags, prot, pkey))
}

/// `mprotect_fixup`: applies `newflags` to `[start, end)` of VMA `id`
/// (splitting or merging), updating `prev` to the resulting VMA.
pub fn mprotect_fixup<P: BarrierPolicy>(
    w: &mut MmWrite<'_, P>,
    id: VmaId,
    prev: &mut Option<VmaId>,
    start: u64,
    end: u64,
    mut newflags: VmFlags,
) -> Result<VmaId, Errno> {
    let oldflags = w.vma_ref(id).flags;
    if oldflags.contains(VmFlags::SEALED) {
        return Err(Errno::EPERM);
    }
    if newflags == oldflags {
        *prev = Some(id);
        return Ok(id);
    }
    let nrpages = (end - start) >> PAGE_SHIFT;
    let mut charged = 0;
    if newflags.contains(VmFlags::WRITE) {
        if !may_expand_vm(w.st(), newflags, nrpages) && may_expand_vm(w.st(), oldflags, nrpages) {
            return Err(Errno::ENOMEM);
        }
        let no_charge = VmFlags::ACCOUNT | VmFlags::WRITE | VmFlags::HUGETLB | VmFlags::SHARED | VmFlags::NORESERVE;
        if !oldflags.intersects(no_charge) {
            charged = nrpages;
            if !vm_enough_memory(w.st(), charged) {
                return Err(Errno::ENOMEM);
            }
            newflags |= VmFlags::ACCOUNT;
        }
    } else if oldflags.contains(VmFlags::ACCOUNT) && anon_without_anon_vma(w, id) {
        newflags = VmFlags(newflags.0 & !VmFlags::ACCOUNT.0);
    }
    let modified = match vma_modify_flags_edge(w, id, *prev, start, end, newflags) {
        Some(r) => r,
        None => {
            let mut vmg = Vmg::for_vma(&w.vma(id), id, *prev, start, end);
            vmg.flags = newflags;
            vma_modify(w, &mut vmg)
        }
    };
    let res = match modified {
        Ok(r) => r,
        Err(e) => {
            vm_unacct_memory(w.st(), charged);
            return Err(e);
        }
    };
    *prev = Some(res);
    // A merge may have brought sticky flags from a neighbour.
    newflags |= w.vma_ref(res).flags & VmFlags::STICKY;
    w.vma_set_flags(res, newflags);
    if oldflags.contains(VmFlags::ACCOUNT) && !newflags.contains(VmFlags::ACCOUNT) {
        vm_unacct_memory(w.st(), nrpages);
    }
    // A private VM_LOCKED VMA becoming writable is COW-populated.
    let cow = VmFlags::WRITE.0 | VmFlags::SHARED.0 | VmFlags::LOCKED.0;
    if oldflags.0 & cow == VmFlags::LOCKED.0 && newflags.contains(VmFlags::WRITE) {
        mm_populate_locked(w, res, start, end);
    }
    vm_stat_account(w.st(), oldflags, -(nrpages as i64));
    vm_stat_account(w.st(), newflags, nrpages as i64);
    Ok(res)
}

/// `do_mprotect_pkey` with `pkey = -1`: `mprotect(2)`. Changes made to
/// VMAs before an error stay made, as in the kernel.
#[inline]
pub fn do_mprotect<P: BarrierPolicy>(mm: &MmStruct<P>, start: u64, len: u64, prot: u64) -> Result<(), Errno> {
    do_mprotect_pkey(mm, start, len, prot, -1)
}

/// `do_mprotect_pkey` (`mm/mprotect.c`): `mprotect(2)` with `pkey` -1,
/// `pkey_mprotect(2)` with a key, which must be allocated
/// ([`mm_pkey_is_allocated`]: else `EINVAL`, checked under the lock after
/// the argument checks and before the range).
#[inline(always)]
pub fn do_mprotect_pkey<P: BarrierPolicy>(
    mm: &MmStruct<P>,
    start: u64,
    len: u64,
    prot: u64,
    pkey: i32,
) -> Result<(), Errno> {
    let grows = prot & (PROT_GROWSDOWN | PROT_GROWSUP);
    let prot = prot & !(PROT_GROWSDOWN | PROT_GROWSUP);
    if grows == PROT_GROWSDOWN | PROT_GROWSUP {
        return Err(Errno::EINVAL);
    }
    if start & !PAGE_MASK != 0 {
        return Err(Errno::EINVAL);
    }
    if len == 0 {
        return Ok(());
    }
    let len = page_align(len);
    let end = start.wrapping_add(len);
    if end <= start {
        return Err(Errno::ENOMEM);
    }
    // arch_validate_prot.
    if prot & !(PROT_READ | PROT_WRITE | PROT_EXEC | PROT_SEM) != 0 {
        return Err(Errno::EINVAL);
    }
    let mut w = mm.write();
    if pkey != -1 && !mm_pkey_is_allocated(w.st(), pkey) {
        return Err(Errno::EINVAL);
    }
    mprotect_pkey_locked(&mut w, start, end, prot, grows, pkey)
}

/// The part of `do_mprotect_pkey` that runs under the write lock, on an
/// aligned, checked range; `grows` holds `PROT_GROWSDOWN`/`PROT_GROWSUP`.
#[inline]
pub fn mprotect_locked<P: BarrierPolicy>(
    w: &mut MmWrite<'_, P>,
    start: u64,
    end: u64,
    prot: u64,
    grows: u64,
) -> Result<(), Errno> {
    mprotect_pkey_locked(w, start, end, prot, grows, -1)
}

/// [`mprotect_locked`] with `pkey_mprotect`'s key (-1: none), already
/// checked to be allocated.
pub fn mprotect_pkey_locked<P: BarrierPolicy>(
    w: &mut MmWrite<'_, P>,
    start: u64,
    end: u64,
    prot: u64,
    grows: u64,
    pkey: i32,
) -> Result<(), Errno> {
    let reqprot = prot;
    let Some(mut id) = w.find_vma_intersection(start, end) else {
        return Err(Errno::ENOMEM);
    };
    let mut start = start;
    let first = *w.vma_ref(id);
    if grows & PROT_GROWSDOWN != 0 {
        if first.start >= end {
            return Err(Errno::ENOMEM);
        }
        start = first.start;
        if !first.flags.contains(VmFlags::GROWSDOWN) {
            return Err(Errno::EINVAL);
        }
    } else {
        if first.start > start {
            return Err(Errno::ENOMEM);
        }
        if grows & PROT_GROWSUP != 0 {
            // The range would extend to the VMA's end, but x86 has no
            // VM_GROWSUP, so the flag check always fails.
            return Err(Errno::EINVAL);
        }
    }
    let rier = w.st().cfg.read_implies_exec && prot & PROT_READ != 0;
    let pkeys = w.st().cfg.pkeys;
    let mut prev = if start > first.start { Some(id) } else { w.vma_prev(id) };
    let mut nstart = start;
    let mut tmp = first.start;
    let mut prot = reqprot;
    loop {
        let v = w.vma_ref(id);
        if v.start != tmp {
            return Err(Errno::ENOMEM);
        }
        if rier && v.flags.contains(VmFlags::MAYEXEC) {
            prot |= PROT_EXEC;
        }
        let (oldflags, vend) = (v.flags, v.end);
        let mut newflags = VmFlags(calc_vm_prot_bits(prot).0 | (oldflags.0 & !MASK_OFF));
        if pkeys {
            newflags = with_pkey(w, newflags, oldflags, prot, pkey);
        }
        // newflags >> 4 shifts the VM_MAY* bits onto the VM_* bits.
        if (newflags.0 & !(newflags.0 >> 4)) & VmFlags::ACCESS_FLAGS.0 != 0 {
            return Err(Errno::EACCES);
        }
        tmp = vend.min(end);
        let res = mprotect_fixup(w, id, &mut prev, nstart, tmp, newflags)?;
        tmp = w.vma_ref(res).end;
        nstart = tmp;
        prot = reqprot;
        // The next VMA starts at or above `tmp`: none is left to change
        // once `tmp` reaches `end`.
        if tmp >= end {
            break;
        }
        match w.vma_next(res) {
            Some(n) if w.vma_ref(n).start < end => id = n,
            _ => break,
        }
    }
    if tmp < end {
        return Err(Errno::ENOMEM);
    }
    Ok(())
}
