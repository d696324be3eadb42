//! `mmsim replay`: applies a trace in strace syntax to a fresh model and
//! prints every modeled call with the model's result.
//!
//! [`replay`] reads the input line by line with [`mm_ops::strace::Parser`]
//! and hands every modeled call to a [`Replayer`], which owns the model
//! ([`Task`]) and the rules that connect a trace to it:
//!
//! * **Descriptors.** `open`, `openat`, `dup` and `memfd_create` take their
//!   descriptor from the recorded result (`= 3`, `= 3</tmp/x>`); a recorded
//!   failure (`= -1 ENOENT (…)`) is not applied, and is printed as recorded,
//!   since the model cannot know whether a file existed. Without a recorded
//!   result they get the lowest descriptor the input has not shown open.
//!   A descriptor that no line opened counts as opened before the input
//!   began; its `-y` annotation (`5</tmp/x>`) names its file.
//! * **Paths.** Relative paths resolve against [`ReplayOptions::cwd`], or
//!   against the directory an `AT_FDCWD</dir>` annotation shows, or, for
//!   `openat(N, …)`, against the path the input showed for descriptor `N`.
//! * **Heap.** The initial break is [`ReplayOptions::brk`] when given;
//!   otherwise the recorded result of the input's first `brk` call (a
//!   trace's `brk(NULL) = 0x5555…` tells where the heap starts); otherwise 0.
//!
//! * **Start.** [`ReplayOptions::initial_maps`] starts the model from a
//!   `/proc/PID/maps` snapshot taken at the program's last `execve`; the
//!   replay then starts after the trace's last successful `execve` line
//!   (found by a first pass over a file; a stream starts over at each one).
//! * **Streaming.** The input is read a line at a time (`replay/session.rs`): the
//!   replay's memory is its model's, whatever the input's length.
//! * **Processes.** Every process of the trace has its own model: a fork
//!   child's is its parent's copied at the fork line, a vfork child shares
//!   its parent's, an exec starts over from the snapshot a format-2
//!   fixture took there (`tree.rs`; [`ReplayOptions::pid`] prints and
//!   checks one process tree). Once a second process appears, each printed
//!   line starts with its pid.
//! * **Check.** With [`ReplayOptions::check`], every model result is
//!   compared with the recorded one; differences are collected as
//!   [`Divergence`]s.
//! * **Protection keys.** Each trace line's thread runs with its own PKRU.
//!   A program changes it with `WRPKRU` (`pkey_set`), which no system call
//!   shows: a fault the trace shows succeeding through a key the thread's
//!   PKRU refuses in the model grants that access from then on
//!   ([`Step::pkru_learned`], counted in the summary).
//!
//! Other system calls, blank lines, comments and strace's own lines are
//! counted in the [`ReplaySummary`]; lines that are none of these are
//! counted as not understood, the first one named, and input in which
//! nothing is understood is an error. A line that cannot be read stops the
//! replay with a [`ReplayError`] naming the line.

mod deferred;
mod fds;
pub mod fixture;
mod paths;
pub mod procs;
mod report;
mod session;
mod tree;
mod written;

use std::io::{BufRead, Write};
use std::panic::AssertUnwindSafe;

use mm_core::{VmFlags, VmaView};
use mm_ops::call::{Access, Call, Outcome};
use mm_ops::env::ProcEnv;
use mm_ops::hostfs::host_probe;
use mm_ops::kernel::task_mmu::render_maps;
use mm_ops::kernel::vma::anon_vma_prepare;
use mm_ops::procmaps::parse_maps_snapshot;
use mm_ops::strace::{Recorded, TraceLine, format_result};
use mm_ops::task::Task;
use mm_ops::uapi::AT_FDCWD;

use fds::FdTracker;
pub use paths::ResolvedPathOp;
use report::panic_message;
pub use report::{Divergence, MapsCheck, ReplayError, ReplaySummary};
use session::{LastExec, Session};
pub use tree::ImageFacts;
use written::{affected_ranges, written_range};

/// How to replay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplayOptions {
    /// Print the final address space in `/proc/PID/maps` format after the
    /// calls.
    pub maps: bool,
    /// The initial program break (`start_brk = brk`); `None` takes it from
    /// the first `brk` call's recorded result, if any.
    pub brk: Option<u64>,
    /// The working directory relative paths resolve against (absolute).
    pub cwd: String,
    /// A `/proc/PID/maps` snapshot to start from (taken at the last
    /// `execve`); the replay then skips the trace up to that `execve`.
    pub initial_maps: Option<String>,
    /// `mm->mmap_base`; `None`: the host's with ASLR off and an 8 MiB stack
    /// limit (`0x7ffff7fff000`).
    pub mmap_base: Option<u64>,
    /// `mm->start_stack` (names `[stack]`); `None`: inside the snapshot's
    /// `[stack]` line.
    pub start_stack: Option<u64>,
    /// Compare every result with the recorded one.
    pub check: bool,
    /// Assume the program writes to private writable memory as soon as a
    /// call makes it writable: give it an `anon_vma` as a write fault
    /// would. A trace shows no page faults, but they decide whether two
    /// anonymous VMAs can merge later. On by default with
    /// [`initial_maps`](Self::initial_maps) (a real program).
    pub assume_written: Option<bool>,
    /// The process's environment (limits, credentials, sysctls, memory
    /// size, personality): the reference host's by default, a fixture's
    /// `meta.txt` when replaying one.
    pub env: ProcEnv,
    /// `--env KEY=VALUE` settings, applied over [`env`](Self::env).
    pub env_overrides: Vec<(String, String)>,
    /// What the file a line opened or mapped was when the program ran (a
    /// fixture's `files.txt`), by line number: the replay uses it instead
    /// of the host's file system, which may have changed since.
    pub file_facts: std::collections::BTreeMap<usize, mm_ops::task::PathInfo>,
    /// Write each call as a JSON object on its own line
    /// ([`crate::json::replay_call`]) instead of strace syntax; the final
    /// maps are then left to the summary object, not printed as text.
    pub json: bool,
    /// The trace holds every process from the first one's first exec on
    /// (a fixture of format 2): the replay starts at its first line, and
    /// each exec in it starts its process's new image from
    /// [`images`](Self::images). Otherwise, with
    /// [`initial_maps`](Self::initial_maps), the replay starts after the
    /// first process's last exec.
    pub whole_trace: bool,
    /// What the recorder saw of each address space, by the line that
    /// created it (0: the first process's first image): snapshots at execs
    /// and forks, and final maps.
    pub images: std::sync::Arc<std::collections::BTreeMap<usize, ImageFacts>>,
    /// Print and check only this process and its descendants (`--pid`);
    /// the others are replayed all the same, since a child's model is its
    /// parent's at the fork.
    pub pid: Option<u32>,
}

impl Default for ReplayOptions {
    /// No maps, break from the trace, and the current directory of this
    /// process (`/` if it has none).
    fn default() -> Self {
        let cwd = std::env::current_dir()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(|_| "/".into());
        ReplayOptions {
            maps: false,
            brk: None,
            cwd,
            initial_maps: None,
            mmap_base: None,
            start_stack: None,
            check: false,
            assume_written: None,
            env: ProcEnv::default(),
            env_overrides: Vec::new(),
            file_facts: Default::default(),
            json: false,
            whole_trace: false,
            images: Default::default(),
            pid: None,
        }
    }
}

/// What one replayed call gave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step {
    /// The result to print: the model's, or the recorded one when the call
    /// was not applied.
    pub outcome: Outcome,
    /// False for an open-like call whose recorded failure was taken as is.
    pub applied: bool,
    /// A fault the trace shows succeeding through a protection key the
    /// thread's PKRU (as the model knew it) refused: the program changed
    /// its PKRU with `WRPKRU`, which no system call shows, and the model's
    /// now grants that access ([`pkru_granting`](mm_ops::kernel::pkeys::pkru_granting)).
    pub pkru_learned: bool,
}

/// Files as the recording saw them, by path (the canonical one and the
/// one the program opened), consulted before the host.
type KnownFiles = std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, mm_ops::task::PathInfo>>>;

/// The model and the rules that apply a trace's calls to it.
pub struct Replayer {
    known: KnownFiles,
    task: Task,
    fds: FdTracker,
    cwd: String,
    brk_decided: bool,
    assume_written: bool,
    /// Ranges made writable whose first write is still to come.
    unwritten: Vec<(u64, u64)>,
}

impl Replayer {
    /// A fresh model configured like the host (ASLR off, root), with the
    /// host's file system behind paths, set up as `opts` says.
    pub fn new(opts: &ReplayOptions) -> Result<Replayer, String> {
        let mut env = opts.env.clone();
        for (k, v) in &opts.env_overrides {
            env.set(k, v).map_err(|e| format!("--env {k}={v}: {e}"))?;
        }
        let mut cfg = env.config();
        if let Some(b) = opts.mmap_base {
            cfg.mmap_base = b;
        }
        // The break is unknown until the trace's first brk, a snapshot's
        // heap or --brk decides it; until then brk(NULL) answers 0.
        cfg.start_brk = 0;
        let mut task = Task::new(cfg);
        let known = KnownFiles::default();
        let (k, host) = (known.clone(), host_probe());
        task.set_probe(Box::new(move |path: &str| {
            let from_trace = k.lock().expect("known files").get(path).cloned();
            from_trace.or_else(|| host(path))
        }));
        task.dir_fs_probe = Some(mm_ops::hostfs::host_dir_fs);
        task.inherit_unknown_fds = true;
        let mut r = Replayer {
            known,
            task,
            fds: FdTracker::default(),
            cwd: String::new(),
            brk_decided: false,
            assume_written: opts.assume_written.unwrap_or(opts.initial_maps.is_some()),
            unwritten: Vec::new(),
        };
        r.set_cwd(&opts.cwd);
        if let Some(text) = &opts.initial_maps {
            r.import(text, opts.start_stack, opts.mmap_base.is_none())?;
        }
        if let Some(b) = opts.brk {
            if r.brk_decided {
                // The snapshot has a heap: it decided the break; `b` is
                // where the heap starts.
                r.task.mm().write().st().start_brk = b;
            } else {
                r.set_brk(b);
            }
        }
        Ok(r)
    }

    /// Starts from a maps snapshot: its VMAs, `[heap]` as the break and
    /// `[stack]` as the initial stack.
    ///
    /// With `infer_layout`, the mmap area's base comes from where the ELF
    /// loader put the program interpreter (or, for a static program, the
    /// vDSO): the first mappings of the area after `exec`, so its top in
    /// the top-down layout (`mmap_base`) and its bottom in the legacy one
    /// (`mmap_legacy_base`). That also holds when the program ran with
    /// randomization (`setarch` clears `ADDR_NO_RANDOMIZE`), where no
    /// limit or personality can tell the base.
    fn import(&mut self, text: &str, start_stack: Option<u64>, infer_layout: bool) -> Result<(), String> {
        let task_size = self.task.mm().task_size();
        let lines = parse_maps_snapshot(text, task_size).map_err(|e| format!("initial maps: {e}"))?;
        self.task
            .import_maps(&lines)
            .map_err(|e| format!("initial maps: {e}"))?;
        let stack = lines.iter().find(|l| l.name == "[stack]");
        let heap = lines.iter().find(|l| l.name == "[heap]");
        let mut w = self.task.mm().write();
        let st = w.st();
        if let Some(s) = start_stack.or(stack.map(|l| l.end - 8)) {
            st.start_stack = s;
        }
        if let Some(h) = heap {
            st.start_brk = h.start;
            st.brk = h.end;
            self.brk_decided = true;
        }
        drop(w);
        if infer_layout {
            self.task.infer_mmap_base(&lines);
        }
        Ok(())
    }

    /// The model.
    pub fn task(&self) -> &Task {
        &self.task
    }

    /// The model, to set up before the first call.
    pub fn task_mut(&mut self) -> &mut Task {
        &mut self.task
    }

    /// Sets the initial program break (`start_brk = brk = addr`); the first
    /// `brk` call of the input then no longer decides it.
    pub fn set_brk(&mut self, addr: u64) {
        let mut w = self.task.mm().write();
        let st = w.st();
        st.start_brk = addr;
        st.brk = addr;
        self.brk_decided = true;
    }

    /// Sets the directory relative paths resolve against.
    pub fn set_cwd(&mut self, dir: &str) {
        self.task.set_cwd(dir);
        let d = dir.trim_end_matches('/');
        self.cwd = if d.is_empty() { "/".into() } else { d.into() };
    }

    /// The address space in `/proc/PID/maps` format, `[vsyscall]` line
    /// included.
    pub fn maps(&self) -> String {
        let r = self.task.mm().read();
        let files = r.files();
        render_maps(&r, &files, true)
    }

    /// Applies one call of the trace (see the module documentation for
    /// the rules).
    pub fn step(&mut self, line: &TraceLine) -> Step {
        let call = &line.call;
        self.take_annotations(line);
        let recorded = line.recorded.as_ref().and_then(Recorded::outcome);
        if let Call::Brk { .. } = call
            && !self.brk_decided
        {
            self.brk_decided = true;
            if let Some(Outcome::Val(v)) = recorded {
                self.set_brk(v);
            }
        }
        // Hard limits are not in the fixture: a limit change the kernel
        // refused (raising one without CAP_SYS_RESOURCE) is taken as
        // recorded.
        if let (Call::Setrlimit { .. }, Some(Outcome::Err(e))) = (call, recorded) {
            return Step {
                outcome: Outcome::Err(e),
                applied: false,
                pkru_learned: false,
            };
        }
        let mut want = None;
        if takes_recorded_fd(call) {
            match recorded {
                Some(Outcome::Val(v)) if v <= i32::MAX as u64 => want = Some(v as i64),
                Some(other) => {
                    return Step {
                        outcome: other,
                        applied: false,
                        pkru_learned: false,
                    };
                }
                None if matches!(call, Call::Shmget { .. }) => {}
                None => want = Some(self.fds.lowest_free()),
            }
        }
        let pkru_learned = match (call, recorded) {
            (Call::Fault { addr, access }, Some(Outcome::Val(_))) if *access != Access::Exec => {
                self.learn_pkru(*addr, *access == Access::Write)
            }
            _ => false,
        };
        let applied = self.with_dirfd_path(call);
        let old_brk = self.task.mm().read().state_brk();
        if self.assume_written {
            // Memory made writable is written once the program moves on to
            // something else: a call that does not touch the ranges still
            // being set up flushes them first.
            let busy = affected_ranges(call, recorded, old_brk)
                .iter()
                .any(|&(s, e)| self.unwritten.iter().any(|&(ps, pe)| s <= pe && ps <= e));
            if !busy {
                self.flush_unwritten();
            }
        }
        let outcome = self.task.apply(&applied, want);
        if self.assume_written
            && let Some(r) = written_range(call, &outcome, old_brk)
        {
            self.unwritten.push(r);
        }
        let path = match (&line.recorded, applied.as_ref()) {
            (Some(Recorded::FdWithPath(_, p)), _) => Some(p.clone()),
            (_, Call::Open { path, .. } | Call::Openat { path, .. }) => Some(self.absolute(path)),
            _ => None,
        };
        self.fds.after(call, &outcome, path);
        Step {
            outcome,
            applied: true,
            pkru_learned,
        }
    }

    /// Before a data access at `addr` that the trace shows succeeding: if
    /// the running thread's PKRU, as the model has it, refuses the key of
    /// the VMA there, the program must have changed it (`WRPKRU`): the
    /// model's PKRU grants the access from now on. True if it changed.
    fn learn_pkru(&mut self, addr: u64, write: bool) -> bool {
        use mm_ops::kernel::pkeys::{pkru_allows, pkru_granting, vma_pkey};
        let mm = self.task.mm();
        let key = {
            let r = mm.read();
            let Some(id) = r.vma_lookup(addr) else {
                return false;
            };
            vma_pkey(r.vma(id).flags)
        };
        let pkru = mm.pkru();
        if pkru_allows(pkru, key, write) {
            return false;
        }
        mm.set_pkru(pkru_granting(pkru, key, write));
        mm.pkru() != pkru
    }

    /// Writes the memory assumed about to be written ([`ReplayOptions::assume_written`]).
    fn flush_unwritten(&mut self) {
        for (s, e) in std::mem::take(&mut self.unwritten) {
            self.write_fault(s, e);
        }
    }

    /// What a first write to each private writable VMA in `[start, end)`
    /// does to it: `anon_vma_prepare` (`do_anonymous_page`/`do_wp_page`).
    fn write_fault(&mut self, start: u64, end: u64) {
        let r = self.task.mm().read();
        let mut next = r.find_vma(start);
        while let Some(id) = next {
            let v = r.vma(id);
            if v.start >= end {
                break;
            }
            if v.flags.contains(VmFlags::WRITE) && !v.flags.contains(VmFlags::SHARED) && v.anon_vma.is_none() {
                anon_vma_prepare(&r, id);
            }
            next = r.vma_next(id);
        }
    }
}

/// The calls whose descriptor comes from the recorded result (`dup2` and
/// `dup3` name theirs), and `shmget`, whose segment id does: ids depend
/// on the IPC namespace's whole history.
fn takes_recorded_fd(call: &Call) -> bool {
    matches!(
        call,
        Call::Open { .. }
            | Call::Openat { .. }
            | Call::Dup { .. }
            | Call::MemfdCreate { .. }
            | Call::MemfdSecret { .. }
            | Call::Shmget { .. }
    )
}

/// `AT_FDCWD` as the `int` the kernel reads.
pub(crate) fn is_at_fdcwd(dirfd: i64) -> bool {
    dirfd as i32 == AT_FDCWD as i32
}

pub(crate) fn join(dir: &str, path: &str) -> String {
    if dir.ends_with('/') {
        format!("{dir}{path}")
    } else {
        format!("{dir}/{path}")
    }
}

/// Applies one call read from line `lineno` and, with `check`, compares
/// its result with the recorded one. A panic in the model (a bug there)
/// must not take mmsim down with it: it ends the replay with an error
/// naming the line, and the model is not used after it.
fn apply_line(
    r: &mut Replayer,
    tl: &TraceLine,
    lineno: usize,
    text: &str,
    check: bool,
    summary: &mut ReplaySummary,
) -> Result<Step, ReplayError> {
    let step =
        std::panic::catch_unwind(AssertUnwindSafe(|| r.step(tl))).map_err(|payload| ReplayError::ModelPanic {
            line: lineno,
            message: panic_message(payload.as_ref()),
            text: text.to_string(),
        })?;
    summary.pkru_learned += usize::from(step.pkru_learned);
    if let (true, Some(rec)) = (check, tl.recorded.as_ref().and_then(Recorded::outcome)) {
        summary.checked += 1;
        if rec != step.outcome {
            let addrs = report::call_addresses(&tl.call, &[&step.outcome, &rec]);
            summary.divergences.push(Divergence {
                line: lineno,
                text: text.to_string(),
                model: format_result(&tl.call, &step.outcome),
                recorded: format_result(&tl.call, &rec),
                around: report::maps_around(&r.maps(), &addrs),
            });
        }
    }
    Ok(step)
}

/// Replays `input` as `opts` says, writing one line per modeled call (and
/// the maps, with [`ReplayOptions::maps`]) to `out`. The input is
/// streamed: the replay needs memory for its model, not for its input, so
/// a pipe of any length works. With [`ReplayOptions::initial_maps`] the
/// replay starts after the input's last successful `execve`; a stream
/// cannot look ahead, so it starts after each one it meets, over again
/// ([`ReplaySummary::restarts`]). [`replay_from`] with a known start (a
/// first pass over a file with [`lines_before_last_exec`]) avoids that.
pub fn replay(input: impl BufRead, opts: &ReplayOptions, out: &mut impl Write) -> Result<ReplaySummary, ReplayError> {
    replay_from(input, None, opts, out)
}

/// Reads every line of `input`, calling `f` with its number (from 1) and
/// its text (invalid UTF-8 replaced).
fn for_each_line(
    mut input: impl BufRead,
    mut f: impl FnMut(usize, &str) -> Result<(), ReplayError>,
) -> Result<usize, ReplayError> {
    let mut buf = Vec::new();
    let mut n = 0;
    loop {
        buf.clear();
        let got = input
            .read_until(b'\n', &mut buf)
            .map_err(|source| ReplayError::Read { line: n + 1, source })?;
        if got == 0 {
            return Ok(n);
        }
        n += 1;
        let text = String::from_utf8_lossy(&buf);
        f(n, text.trim_end_matches(['\n', '\r']))?;
    }
}

/// The number of lines before (and including) the last successful `execve`
/// of the followed process: where a replay from a snapshot starts.
pub fn lines_before_last_exec(input: impl BufRead) -> Result<usize, ReplayError> {
    let mut exec = LastExec::default();
    for_each_line(input, |_, text| {
        exec.observe(text);
        Ok(())
    })?;
    Ok(exec.start)
}

/// [`replay`], skipping the first `start` lines when it is given.
pub fn replay_from(
    input: impl BufRead,
    start: Option<usize>,
    opts: &ReplayOptions,
    out: &mut impl Write,
) -> Result<ReplaySummary, ReplayError> {
    let follow_execs = start.is_none() && opts.initial_maps.is_some() && !opts.whole_trace;
    let skip = start.unwrap_or(0);
    let mut session = Session::new(opts, skip)?;
    let mut exec = LastExec::default();
    let mut restarts = 0;
    for_each_line(input, |n, text| {
        if n <= skip {
            return Ok(());
        }
        if follow_execs && exec.observe(text) {
            if session.summary.calls > 0 {
                restarts += 1;
            }
            session = Session::new(opts, n)?;
            return Ok(());
        }
        session.feed(n, text, out)
    })?;
    session.summary.restarts = restarts;
    session.finish(out)
}

/// [`replay`] over lines already read.
pub fn replay_lines(
    lines: &[String],
    opts: &ReplayOptions,
    out: &mut impl Write,
) -> Result<ReplaySummary, ReplayError> {
    let start = if opts.initial_maps.is_some() && !opts.whole_trace {
        procs::start_after_last_exec(lines)
    } else {
        0
    };
    let mut session = Session::new(opts, start)?;
    for (i, text) in lines.iter().enumerate().skip(start) {
        session.feed(i + 1, text, out)?;
    }
    session.finish(out)
}
