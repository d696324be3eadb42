//! `struct mm_struct` (`include/linux/mm_types.h`) and the VMA-tree
//! primitives of `mm/vma.h` that the mutators in `mm-ops` are built from.
//!
//! This module holds the configuration ([`MmConfig`]), the writer-side
//! and lockless state ([`MmState`], [`MmShared`]) and [`MmStruct`] with
//! its lockless accessors; the locked views are split by concern: `guard`
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

mod guard;
mod view;

pub use guard::{MmRead, MmWrite, NoMem};
pub use view::{FaultView, VmaView};

/// x86-64 with 4-level page tables: `TASK_SIZE` = `DEFAULT_MAP_WINDOW`.
pub const TASK_SIZE_4LEVEL: u64 = 0x7fff_ffff_f000;
/// `mmap_base` with randomization off and an 8 MiB stack rlimit
/// (`arch/x86/mm/mmap.c` `mmap_base`: the gap clamps to 128 MiB).
pub const MMAP_BASE_NORANDOM: u64 = TASK_SIZE_4LEVEL - (128 << 20);

/// `vm.overcommit_memory`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overcommit {
    /// 0: heuristic; a single request larger than RAM + swap fails.
    Guess,
    /// 1: always allow.
    Always,
    /// 2: strict accounting against the commit limit.
    Never,
}

/// `/sys/kernel/mm/transparent_hugepage/enabled`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThpMode {
    /// Every anonymous VMA is eligible unless `VM_NOHUGEPAGE`.
    Always,
    /// Only `VM_HUGEPAGE` VMAs (`MADV_HUGEPAGE`).
    Madvise,
    /// None.
    Never,
}

/// How the kernel offers the legacy `[vsyscall]` page (the boot option
/// `vsyscall=`): what `/proc/PID/maps` shows as its last line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Vsyscall {
    /// `xonly` (the default): `--xp`.
    #[default]
    XOnly,
    /// `emulate`: readable, `r-xp`.
    Emulate,
    /// `none`: no gate area, no line.
    None,
}

/// The knobs that decide the address space's behaviour: sysctls, rlimits,
/// credentials and the layout chosen at exec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MmConfig {
    /// `TASK_SIZE`.
    pub task_size: u64,
    /// `mm->mmap_base` (top-down search limit).
    pub mmap_base: u64,
    /// `mm->mmap_legacy_base` (bottom-up search start).
    pub mmap_legacy_base: u64,
    /// `MMF_TOPDOWN`.
    pub topdown: bool,
    /// `vm.mmap_min_addr` (`dac_mmap_min_addr`): below it, `MAP_FIXED`
    /// needs `CAP_SYS_RAWIO`.
    pub mmap_min_addr: u64,
    /// `CONFIG_LSM_MMAP_MIN_ADDR` (0 when not configured). The kernel's
    /// effective `mmap_min_addr`, which bounds hints and searches, is the
    /// larger of the two (`security/min_addr.c`).
    pub lsm_mmap_min_addr: u64,
    /// `vm.max_map_count`.
    pub max_map_count: u32,
    /// `stack_guard_gap` in bytes (256 pages by default).
    pub stack_guard_gap: u64,
    /// `vm.overcommit_memory`.
    pub overcommit: Overcommit,
    /// `vm.overcommit_ratio` (percent).
    pub overcommit_ratio: u64,
    /// `vm.overcommit_kbytes`; when non-zero it sets the commit limit
    /// instead of the ratio (`vm_commit_limit`).
    pub overcommit_kbytes: u64,
    /// `hugetlb_total_pages()`: huge-page pool, in base pages, which the
    /// commit limit leaves out.
    pub hugetlb_total_pages: u64,
    /// `totalram_pages()` (MemTotal in pages).
    pub totalram_pages: u64,
    /// `total_swap_pages`.
    pub total_swap_pages: u64,
    /// `RLIMIT_AS` in bytes (`u64::MAX` = unlimited).
    pub rlimit_as: u64,
    /// `RLIMIT_DATA` in bytes.
    pub rlimit_data: u64,
    /// `RLIMIT_MEMLOCK` in bytes.
    pub rlimit_memlock: u64,
    /// `RLIMIT_STACK` in bytes.
    pub rlimit_stack: u64,
    /// `RLIMIT_NOFILE`: descriptors from this one up are refused (`EMFILE`
    /// for a new one, `EBADF` for `dup2` onto one). Default 1,048,576
    /// (`fs.nr_open`'s default, above which no limit goes).
    pub rlimit_nofile: u64,
    /// `RLIMIT_FSIZE` in bytes: `ftruncate` may not grow a file past it
    /// (`EFBIG`, and `SIGXFSZ`). Default unlimited.
    pub rlimit_fsize: u64,
    /// The `[vsyscall]` gate area's mode (boot option `vsyscall=`).
    pub vsyscall: Vsyscall,
    /// The CPU and kernel have memory protection keys (x86 `ospke`): a
    /// mapping whose only permission is `PROT_EXEC` gets the execute-only
    /// key, so data reads of it fault (`SIGSEGV`) and `gup` cannot read
    /// it. Default off (the reference host has none).
    pub pkeys: bool,
    /// The task has `CAP_SYS_RAWIO` (may map below `mmap_min_addr`).
    pub cap_sys_rawio: bool,
    /// The task has `CAP_IPC_LOCK` (mlock limits do not apply).
    pub cap_ipc_lock: bool,
    /// The task's file-system uid (`current_fsuid()`), against which a
    /// file's owner and mode are checked when it is opened.
    pub fsuid: u32,
    /// The task's file-system gid (`current_fsgid()`).
    pub fsgid: u32,
    /// The task's supplementary groups (`in_group_p`).
    pub groups: Vec<u32>,
    /// The task has `CAP_DAC_OVERRIDE` (file permission bits do not stop
    /// it reading or writing).
    pub cap_dac_override: bool,
    /// The task has `CAP_DAC_READ_SEARCH` (reads any file).
    pub cap_dac_read_search: bool,
    /// `CONFIG_TRANSPARENT_HUGEPAGE`: anonymous mappings whose length is a
    /// multiple of 2 MiB are THP-aligned.
    pub thp: bool,
    /// The THP mode (`transparent_hugepage/enabled`): which VMAs take the
    /// huge-page fault path.
    pub thp_enabled: ThpMode,
    /// `READ_IMPLIES_EXEC` personality.
    pub read_implies_exec: bool,
    /// Capacity of the VMA slab (bounds the number of VMAs).
    pub vma_capacity: usize,
    /// `mm->start_brk`, and `mm->brk`, of a fresh address space: where
    /// `brk` starts the heap (the kernel sets it at `exec`, after the
    /// program's bss). Default: `0x5555_5555_9000`, a small PIE program's
    /// with randomization off.
    pub start_brk: u64,
    /// `mm->start_stack`: the VMA containing it is `[stack]` in maps.
    /// Default: one page below `TASK_SIZE`, where a stack begins with
    /// randomization off.
    pub start_stack: u64,
}

/// [`MmConfig::start_brk`]'s default.
pub const DEFAULT_START_BRK: u64 = 0x5555_5555_9000;

impl Default for MmConfig {
    /// The host of this project: Linux 6.18 x86-64, ASLR off, 8 MiB stack,
    /// sysctl defaults, 24 GiB of RAM and no swap, running as root.
    fn default() -> Self {
        MmConfig {
            task_size: TASK_SIZE_4LEVEL,
            mmap_base: MMAP_BASE_NORANDOM,
            mmap_legacy_base: (TASK_SIZE_4LEVEL / 3 + 0xfff) & !0xfff,
            topdown: true,
            mmap_min_addr: 4096,
            lsm_mmap_min_addr: 65536,
            max_map_count: 65530,
            stack_guard_gap: 256 << 12,
            overcommit: Overcommit::Guess,
            overcommit_ratio: 50,
            overcommit_kbytes: 0,
            hugetlb_total_pages: 0,
            totalram_pages: 24_684_084 / 4,
            total_swap_pages: 0,
            rlimit_as: u64::MAX,
            rlimit_data: u64::MAX,
            rlimit_memlock: 8 << 20,
            rlimit_stack: 8 << 20,
            rlimit_nofile: 1 << 20,
            rlimit_fsize: u64::MAX,
            pkeys: false,
            vsyscall: Vsyscall::XOnly,
            cap_sys_rawio: true,
            cap_ipc_lock: true,
            fsuid: 0,
            fsgid: 0,
            groups: Vec::new(),
            cap_dac_override: true,
            cap_dac_read_search: true,
            thp: true,
            thp_enabled: ThpMode::Madvise,
            read_implies_exec: false,
            vma_capacity: 65530 + 64,
            start_brk: DEFAULT_START_BRK,
            start_stack: TASK_SIZE_4LEVEL - 0x1000,
        }
    }
}

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
    /// `MmConfig::rlimit_nofile` (fixed at creation).
    rlimit_nofile: u64,
    /// `MmConfig::rlimit_fsize` (fixed at creation).
    rlimit_fsize: u64,
    /// `MmConfig::pkeys` (fixed at creation).
    pkeys: bool,
    /// `MmConfig::vsyscall` (fixed at creation).
    vsyscall: Vsyscall,
}

/// The parts of a task's credentials (`struct cred`) that decide which
/// files it may open: [`MmConfig`]'s `fsuid`, `fsgid`, `groups`,
/// `cap_dac_override` and `cap_dac_read_search`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FsCred {
    /// `cred->fsuid`.
    pub fsuid: u32,
    /// `cred->fsgid`.
    pub fsgid: u32,
    /// `cred->group_info`.
    pub groups: Vec<u32>,
    /// `CAP_DAC_OVERRIDE` in the effective set.
    pub cap_dac_override: bool,
    /// `CAP_DAC_READ_SEARCH` in the effective set.
    pub cap_dac_read_search: bool,
}

impl MmConfig {
    /// The file-permission credentials this configuration sets.
    pub fn fs_cred(&self) -> FsCred {
        FsCred {
            fsuid: self.fsuid,
            fsgid: self.fsgid,
            groups: self.groups.clone(),
            cap_dac_override: self.cap_dac_override,
            cap_dac_read_search: self.cap_dac_read_search,
        }
    }
}

/// Identities of address spaces (never 0, which means "no mm").
static NEXT_MM_ID: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);

/// `struct mm_struct`, generic over the `mm_lock_seq` barrier policy.
pub struct MmStruct<P: BarrierPolicy = Upstream> {
    pub(crate) shared: MmShared,
    lock: MmapLock<MmState, P>,
    files: Mutex<FileTable>,
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
                rlimit_nofile,
                rlimit_fsize,
                pkeys,
                vsyscall,
                brk: AtomicU64::new(start_brk),
                start_brk: AtomicU64::new(start_brk),
                start_stack: AtomicU64::new(start_stack),
                fail_nth: Default::default(),
            },
            lock: MmapLock::with_seq(state, seq),
            files: Mutex::new(FileTable::default()),
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
        self.shared.rlimit_nofile
    }

    /// `RLIMIT_FSIZE` of its task, readable without `mmap_lock`.
    pub fn rlimit_fsize(&self) -> u64 {
        self.shared.rlimit_fsize
    }

    /// Whether protection keys are on ([`MmConfig::pkeys`]), readable
    /// without `mmap_lock`.
    pub fn pkeys(&self) -> bool {
        self.shared.pkeys
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

impl MmConfig {
    /// The kernel variable `mmap_min_addr`: `max(dac_mmap_min_addr,
    /// CONFIG_LSM_MMAP_MIN_ADDR)` (`security/min_addr.c`).
    pub fn effective_mmap_min_addr(&self) -> u64 {
        self.mmap_min_addr.max(self.lsm_mmap_min_addr)
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
