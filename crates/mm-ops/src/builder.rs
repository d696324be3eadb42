//! [`TaskBuilder`]: a [`Task`] configured in one expression: the
//! environment it runs in (a reference host, this host, or another
//! process), settings over it, a `/proc/PID/maps` snapshot to start from,
//! and the host's files behind paths.
//!
//! ```
//! use mm_ops::TaskBuilder;
//! use mm_ops::uapi::*;
//!
//! // This process's own address space, limits and sysctls.
//! let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
//! let mut task = TaskBuilder::host()
//!     .set("rlimit_as", "unlimited")?
//!     .snapshot(&maps)
//!     .host_files()
//!     .build()?;
//! // The same maps back, `[heap]` and `[stack]` included.
//! assert_eq!(task.maps(), maps);
//! let a = task.mmap(0, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)?;
//! assert!(a > 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;

use mm_core::MmConfig;

use crate::env::ProcEnv;
use crate::procmaps::{MapsError, parse_maps_snapshot};
use crate::task::Task;

/// An edit of the configuration, run at [`TaskBuilder::build`].
type ConfigEdit = Box<dyn FnOnce(&mut MmConfig)>;

/// Builds a [`Task`] (see the [module documentation](self)).
///
/// The steps, in the order [`build`](Self::build) applies them:
/// 1. the environment ([`ProcEnv`]): the reference host's
///    ([`new`](Self::new)), this process's ([`host`](Self::host)) or
///    another's ([`process`](Self::process)), with [`set`](Self::set)
///    overrides, turned into an [`MmConfig`];
/// 2. [`config`](Self::config) edits of that `MmConfig` (fields the
///    environment does not hold: `mmap_base`, `vma_capacity`, …);
/// 3. the snapshot ([`snapshot`](Self::snapshot)): its VMAs, `[heap]` as
///    the break, `[stack]` as the stack, and the mmap base inferred from
///    where the loader put the program interpreter (unless
///    [`config`](Self::config) set one);
/// 4. the host's files behind paths ([`host_files`](Self::host_files)) and
///    the working directory ([`cwd`](Self::cwd)).
pub struct TaskBuilder {
    env: ProcEnv,
    missing: Vec<String>,
    edits: Vec<ConfigEdit>,
    base_set: bool,
    snapshot: Option<String>,
    host_files: bool,
    cwd: Option<String>,
}

impl fmt::Debug for TaskBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskBuilder")
            .field("env", &self.env)
            .field("edits", &self.edits.len())
            .field("snapshot", &self.snapshot.as_ref().map(|s| s.lines().count()))
            .field("host_files", &self.host_files)
            .field("cwd", &self.cwd)
            .finish()
    }
}

/// Why [`TaskBuilder::build`] or [`TaskBuilder::set`] failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A [`set`](TaskBuilder::set) key or value the environment does not
    /// know.
    #[error("{key}={value}: {message}")]
    Setting {
        /// The key.
        key: String,
        /// The value.
        value: String,
        /// Why.
        message: String,
    },
    /// The snapshot does not parse or does not fit the configuration.
    #[error("snapshot: {0}")]
    Snapshot(#[from] MapsError),
}

impl Default for TaskBuilder {
    fn default() -> Self {
        TaskBuilder::new()
    }
}

impl TaskBuilder {
    fn with_env(env: ProcEnv, missing: Vec<String>) -> Self {
        TaskBuilder {
            env,
            missing,
            edits: Vec::new(),
            base_set: false,
            snapshot: None,
            host_files: false,
            cwd: None,
        }
    }

    /// The reference host's environment ([`ProcEnv::default`]: x86-64,
    /// root, default limits and sysctls, ASLR off): the same on every
    /// machine.
    pub fn new() -> Self {
        Self::with_env(ProcEnv::default(), Vec::new())
    }

    /// This process's environment ([`ProcEnv::from_host`]): its limits,
    /// credentials and personality, the machine's memory and sysctls.
    /// What could not be read keeps the reference host's value
    /// ([`unread`](Self::unread) names it).
    pub fn host() -> Self {
        let (env, missing) = ProcEnv::from_host();
        Self::with_env(env, missing)
    }

    /// The environment of process `pid` ([`ProcEnv::of_process`]).
    pub fn process(pid: u32) -> Self {
        let (env, missing) = ProcEnv::of_process(Some(pid));
        Self::with_env(env, missing)
    }

    /// What [`host`](Self::host) or [`process`](Self::process) could not
    /// read (files under `/proc`), each left at the reference host's value.
    pub fn unread(&self) -> &[String] {
        &self.missing
    }

    /// Sets one environment key, as `mmsim replay --env KEY=VALUE` does:
    /// the keys of [`crate::env::KEYS`] (`rlimit_as`, `max_map_count`,
    /// `overcommit_memory`, `cap_eff`, `uid`, `personality`, …), numbers
    /// in decimal or `0x` hex, `unlimited` for limits.
    pub fn set(mut self, key: &str, value: &str) -> Result<Self, BuildError> {
        self.env.set(key, value).map_err(|message| BuildError::Setting {
            key: key.to_string(),
            value: value.to_string(),
            message,
        })?;
        Ok(self)
    }

    /// The environment so far.
    pub fn env(&self) -> &ProcEnv {
        &self.env
    }

    /// Edits the [`MmConfig`] made from the environment, for what the
    /// environment does not hold. Setting `mmap_base` here keeps the
    /// snapshot from inferring it.
    pub fn config(mut self, edit: impl FnOnce(&mut MmConfig) + 'static) -> Self {
        self.edits.push(Box::new(edit));
        self
    }

    /// Sets `mm->mmap_base` (the top of the top-down mmap area).
    pub fn mmap_base(mut self, base: u64) -> Self {
        // `config` edits run at build time; this one is known now.
        self.base_set = true;
        self.config(move |c| c.mmap_base = base)
    }

    /// Starts from a `/proc/PID/maps` snapshot (see step 3 above).
    pub fn snapshot(mut self, maps: &str) -> Self {
        self.snapshot = Some(maps.to_string());
        self
    }

    /// Paths name the host's files (`open`, `mmap` of a descriptor): their
    /// sizes, devices, inodes and file systems come from `stat`/`statfs`
    /// ([`crate::hostfs`]); without it, every path is a regular file of
    /// unknown size on a disk file system.
    pub fn host_files(mut self) -> Self {
        self.host_files = true;
        self
    }

    /// The directory relative paths resolve against (default `/`).
    pub fn cwd(mut self, dir: &str) -> Self {
        self.cwd = Some(dir.to_string());
        self
    }

    /// The task.
    pub fn build(self) -> Result<Task, BuildError> {
        let mut cfg = self.env.config();
        for edit in self.edits {
            edit(&mut cfg);
        }
        let task_size = cfg.task_size;
        let mut task = Task::new(cfg);
        if self.host_files {
            task.set_probe(crate::hostfs::host_probe());
            task.dir_fs_probe = Some(crate::hostfs::host_dir_fs);
        }
        if let Some(dir) = &self.cwd {
            task.set_cwd(dir);
        }
        if let Some(text) = &self.snapshot {
            let lines = parse_maps_snapshot(text, task_size)?;
            task.import_maps(&lines)?;
            if !self.base_set {
                task.infer_mmap_base(&lines);
            }
        }
        Ok(task)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::uapi::*;

    const ANON: u64 = MAP_PRIVATE | MAP_ANONYMOUS;

    #[test]
    fn settings_reach_the_model() {
        // vm.max_map_count 3: mmap checks `map_count > max_map_count`
        // before adding one, so the fifth separate mapping fails.
        let mut t = TaskBuilder::new().set("max_map_count", "3").unwrap().build().unwrap();
        for i in 0..4 {
            t.mmap(0x1000_0000 + i * 0x10000, 4096, PROT_READ, ANON | MAP_FIXED, -1, 0)
                .unwrap();
        }
        assert_eq!(
            t.mmap(0x2000_0000, 4096, PROT_READ, ANON | MAP_FIXED, -1, 0),
            Err(Errno::ENOMEM)
        );
        // RLIMIT_AS of 1 MiB: a 2 MiB mapping fails.
        let mut t = TaskBuilder::new().set("rlimit_as", "1048576").unwrap().build().unwrap();
        assert_eq!(t.mmap(0, 2 << 20, PROT_READ, ANON, -1, 0), Err(Errno::ENOMEM));
    }

    #[test]
    fn a_bad_setting_names_itself() {
        let e = TaskBuilder::new().set("rlimit_bogus", "1").unwrap_err();
        assert!(e.to_string().starts_with("rlimit_bogus=1: "), "{e}");
        let e = TaskBuilder::new().set("rlimit_as", "lots").unwrap_err();
        assert!(e.to_string().starts_with("rlimit_as=lots: "), "{e}");
    }

    #[test]
    fn mmap_base_and_config_edits() {
        let mut t = TaskBuilder::new().mmap_base(0x7000_0000_0000).build().unwrap();
        assert_eq!(t.mmap(0, 4096, PROT_READ, ANON, -1, 0), Ok(0x7000_0000_0000 - 4096));
        let t = TaskBuilder::new()
            .config(|c| c.start_brk = 0x4000_0000)
            .build()
            .unwrap();
        assert_eq!(t.brk_range(), (0x4000_0000, 0x4000_0000));
    }

    #[test]
    fn a_snapshot_sets_heap_stack_and_base() {
        let maps = "\
555555554000-555555556000 r--p 00000000 00:00 0                          /bin/x
555555556000-555555577000 rw-p 00000000 00:00 0                          [heap]
7ffff7fc5000-7ffff7fc9000 r--p 00000000 00:00 0                          [vvar]
7ffff7fc9000-7ffff7fcb000 r-xp 00000000 00:00 0                          [vdso]
7ffff7fcb000-7ffff7fcc000 r--p 00000000 00:00 0                          /lib/ld.so
7ffffffde000-7ffffffff000 rw-p 00000000 00:00 0                          [stack]
";
        let mut t = TaskBuilder::new().snapshot(maps).build().unwrap();
        assert_eq!(t.brk_range(), (0x5555_5555_6000, 0x5555_5557_7000));
        assert!((0x7fff_fffd_e000..0x7fff_ffff_f000).contains(&t.start_stack()));
        // The mmap area starts below the interpreter, as after exec.
        assert_eq!(t.mmap(0, 4096, PROT_READ, ANON, -1, 0), Ok(0x7fff_f7fc_4000));
        // An explicit base wins.
        let mut t = TaskBuilder::new()
            .snapshot(maps)
            .mmap_base(0x6000_0000_0000)
            .build()
            .unwrap();
        assert_eq!(t.mmap(0, 4096, PROT_READ, ANON, -1, 0), Ok(0x6000_0000_0000 - 4096));
        // A bad snapshot is a typed error with its line.
        let Err(e) = TaskBuilder::new().snapshot("zz-10 r--p\n").build() else {
            panic!("a bad snapshot was taken");
        };
        assert!(matches!(e, BuildError::Snapshot(ref m) if m.line == 1), "{e}");
    }

    #[test]
    fn this_process_as_host_and_by_pid() {
        let host = TaskBuilder::host();
        let me = TaskBuilder::process(std::process::id());
        assert_eq!(host.env(), me.env());
    }
}
