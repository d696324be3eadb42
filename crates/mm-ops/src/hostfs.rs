//! The host's file system as seen by the model: [`host_probe`] looks a
//! path up (size, device and inode, `noexec` mount, file system type) so
//! that file mappings replayed from a trace behave as on the host.

use crate::file_kind::{FileType, thp_aligned_fs};
use crate::task::{FileAccess, PathInfo, PathProbe};

/// Looks a path up on the host: size, identity, mount flags, file system.
pub fn host_probe() -> PathProbe {
    Box::new(|path: &str| {
        let canonical = std::fs::canonicalize(path).ok()?.to_string_lossy().into_owned();
        probe_at(&canonical.clone(), canonical)
    })
}

/// What the host says of the file at `stat_path` (which may be a
/// `/proc/PID/fd/N` link: `stat` and `statfs` follow it to the file, even
/// an unlinked one), named `canonical`.
pub fn probe_at(stat_path: &str, canonical: String) -> Option<PathInfo> {
    {
        let path = stat_path;
        use std::os::unix::fs::FileTypeExt;
        use std::os::unix::fs::MetadataExt;
        let md = std::fs::metadata(path).ok()?;
        let ft = md.file_type();
        let file_type = if ft.is_file() {
            FileType::Regular
        } else if ft.is_dir() {
            FileType::Directory
        } else if ft.is_fifo() {
            FileType::Fifo
        } else if ft.is_socket() {
            FileType::Socket
        } else if ft.is_char_device() {
            FileType::CharDevice
        } else {
            FileType::BlockDevice
        };
        let c = std::ffi::CString::new(path).ok()?;
        // SAFETY: `c` is a valid NUL-terminated path and `sfs`/`vfs` are
        // plain-old-data out-parameters of the right type.
        let (noexec, read_only_fs, fs_type, block_size) = unsafe {
            let mut vfs: libc::statvfs = std::mem::zeroed();
            let mut sfs: libc::statfs = std::mem::zeroed();
            let vfs_ok = libc::statvfs(c.as_ptr(), &mut vfs) == 0;
            let noexec = vfs_ok && vfs.f_flag & libc::ST_NOEXEC != 0;
            let read_only_fs = vfs_ok && vfs.f_flag & libc::ST_RDONLY != 0;
            let (t, bsize) = if libc::statfs(c.as_ptr(), &mut sfs) == 0 {
                (sfs.f_type as i64, sfs.f_bsize as u64)
            } else {
                (0, 0)
            };
            (noexec, read_only_fs, t, bsize)
        };
        let dev = md.dev();
        let rdev = md.rdev();
        // The super options, for read-only file systems and tmpfs's huge=.
        let opts = (read_only_fs || fs_type == crate::file_kind::TMPFS_MAGIC)
            .then(|| super_options(dev, &canonical_of(path)))
            .flatten();
        let tmpfs_huge = opts
            .as_deref()
            .filter(|_| fs_type == crate::file_kind::TMPFS_MAGIC)
            .and_then(|o| o.split(',').find_map(|x| x.strip_prefix("huge=")))
            .and_then(mm_core::ShmemHuge::from_name)
            .unwrap_or_default();
        Some(PathInfo {
            canonical,
            // Only a regular file's size bounds its mappings.
            size: if file_type == FileType::Regular { md.size() } else { 0 },
            dev: (libc::major(dev), libc::minor(dev)),
            ino: md.ino(),
            noexec,
            tmpfs_huge,
            thp_unmapped_area: thp_aligned_fs(fs_type),
            file_type,
            rdev: (libc::major(rdev), libc::minor(rdev)),
            fs_magic: fs_type,
            block_size,
            access: Some(FileAccess {
                mode: md.mode() & 0o7777,
                uid: md.uid(),
                gid: md.gid(),
                // Unknown options: taken as read-only.
                read_only_fs: read_only_fs && opts.as_deref().is_none_or(|o| o.split(',').any(|x| x == "ro")),
                read_only_mount: read_only_fs,
            }),
        })
    }
}

/// The absolute path `p` as given (the probe's `stat_path`), for matching
/// mount points.
fn canonical_of(p: &str) -> String {
    std::fs::canonicalize(p).map_or_else(|_| p.to_string(), |c| c.to_string_lossy().into_owned())
}

/// The super options (`/proc/self/mountinfo`'s last field: `ro` when the
/// file system itself is read-only, rather than only the mount; tmpfs's
/// `huge=`) of device `dev` mounted at the longest mount point above
/// `path`; `None` when not found.
fn super_options(dev: u64, path: &str) -> Option<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let want = format!("{}:{}", libc::major(dev), libc::minor(dev));
    let mut best: Option<(usize, &str)> = None;
    for line in info.lines() {
        // ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [TAGS...] - TYPE SOURCE SUPER
        let f: Vec<&str> = line.split(' ').collect();
        let Some(sep) = f.iter().position(|&x| x == "-") else {
            continue;
        };
        if f.len() < sep + 4 || f.get(2) != Some(&want.as_str()) {
            continue;
        }
        let mp = f[4];
        let under = mp == "/" || path == mp || path.starts_with(&format!("{mp}/"));
        if under && best.is_none_or(|(len, _)| mp.len() >= len) {
            best = Some((mp.len(), f[sep + 3]));
        }
    }
    best.map(|(_, o)| o.to_string())
}

/// The file system (`statfs(2)`'s `f_type`) of the nearest existing
/// directory above `path`: where a file the host no longer has (unlinked
/// since the trace was taken) lived.
pub fn host_dir_fs(path: &str) -> Option<i64> {
    let mut p = std::path::Path::new(path);
    while let Some(parent) = p.parent() {
        p = parent;
        let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).ok()?;
        // SAFETY: `c` is NUL-terminated and `sfs` a plain out-parameter.
        unsafe {
            let mut sfs: libc::statfs = std::mem::zeroed();
            if libc::statfs(c.as_ptr(), &mut sfs) == 0 {
                return Some(sfs.f_type as i64);
            }
        }
    }
    None
}
