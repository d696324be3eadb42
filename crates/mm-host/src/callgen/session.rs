//! The session runner: a fresh [`Twin`] per session, set up by the seed
//! ([`session_options`]), stepped through [`CallGen`]'s calls, compared
//! after every call, stopped at the first divergence.

use std::io;
use std::path::{Path, PathBuf};

use mm_core::VmaView;
use mm_ops::call::{Access, Call, Outcome};
use mm_ops::strace::format_call;
use mm_ops::uapi::*;

use super::CallGen;
use crate::HostOptions;
use crate::twin::Twin;

/// A disagreement between the model and the host.
#[derive(Debug)]
pub struct Divergence {
    /// Seed of the session.
    pub seed: u64,
    /// The calls up to and including the divergent one, in strace syntax with
    /// the host's result (a replayable script).
    pub script: Vec<String>,
    /// What differed.
    pub what: String,
}

impl std::fmt::Display for Divergence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "divergence in session with seed {}: {}", self.seed, self.what)?;
        writeln!(f, "calls so far (host results):")?;
        for l in &self.script {
            writeln!(f, "  {l}")?;
        }
        Ok(())
    }
}

/// Counts from a session.
#[derive(Clone, Debug, Default)]
pub struct SessionStats {
    /// Calls compared.
    pub calls: usize,
    /// Maps snapshots compared.
    pub maps: usize,
    /// Per call name and outcome kind (`"mmap ok"`, `"mmap ENOMEM"`,
    /// `"fault SIGSEGV"`): how many.
    pub outcomes: std::collections::BTreeMap<String, usize>,
    /// Largest number of VMAs seen in the model.
    pub max_vmas: usize,
    /// Rounds of `PROCMAP_QUERY` comparisons (every VMA boundary of the
    /// session's region, seven flag sets).
    pub procmap_queries: usize,
}

impl SessionStats {
    /// Adds another session's counts.
    pub fn merge(&mut self, o: &SessionStats) {
        self.procmap_queries += o.procmap_queries;
        self.calls += o.calls;
        self.maps += o.maps;
        for (k, v) in &o.outcomes {
            *self.outcomes.entry(k.clone()).or_default() += v;
        }
        self.max_vmas = self.max_vmas.max(o.max_vmas);
    }
}

/// The helper's environment for session `seed`: every third session runs
/// without capabilities (EPERM, mlock limits); every fourth under tight
/// `RLIMIT_AS`, `RLIMIT_DATA` and `RLIMIT_MEMLOCK` (ENOMEM, EAGAIN part-way
/// through the script) and `RLIMIT_NOFILE` 1024; every fifth, when the tests run as root, as the
/// unprivileged user `nobody` (65534), whose files are the same ones;
/// every sixth in the legacy layout, every seventh with
/// `READ_IMPLIES_EXEC`, every eighth with a 1 GiB, 64 MiB or unlimited
/// stack limit.
pub fn session_options(seed: u64) -> HostOptions {
    let mut opts = HostOptions {
        drop_capabilities: seed % 3 == 2,
        ..HostOptions::default()
    };
    if seed % 4 == 1 {
        opts.rlimits = vec![
            (libc::RLIMIT_AS, (48 + (seed / 4) % 64) << 20),
            (libc::RLIMIT_DATA, (1 + (seed / 4) % 8) << 20),
            (libc::RLIMIT_MEMLOCK, ((seed / 4) % 5) * (16 << 10)),
            // The least the helper runs with: its protocol pipes are 1022
            // and 1023.
            (libc::RLIMIT_NOFILE, 1024),
            // Below some of the sizes ftruncate asks for (EFBIG).
            (libc::RLIMIT_FSIZE, 16 << 10),
        ];
    }
    // SAFETY: geteuid has no preconditions.
    if seed % 5 == 4 && unsafe { libc::geteuid() } == 0 {
        opts.user = Some(65534);
    }
    // Every sixth: the legacy bottom-up layout; every seventh:
    // READ_IMPLIES_EXEC; every eighth, another stack limit (mmap_base).
    if seed % 6 == 5 {
        opts.personality |= mm_ops::env::ADDR_COMPAT_LAYOUT;
    }
    if seed % 7 == 3 {
        opts.personality |= mm_ops::env::READ_IMPLIES_EXEC;
    }
    if seed % 8 == 6 {
        opts.stack_limit = Some([1 << 30, 64 << 20, libc::RLIM_INFINITY][(seed / 8 % 3) as usize]);
    }
    // Every ninth: address-space randomization on.
    if seed % 9 == 7 {
        opts.aslr = true;
    }
    opts
}

/// Whether `call` would unmap, move, remap over, protect or discard any
/// of `vital` (the helper's code, data and stack).
fn breaks_helper(call: &Call, vital: &[(u64, u64)]) -> bool {
    let hits = |a: u64, len: u64| {
        let a = a & !(PAGE_SIZE - 1);
        let end = a.saturating_add(len.max(1)).saturating_add(PAGE_SIZE - 1);
        vital.iter().any(|&(s, e)| a < e && s < end)
    };
    match *call {
        Call::Mmap { addr, len, flags, .. } => flags & (MAP_FIXED | MAP_FIXED_NOREPLACE) != 0 && hits(addr, len),
        Call::Munmap { addr, len }
        | Call::Mprotect { addr, len, .. }
        | Call::PkeyMprotect { addr, len, .. }
        | Call::Madvise { addr, len, .. } => hits(addr, len),
        Call::RemapFilePages { start, size, .. } => hits(start, size),
        // A seal on the helper's own mappings would stop its allocator
        // from giving memory back; the calls' mappings are what is tested.
        // Arguments that `do_mseal` refuses up front seal nothing.
        Call::Mseal { addr, len, flags } => {
            let valid = flags == 0
                && addr % PAGE_SIZE == 0
                && len
                    .checked_add(PAGE_SIZE - 1)
                    .is_some_and(|l| addr.checked_add(l).is_some());
            valid && hits(addr, len)
        }
        // SHM_REMAP replaces what is there, as MAP_FIXED does.
        Call::Shmat { addr, flags, .. } => {
            flags & mm_ops::kernel::shm::SHM_REMAP != 0 && addr != 0 && hits(addr, 64 * PAGE_SIZE)
        }
        Call::Mremap {
            old_addr,
            old_len,
            new_len,
            new_addr,
            ..
        } => hits(old_addr, old_len.max(new_len)) || hits(new_addr, new_len),
        _ => false,
    }
}

/// Makes `dir/`[`LOCKED_DIR`] (mode `0700`) with a file `f` in it, unless
/// it is there or the mount is read-only (then the opens find nothing).
fn make_locked_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let locked = dir.join(super::LOCKED_DIR);
    if locked.exists() {
        return Ok(());
    }
    match std::fs::create_dir(&locked) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EROFS) => return Ok(()),
        Err(e) => return Err(e),
    }
    std::fs::write(locked.join("f"), vec![7u8; 2 * PAGE_SIZE as usize])?;
    std::fs::set_permissions(locked.join("f"), std::fs::Permissions::from_mode(0o644))?;
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o700))
}

/// Keeps the helper's protection key 0 usable. `pkey_free(0)` gives the
/// default key back (the kernel lets it); the next `pkey_alloc`, or the
/// next execute-only mapping (which takes the lowest free key as its
/// execute-only key), then hands key 0 out with rights that go into the
/// helper's PKRU, and all its own memory is key 0: rights that deny access
/// or writes would stop it at its next access (seeds 7006 and 7104 on a
/// host with `ospke`). A fork child starts with its parent's guard, as
/// with its key map.
#[derive(Clone, Copy, Debug, Default)]
pub struct Key0Guard {
    free: bool,
}

impl Key0Guard {
    /// Makes `call` safe to send: while key 0 is free, `pkey_alloc` asks
    /// for all rights, and an execute-only `mmap`/`mprotect`/
    /// `pkey_mprotect` is not sent (`false`).
    pub fn adjust(&self, call: &mut Call) -> bool {
        if !self.free {
            return true;
        }
        match call {
            Call::PkeyAlloc { init_val, .. } => {
                *init_val = 0;
                true
            }
            Call::Mmap { prot, .. } | Call::Mprotect { prot, .. } | Call::PkeyMprotect { prot, .. } => {
                *prot & (PROT_READ | PROT_WRITE | PROT_EXEC) != PROT_EXEC
            }
            _ => true,
        }
    }

    /// Notes what `call` did to key 0 (the kernel reads the key from a
    /// 32-bit int).
    pub fn observe(&mut self, call: &Call, out: &Outcome) {
        match (call, out) {
            (Call::PkeyFree { pkey }, Outcome::Val(_)) if *pkey as i32 == 0 => self.free = true,
            (Call::PkeyAlloc { .. }, Outcome::Val(0)) => self.free = false,
            _ => {}
        }
    }
}

/// Runs `n` random calls from `seed` on a fresh twin, comparing every
/// outcome and the maps after every call.
pub fn run_session(seed: u64, n: usize, dir: &Path) -> io::Result<Result<SessionStats, Divergence>> {
    let mut cg = CallGen::new(seed, dir);
    for (i, p) in cg.file_paths().iter().enumerate() {
        match std::fs::File::create(p) {
            Ok(f) => f.set_len(((i as u64) + 1) * 3 * PAGE_SIZE + 100)?,
            // A read-only mount: the files made before it became read-only
            // stay as they are.
            Err(e) if e.raw_os_error() == Some(libc::EROFS) && Path::new(p).exists() => {}
            Err(e) => return Err(e),
        }
    }
    make_locked_dir(Path::new(cg.file_dir()))?;
    let opts = HostOptions {
        // The files' directory: the calls' relative paths start there.
        cwd: Some(PathBuf::from(cg.file_dir())),
        ..session_options(seed)
    };
    let mut twin = Twin::spawn_with(&opts)?;
    cg.brk = twin.model.mm().read().state_brk();
    let stat_start_brk = cg.brk;
    // The helper's own mappings (program, libraries, stack): never targets.
    // In the legacy layout its libraries sit low, next to what the calls map.
    let own: Vec<(u64, u64)> = twin
        .model
        .mm()
        .read()
        .snapshot()
        .iter()
        .map(|v| (v.start, v.end))
        .collect();
    // Of those, what the helper runs on: all but [vdso] and [vvar*].
    let vital: Vec<(u64, u64)> = twin
        .model
        .mm()
        .read()
        .snapshot()
        .iter()
        .filter(|v| v.special.is_none())
        .map(|v| (v.start, v.end))
        .collect();
    let mut script = vec![];
    let mut stats = SessionStats::default();
    let mut key0 = Key0Guard::default();
    for _ in 0..n {
        cg.set_vmas(
            twin.model
                .mm()
                .read()
                .snapshot()
                .iter()
                // Not the helper's own code, data or stack.
                .filter(|v| v.start >= stat_start_brk && v.end <= 0x7fff_f7ff_7000)
                .filter(|v| !own.iter().any(|&(s, e)| v.start < e && s < v.end))
                .map(|v| (v.start, v.end))
                .collect(),
        );
        let mut call = cg.next_call();
        // A call that would unmap, move, protect or discard the helper's
        // own code, data or stack (a range reaching below the heap into
        // its bss, seed 21540) would kill or corrupt it: not sent.
        if breaks_helper(&call, &vital) {
            continue;
        }
        // With randomization, MAP_32BIT's window starts somewhere random in
        // its first 32 MiB at every call: nothing to compare.
        if opts.aslr && matches!(call, Call::Mmap { flags, .. } if flags & MAP_32BIT != 0) {
            continue;
        }
        // An instruction fetch runs the instruction there: in the helper's
        // own code or [vdso] that is whatever those bytes do (seed 10229,
        // legacy layout: SIGSEGV inside [vdso]). Fetches from the helper's
        // own mappings are reads instead.
        if let Call::Fault { addr, access } = &mut call
            && *access == Access::Exec
            && own.iter().any(|&(s, e)| (s..e).contains(addr))
        {
            *access = Access::Read;
        }
        if !key0.adjust(&mut call) {
            continue;
        }
        let (h, m) = twin.step(&call).map_err(|e| {
            io::Error::other(format!(
                "{e}\nat `{}`, after:\n  {}",
                format_call(&call),
                script.join("\n  ")
            ))
        })?;
        script.push(format!("{} = {}", format_call(&call), h.render(call.returns_address())));
        stats.calls += 1;
        if h != m {
            let what = format!(
                "result: host {} model {}\nthe model's maps after the call:\n{}",
                h.render(true),
                m.render(true),
                twin.model_maps()
            );
            return Ok(Err(Divergence { seed, script, what }));
        }
        cg.observe(&call, &h);
        key0.observe(&call, &h);
        let kind = match h {
            Outcome::Val(_) => "ok".to_string(),
            Outcome::Err(e) => e.name().unwrap_or("?").to_string(),
            Outcome::Signal(sig) => sig.name().to_string(),
        };
        *stats.outcomes.entry(format!("{} {kind}", call.name())).or_default() += 1;
        stats.max_vmas = stats.max_vmas.max(twin.model_vma_count());
        stats.maps += 1;
        let lost = |e: io::Error| io::Error::other(format!("{e}\nafter:\n  {}", script.join("\n  ")));
        if let Some(d) = twin.diff_maps().map_err(lost)? {
            return Ok(Err(Divergence {
                seed,
                script,
                what: format!("maps after the last call:\n{d}"),
            }));
        }
        if let Some(d) = twin.diff_vmflags().map_err(lost)? {
            return Ok(Err(Divergence {
                seed,
                script,
                what: format!("smaps VmFlags after the last call:\n{d}"),
            }));
        }
        // PROCMAP_QUERY over the session's region, every 8th call.
        if stats.calls % 8 == 0 {
            if let Some(d) = twin.diff_procmap_query(stat_start_brk, 0x7fff_f7ff_7000)? {
                return Ok(Err(Divergence {
                    seed,
                    script,
                    what: format!("after the last call: {d}"),
                }));
            }
            stats.procmap_queries += 1;
        }
    }
    Ok(Ok(stats))
}

/// A fresh temporary directory for a session's files.
pub fn temp_dir(tag: &str) -> io::Result<PathBuf> {
    let d = std::env::temp_dir().join(format!("mm-sim-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d)?;
    Ok(d)
}
