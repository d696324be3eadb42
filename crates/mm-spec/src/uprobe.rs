//! Uprobe-style resolution of an address to (file identity, file offset):
//! the analogue of `find_active_uprobe_speculative` (Linux 6.13+,
//! `kernel/events/uprobes.c`), with the `mmap_read_lock` fallback of
//! `find_active_uprobe_rcu`.

use mm_core::{BarrierPolicy, MmStruct, VmaView};

use crate::lookup::SpecStats;

/// Where a breakpoint address falls in a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UprobeHit {
    /// The file's inode number (`vm_file->f_inode`).
    pub ino: u64,
    /// Byte offset in the file: `(vm_pgoff << PAGE_SHIFT) + (addr - vm_start)`.
    pub offset: u64,
}

/// The speculative path. `None` whenever it cannot answer with
/// certainty (writer active, no VMA, anonymous VMA, validation failed):
/// the caller then takes the locked path, as the kernel does.
///
/// Reads, in the kernel's order: `try_begin`; `vma_lookup`;
/// `READ_ONCE(vma->vm_file)`; `vm_pgoff` and `vm_start`; the file's
/// inode; then `retry`.
#[inline]
pub fn find_active_uprobe_speculative<P: BarrierPolicy>(mm: &MmStruct<P>, addr: u64) -> Option<UprobeHit> {
    let seq = mm.speculate_try_begin()?;
    let slot = mm.vma_lookup_rcu(addr)?;
    let start = slot.start();
    if !(start <= addr && addr < slot.end()) {
        return None;
    }
    let file = slot.file()?;
    let offset = (slot.pgoff() << 12).wrapping_add(addr - start);
    let ino = mm.file_ino_rcu(file)?;
    if mm.speculate_retry(seq) {
        return None;
    }
    Some(UprobeHit { ino, offset })
}

/// The locked path (`mmap_read_lock` + `vma_lookup`).
pub fn find_active_uprobe_locked<P: BarrierPolicy>(mm: &MmStruct<P>, addr: u64) -> Option<UprobeHit> {
    let r = mm.read();
    let v = r.vma(r.vma_lookup(addr)?);
    let f = v.file?;
    let ino = r.files().file_inode(f).ino;
    Some(UprobeHit {
        ino,
        offset: (v.pgoff << 12) + (addr - v.start),
    })
}

/// Resolution as a uprobe hit is handled: speculative first, locked if
/// that cannot answer; counts both in `stats`.
pub fn resolve<P: BarrierPolicy>(mm: &MmStruct<P>, addr: u64, stats: &SpecStats) -> Option<UprobeHit> {
    match find_active_uprobe_speculative(mm, addr) {
        Some(hit) => {
            stats.count(&crate::lookup::Spec::Valid { value: (), seq: 0 });
            Some(hit)
        }
        None => {
            stats.count::<()>(&crate::lookup::Spec::Retry);
            stats.fallback();
            find_active_uprobe_locked(mm, addr)
        }
    }
}
