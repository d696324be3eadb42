//! `mmsim record`: runs a program under ptrace, with address-space
//! randomization off, and writes a fixture directory that
//! `mmsim replay --fixture DIR` takes.
//!
//! # The fixture directory (format 2)
//!
//! | file | what |
//! |---|---|
//! | [`INITIAL_MAPS`] (`initial-maps.txt`) | `/proc/PID/maps` of the program at its first exec (the one it was started with: its stop before its first instruction) |
//! | [`TRACE`] (`trace.txt`) | every line from that exec to the end, of every task of every process, in the order the calls completed |
//! | [`FINAL_MAPS`] (`final-maps.txt`) | the final maps of the image the first process was in at its end (empty when they could not be read) |
//! | [`META`] (`meta.txt`) | `format: 2`, then `key: value` lines, see [`Meta`] |
//! | [`FILES`] (`files.txt`) | what each file a line opened or mapped was then, by line number |
//! | `mm/L.initial-maps.txt` | the maps of image `L` when it began |
//! | `mm/L.meta.txt` | for an image an exec began (and `0`): `pid`, `cwd`, `start_brk`, `brk`, `start_stack`, `rlimit_stack`, `personality` and the environment lines, as in `meta.txt` |
//! | `mm/L.final-maps.txt` | the maps of image `L` when its last task left it (empty when they could not be read) |
//!
//! An *image* is one address space, named by the 1-based number in
//! `trace.txt` of the line that created it: `0` for the first process's
//! first one, the exec line of a process that exec'd, or the fork-like
//! line of a child that got its own mm (no `CLONE_VM`).  A fork child's
//! `mm/L.initial-maps.txt` is read at its parent's event stop, before the
//! child runs; an exec's at its `PTRACE_EVENT_EXEC` stop; `mm/0.*` repeat
//! `initial-maps.txt` and the exec facts of `meta.txt`.  A thread, a
//! `vfork` child and another `CLONE_VM` child use their parent's image; an
//! exec moves the whole process to its new one.
//!
//! Besides the calls, the trace holds the process events, as strace `-f`
//! prints them, each after its task's id:
//!
//! ```text
//! 4242 clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD) = 4243
//! 4242 vfork() = 4244
//! 4242 clone3({flags=CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM|CLONE_SETTLS|CLONE_PARENT_SETTID|CLONE_CHILD_CLEARTID, exit_signal=0, stack=0x7ffff7200000, stack_size=0x7fff00}, 88) = 4245
//! 4243 execve("/usr/bin/ls", ["ls", "/"], 0x555555576ad0 /* 36 vars */) = 0
//! 4242 fork() = -1 EAGAIN (Resource temporarily unavailable)
//! 4243 +++ exited with 0 +++
//! 4245 +++ killed by SIGKILL +++
//! ```
//!
//! A fork-like line (named after the call the parent entered: `fork`,
//! `vfork`, `clone`, `clone3`) is written at the parent's
//! `PTRACE_EVENT_FORK`/`VFORK`/`CLONE` stop, so before any line of the
//! child; one that failed, at its exit stop with the error.  An exec line
//! (`execve` or `execveat`, with the path the thread passed, the new
//! program's arguments from `/proc/PID/cmdline` and the number of its
//! environment strings) is written at `PTRACE_EVENT_EXEC`, with the
//! process id; a failed exec is not written.  An exit line is written when
//! a task is reaped, for every thread.  These lines read back with
//! [`mm_ops::strace::Parser`] as skipped lines.
//!
//! A trace line is what `strace -f -y -o FILE` prints for the call: the
//! thread id, the call in canonical strace syntax
//! ([`mm_ops::strace::format_call`]), `-y` annotations on descriptor
//! arguments (`3</usr/lib/libc.so.6>`, `AT_FDCWD</home/me>`, the file a
//! `dup2` target referred to before the call), ` = ` and the result
//! ([`mm_ops::strace::format_result`]), annotated with its file when it is
//! a new descriptor:
//!
//! ```text
//! 4242 openat(AT_FDCWD</tmp>, "/etc/ld.so.cache", O_RDONLY|O_CLOEXEC) = 3</etc/ld.so.cache>
//! 4242 mmap(NULL, 25643, PROT_READ, MAP_PRIVATE, 3</etc/ld.so.cache>, 0) = 0x7ffff7fc3000
//! 4243 munmap(0x7ffff7fc3000, 25643) = 0
//! ```
//!
//! Every line reads back with [`mm_ops::strace::Parser`].
//!
//! Recorded calls: `mmap`, `munmap`, `mprotect`, `brk`, `mremap`,
//! `madvise`, `mlock`, `mlock2`, `munlock`, `mlockall`, `munlockall`, `open`, `openat`, `close`, `dup`, `dup2`, `dup3`,
//! `memfd_create`, `ftruncate`.  Not recorded, because the model's
//! [`Call`](mm_ops::call::Call) has no variant for them: `fcntl`
//! (`F_DUPFD`, `F_DUPFD_CLOEXEC`), `close_range`, `openat2`, `pkey_mprotect`,
//! `shmat`/`shmdt`, `process_madvise`, `mseal`, `remap_file_pages`, and
//! system calls made through the 32-bit ABI (`int 0x80`).  Descriptors such
//! calls (or `socket`, `pipe`, `eventfd`, …) create appear only through the
//! `-y` annotations of the calls that use them.
//!
//! # Tracing
//!
//! The program runs with `personality(ADDR_NO_RANDOMIZE)` (as `setarch -R`
//! runs it) under `PTRACE_TRACEME`; every task it and its descendants make
//! is followed, as `strace -f` follows them (`PTRACE_O_TRACEFORK`,
//! `TRACEVFORK`, `TRACECLONE`), none detached, and an exec does not restart
//! the recording.  Page faults are sampled for every task.  Signals are
//! passed on.  A group-stop (`SIGSTOP`, `SIGTSTP`, …) is not kept: the
//! tracee is resumed, as strace does without `--seize-tracees`.  `mmsim`
//! ignores `SIGINT` and `SIGQUIT` while the program runs, so that a Ctrl-C
//! goes to the program alone and the fixture is still written.
//!
//! Calls that change the layout (`mmap`, `munmap`, `mprotect`, `brk`,
//! `mremap`, `madvise`, the mlock family, and `fork`, `clone` or `clone3`
//! without `CLONE_VM`
//! until the parent's event stop) run one at a time per image: a task
//! entering one while another task of its image has one in flight waits at
//! its entry stop, so that the order in which calls complete (the order of
//! the trace) is the order the kernel applied them in.  A new task's first
//! stop, when it comes before its parent's event stop, waits for it.
//!
//! An image's final maps are read at the syscall-entry stop of
//! `exit_group`, or at a `PTRACE_EVENT_EXIT` stop (again when lines of the
//! image were written after the last read), by a task whose process is
//! alone in the image; and at the entry stop of an `execve` by a process
//! alone in its image, kept if the exec succeeds.
//!
//! [`record`] waits for any child of the calling process: call it from a
//! process that has no other children (the `mmsim` binary).

mod calls;
mod events;
mod faults;
mod fixture;
mod proc;
mod sys;
mod tracer;

use std::fmt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use nix::sys::personality::{self, Persona};
use nix::sys::ptrace;
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
use nix::unistd::Pid;

pub use calls::{annotation, call_text, line};
pub use fixture::{shell_join, shell_quote};

/// `initial-maps.txt`: the address space at the first exec.
pub const INITIAL_MAPS: &str = "initial-maps.txt";
/// `trace.txt`: the recorded calls.
pub const TRACE: &str = "trace.txt";
/// `final-maps.txt`: the address space of the first process when it ended.
pub const FINAL_MAPS: &str = "final-maps.txt";
/// `meta.txt`: facts about the run.
pub const META: &str = "meta.txt";
/// `mm/`: the snapshots of each address space (image), by trace line.
pub const MM_DIR: &str = "mm";
/// The fixture format `meta.txt` names on its first line (`format: 2`).
pub const FORMAT: u32 = 2;
/// `files.txt`: what each file a line opened or mapped was at that moment
/// (type, size, device, inode, file system), by trace line number.
pub const FILES: &str = "files.txt";

/// What to record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordOptions {
    /// The program and its arguments (`argv`); the program is looked up
    /// in `PATH` when it has no `/`.
    pub command: Vec<String>,
    /// The fixture directory (created if missing; the four files in it are
    /// replaced).
    pub dir: PathBuf,
    /// Record every page fault of the traced threads as `fault` lines
    /// (perf tracepoints; needs root and tracefs, else a warning and none).
    pub faults: bool,
}

/// `./mmsim-record-PROGNAME`, the default fixture directory for `command`.
pub fn default_dir(command: &[String]) -> PathBuf {
    let prog = command.first().map(String::as_str).unwrap_or("program");
    let base = Path::new(prog)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "program".into());
    PathBuf::from(format!("./mmsim-record-{base}"))
}

/// How the program ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this status.
    Code(i32),
    /// A signal killed it.
    Signal(i32),
}

impl Exit {
    /// The status a shell would report: the exit status, or 128 + the
    /// signal number.
    pub fn status(self) -> u8 {
        match self {
            Exit::Code(c) => (c & 0xff) as u8,
            Exit::Signal(s) => (128 + s).clamp(0, 255) as u8,
        }
    }
}

impl fmt::Display for Exit {
    /// `0`, or `signal 11`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exit::Code(c) => write!(f, "{c}"),
            Exit::Signal(s) => write!(f, "signal {s}"),
        }
    }
}

/// Where `final-maps.txt` was read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FinalMapsAt {
    /// At the syscall-entry stop of `exit_group`.
    ExitGroup,
    /// At a thread's `PTRACE_EVENT_EXIT` stop (the process ended without
    /// `exit_group`, or calls completed after it): the last such stop after
    /// the last recorded call, normally the last thread's.
    LastExit,
    /// At the syscall-entry stop of the `execve` that replaced the image.
    Exec,
    /// At the syscall-entry stop of the `ptrace(PTRACE_TRACEME)` at which
    /// the process was let go.
    Detached,
}

impl FinalMapsAt {
    fn name(self) -> &'static str {
        match self {
            FinalMapsAt::ExitGroup => "exit_group",
            FinalMapsAt::LastExit => "exit",
            FinalMapsAt::Exec => "execve",
            FinalMapsAt::Detached => "ptrace",
        }
    }
}

/// The contents of `meta.txt`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Meta {
    /// `command`: `argv`, shell-quoted, joined with spaces.
    pub command: String,
    /// `cwd`: the working directory at the first exec.
    pub cwd: String,
    /// `pid`: the process id.
    pub pid: i32,
    /// `start_brk`: `/proc/PID/stat` field 47 at the first exec (hex).
    pub start_brk: u64,
    /// `brk`: the program break at the first exec (hex; equal to
    /// `start_brk` then).
    pub brk: u64,
    /// `start_stack`: `/proc/PID/stat` field 28 at the first exec (hex).
    pub start_stack: u64,
    /// `rlimit_stack`: the soft `RLIMIT_STACK` in bytes
    /// (`18446744073709551615` for unlimited).
    pub rlimit_stack: u64,
    /// `personality`: the process's personality (hex).
    pub personality: u64,
    /// `kernel`: `uname -r`.
    pub kernel: String,
    /// `exit`: the first process's exit status, `signal N`, or `unknown`.
    pub exit: Option<Exit>,
    /// `calls`: the number of lines in `trace.txt`.
    pub calls: u64,
    /// `threads`: the tasks seen (every thread of every process), the
    /// first included.
    pub threads: u64,
    /// `processes`: the processes seen, the first included.
    pub processes: u64,
    /// `execs`: successful execs of every process after the first exec.
    pub execs: u64,
    /// `final_maps`: where `final-maps.txt` was read: `exit_group`, `exit`
    /// (the last thread's exit), `execve` (never for the image the first
    /// process ends in), or `none`.
    pub final_maps: Option<FinalMapsAt>,
    /// `unfinished`: recorded calls that entered the kernel but never
    /// returned (the thread died first); they are not in the trace.
    pub unfinished: u64,
    /// `detached`: processes let go at their `ptrace(PTRACE_TRACEME)` (a
    /// debugger's inferior: a task has one tracer); their later calls are
    /// not in the trace.
    pub detached: u64,
    /// `faults`: `recorded N` (every page fault is in the trace, `lost M`
    /// if some were dropped) or `none`.
    pub faults: Option<(u64, u64)>,
    /// The process's environment at the first exec (memory size, sysctls,
    /// THP mode, rlimits, capabilities): the keys of
    /// [`mm_ops::env::KEYS`] other than `rlimit_stack` and `personality`,
    /// which have their own lines above.
    pub env: mm_ops::env::ProcEnv,
}

impl Meta {
    /// `meta.txt`: `format: 2`, then one `key: value` line per field, in
    /// the order of the fields.
    pub fn render(&self) -> String {
        let exit = self.exit.map_or_else(|| "unknown".to_string(), |e| e.to_string());
        let final_maps = self.final_maps.map_or("none", FinalMapsAt::name);
        format!(
            "format: {FORMAT}\ncommand: {}\ncwd: {}\npid: {}\nstart_brk: {:#x}\nbrk: {:#x}\nstart_stack: {:#x}\n\
             rlimit_stack: {}\npersonality: {:#x}\nkernel: {}\nexit: {exit}\ncalls: {}\nthreads: {}\n\
             processes: {}\nexecs: {}\nfinal_maps: {final_maps}\nunfinished: {}\ndetached: {}\n",
            self.command,
            self.cwd,
            self.pid,
            self.start_brk,
            self.brk,
            self.start_stack,
            self.rlimit_stack,
            self.personality,
            self.kernel,
            self.calls,
            self.threads,
            self.processes,
            self.execs,
            self.unfinished,
            self.detached,
        ) + &match self.faults {
            Some((n, 0)) => format!("faults: recorded {n}\n"),
            Some((n, lost)) => format!("faults: recorded {n} lost {lost}\n"),
            None => "faults: none\n".to_string(),
        } + &env_lines(&self.env)
    }
}

/// The `key: value` lines of `env` that `meta.txt` (and `mm/L.meta.txt`)
/// hold: all but `rlimit_stack` and `personality`, which have their own.
fn env_lines(env: &mm_ops::env::ProcEnv) -> String {
    env.to_lines()
        .lines()
        .filter(|l| !l.starts_with("rlimit_stack:") && !l.starts_with("personality:"))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// What a recording gave.
#[derive(Clone, Debug)]
pub struct RecordSummary {
    /// The contents of `meta.txt`.
    pub meta: Meta,
    /// The fixture directory.
    pub dir: PathBuf,
    /// Things the user should know (calls that could not be recorded, a
    /// final address space that could not be read).
    pub warnings: Vec<String>,
}

/// Why a recording failed.
#[derive(Debug)]
pub enum RecordError {
    /// The fixture directory or a file in it could not be written.
    Output {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The program could not be started.
    Spawn {
        /// The program.
        program: String,
        /// The error.
        source: std::io::Error,
    },
    /// The program ended before its exec completed.
    NoExec,
    /// A ptrace or wait request failed.
    Ptrace {
        /// What was being done.
        what: &'static str,
        /// The error.
        errno: nix::errno::Errno,
    },
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordError::Output { path, source } => write!(f, "cannot write {}: {source}", path.display()),
            RecordError::Spawn { program, source } => write!(f, "cannot run {program}: {source}"),
            RecordError::NoExec => f.write_str("the program ended before its exec completed"),
            RecordError::Ptrace { what, errno } => write!(f, "{what}: {errno}"),
        }
    }
}

impl std::error::Error for RecordError {}

impl From<fixture::WriteError> for RecordError {
    fn from((path, source): fixture::WriteError) -> Self {
        RecordError::Output { path, source }
    }
}

/// Starts `command` stopped at its exec, traced by this process, with
/// address-space randomization off.
fn spawn(command: &[String]) -> Result<Pid, RecordError> {
    let program = command.first().cloned().unwrap_or_default();
    let mut cmd = Command::new(&program);
    cmd.args(&command[1..]);
    // SAFETY: the closure runs in the forked child between fork and exec.
    // It only makes three system calls (personality twice, then
    // ptrace(PTRACE_TRACEME)), which are async-signal-safe; it allocates
    // nothing and takes no lock (errors become an io::Error from a plain
    // errno value).
    unsafe {
        cmd.pre_exec(|| {
            let p = personality::get()?;
            personality::set(p | Persona::ADDR_NO_RANDOMIZE)?;
            ptrace::traceme()?;
            Ok(())
        });
    }
    let child = cmd.spawn().map_err(|source| RecordError::Spawn { program, source })?;
    Ok(Pid::from_raw(child.id() as i32))
}

/// Sets `SIGINT` and `SIGQUIT` to be ignored (or back, with the saved
/// actions).
fn ignore_interrupts(saved: Option<[SigAction; 2]>) -> Option<[SigAction; 2]> {
    let ign = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
    let sigs = [Signal::SIGINT, Signal::SIGQUIT];
    let mut old = Vec::new();
    for (i, s) in sigs.into_iter().enumerate() {
        let act = saved.as_ref().map_or(&ign, |a| &a[i]);
        // SAFETY: the action installed is SIG_IGN or an action saved from
        // an earlier call: no handler of ours runs, so no signal-safety
        // requirement applies.
        if let Ok(o) = unsafe { sigaction(s, act) } {
            old.push(o);
        }
    }
    old.try_into().ok()
}

/// Records `opts.command` into `opts.dir` (see the module documentation).
pub fn record(opts: &RecordOptions) -> Result<RecordSummary, RecordError> {
    if opts.command.is_empty() {
        return Err(RecordError::Spawn {
            program: String::new(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "no command"),
        });
    }
    let fixture = fixture::Fixture::create(&opts.dir)?;
    let child = spawn(&opts.command)?;
    let saved = ignore_interrupts(None);
    let traced = tracer::trace(child, fixture, opts.faults);
    if saved.is_some() {
        ignore_interrupts(saved);
    }
    let (fixture, t) = traced?;
    if let Some(e) = t.write_error {
        return Err(e.into());
    }
    let meta = Meta {
        command: shell_join(&opts.command),
        cwd: t.exec.cwd.clone(),
        pid: t.exec.pid,
        start_brk: t.exec.start_brk,
        brk: t.exec.start_brk,
        start_stack: t.exec.start_stack,
        rlimit_stack: t.exec.rlimit_stack,
        personality: t.exec.personality,
        kernel: proc::kernel_release(),
        exit: t.exit,
        calls: fixture.lines(),
        threads: t.threads,
        processes: t.processes,
        execs: t.execs,
        final_maps: t.final_maps.as_ref().map(|(_, at)| *at),
        unfinished: t.unfinished,
        detached: t.detached,
        env: t.exec.env.clone(),
        faults: t.faults,
    };
    let mut warnings = t.warnings;
    if t.final_maps.is_none() {
        warnings.push(format!(
            "the final address space could not be read; {FINAL_MAPS} is empty"
        ));
    }
    let final_text = t.final_maps.map(|(m, _)| m).unwrap_or_default();
    fixture.finish(&final_text, &meta)?;
    Ok(RecordSummary {
        meta,
        dir: opts.dir.clone(),
        warnings,
    })
}
