//! Uprobe-style resolution of an address to (file identity, file offset):
//! the analogue of `find_active_uprobe_speculative` (Linux 6.13+,
//! `kernel/events/uprobes.c`), with the `mmap_read_lock` fallback of
//! `find_active_uprobe_rcu`.

use mm_core::{BarrierPolicy, MmStruct, VmaView};

use mm_core::file::FileId;
use mm_core::mutation::{self, Mutation};

use crate::lookup::{Spec, SpecStats, in_range};

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
    let (file, offset) = file_offset(mm, addr)?;
    read_ino_and_validate(mm, seq, file, offset)
}

/// The same reads as [`find_active_uprobe_speculative`], with the outcome
/// and the sequence number it validated against, for checkers: a "no
/// file at `addr`" answer is validated too (`Valid { value: None }`),
/// where the kernel's function gives up without validating.
pub fn uprobe_speculative<P: BarrierPolicy>(mm: &MmStruct<P>, addr: u64) -> Spec<Option<UprobeHit>> {
    let Some(seq) = mm.speculate_try_begin() else {
        return Spec::Busy;
    };
    let value = match file_offset(mm, addr) {
        Some((file, offset)) => match read_ino_and_validate(mm, seq, file, offset) {
            Some(hit) => return Spec::Valid { value: Some(hit), seq },
            None => return Spec::Retry,
        },
        None => None,
    };
    if mm.speculate_retry(seq) {
        return Spec::Retry;
    }
    Spec::Valid { value, seq }
}

/// `vma_lookup` under RCU, then `vm_file`, `vm_pgoff` and `vm_start`:
/// the file and the byte offset of `addr` in it, unvalidated.
#[inline(always)]
fn file_offset<P: BarrierPolicy>(mm: &MmStruct<P>, addr: u64) -> Option<(FileId, u64)> {
    let slot = mm.vma_lookup_rcu(addr)?;
    let start = slot.start();
    if !in_range(start, addr, slot.end()) {
        return None;
    }
    let file = slot.file()?;
    let offset = (slot.pgoff() << 12).wrapping_add(addr.wrapping_sub(start));
    Some((file, offset))
}

/// The file's inode, then `mmap_lock_speculate_retry`; `None` if the
/// section must be retried. The inode is read before the retry: read
/// after it, nothing would validate it (mutation `ino-after-retry`).
#[inline(always)]
fn read_ino_and_validate<P: BarrierPolicy>(mm: &MmStruct<P>, seq: u32, file: FileId, offset: u64) -> Option<UprobeHit> {
    if mutation::active(Mutation::InoAfterRetry) {
        if mm.speculate_retry(seq) {
            return None;
        }
        let ino = mm.file_ino_rcu(file)?;
        return Some(UprobeHit { ino, offset });
    }
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

/// Resolution as a uprobe hit is handled (`find_active_uprobe`):
/// speculative first (`find_active_uprobe_rcu`), locked if that cannot
/// answer; counts both in `stats` (a speculative `None` counts as a retry,
/// whatever its cause, as the kernel cannot tell either).
pub fn resolve<P: BarrierPolicy>(mm: &MmStruct<P>, addr: u64, stats: &SpecStats) -> Option<UprobeHit> {
    match find_active_uprobe_speculative(mm, addr) {
        Some(hit) => {
            stats.count(&Spec::Valid { value: (), seq: 0 });
            Some(hit)
        }
        None => {
            stats.count::<()>(&Spec::Retry);
            stats.fallback();
            find_active_uprobe_locked(mm, addr)
        }
    }
}
