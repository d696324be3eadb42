//! `PROCMAP_QUERY` on the host: the `ioctl` on `/proc/PID/maps` of the
//! helper, to compare with [`mm_ops::kernel::procmap_query`].

use std::io;
use std::os::fd::AsRawFd;

use mm_ops::kernel::procmap_query::ProcmapQuery;
use mm_ops::uapi::Errno;

/// `struct procmap_query` (`include/uapi/linux/fs.h`).
#[repr(C)]
#[derive(Default)]
struct RawQuery {
    size: u64,
    query_flags: u64,
    query_addr: u64,
    vma_start: u64,
    vma_end: u64,
    vma_flags: u64,
    vma_page_size: u64,
    vma_offset: u64,
    inode: u64,
    dev_major: u32,
    dev_minor: u32,
    vma_name_size: u32,
    build_id_size: u32,
    vma_name_addr: u64,
    build_id_addr: u64,
}

/// `_IOWR('f', 17, struct procmap_query)`.
const PROCMAP_QUERY: u64 = (3 << 30) | ((std::mem::size_of::<RawQuery>() as u64) << 16) | ((b'f' as u64) << 8) | 17;

/// Runs `PROCMAP_QUERY` on process `pid`: the outcome, or an I/O error if
/// the maps file cannot be opened.
pub fn host_procmap_query(pid: u32, addr: u64, flags: u64) -> io::Result<Result<ProcmapQuery, Errno>> {
    let f = std::fs::File::open(format!("/proc/{pid}/maps"))?;
    let mut name = [0u8; 4096];
    let mut q = RawQuery {
        size: std::mem::size_of::<RawQuery>() as u64,
        query_flags: flags,
        query_addr: addr,
        vma_name_size: name.len() as u32,
        vma_name_addr: name.as_mut_ptr() as u64,
        ..RawQuery::default()
    };
    // SAFETY: `q` is a valid `struct procmap_query` that lives across the
    // call; its name buffer points at `name`, which outlives the call and
    // holds `vma_name_size` bytes; the kernel writes only within them.
    let r = unsafe { libc::ioctl(f.as_raw_fd(), PROCMAP_QUERY as _, &mut q as *mut RawQuery) };
    if r < 0 {
        let e = io::Error::last_os_error().raw_os_error().unwrap_or(0);
        return Ok(Err(Errno(e)));
    }
    let len = (q.vma_name_size as usize).saturating_sub(1).min(name.len());
    Ok(Ok(ProcmapQuery {
        start: q.vma_start,
        end: q.vma_end,
        flags: q.vma_flags,
        page_size: q.vma_page_size,
        offset: q.vma_offset,
        inode: q.inode,
        dev: (q.dev_major, q.dev_minor),
        name: String::from_utf8_lossy(&name[..len]).into_owned(),
    }))
}
