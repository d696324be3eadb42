//! `PROCMAP_QUERY` (`ioctl` on `/proc/PID/maps`, `fs/proc/task_mmu.c`
//! `do_procmap_query`, Linux 6.11+; under per-VMA locks since 6.17): the
//! VMA covering an address, or the next one, filtered by permissions and
//! file backing.

use mm_core::vma_lock::lock_next_vma;
use mm_core::{BarrierPolicy, MmStruct, VmFlags};

use crate::task_mmu::{MapsMm, vma_name};
use crate::uapi::{Errno, PAGE_SHIFT};

/// `PROCMAP_QUERY_VMA_READABLE`.
pub const PROCMAP_QUERY_VMA_READABLE: u64 = 0x01;
/// `PROCMAP_QUERY_VMA_WRITABLE`.
pub const PROCMAP_QUERY_VMA_WRITABLE: u64 = 0x02;
/// `PROCMAP_QUERY_VMA_EXECUTABLE`.
pub const PROCMAP_QUERY_VMA_EXECUTABLE: u64 = 0x04;
/// `PROCMAP_QUERY_VMA_SHARED`.
pub const PROCMAP_QUERY_VMA_SHARED: u64 = 0x08;
/// `PROCMAP_QUERY_COVERING_OR_NEXT_VMA`.
pub const PROCMAP_QUERY_COVERING_OR_NEXT_VMA: u64 = 0x10;
/// `PROCMAP_QUERY_FILE_BACKED_VMA`.
pub const PROCMAP_QUERY_FILE_BACKED_VMA: u64 = 0x20;
/// Every query flag the kernel knows.
const KNOWN: u64 = 0x3f;

/// What `PROCMAP_QUERY` fills in (`struct procmap_query`'s outputs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcmapQuery {
    /// `vma_start`.
    pub start: u64,
    /// `vma_end`.
    pub end: u64,
    /// `vma_flags`: `PROCMAP_QUERY_VMA_*` bits.
    pub flags: u64,
    /// `vma_page_size`.
    pub page_size: u64,
    /// `vma_offset`: the file offset, 0 for anonymous memory.
    pub offset: u64,
    /// `inode` (0 for anonymous memory).
    pub inode: u64,
    /// `dev_major`, `dev_minor`.
    pub dev: (u32, u32),
    /// The name `/proc/PID/maps` shows (path, `[heap]`, …), empty if none.
    pub name: String,
}

/// `do_procmap_query` for `query_addr` with `query_flags`: `ENOENT` when
/// no VMA matches, `EINVAL` for unknown flags. Each VMA is examined under
/// its own read lock (`query_vma_find_by_addr` → `lock_next_vma`).
pub fn procmap_query<P: BarrierPolicy>(
    mm: &MmStruct<P>,
    query_addr: u64,
    query_flags: u64,
) -> Result<ProcmapQuery, Errno> {
    if query_flags & !KNOWN != 0 {
        return Err(Errno::EINVAL);
    }
    let mut addr = query_addr;
    loop {
        // query_matching_vma.
        let Some((lock, _)) = lock_next_vma(mm, addr) else {
            return Err(Errno::ENOENT);
        };
        let s = lock.slot();
        let (start, end, flags, file) = (s.start(), s.end(), s.flags(), s.file());
        let perms_ok = (query_flags & PROCMAP_QUERY_FILE_BACKED_VMA == 0 || file.is_some())
            && (query_flags & PROCMAP_QUERY_VMA_READABLE == 0 || flags.contains(VmFlags::READ))
            && (query_flags & PROCMAP_QUERY_VMA_WRITABLE == 0 || flags.contains(VmFlags::WRITE))
            && (query_flags & PROCMAP_QUERY_VMA_EXECUTABLE == 0 || flags.contains(VmFlags::EXEC))
            && (query_flags & PROCMAP_QUERY_VMA_SHARED == 0 || flags.contains(VmFlags::MAYSHARE));
        if perms_ok && (query_flags & PROCMAP_QUERY_COVERING_OR_NEXT_VMA != 0 || start <= query_addr) {
            let mut out = ProcmapQuery {
                start,
                end,
                flags: [
                    (VmFlags::READ, PROCMAP_QUERY_VMA_READABLE),
                    (VmFlags::WRITE, PROCMAP_QUERY_VMA_WRITABLE),
                    (VmFlags::EXEC, PROCMAP_QUERY_VMA_EXECUTABLE),
                    (VmFlags::MAYSHARE, PROCMAP_QUERY_VMA_SHARED),
                ]
                .iter()
                .filter(|(f, _)| flags.contains(*f))
                .map(|(_, q)| q)
                .sum(),
                page_size: 4096,
                offset: 0,
                inode: 0,
                dev: (0, 0),
                name: String::new(),
            };
            let files = mm.files();
            if let Some(f) = file {
                let inode = files.file_inode(f);
                out.offset = s.pgoff() << PAGE_SHIFT;
                out.inode = inode.ino;
                out.dev = inode.dev;
                if inode.huge_size > 0 {
                    out.page_size = inode.huge_size;
                }
            }
            let (start_brk, brk, start_stack) = mm.heap_and_stack();
            let v = mm_core::Vma {
                start,
                end,
                pgoff: s.pgoff(),
                flags,
                file,
                anon_vma: s.anon_vma(),
                special: s.special(),
            };
            let st = MapsMm {
                start_brk,
                brk,
                start_stack,
            };
            out.name = vma_name(&st, &files, &v);
            return Ok(out);
        }
        // Not this one: the next, if the caller accepts a next VMA.
        if query_flags & PROCMAP_QUERY_COVERING_OR_NEXT_VMA == 0 {
            return Err(Errno::ENOENT);
        }
        addr = end;
    }
}
