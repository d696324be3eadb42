//! The ptrace loop: follows the threads of one process from its exec to
//! its exit, pairs each thread's syscall-entry and syscall-exit stops, and
//! writes a trace line when a recorded call completes.
//!
//! # One address-space call at a time
//!
//! Lines are written when calls complete, but two threads' calls that
//! overlap in time may reach the kernel's `mmap_lock` in one order and
//! report their exit stops in the other; a replay in completion order
//! would then give each `mmap` the other's address.  So the calls that
//! change the layout (`mmap`, `munmap`, `mprotect`, `brk`, `mremap`,
//! `madvise`) are serialized: a thread that enters one while another
//! thread's is in flight is held at its entry stop until that one's exit
//! stop, then let go (first come, first served).  Completion order is then
//! the kernel's order.  A call in flight for more than [`HOLD_LIMIT`]
//! (which could be a thread waiting, through `userfaultfd`, on a held one)
//! releases the held threads, giving up the guarantee for them rather than
//! deadlocking.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use mm_ops::call::{Call, Outcome};
use nix::errno::Errno;
use nix::libc;
use nix::sys::ptrace::{self, Options};
use nix::unistd::Pid;

use super::calls::{self, Entry, FdArg, MEMFD_NAME_MAX, PATH_MAX, StringArg, nr};
use super::fixture::{Fixture, WriteError};
use super::proc;
use super::sys::{self, Status};
use super::{Exit, FinalMapsAt, RecordError};

/// `AUDIT_ARCH_X86_64`: the architecture `PTRACE_GET_SYSCALL_INFO` reports
/// for a 64-bit system call (as opposed to `int 0x80` from a 64-bit
/// process).
const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;

/// How long a serialized call may be in flight before the threads held
/// behind it are let go.
const HOLD_LIMIT: Duration = Duration::from_secs(2);

/// How long to sleep between polls while threads are held.
const POLL: Duration = Duration::from_micros(20);

/// The calls that change the layout, run one at a time.
fn serialized(nr: u64) -> bool {
    matches!(
        nr,
        nr::MMAP | nr::MUNMAP | nr::MPROTECT | nr::BRK | nr::MREMAP | nr::MADVISE
    )
}

/// What `/proc` said about the process at its last exec.
#[derive(Clone, Debug, Default)]
pub(crate) struct ExecInfo {
    pub pid: i32,
    pub cwd: String,
    pub start_brk: u64,
    pub start_stack: u64,
    pub rlimit_stack: u64,
    pub personality: u64,
    /// Limits, credentials, sysctls and memory size at the exec.
    pub env: mm_ops::env::ProcEnv,
}

/// The result of a traced run.
pub(crate) struct Traced {
    pub exit: Option<Exit>,
    pub exec: ExecInfo,
    /// Faults recorded and lost, when faults were recorded.
    pub faults: Option<(u64, u64)>,
    pub threads: u64,
    pub execs: u64,
    pub unfinished: u64,
    pub final_maps: Option<(String, FinalMapsAt)>,
    pub warnings: Vec<String>,
    pub write_error: Option<WriteError>,
}

/// A recorded call between its entry and exit stops.
struct Pending {
    /// The modeled call, or `None` for a side call (unlink, rename, fcntl
    /// F_DUPFD, creat).
    call: Option<Call>,
    /// For a side call: whether it returns a descriptor.
    side_fd: bool,
    /// The call with its `-y` annotations, read at entry.
    text: String,
}

#[derive(Default)]
struct Thread {
    pending: Option<Pending>,
    /// Between an entry stop and its exit stop (used only when
    /// `PTRACE_GET_SYSCALL_INFO` is not available).
    in_syscall: bool,
    /// Announced by `PTRACE_EVENT_CLONE`; its first stop (`SIGSTOP`) not
    /// seen yet.
    fresh: bool,
}

struct Tracer {
    tgid: Pid,
    threads: HashMap<Pid, Thread>,
    fixture: Fixture,
    exec: ExecInfo,
    threads_seen: u64,
    execs: u64,
    unfinished: u64,
    final_maps: Option<(String, FinalMapsAt)>,
    /// A call completed after `final_maps` was taken.
    final_dirty: bool,
    exit: Option<Exit>,
    write_error: Option<WriteError>,
    compat_calls: u64,
    unparsable: Vec<String>,
    /// The thread whose serialized call is in flight, and since when.
    busy: Option<(Pid, Instant)>,
    /// Threads held at the entry of a serialized call, oldest first.
    held: VecDeque<Pid>,
    /// The page-fault samplers, when the tracepoints could be opened.
    faults: Option<super::faults::Faults>,
    /// Why faults are not recorded, if they are not.
    faults_off: Option<String>,
}

/// Traces `child`, which must be stopped (or about to stop) with `SIGTRAP`
/// after its first exec under `PTRACE_TRACEME`, until every traced task is
/// gone.  Returns the fixture (to finish) and what the run gave.
pub(crate) fn trace(child: Pid, fixture: Fixture, record_faults: bool) -> Result<(Fixture, Traced), RecordError> {
    let ptrace_err = |what: &'static str| move |errno| RecordError::Ptrace { what, errno };
    loop {
        let Some((pid, st)) = sys::wait_any(false).map_err(ptrace_err("waiting for the program's exec"))? else {
            continue;
        };
        if pid != child {
            continue;
        }
        match st {
            Status::Signal(libc::SIGTRAP) => break,
            // A signal before the exec: deliver it.
            Status::Signal(sig) => sys::resume(child, sig).map_err(ptrace_err("resuming the program"))?,
            Status::Exited(_) | Status::Killed(_) => return Err(RecordError::NoExec),
            _ => {}
        }
    }
    let opts = Options::PTRACE_O_TRACESYSGOOD
        | Options::PTRACE_O_TRACEEXEC
        | Options::PTRACE_O_TRACECLONE
        | Options::PTRACE_O_TRACEEXIT
        | Options::PTRACE_O_EXITKILL;
    ptrace::setoptions(child, opts).map_err(ptrace_err("PTRACE_SETOPTIONS"))?;
    let mut t = Tracer {
        tgid: child,
        threads: HashMap::new(),
        fixture,
        exec: ExecInfo::default(),
        threads_seen: 0,
        execs: 0,
        unfinished: 0,
        final_maps: None,
        final_dirty: false,
        exit: None,
        write_error: None,
        compat_calls: 0,
        unparsable: Vec::new(),
        busy: None,
        held: VecDeque::new(),
        faults: None,
        faults_off: None,
    };
    if record_faults {
        match super::faults::Faults::new() {
            Ok(f) => t.faults = Some(f),
            Err(e) => t.faults_off = Some(e),
        }
    } else {
        t.faults_off = Some("not asked for (--no-faults)".into());
    }
    t.threads.insert(child, Thread::default());
    t.begin(child);
    t.resume(child, 0);
    t.run()?;
    t.flush_faults();
    let mut warnings = Vec::new();
    if let Some(e) = &t.faults_off {
        warnings.push(format!(
            "page faults were not recorded ({e}); the replay infers write faults (--assume-written)"
        ));
    }
    let faults = t.faults.as_ref().map(|f| (f.recorded, f.lost()));
    if let Some((_, lost)) = faults.filter(|&(_, lost)| lost > 0) {
        warnings.push(format!("{lost} page faults were lost (a ring buffer was full)"));
    }
    if t.compat_calls > 0 {
        warnings.push(format!(
            "{} system calls through the 32-bit ABI (int 0x80) were not recorded",
            t.compat_calls
        ));
    }
    for l in &t.unparsable {
        warnings.push(format!("internal error: a trace line does not parse: {l}"));
    }
    let traced = Traced {
        exit: t.exit,
        exec: t.exec,
        threads: t.threads_seen,
        execs: t.execs,
        unfinished: t.unfinished,
        final_maps: t.final_maps,
        warnings,
        write_error: t.write_error,
        faults,
    };
    Ok((t.fixture, traced))
}

impl Tracer {
    fn run(&mut self) -> Result<(), RecordError> {
        loop {
            let polling = !self.held.is_empty();
            let (tid, st) = match sys::wait_any(polling) {
                Ok(Some(x)) => x,
                Ok(None) => {
                    if self.busy.is_some_and(|(_, since)| since.elapsed() > HOLD_LIMIT) {
                        self.release_all();
                    }
                    std::thread::sleep(POLL);
                    continue;
                }
                Err(Errno::ECHILD) => return Ok(()),
                Err(errno) => return Err(RecordError::Ptrace { what: "waitpid", errno }),
            };
            match st {
                Status::Syscall => {
                    if self.syscall_stop(tid) {
                        self.resume(tid, 0);
                    }
                }
                Status::Event(ev) => {
                    self.event(tid, ev);
                    self.resume(tid, 0);
                }
                Status::Signal(sig) => self.signal_stop(tid, sig),
                Status::Exited(code) => self.gone(tid, Exit::Code(code)),
                Status::Killed(sig) => self.gone(tid, Exit::Signal(sig)),
                Status::Other => {}
            }
        }
    }

    /// Restarts `tid`; a task that vanished meanwhile (killed) is not an
    /// error.
    fn resume(&mut self, tid: Pid, sig: i32) {
        if let Err(e) = sys::resume(tid, sig)
            && e != Errno::ESRCH
        {
            eprintln!("mmsim record: cannot resume task {tid}: {e}");
        }
    }

    /// The serialized call in flight ended (or its thread is gone): the
    /// oldest held thread that still exists goes next.
    fn release_next(&mut self) {
        self.busy = None;
        while let Some(h) = self.held.pop_front() {
            if self.threads.contains_key(&h) {
                self.busy = Some((h, Instant::now()));
                self.resume(h, 0);
                return;
            }
        }
    }

    /// Lets every held thread go (the call in flight takes too long).
    fn release_all(&mut self) {
        self.busy = None;
        while let Some(h) = self.held.pop_front() {
            self.resume(h, 0);
        }
    }

    /// `tid` is gone or going: it holds nothing and waits for nothing.
    fn forget(&mut self, tid: Pid) {
        self.held.retain(|&h| h != tid);
        if self.busy.is_some_and(|(b, _)| b == tid) {
            self.release_next();
        }
    }

    /// The process exec'd (`tid` is its pid now): everything recorded so
    /// far is dropped and recording starts over from this address space.
    fn begin(&mut self, tid: Pid) {
        self.tgid = tid;
        self.busy = None;
        self.held.clear();
        self.execs += 1;
        self.threads_seen = 1;
        self.unfinished = 0;
        self.final_maps = None;
        self.final_dirty = false;
        // The faults so far belong to the old program (or to the exec
        // itself, before the snapshot): dropped with the old trace.
        if let Some(f) = self.faults.as_mut() {
            f.drain();
            f.detach_all();
            f.recorded = 0;
        }
        self.attach_faults(tid);
        let maps = proc::maps(tid).unwrap_or_default();
        let stat = proc::Stat::read(tid);
        let field = |n| stat.as_ref().and_then(|s| s.field(n)).unwrap_or(0);
        self.exec = ExecInfo {
            pid: tid.as_raw(),
            cwd: proc::cwd(tid).unwrap_or_default(),
            start_brk: field(proc::STAT_START_BRK),
            start_stack: field(proc::STAT_START_STACK),
            rlimit_stack: proc::stack_rlimit(tid).unwrap_or(0),
            personality: proc::personality(tid).unwrap_or(0),
            env: mm_ops::env::ProcEnv::of_process(Some(tid.as_raw() as u32)).0,
        };
        if let Err(e) = self.fixture.restart(&maps) {
            self.write_error.get_or_insert(e);
        }
    }

    /// A syscall stop of `tid`; false when `tid` is held (not to be
    /// resumed now).
    fn syscall_stop(&mut self, tid: Pid) -> bool {
        let th = self.threads.entry(tid).or_default();
        th.fresh = false;
        let info = ptrace::syscall_info(tid).ok();
        let (entering, arch) = match info {
            Some(i) if i.op == libc::PTRACE_SYSCALL_INFO_ENTRY => (true, i.arch),
            Some(i) if i.op == libc::PTRACE_SYSCALL_INFO_EXIT => (false, i.arch),
            _ => (!th.in_syscall, AUDIT_ARCH_X86_64),
        };
        th.in_syscall = entering;
        if entering {
            th.pending = None;
            if arch != AUDIT_ARCH_X86_64 {
                self.compat_calls += 1;
                return true;
            }
            let Some(nr) = self.entry(tid) else {
                return true;
            };
            if serialized(nr) {
                match self.busy {
                    Some((b, _)) if b != tid => {
                        self.held.push_back(tid);
                        return false;
                    }
                    _ => self.busy = Some((tid, Instant::now())),
                }
            }
        } else {
            if let Some(p) = th.pending.take() {
                self.exit(tid, p);
            }
            if self.busy.is_some_and(|(b, _)| b == tid) {
                self.release_next();
            }
        }
        true
    }

    /// Reads the call `tid` entered; its number, if the registers could be
    /// read.
    fn entry(&mut self, tid: Pid) -> Option<u64> {
        let r = ptrace::getregs(tid).ok()?;
        let e = Entry {
            nr: r.orig_rax,
            args: [r.rdi, r.rsi, r.rdx, r.r10, r.r8, r.r9],
        };
        if e.nr == nr::EXIT_GROUP {
            self.take_final_maps(tid, FinalMapsAt::ExitGroup);
            return Some(e.nr);
        }
        if let Some(text) = calls::path_op_text(
            &e,
            |addr| proc::read_string(tid, addr, PATH_MAX),
            |fd| proc::fd_link(tid, fd).map(|l| calls::annotation(&l)),
        ) {
            if let Some(th) = self.threads.get_mut(&tid) {
                th.pending = Some(Pending {
                    call: None,
                    text,
                    side_fd: calls::side_call_returns_fd(e.nr),
                });
            }
            return Some(e.nr);
        }
        let Some(s) = calls::string_arg(e.nr) else {
            return Some(e.nr);
        };
        let string = match s {
            StringArg::None => None,
            StringArg::Path(i) => proc::read_string(tid, e.args[i], PATH_MAX),
            StringArg::MemfdName => proc::read_string(tid, e.args[0], MEMFD_NAME_MAX),
        };
        let Some(call) = calls::decode(&e, string.as_deref()) else {
            return Some(e.nr);
        };
        let anns: Vec<(usize, String)> = calls::fd_args(&call)
            .into_iter()
            .filter_map(|(i, a)| proc::fd_link(tid, a).map(|l| (i, calls::annotation(&l))))
            .collect();
        let text = calls::call_text(&call, &anns);
        if let Some(th) = self.threads.get_mut(&tid) {
            th.pending = Some(Pending {
                call: Some(call),
                text,
                side_fd: false,
            });
        }
        Some(e.nr)
    }

    fn exit(&mut self, tid: Pid, p: Pending) {
        let Ok(r) = ptrace::getregs(tid) else {
            self.unfinished += 1;
            return;
        };
        let outcome = calls::outcome(r.rax);
        let result_ann = match outcome {
            Outcome::Val(fd) if p.side_fd || p.call.as_ref().is_some_and(calls::returns_fd) => {
                proc::fd_link(tid, FdArg::Fd(fd as i64)).map(|l| calls::annotation(&l))
            }
            _ => None,
        };
        let line = match &p.call {
            Some(call) => calls::line(tid.as_raw(), &p.text, call, &outcome, result_ann.as_deref()),
            None => calls::path_op_line(tid.as_raw(), &p.text, &outcome, result_ann.as_deref()),
        };
        if mm_ops::strace::parse_line(&line).is_err() && self.unparsable.len() < 10 {
            self.unparsable.push(line.clone());
        }
        self.flush_faults_at(Some(tid), None);
        // What the file was when this line opened or mapped it.
        let fd = match (&p.call, &outcome) {
            (Some(Call::Mmap { flags, fd, .. }), Outcome::Val(_))
                if flags & mm_ops::uapi::MAP_ANONYMOUS == 0 && *fd >= 0 =>
            {
                Some(*fd)
            }
            (_, Outcome::Val(fd)) if p.side_fd || p.call.as_ref().is_some_and(calls::returns_fd) => Some(*fd as i64),
            _ => None,
        };
        if let Some(info) = fd.and_then(|fd| proc::fd_info(tid, fd)) {
            let n = self.fixture.lines() + 1;
            self.fixture.note_file(n, &info);
        }
        if self.write_error.is_none()
            && let Err(e) = self.fixture.push(&line)
        {
            self.write_error = Some(e);
        }
        if self.final_maps.is_some() {
            self.final_dirty = true;
        }
    }

    /// Writes every fault sampled so far into the trace, oldest first (see
    /// [`flush_faults_at`](Self::flush_faults_at)); no thread is known to
    /// be stopped.
    fn flush_faults(&mut self) {
        self.flush_faults_at(None, None);
    }

    /// Writes every fault sampled so far into the trace, oldest first, with
    /// its outcome: a user fault followed by a later fault of its thread,
    /// or the last one of `stopped` (a thread in a ptrace stop, which it
    /// did not reach through a signal), succeeded; the last one of the
    /// thread `signal` stopped, at the signal's address, raised it; the
    /// last one of a thread still running is not known yet (`?`).
    fn flush_faults_at(&mut self, stopped: Option<Pid>, signal: Option<(Pid, i32, u64)>) {
        let Some(f) = self.faults.as_mut() else {
            return;
        };
        let faults = f.drain();
        let mut last_user: HashMap<i32, usize> = HashMap::new();
        for (i, fault) in faults.iter().enumerate() {
            if fault.user {
                last_user.insert(fault.tid, i);
            }
        }
        for (i, fault) in faults.iter().enumerate() {
            let outcome = if !fault.user {
                "?"
            } else if last_user.get(&fault.tid) != Some(&i) {
                "0"
            } else {
                match signal {
                    Some((t, sig, addr)) if t.as_raw() == fault.tid => {
                        if (sig == libc::SIGSEGV || sig == libc::SIGBUS) && addr >> 12 == fault.addr >> 12 {
                            if sig == libc::SIGSEGV { "SIGSEGV" } else { "SIGBUS" }
                        } else {
                            "0"
                        }
                    }
                    _ if stopped.is_some_and(|s| s.as_raw() == fault.tid) => "0",
                    _ => "?",
                }
            };
            if self.write_error.is_none()
                && let Err(e) = self.fixture.push(&fault.line(outcome))
            {
                self.write_error = Some(e);
            }
            if self.final_maps.is_some() {
                self.final_dirty = true;
            }
        }
    }

    /// Starts sampling `tid`'s faults (a failure turns fault recording off).
    fn attach_faults(&mut self, tid: Pid) {
        if let Some(f) = self.faults.as_mut()
            && let Err(e) = f.attach(tid.as_raw())
        {
            self.faults = None;
            self.faults_off = Some(e);
        }
    }

    fn take_final_maps(&mut self, tid: Pid, at: FinalMapsAt) {
        self.flush_faults_at(Some(tid), None);
        if let Ok(m) = proc::maps(tid)
            && !m.is_empty()
        {
            self.final_maps = Some((m, at));
            self.final_dirty = false;
        }
    }

    fn event(&mut self, tid: Pid, ev: i32) {
        match ev {
            libc::PTRACE_EVENT_CLONE => {
                if let Ok(new) = ptrace::getevent(tid) {
                    let new = Pid::from_raw(new as libc::pid_t);
                    self.threads.entry(new).or_insert_with(|| Thread {
                        fresh: true,
                        ..Thread::default()
                    });
                    // Only threads share the address space; a new process
                    // (fork, vfork) is let go at its first stop.
                    if proc::tgid(new).is_some_and(|g| g == self.tgid.as_raw()) {
                        self.attach_faults(new);
                    }
                }
            }
            libc::PTRACE_EVENT_EXEC => {
                // The other threads are gone; a non-leader that exec'd now
                // has the leader's id (`tid`).  The execve's exit stop
                // comes next.
                self.threads.clear();
                self.threads.insert(
                    tid,
                    Thread {
                        in_syscall: true,
                        ..Thread::default()
                    },
                );
                self.begin(tid);
            }
            libc::PTRACE_EVENT_EXIT => {
                self.forget(tid);
                let th = self.threads.entry(tid).or_default();
                if th.pending.take().is_some() {
                    self.unfinished += 1;
                }
                // The last thread's exit shows the final address space.
                // A thread killed with the others (a fatal signal) may never
                // report this stop, so the first thread to exit after the
                // last recorded call takes a snapshot too, which a later
                // one replaces.
                if self.final_maps.is_none() || self.final_dirty {
                    self.take_final_maps(tid, FinalMapsAt::LastExit);
                }
            }
            _ => {}
        }
    }

    fn signal_stop(&mut self, tid: Pid, sig: i32) {
        let fresh = self.threads.get(&tid).is_none_or(|t| t.fresh);
        if fresh && sig == libc::SIGSTOP {
            // A new task's first stop.  Only threads of the process share
            // its address space: another process (a clone without
            // CLONE_THREAD) is let go.
            if proc::tgid(tid).is_some_and(|g| g != self.tgid.as_raw()) {
                self.threads.remove(&tid);
                if let Some(f) = self.faults.as_mut() {
                    f.detach(tid.as_raw());
                }
                let _ = ptrace::detach(tid, None);
                return;
            }
            self.threads.entry(tid).or_default().fresh = false;
            self.threads_seen += 1;
            self.resume(tid, 0);
            return;
        }
        if let Some(t) = self.threads.get_mut(&tid) {
            t.fresh = false;
        }
        // A group-stop (PTRACE_GETSIGINFO fails with EINVAL) cannot be
        // kept without PTRACE_SEIZE/LISTEN: the task is resumed, as strace
        // does without --seize.  A signal-delivery stop delivers it.
        let info = ptrace::getsiginfo(tid);
        let deliver = match info {
            Err(Errno::EINVAL) => 0,
            _ => sig,
        };
        // A fault's signal (sent by the kernel: si_code > 0) marks the
        // fault that raised it; any other stop of a thread means its last
        // fault succeeded.
        match info {
            Ok(i) if (sig == libc::SIGSEGV || sig == libc::SIGBUS) && i.si_code > 0 => {
                // SAFETY: for SIGSEGV and SIGBUS the kernel fills si_addr.
                let addr = unsafe { i.si_addr() } as u64;
                self.flush_faults_at(None, Some((tid, sig, addr)));
            }
            _ => self.flush_faults_at(Some(tid), None),
        }
        self.resume(tid, deliver);
    }

    fn gone(&mut self, tid: Pid, how: Exit) {
        self.forget(tid);
        // A fault that killed it stopped it at the signal first.
        self.flush_faults_at(Some(tid), None);
        if let Some(f) = self.faults.as_mut() {
            f.detach(tid.as_raw());
        }
        if let Some(th) = self.threads.remove(&tid)
            && th.pending.is_some()
        {
            self.unfinished += 1;
        }
        if tid == self.tgid {
            self.exit = Some(how);
        }
    }
}
