//! The process's environment as the address-space code sees it: memory
//! size and overcommit sysctls, `vm.max_map_count` and `mmap_min_addr`,
//! the THP mode, the rlimits, the capabilities that matter, the
//! file-system ids and groups (who may open which file) and the
//! personality. [`ProcEnv`] reads them from a running process (or this
//! one), writes and reads them as `key: value` lines (a fixture's
//! `meta.txt`, `mmsim replay --env`), and turns them into an [`MmConfig`].
//!
//! Kernel counterparts: `vm_commit_limit` and `__vm_enough_memory`
//! (`mm/util.c`), `may_expand_vm` (`mm/mmap.c`), `mmap_is_legacy`,
//! `mmap_base` and `arch_pick_mmap_layout` (`arch/x86/mm/mmap.c`),
//! `security/min_addr.c`, `capable(CAP_SYS_RAWIO)` in `mmap_min_addr`
//! checks, `capable(CAP_IPC_LOCK)` in `can_do_mlock`, and the
//! credentials `generic_permission` (`fs/namei.c`) checks files against.
//!
//! ```
//! use mm_ops::env::ProcEnv;
//! let mut env = ProcEnv::default();
//! env.set("rlimit_as", "16777216").unwrap();
//! env.set("cap_eff", "0").unwrap();
//! let cfg = env.config();
//! assert_eq!(cfg.rlimit_as, 16 << 20);
//! assert!(!cfg.cap_sys_rawio);
//! // Round trip through `key: value` lines.
//! let back = ProcEnv::from_lines(&env.to_lines()).unwrap();
//! assert_eq!(back, env);
//! ```

use mm_core::{DEFAULT_RLIMIT_MAX, MmConfig, Overcommit, RLIM_NLIMITS, ShmemHuge, ThpMode, Vsyscall};

/// `TASK_SIZE` with 4-level page tables (`DEFAULT_MAP_WINDOW` with 5-level
/// ones: what `mmap_base` and the legacy base are computed from).
const TASK_SIZE: u64 = mm_core::mm::TASK_SIZE_4LEVEL;
/// `TASK_SIZE` with 5-level page tables.
const TASK_SIZE_5LEVEL: u64 = (1 << 56) - 4096;
/// `stack_guard_gap` (256 pages).
const STACK_GUARD_GAP: u64 = 256 << 12;
/// `CAP_DAC_OVERRIDE`.
const CAP_DAC_OVERRIDE: u32 = 1;
/// `CAP_DAC_READ_SEARCH`.
const CAP_DAC_READ_SEARCH: u32 = 2;
/// `CAP_IPC_LOCK`.
const CAP_IPC_LOCK: u32 = 14;
/// `CAP_SYS_RESOURCE`.
const CAP_SYS_RESOURCE: u32 = 24;
/// `CAP_IPC_OWNER`.
const CAP_IPC_OWNER: u32 = 15;
/// `CAP_SYS_RAWIO`.
const CAP_SYS_RAWIO: u32 = 17;
/// `CAP_SYS_ADMIN`.
const CAP_SYS_ADMIN: u32 = 21;

mod host;

/// `ADDR_COMPAT_LAYOUT` (personality flag).
pub const ADDR_COMPAT_LAYOUT: u64 = 0x020_0000;
/// `READ_IMPLIES_EXEC` (personality flag).
pub const READ_IMPLIES_EXEC: u64 = 0x040_0000;
/// `RLIM_INFINITY`.
pub const UNLIMITED: u64 = u64::MAX;

/// What decides a result beyond the calls themselves. Every field has the
/// value of the project's reference host by default (Linux 6.18 x86-64,
/// root, sysctl defaults, 8 MiB stack, 24 GiB, no swap, THP `madvise`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcEnv {
    /// `MemTotal` of `/proc/meminfo`, in KiB (`totalram_pages`).
    pub mem_total_kb: u64,
    /// `SwapTotal`, in KiB (`total_swap_pages`).
    pub swap_total_kb: u64,
    /// `HugePages_Total` × `Hugepagesize`, in KiB (`hugetlb_total_pages`).
    pub hugetlb_total_kb: u64,
    /// Free pages of the 2 MiB and 1 GiB huge page pools
    /// (`/sys/kernel/mm/hugepages/hugepages-*/free_hugepages`).
    pub hugetlb_free: [u64; 2],
    /// Reserved pages of the two pools (`resv_hugepages`).
    pub hugetlb_resv: [u64; 2],
    /// `vm.hugetlb_shm_group`: the group whose members may create
    /// `SHM_HUGETLB` segments without `CAP_IPC_LOCK`.
    pub hugetlb_shm_group: u32,
    /// `vm.overcommit_memory`: 0 guess, 1 always, 2 never.
    pub overcommit_memory: u8,
    /// `vm.overcommit_ratio`.
    pub overcommit_ratio: u64,
    /// `vm.overcommit_kbytes` (0: the ratio applies).
    pub overcommit_kbytes: u64,
    /// `vm.max_map_count`.
    pub max_map_count: u32,
    /// `vm.mmap_min_addr`.
    pub mmap_min_addr: u64,
    /// `vm.legacy_va_layout`.
    pub legacy_va_layout: bool,
    /// `/sys/kernel/mm/transparent_hugepage/enabled`.
    pub thp_enabled: ThpMode,
    /// `/sys/kernel/mm/transparent_hugepage/shmem_enabled`.
    pub shmem_enabled: ShmemHuge,
    /// `/sys/kernel/mm/transparent_hugepage/hugepages-2048kB/shmem_enabled`.
    pub shmem_pmd: ShmemHuge,
    /// Soft `RLIMIT_AS` in bytes ([`UNLIMITED`]: none).
    pub rlimit_as: u64,
    /// Soft `RLIMIT_DATA`.
    pub rlimit_data: u64,
    /// Soft `RLIMIT_STACK` (at exec, it placed `mmap_base`).
    pub rlimit_stack: u64,
    /// Soft `RLIMIT_MEMLOCK`.
    pub rlimit_memlock: u64,
    /// Soft `RLIMIT_NOFILE`.
    pub rlimit_nofile: u64,
    /// Soft `RLIMIT_FSIZE` in bytes ([`UNLIMITED`]: none).
    pub rlimit_fsize: u64,
    /// The hard limit of every resource, by `RLIMIT_*` number (the `Hard
    /// Limit` column of `/proc/PID/limits`, whose lines are in that
    /// order): in text, 16 values separated by spaces.
    pub rlimit_max: [u64; RLIM_NLIMITS],
    /// Memory protection keys are on (`ospke` in `/proc/cpuinfo`'s flags).
    pub pkeys: bool,
    /// The `[vsyscall]` mode, from the gate line of the process's maps
    /// (`--xp`: `xonly`, `r-xp`: `emulate`, none: `none`).
    pub vsyscall: Vsyscall,
    /// 5-level page tables are on (`la57` in `/proc/cpuinfo`'s flags):
    /// `TASK_SIZE` is 2^56 − 4 KiB, and mappings go above the 47-bit
    /// window only when asked to with a hint.
    pub la57: bool,
    /// The effective capability set (`CapEff` of `/proc/PID/status`).
    pub cap_eff: u64,
    /// The real uid (informational: capabilities and the file-system ids
    /// decide).
    pub uid: u32,
    /// The file-system uid (the fourth `Uid:` field of `/proc/PID/status`):
    /// who opens files.
    pub fsuid: u32,
    /// The file-system gid (the fourth `Gid:` field).
    pub fsgid: u32,
    /// The supplementary groups (`Groups:`), space-separated in text.
    pub groups: Vec<u32>,
    /// `personality(2)` flags.
    pub personality: u64,
}

impl Default for ProcEnv {
    fn default() -> Self {
        ProcEnv {
            mem_total_kb: 24_684_084,
            swap_total_kb: 0,
            hugetlb_total_kb: 0,
            hugetlb_free: [0; 2],
            hugetlb_resv: [0; 2],
            overcommit_memory: 0,
            overcommit_ratio: 50,
            overcommit_kbytes: 0,
            max_map_count: 65530,
            hugetlb_shm_group: 0,
            mmap_min_addr: 4096,
            legacy_va_layout: false,
            thp_enabled: ThpMode::Madvise,
            shmem_enabled: ShmemHuge::Never,
            shmem_pmd: ShmemHuge::Inherit,
            rlimit_as: UNLIMITED,
            rlimit_data: UNLIMITED,
            rlimit_stack: 8 << 20,
            rlimit_memlock: 8 << 20,
            rlimit_nofile: 1 << 20,
            rlimit_fsize: UNLIMITED,
            rlimit_max: DEFAULT_RLIMIT_MAX,
            pkeys: false,
            la57: false,
            vsyscall: Vsyscall::XOnly,
            cap_eff: 0x1ff_ffff_ffff,
            uid: 0,
            fsuid: 0,
            fsgid: 0,
            groups: Vec::new(),
            personality: 0,
        }
    }
}

/// The keys of [`ProcEnv::to_lines`], in order.
pub const KEYS: [&str; 33] = [
    "mem_total_kb",
    "swap_total_kb",
    "hugetlb_total_kb",
    "hugetlb_free_2m",
    "hugetlb_resv_2m",
    "hugetlb_free_1g",
    "hugetlb_resv_1g",
    "hugetlb_shm_group",
    "overcommit_memory",
    "overcommit_ratio",
    "overcommit_kbytes",
    "max_map_count",
    "mmap_min_addr",
    "legacy_va_layout",
    "thp_enabled",
    "shmem_enabled",
    "shmem_pmd",
    "rlimit_as",
    "rlimit_data",
    "rlimit_stack",
    "rlimit_memlock",
    "rlimit_nofile",
    "rlimit_fsize",
    "rlimit_max",
    "pkeys",
    "la57",
    "vsyscall",
    "cap_eff",
    "uid",
    "fsuid",
    "fsgid",
    "groups",
    "personality",
];

fn number(v: &str) -> Option<u64> {
    let v = v.trim();
    if v == "unlimited" || v == "infinity" {
        return Some(UNLIMITED);
    }
    match v.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => v.parse().ok(),
    }
}

fn limit_text(v: u64) -> String {
    if v == UNLIMITED {
        "unlimited".into()
    } else {
        v.to_string()
    }
}

/// The `[selected]` word of a sysfs choice line (`always [madvise] never`).
fn selected(text: &str) -> Option<&str> {
    let a = text.find('[')?;
    let b = text[a..].find(']')? + a;
    Some(&text[a + 1..b])
}

impl ProcEnv {
    /// Sets one field from its key and text value; an error names both.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        let value = value.trim();
        let bad = || format!("environment `{key}: {value}`: not a valid value");
        let n = || number(value).ok_or_else(bad);
        match key {
            "mem_total_kb" => self.mem_total_kb = n()?,
            "swap_total_kb" => self.swap_total_kb = n()?,
            "hugetlb_total_kb" => self.hugetlb_total_kb = n()?,
            "hugetlb_free_2m" => self.hugetlb_free[0] = n()?,
            "hugetlb_resv_2m" => self.hugetlb_resv[0] = n()?,
            "hugetlb_free_1g" => self.hugetlb_free[1] = n()?,
            "hugetlb_resv_1g" => self.hugetlb_resv[1] = n()?,
            "hugetlb_shm_group" => self.hugetlb_shm_group = n()?.try_into().map_err(|_| bad())?,
            "overcommit_memory" => {
                self.overcommit_memory = n()?.try_into().ok().filter(|&m: &u8| m <= 2).ok_or_else(bad)?
            }
            "overcommit_ratio" => self.overcommit_ratio = n()?,
            "overcommit_kbytes" => self.overcommit_kbytes = n()?,
            "max_map_count" => self.max_map_count = n()?.try_into().ok().filter(|&m: &u32| m > 0).ok_or_else(bad)?,
            "mmap_min_addr" => self.mmap_min_addr = n()?,
            "legacy_va_layout" => self.legacy_va_layout = n()? != 0,
            "thp_enabled" => {
                self.thp_enabled = match selected(value).unwrap_or(value.trim()) {
                    "always" => ThpMode::Always,
                    "madvise" => ThpMode::Madvise,
                    "never" => ThpMode::Never,
                    _ => return Err(bad()),
                }
            }
            "shmem_enabled" | "shmem_pmd" => {
                let h = ShmemHuge::from_name(selected(value).unwrap_or(value.trim())).ok_or_else(bad)?;
                // The global knob has no `inherit`; the per-size ones no
                // `deny` or `force`.
                let fits = if key == "shmem_enabled" {
                    h != ShmemHuge::Inherit
                } else {
                    !matches!(h, ShmemHuge::Deny | ShmemHuge::Force)
                };
                if !fits {
                    return Err(bad());
                }
                if key == "shmem_enabled" {
                    self.shmem_enabled = h;
                } else {
                    self.shmem_pmd = h;
                }
            }
            "rlimit_as" => self.rlimit_as = n()?,
            "rlimit_data" => self.rlimit_data = n()?,
            "rlimit_stack" => self.rlimit_stack = n()?,
            "rlimit_memlock" => self.rlimit_memlock = n()?,
            "rlimit_nofile" => self.rlimit_nofile = n()?,
            "rlimit_fsize" => self.rlimit_fsize = n()?,
            "rlimit_max" => {
                let v: Vec<u64> = value
                    .split_whitespace()
                    .map(number)
                    .collect::<Option<_>>()
                    .ok_or_else(bad)?;
                self.rlimit_max = v.try_into().map_err(|_| bad())?;
            }
            "pkeys" => self.pkeys = n()? != 0,
            "la57" => self.la57 = n()? != 0,
            "vsyscall" => {
                self.vsyscall = match value.trim() {
                    "xonly" => Vsyscall::XOnly,
                    "emulate" => Vsyscall::Emulate,
                    "none" => Vsyscall::None,
                    _ => return Err(bad()),
                }
            }
            "cap_eff" => {
                // /proc/PID/status writes CapEff in hex without `0x`.
                let v = value.trim();
                self.cap_eff = u64::from_str_radix(v.strip_prefix("0x").unwrap_or(v), 16).map_err(|_| bad())?
            }
            "uid" => self.uid = n()?.try_into().map_err(|_| bad())?,
            "fsuid" => self.fsuid = n()?.try_into().map_err(|_| bad())?,
            "fsgid" => self.fsgid = n()?.try_into().map_err(|_| bad())?,
            "groups" => {
                self.groups = value
                    .split_whitespace()
                    .map(|g| g.parse().map_err(|_| bad()))
                    .collect::<Result<_, _>>()?
            }
            "personality" => {
                let v = value.trim();
                self.personality = u64::from_str_radix(v.strip_prefix("0x").unwrap_or(v), 16).map_err(|_| bad())?
            }
            _ => return Err(format!("environment: unknown key `{key}` (known: {})", KEYS.join(", "))),
        }
        Ok(())
    }

    /// `key: value` lines of every field, in [`KEYS`] order.
    pub fn to_lines(&self) -> String {
        let thp = match self.thp_enabled {
            ThpMode::Always => "always",
            ThpMode::Madvise => "madvise",
            ThpMode::Never => "never",
        };
        let values = [
            self.mem_total_kb.to_string(),
            self.swap_total_kb.to_string(),
            self.hugetlb_total_kb.to_string(),
            self.hugetlb_free[0].to_string(),
            self.hugetlb_resv[0].to_string(),
            self.hugetlb_free[1].to_string(),
            self.hugetlb_resv[1].to_string(),
            self.hugetlb_shm_group.to_string(),
            self.overcommit_memory.to_string(),
            self.overcommit_ratio.to_string(),
            self.overcommit_kbytes.to_string(),
            self.max_map_count.to_string(),
            self.mmap_min_addr.to_string(),
            u8::from(self.legacy_va_layout).to_string(),
            thp.to_string(),
            self.shmem_enabled.name().to_string(),
            self.shmem_pmd.name().to_string(),
            limit_text(self.rlimit_as),
            limit_text(self.rlimit_data),
            limit_text(self.rlimit_stack),
            limit_text(self.rlimit_memlock),
            limit_text(self.rlimit_nofile),
            limit_text(self.rlimit_fsize),
            self.rlimit_max
                .iter()
                .map(|&v| limit_text(v))
                .collect::<Vec<_>>()
                .join(" "),
            u8::from(self.pkeys).to_string(),
            u8::from(self.la57).to_string(),
            match self.vsyscall {
                Vsyscall::XOnly => "xonly",
                Vsyscall::Emulate => "emulate",
                Vsyscall::None => "none",
            }
            .to_string(),
            format!("{:016x}", self.cap_eff),
            self.uid.to_string(),
            self.fsuid.to_string(),
            self.fsgid.to_string(),
            self.groups.iter().map(u32::to_string).collect::<Vec<_>>().join(" "),
            format!("{:08x}", self.personality),
        ];
        KEYS.iter().zip(values).map(|(k, v)| format!("{k}: {v}\n")).collect()
    }

    /// Reads `key: value` lines; keys not in [`KEYS`] are errors, keys
    /// absent keep their defaults.
    pub fn from_lines(text: &str) -> Result<ProcEnv, String> {
        let mut env = ProcEnv::default();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let (k, v) = line
                .split_once(':')
                .ok_or_else(|| format!("line {}: not `key: value`: {line}", i + 1))?;
            env.set(k.trim(), v).map_err(|e| format!("line {}: {e}", i + 1))?;
        }
        Ok(env)
    }

    /// [`of_process`](Self::of_process) for this process.
    pub fn from_host() -> (ProcEnv, Vec<String>) {
        ProcEnv::of_process(None)
    }

    fn cap(&self, bit: u32) -> bool {
        self.cap_eff & (1 << bit) != 0
    }

    /// `mmap_is_legacy` (`arch/x86/mm/mmap.c`): `ADDR_COMPAT_LAYOUT` or
    /// `vm.legacy_va_layout`. (On x86-64 an unlimited stack does not make
    /// the layout legacy.)
    pub fn legacy_layout(&self) -> bool {
        self.personality & ADDR_COMPAT_LAYOUT != 0 || self.legacy_va_layout
    }

    /// The model configuration for this environment, with the layout
    /// chosen at exec without randomization.
    pub fn config(&self) -> MmConfig {
        let mut cfg = MmConfig::default();
        self.apply(&mut cfg);
        cfg
    }

    /// Sets every field of `cfg` this environment decides.
    pub fn apply(&self, cfg: &mut MmConfig) {
        cfg.totalram_pages = self.mem_total_kb / 4;
        cfg.total_swap_pages = self.swap_total_kb / 4;
        cfg.hugetlb_total_pages = self.hugetlb_total_kb / 4;
        cfg.hugetlb_free = self.hugetlb_free;
        cfg.hugetlb_resv = self.hugetlb_resv;
        cfg.hugetlb_shm_group = self.hugetlb_shm_group;
        cfg.overcommit = match self.overcommit_memory {
            1 => Overcommit::Always,
            2 => Overcommit::Never,
            _ => Overcommit::Guess,
        };
        cfg.overcommit_ratio = self.overcommit_ratio;
        cfg.overcommit_kbytes = self.overcommit_kbytes;
        cfg.max_map_count = self.max_map_count;
        // Room for the limit and the splits that may pass it transiently.
        cfg.vma_capacity = self.max_map_count as usize + 64;
        cfg.mmap_min_addr = self.mmap_min_addr;
        cfg.thp_enabled = self.thp_enabled;
        cfg.shmem_enabled = self.shmem_enabled;
        cfg.shmem_pmd = self.shmem_pmd;
        cfg.rlimit_as = self.rlimit_as;
        cfg.rlimit_data = self.rlimit_data;
        cfg.rlimit_stack = self.rlimit_stack;
        cfg.rlimit_memlock = self.rlimit_memlock;
        cfg.rlimit_nofile = self.rlimit_nofile;
        cfg.rlimit_fsize = self.rlimit_fsize;
        cfg.rlimit_max = self.rlimit_max;
        cfg.cap_sys_resource = self.cap(CAP_SYS_RESOURCE);
        cfg.pkeys = self.pkeys;
        cfg.vsyscall = self.vsyscall;
        if self.la57 {
            cfg.task_size = TASK_SIZE_5LEVEL;
        }
        cfg.cap_sys_rawio = self.cap(CAP_SYS_RAWIO);
        cfg.cap_ipc_lock = self.cap(CAP_IPC_LOCK);
        cfg.cap_ipc_owner = self.cap(CAP_IPC_OWNER);
        cfg.cap_sys_admin = self.cap(CAP_SYS_ADMIN);
        cfg.cap_dac_override = self.cap(CAP_DAC_OVERRIDE);
        cfg.cap_dac_read_search = self.cap(CAP_DAC_READ_SEARCH);
        cfg.fsuid = self.fsuid;
        cfg.fsgid = self.fsgid;
        cfg.groups = self.groups.clone();
        cfg.read_implies_exec = self.personality & READ_IMPLIES_EXEC != 0;
        cfg.topdown = !self.legacy_layout();
        cfg.mmap_base = mmap_base(self.rlimit_stack);
        cfg.mmap_legacy_base = (TASK_SIZE / 3 + 0xfff) & !0xfff;
    }
}

/// `mmap_base()` (`arch/x86/mm/mmap.c`) without randomization: below the
/// stack's room (its rlimit plus the guard gap), at least 128 MiB and at
/// most 5/6 of the address space.
pub fn mmap_base(rlimit_stack: u64) -> u64 {
    let gap = rlimit_stack.saturating_add(STACK_GUARD_GAP);
    let gap = gap.clamp(128 << 20, TASK_SIZE / 6 * 5);
    (TASK_SIZE - gap + 0xfff) & !0xfff
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_the_default_config() {
        assert_eq!(ProcEnv::default().config(), MmConfig::default());
    }

    #[test]
    fn this_process_reads_back() {
        let (env, missing) = ProcEnv::from_host();
        assert!(missing.is_empty(), "unreadable: {missing:?}");
        let mi = std::fs::read_to_string("/proc/meminfo").unwrap();
        assert!(
            mi.contains(&format!("{} kB", env.mem_total_kb)),
            "MemTotal {}",
            env.mem_total_kb
        );
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit fills the struct it is given.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_STACK, &mut lim) }, 0);
        let want = if lim.rlim_cur == libc::RLIM_INFINITY {
            UNLIMITED
        } else {
            lim.rlim_cur
        };
        assert_eq!(env.rlimit_stack, want);
        // SAFETY: getuid has no arguments.
        assert_eq!(env.uid, unsafe { libc::getuid() });
        assert_eq!(ProcEnv::from_lines(&env.to_lines()).unwrap(), env);
    }

    #[test]
    fn bad_values_are_named() {
        let e = ProcEnv::from_lines("rlimit_as: lots\n").unwrap_err();
        assert!(e.contains("line 1") && e.contains("rlimit_as: lots"), "{e}");
        let e = ProcEnv::from_lines("colour: blue\n").unwrap_err();
        assert!(e.contains("unknown key `colour`"), "{e}");
        assert!(ProcEnv::from_lines("overcommit_memory: 3").is_err());
        assert!(ProcEnv::from_lines("max_map_count: 0").is_err());
    }

    #[test]
    fn layout_follows_personality_and_sysctl() {
        let mut env = ProcEnv::default();
        assert!(env.config().topdown);
        env.personality = ADDR_COMPAT_LAYOUT;
        assert!(!env.config().topdown);
        env.personality = 0;
        env.legacy_va_layout = true;
        assert!(!env.config().topdown);
        env.legacy_va_layout = false;
        env.rlimit_stack = UNLIMITED;
        let cfg = env.config();
        assert!(cfg.topdown, "x86-64: an unlimited stack keeps the top-down layout");
        assert_eq!(cfg.mmap_base, (TASK_SIZE - TASK_SIZE / 6 * 5 + 0xfff) & !0xfff);
        assert_eq!(mmap_base(8 << 20), 0x7fff_f7ff_f000);
        assert_eq!(mmap_base(1 << 30), TASK_SIZE - (1 << 30) - STACK_GUARD_GAP);
    }

    #[test]
    fn thp_choice_lines() {
        let mut env = ProcEnv::default();
        env.set("thp_enabled", "always [madvise] never").unwrap();
        assert_eq!(env.thp_enabled, ThpMode::Madvise);
        env.set("thp_enabled", "never").unwrap();
        assert_eq!(env.config().thp_enabled, ThpMode::Never);
    }
}
