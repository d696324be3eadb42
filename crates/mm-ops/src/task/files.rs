//! The descriptor table and `open(2)` of a [`Task`]: descriptor numbers
//! (`alloc_fd`, `ksys_dup3` in `fs/file.c`), the path walk's outcome
//! (`path_openat`, `do_open` in `fs/namei.c`, with the checks of
//! [`namei`](crate::kernel::namei)), `memfd_create`, `dup`, `close` and
//! `ftruncate`. Links in `/proc/self/fd` are in [`proc_fd`](super::proc_fd).

use mm_core::BarrierPolicy;
use mm_core::failslab::AllocSite;
use mm_core::file::{FileId, Inode, InodeKind};

use super::{FIRST_FD, MAX_FD, PathInfo, Task};
use crate::file_kind::{FileType, is_pseudo_name, mmap_kind, pseudo_kind};
use crate::uapi::{oflags::*, *};

impl<P: BarrierPolicy> Task<P> {
    pub(super) fn is_open(&self, fd: i64) -> bool {
        self.fds.contains_key(&fd)
            || (self.inherit_unknown_fds || fd < FIRST_FD) && fd >= 0 && !self.closed.contains(&fd)
    }

    /// The lowest descriptor known to be free (`alloc_fd`). Descriptors the
    /// input never mentioned count as free here, even when they are treated
    /// as inherited for use.
    fn lowest_free_fd(&self, from: i64) -> Result<i64, Errno> {
        let known_open = |fd: i64| {
            self.fds.contains_key(&fd)
                || ((fd < FIRST_FD || self.inherited_paths.contains_key(&fd)) && !self.closed.contains(&fd))
        };
        (from.max(0)..self.fd_limit())
            .find(|&fd| !known_open(fd))
            .ok_or(Errno::EMFILE)
    }

    /// `rlimit(RLIMIT_NOFILE)` as `alloc_fd` and `ksys_dup3` bound
    /// descriptors with it.
    fn fd_limit(&self) -> i64 {
        self.mm.rlimit_nofile().min(MAX_FD as u64) as i64
    }

    /// Marks `fd` as open on `path` (inherited from before a trace began),
    /// replacing whatever the model knew about it.
    pub fn inherit_fd(&mut self, fd: i64, path: &str) {
        if let Some(f) = self.fds.remove(&fd) {
            self.mm.files().put(f);
        }
        self.closed.remove(&fd);
        self.inherited_paths.insert(fd, path.to_string());
    }

    /// The file behind `fd`, creating an inherited one on first use.
    pub(super) fn file_of(&mut self, fd: i64) -> Result<FileId, Errno> {
        if let Some(&f) = self.fds.get(&fd) {
            return Ok(f);
        }
        if !self.is_open(fd) {
            return Err(Errno::EBADF);
        }
        let path = self
            .inherited_paths
            .get(&fd)
            .cloned()
            .unwrap_or_else(|| format!("/proc/self/fd/{fd}"));
        // An inherited descriptor is assumed readable and writable, and as
        // large as the host says (or unbounded).
        let f = match path.strip_suffix(DELETED) {
            Some(name) => self.open_unlinked(name)?,
            None => self.open_file(&path, O_RDWR, u64::MAX, false)?,
        };
        self.fds.insert(fd, f);
        Ok(f)
    }

    /// The file behind an inherited descriptor whose name is gone (its
    /// `-y` annotation, like `readlink` of `/proc/PID/fd/N`, ends in
    /// ` (deleted)`): an inode of its own, which no path reaches and which
    /// maps lines show deleted, whatever now has that name. `/memfd:NAME`
    /// is a shmem object, `/secretmem` a secret memory one; anything else
    /// an unlinked file of unknown size, on the file system of the
    /// directory it was in if that is known.
    fn open_unlinked(&mut self, name: &str) -> Result<FileId, Errno> {
        let mm = self.mm.clone();
        let mut files = mm.files();
        let ino = files.fresh_ino();
        let mut inode = if name.starts_with("/memfd:") {
            Inode::new(ino, (0, 1), u64::MAX, name.to_string(), InodeKind::Memfd)
        } else if name == "/secretmem" {
            let mut i = Inode::new(ino, (0, 0x0e), u64::MAX, name.to_string(), InodeKind::Secretmem);
            i.noexec = true;
            i.rejects_sync = false;
            i.thp_unmapped_area = false;
            i
        } else {
            let mut i = Inode::new(ino, (0xfe, 0), u64::MAX, name.to_string(), InodeKind::Regular);
            if let Some(fs) = self.dir_fs_probe.and_then(|p| p(name)) {
                crate::file_kind::apply_fs_mmap(&mut i, fs);
            }
            i
        };
        inode.set_deleted(true);
        let id = files.add_inode(inode);
        files.open(mm.file_slots(), id, true, true, false).ok_or(Errno::ENFILE)
    }

    /// `fget`: the file behind `fd` with an extra reference, for mmap.
    pub fn fget(&mut self, fd: i64) -> Result<FileId, Errno> {
        let f = self.file_of(fd)?;
        let mut files = self.mm.files();
        // fget skips FMODE_PATH files.
        if files.file(f).path_only {
            return Err(Errno::EBADF);
        }
        files.get(f);
        Ok(f)
    }

    /// What the probe knows about `path`, if a probe is set.
    pub fn probe_path(&self, path: &str) -> Option<PathInfo> {
        self.probe.as_ref().and_then(|p| p(path))
    }

    pub(super) fn resolve(&self, path: &str) -> String {
        if path.starts_with('/') {
            path.to_string()
        } else if self.cwd == "/" {
            format!("/{path}")
        } else {
            format!("{}/{}", self.cwd, path)
        }
    }

    /// Opens a new file description on `path` (creating the inode on first
    /// use). `default_size` applies when nothing is known about the path.
    /// `may_open` checks the task's access to the file when `check` (not
    /// for a descriptor inherited from before the trace, already open).
    pub(super) fn open_file(
        &mut self,
        path: &str,
        flags: u64,
        default_size: u64,
        check: bool,
    ) -> Result<FileId, Errno> {
        let flags = crate::kernel::namei::open_flags(flags)?;
        // path_openat's alloc_empty_file comes before the lookup.
        if self.mm.fail_nth().should_fail(AllocSite::File) {
            return Err(Errno::ENOMEM);
        }
        // strace's names of pipes, sockets and anonymous inodes are not
        // paths: nothing to resolve or probe.
        let pseudo = is_pseudo_name(path);
        let given = path;
        let path = if pseudo { path.to_string() } else { self.resolve(path) };
        let mut info = if pseudo {
            None
        } else {
            self.probe.as_ref().and_then(|p| p(&path))
        };
        // After the lookup: do_open's checks of an existing file, or
        // lookup_open's of the directory a new one goes in. A live file
        // created here lives in its directory's file system (a hugetlbfs
        // file is a hugetlbfs object); its inode number is the model's own.
        let mut created = false;
        if check
            && self.live_files
            && !pseudo
            && let Some(probe) = self.probe.as_deref()
        {
            let cred = self.mm.fs_cred();
            // The walk starts at the root or at the working directory.
            let start = if given.starts_with('/') { "/" } else { self.cwd.as_str() };
            let d = crate::kernel::namei::may_walk(cred, probe, start, given)?;
            // open_last_lookups: a trailing slash names a directory; one
            // cannot be created that way (EISDIR), and an existing file
            // that is not a directory is ENOTDIR.
            if given.len() > 1 && given.ends_with('/') {
                if flags & O_CREAT != 0 {
                    return Err(Errno::EISDIR);
                }
                if info.is_none()
                    && probe(path.trim_end_matches('/')).is_some_and(|i| i.file_type != FileType::Directory)
                {
                    return Err(Errno::ENOTDIR);
                }
            }
            match &info {
                Some(i) => {
                    // A symbolic link on the way (the last name included) is
                    // walked to its target: the target's directories too.
                    if i.canonical != path {
                        crate::kernel::namei::may_walk(cred, probe, "/", &i.canonical)?;
                    }
                    crate::kernel::namei::may_open_existing(cred, i, flags)?
                }
                None if flags & O_CREAT != 0 => {
                    crate::kernel::namei::may_create(cred, &d)?;
                    let name = given.rsplit('/').find(|n| !n.is_empty()).unwrap_or(given);
                    info = Some(PathInfo {
                        canonical: format!("{}/{name}", d.canonical.trim_end_matches('/')),
                        size: 0,
                        ino: 0,
                        file_type: FileType::Regular,
                        rdev: (0, 0),
                        access: None,
                        ..d
                    });
                    created = true;
                }
                None => return Err(Errno::ENOENT),
            }
        }
        let key = info.as_ref().map_or(path.clone(), |i| i.canonical.clone());
        let mm = self.mm.clone();
        let mut files = mm.files();
        let inode = match files.lookup_path(&key) {
            Some(i) => i,
            None => {
                let mut inode = match &info {
                    Some(i) => {
                        let kind = mmap_kind(i);
                        let ino = if created { files.fresh_ino() } else { i.ino };
                        let mut n = Inode::new(ino, i.dev, i.size, key.clone(), kind);
                        n.noexec = i.noexec;
                        let disk_file = kind == InodeKind::Regular && i.file_type == FileType::Regular;
                        // get_unmapped_area_zero: a private /dev/zero
                        // mapping is aligned like an ext4 file's.
                        n.thp_unmapped_area = (disk_file && i.thp_unmapped_area) || kind == InodeKind::DevZero;
                        if kind == InodeKind::Hugetlb {
                            n.huge_size = i.block_size;
                        }
                        if kind == InodeKind::Secretmem {
                            // A pseudo file (always shown deleted) on a
                            // noexec mount.
                            n.set_deleted(true);
                            n.noexec = true;
                        }
                        if disk_file {
                            crate::file_kind::apply_fs_mmap(&mut n, i.fs_magic);
                            n.thp_unmapped_area = i.thp_unmapped_area;
                            if i.fs_magic == crate::file_kind::TMPFS_MAGIC {
                                n.tmpfs_huge = Some(i.tmpfs_huge);
                            }
                        } else {
                            n.rejects_sync = false;
                        }
                        n
                    }
                    None => {
                        let ino = files.fresh_ino();
                        let kind = pseudo_kind(&key).unwrap_or(InodeKind::Regular);
                        let mut n = Inode::new(ino, (0xfe, 0), default_size, key.clone(), kind);
                        if pseudo {
                            // An anonymous inode that maps (io_uring, perf
                            // rings): no THP placement, no MAP_SYNC.
                            n.thp_unmapped_area = false;
                            n.rejects_sync = false;
                        } else if let Some(fs) = self.dir_fs_probe.and_then(|p| p(&key)) {
                            crate::file_kind::apply_fs_mmap(&mut n, fs);
                            // The mount's huge= is not known: its default.
                            if fs == crate::file_kind::TMPFS_MAGIC {
                                n.tmpfs_huge = Some(mm_core::ShmemHuge::Never);
                            }
                        }
                        n
                    }
                };
                if info.is_none() && flags & O_CREAT != 0 {
                    inode.set_size(0);
                }
                // A file the file system numbered: a relative may have it.
                if info.is_some() && !created {
                    files.add_fs_inode(inode)
                } else {
                    files.add_inode(inode)
                }
            }
        };
        drop(files);
        self.open_description(inode, flags)
    }

    /// The end of `do_open` once the walk has found `inode`: `O_TRUNC`,
    /// then a new open file description (`alloc_empty_file`,
    /// `do_dentry_open`) with the access `flags` ask for.
    pub(super) fn open_description(&mut self, inode: mm_core::file::InodeId, flags: u64) -> Result<FileId, Errno> {
        let mm = self.mm.clone();
        let mut files = mm.files();
        // do_open: O_TRUNC empties a regular file whatever the access mode
        // (O_RDONLY | O_TRUNC too, having asked for write permission);
        // O_PATH ignores it.
        if flags & O_TRUNC != 0 && flags & O_PATH == 0 && files.inode(inode).is_regular() {
            files.inode_mut(inode).set_size(0);
        }
        let (r, w) = if flags & O_PATH != 0 {
            (false, false)
        } else {
            match flags & O_ACCMODE {
                O_RDONLY => (true, false),
                O_WRONLY => (false, true),
                _ => (true, true),
            }
        };
        let id = files
            .open(mm.file_slots(), inode, r, w, flags & O_APPEND != 0)
            .ok_or(Errno::ENFILE)?;
        if flags & O_PATH != 0 {
            files.set_path_only(id);
        }
        Ok(id)
    }

    fn install(&mut self, fd: i64, f: FileId) {
        if let Some(old) = self.fds.insert(fd, f) {
            self.mm.files().put(old);
        }
        self.closed.remove(&fd);
    }

    /// `open`/`openat`: returns the descriptor (`want_fd` when replaying a
    /// recorded result).
    pub fn open(&mut self, path: &str, flags: u64, want_fd: Option<i64>) -> Result<i64, Errno> {
        // build_open_flags comes before the descriptor (EINVAL, then EMFILE).
        crate::kernel::namei::open_flags(flags)?;
        let fd = match want_fd {
            Some(fd) => fd,
            None => self.lowest_free_fd(0)?,
        };
        let f = match super::proc_fd::proc_fd_link(&self.resolve(path)) {
            Some(link) => {
                let (n, tail) = link?;
                self.open_fd_link(n, tail, flags)?
            }
            None => self.open_file(path, flags, 0, true)?,
        };
        self.install(fd, f);
        Ok(fd)
    }

    /// `memfd_create`: a new shmem object, `/memfd:NAME (deleted)`.
    pub fn memfd_create(&mut self, name: &str, flags: u64, want_fd: Option<i64>) -> Result<i64, Errno> {
        let known = mfd::CLOEXEC | mfd::ALLOW_SEALING | mfd::HUGETLB | mfd::NOEXEC_SEAL | mfd::EXEC | (0x3f << 26);
        if flags & !known != 0 || name.len() > 249 {
            return Err(Errno::EINVAL);
        }
        let fd = match want_fd {
            Some(fd) => fd,
            None => self.lowest_free_fd(0)?,
        };
        // The huge page size bits go with MFD_HUGETLB only; the sizes are
        // those with a pool (hstate) here: 2 MiB and 1 GiB.
        let huge_size = if flags & mfd::HUGETLB != 0 {
            match (flags >> 26) & 0x3f {
                0 | 21 => PMD_SIZE,
                30 => 1 << 30,
                _ => return Err(Errno::EINVAL),
            }
        } else if flags & (0x3f << 26) != 0 {
            return Err(Errno::EINVAL);
        } else {
            0
        };
        let mm = self.mm.clone();
        // The object's inode and file (shmem_file_setup), before its inode
        // number is taken.
        if mm.fail_nth().should_fail(AllocSite::File) {
            return Err(Errno::ENOMEM);
        }
        let ino = mm.files().fresh_ino();
        let mut inode = if huge_size != 0 {
            // hugetlb_file_setup: a hugetlbfs object on the internal mount.
            let mut i = Inode::new(ino, (0, 0x11), 0, format!("/memfd:{name}"), InodeKind::Hugetlb);
            i.huge_size = huge_size;
            i
        } else {
            Inode::new(ino, (0, 1), 0, format!("/memfd:{name}"), InodeKind::Memfd)
        };
        inode.set_deleted(true);
        self.install_object(fd, inode)
    }

    /// Adds `inode`, a new object no path reaches, opens it for reading
    /// and writing, and installs the description at `fd`.
    fn install_object(&mut self, fd: i64, inode: Inode) -> Result<i64, Errno> {
        let mm = self.mm.clone();
        let mut files = mm.files();
        let id = files.add_inode(inode);
        let f = files
            .open(mm.file_slots(), id, true, true, false)
            .ok_or(Errno::ENFILE)?;
        drop(files);
        self.install(fd, f);
        Ok(fd)
    }

    /// `memfd_secret` (`mm/secretmem.c`): a new secret memory object,
    /// `/secretmem (deleted)`; `flags` may only be `O_CLOEXEC`.
    pub fn memfd_secret(&mut self, flags: u64, want_fd: Option<i64>) -> Result<i64, Errno> {
        if flags & !O_CLOEXEC != 0 {
            return Err(Errno::EINVAL);
        }
        let fd = match want_fd {
            Some(fd) => fd,
            None => self.lowest_free_fd(0)?,
        };
        let mm = self.mm.clone();
        if mm.fail_nth().should_fail(AllocSite::File) {
            return Err(Errno::ENOMEM);
        }
        let ino = mm.files().fresh_ino();
        // The secretmem mount's device; the host's is numbered at boot.
        let mut inode = Inode::new(ino, (0, 0x0e), 0, "/secretmem".into(), InodeKind::Secretmem);
        inode.set_deleted(true);
        inode.noexec = true;
        inode.rejects_sync = false;
        inode.thp_unmapped_area = false;
        self.install_object(fd, inode)
    }

    /// Sets the size of the file behind `fd`, if the model knows `fd`: what
    /// a replay learns of a file the trace grew with calls it does not model
    /// (`write(2)`).
    pub fn set_file_size(&mut self, fd: i64, size: u64) {
        if let Some(&f) = self.fds.get(&fd) {
            let mut files = self.mm.files();
            let inode = files.file(f).inode;
            files.inode_mut(inode).set_size(size);
        }
    }

    /// `close`.
    pub fn close(&mut self, fd: i64) -> Result<(), Errno> {
        if !self.is_open(fd) {
            return Err(Errno::EBADF);
        }
        if let Some(f) = self.fds.remove(&fd) {
            self.mm.files().put(f);
        }
        self.closed.insert(fd);
        Ok(())
    }

    /// `dup`, `dup2`, `dup3` (`newfd = None` for `dup`).
    pub fn dup(&mut self, oldfd: i64, newfd: Option<i64>, want_fd: Option<i64>) -> Result<i64, Errno> {
        let f = self.file_of(oldfd)?;
        let fd = match (newfd, want_fd) {
            (Some(n), _) if n == oldfd => return Ok(n),
            (Some(n), _) if !(0..self.fd_limit()).contains(&n) => return Err(Errno::EBADF),
            (Some(n), _) => n,
            (None, Some(w)) => w,
            (None, None) => self.lowest_free_fd(0)?,
        };
        self.mm.files().get(f);
        self.install(fd, f);
        Ok(fd)
    }

    /// `ftruncate`: sets the size of the file behind `fd`.
    /// (`do_sys_ftruncate`, `do_ftruncate` in `fs/open.c`: a negative
    /// length before the descriptor, `EBADF` for an `O_PATH` one, `EINVAL`
    /// for one not open for writing or not a regular file.)
    pub fn ftruncate(&mut self, fd: i64, length: u64) -> Result<(), Errno> {
        if length > i64::MAX as u64 {
            return Err(Errno::EINVAL);
        }
        let f = self.file_of(fd)?;
        let mut files = self.mm.files();
        let file = files.file(f).clone();
        if file.path_only {
            return Err(Errno::EBADF);
        }
        if !file.writable || !files.inode(file.inode).is_regular() {
            return Err(Errno::EINVAL);
        }
        // setattr_prepare's inode_newsize_ok: growing past RLIMIT_FSIZE
        // (the kernel also sends SIGXFSZ, fatal unless ignored) or the
        // file system's s_maxbytes.
        let inode = files.inode(file.inode);
        if length > inode.size() && (length > self.mm.rlimit_fsize() || length > inode.max_bytes) {
            return Err(Errno::EFBIG);
        }
        // secretmem_setattr: the size is set once.
        if inode.kind == InodeKind::Secretmem && inode.size() != 0 {
            return Err(Errno::EINVAL);
        }
        // Then hugetlbfs_setattr: sizes in whole huge pages.
        let huge = inode.huge_size;
        if huge != 0 && length & (huge - 1) != 0 {
            return Err(Errno::EINVAL);
        }
        let i = files.inode_mut(file.inode);
        if huge != 0 && length < i.size() {
            // hugetlb_vmtruncate: the pages past the end, and their
            // reservations, go back to the pool.
            crate::hugetlb::hugetlb_punch(i, length / huge, u64::MAX);
        }
        i.set_size(length);
        Ok(())
    }
}

/// What `readlink` of `/proc/PID/fd/N` appends to the name of a file that
/// has none any more.
const DELETED: &str = " (deleted)";
