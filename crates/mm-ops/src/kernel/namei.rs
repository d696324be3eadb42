//! Who may open a file (`fs/namei.c`): `may_open`, `inode_permission`,
//! `generic_permission` and `acl_permission_check` on the file's owner and
//! mode bits, against the task's file-system ids, groups and
//! `CAP_DAC_OVERRIDE` / `CAP_DAC_READ_SEARCH`.
//!
//! The model checks the walk to the file (search permission on each
//! directory, [`may_walk`]) and the opened file itself; what it does not
//! know stays unchecked: POSIX ACLs and LSMs. A file whose owner and mode
//! are unknown (a path the probe does not know, or a recorded fixture's
//! file) opens as before.

use mm_core::FsCred;

use crate::file_kind::FileType;
use crate::task::{FileAccess, PathInfo};
use crate::uapi::Errno;
use crate::uapi::oflags::*;

/// `MAY_EXEC`.
const MAY_EXEC: u32 = 1;
/// `MAY_WRITE`.
const MAY_WRITE: u32 = 2;
/// `MAY_READ`.
const MAY_READ: u32 = 4;

/// `ACC_MODE` and `build_open_flags` (`fs/open.c`): what opening with
/// `flags` asks of the file (`O_TRUNC` asks for write access).
pub fn acc_mode(flags: u64) -> u32 {
    let m = match flags & O_ACCMODE {
        O_RDONLY => MAY_READ,
        O_WRONLY => MAY_WRITE,
        // O_RDWR, and 3, which asks for both.
        _ => MAY_READ | MAY_WRITE,
    };
    if flags & O_TRUNC != 0 { m | MAY_WRITE } else { m }
}

/// `in_group_p`: the task's fsgid or one of its supplementary groups.
fn in_group(cfg: &FsCred, gid: u32) -> bool {
    cfg.fsgid == gid || cfg.groups.contains(&gid)
}

/// `generic_permission` of `mask` on a file with access `a` (not a
/// directory): the owner's, the group's or the others' bits, then the
/// capabilities that override them.
pub fn generic_permission(cfg: &FsCred, a: &FileAccess, is_dir: bool, mask: u32) -> Result<(), Errno> {
    // acl_permission_check: one class of bits applies, the first that
    // matches (the owner's even if the group's would allow more).
    let bits = if cfg.fsuid == a.uid {
        a.mode >> 6
    } else if in_group(cfg, a.gid) {
        a.mode >> 3
    } else {
        a.mode
    } & 7;
    if mask & !bits & (MAY_READ | MAY_WRITE | MAY_EXEC) == 0 {
        return Ok(());
    }
    // capable_wrt_inode_uidgid(CAP_DAC_OVERRIDE): read and write always;
    // exec only if someone may execute (directories: always).
    if cfg.cap_dac_override && (is_dir || mask & MAY_EXEC == 0 || a.mode & 0o111 != 0) {
        return Ok(());
    }
    // CAP_DAC_READ_SEARCH: reading files, reading and searching directories.
    let read_search = if is_dir { MAY_READ | MAY_EXEC } else { MAY_READ };
    if cfg.cap_dac_read_search && mask & !read_search == 0 {
        return Ok(());
    }
    Err(Errno::EACCES)
}

/// `build_open_how` and `build_open_flags` (`fs/open.c`) for `open` and
/// `openat`: `O_PATH` keeps only `O_DIRECTORY`, `O_NOFOLLOW` and
/// `O_CLOEXEC`; `O_CREAT | O_DIRECTORY` is `EINVAL`. Returns the flags the
/// open goes on with.
pub fn open_flags(flags: u64) -> Result<u64, Errno> {
    let flags = if flags & O_PATH != 0 {
        flags & (O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
    } else {
        flags
    };
    if flags & (O_CREAT | O_DIRECTORY) == O_CREAT | O_DIRECTORY {
        return Err(Errno::EINVAL);
    }
    Ok(flags)
}

/// `link_path_walk` with `may_lookup` (`fs/namei.c`): the walk of `path`
/// from `start` (`/` for an absolute path, the working directory for a
/// relative one) up to its last component, which is not looked up here.
/// Each directory a name is looked up in must exist (`ENOENT`), be a
/// directory (`ENOTDIR`) and be searchable by the task (`MAY_EXEC`,
/// `EACCES`); the first that is not ends the walk. `probe` says what the
/// host knows of a path (following symbolic links); a directory of
/// unknown access is searched.
///
/// `.` and `..` are walked as names; a symbolic link on the way is
/// followed by the probe (its target's directory is checked). The caller
/// walks an opened file's canonical path as well when it differs (a link
/// on the way, the last name included): that checks every directory
/// from the root to the file, which is what the kernel checks for a link
/// to an absolute path, and for a relative link also the directories
/// above the link's that the kernel does not look at again. Returns the
/// directory that holds the last component.
pub fn may_walk(
    cred: &FsCred,
    probe: &dyn Fn(&str) -> Option<PathInfo>,
    start: &str,
    path: &str,
) -> Result<PathInfo, Errno> {
    let mut dir = probe(start).ok_or(Errno::ENOENT)?;
    let names: Vec<&str> = path.split('/').filter(|n| !n.is_empty()).collect();
    for (i, name) in names.iter().enumerate() {
        if dir.file_type != FileType::Directory {
            return Err(Errno::ENOTDIR);
        }
        if let Some(a) = &dir.access {
            generic_permission(cred, a, true, MAY_EXEC)?;
        }
        if i + 1 == names.len() {
            break;
        }
        let next = match *name {
            "." => continue,
            ".." => dir
                .canonical
                .rsplit_once('/')
                .map_or("/", |(p, _)| if p.is_empty() { "/" } else { p })
                .to_string(),
            n => format!("{}/{n}", dir.canonical.trim_end_matches('/')),
        };
        dir = probe(&next).ok_or(Errno::ENOENT)?;
    }
    Ok(dir)
}

/// `do_open` on a file that exists (`info`): `O_CREAT | O_EXCL` is
/// `EEXIST`, `O_CREAT` of a directory `EISDIR`, `O_DIRECTORY` of anything
/// else `ENOTDIR`; then [`may_open`].
pub fn may_open_existing(cred: &FsCred, info: &PathInfo, flags: u64) -> Result<(), Errno> {
    let is_dir = info.file_type == FileType::Directory;
    if flags & O_CREAT != 0 {
        if flags & O_EXCL != 0 {
            return Err(Errno::EEXIST);
        }
        if is_dir {
            return Err(Errno::EISDIR);
        }
    }
    if flags & O_DIRECTORY != 0 && !is_dir {
        return Err(Errno::ENOTDIR);
    }
    may_open(cred, info, flags)
}

/// `lookup_open` creating a file in directory `dir`: `EROFS` on a
/// read-only mount (`mnt_want_write`), else `may_o_create`'s write and
/// search permission on the directory (`EACCES`). A created file is not
/// checked again (`FMODE_CREATED`).
pub fn may_create(cred: &FsCred, dir: &PathInfo) -> Result<(), Errno> {
    let Some(a) = &dir.access else {
        return Ok(());
    };
    if a.read_only_mount {
        return Err(Errno::EROFS);
    }
    generic_permission(cred, a, true, MAY_WRITE | MAY_EXEC)
}

/// `may_open` with `inode_permission`: whether the task may open the file
/// `info` with `flags`. `O_PATH` opens check nothing; a file of unknown
/// access (`info.access` is `None`) is not checked.
pub fn may_open(cfg: &FsCred, info: &PathInfo, flags: u64) -> Result<(), Errno> {
    if flags & O_PATH != 0 {
        return Ok(());
    }
    let mask = acc_mode(flags);
    let is_dir = info.file_type == FileType::Directory;
    // may_open: a directory opens neither for writing nor for execution.
    if is_dir && mask & MAY_WRITE != 0 {
        return Err(Errno::EISDIR);
    }
    let Some(a) = &info.access else {
        return Ok(());
    };
    let regular = info.file_type == FileType::Regular;
    // do_open: O_TRUNC of a regular file takes mnt_want_write first.
    if flags & O_TRUNC != 0 && regular && a.read_only_mount {
        return Err(Errno::EROFS);
    }
    // sb_permission: no writing to a regular file or a directory on a
    // read-only file system (devices and FIFOs live elsewhere).
    if mask & MAY_WRITE != 0 && a.read_only_fs && (regular || is_dir) {
        return Err(Errno::EROFS);
    }
    generic_permission(cfg, a, is_dir, mask)?;
    // do_dentry_open: opening a file that is not special for writing
    // takes write access to the mount.
    let special = matches!(
        info.file_type,
        FileType::CharDevice | FileType::BlockDevice | FileType::Fifo | FileType::Socket
    );
    if flags & O_ACCMODE != O_RDONLY && !special && a.read_only_mount {
        return Err(Errno::EROFS);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(mode: u32, uid: u32, gid: u32) -> PathInfo {
        PathInfo {
            canonical: "/f".into(),
            size: 4096,
            dev: (0, 1),
            ino: 2,
            noexec: false,
            tmpfs_huge: mm_core::ShmemHuge::Never,
            thp_unmapped_area: false,
            file_type: FileType::Regular,
            rdev: (0, 0),
            fs_magic: 0x0102_1994,
            block_size: 4096,
            access: Some(FileAccess {
                mode,
                uid,
                gid,
                read_only_fs: false,
                read_only_mount: false,
            }),
        }
    }

    fn user(uid: u32, gid: u32, groups: &[u32]) -> FsCred {
        FsCred {
            fsuid: uid,
            fsgid: gid,
            groups: groups.to_vec(),
            cap_dac_override: false,
            cap_dac_read_search: false,
        }
    }

    // Expected values below are the permission rules of open(2) and
    // path_resolution(7), case by case.
    #[test]
    fn owner_group_and_others_bits() {
        let nobody = user(65534, 65534, &[]);
        let f = file(0o644, 0, 0);
        assert_eq!(may_open(&nobody, &f, O_RDONLY), Ok(()));
        assert_eq!(may_open(&nobody, &f, O_WRONLY), Err(Errno::EACCES));
        assert_eq!(may_open(&nobody, &f, O_RDWR), Err(Errno::EACCES));
        assert_eq!(may_open(&nobody, &f, O_RDONLY | O_TRUNC), Err(Errno::EACCES));
        assert_eq!(may_open(&nobody, &f, O_PATH | O_RDWR), Ok(()));
        // The owner's class applies even when it allows less than others'.
        let owner = user(1000, 1000, &[]);
        assert_eq!(may_open(&owner, &file(0o066, 1000, 0), O_RDONLY), Err(Errno::EACCES));
        // A supplementary group selects the group's bits.
        let member = user(1001, 1001, &[50]);
        assert_eq!(may_open(&member, &file(0o060, 0, 50), O_RDWR), Ok(()));
        assert_eq!(may_open(&member, &file(0o606, 0, 50), O_RDWR), Err(Errno::EACCES));
    }

    #[test]
    fn capabilities_override_the_bits() {
        let root = mm_core::MmConfig::default().fs_cred();
        assert_eq!(may_open(&root, &file(0o000, 1000, 1000), O_RDWR), Ok(()));
        let reader = FsCred {
            cap_dac_read_search: true,
            ..user(5, 5, &[])
        };
        assert_eq!(may_open(&reader, &file(0o000, 0, 0), O_RDONLY), Ok(()));
        assert_eq!(may_open(&reader, &file(0o000, 0, 0), O_WRONLY), Err(Errno::EACCES));
    }

    #[test]
    fn creation_and_flags() {
        let root = mm_core::MmConfig::default().fs_cred();
        let nobody = user(65534, 65534, &[]);
        assert_eq!(open_flags(O_CREAT | O_DIRECTORY), Err(Errno::EINVAL));
        assert_eq!(open_flags(O_PATH | O_CREAT | O_RDWR | O_TRUNC), Ok(O_PATH));
        let f = file(0o644, 0, 0);
        assert_eq!(
            may_open_existing(&root, &f, O_CREAT | O_EXCL | O_RDWR),
            Err(Errno::EEXIST)
        );
        assert_eq!(may_open_existing(&root, &f, O_CREAT | O_RDWR), Ok(()));
        assert_eq!(may_open_existing(&root, &f, O_DIRECTORY), Err(Errno::ENOTDIR));
        let mut d = file(0o755, 0, 0);
        d.file_type = FileType::Directory;
        assert_eq!(may_open_existing(&root, &d, O_CREAT | O_RDONLY), Err(Errno::EISDIR));
        assert_eq!(may_open_existing(&root, &d, O_DIRECTORY), Ok(()));
        // Creating needs write and search permission on the directory.
        assert_eq!(may_create(&root, &d), Ok(()));
        assert_eq!(may_create(&nobody, &d), Err(Errno::EACCES));
        assert_eq!(may_create(&nobody, &file(0o777, 0, 0)), Ok(()));
        d.access.as_mut().unwrap().read_only_mount = true;
        assert_eq!(may_create(&root, &d), Err(Errno::EROFS));
    }

    /// A probe over a fixed tree: `/` (0755), `/a` (0700, root's),
    /// `/a/f`, `/x` (0711), `/x/f`, `/x/y` (0755), and the file `/plain`.
    fn probe(path: &str) -> Option<PathInfo> {
        let dir = |mode| {
            let mut d = file(mode, 0, 0);
            d.file_type = FileType::Directory;
            d
        };
        let mut i = match path {
            "/" | "/x/y" => dir(0o755),
            "/a" => dir(0o700),
            "/x" => dir(0o711),
            "/a/f" | "/x/f" | "/plain" => file(0o644, 0, 0),
            _ => return None,
        };
        i.canonical = path.to_string();
        Some(i)
    }

    #[test]
    fn the_walk_needs_search_permission() {
        let nobody = user(65534, 65534, &[]);
        let root = mm_core::MmConfig::default().fs_cred();
        let walk = |c: &FsCred, start: &str, p: &str| may_walk(c, &probe, start, p).map(|d| d.canonical);
        assert_eq!(walk(&nobody, "/", "/a/f"), Err(Errno::EACCES));
        assert_eq!(walk(&nobody, "/", "/a/missing"), Err(Errno::EACCES));
        assert_eq!(walk(&root, "/", "/a/f"), Ok("/a".into()));
        // Search permission alone is enough.
        assert_eq!(walk(&nobody, "/", "/x/f"), Ok("/x".into()));
        assert_eq!(walk(&nobody, "/", "/x/y/z"), Ok("/x/y".into()));
        assert_eq!(walk(&nobody, "/", "/x/./y/../f"), Ok("/x".into()));
        assert_eq!(walk(&nobody, "/", "/x/../a/f"), Err(Errno::EACCES));
        // A relative path starts at the working directory, not at the root.
        assert_eq!(walk(&nobody, "/x", "y/z"), Ok("/x/y".into()));
        // A missing directory, and a file walked as one.
        assert_eq!(walk(&nobody, "/", "/missing/f"), Err(Errno::ENOENT));
        assert_eq!(walk(&nobody, "/", "/plain/f"), Err(Errno::ENOTDIR));
        // The last name is not looked up here.
        assert_eq!(walk(&nobody, "/", "/missing"), Ok("/".into()));
    }

    #[test]
    fn directories_and_read_only_mounts() {
        let root = mm_core::MmConfig::default().fs_cred();
        let mut d = file(0o755, 0, 0);
        d.file_type = FileType::Directory;
        assert_eq!(may_open(&root, &d, O_RDONLY), Ok(()));
        assert_eq!(may_open(&root, &d, O_RDWR), Err(Errno::EISDIR));
        // A read-only file system refuses writers before the mode bits...
        let mut ro = file(0o644, 0, 0);
        let a = ro.access.as_mut().unwrap();
        (a.read_only_fs, a.read_only_mount) = (true, true);
        assert_eq!(may_open(&root, &ro, O_RDONLY), Ok(()));
        assert_eq!(may_open(&root, &ro, O_WRONLY), Err(Errno::EROFS));
        let nobody = user(65534, 65534, &[]);
        assert_eq!(may_open(&nobody, &ro, O_WRONLY), Err(Errno::EROFS));
        // ... a read-only bind mount after them, except for O_TRUNC.
        let mut bind = file(0o644, 0, 0);
        bind.access.as_mut().unwrap().read_only_mount = true;
        assert_eq!(may_open(&root, &bind, O_RDWR), Err(Errno::EROFS));
        assert_eq!(may_open(&nobody, &bind, O_RDWR), Err(Errno::EACCES));
        assert_eq!(may_open(&nobody, &bind, O_RDONLY | O_TRUNC), Err(Errno::EROFS));
        assert_eq!(may_open(&nobody, &bind, O_RDONLY), Ok(()));
        // Unknown access: only the directory check applies.
        let mut unknown = file(0, 0, 0);
        unknown.access = None;
        assert_eq!(may_open(&user(1, 1, &[]), &unknown, O_RDWR), Ok(()));
    }
}
