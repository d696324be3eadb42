//! A process as far as its address space cares (`struct task_struct` with
//! its `mm` and `files`): the descriptor table that decides file identity,
//! and the system-call entry points that take descriptors.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use mm_core::failslab::AllocSite;
use mm_core::file::{FileId, Inode, InodeKind};
use mm_core::{BarrierPolicy, MmConfig, MmStruct, Upstream};

use crate::call::{Call, Outcome};
use crate::file_kind::{FileType, mmap_kind, pseudo_kind};
use crate::memory::handle_user_fault;
use crate::mmap::{MapFile, sys_brk, vm_mmap_pgoff, vm_munmap};
use crate::mprotect::do_mprotect;
use crate::uapi::{oflags::*, *};

/// What the host (or a test) knows about a path: the model uses it for a
/// file's size, identity, mount flags and file system.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathInfo {
    /// The path as `d_path` prints it (canonical, absolute).
    pub canonical: String,
    /// Size in bytes.
    pub size: u64,
    /// Device (major, minor).
    pub dev: (u32, u32),
    /// Inode number.
    pub ino: u64,
    /// On a `noexec` mount.
    pub noexec: bool,
    /// The file system aligns large mappings (`thp_get_unmapped_area`):
    /// true for ext4/xfs, false for tmpfs.
    pub thp_unmapped_area: bool,
    /// What the path is: a regular file, a directory, a device...
    pub file_type: FileType,
    /// The device a character or block device node stands for.
    pub rdev: (u32, u32),
    /// The file system's magic number (`statfs(2)`'s `f_type`).
    pub fs_magic: i64,
    /// The file system's block size (`statfs(2)`'s `f_bsize`): on
    /// hugetlbfs, its huge page size.
    pub block_size: u64,
    /// Who may open it; `None` when unknown (a recorded fixture's file):
    /// then opening it checks no permission.
    pub access: Option<FileAccess>,
}

/// A file's owner, permission bits and mount, which decide who may open
/// it ([`may_open`](crate::kernel::namei::may_open)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileAccess {
    /// The permission bits (`st_mode & 07777`).
    pub mode: u32,
    /// The owner (`st_uid`).
    pub uid: u32,
    /// The group (`st_gid`).
    pub gid: u32,
    /// On a read-only file system (the superblock: `ro` among the super
    /// options of `/proc/self/mountinfo`): writing is refused before the
    /// permission bits are looked at.
    pub read_only_fs: bool,
    /// On a read-only mount of any kind (`ST_RDONLY`: the mount or its
    /// file system): writing is refused, after the permission bits for a
    /// mount that alone is read-only (a read-only bind mount).
    pub read_only_mount: bool,
}

/// Looks up a path on the host (or anywhere else); `None` if unknown.
pub type PathProbe = Box<dyn Fn(&str) -> Option<PathInfo> + Send + Sync>;

/// A [`PathProbe`] that fork and `CLONE_VM` children share.
type SharedProbe = Arc<dyn Fn(&str) -> Option<PathInfo> + Send + Sync>;

/// A process: an address space plus a descriptor table. The entry type of
/// the model: one method per system call (`mmap` and the descriptor calls
/// here; `munmap`, `mprotect`, `mremap`, `madvise`, `brk`, `fault` and the
/// snapshot accessors in `task_calls.rs`), each answering as the kernel
/// does, with `Err(Errno)` where the system call returns `-1`.
///
/// `Task` is `Send` and `Sync` (calls take `&mut self`, so one thread
/// makes them at a time); its address space, [`Task::mm`], is an
/// `Arc<MmStruct>` that lockless readers on other threads may share.
///
/// ```
/// fn send_sync<T: Send + Sync>() {}
/// send_sync::<mm_ops::Task>();
/// send_sync::<mm_core::MmStruct<mm_core::Upstream>>();
/// ```
pub struct Task<P: BarrierPolicy = Upstream> {
    mm: Arc<MmStruct<P>>,
    fds: BTreeMap<i64, FileId>,
    closed: BTreeSet<i64>,
    /// Shared with fork and `CLONE_VM` children (the same host).
    probe: Option<SharedProbe>,
    cwd: String,
    /// Treat a descriptor that was never opened (nor closed) as inherited:
    /// opened before the trace began (replay). Otherwise it is `EBADF`.
    pub inherit_unknown_fds: bool,
    /// The probe describes the files as they are at each call (a live
    /// host, as the differential twin's): `open` then makes the kernel's
    /// checks on them (`EEXIST`, `EISDIR`, `ENOTDIR`, `EACCES`, `EROFS`,
    /// [`namei`](crate::kernel::namei)). Off by default, for replays: the
    /// files may have changed since the trace was taken (a file it created
    /// exists now), and an open that succeeded there succeeds here.
    pub live_files: bool,
    /// Names for inherited descriptors (from strace's `-y` annotations).
    pub inherited_paths: BTreeMap<i64, String>,
    /// For a path the probe does not know (a file unlinked since): the
    /// file system of its directory (`statfs` magic), which decides how
    /// its mappings are placed. `None`: assume a disk file system.
    pub dir_fs_probe: Option<fn(&str) -> Option<i64>>,
    /// A fork child's: its VMAs came from a VMA cache it shares with its
    /// parent, so the last task of its address space gives them back when
    /// dropped ([`exit_mmap`](crate::fork::exit_mmap)).
    pub(crate) exit_on_drop: bool,
}

impl<P: BarrierPolicy> Drop for Task<P> {
    /// `mmput` of a fork child's address space: its VMAs go back to the
    /// shared cache when its last task goes.
    fn drop(&mut self) {
        if self.exit_on_drop && Arc::strong_count(&self.mm) == 1 {
            crate::fork::exit_mmap(&self.mm);
        }
    }
}

/// The lowest descriptor a new file gets (0–2 are the standard streams).
const FIRST_FD: i64 = 3;
/// `RLIMIT_NOFILE`-like bound for descriptors.
const MAX_FD: i64 = 1 << 20;

impl<P: BarrierPolicy> Task<P> {
    /// A process with an empty address space configured by `cfg`.
    pub fn new(cfg: MmConfig) -> Self {
        Self::with_mm(Arc::new(MmStruct::new(cfg)))
    }

    /// A process around an existing address space.
    pub fn with_mm(mm: Arc<MmStruct<P>>) -> Self {
        Task {
            mm,
            fds: BTreeMap::new(),
            closed: BTreeSet::new(),
            probe: None,
            cwd: "/".into(),
            inherit_unknown_fds: false,
            live_files: false,
            inherited_paths: BTreeMap::new(),
            dir_fs_probe: None,
            exit_on_drop: false,
        }
    }

    /// The address space.
    pub fn mm(&self) -> &Arc<MmStruct<P>> {
        &self.mm
    }

    /// Sets the path probe used when a path is first opened.
    pub fn set_probe(&mut self, probe: PathProbe) {
        self.probe = Some(Arc::from(probe));
    }

    /// A task around `mm` with a copy of this one's descriptor table
    /// (`dup_fd`): the same descriptors on the same [`FileId`]s, the same
    /// working directory and probes. The caller has given each copied
    /// descriptor its reference in `mm`'s file table (a fork child's
    /// copied table already holds them; a `CLONE_VM` child shares the
    /// table and takes them here with `share_files`).
    pub(crate) fn with_descriptors_of(&self, mm: Arc<MmStruct<P>>, share_files: bool) -> Task<P> {
        if share_files {
            let mut files = mm.files();
            for &f in self.fds.values() {
                files.get(f);
            }
        }
        Task {
            mm,
            fds: self.fds.clone(),
            closed: self.closed.clone(),
            probe: self.probe.clone(),
            cwd: self.cwd.clone(),
            inherit_unknown_fds: self.inherit_unknown_fds,
            live_files: self.live_files,
            inherited_paths: self.inherited_paths.clone(),
            dir_fs_probe: self.dir_fs_probe,
            exit_on_drop: self.exit_on_drop,
        }
    }

    /// Sets the working directory for relative paths.
    pub fn set_cwd(&mut self, cwd: &str) {
        self.cwd = cwd.trim_end_matches('/').to_string();
        if self.cwd.is_empty() {
            self.cwd = "/".into();
        }
    }

    fn is_open(&self, fd: i64) -> bool {
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
    fn file_of(&mut self, fd: i64) -> Result<FileId, Errno> {
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
        let f = self.open_file(&path, O_RDWR, u64::MAX, false)?;
        self.fds.insert(fd, f);
        Ok(f)
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

    fn resolve(&self, path: &str) -> String {
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
    fn open_file(&mut self, path: &str, flags: u64, default_size: u64, check: bool) -> Result<FileId, Errno> {
        let flags = crate::kernel::namei::open_flags(flags)?;
        // path_openat's alloc_empty_file comes before the lookup.
        if self.mm.fail_nth().should_fail(AllocSite::File) {
            return Err(Errno::ENOMEM);
        }
        // strace's names of pipes, sockets and anonymous inodes are not
        // paths: nothing to resolve or probe.
        let pseudo = pseudo_kind(path).is_some();
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
        if check && self.live_files {
            let cred = self.mm.fs_cred();
            match &info {
                Some(i) => crate::kernel::namei::may_open_existing(cred, i, flags)?,
                None if flags & O_CREAT != 0 && !pseudo => {
                    let (dir, name) = path.rsplit_once('/').unwrap_or(("", path.as_str()));
                    let dir = if dir.is_empty() { "/" } else { dir };
                    if let Some(d) = self.probe.as_ref().and_then(|p| p(dir)) {
                        crate::kernel::namei::may_create(cred, &d)?;
                        if d.file_type == FileType::Directory {
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
                    }
                }
                None => {}
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
                        n.rejects_sync = disk_file && i.thp_unmapped_area;
                        // ramfs_mmu_get_unmapped_area.
                        n.own_unmapped_area |= disk_file && i.fs_magic == crate::file_kind::RAMFS_MAGIC;
                        n
                    }
                    None => {
                        let ino = files.fresh_ino();
                        let kind = pseudo_kind(&key).unwrap_or(InodeKind::Regular);
                        let mut n = Inode::new(ino, (0xfe, 0), default_size, key.clone(), kind);
                        if let Some(fs) = self.dir_fs_probe.and_then(|p| p(&key)) {
                            n.thp_unmapped_area = crate::file_kind::thp_aligned_fs(fs);
                            n.rejects_sync = n.thp_unmapped_area;
                        }
                        n
                    }
                };
                if info.is_none() && flags & O_CREAT != 0 {
                    inode.size = 0;
                }
                files.add_inode(inode)
            }
        };
        // do_open: O_TRUNC empties a regular file whatever the access mode
        // (O_RDONLY | O_TRUNC too, having asked for write permission);
        // O_PATH ignores it.
        let regular = matches!(
            files.inode(inode).kind,
            InodeKind::Regular | InodeKind::Memfd | InodeKind::Hugetlb
        );
        if flags & O_TRUNC != 0 && flags & O_PATH == 0 && regular {
            files.inode_mut(inode).size = 0;
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
        let f = self.open_file(path, flags, 0, true)?;
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
        let mut files = mm.files();
        let ino = files.fresh_ino();
        let mut inode = if huge_size != 0 {
            // hugetlb_file_setup: a hugetlbfs object on the internal mount.
            let mut i = Inode::new(ino, (0, 0x11), 0, format!("/memfd:{name}"), InodeKind::Hugetlb);
            i.huge_size = huge_size;
            i
        } else {
            Inode::new(ino, (0, 1), 0, format!("/memfd:{name}"), InodeKind::Memfd)
        };
        inode.deleted = true;
        let id = files.add_inode(inode);
        let f = files
            .open(mm.file_slots(), id, true, true, false)
            .ok_or(Errno::ENFILE)?;
        drop(files);
        self.install(fd, f);
        Ok(fd)
    }

    /// Sets the size of the file behind `fd`, if the model knows `fd`: what
    /// a replay learns of a file the trace grew with calls it does not model
    /// (`write(2)`).
    pub fn set_file_size(&mut self, fd: i64, size: u64) {
        if let Some(&f) = self.fds.get(&fd) {
            let mut files = self.mm.files();
            let inode = files.file(f).inode;
            files.inode_mut(inode).size = size;
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
        let regular = matches!(
            files.inode(file.inode).kind,
            InodeKind::Regular | InodeKind::Memfd | InodeKind::Hugetlb
        );
        if !file.writable || !regular {
            return Err(Errno::EINVAL);
        }
        // hugetlbfs_setattr: sizes in whole huge pages.
        let huge = files.inode(file.inode).huge_size;
        if huge != 0 && length & (huge - 1) != 0 {
            return Err(Errno::EINVAL);
        }
        files.inode_mut(file.inode).size = length;
        Ok(())
    }

    /// `mmap(2)`: `sys_mmap` (x86) → `ksys_mmap_pgoff` → `vm_mmap_pgoff`.
    pub fn mmap(&mut self, addr: u64, len: u64, prot: u64, flags: u64, fd: i64, off: u64) -> Result<u64, Errno> {
        if off & !PAGE_MASK != 0 {
            return Err(Errno::EINVAL);
        }
        let pgoff = off >> PAGE_SHIFT;
        let mut len = len;
        let file = if flags & MAP_ANONYMOUS == 0 {
            let f = self.fget(fd)?;
            // ksys_mmap_pgoff: a hugetlbfs file's length is rounded up to
            // its huge page size; MAP_HUGETLB on any other file is EINVAL.
            let huge = self.mm.files().file_inode(f).huge_size;
            if huge != 0 {
                len = len.wrapping_add(huge - 1) & !(huge - 1);
            } else if flags & MAP_HUGETLB != 0 {
                self.mm.files().put(f);
                return Err(Errno::EINVAL);
            }
            Some(f)
        } else if flags & MAP_HUGETLB != 0 {
            // hstate_sizelog: 0 = default (2 MiB), 21 = 2 MiB, 30 = 1 GiB.
            let size = match (flags >> MAP_HUGE_SHIFT) & MAP_HUGE_MASK {
                0 | 21 => PMD_SIZE,
                30 => 1 << 30,
                _ => return Err(Errno::EINVAL),
            };
            len = len.wrapping_add(size - 1) & !(size - 1);
            Some(self.hugetlb_file_setup(len, size)?)
        } else {
            None
        };
        let desc = file.map(|f| MapFile::describe(&self.mm, f));
        let r = vm_mmap_pgoff(&self.mm, desc.as_ref(), addr, len, prot, flags, pgoff);
        if let Some(f) = file {
            self.mm.files().put(f);
        }
        r
    }

    /// `hugetlb_file_setup`: the object behind `MAP_HUGETLB` anonymous memory.
    fn hugetlb_file_setup(&mut self, size: u64, huge_size: u64) -> Result<FileId, Errno> {
        let mm = self.mm.clone();
        if mm.fail_nth().should_fail(AllocSite::File) {
            return Err(Errno::ENOMEM);
        }
        let mut files = mm.files();
        let ino = files.fresh_ino();
        let mut inode = Inode::new(ino, (0, 0x11), size, "/anon_hugepage".into(), InodeKind::HugetlbAnon);
        inode.deleted = true;
        inode.huge_size = huge_size;
        let id = files.add_inode(inode);
        files.open(mm.file_slots(), id, true, true, false).ok_or(Errno::ENFILE)
    }

    /// Applies one call and returns its outcome. `recorded_fd` is the
    /// descriptor an open-like call returned in a trace, if known.
    pub fn apply(&mut self, call: &Call, recorded_fd: Option<i64>) -> Outcome {
        fn ok0(r: Result<(), Errno>) -> Outcome {
            r.map_or_else(Outcome::Err, |()| Outcome::Val(0))
        }
        fn val(r: Result<u64, Errno>) -> Outcome {
            r.map_or_else(Outcome::Err, Outcome::Val)
        }
        fn fd(r: Result<i64, Errno>) -> Outcome {
            r.map_or_else(Outcome::Err, |f| Outcome::Val(f as u64))
        }
        match call {
            &Call::Mmap {
                addr,
                len,
                prot,
                flags,
                fd,
                off,
            } => val(self.mmap(addr, len, prot, flags, fd, off)),
            &Call::Munmap { addr, len } => ok0(vm_munmap(&self.mm, addr, len)),
            &Call::Mprotect { addr, len, prot } => ok0(do_mprotect(&self.mm, addr, len, prot)),
            &Call::Brk { addr } => Outcome::Val(sys_brk(&self.mm, addr)),
            &Call::Mremap {
                old_addr,
                old_len,
                new_len,
                flags,
                new_addr,
            } => val(crate::mremap::sys_mremap(
                &self.mm, old_addr, old_len, new_len, flags, new_addr,
            )),
            &Call::Madvise { addr, len, advice } => ok0(crate::madvise::do_madvise(&self.mm, addr, len, advice)),
            &Call::Mlock { addr, len } => ok0(self.mlock(addr, len)),
            &Call::Mlock2 { addr, len, flags } => ok0(self.mlock2(addr, len, flags)),
            &Call::Munlock { addr, len } => ok0(self.munlock(addr, len)),
            &Call::Mlockall { flags } => ok0(self.mlockall(flags)),
            Call::Munlockall => ok0(self.munlockall()),
            &Call::Fault { addr, access } => match handle_user_fault(&self.mm, addr, access) {
                Ok(()) => Outcome::Val(0),
                Err(s) => Outcome::Signal(s),
            },
            Call::Open { path, flags, .. } => fd(self.open(path, *flags, recorded_fd)),
            Call::Openat { dirfd, path, flags, .. } => {
                if path.starts_with('/') || *dirfd == AT_FDCWD {
                    return fd(self.open(path, *flags, recorded_fd));
                }
                if !self.is_open(*dirfd) {
                    return Outcome::Err(Errno::EBADF);
                }
                // Relative to the directory the descriptor names.
                let dir = match self.fds.get(dirfd) {
                    Some(&f) => Some(self.mm.files().file_inode(f).path.clone()),
                    None => self.inherited_paths.get(dirfd).cloned(),
                };
                let full = match dir {
                    Some(d) => format!("{}/{}", d.trim_end_matches('/'), path),
                    None => path.clone(),
                };
                fd(self.open(&full, *flags, recorded_fd))
            }
            &Call::Close { fd } => ok0(self.close(fd)),
            &Call::Dup { fd: f } => fd(self.dup(f, None, recorded_fd)),
            &Call::Dup2 { oldfd, newfd } => fd(self.dup(oldfd, Some(newfd), None)),
            &Call::Dup3 { oldfd, newfd, flags } => {
                if oldfd == newfd || flags & !O_CLOEXEC != 0 {
                    return Outcome::Err(Errno::EINVAL);
                }
                fd(self.dup(oldfd, Some(newfd), None))
            }
            Call::MemfdCreate { name, flags } => fd(self.memfd_create(name, *flags, recorded_fd)),
            &Call::Ftruncate { fd, length } => ok0(self.ftruncate(fd, length)),
        }
    }
}
