//! System V shared memory (`ipc/shm.c`, `ipc/util.c`): `shmget`,
//! `shmat`, `shmdt` and `shmctl(IPC_RMID)`, as far as they shape an
//! address space.
//!
//! A segment lives in an IPC namespace ([`ShmNs`]), shared by a task and
//! its fork children. Each `shmat` maps a new description of the segment
//! (`alloc_file_clone`): a shmem object named `/SYSV<key> (deleted)` on
//! device `00:01` whose inode number is the segment's id, so that two
//! attaches never merge. `shm_nattch` is the number of VMAs that map the
//! segment in the namespace's address spaces; it is counted when asked. A
//! segment removed with `IPC_RMID` while attached is destroyed once no
//! VMA maps it (`shm_close`): the model notices at the end of the call
//! that unmapped its last attach ([`ShmNs::reap_removed`], which
//! [`Task::apply`](crate::Task::apply) and `Task`'s unmapping calls run),
//! so its commit charge is back before the next call.
//!
//! A `SHM_HUGETLB` segment is a hugetlbfs object instead (device
//! `00:11`, [`InodeKind::SysvShmHuge`]): `shmget` reserves its huge pages
//! from the pool, its attaches share its pages and reserve nothing more,
//! and it charges no commitment.
//!
//! Not modeled: the `shmctl` commands other than `IPC_RMID` (they do not change an address
//! space), `SHM_LOCK`, and the sysctls `kernel.shmmax`, `shmall` and
//! `shmmni` other than their defaults ([`ShmNs::new`]).

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};

use mm_core::file::{Inode, InodeKind};
use mm_core::hugetlb::{HugeInode, hstate_index};
use mm_core::{BarrierPolicy, MmStruct, VmaView};

use crate::mmap::{MapFile, do_mmap};
use crate::uapi::*;
use crate::util::{page_align, vm_enough_memory, vm_unacct_memory};

/// `IPC_PRIVATE`: a key that always makes a new segment.
pub const IPC_PRIVATE: i64 = 0;
/// `IPC_CREAT`.
pub const IPC_CREAT: u64 = 0o1000;
/// `IPC_EXCL`.
pub const IPC_EXCL: u64 = 0o2000;
/// `SHM_HUGETLB` (`shmget`).
pub const SHM_HUGETLB: u64 = 0o4000;
/// `SHM_NORESERVE` (`shmget`).
pub const SHM_NORESERVE: u64 = 0o10000;
/// `SHM_RDONLY` (`shmat`).
pub const SHM_RDONLY: u64 = 0o10000;
/// `SHM_RND` (`shmat`).
pub const SHM_RND: u64 = 0o20000;
/// `SHM_REMAP` (`shmat`).
pub const SHM_REMAP: u64 = 0o40000;
/// `SHM_EXEC` (`shmat`).
pub const SHM_EXEC: u64 = 0o100000;
/// `IPC_RMID` (`shmctl`).
pub const IPC_RMID: i64 = 0;

/// `SHMLBA` on x86-64: the page size.
const SHMLBA: u64 = PAGE_SIZE;
/// `IPCMNI`: ids are `seq << 15 | idx`.
const IPCMNI_SHIFT: u32 = 15;
/// `ipcid_seq_max()`.
const SEQ_MAX: u32 = (i32::MAX as u32) >> IPCMNI_SHIFT;

/// One segment (`struct shmid_kernel`).
#[derive(Clone, Debug)]
struct Segment {
    /// `shm_perm.key` (`IPC_PRIVATE` once removed).
    key: i64,
    /// The key the segment was created with, which names its file.
    name_key: i64,
    /// [`MmStruct::id`] of the address space charged for it.
    creator: u32,
    size: u64,
    /// `shm_perm.mode & 0777`.
    mode: u32,
    uid: u32,
    gid: u32,
    cuid: u32,
    cgid: u32,
    /// `SHM_DEST`: removed, destroyed at the last detach.
    dest: bool,
    /// Pages charged to the creator's commitment (0 for `SHM_NORESERVE`
    /// and `SHM_HUGETLB`).
    charged: u64,
    /// `SHM_HUGETLB`: the huge page size and the hugetlbfs object's pool
    /// state (its reservations, made by `shmget`, and its pages), shared
    /// by every attach; it goes back to the pool with the last of them.
    huge: Option<(u64, Arc<HugeInode>)>,
}

/// An IPC namespace's shared memory (`ns->ids[IPC_SHM_IDS]` and the
/// `shm_ctl*` limits), with the address spaces that may map its segments.
pub struct ShmNs<P: BarrierPolicy> {
    segs: BTreeMap<i64, Segment>,
    /// `ids->last_idx` and `ids->seq` (`ipc_idr_alloc`).
    last_idx: i64,
    seq: u32,
    /// `ns->shm_tot`: pages of all segments.
    tot: u64,
    /// `kernel.shmmax`.
    pub shmmax: u64,
    /// `kernel.shmall` (pages).
    pub shmall: u64,
    /// `kernel.shmmni`.
    pub shmmni: u64,
    mms: Vec<Weak<MmStruct<P>>>,
}

/// The VMAs of `mm` that map System V segment `id` (its attaches there).
fn attaches_in<P: BarrierPolicy>(mm: &MmStruct<P>, id: i64) -> usize {
    let r = mm.read();
    let files = r.files();
    let mut n = 0;
    r.for_each_vma_ref(|v| {
        if let Some(f) = v.file {
            let i = files.file_inode(f);
            n += usize::from(i.is_sysv_shm() && i.ino as i64 == id);
        }
    });
    n
}

impl<P: BarrierPolicy> Default for ShmNs<P> {
    fn default() -> Self {
        Self::new()
    }
}

impl<P: BarrierPolicy> ShmNs<P> {
    /// A new namespace with the kernel's default limits (`SHMMAX`,
    /// `SHMALL`, `SHMMNI` of `include/uapi/linux/shm.h`).
    pub fn new() -> Self {
        ShmNs {
            segs: BTreeMap::new(),
            last_idx: -1,
            seq: 0,
            tot: 0,
            shmmax: u64::MAX - (1 << 24),
            shmall: u64::MAX - (1 << 24),
            shmmni: 4096,
            mms: Vec::new(),
        }
    }

    /// Notes that `mm` is in this namespace (a task or fork child), so
    /// that its VMAs count in `shm_nattch`.
    pub fn register(&mut self, mm: &Arc<MmStruct<P>>) {
        self.mms.retain(|w| w.strong_count() > 0);
        if !self.mms.iter().any(|w| w.as_ptr() == Arc::as_ptr(mm)) {
            self.mms.push(Arc::downgrade(mm));
        }
    }

    /// `shm_nattch` of segment `id`: the VMAs mapping it.
    fn nattch(&self, id: i64) -> usize {
        self.mms
            .iter()
            .filter_map(Weak::upgrade)
            .map(|mm| attaches_in(&mm, id))
            .sum()
    }

    /// Whether segment `id` was removed (`IPC_RMID`, waiting for its last
    /// detach) and no address space but `mm` maps it.
    pub fn removed_and_attached_only_by(&self, id: i64, mm: &Arc<MmStruct<P>>) -> bool {
        if !self.segs.get(&id).is_some_and(|s| s.dest) {
            return false;
        }
        self.mms
            .iter()
            .filter_map(Weak::upgrade)
            .filter(|m| !Arc::ptr_eq(m, mm))
            .all(|m| attaches_in(&m, id) == 0)
    }

    /// Destroys the removed segments nothing maps any more, when one is
    /// waiting for its last detach (cheap otherwise): for the end of any call that may
    /// have unmapped it (`munmap`, `mremap`, a fixed `mmap` over it, a
    /// fork child's exit).
    pub fn reap_removed(&mut self) {
        if self.has_removed() {
            self.reap();
        }
    }

    /// Whether a removed segment waits for its last detach.
    pub fn has_removed(&self) -> bool {
        self.segs.values().any(|s| s.dest)
    }

    /// Destroys the removed segments nothing maps any more (`shm_close` →
    /// `shm_destroy`).
    fn reap(&mut self) {
        let dead: Vec<i64> = self
            .segs
            .iter()
            .filter(|(_, s)| s.dest)
            .map(|(&id, _)| id)
            .filter(|&id| self.nattch(id) == 0)
            .collect();
        for id in dead {
            self.destroy(id);
        }
    }

    /// `shm_destroy`: frees the id, the pages and the commitment
    /// (`shmem_unacct_size`, given back to the address space charged).
    fn destroy(&mut self, id: i64) {
        if let Some(s) = self.segs.remove(&id) {
            self.tot -= s.size.div_ceil(PAGE_SIZE);
            if s.charged != 0
                && let Some(mm) = self.mms.iter().filter_map(Weak::upgrade).find(|m| m.id() == s.creator)
            {
                let mut w = mm.write();
                vm_unacct_memory(w.st(), s.charged);
                w.st().committed_stranded -= s.charged;
            }
        }
    }

    /// `ipc_idr_alloc`: the next id, cycling through the indices.
    fn alloc_id(&mut self) -> Option<i64> {
        let ipc_mni = 1i64 << IPCMNI_SHIFT;
        let used: std::collections::BTreeSet<i64> = self.segs.keys().map(|id| id & (ipc_mni - 1)).collect();
        let start = (self.last_idx + 1).rem_euclid(ipc_mni);
        let idx = (0..ipc_mni)
            .map(|k| (start + k) % ipc_mni)
            .find(|i| !used.contains(i))?;
        if idx <= self.last_idx {
            self.seq += 1;
            if self.seq >= SEQ_MAX {
                self.seq = 0;
            }
        }
        self.last_idx = idx;
        Some(((self.seq as i64) << IPCMNI_SHIFT) + idx)
    }

    /// Takes `id` as the next allocated one (a replayed `shmget`'s).
    fn take_id(&mut self, id: i64) {
        self.last_idx = id & ((1 << IPCMNI_SHIFT) - 1);
        self.seq = (id >> IPCMNI_SHIFT) as u32;
    }
}

/// The caller's configuration (credentials, capabilities, overcommit).
fn cfg_of<P: BarrierPolicy>(mm: &MmStruct<P>) -> mm_core::MmConfig {
    mm.read().state().cfg.clone()
}

/// `ipcperms`: whether the caller may access `s` for `flag`'s permission
/// bits (the low nine; `CAP_IPC_OWNER` overrides).
fn ipcperms(cfg: &mm_core::MmConfig, s: &Segment, flag: u64) -> bool {
    let requested = ((flag >> 6) | (flag >> 3) | flag) as u32 & 7;
    let granted = if cfg.fsuid == s.uid || cfg.fsuid == s.cuid {
        s.mode >> 6
    } else if in_group(cfg, s.gid) || in_group(cfg, s.cgid) {
        s.mode >> 3
    } else {
        s.mode
    };
    requested & !granted & 7 == 0 || cfg.cap_ipc_owner
}

fn in_group(cfg: &mm_core::MmConfig, gid: u32) -> bool {
    cfg.fsgid == gid || cfg.groups.contains(&gid)
}

/// `ksys_shmget` → `ipcget` (`ipcget_new`, `ipcget_public`) and `newseg`.
/// `want_id` is the id a recording returned: a new segment takes it, and
/// a key the model does not know is taken to name an existing segment of
/// the size asked (one created before the recording).
pub fn ksys_shmget<P: BarrierPolicy>(
    ns: &mut ShmNs<P>,
    mm: &Arc<MmStruct<P>>,
    key: i64,
    size: u64,
    shmflg: u64,
    want_id: Option<i64>,
) -> Result<i64, Errno> {
    ns.register(mm);
    ns.reap();
    let key = key as i32 as i64;
    if key != IPC_PRIVATE {
        let found = ns
            .segs
            .iter()
            .find(|(_, s)| s.key == key && !s.dest)
            .map(|(&id, s)| (id, s.clone()));
        if let Some((id, s)) = found {
            if shmflg & IPC_CREAT != 0 && shmflg & IPC_EXCL != 0 {
                return Err(Errno::EEXIST);
            }
            // shm_more_checks, then ipc_check_perms.
            if s.size < size {
                return Err(Errno::EINVAL);
            }
            if !ipcperms(&cfg_of(mm), &s, shmflg) {
                return Err(Errno::EACCES);
            }
            return Ok(id);
        }
        if shmflg & IPC_CREAT == 0 && want_id.is_none() {
            return Err(Errno::ENOENT);
        }
    }
    newseg(ns, mm, key, size, shmflg, want_id)
}

/// `newseg`: a new segment of `size` bytes.
fn newseg<P: BarrierPolicy>(
    ns: &mut ShmNs<P>,
    mm: &Arc<MmStruct<P>>,
    key: i64,
    size: u64,
    shmflg: u64,
    want_id: Option<i64>,
) -> Result<i64, Errno> {
    if size < 1 || size > ns.shmmax {
        return Err(Errno::EINVAL);
    }
    let numpages = size.div_ceil(PAGE_SIZE);
    if numpages.checked_mul(PAGE_SIZE).is_none_or(|b| b < size) {
        return Err(Errno::ENOSPC);
    }
    if ns.tot.checked_add(numpages).is_none_or(|t| t > ns.shmall) {
        return Err(Errno::ENOSPC);
    }
    let cfg = cfg_of(mm);
    let huge = if shmflg & SHM_HUGETLB != 0 {
        Some(hugetlb_file_setup(mm, &cfg, size, shmflg)?)
    } else {
        None
    };
    // shmem_kernel_file_setup → shmem_acct_size: charged unless
    // SHM_NORESERVE asks otherwise (and overcommit allows it); a hugetlb
    // segment is not shmem and charges nothing.
    let noreserve = shmflg & SHM_NORESERVE != 0 && cfg.overcommit != mm_core::Overcommit::Never;
    let charged = if noreserve || huge.is_some() {
        0
    } else {
        let mut w = mm.write();
        if !vm_enough_memory(w.st(), numpages) {
            return Err(Errno::ENOMEM);
        }
        // No unmap gives it back: the segment's destruction does.
        w.st().committed_stranded += numpages;
        drop(w);
        numpages
    };
    // ipc_addid.
    let id = if ns.segs.len() as u64 >= ns.shmmni.min(1 << IPCMNI_SHIFT) {
        None
    } else if let Some(id) = want_id {
        ns.take_id(id);
        Some(id)
    } else {
        ns.alloc_id()
    };
    let Some(id) = id else {
        if charged != 0 {
            let mut w = mm.write();
            vm_unacct_memory(w.st(), charged);
            w.st().committed_stranded -= charged;
        }
        return Err(Errno::ENOSPC);
    };
    ns.tot += numpages;
    ns.segs.insert(
        id,
        Segment {
            key,
            name_key: key,
            creator: mm.id(),
            size,
            mode: (shmflg & 0o777) as u32,
            uid: cfg.fsuid,
            gid: cfg.fsgid,
            cuid: cfg.fsuid,
            cgid: cfg.fsgid,
            dest: false,
            charged,
            huge,
        },
    );
    Ok(id)
}

/// `ALIGN(size, huge)` as the kernel computes it, wrapping past 2^64.
fn huge_align(size: u64, huge: u64) -> u64 {
    size.wrapping_add(huge - 1) & !(huge - 1)
}

/// `SHM_HUGE_SHIFT`: where `shmget`'s huge page size (its log2) sits.
const SHM_HUGE_SHIFT: u64 = 26;
/// `SHM_HUGE_MASK`.
const SHM_HUGE_MASK: u64 = 0x3f;

/// `newseg`'s `SHM_HUGETLB` part and `hugetlb_file_setup`
/// (`fs/hugetlbfs/inode.c`): the huge page size from the flags
/// (`hstate_sizelog`: the default 2 MiB, or 2 MiB or 1 GiB by log2; else
/// `EINVAL`); then `can_do_hugetlb_shm` (`CAP_IPC_LOCK`, or membership of
/// `vm.hugetlb_shm_group`; else `EPERM`); then the reservation of every
/// huge page of the rounded-up size, unless `SHM_NORESERVE` (whatever the
/// overcommit mode), `ENOMEM` past the pool's unreserved pages.
fn hugetlb_file_setup<P: BarrierPolicy>(
    mm: &Arc<MmStruct<P>>,
    cfg: &mm_core::MmConfig,
    size: u64,
    shmflg: u64,
) -> Result<(u64, Arc<HugeInode>), Errno> {
    let huge_size = match (shmflg >> SHM_HUGE_SHIFT) & SHM_HUGE_MASK {
        0 | 21 => PMD_SIZE,
        30 => 1 << 30,
        _ => return Err(Errno::EINVAL),
    };
    let group = cfg.hugetlb_shm_group;
    if !cfg.cap_ipc_lock && cfg.fsgid != group && !cfg.groups.contains(&group) {
        return Err(Errno::EPERM);
    }
    // ALIGN(size, huge page size) in a size_t: it wraps to 0 for a size
    // within a huge page of 2^64 (shmmax allows that much).
    let pages = huge_align(size, huge_size) / huge_size;
    let pool = mm.files().hugetlb_pool.clone();
    let inode = HugeInode::new(pool, hstate_index(huge_size));
    if shmflg & SHM_NORESERVE == 0 {
        let mut m = inode.maps();
        let mut pool = inode.pool.lock();
        let h = &mut pool[inode.h];
        if h.resv + pages > h.free {
            return Err(Errno::ENOMEM);
        }
        h.resv += pages;
        m.reserved.extend(0..pages);
    }
    Ok((huge_size, inode))
}

/// `do_shmat`: maps segment `shmid` at `addr` (0: anywhere) and returns
/// the address.
pub fn do_shmat<P: BarrierPolicy>(
    ns: &mut ShmNs<P>,
    mm: &Arc<MmStruct<P>>,
    shmid: i64,
    addr: u64,
    shmflg: u64,
) -> Result<u64, Errno> {
    ns.register(mm);
    ns.reap();
    let shmid = shmid as i32 as i64;
    if shmid < 0 {
        return Err(Errno::EINVAL);
    }
    let mut addr = addr;
    let mut flags = MAP_SHARED;
    if addr != 0 {
        if addr & (SHMLBA - 1) != 0 {
            if shmflg & SHM_RND == 0 {
                return Err(Errno::EINVAL);
            }
            addr &= !(SHMLBA - 1);
            if addr == 0 && shmflg & SHM_REMAP != 0 {
                return Err(Errno::EINVAL);
            }
        }
        flags |= MAP_FIXED;
    } else if shmflg & SHM_REMAP != 0 {
        return Err(Errno::EINVAL);
    }
    let (mut prot, mut acc_mode) = if shmflg & SHM_RDONLY != 0 {
        (PROT_READ, 0o444)
    } else {
        (PROT_READ | PROT_WRITE, 0o666)
    };
    if shmflg & SHM_EXEC != 0 {
        prot |= PROT_EXEC;
        acc_mode |= 0o111;
    }
    // shm_obtain_object_check: an id not in use, or of another sequence.
    let Some(seg) = ns.segs.get(&shmid).cloned() else {
        return Err(Errno::EINVAL);
    };
    if !ipcperms(&cfg_of(mm), &seg, acc_mode) {
        return Err(Errno::EACCES);
    }
    // The size of the segment's file: a hugetlb one's is whole huge pages.
    let size = match &seg.huge {
        Some((h, _)) => huge_align(seg.size, *h),
        None => seg.size,
    };
    // alloc_file_clone: a description of its own.
    let file = {
        let mut files = mm.files();
        let (kind, dev) = if seg.huge.is_some() {
            (InodeKind::SysvShmHuge, (0, 0x11))
        } else {
            (InodeKind::SysvShm, (0, 1))
        };
        let mut inode = Inode::new(
            shmid as u64,
            dev,
            size,
            format!("/SYSV{:08x}", seg.name_key as u32),
            kind,
        );
        inode.set_deleted(true);
        if let Some((h, state)) = &seg.huge {
            inode.huge_size = *h;
            inode.huge = Some(state.clone());
        }
        // shm_file_operations has its own get_unmapped_area and the VMA
        // is not shmem's (shm_vm_ops): mremap moves it with others only
        // alone (vma_multi_allowed).
        inode.own_unmapped_area = true;
        let ino = files.add_inode(inode);
        files
            .open(mm.file_slots(), ino, true, shmflg & SHM_RDONLY == 0, false)
            .ok_or(Errno::ENFILE)?
    };
    let desc = MapFile::describe(mm, file);
    let r = {
        let mut w = mm.write();
        if addr != 0
            && shmflg & SHM_REMAP == 0
            && (addr.checked_add(size).is_none() || w.find_vma_intersection(addr, addr + size).is_some())
        {
            Err(Errno::EINVAL)
        } else {
            do_mmap(&mut w, Some(&desc), addr, size, prot, flags, 0)
        }
    };
    mm.files().put(file);
    let m = r?;
    if m.populate != 0 {
        crate::memory::mm_populate(mm, m.addr, m.populate);
    }
    ns.reap();
    Ok(m.addr)
}

/// `ksys_shmdt`: unmaps the segment attached at `addr`, with the
/// fragments `mprotect` and `munmap` left of it (those at their offset
/// from `addr`, within the segment's size, of the same attach).
pub fn ksys_shmdt<P: BarrierPolicy>(ns: &mut ShmNs<P>, mm: &Arc<MmStruct<P>>, addr: u64) -> Result<(), Errno> {
    ns.register(mm);
    if addr & !PAGE_MASK != 0 {
        return Err(Errno::EINVAL);
    }
    let mut w = mm.write();
    let is_fragment = |w: &mm_core::MmWrite<'_, P>, v: &mm_core::Vma| {
        v.file.is_some_and(|f| w.files().file_inode(f).is_sysv_shm())
            && v.start.wrapping_sub(addr) / PAGE_SIZE == v.pgoff
    };
    let mut cursor = addr;
    let mut found = None;
    while let Some(id) = w.find_vma(cursor) {
        let v = *w.vma_ref(id);
        cursor = v.end;
        if is_fragment(&w, &v) {
            let size = w.files().file_inode(v.file.expect("shm file")).size();
            // The file stays known while this VMA holds it; do_munmap of a
            // whole VMA cannot fail.
            let _ = crate::vma_region::do_vmi_munmap(&mut w, v.start, v.end - v.start);
            found = Some((v.file, size));
            break;
        }
    }
    let Some((file, size)) = found else {
        drop(w);
        ns.reap();
        return Err(Errno::EINVAL);
    };
    let size = page_align(size);
    while let Some(id) = w.find_vma(cursor) {
        let v = *w.vma_ref(id);
        if (v.end - addr) as i64 > size as i64 {
            break;
        }
        cursor = v.end;
        if is_fragment(&w, &v) && v.file == file {
            let _ = crate::vma_region::do_vmi_munmap(&mut w, v.start, v.end - v.start);
        }
    }
    drop(w);
    ns.reap();
    Ok(())
}

/// `shmctl(shmid, IPC_RMID, …)` (`shmctl_down`, `do_shm_rmid`): the owner,
/// the creator or `CAP_SYS_ADMIN` removes the segment; one still attached
/// keeps its id until its last detach, and its key is freed at once.
pub fn shmctl_rmid<P: BarrierPolicy>(ns: &mut ShmNs<P>, mm: &Arc<MmStruct<P>>, shmid: i64) -> Result<(), Errno> {
    ns.register(mm);
    ns.reap();
    let shmid = shmid as i32 as i64;
    if shmid < 0 {
        return Err(Errno::EINVAL);
    }
    let cfg = cfg_of(mm);
    let Some(seg) = ns.segs.get_mut(&shmid) else {
        return Err(Errno::EINVAL);
    };
    if cfg.fsuid != seg.uid && cfg.fsuid != seg.cuid && !cfg.cap_sys_admin {
        return Err(Errno::EPERM);
    }
    seg.dest = true;
    seg.key = IPC_PRIVATE;
    ns.reap();
    Ok(())
}
