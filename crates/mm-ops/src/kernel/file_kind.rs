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
        FileType::Regular if info.fs_magic == SECRETMEM_MAGIC => InodeKind::Secretmem,
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

/// Whether `name` is how strace names a descriptor without a path
/// (`pipe:[N]`, `socket:[N]`, `anon_inode:[io_uring]`, …): not a path to
/// resolve or look up.
pub fn is_pseudo_name(name: &str) -> bool {
    ["pipe:[", "socket:[", "anon_inode:"]
        .iter()
        .any(|p| name.starts_with(p))
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

/// `SECRETMEM_MAGIC` (`memfd_secret` objects).
pub const SECRETMEM_MAGIC: i64 = 0x5345_434d;
/// `HUGETLBFS_MAGIC`.
pub const HUGETLBFS_MAGIC: i64 = 0x9584_58f6;
/// `TMPFS_MAGIC`.
pub const TMPFS_MAGIC: i64 = 0x0102_1994;
/// `RAMFS_MAGIC`.
pub const RAMFS_MAGIC: i64 = 0x8584_58f6;

/// `EXT4_SUPER_MAGIC` (ext2 and ext3 too: this kernel mounts them with
/// ext4's code).
pub const EXT4_MAGIC: i64 = 0xef53;
/// `XFS_SUPER_MAGIC`.
pub const XFS_MAGIC: i64 = 0x5846_5342;
/// `BTRFS_SUPER_MAGIC`.
pub const BTRFS_MAGIC: i64 = 0x9123_683e;
/// `FUSE_SUPER_MAGIC`.
pub const FUSE_MAGIC: i64 = 0x6573_5546;
/// `EROFS_SUPER_MAGIC_V1`.
pub const EROFS_MAGIC: i64 = 0xe0f5_e1e2;
/// `BCACHEFS_SUPER_MAGIC`.
pub const BCACHEFS_MAGIC: i64 = 0xca45_1a4e;
/// `OVERLAYFS_SUPER_MAGIC`.
pub const OVERLAYFS_MAGIC: i64 = 0x794c_7630;
/// `MSDOS_SUPER_MAGIC` (vfat, msdos).
pub const MSDOS_MAGIC: i64 = 0x4d44;

/// `MAX_LFS_FILESIZE` on 64-bit.
const MAX_LFS_FILESIZE: u64 = i64::MAX as u64;

/// What a file system's regular files do in `mmap` and `madvise`, by its
/// `statfs(2)` magic: their `file_operations` and super block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FsMmap {
    /// `f_op->get_unmapped_area` is `thp_get_unmapped_area` (ext4, xfs,
    /// btrfs, fuse, erofs, bcachefs): placement keeps the file offset's
    /// alignment within 2 MiB. Without a hook (overlayfs, nfs, f2fs, vfat,
    /// 9p, …) and on tmpfs mounted `huge=never` and ramfs, placement is
    /// plain.
    pub thp_placement: bool,
    /// Another `get_unmapped_area` of the file system's own (ramfs's):
    /// `mremap` moves such a VMA over several only alone
    /// (`vma_multi_allowed`).
    pub own_unmapped_area: bool,
    /// `FOP_MMAP_SYNC` (ext4, xfs): `MAP_SYNC` passes `MAP_SHARED_VALIDATE`,
    /// to be refused by `mmap_prepare` later (no DAX here), after a
    /// `MAP_FIXED` mapping has cleared its range. Elsewhere it is refused
    /// up front.
    pub mmap_sync: bool,
    /// `f_op->fallocate` punches holes (`MADV_REMOVE`); ramfs has no
    /// `fallocate` and vfat refuses the mode (`EOPNOTSUPP`).
    pub punch_hole: bool,
    /// `sb->s_maxbytes`: ext4's with extents and 4 KiB blocks (2^32 − 1
    /// blocks), `MAX_LFS_FILESIZE` elsewhere.
    pub max_bytes: u64,
}

/// [`FsMmap`] of the file system with magic `fs_magic`. 0 (unknown: a
/// record without it) is taken as ext4, the reference host's. A file
/// system not listed is taken to have no `get_unmapped_area` and to
/// punch holes. Read from the kernel's sources (6.17/6.18) and measured
/// on this host for ext4, ext2, tmpfs, ramfs and overlayfs.
pub fn fs_mmap(fs_magic: i64) -> FsMmap {
    let plain = FsMmap {
        thp_placement: false,
        own_unmapped_area: false,
        mmap_sync: false,
        punch_hole: true,
        max_bytes: MAX_LFS_FILESIZE,
    };
    let thp = FsMmap {
        thp_placement: true,
        ..plain
    };
    match fs_magic {
        0 | EXT4_MAGIC => FsMmap {
            mmap_sync: true,
            max_bytes: mm_core::file::EXT4_MAX_BYTES,
            ..thp
        },
        XFS_MAGIC => FsMmap { mmap_sync: true, ..thp },
        BTRFS_MAGIC | FUSE_MAGIC | BCACHEFS_MAGIC => thp,
        EROFS_MAGIC => FsMmap {
            punch_hole: false,
            ..thp
        },
        RAMFS_MAGIC => FsMmap {
            own_unmapped_area: true,
            punch_hole: false,
            ..plain
        },
        MSDOS_MAGIC => FsMmap {
            punch_hole: false,
            ..plain
        },
        _ => plain,
    }
}

/// Gives a regular file's inode its file system's [`FsMmap`].
pub fn apply_fs_mmap(inode: &mut mm_core::file::Inode, fs_magic: i64) {
    let m = fs_mmap(fs_magic);
    inode.thp_unmapped_area = m.thp_placement;
    inode.own_unmapped_area = m.own_unmapped_area;
    inode.rejects_sync = m.mmap_sync;
    inode.punch_hole = m.punch_hole;
    inode.max_bytes = m.max_bytes;
}

/// Whether a regular file on the file system with magic `fs_magic` is
/// placed by `thp_get_unmapped_area` ([`FsMmap::thp_placement`]).
pub fn thp_aligned_fs(fs_magic: i64) -> bool {
    fs_mmap(fs_magic).thp_placement
}

impl FileType {
    fn name(self) -> &'static str {
        match self {
            FileType::Regular => "reg",
            FileType::Directory => "dir",
            FileType::Fifo => "fifo",
            FileType::Socket => "sock",
            FileType::CharDevice => "chr",
            FileType::BlockDevice => "blk",
        }
    }

    fn from_name(s: &str) -> Option<FileType> {
        Some(match s {
            "reg" => FileType::Regular,
            "dir" => FileType::Directory,
            "fifo" => FileType::Fifo,
            "sock" => FileType::Socket,
            "chr" => FileType::CharDevice,
            "blk" => FileType::BlockDevice,
            _ => return None,
        })
    }
}

impl PathInfo {
    /// One tab-separated record (a fixture's `files.txt`): type, size,
    /// device, inode, device number, file system magic, block size,
    /// noexec, then the path (last: it may hold anything but a newline).
    pub fn to_record(&self) -> String {
        // `noexec` (0 or 1), then `,huge=…` for a tmpfs mount with it.
        let mut flags = u8::from(self.noexec).to_string();
        if self.tmpfs_huge != mm_core::ShmemHuge::Never {
            flags.push_str(",huge=");
            flags.push_str(self.tmpfs_huge.name());
        }
        format!(
            "{}\t{}\t{}:{}\t{}\t{}:{}\t{:#x}\t{}\t{}\t{}",
            self.file_type.name(),
            self.size,
            self.dev.0,
            self.dev.1,
            self.ino,
            self.rdev.0,
            self.rdev.1,
            self.fs_magic,
            self.block_size,
            flags,
            self.canonical
        )
    }

    /// Reads [`to_record`](Self::to_record)'s text back.
    pub fn from_record(text: &str) -> Result<PathInfo, String> {
        let f: Vec<&str> = text.splitn(9, '\t').collect();
        let bad = |what: &str| format!("file record: bad {what}: {text:?}");
        if f.len() != 9 {
            return Err(bad("field count"));
        }
        let pair = |s: &str, what: &str| -> Result<(u32, u32), String> {
            let (a, b) = s.split_once(':').ok_or_else(|| bad(what))?;
            Ok((a.parse().map_err(|_| bad(what))?, b.parse().map_err(|_| bad(what))?))
        };
        let fs_magic = i64::from_str_radix(f[5].trim_start_matches("0x"), 16).map_err(|_| bad("magic"))?;
        Ok(PathInfo {
            file_type: FileType::from_name(f[0]).ok_or_else(|| bad("type"))?,
            size: f[1].parse().map_err(|_| bad("size"))?,
            dev: pair(f[2], "device")?,
            ino: f[3].parse().map_err(|_| bad("inode"))?,
            rdev: pair(f[4], "device number")?,
            fs_magic,
            block_size: f[6].parse().map_err(|_| bad("block size"))?,
            noexec: f[7].split(',').next() == Some("1"),
            tmpfs_huge: match f[7].split(',').find_map(|x| x.strip_prefix("huge=")) {
                Some(h) => mm_core::ShmemHuge::from_name(h).ok_or_else(|| bad("huge option"))?,
                None => mm_core::ShmemHuge::Never,
            },
            thp_unmapped_area: thp_aligned_fs(fs_magic),
            canonical: f[8].to_string(),
            // A record does not say who may open the file.
            access: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let p = PathInfo {
            canonical: "/tmp/a b\tc".into(),
            size: 12345,
            dev: (254, 0),
            ino: 99,
            noexec: true,
            tmpfs_huge: mm_core::ShmemHuge::WithinSize,
            thp_unmapped_area: false,
            file_type: FileType::Regular,
            rdev: (0, 0),
            fs_magic: TMPFS_MAGIC,
            block_size: 4096,
            access: None,
        };
        assert_eq!(PathInfo::from_record(&p.to_record()).unwrap(), p);
        // A record of an older mmsim (no huge= after noexec) still reads.
        let old = PathInfo::from_record("reg\t1\t0:1\t3\t0:0\t0x1021994\t4096\t1\t/a").unwrap();
        assert!(old.noexec && old.tmpfs_huge == mm_core::ShmemHuge::Never);
        assert!(PathInfo::from_record("reg\t1\t0:1\t3\t0:0\t0x1021994\t4096\t0,huge=big\t/a").is_err());
        assert!(PathInfo::from_record("reg\t1").is_err());
        assert!(PathInfo::from_record("xyz\t1\t1:2\t3\t0:0\t0x1\t4096\t0\t/a").is_err());
    }

    #[test]
    fn kinds() {
        let mut p = PathInfo::from_record("chr\t0\t0:6\t4\t1:5\t0x1021994\t4096\t0\t/dev/zero").unwrap();
        assert_eq!(mmap_kind(&p), InodeKind::DevZero);
        p.rdev = (1, 3);
        assert_eq!(mmap_kind(&p), InodeKind::NoMmap);
        let p = PathInfo::from_record("reg\t0\t0:22\t4\t0:0\t0x9fa0\t4096\t0\t/proc/meminfo").unwrap();
        assert_eq!(mmap_kind(&p), InodeKind::MmapRefuses(Errno::EIO.0));
        let p = PathInfo::from_record("reg\t0\t0:22\t4\t0:0\t0x9fa0\t4096\t0\t/proc/123/maps").unwrap();
        assert_eq!(mmap_kind(&p), InodeKind::NoMmap);
        assert_eq!(pseudo_kind("pipe:[5]"), Some(InodeKind::NoMmap));
        assert_eq!(pseudo_kind("/tmp/x"), None);
        // io_uring and perf rings map: a pseudo name all the same.
        assert_eq!(pseudo_kind("anon_inode:[io_uring]"), None);
        assert!(is_pseudo_name("anon_inode:[io_uring]") && is_pseudo_name("pipe:[5]"));
        assert!(!is_pseudo_name("/tmp/anon_inode:x") && !is_pseudo_name("anon_inode"));
    }
}
