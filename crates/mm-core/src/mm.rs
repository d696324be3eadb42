//! `struct mm_struct` (`include/linux/mm_types.h`) and the VMA-tree
//! primitives of `mm/vma.h` that the mutators in `mm-ops` are built from.
//!
//! This module holds the writer-side
//! and lockless state ([`MmState`], [`MmShared`]) and [`MmStruct`] with
//! its lockless accessors; the configuration ([`MmConfig`]) is in `config`;
//! the locked views are split by concern: `guard`
//! (the sections: [`MmRead`], [`MmWrite`], `mmap_write_downgrade`) and
//! `view` (what both sections read, [`VmaView`], and what a fault may
//! change under the read lock, [`FaultView`]).

use crate::file::{FileId, FileSlot, FileTable};
use crate::mmap_lock::MmapLock;
use crate::ordering::{BarrierPolicy, Upstream};
use crate::slab::Slab;
use crate::sync::{Arc, AtomicU32, AtomicU64, Mutex, MutexGuard};
use crate::tree::{Tree, TreeShared};
use crate::vm_flags::VmFlags;
use crate::vma::{Vma, VmaId, VmaSlot};
use crate::vma_cache::VmaCache;

mod config;
mod guard;
mod view;

pub use config::{
    DEFAULT_RLIMIT_MAX, DEFAULT_START_BRK, FsCred, MMAP_BASE_NORANDOM, MmConfig, Overcommit, RLIM_NLIMITS, ShmemHuge,
    TASK_SIZE_4LEVEL, ThpMode, Vsyscall,
};
pub use guard::{MmRead, MmWrite, NoMem};
pub use view::{FaultView, VmaView};

/// Writer-side state of the address space, behind `mmap_lock`.
pub struct MmState {
    /// The writer's copy of the VMA tree.
    pub(crate) tree: Tree,
    /// The writer's copy of every VMA, indexed by [`VmaId`] (`anon_vma`
    /// lives in the published slot, which faults update without the write
    /// lock).
    pub(crate) vmas: Vec<Vma>,
    /// VMAs this address space has linked (its share of the VMA cache).
    pub(crate) vma_live: usize,
    /// Where the last write section's position was (a hint for the next
    /// section's first lookup, checked before use like any held position).
    pub(crate) last_vmi: crate::vma_iter::VmaIter,
    next_anon_vma: AtomicU32,
    /// `mm->page_table_lock`: serializes `anon_vma` assignment by faults.
    page_table_lock: Mutex<()>,
    /// `mm->map_count`.
    pub map_count: u32,
    /// `mm->total_vm` (pages).
    pub total_vm: u64,
    /// `mm->locked_vm` (pages).
    pub locked_vm: u64,
    /// `mm->data_vm` (pages).
    pub data_vm: u64,
    /// `mm->exec_vm` (pages).
    pub exec_vm: u64,
    /// `mm->stack_vm` (pages).
    pub stack_vm: u64,
    /// Pages this mm has charged to the commit limit (`vm_acct_memory`).
    pub committed: u64,
    /// The part of [`committed`](Self::committed) that no unmap gives
    /// back: stack growth of a VMA without `VM_ACCOUNT`, which
    /// `acct_stack_growth` charges while `munmap` gives back only the
    /// pages of `VM_ACCOUNT` VMAs (the kernel's own drift of
    /// `Committed_AS`), for consistency checks.
    pub committed_stranded: u64,
    /// The part of [`locked_vm`](Self::locked_vm) no VMA holds any more:
    /// an `MREMAP_DONTUNMAP` move of a `VM_LOCKED` VMA counts the copy's
    /// pages and clears `VM_LOCKED` on the whole source VMA, unsplit,
    /// without taking its pages off (`dontunmap_complete`; on this 6.18
    /// host `VmLck` went from 256 to 512 kB when all of a 256 kB locked
    /// mapping moved so, and to 320 kB when 64 kB of its middle did, the
    /// source left whole and unlocked — as in the model).
    pub locked_vm_stranded: u64,
    /// `mm->start_brk`.
    pub start_brk: u64,
    /// `mm->brk`.
    pub brk: u64,
    /// `mm->start_data`.
    pub start_data: u64,
    /// `mm->end_data`.
    pub end_data: u64,
    /// `mm->start_stack`.
    pub start_stack: u64,
    /// `mm->def_flags`.
    pub def_flags: VmFlags,
    /// Pages holding a guard marker (`MADV_GUARD_INSTALL`): page-table
    /// state, kept as disjoint `start -> end` ranges. Faults on them raise
    /// `SIGSEGV`; unmapping drops them, mremap moves them.
    pub guard_pages: std::collections::BTreeMap<u64, u64>,
    /// `mm->context.pkey_allocation_map` (x86): bit `k` set when
    /// protection key `k` is allocated. With protection keys, key 0 is
    /// allocated at creation; without them the map starts empty
    /// (`init_new_context` sets it only with `X86_FEATURE_OSPKE`).
    pub pkey_allocation_map: u16,
    /// `mm->context.execute_only_pkey` (x86): -1 until the first
    /// execute-only mapping takes a key, with protection keys; 0 without
    /// them (the context is left zeroed).
    pub execute_only_pkey: i32,
    /// The configuration.
    pub cfg: MmConfig,
}

/// Lockless-readable state: published VMAs, tree and files.
pub struct MmShared {
    pub(crate) tree: TreeShared,
    pub(crate) vmas: Arc<VmaCache>,
    pub(crate) files: Slab<FileSlot>,
    /// This address space's identity, as VMAs' `vm_mm` hold it.
    pub(crate) id: u32,
    /// `TASK_SIZE` (fixed at creation).
    task_size: u64,
    /// `MmConfig::thp_enabled`, readable without `mmap_lock` (faults under
    /// the VMA lock read it).
    thp_enabled: ThpMode,
    /// `mm->brk`, `start_brk` and `start_stack` as of the last write
    /// section (for `/proc/PID/maps` without `mmap_lock`).
    pub(crate) brk: AtomicU64,
    pub(crate) start_brk: AtomicU64,
    pub(crate) start_stack: AtomicU64,
    /// Allocation-failure injection.
    pub(crate) fail_nth: crate::failslab::FailNth,
    /// The credentials file permissions are checked against (fixed at
    /// creation), readable without `mmap_lock`. Boxed: inline, its 40
    /// bytes moved the hot fields and cost the write path 2 instructions
    /// per operation (`cargo xtask icount`: 1306 -> 1308 for mmap+munmap).
    cred: Box<FsCred>,
    /// `MmConfig::rlimit_nofile`, as `setrlimit` last set it.
    rlimit_nofile: AtomicU64,
    /// `MmConfig::rlimit_fsize`, as `setrlimit` last set it.
    rlimit_fsize: AtomicU64,
    /// `MmConfig::pkeys` (fixed at creation).
    pub(crate) pkeys: bool,
    /// The PKRU register of the running thread ([`MmStruct::switch_thread`]
    /// saves and loads the others'), which faults read without `mmap_lock`.
    pub(crate) pkru: AtomicU32,
    /// `MmConfig::vsyscall` (fixed at creation).
    vsyscall: Vsyscall,
}

/// `init_pkru_value` (`arch/x86/mm/pkeys.c`): the PKRU a process starts
/// with, every key but 0 access-disabled (`PKRU_AD_BIT` of keys 1-15).
pub const INIT_PKRU: u32 = 0x5555_5554;

/// Identities of address spaces (never 0, which means "no mm").
static NEXT_MM_ID: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);

/// The threads of an address space as far as its register state matters
/// to it: PKRU is per thread (its XSAVE state, switched with the thread),
/// so the address space's register ([`MmStruct::pkru`]) is the running
/// thread's, and the others' are saved here.
#[derive(Debug, Default)]
struct Threads {
    /// The thread whose PKRU is in the register, once one was named.
    running: Option<u32>,
    /// The saved PKRU of the other threads.
    saved: std::collections::HashMap<u32, u32>,
}

/// `struct mm_struct`, generic over the `mm_lock_seq` barrier policy.
pub struct MmStruct<P: BarrierPolicy = Upstream> {
    pub(crate) shared: MmShared,
    lock: MmapLock<MmState, P>,
    files: Mutex<FileTable>,
    /// Boxed: off the write path's cache lines.
    threads: Box<Mutex<Threads>>,
}

impl<P: BarrierPolicy> MmStruct<P> {
    /// An empty address space.
    pub fn new(cfg: MmConfig) -> Self {
        Self::with_lock_seq(cfg, 0)
    }

    /// An empty address space whose `mm_lock_seq` starts at `seq` (even),
    /// for tests of the count's wraparound at 2^32.
    ///
    /// # Panics
    /// If `seq` is odd.
    pub fn with_lock_seq(cfg: MmConfig, seq: u32) -> Self {
        let cache = VmaCache::new(cfg.vma_capacity);
        Self::with_cache_and_seq(cfg, cache, seq)
    }

    /// An empty address space that allocates its VMAs from `cache`, which
    /// other address spaces may share (as all share `vm_area_cachep`).
    pub fn with_cache(cfg: MmConfig, cache: Arc<VmaCache>) -> Self {
        Self::with_cache_and_seq(cfg, cache, 0)
    }

    fn with_cache_and_seq(cfg: MmConfig, cache: Arc<VmaCache>, seq: u32) -> Self {
        let cap = cfg.vma_capacity;
        let task_size = cfg.task_size;
        let thp_enabled = cfg.thp_enabled;
        let cred = Box::new(cfg.fs_cred());
        let rlimit_nofile = cfg.rlimit_nofile;
        let rlimit_fsize = cfg.rlimit_fsize;
        let pkeys = cfg.pkeys;
        let vsyscall = cfg.vsyscall;
        let (start_brk, start_stack) = (cfg.start_brk, cfg.start_stack);
        let hs = |i: usize| crate::hugetlb::HState {
            free: cfg.hugetlb_free[i],
            resv: cfg.hugetlb_resv[i],
        };
        let pool = crate::hugetlb::HugePool::new([hs(0), hs(1)]);
        let state = MmState {
            tree: Tree::default(),
            vmas: Vec::new(),
            vma_live: 0,
            last_vmi: Default::default(),
            next_anon_vma: AtomicU32::new(0),
            page_table_lock: Mutex::new(()),
            map_count: 0,
            total_vm: 0,
            locked_vm: 0,
            data_vm: 0,
            exec_vm: 0,
            stack_vm: 0,
            committed: 0,
            committed_stranded: 0,
            locked_vm_stranded: 0,
            start_brk: cfg.start_brk,
            brk: cfg.start_brk,
            start_data: 0,
            end_data: 0,
            start_stack: cfg.start_stack,
            def_flags: VmFlags::NONE,
            guard_pages: std::collections::BTreeMap::new(),
            pkey_allocation_map: u16::from(pkeys),
            execute_only_pkey: if pkeys { -1 } else { 0 },
            cfg,
        };
        MmStruct {
            shared: MmShared {
                tree: TreeShared::new(if cfg!(loom) { cap + 4 } else { cap + 64 }),
                vmas: cache,
                files: Slab::with_capacity(if cfg!(loom) { cap } else { cap + 1024 }),
                id: NEXT_MM_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                task_size,
                thp_enabled,
                cred,
                rlimit_nofile: AtomicU64::new(rlimit_nofile),
                rlimit_fsize: AtomicU64::new(rlimit_fsize),
                pkeys,
                pkru: AtomicU32::new(if pkeys { INIT_PKRU } else { 0 }),
                vsyscall,
                brk: AtomicU64::new(start_brk),
                start_brk: AtomicU64::new(start_brk),
                start_stack: AtomicU64::new(start_stack),
                fail_nth: Default::default(),
            },
            lock: MmapLock::with_seq(state, seq),
            files: Mutex::new({
                let mut t = FileTable::default();
                t.hugetlb_pool = pool;
                t
            }),
            threads: Box::new(Mutex::new(Threads::default())),
        }
    }

    /// Allocation-failure injection for this address space
    /// ([`failslab`](crate::failslab)).
    pub fn fail_nth(&self) -> &crate::failslab::FailNth {
        &self.shared.fail_nth
    }

    /// `mmap_write_lock`.
    pub fn write(&self) -> MmWrite<'_, P> {
        let g = self.lock.write();
        let vmi = core::cell::Cell::new(g.last_vmi);
        MmWrite {
            g,
            sh: &self.shared,
            files: &self.files,
            vmi,
        }
    }

    /// `mmap_write_trylock`.
    pub fn try_write(&self) -> Option<MmWrite<'_, P>> {
        let g = self.lock.try_write()?;
        let vmi = core::cell::Cell::new(g.last_vmi);
        Some(MmWrite {
            g,
            sh: &self.shared,
            files: &self.files,
            vmi,
        })
    }

    /// `mmap_read_lock`.
    pub fn read(&self) -> MmRead<'_, P> {
        MmRead {
            g: self.lock.read(),
            sh: &self.shared,
            files: &self.files,
        }
    }

    /// `mmap_read_trylock`.
    pub fn try_read(&self) -> Option<MmRead<'_, P>> {
        Some(MmRead {
            g: self.lock.try_read()?,
            sh: &self.shared,
            files: &self.files,
        })
    }

    /// The file table (its own lock; may be taken inside `mmap_lock`).
    pub fn files(&self) -> MutexGuard<'_, FileTable> {
        self.files.lock()
    }

    /// Published file slots (for opening files outside `mmap_lock`).
    pub fn file_slots(&self) -> &Slab<FileSlot> {
        &self.shared.files
    }

    /// The lock (for `mm_lock_seq` reports).
    pub fn mmap_lock(&self) -> &MmapLock<MmState, P> {
        &self.lock
    }

    /// `mmap_lock_speculate_try_begin`.
    #[inline]
    pub fn speculate_try_begin(&self) -> Option<u32> {
        self.lock.speculate_try_begin()
    }

    /// `mmap_lock_speculate_retry`.
    #[inline]
    pub fn speculate_retry(&self, seq: u32) -> bool {
        self.lock.speculate_retry(seq)
    }

    /// Lockless `vma_lookup` through the published tree (the maple-tree walk
    /// under RCU): the VMA with the greatest start `<= addr`, or the first
    /// VMA when none starts at or below `addr`. The result is only
    /// meaningful once validated with [`speculate_retry`](Self::speculate_retry),
    /// and the caller must check that `vm_start <= addr < vm_end`.
    #[inline]
    pub fn vma_lookup_rcu(&self, addr: u64) -> Option<&VmaSlot> {
        let id = self.shared.tree.lookup_le(addr)?;
        self.shared.vmas.get(id)
    }

    /// `vma_next` under RCU: the first VMA that ends above `addr` (the one
    /// containing it, or the next), unvalidated.
    pub fn vma_next_rcu(&self, addr: u64) -> Option<VmaId> {
        let t = &self.shared.tree;
        let id = t.lookup_le(addr)?;
        let s = self.shared.vmas.get(id)?;
        if s.start() > addr || (s.start() <= addr && addr < s.end()) {
            return Some(id);
        }
        t.first_gt(addr)
    }

    /// The tree walk of [`vma_lookup_rcu`](Self::vma_lookup_rcu), giving
    /// the VMA's id (for `lock_vma_under_rcu`).
    #[inline]
    pub fn vma_lookup_rcu_id(&self, addr: u64) -> Option<VmaId> {
        self.shared.tree.lookup_le(addr)
    }

    /// `(start_brk, brk, start_stack)` as of the last write section, for
    /// readers without `mmap_lock` (relaxed loads; a maps reader holding a
    /// VMA's read lock tolerates their races, as the kernel's does).
    pub fn heap_and_stack(&self) -> (u64, u64, u64) {
        use crate::ordering::read_once;
        (
            read_once(&self.shared.start_brk),
            read_once(&self.shared.brk),
            read_once(&self.shared.start_stack),
        )
    }

    /// Lockless read of a file's identity (its inode number).
    #[inline]
    pub fn file_ino_rcu(&self, file: FileId) -> Option<u64> {
        self.shared.files.get(file.0).map(FileSlot::ino)
    }

    /// Bytes of memory held for VMAs, tree nodes and file slots.
    pub fn allocated_bytes(&self) -> usize {
        self.shared.tree.allocated_bytes() + self.shared.vmas.allocated_bytes() + self.shared.files.allocated_bytes()
    }

    /// The VMA cache this address space allocates from.
    pub fn vma_cache(&self) -> &Arc<VmaCache> {
        &self.shared.vmas
    }

    /// `TASK_SIZE`, readable without `mmap_lock` (`fault_in_kernel_space`).
    pub fn task_size(&self) -> u64 {
        self.shared.task_size
    }

    /// The THP mode it was configured with, readable without `mmap_lock`.
    pub fn thp_enabled(&self) -> ThpMode {
        self.shared.thp_enabled
    }

    /// The credentials its task opens files with, readable without
    /// `mmap_lock` (opening a file does not take it).
    pub fn fs_cred(&self) -> &FsCred {
        &self.shared.cred
    }

    /// `RLIMIT_NOFILE` of its task, readable without `mmap_lock`.
    pub fn rlimit_nofile(&self) -> u64 {
        crate::ordering::read_once(&self.shared.rlimit_nofile)
    }

    /// `RLIMIT_FSIZE` of its task, readable without `mmap_lock`.
    pub fn rlimit_fsize(&self) -> u64 {
        crate::ordering::read_once(&self.shared.rlimit_fsize)
    }

    /// Sets the soft `RLIMIT_NOFILE` and `RLIMIT_FSIZE` read without
    /// `mmap_lock` (`setrlimit`; the caller also sets them in the
    /// configuration under the write lock).
    pub fn set_file_rlimits(&self, nofile: u64, fsize: u64) {
        crate::ordering::write_once(&self.shared.rlimit_nofile, nofile);
        crate::ordering::write_once(&self.shared.rlimit_fsize, fsize);
    }

    /// Whether protection keys are on ([`MmConfig::pkeys`]), readable
    /// without `mmap_lock`.
    pub fn pkeys(&self) -> bool {
        self.shared.pkeys
    }

    /// The PKRU register as faults and `gup` read it (`read_pkru`, 0
    /// without protection keys): two bits per key, access-disable
    /// (`PKRU_AD_BIT`) then write-disable (`PKRU_WD_BIT`).
    pub fn pkru(&self) -> u32 {
        crate::ordering::read_once_u32(&self.shared.pkru)
    }

    /// Sets PKRU (`WRPKRU`, as `pkey_alloc`, the execute-only key and a
    /// program's own `pkey_set` do) of the running thread. Ignored without
    /// protection keys.
    pub fn set_pkru(&self, pkru: u32) {
        if self.shared.pkeys {
            crate::ordering::write_once_u32(&self.shared.pkru, pkru);
        }
    }

    /// Thread `tid` runs now (a context switch, `switch_fpu`): the PKRU of
    /// the thread that ran is saved and `tid`'s is loaded, so that
    /// [`pkru`](Self::pkru), and the faults and system calls that follow,
    /// are `tid`'s. A thread not seen before (not made by
    /// [`new_thread`](Self::new_thread)) takes the register as it is.
    /// Callers that never name threads have one thread. There is one
    /// register, as on one CPU: an embedder whose threads make calls at
    /// the same time gets the PKRU of whichever thread switched in last
    /// (`mmsim replay` runs its trace's threads one line at a time).
    pub fn switch_thread(&self, tid: u32) {
        let mut t = self.threads.lock();
        if t.running == Some(tid) {
            return;
        }
        if let Some(old) = t.running {
            let pkru = self.pkru();
            t.saved.insert(old, pkru);
        }
        if let Some(pkru) = t.saved.remove(&tid) {
            crate::ordering::write_once_u32(&self.shared.pkru, pkru);
        }
        t.running = Some(tid);
    }

    /// Thread `parent` made thread `child` of this address space
    /// (`clone(CLONE_VM)`; `copy_thread` copies the FPU state): `child`
    /// starts with `parent`'s PKRU.
    pub fn new_thread(&self, parent: u32, child: u32) {
        let mut t = self.threads.lock();
        let pkru = match t.running {
            Some(r) if r != parent => t.saved.get(&parent).copied().unwrap_or_else(|| self.pkru()),
            _ => self.pkru(),
        };
        t.saved.insert(child, pkru);
    }

    /// Thread `tid` is gone: its saved PKRU with it.
    pub fn exit_thread(&self, tid: u32) {
        let mut t = self.threads.lock();
        t.saved.remove(&tid);
        if t.running == Some(tid) {
            t.running = None;
        }
    }

    /// The `[vsyscall]` mode ([`MmConfig::vsyscall`]), readable without
    /// `mmap_lock`.
    pub fn vsyscall(&self) -> Vsyscall {
        self.shared.vsyscall
    }

    /// This address space's identity (`vm_mm` of its VMAs).
    pub fn id(&self) -> u32 {
        self.shared.id
    }
}

impl<P: BarrierPolicy> Default for MmStruct<P> {
    fn default() -> Self {
        Self::new(MmConfig::default())
    }
}

impl<P: BarrierPolicy> core::fmt::Debug for MmStruct<P> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MmStruct")
            .field("lock", &self.lock)
            .finish_non_exhaustive()
    }
}
