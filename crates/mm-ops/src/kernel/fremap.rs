//! `remap_file_pages(2)` (`mm/mmap.c`; once `mm/fremap.c`): the deprecated
//! call, emulated since Linux 4.0 by a fixed shared mapping of the same
//! file at another offset over the range.

use mm_core::{BarrierPolicy, MmStruct, VmFlags, VmaView};

use crate::memory::mm_populate;
use crate::mmap::{MapFile, do_mmap};
use crate::uapi::*;

/// `SYSCALL_DEFINE5(remap_file_pages)`: `prot` must be 0; the range
/// (page-rounded down) must lie in one shared VMA, or in shared VMAs of
/// the same file, with the same flags and no holes, starting at `start`;
/// it is then mapped again at file page `pgoff` with the VMA's protection
/// (`MAP_SHARED | MAP_FIXED | MAP_POPULATE`, `MAP_LOCKED` for a locked
/// VMA; of `flags` only `MAP_NONBLOCK` counts). Everything else is
/// `EINVAL`, and errors of the mapping itself are returned.
pub fn sys_remap_file_pages<P: BarrierPolicy>(
    mm: &MmStruct<P>,
    start: u64,
    size: u64,
    prot: u64,
    pgoff: u64,
    flags: u64,
) -> Result<(), Errno> {
    if prot != 0 {
        return Err(Errno::EINVAL);
    }
    let start = start & PAGE_MASK;
    let size = size & PAGE_MASK;
    if start.wrapping_add(size) <= start {
        return Err(Errno::EINVAL);
    }
    if pgoff.checked_add(size >> PAGE_SHIFT).is_none() {
        return Err(Errno::EINVAL);
    }
    let end = start + size;
    // First, under the read lock: the VMA at `start` gives the protection
    // and flags, and a reference on its file (`get_file`), which outlives
    // the unmap that the mapping below makes of the file's last VMA.
    let (file, vm_flags, prot, mflags) = {
        let r = mm.read();
        let Some(id) = r.vma_lookup(start) else {
            return Err(Errno::EINVAL);
        };
        let v = r.vma_ref(id);
        let Some(file) = v.file.filter(|_| v.flags.contains(VmFlags::SHARED)) else {
            return Err(Errno::EINVAL);
        };
        let mut prot = 0;
        for (f, p) in [
            (VmFlags::READ, PROT_READ),
            (VmFlags::WRITE, PROT_WRITE),
            (VmFlags::EXEC, PROT_EXEC),
        ] {
            if v.flags.contains(f) {
                prot |= p;
            }
        }
        let mut mflags = (flags & MAP_NONBLOCK) | MAP_SHARED | MAP_FIXED | MAP_POPULATE;
        if v.flags.contains(VmFlags::LOCKED) {
            mflags |= MAP_LOCKED;
        }
        let vm_flags = v.flags;
        r.files().get(file);
        (file, vm_flags, prot, mflags)
    };
    // Then the write section (the lock is dropped for the security hook
    // in between): the VMA must still have those flags and that file, and
    // with the VMAs after it cover the range (contiguous, the same file
    // and flags).
    let mut w = mm.write();
    let r = (|| {
        let id = w.vma_lookup(start).ok_or(Errno::EINVAL)?;
        let v = *w.vma_ref(id);
        if v.flags != vm_flags || v.file != Some(file) {
            return Err(Errno::EINVAL);
        }
        let (mut prev_end, mut cur) = (v.end, w.vma_next(id));
        while prev_end < end {
            let n = cur.ok_or(Errno::EINVAL)?;
            let nv = *w.vma_ref(n);
            if nv.start != prev_end || nv.file != Some(file) || nv.flags != v.flags {
                return Err(Errno::EINVAL);
            }
            prev_end = nv.end;
            cur = w.vma_next(n);
        }
        let desc = MapFile::describe_locked(&w, file);
        do_mmap(&mut w, Some(&desc), start, size, prot, mflags, pgoff)
    })();
    // `fput`: the file may die here (its descriptors closed, its last
    // VMA replaced), giving its commit charge back.
    let acct = w.files().put(file);
    if acct > 0 {
        crate::util::vm_unacct_memory(w.st(), acct);
    }
    drop(w);
    let m = r?;
    if m.populate != 0 {
        mm_populate(mm, m.addr, m.populate);
    }
    Ok(())
}
