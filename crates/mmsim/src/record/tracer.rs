//! The ptrace loop: follows every task of every process from the first
//! exec on (as `strace -f` does), pairs each task's syscall-entry and
//! syscall-exit stops, and writes a trace line when a recorded call
//! completes; the process events (fork-like calls, execs, exits) and the
//! address spaces (images) are in [`procs`], and the syscall stops (the
//! call read at its entry, its line written at its exit) in [`syscalls`].
//!
//! # One address-space call at a time, per image
//!
//! Lines are written when calls complete, but two threads' calls that
//! overlap in time may reach the kernel's `mmap_lock` in one order and
//! report their exit stops in the other; a replay in completion order
//! would then give each `mmap` the other's address.  So the calls that
//! change the layout (`mmap`, `munmap`, `mprotect`, `brk`, `mremap`,
//! `madvise`, the mlock family, and the fork-like calls that copy it:
//! `fork`, and `clone` or `clone3` without `CLONE_VM`) are serialized per
//! image: a task that enters one while another task of the same image has
//! one in flight is held at its entry stop until that one's exit stop (a fork's: its
//! parent's `PTRACE_EVENT_FORK`/`CLONE` stop, or its exit stop if it
//! failed), then let go (first come, first served).  Completion order is
//! then the kernel's order for each address space.  A call in flight for
//! more than [`HOLD_LIMIT`] (which could be a thread waiting, through
//! `userfaultfd`, on a held one) releases the tasks held behind it, giving
//! up the guarantee for them rather than deadlocking.

mod faultlines;
mod procs;
mod syscalls;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use mm_ops::call::Call;
use nix::errno::Errno;
use nix::libc;
use nix::sys::ptrace::{self, Options};
use nix::unistd::Pid;

use super::events::{ExecCall, ExecInfo, ForkCall};
use super::fixture::{Fixture, WriteError};
use super::proc;
use super::sys::{self, Status};
use super::{Exit, FinalMapsAt, RecordError};

/// How long a serialized call may be in flight before the tasks held
/// behind it are let go (and how long a new task's first stop is kept
/// waiting for its parent's event stop).
const HOLD_LIMIT: Duration = Duration::from_secs(2);

/// How long to sleep between polls while tasks are held.
const POLL: Duration = Duration::from_micros(20);

/// The result of a traced run.
pub(crate) struct Traced {
    pub exit: Option<Exit>,
    /// The root process at its first exec.
    pub exec: ExecInfo,
    /// Faults recorded and lost, when faults were recorded.
    pub faults: Option<(u64, u64)>,
    pub threads: u64,
    pub processes: u64,
    pub execs: u64,
    pub unfinished: u64,
    /// Processes let go at their `PTRACE_TRACEME`.
    pub detached: u64,
    /// The final maps of the image the root process was in at its end.
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

/// A fork-like call between its entry stop and its exit stop.
struct Forking {
    call: ForkCall,
    /// Its child was announced (`PTRACE_EVENT_FORK`/`VFORK`/`CLONE`) and
    /// its line written.
    announced: bool,
}

/// One traced task (a thread of some process).
struct Task {
    pending: Option<Pending>,
    /// Between an entry stop and its exit stop (used only when
    /// `PTRACE_GET_SYSCALL_INFO` is not available).
    in_syscall: bool,
    /// Announced by its parent's event stop; its first stop (`SIGSTOP`)
    /// not seen yet.
    fresh: bool,
    /// Its process.
    tgid: Pid,
    /// The image (address space) it uses; `None` once it left it (a
    /// thread killed by another thread's exec).
    image: Option<u64>,
    forking: Option<Forking>,
    /// The `execve`/`execveat` it entered.
    exec: Option<ExecCall>,
    /// The maps read at that exec's entry stop, the image's final maps
    /// if the exec succeeds.
    exec_maps: Option<String>,
}

impl Task {
    fn new(tgid: Pid, image: Option<u64>) -> Task {
        Task {
            pending: None,
            in_syscall: false,
            fresh: false,
            tgid,
            image,
            forking: None,
            exec: None,
            exec_maps: None,
        }
    }
}

/// One address space, named by the trace line that made it.
struct Image {
    /// The tasks using it.
    users: HashSet<Pid>,
    /// Its maps as last read for its end, and where.
    final_maps: Option<(String, FinalMapsAt)>,
    /// A line of one of its users was written after `final_maps` was read.
    final_dirty: bool,
    /// The task whose serialized call is in flight, and since when.
    busy: Option<(Pid, Instant)>,
    /// Tasks held at the entry of a serialized call, oldest first.
    held: VecDeque<Pid>,
}

impl Image {
    fn new(first: Pid) -> Image {
        Image {
            users: HashSet::from([first]),
            final_maps: None,
            final_dirty: false,
            busy: None,
            held: VecDeque::new(),
        }
    }
}

struct Tracer {
    /// The first process (its pid).
    root: Pid,
    /// The image the root process is in.
    root_image: u64,
    tasks: HashMap<Pid, Task>,
    images: BTreeMap<u64, Image>,
    /// New tasks whose first stop came before their parent's event stop:
    /// kept stopped until it, and since when.
    parked: HashMap<Pid, Instant>,
    fixture: Fixture,
    exec: ExecInfo,
    tasks_seen: u64,
    processes: u64,
    execs: u64,
    unfinished: u64,
    /// The root image's final maps, once it ended.
    root_final: Option<(String, FinalMapsAt)>,
    exit: Option<Exit>,
    write_error: Option<WriteError>,
    compat_calls: u64,
    /// Processes let go at their `PTRACE_TRACEME` (a debugger's inferior).
    detached: u64,
    unparsable: Vec<String>,
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
            Status::Exited(_) | Status::Killed(..) => return Err(RecordError::NoExec),
            _ => {}
        }
    }
    let opts = Options::PTRACE_O_TRACESYSGOOD
        | Options::PTRACE_O_TRACEEXEC
        | Options::PTRACE_O_TRACECLONE
        | Options::PTRACE_O_TRACEFORK
        | Options::PTRACE_O_TRACEVFORK
        | Options::PTRACE_O_TRACEEXIT
        | Options::PTRACE_O_EXITKILL;
    ptrace::setoptions(child, opts).map_err(ptrace_err("PTRACE_SETOPTIONS"))?;
    let mut t = Tracer {
        root: child,
        root_image: 0,
        tasks: HashMap::new(),
        images: BTreeMap::new(),
        parked: HashMap::new(),
        fixture,
        exec: ExecInfo::default(),
        tasks_seen: 1,
        processes: 1,
        execs: 0,
        unfinished: 0,
        root_final: None,
        exit: None,
        write_error: None,
        compat_calls: 0,
        detached: 0,
        unparsable: Vec::new(),
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
    t.begin(child);
    t.resume(child, 0);
    t.run()?;
    t.flush_faults();
    t.end_all_images();
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
    if t.detached > 0 {
        warnings.push(format!(
            "{} processes called ptrace(PTRACE_TRACEME) (a debugger's inferior) and were let go at that call: \
             what they did after it is not in the trace",
            t.detached
        ));
    }
    for l in &t.unparsable {
        warnings.push(format!("internal error: a trace line does not parse: {l}"));
    }
    let traced = Traced {
        exit: t.exit,
        exec: t.exec,
        threads: t.tasks_seen,
        processes: t.processes,
        execs: t.execs,
        unfinished: t.unfinished,
        detached: t.detached,
        final_maps: t.root_final,
        warnings,
        write_error: t.write_error,
        faults,
    };
    Ok((t.fixture, traced))
}

impl Tracer {
    fn run(&mut self) -> Result<(), RecordError> {
        loop {
            let polling = !self.parked.is_empty() || self.images.values().any(|i| !i.held.is_empty());
            let (tid, st) = match sys::wait_any(polling) {
                Ok(Some(x)) => x,
                Ok(None) => {
                    self.expire_holds();
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
                Status::Exited(code) => self.gone(tid, Exit::Code(code), false),
                Status::Killed(sig, core) => self.gone(tid, Exit::Signal(sig), core),
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

    /// Appends `line` (a line of `tid`) to the trace: the faults sampled
    /// so far go first, and the final maps read for `tid`'s image are
    /// stale from then on.
    fn push_line(&mut self, tid: Pid, line: &str) {
        self.flush_faults_at(Some(tid), None, &[]);
        self.push_raw(tid, line);
    }

    /// [`push_line`](Self::push_line) without the faults.
    fn push_raw(&mut self, tid: Pid, line: &str) {
        if mm_ops::strace::parse_line(line).is_err() && self.unparsable.len() < 10 {
            self.unparsable.push(line.to_string());
        }
        if self.write_error.is_none()
            && let Err(e) = self.fixture.push(line)
        {
            self.write_error = Some(e);
        }
        self.dirty(tid);
    }

    /// A line of `tid` was written: its image's final maps, if read, are
    /// stale.
    fn dirty(&mut self, tid: Pid) {
        if let Some(img) = self.tasks.get(&tid).and_then(|t| t.image)
            && let Some(im) = self.images.get_mut(&img)
            && im.final_maps.is_some()
        {
            im.final_dirty = true;
        }
    }

    /// Reads `tid`'s maps as its image's final maps.
    fn take_final_maps(&mut self, tid: Pid, at: FinalMapsAt) {
        self.flush_faults_at(Some(tid), None, &[]);
        let Some(img) = self.tasks.get(&tid).and_then(|t| t.image) else {
            return;
        };
        if let Ok(m) = proc::maps(tid)
            && !m.is_empty()
            && let Some(im) = self.images.get_mut(&img)
        {
            im.final_maps = Some((m, at));
            im.final_dirty = false;
        }
    }

    fn event(&mut self, tid: Pid, ev: i32) {
        match ev {
            libc::PTRACE_EVENT_CLONE | libc::PTRACE_EVENT_FORK | libc::PTRACE_EVENT_VFORK => self.fork_event(tid, ev),
            libc::PTRACE_EVENT_EXEC => self.exec_event(tid),
            libc::PTRACE_EVENT_EXIT => {
                self.forget(tid);
                let Some(th) = self.tasks.get_mut(&tid) else {
                    return;
                };
                if th.pending.take().is_some() {
                    self.unfinished += 1;
                }
                // The last task's exit shows the final address space.  A
                // task killed with the others (a fatal signal) may never
                // report this stop, so the first one to exit after the
                // image's last line takes a snapshot too, which a later one
                // replaces.
                let stale = self
                    .image_of(tid)
                    .is_some_and(|im| im.final_maps.is_none() || im.final_dirty);
                if stale && self.image_is_process_own(tid) {
                    self.take_final_maps(tid, FinalMapsAt::LastExit);
                }
            }
            _ => {}
        }
    }

    fn signal_stop(&mut self, tid: Pid, sig: i32) {
        let Some(th) = self.tasks.get_mut(&tid) else {
            // A new task whose parent's event stop has not come yet: it
            // waits, stopped, for its fork-like line to be written.
            if sig == libc::SIGSTOP {
                self.parked.insert(tid, Instant::now());
            } else {
                self.resume(tid, sig);
            }
            return;
        };
        if th.fresh && sig == libc::SIGSTOP {
            // A new task's first stop.
            th.fresh = false;
            self.resume(tid, 0);
            return;
        }
        th.fresh = false;
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
                self.flush_faults_at(None, Some((tid, sig, addr)), &[]);
            }
            _ => self.flush_faults_at(Some(tid), None, &[]),
        }
        self.resume(tid, deliver);
    }
}
