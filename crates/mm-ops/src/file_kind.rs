//! What kind of file a path or a descriptor is, as far as `mmap` cares:
//! which `file_operations` the kernel gives its inode, and what their
//! `mmap` and `get_unmapped_area` do. The probe ([`crate::hostfs`]) says
//! what a path is; [`mmap_kind`] and [`pseudo_kind`] turn that into the
//! model's [`InodeKind`].
//!
//! Kernel counterparts: `file_has_valid_mmap_hooks` and the `MAP_PRIVATE`
//! checks of `do_mmap` (`mm/mmap.c`), `drivers/char/mem.c` (`mmap_zero`,
//! `get_unmapped_area_zero`, the devices without `mmap`), `fs/proc`
//! (`proc_reg_mmap`), `fs/kernfs/file.c` (`kernfs_fop_mmap`),
//! `net/socket.c` (`sock_mmap`), `fs/ramfs/file-mmu.c`.

use mm_core::file::InodeKind;

use crate::task::PathInfo;
use crate::uapi::Errno;

/// The type of a path (`st_mode & S_IFMT`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileType {
    /// `S_IFREG`.
    Regular,
    /// `S_IFDIR`.
    Directory,
    /// `S_IFIFO`.
    Fifo,
    /// `S_IFSOCK`.
    Socket,
    /// `S_IFCHR`.
    CharDevice,
    /// `S_IFBLK`.
    BlockDevice,
}

/// `PROC_SUPER_MAGIC`.
pub const PROC_SUPER_MAGIC: i64 = 0x9fa0;
/// `SYSFS_MAGIC`.
pub const SYSFS_MAGIC: i64 = 0x6265_6572;

/// How `mmap` treats a file, from what a path is (kernel: which
/// `file_operations` the inode has, and what their `mmap` does). Regular
/// files and devices the model does not know map as regular files.
pub fn mmap_kind(info: &PathInfo) -> InodeKind {
    match info.file_type {
        FileType::Directory | FileType::Fifo => InodeKind::NoMmap,
        FileType::Socket => InodeKind::MmapRefuses(Errno::ENODEV.0),
        // drivers/char/mem.c: null, zero, full, random, urandom.
        FileType::CharDevice => match info.rdev {
            (1, 5) => InodeKind::DevZero,
            (1, 3) | (1, 7) | (1, 8) | (1, 9) => InodeKind::NoMmap,
            _ => InodeKind::Regular,
        },
        FileType::BlockDevice => InodeKind::Regular,
        FileType::Regular if info.fs_magic == HUGETLBFS_MAGIC && info.block_size.is_power_of_two() => {
            InodeKind::Hugetlb
        }
        FileType::Regular if info.fs_magic == SYSFS_MAGIC => InodeKind::MmapRefuses(Errno::ENODEV.0),
        FileType::Regular if info.fs_magic == PROC_SUPER_MAGIC => {
            // Per-process files and sysctls have no mmap; the files of
            // proc_create (proc_reg_file_ops) have one that answers EIO.
            let rest = info.canonical.strip_prefix("/proc/").unwrap_or("");
            let first = rest.split('/').next().unwrap_or("");
            let per_process = first.bytes().all(|b| b.is_ascii_digit()) && !first.is_empty();
            if per_process || matches!(first, "self" | "thread-self" | "sys") {
                InodeKind::NoMmap
            } else {
                InodeKind::MmapRefuses(Errno::EIO.0)
            }
        }
        FileType::Regular => InodeKind::Regular,
    }
}

/// How `mmap` treats a descriptor strace names without a path
/// (`pipe:[N]`, `socket:[N]`, `anon_inode:[eventfd]`); `None` for a path.
pub fn pseudo_kind(name: &str) -> Option<InodeKind> {
    if name.starts_with("pipe:[") {
        return Some(InodeKind::NoMmap);
    }
    if name.starts_with("socket:[") {
        return Some(InodeKind::MmapRefuses(Errno::ENODEV.0));
    }
    let anon = name.strip_prefix("anon_inode:")?;
    // eventfd, signalfd, timerfd, epoll, inotify, fanotify, pidfd have no
    // mmap; others (perf_event, io_uring, kvm) do, and map as files.
    let no_mmap = [
        "[eventfd]",
        "[signalfd]",
        "[timerfd]",
        "[eventpoll]",
        "inotify",
        "[fanotify]",
        "[pidfd]",
    ];
    no_mmap.contains(&anon).then_some(InodeKind::NoMmap)
}

/// `HUGETLBFS_MAGIC`.
pub const HUGETLBFS_MAGIC: i64 = 0x9584_58f6;
/// `TMPFS_MAGIC`.
pub const TMPFS_MAGIC: i64 = 0x0102_1994;
/// `RAMFS_MAGIC`.
pub const RAMFS_MAGIC: i64 = 0x8584_58f6;

/// Whether a regular file on the file system with magic `fs_magic` is
/// placed by `thp_get_unmapped_area` (ext4, xfs and the like). tmpfs
/// (`shmem_get_unmapped_area`, mounted `huge=never`) and ramfs
/// (`ramfs_mmu_get_unmapped_area`) place mappings without PMD alignment.
pub fn thp_aligned_fs(fs_magic: i64) -> bool {
    !matches!(fs_magic, TMPFS_MAGIC | RAMFS_MAGIC)
}
