//! Open file descriptions (`struct file`) and inodes, as far as the address
//! space cares: identity for merging, access mode for `mmap`'s checks, size
//! for `SIGBUS`, and a path for `/proc/PID/maps`.
//!
//! Identity is that of the *open file description*: two `open`s of one path
//! give two [`FileId`]s (which never merge), `dup` shares one. Inodes are
//! shared by path. Speculative readers reach a file's inode number through a
//! [`FileSlot`] in type-stable memory (`filp_cachep` is `SLAB_TYPESAFE_BY_RCU`).

use std::collections::HashMap;

use crate::ordering::{i_size_read, i_size_write, publish_recycled, read_once};
use crate::slab::IndexAlloc;
use crate::sync::AtomicU64;

/// Index of an open file description.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId(pub u32);

/// Index of an inode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InodeId(pub u32);

/// What kind of object an inode is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum InodeKind {
    /// A regular file on a disk file system.
    Regular,
    /// A `memfd_create` object (shmem): `/memfd:NAME (deleted)`.
    Memfd,
    /// The shmem object behind a shared anonymous mapping: `/dev/zero (deleted)`.
    ShmemAnon,
    /// The hugetlbfs object behind a `MAP_HUGETLB` anonymous mapping:
    /// `/anon_hugepage (deleted)`.
    HugetlbAnon,
    /// A file with no `mmap` operation (`file_has_valid_mmap_hooks` is
    /// false): directories, FIFOs and pipes, `/dev/null`, `/dev/full`,
    /// `/dev/random`, `/dev/urandom`, `/proc/PID/*` and `/proc/sys/*`,
    /// `eventfd`-like anonymous inodes. `mmap` fails with `ENODEV` after
    /// its access checks, before touching the address space.
    NoMmap,
    /// A file whose `mmap` operation refuses: sysfs attributes and sockets
    /// (`ENODEV`), `/proc` files of `proc_create` (`EIO`). The refusal
    /// comes once the target range has been cleared, so the mappings that
    /// were there are gone.
    MmapRefuses(i32),
    /// A file on a hugetlbfs mount, or a `memfd_create(MFD_HUGETLB)`
    /// object: sizes and offsets in huge pages ([`Inode::huge_size`]).
    Hugetlb,
    /// A System V shared memory segment attached by `shmat` (`ipc/shm.c`):
    /// a shmem object named `/SYSV<key> (deleted)` whose inode number is
    /// the segment's id. Each attach is its own description.
    SysvShm,
    /// A System V segment made with `SHM_HUGETLB`, attached: a hugetlbfs
    /// object (`hugetlb_file_setup`, `S_PRIVATE`) named `/SYSV<key>
    /// (deleted)`, whose pages were reserved by `shmget` (its mappings
    /// reserve nothing more) and whose size is rounded up to its huge page
    /// size.
    SysvShmHuge,
    /// A `memfd_secret` object (`mm/secretmem.c`): `/secretmem (deleted)`,
    /// on a `noexec` mount; its `mmap` (after the range was cleared)
    /// refuses private mappings (`EINVAL`) and, past `RLIMIT_MEMLOCK`,
    /// locked memory (`EAGAIN`), and makes the VMA `VM_LOCKED` and
    /// `VM_DONTDUMP`; its pages cannot be pinned (no populate, no mlock).
    Secretmem,
    /// `/dev/zero` (character device 1:5): a private mapping is anonymous
    /// memory that keeps `/dev/zero` as its file; a shared one is a new
    /// shmem object per mapping (`/dev/zero (deleted)`).
    DevZero,
}

/// ext4's `s_maxbytes` with extents and 4 KiB blocks: 2^32 − 1 blocks
/// (`ext4_max_size`).
pub const EXT4_MAX_BYTES: u64 = ((1u64 << 32) - 1) << 12;

/// The part of an inode that an address space's fork copies share: the
/// kernel has one `struct inode`, which a child's `ftruncate` or `unlink`
/// changes for its parent too, whereas the model's file tables are per
/// address space ([`FileTable::fork_copy`]). No lock-free reader reaches it.
#[derive(Debug)]
pub(crate) struct InodeShared {
    /// `i_size`.
    size: std::sync::atomic::AtomicU64,
    /// Unlinked (`d_delete`): 1, else 0.
    deleted: std::sync::atomic::AtomicU64,
}

impl InodeShared {
    fn is_deleted(&self) -> bool {
        i_size_read(&self.deleted) != 0
    }
}

mod icache;

/// An inode.
///
/// A clone is the same inode: it shares `i_size` and the unlinked state
/// ([`Inode::size`], [`Inode::deleted`]) with the original, as fork copies
/// of a file table do.
#[derive(Clone, Debug)]
pub struct Inode {
    /// Inode number shown in maps and used as file identity.
    pub ino: u64,
    /// Device (major, minor) shown in maps.
    pub dev: (u32, u32),
    /// `i_size` and the unlinked state, shared with the inode's clones.
    shared: std::sync::Arc<InodeShared>,
    /// Path as `d_path` prints it (without ` (deleted)`).
    pub path: String,
    /// Kind of object.
    pub kind: InodeKind,
    /// On a `noexec` mount (`path_noexec`).
    pub noexec: bool,
    /// `IS_APPEND` (append-only inode attribute).
    pub append_only: bool,
    /// The file system places mappings with `thp_get_unmapped_area`
    /// (ext4, xfs: `f_op->get_unmapped_area`), aligning mappings of 2 MiB
    /// or more to the file offset's PMD alignment.
    pub thp_unmapped_area: bool,
    /// The file has its own `f_op->get_unmapped_area` besides THP
    /// placement (ramfs's, `/dev/zero`'s): `mremap` moves a VMA of it over
    /// several VMAs only alone (`vma_multi_allowed`).
    pub own_unmapped_area: bool,
    /// The file system's `mmap_prepare` refuses `VM_SYNC` with
    /// `EOPNOTSUPP` (ext4/xfs on a non-DAX device; shmem accepts it).
    pub rejects_sync: bool,
    /// The file system punches holes (`MADV_REMOVE` → `fallocate`); ramfs
    /// and vfat do not.
    pub punch_hole: bool,
    /// `inode->i_sb->s_maxbytes`.
    pub max_bytes: u64,
    /// Huge page size of a hugetlbfs object (0 otherwise).
    pub huge_size: u64,
    /// A file on a tmpfs mount: the mount's `huge=` option, which decides
    /// its placement (`shmem_get_unmapped_area`). `None` elsewhere (the
    /// shmem objects of the internal mount follow `shmem_enabled`).
    pub tmpfs_huge: Option<crate::mm::ShmemHuge>,
    /// Pages a shmem object charged to the commit count when it was set
    /// up (`shmem_acct_size`); given back when it dies
    /// (`shmem_unacct_size` from `shmem_evict_inode`).
    pub acct_pages: u64,
    /// A hugetlbfs object's reservations and pages
    /// ([`HugeInode`](crate::hugetlb::HugeInode)), shared with the inode's
    /// fork copies.
    pub huge: Option<std::sync::Arc<crate::hugetlb::HugeInode>>,
    /// A System V segment removed with `IPC_RMID` (`SHM_DEST`) that no
    /// other address space maps: its VMAs here are its last attaches, and
    /// once they are unmapped the segment is destroyed, so that mapping
    /// the file again fails (`shm_mmap` → `__shm_open`: `EINVAL`). Set
    /// for the length of one call (`remap_file_pages`, the only one that
    /// maps an attach's file again) by whoever knows the namespace.
    pub shm_last_attaches: bool,
    /// Open file descriptions referring to it.
    refs: u32,
}

impl Inode {
    /// A new inode description (not yet in a table).
    pub fn new(ino: u64, dev: (u32, u32), size: u64, path: String, kind: InodeKind) -> Inode {
        Inode {
            ino,
            dev,
            shared: std::sync::Arc::new(InodeShared {
                size: size.into(),
                deleted: 0.into(),
            }),
            path,
            kind,
            noexec: false,
            append_only: false,
            thp_unmapped_area: kind == InodeKind::Regular,
            own_unmapped_area: kind == InodeKind::DevZero,
            rejects_sync: kind == InodeKind::Regular,
            punch_hole: true,
            // ext4's (the reference host's) for files, MAX_LFS_FILESIZE
            // for shmem and hugetlbfs objects.
            max_bytes: if kind == InodeKind::Regular {
                EXT4_MAX_BYTES
            } else {
                i64::MAX as u64
            },
            huge_size: 0,
            tmpfs_huge: None,
            acct_pages: 0,
            huge: None,
            shm_last_attaches: false,
            refs: 0,
        }
    }

    /// `i_size` in bytes (`i_size_read`).
    #[inline]
    pub fn size(&self) -> u64 {
        i_size_read(&self.shared.size)
    }

    /// Sets `i_size` (`i_size_write`), for every address space that shares
    /// the inode.
    pub fn set_size(&mut self, size: u64) {
        i_size_write(&self.shared.size, size);
    }

    /// Unlinked: maps appends ` (deleted)`, and a later open of its path
    /// finds another file.
    #[inline]
    pub fn deleted(&self) -> bool {
        i_size_read(&self.shared.deleted) != 0
    }

    /// Marks the inode unlinked, or not, for every address space that
    /// shares it.
    pub fn set_deleted(&mut self, deleted: bool) {
        i_size_write(&self.shared.deleted, deleted as u64);
    }

    /// A regular file as `S_ISREG` sees it: one on disk, a memfd, a
    /// hugetlbfs file (what `O_TRUNC` empties and `ftruncate` resizes).
    pub fn is_regular(&self) -> bool {
        matches!(
            self.kind,
            InodeKind::Regular
                | InodeKind::Memfd
                | InodeKind::Hugetlb
                | InodeKind::SysvShm
                | InodeKind::SysvShmHuge
                | InodeKind::Secretmem
        )
    }

    /// A hugetlbfs object (`is_file_hugepages`).
    pub fn is_hugetlb(&self) -> bool {
        matches!(
            self.kind,
            InodeKind::HugetlbAnon | InodeKind::Hugetlb | InodeKind::SysvShmHuge
        )
    }

    /// A System V segment's attach (`shm_file_operations`), with huge pages
    /// or without.
    pub fn is_sysv_shm(&self) -> bool {
        matches!(self.kind, InodeKind::SysvShm | InodeKind::SysvShmHuge)
    }

    /// A shmem object (memfd, shared anonymous memory, a System V segment).
    pub fn is_shmem(&self) -> bool {
        matches!(self.kind, InodeKind::Memfd | InodeKind::ShmemAnon | InodeKind::SysvShm)
    }
}

/// An open file description (`struct file`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct File {
    /// The inode.
    pub inode: InodeId,
    /// `FMODE_READ`.
    pub readable: bool,
    /// `FMODE_WRITE`.
    pub writable: bool,
    /// Opened with `O_APPEND`.
    pub append: bool,
    /// Opened with `O_PATH` (`FMODE_PATH`): `fget` does not return it, so
    /// `mmap` answers `EBADF`.
    pub path_only: bool,
    /// References: descriptors plus VMAs (`f_count`).
    refs: u32,
}

/// The published part of a file, for speculative readers.
pub struct FileSlot {
    ino: AtomicU64,
}

// SAFETY: every field is an atomic integer, valid when zeroed (under loom the slab
// builds slots with `Default` instead).
unsafe impl crate::slab::ZeroSlot for FileSlot {}

impl Default for FileSlot {
    fn default() -> Self {
        FileSlot { ino: AtomicU64::new(0) }
    }
}

impl FileSlot {
    /// `READ_ONCE(file->f_inode)->i_ino`: the file's identity.
    #[inline]
    pub fn ino(&self) -> u64 {
        read_once(&self.ino)
    }
}

/// All files and inodes the model knows.
#[derive(Debug, Default)]
pub struct FileTable {
    files: Vec<Option<File>>,
    file_alloc: IndexAlloc,
    inodes: Vec<Option<Inode>>,
    inode_alloc: IndexAlloc,
    by_path: HashMap<String, InodeId>,
    next_ino: u64,
    /// The machine's huge page pools, shared with fork copies.
    pub hugetlb_pool: crate::hugetlb::HugePool,
    /// File system inodes, shared with fork copies.
    icache: icache::Icache,
}

impl FileTable {
    /// The file `id`.
    #[inline]
    pub fn file(&self, id: FileId) -> &File {
        self.files[id.0 as usize].as_ref().expect("live file")
    }

    /// The inode `id`, if it is live.
    pub fn try_inode_mut(&mut self, id: InodeId) -> Option<&mut Inode> {
        self.inodes.get_mut(id.0 as usize)?.as_mut()
    }

    /// The inode `id`.
    #[inline]
    pub fn inode(&self, id: InodeId) -> &Inode {
        self.inodes[id.0 as usize].as_ref().expect("live inode")
    }

    /// The inode `id`, mutably (e.g. for `ftruncate`).
    pub fn inode_mut(&mut self, id: InodeId) -> &mut Inode {
        self.inodes[id.0 as usize].as_mut().expect("live inode")
    }

    /// The inode of file `id`.
    #[inline]
    pub fn file_inode(&self, id: FileId) -> &Inode {
        self.inode(self.file(id).inode)
    }

    /// The inode for a path, if one exists. An inode that another
    /// address space sharing it (a fork relative) unlinked is not found.
    pub fn lookup_path(&self, path: &str) -> Option<InodeId> {
        self.by_path.get(path).copied().filter(|&id| self.named(id))
    }

    /// Whether inode `id` is live and not unlinked (by this address space
    /// or a relative sharing it): a name that leads to it is its name.
    fn named(&self, id: InodeId) -> bool {
        self.inodes[id.0 as usize].as_ref().is_some_and(|i| !i.deleted())
    }

    /// `unlink(path)` as far as names go (`vfs_unlink` → `d_delete`): the
    /// file stays alive while open or mapped, but no longer has `path` as
    /// its name, so `/proc/PID/maps` shows `path (deleted)`, and a later
    /// open of `path` finds a new file. False if the table knew no file
    /// there.
    pub fn unlink(&mut self, path: &str) -> bool {
        let Some(id) = self.by_path.remove(path) else {
            return false;
        };
        if let Some(inode) = self.inodes[id.0 as usize].as_mut() {
            inode.set_deleted(true);
        }
        true
    }

    /// `rename(from, to)` as far as names go (`vfs_rename`): the file at
    /// `to`, if any, is unlinked, and `from`'s file is now named `to`.
    pub fn rename(&mut self, from: &str, to: &str) {
        if from == to {
            return;
        }
        let moved = self.by_path.remove(from).filter(|&id| self.named(id));
        self.unlink(to);
        if let Some(id) = moved {
            if let Some(inode) = self.inodes[id.0 as usize].as_mut() {
                inode.path = to.to_string();
            }
            self.by_path.insert(to.to_string(), id);
            return;
        }
        // A directory: every file below it is now below `to` (unlinked
        // ones too: d_path walks the renamed parent).
        let prefix = format!("{}/", from.trim_end_matches('/'));
        let to = to.trim_end_matches('/');
        let renamed = |p: &str| format!("{to}/{}", &p[prefix.len()..]);
        for inode in self.inodes.iter_mut().flatten() {
            if inode.path.starts_with(&prefix) {
                inode.path = renamed(&inode.path);
            }
        }
        let keys: Vec<String> = self
            .by_path
            .keys()
            .filter(|k| k.starts_with(&prefix))
            .cloned()
            .collect();
        for k in keys {
            let id = self.by_path.remove(&k).expect("listed");
            self.by_path.insert(renamed(&k), id);
        }
    }

    /// A fresh inode number for model-made objects.
    pub fn fresh_ino(&mut self) -> u64 {
        self.next_ino += 1;
        1_000_000 + self.next_ino
    }

    /// Adds an inode. Files reached by path are indexed by it (a later open of the
    /// same path finds the same inode).
    pub fn add_inode(&mut self, inode: Inode) -> InodeId {
        let id = InodeId(self.inode_alloc.alloc());
        if !matches!(
            inode.kind,
            InodeKind::Memfd
                | InodeKind::ShmemAnon
                | InodeKind::HugetlbAnon
                | InodeKind::SysvShm
                | InodeKind::SysvShmHuge
                | InodeKind::Secretmem
        ) {
            self.by_path.insert(inode.path.clone(), id);
        }
        let slot = id.0 as usize;
        if slot == self.inodes.len() {
            self.inodes.push(Some(inode));
        } else {
            self.inodes[slot] = Some(inode);
        }
        id
    }

    /// [`add_inode`](Self::add_inode) of an inode of the file system
    /// (`dev` and `ino` are the file system's, as `stat` gives them): when
    /// a fork copy of this table (or the table it copies) still has that
    /// inode under the same name, the two are one inode for its size and
    /// unlinked state, as the kernel's inode cache makes every open of a
    /// file one inode. (Hard links stay separate: the unlinked state is a
    /// name's.)
    pub fn add_fs_inode(&mut self, mut inode: Inode) -> InodeId {
        if let Some(shared) = self
            .icache
            .find_or_insert(inode.dev, inode.ino, &inode.path, &inode.shared)
        {
            inode.shared = shared;
        }
        self.add_inode(inode)
    }

    /// Opens a new file description on `inode` with one reference.
    /// `slots` receives the published identity.
    pub fn open(
        &mut self,
        slots: &crate::slab::Slab<FileSlot>,
        inode: InodeId,
        readable: bool,
        writable: bool,
        append: bool,
    ) -> Option<FileId> {
        let id = self.file_alloc.alloc();
        if !slots.ensure(id) {
            self.file_alloc.free(id);
            return None;
        }
        let ino = self.inode(inode).ino;
        self.inode_mut(inode).refs += 1;
        let f = File {
            inode,
            readable,
            writable,
            append,
            path_only: false,
            refs: 1,
        };
        let slot = id as usize;
        if slot == self.files.len() {
            self.files.push(Some(f));
        } else {
            self.files[slot] = Some(f);
        }
        // The slot may be recycled, and this open may run outside
        // `mmap_lock`, where no write section orders the store: a reader
        // that still holds the old file's id must see a changed count if it
        // sees the new identity (the recycled-memory rule, `ordering.rs`).
        publish_recycled(&slots.get(id).expect("ensured").ino, ino);
        Some(FileId(id))
    }

    /// `get_file`.
    pub fn get(&mut self, id: FileId) {
        self.files[id.0 as usize].as_mut().expect("live file").refs += 1;
    }

    /// Marks description `id` as opened with `O_PATH`.
    pub fn set_path_only(&mut self, id: FileId) {
        self.files[id.0 as usize].as_mut().expect("live file").path_only = true;
    }

    /// `fput`: drops a reference; the description dies with its last one,
    /// and a shmem inode with its last description. Returns the commit
    /// charge of an inode that died ([`Inode::acct_pages`]; 0 otherwise),
    /// which the caller gives back.
    pub fn put(&mut self, id: FileId) -> u64 {
        let f = self.files[id.0 as usize].as_mut().expect("live file");
        f.refs -= 1;
        if f.refs > 0 {
            return 0;
        }
        let inode = f.inode;
        self.files[id.0 as usize] = None;
        self.file_alloc.free(id.0);
        let i = self.inodes[inode.0 as usize].as_mut().expect("live inode");
        i.refs -= 1;
        // Objects without a path die with their last description; files
        // reached by path stay, looked up again by a later open.
        if i.refs == 0
            && (i.deleted()
                || matches!(
                    i.kind,
                    InodeKind::Memfd
                        | InodeKind::ShmemAnon
                        | InodeKind::HugetlbAnon
                        | InodeKind::SysvShm
                        | InodeKind::SysvShmHuge
                        | InodeKind::Secretmem
                ))
        {
            let acct = i.acct_pages;
            // A relative's unlink left its name here: it goes with the inode.
            if self.by_path.get(&i.path) == Some(&inode) {
                self.by_path.remove(&i.path);
            }
            self.inodes[inode.0 as usize] = None;
            self.inode_alloc.free(inode.0);
            return acct;
        }
        0
    }

    /// The copy of this table a fork child's address space gets
    /// (`dup_mm`; the kernel shares the `struct file`s, the model, whose
    /// tables are per address space, copies them): the same [`FileId`]s
    /// with the same references, inodes and names, each file's identity
    /// published in the child's `slots`. A shmem object's commit charge
    /// ([`Inode::acct_pages`]) stays with this table: the kernel charged
    /// it once. `None` if `slots` cannot hold the files.
    pub fn fork_copy(&self, slots: &crate::slab::Slab<FileSlot>) -> Option<FileTable> {
        let mut copy = FileTable {
            files: self.files.clone(),
            file_alloc: self.file_alloc.clone(),
            inodes: self.inodes.clone(),
            inode_alloc: self.inode_alloc.clone(),
            by_path: self.by_path.clone(),
            next_ino: self.next_ino,
            hugetlb_pool: self.hugetlb_pool.clone(),
            icache: self.icache.clone(),
        };
        for inode in copy.inodes.iter_mut().flatten() {
            inode.acct_pages = 0;
            if let Some(h) = &inode.huge {
                inode.huge = Some(h.fork_copy());
            }
        }
        for (i, f) in copy.files.iter().enumerate() {
            let Some(f) = f else { continue };
            if !slots.ensure(i as u32) {
                return None;
            }
            let ino = copy.inode(f.inode).ino;
            publish_recycled(&slots.get(i as u32).expect("ensured").ino, ino);
        }
        Some(copy)
    }

    /// Number of live file descriptions.
    pub fn live_files(&self) -> usize {
        self.file_alloc.in_use()
    }

    /// The live inodes (files reached by path stay after their last
    /// description closes; model-made objects die with it).
    pub fn live_inodes(&self) -> impl Iterator<Item = &Inode> {
        self.inodes.iter().flatten()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::slab::Slab;

    /// A fork copy and its original are one inode: a size set or an unlink
    /// on one side is seen on the other, and the unlinked name is no longer
    /// found there (a later open makes another file); the name goes with
    /// the inode's last description.
    #[test]
    fn fork_copies_share_size_and_unlink() {
        let slots = Slab::<FileSlot>::with_capacity(16);
        let mut parent = FileTable::default();
        let id = parent.add_inode(Inode::new(7, (8, 1), 4096, "/tmp/f".into(), InodeKind::Regular));
        let f = parent.open(&slots, id, true, true, false).expect("open");
        let child_slots = Slab::<FileSlot>::with_capacity(16);
        let mut child = parent.fork_copy(&child_slots).expect("copy");
        child.inode_mut(id).set_size(3 * 4096);
        assert_eq!(parent.inode(id).size(), 3 * 4096);
        parent.inode_mut(id).set_size(1);
        assert_eq!(child.inode(id).size(), 1);
        assert!(child.unlink("/tmp/f"));
        assert!(parent.inode(id).deleted());
        assert_eq!(parent.lookup_path("/tmp/f"), None);
        // A relative's unlink left the name in the parent's index: it goes
        // when the inode dies, and the slot's next inode is not found by it.
        assert_eq!(parent.put(f), 0);
        assert_eq!(parent.live_inodes().count(), 0);
        let other = parent.add_inode(Inode::new(9, (8, 1), 0, "/tmp/g".into(), InodeKind::Regular));
        assert_eq!(other, id);
        assert_eq!(parent.lookup_path("/tmp/f"), None);
        assert_eq!(parent.lookup_path("/tmp/g"), Some(other));
    }

    #[test]
    fn file_system_inodes_found_after_fork_are_one() {
        let slots = Slab::<FileSlot>::with_capacity(16);
        let mut parent = FileTable::default();
        let child_slots = Slab::<FileSlot>::with_capacity(16);
        let mut child = parent.fork_copy(&child_slots).expect("copy");
        let fs = |ino, size| Inode::new(ino, (8, 1), size, format!("/tmp/{ino}"), InodeKind::Regular);
        // Each opens inode 7 on its own: one size.
        let c = child.add_fs_inode(fs(7, 4096));
        let p = parent.add_fs_inode(fs(7, 8192));
        parent.inode_mut(p).set_size(5);
        assert_eq!(child.inode(c).size(), 5);
        // Another number, another device, or an inode added without its
        // file system identity: separate.
        let other = parent.add_fs_inode(fs(8, 1));
        let dev = parent.add_fs_inode(Inode::new(7, (8, 2), 3, "/mnt/7".into(), InodeKind::Regular));
        let own = parent.add_inode(fs(7, 2));
        assert_eq!((parent.inode(other).size(), parent.inode(dev).size()), (1, 3));
        assert_eq!((parent.inode(own).size(), child.inode(c).size()), (2, 5));
        // Another name of the same number (a hard link): separate, so
        // that removing one name does not show the other deleted.
        let link = child.add_fs_inode(Inode::new(7, (8, 1), 7, "/tmp/link".into(), InodeKind::Regular));
        assert_eq!(child.inode(link).size(), 7);
        // Once unlinked, the number found again is a new file's.
        assert!(child.unlink("/tmp/7"));
        let again = child.add_fs_inode(fs(7, 64));
        assert!(!child.inode(again).deleted());
        assert!(parent.inode(p).deleted());
        assert_eq!(parent.inode(p).size(), 5);
        // A file reached by path outlives its last description (the
        // dentry cache): still the relative's inode.
        let f = parent.open(&slots, other, true, false, false).expect("open");
        assert_eq!(parent.put(f), 0);
        let eight = child.add_fs_inode(fs(8, 99));
        assert_eq!(child.inode(eight).size(), 1);
    }
}
