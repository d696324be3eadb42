//! The configuration of an address space ([`MmConfig`]): the sysctls,
//! rlimits, credentials, boot options and layout that decide results.

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

/// A shmem huge-page setting (`mm/shmem.c` `SHMEM_HUGE_*`): the
/// `huge=` option of a tmpfs mount, the `shmem_enabled` sysfs knob (which
/// also sets the internal mount's, behind memfds, shared anonymous memory
/// and System V segments), or a per-size `shmem_enabled` knob (where
/// `Inherit` defers to the former).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ShmemHuge {
    /// `never` (the default).
    #[default]
    Never,
    /// `always`.
    Always,
    /// `within_size`.
    WithinSize,
    /// `advise`.
    Advise,
    /// `deny` (sysfs only: no huge pages anywhere, not even on `huge=` mounts).
    Deny,
    /// `force` (sysfs only: huge pages everywhere).
    Force,
    /// `inherit` (per-size knobs only).
    Inherit,
}

impl ShmemHuge {
    /// The setting's name as sysfs and mount options write it.
    pub fn name(self) -> &'static str {
        match self {
            ShmemHuge::Never => "never",
            ShmemHuge::Always => "always",
            ShmemHuge::WithinSize => "within_size",
            ShmemHuge::Advise => "advise",
            ShmemHuge::Deny => "deny",
            ShmemHuge::Force => "force",
            ShmemHuge::Inherit => "inherit",
        }
    }

    /// The setting named `s`.
    pub fn from_name(s: &str) -> Option<ShmemHuge> {
        [
            ShmemHuge::Never,
            ShmemHuge::Always,
            ShmemHuge::WithinSize,
            ShmemHuge::Advise,
            ShmemHuge::Deny,
            ShmemHuge::Force,
            ShmemHuge::Inherit,
        ]
        .into_iter()
        .find(|h| h.name() == s)
    }
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

/// `RLIM_NLIMITS`: the number of resource limits (`include/uapi/asm-generic/resource.h`).
pub const RLIM_NLIMITS: usize = 16;

/// The hard limits of the reference host's root shell (`/proc/self/limits`),
/// by `RLIMIT_*` number: unlimited but for the process and pending-signal
/// counts (96,363 on 24 GiB), open files (`fs.nr_open`), locked memory
/// (8 MiB), the message-queue bytes (819,200) and the two priorities (0).
pub const DEFAULT_RLIMIT_MAX: [u64; RLIM_NLIMITS] = {
    let inf = u64::MAX;
    [
        inf,
        inf,
        inf,
        inf,
        inf,
        inf,
        96_363,
        1 << 20,
        8 << 20,
        inf,
        inf,
        96_363,
        819_200,
        0,
        0,
        inf,
    ]
};

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
    /// `free_huge_pages` of the 2 MiB and 1 GiB pools when the address
    /// space starts (`/sys/kernel/mm/hugepages/hugepages-*/free_hugepages`).
    pub hugetlb_free: [u64; 2],
    /// `resv_huge_pages` of the two pools (`resv_hugepages`).
    pub hugetlb_resv: [u64; 2],
    /// `sysctl_hugetlb_shm_group` (`vm.hugetlb_shm_group`): members of this
    /// group may create `SHM_HUGETLB` segments without `CAP_IPC_LOCK`.
    pub hugetlb_shm_group: u32,
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
    /// The hard limits of every resource, indexed by `RLIMIT_*` number
    /// (`signal->rlim[].rlim_max`): `setrlimit` may raise one only with
    /// `CAP_SYS_RESOURCE` (`kernel/sys.c` `do_prlimit`). Default: the
    /// reference host's, as root.
    pub rlimit_max: [u64; RLIM_NLIMITS],
    /// The task has `CAP_SYS_RESOURCE` (may raise a hard limit).
    pub cap_sys_resource: bool,
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
    /// The task has `CAP_IPC_OWNER` (System V IPC permission bits do not
    /// stop it: `ipcperms`).
    pub cap_ipc_owner: bool,
    /// The task has `CAP_SYS_ADMIN` (may remove another user's System V
    /// segment: `ipcctl_obtain_check`).
    pub cap_sys_admin: bool,
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
    /// `/sys/kernel/mm/transparent_hugepage/shmem_enabled` (`shmem_huge`):
    /// with a setting other than `never`, shmem objects of 2 MiB or more
    /// are placed huge-page aligned (`shmem_get_unmapped_area`).
    pub shmem_enabled: ShmemHuge,
    /// `transparent_hugepage/hugepages-2048kB/shmem_enabled`: whether
    /// anonymous shmem uses the PMD size (`inherit`: as `shmem_enabled`).
    pub shmem_pmd: ShmemHuge,
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
            hugetlb_free: [0; 2],
            hugetlb_resv: [0; 2],
            hugetlb_shm_group: 0,
            totalram_pages: 24_684_084 / 4,
            total_swap_pages: 0,
            rlimit_as: u64::MAX,
            rlimit_data: u64::MAX,
            rlimit_memlock: 8 << 20,
            rlimit_stack: 8 << 20,
            rlimit_nofile: 1 << 20,
            rlimit_fsize: u64::MAX,
            rlimit_max: DEFAULT_RLIMIT_MAX,
            cap_sys_resource: true,
            pkeys: false,
            vsyscall: Vsyscall::XOnly,
            cap_sys_rawio: true,
            cap_ipc_lock: true,
            cap_ipc_owner: true,
            cap_sys_admin: true,
            fsuid: 0,
            fsgid: 0,
            groups: Vec::new(),
            cap_dac_override: true,
            cap_dac_read_search: true,
            thp: true,
            thp_enabled: ThpMode::Madvise,
            shmem_enabled: ShmemHuge::Never,
            shmem_pmd: ShmemHuge::Inherit,
            read_implies_exec: false,
            vma_capacity: 65530 + 64,
            start_brk: DEFAULT_START_BRK,
            start_stack: TASK_SIZE_4LEVEL - 0x1000,
        }
    }
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

impl MmConfig {
    /// The kernel variable `mmap_min_addr`: `max(dac_mmap_min_addr,
    /// CONFIG_LSM_MMAP_MIN_ADDR)` (`security/min_addr.c`).
    pub fn effective_mmap_min_addr(&self) -> u64 {
        self.mmap_min_addr.max(self.lsm_mmap_min_addr)
    }
}
