//! A process as far as its address space cares (`struct task_struct` with
//! its `mm` and `files`): the descriptor table that decides file identity,
//! and the system-call entry points that take descriptors.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use mm_core::failslab::AllocSite;
use mm_core::file::{FileId, Inode, InodeKind};
use mm_core::{BarrierPolicy, MmConfig, MmStruct, Upstream};

use crate::call::{Call, Outcome};
use crate::file_kind::FileType;
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
    /// On a tmpfs mount, its `huge=` option (`never` when absent); `never`
    /// on other file systems.
    pub tmpfs_huge: mm_core::ShmemHuge,
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
    /// The IPC namespace's System V segments, shared with children.
    shm: Arc<Mutex<crate::kernel::shm::ShmNs<P>>>,
    /// A removed segment of the namespace waits for its last detach (so
    /// that calls check for it without taking the namespace's lock).
    shm_dest: Arc<std::sync::atomic::AtomicBool>,
    cwd: String,
    /// Treat a descriptor that was never opened (nor closed) as inherited:
    /// opened before the trace began (replay). Otherwise it is `EBADF`.
    pub inherit_unknown_fds: bool,
    /// The probe describes the files as they are at each call (a live
    /// host, as the differential twin's): `open` then makes the kernel's
    /// checks on them (`ENOENT`, search permission on the directories of
    /// the path, `EEXIST`, `EISDIR`, `ENOTDIR`, `EACCES`, `EROFS`,
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

mod files;
mod proc_fd;

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
            shm: Arc::default(),
            shm_dest: Arc::default(),
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
            shm: self.shm.clone(),
            shm_dest: self.shm_dest.clone(),
            cwd: self.cwd.clone(),
            inherit_unknown_fds: self.inherit_unknown_fds,
            live_files: self.live_files,
            inherited_paths: self.inherited_paths.clone(),
            dir_fs_probe: self.dir_fs_probe,
            exit_on_drop: self.exit_on_drop,
        }
    }

    /// The IPC namespace's shared memory (locked).
    pub(crate) fn shm_ns(&self) -> std::sync::MutexGuard<'_, crate::kernel::shm::ShmNs<P>> {
        self.shm.lock().expect("shm namespace")
    }

    /// Runs a System V call on the namespace, then notes whether a removed
    /// segment waits for its last detach.
    pub(crate) fn with_shm<R>(&self, f: impl FnOnce(&mut crate::kernel::shm::ShmNs<P>) -> R) -> R {
        let mut ns = self.shm_ns();
        let r = f(&mut ns);
        self.shm_dest
            .store(ns.has_removed(), std::sync::atomic::Ordering::Relaxed);
        r
    }

    /// `shm_close` → `shm_destroy` of the removed segments a call just
    /// took the last attach of ([`ShmNs::reap_removed`](crate::kernel::shm::ShmNs::reap_removed));
    /// nothing to do (and no lock taken) when none waits.
    #[inline]
    pub(crate) fn reap_shm(&self) {
        if self.shm_dest.load(std::sync::atomic::Ordering::Relaxed) {
            self.reap_shm_locked();
        }
    }

    #[cold]
    #[inline(never)]
    fn reap_shm_locked(&self) {
        self.with_shm(|ns| ns.reap_removed());
    }

    /// Sets the working directory for relative paths.
    pub fn set_cwd(&mut self, cwd: &str) {
        self.cwd = cwd.trim_end_matches('/').to_string();
        if self.cwd.is_empty() {
            self.cwd = "/".into();
        }
    }

    /// `mmap(2)`: `sys_mmap` (x86) → `ksys_mmap_pgoff` → `vm_mmap_pgoff`.
    pub fn mmap(&mut self, addr: u64, len: u64, prot: u64, flags: u64, fd: i64, off: u64) -> Result<u64, Errno> {
        let r = self.mmap_inner(addr, len, prot, flags, fd, off);
        // A fixed mapping may have replaced a removed segment's last attach.
        self.reap_shm();
        r
    }

    fn mmap_inner(&mut self, addr: u64, len: u64, prot: u64, flags: u64, fd: i64, off: u64) -> Result<u64, Errno> {
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
        inode.set_deleted(true);
        inode.huge_size = huge_size;
        let id = files.add_inode(inode);
        files.open(mm.file_slots(), id, true, true, false).ok_or(Errno::ENFILE)
    }

    /// Applies one call and returns its outcome. `recorded_fd` is the
    /// descriptor an open-like call returned in a trace, if known.
    pub fn apply(&mut self, call: &Call, recorded_fd: Option<i64>) -> Outcome {
        let out = self.apply_inner(call, recorded_fd);
        // shm_close: a removed System V segment whose last attach went
        // (unmapped by this call, or by a fork child that has exited since)
        // is destroyed now.
        self.reap_shm();
        out
    }

    fn apply_inner(&mut self, call: &Call, recorded_fd: Option<i64>) -> Outcome {
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
            &Call::Mseal { addr, len, flags } => ok0(self.mseal(addr, len, flags)),
            &Call::Shmget { key, size, flags } => fd(self.shmget(key, size, flags, recorded_fd)),
            &Call::Shmat { id, addr, flags } => val(self.shmat(id, addr, flags)),
            &Call::Shmdt { addr } => ok0(self.shmdt(addr)),
            &Call::ShmctlRmid { id } => ok0(self.shmctl_rmid(id)),
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
            Call::MemfdSecret { flags } => fd(self.memfd_secret(*flags, recorded_fd)),
            &Call::Setrlimit { resource, cur, max } => ok0(self.setrlimit(resource, cur, max)),
            &Call::PkeyMprotect { addr, len, prot, pkey } => ok0(self.pkey_mprotect(addr, len, prot, pkey as i32)),
            &Call::PkeyAlloc { flags, init_val } => val(self.pkey_alloc(flags, init_val)),
            &Call::PkeyFree { pkey } => ok0(self.pkey_free(pkey as i32)),
            &Call::RemapFilePages {
                start,
                size,
                prot,
                pgoff,
                flags,
            } => ok0(self.remap_file_pages(start, size, prot, pgoff, flags)),
            &Call::Ftruncate { fd, length } => ok0(self.ftruncate(fd, length)),
        }
    }
}
