//! The lines `record` writes for process events, in strace syntax: the
//! fork-like calls (`fork`, `vfork`, `clone`, `clone3`), `execve` and
//! `execveat`, and the `+++ exited with N +++` / `+++ killed by SIG +++`
//! lines of tasks that end; and what `/proc` says about a process at an
//! exec ([`ExecInfo`]).

use nix::unistd::Pid;

use super::Exit;
use super::calls::{Entry, nr};
use super::proc;

/// `CLONE_VM`: the child shares the parent's address space.
pub(crate) const CLONE_VM: u64 = 0x100;
/// `CLONE_VFORK`.
const CLONE_VFORK: u64 = 0x4000;
/// `CLONE_THREAD`: the child is a thread of the parent's process.
pub(crate) const CLONE_THREAD: u64 = 0x10000;
/// `SIGCHLD`, the exit signal of `fork` and `vfork`.
const SIGCHLD: u64 = 17;

/// The `clone` flag names strace knows, by bit, lowest first.
const CLONE_FLAGS: [(u64, &str); 26] = [
    (0x80, "CLONE_NEWTIME"),
    (0x100, "CLONE_VM"),
    (0x200, "CLONE_FS"),
    (0x400, "CLONE_FILES"),
    (0x800, "CLONE_SIGHAND"),
    (0x1000, "CLONE_PIDFD"),
    (0x2000, "CLONE_PTRACE"),
    (0x4000, "CLONE_VFORK"),
    (0x8000, "CLONE_PARENT"),
    (0x10000, "CLONE_THREAD"),
    (0x20000, "CLONE_NEWNS"),
    (0x40000, "CLONE_SYSVSEM"),
    (0x80000, "CLONE_SETTLS"),
    (0x100000, "CLONE_PARENT_SETTID"),
    (0x200000, "CLONE_CHILD_CLEARTID"),
    (0x400000, "CLONE_DETACHED"),
    (0x800000, "CLONE_UNTRACED"),
    (0x1000000, "CLONE_CHILD_SETTID"),
    (0x2000000, "CLONE_NEWCGROUP"),
    (0x4000000, "CLONE_NEWUTS"),
    (0x8000000, "CLONE_NEWIPC"),
    (0x10000000, "CLONE_NEWUSER"),
    (0x20000000, "CLONE_NEWPID"),
    (0x40000000, "CLONE_NEWNET"),
    (0x80000000, "CLONE_IO"),
    (0x100000000, "CLONE_CLEAR_SIGHAND"),
];

/// The x86-64 signal names, by number (index 0 unused).
const SIGNALS: [&str; 32] = [
    "0",
    "SIGHUP",
    "SIGINT",
    "SIGQUIT",
    "SIGILL",
    "SIGTRAP",
    "SIGABRT",
    "SIGBUS",
    "SIGFPE",
    "SIGKILL",
    "SIGUSR1",
    "SIGSEGV",
    "SIGUSR2",
    "SIGPIPE",
    "SIGALRM",
    "SIGTERM",
    "SIGSTKFLT",
    "SIGCHLD",
    "SIGCONT",
    "SIGSTOP",
    "SIGTSTP",
    "SIGTTIN",
    "SIGTTOU",
    "SIGURG",
    "SIGXCPU",
    "SIGXFSZ",
    "SIGVTALRM",
    "SIGPROF",
    "SIGWINCH",
    "SIGIO",
    "SIGPWR",
    "SIGSYS",
];

/// A signal as strace names it: `SIGCHLD`, `SIGRT_3` for the real-time
/// ones (counted from the kernel's `SIGRTMIN`, 32), `0` for none.
pub(crate) fn signal_name(sig: u64) -> String {
    match sig {
        0..32 => SIGNALS[sig as usize].to_string(),
        _ => format!("SIGRT_{}", sig - 32),
    }
}

/// Clone flags as strace prints them: names joined with `|`, lowest bit
/// first, unknown bits as one hex number, then the exit signal (`clone`'s
/// low byte) when not 0; `0` when nothing is set.
pub(crate) fn clone_flags(flags: u64, exit_signal: u64) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut rest = flags;
    for (bit, name) in CLONE_FLAGS {
        if rest & bit != 0 {
            parts.push(name.to_string());
            rest &= !bit;
        }
    }
    if rest != 0 {
        parts.push(format!("{rest:#x}"));
    }
    if exit_signal != 0 {
        parts.push(signal_name(exit_signal));
    }
    if parts.is_empty() {
        "0".to_string()
    } else {
        parts.join("|")
    }
}

/// `struct clone_args`' size in the kernel's first version (`flags`,
/// `pidfd`, `child_tid`, `parent_tid`, `exit_signal`, `stack`,
/// `stack_size`, `tls`: eight `u64`s).
pub(crate) const CLONE_ARGS_SIZE: usize = 64;

/// A fork-like call, read at its entry stop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ForkCall {
    /// The system call: [`nr::FORK`], [`nr::VFORK`], [`nr::CLONE`] or
    /// [`nr::CLONE3`].
    pub nr: u64,
    /// The clone flags (for `clone`, without the exit signal).
    pub flags: u64,
    /// The exit signal.
    pub exit_signal: u64,
    /// The child's stack (`clone`'s second argument, `clone3`'s `stack`).
    pub stack: u64,
    /// `clone3`'s `stack_size`.
    pub stack_size: u64,
    /// `clone3`'s second argument, the size of its `struct clone_args`.
    pub size: u64,
}

impl ForkCall {
    /// The fork-like call `e` is, if it is one; `read` reads `len` bytes of
    /// the tracee at an address (for `clone3`'s `struct clone_args`).
    pub(crate) fn from_entry(e: &Entry, read: impl Fn(u64, usize) -> Option<Vec<u8>>) -> Option<ForkCall> {
        let a = e.args;
        let mut c = ForkCall {
            nr: e.nr,
            flags: 0,
            exit_signal: SIGCHLD,
            stack: 0,
            stack_size: 0,
            size: 0,
        };
        match e.nr {
            nr::FORK => {}
            nr::VFORK => c.flags = CLONE_VM | CLONE_VFORK,
            nr::CLONE => {
                c.flags = a[0] & !0xff;
                c.exit_signal = a[0] & 0xff;
                c.stack = a[1];
            }
            nr::CLONE3 => {
                c.size = a[1];
                let want = (a[1] as usize).min(CLONE_ARGS_SIZE);
                let b = read(a[0], want).unwrap_or_default();
                let field = |i: usize| {
                    b.get(i * 8..i * 8 + 8)
                        .map_or(0, |s| u64::from_ne_bytes(s.try_into().expect("8 bytes")))
                };
                c.flags = field(0);
                c.exit_signal = field(4);
                c.stack = field(5);
                c.stack_size = field(6);
            }
            _ => return None,
        }
        Some(c)
    }

    /// What a fork-like call the tracer did not see enter is taken to be,
    /// from the event that announced its child (`PTRACE_EVENT_FORK`,
    /// `VFORK`, `CLONE`) and whether the child is a thread of the parent.
    pub(crate) fn from_event(ev: i32, thread: bool) -> ForkCall {
        let mut c = ForkCall {
            nr: nr::FORK,
            flags: 0,
            exit_signal: SIGCHLD,
            stack: 0,
            stack_size: 0,
            size: 0,
        };
        if ev == libc::PTRACE_EVENT_VFORK {
            c.nr = nr::VFORK;
            c.flags = CLONE_VM | CLONE_VFORK;
        } else if ev == libc::PTRACE_EVENT_CLONE {
            c.nr = nr::CLONE;
            if thread {
                c.flags = CLONE_VM | CLONE_THREAD | 0xe00; // FS, FILES, SIGHAND
                c.exit_signal = 0;
            }
        }
        c
    }

    /// The child shares the parent's address space (`CLONE_VM`).
    pub(crate) fn shares_vm(&self) -> bool {
        self.flags & CLONE_VM != 0
    }

    /// The child is a thread of the parent's process (`CLONE_THREAD`).
    pub(crate) fn thread(&self) -> bool {
        self.flags & CLONE_THREAD != 0
    }

    /// The call as strace prints it, without the result: `fork()`,
    /// `vfork()`, `clone(child_stack=NULL, flags=…)`,
    /// `clone3({flags=…, exit_signal=…, stack=0x…, stack_size=0x…}, 88)`.
    pub(crate) fn text(&self) -> String {
        match self.nr {
            nr::FORK => "fork()".to_string(),
            nr::VFORK => "vfork()".to_string(),
            nr::CLONE3 => format!(
                "clone3({{flags={}, exit_signal={}, stack={:#x}, stack_size={:#x}}}, {})",
                clone_flags(self.flags, 0),
                signal_name(self.exit_signal),
                self.stack,
                self.stack_size,
                self.size
            ),
            _ => {
                let stack = if self.stack == 0 {
                    "NULL".to_string()
                } else {
                    format!("{:#x}", self.stack)
                };
                format!(
                    "clone(child_stack={stack}, flags={})",
                    clone_flags(self.flags, self.exit_signal)
                )
            }
        }
    }
}

/// An `execve` or `execveat`, read at its entry stop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ExecCall {
    /// [`nr::EXECVE`] or [`nr::EXECVEAT`].
    pub nr: u64,
    /// `execveat`'s directory descriptor.
    pub dirfd: i64,
    /// The path argument, as the thread passed it.
    pub path: Vec<u8>,
    /// The `envp` argument.
    pub envp: u64,
    /// `execveat`'s flags.
    pub flags: u64,
}

impl ExecCall {
    /// The exec `e` is, if it is one; `read` reads a string of the tracee.
    pub(crate) fn from_entry(e: &Entry, read: impl Fn(u64) -> Option<Vec<u8>>) -> Option<ExecCall> {
        let a = e.args;
        Some(match e.nr {
            nr::EXECVE => ExecCall {
                nr: e.nr,
                dirfd: 0,
                path: read(a[0]).unwrap_or_default(),
                envp: a[2],
                flags: 0,
            },
            nr::EXECVEAT => ExecCall {
                nr: e.nr,
                dirfd: i64::from(a[0] as i32),
                path: read(a[1]).unwrap_or_default(),
                envp: a[3],
                flags: u64::from(a[4] as u32),
            },
            _ => return None,
        })
    }

    /// The successful exec's line: `TGID execve("EXE", ["arg0", …], 0xENVP
    /// /* N vars */) = 0`, or `execveat(DIRFD, "PATH", […], 0xENVP /* N
    /// vars */, FLAGS) = 0`, with `argv` the new program's arguments and
    /// `nenv` the number of its environment strings.
    pub(crate) fn line(&self, tgid: Pid, argv: &[Vec<u8>], nenv: usize) -> String {
        let args: Vec<String> = argv.iter().map(|a| quote(a)).collect();
        let envp = format!("{:#x} /* {nenv} vars */", self.envp);
        let argv = format!("[{}]", args.join(", "));
        let path = quote(&self.path);
        if self.nr == nr::EXECVEAT {
            let dirfd = if self.dirfd == i64::from(mm_ops::uapi::AT_FDCWD as i32) {
                "AT_FDCWD".to_string()
            } else {
                self.dirfd.to_string()
            };
            let mut flags = Vec::new();
            if self.flags & 0x100 != 0 {
                flags.push("AT_SYMLINK_NOFOLLOW".to_string());
            }
            if self.flags & 0x1000 != 0 {
                flags.push("AT_EMPTY_PATH".to_string());
            }
            if self.flags & !0x1100 != 0 {
                flags.push(format!("{:#x}", self.flags & !0x1100));
            }
            let flags = if flags.is_empty() {
                "0".to_string()
            } else {
                flags.join("|")
            };
            format!("{tgid} execveat({dirfd}, {path}, {argv}, {envp}, {flags}) = 0")
        } else {
            format!("{tgid} execve({path}, {argv}, {envp}) = 0")
        }
    }
}

/// A string as strace quotes it ([`mm_ops::strace::quote_string`]).
pub(crate) fn quote(s: &[u8]) -> String {
    mm_ops::strace::quote_string(s)
}

/// The NUL-separated strings of `/proc/PID/cmdline` or `environ`.
pub(crate) fn nul_list(b: &[u8]) -> Vec<Vec<u8>> {
    let b = b.strip_suffix(&[0]).unwrap_or(b);
    if b.is_empty() {
        return Vec::new();
    }
    b.split(|&c| c == 0).map(<[u8]>::to_vec).collect()
}

/// The line of a task that was reaped: `TID +++ exited with N +++`, or
/// `TID +++ killed by SIGNAME +++` (`(core dumped)` before the closing
/// `+++` when it dumped core).
pub(crate) fn exit_line(tid: Pid, how: Exit, core: bool) -> String {
    match how {
        Exit::Code(c) => format!("{tid} +++ exited with {c} +++"),
        Exit::Signal(s) => {
            let core = if core { " (core dumped)" } else { "" };
            format!("{tid} +++ killed by {}{core} +++", signal_name(s as u64))
        }
    }
}

/// What `/proc` said about a process at an exec.
#[derive(Clone, Debug, Default)]
pub(crate) struct ExecInfo {
    /// The process id.
    pub pid: i32,
    /// The working directory.
    pub cwd: String,
    /// `start_brk` (`/proc/PID/stat` field 47).
    pub start_brk: u64,
    /// `start_stack` (`/proc/PID/stat` field 28).
    pub start_stack: u64,
    /// The soft `RLIMIT_STACK`.
    pub rlimit_stack: u64,
    /// The personality.
    pub personality: u64,
    /// Limits, credentials, sysctls and memory size at the exec.
    pub env: mm_ops::env::ProcEnv,
}

impl ExecInfo {
    /// Reads the facts about process `tid` (stopped at its exec).
    pub(crate) fn read(tid: Pid) -> ExecInfo {
        let stat = proc::Stat::read(tid);
        let field = |n| stat.as_ref().and_then(|s| s.field(n)).unwrap_or(0);
        ExecInfo {
            pid: tid.as_raw(),
            cwd: proc::cwd(tid).unwrap_or_default(),
            start_brk: field(proc::STAT_START_BRK),
            start_stack: field(proc::STAT_START_STACK),
            rlimit_stack: proc::stack_rlimit(tid).unwrap_or(0),
            personality: proc::personality(tid).unwrap_or(0),
            env: mm_ops::env::ProcEnv::of_process(Some(tid.as_raw() as u32)).0,
        }
    }

    /// `mm/L.meta.txt`: the `pid`, `cwd`, `start_brk`, `brk`,
    /// `start_stack`, `rlimit_stack` and `personality` lines and the
    /// environment's, as in `meta.txt`.
    pub(crate) fn render(&self) -> String {
        format!(
            "pid: {}\ncwd: {}\nstart_brk: {:#x}\nbrk: {:#x}\nstart_stack: {:#x}\nrlimit_stack: {}\npersonality: {:#x}\n",
            self.pid, self.cwd, self.start_brk, self.start_brk, self.start_stack, self.rlimit_stack, self.personality
        ) + &super::env_lines(&self.env)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mm_ops::strace::{Line, parse_line};

    fn skipped(l: &str, name: Option<&str>) {
        match parse_line(l) {
            Ok(Line::Skipped { name: n }) => assert_eq!(n.as_deref(), name, "{l}"),
            other => panic!("{l}: {other:?}"),
        }
        assert_eq!(mm_ops::strace::split_pid(l).0, Some(42), "{l}");
    }

    fn entry(nr: u64, args: [u64; 6]) -> Entry {
        Entry { nr, args }
    }

    #[test]
    fn fork_like_lines() {
        let none = |_: u64, _: usize| None;
        let fork = ForkCall::from_entry(&entry(nr::FORK, [0; 6]), none).unwrap();
        assert_eq!(fork.text(), "fork()");
        assert!(!fork.shares_vm());
        let vfork = ForkCall::from_entry(&entry(nr::VFORK, [0; 6]), none).unwrap();
        assert_eq!(vfork.text(), "vfork()");
        assert!(vfork.shares_vm() && !vfork.thread());
        let thread = ForkCall::from_entry(&entry(nr::CLONE, [0x3d0f00, 0x7f00_0000_1000, 0, 0, 0, 0]), none).unwrap();
        assert_eq!(
            thread.text(),
            "clone(child_stack=0x7f0000001000, flags=CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|\
             CLONE_SYSVSEM|CLONE_SETTLS|CLONE_PARENT_SETTID|CLONE_CHILD_CLEARTID)"
        );
        assert!(thread.thread());
        let f = ForkCall::from_entry(&entry(nr::CLONE, [0x1200011, 0, 0, 0, 0, 0]), none).unwrap();
        assert_eq!(
            f.text(),
            "clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD)"
        );
        assert_eq!(clone_flags(0x8000_0000_0000, 0), "0x800000000000");
        assert_eq!(clone_flags(0, 0), "0");
        let mut args = [0u8; 88];
        args[0..8].copy_from_slice(&0x3d0f00u64.to_ne_bytes());
        args[40..48].copy_from_slice(&0x7f00_0000_0000u64.to_ne_bytes());
        args[48..56].copy_from_slice(&0x80_0000u64.to_ne_bytes());
        let read = |addr: u64, len: usize| (addr == 0x1000).then(|| args[..len].to_vec());
        let c3 = ForkCall::from_entry(&entry(nr::CLONE3, [0x1000, 88, 0, 0, 0, 0]), read).unwrap();
        assert_eq!(
            c3.text(),
            "clone3({flags=CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM|CLONE_SETTLS|\
             CLONE_PARENT_SETTID|CLONE_CHILD_CLEARTID, exit_signal=0, stack=0x7f0000000000, stack_size=0x800000}, 88)"
        );
        for c in [&fork, &vfork, &thread, &f, &c3] {
            let l = format!("42 {} = 43", c.text());
            let name = c.text().split('(').next().unwrap().to_string();
            skipped(&l, Some(&name));
        }
        assert_eq!(ForkCall::from_entry(&entry(nr::MMAP, [0; 6]), none), None);
    }

    #[test]
    fn exec_and_exit_lines() {
        let read = |_| Some(b"/bin/e\"c\xffho".to_vec());
        let e = ExecCall::from_entry(&entry(nr::EXECVE, [1, 2, 0x7ffd_0000, 0, 0, 0]), read).unwrap();
        let argv = nul_list(b"echo\0a b\0\0x\ny\0");
        assert_eq!(argv.len(), 4);
        let l = e.line(Pid::from_raw(42), &argv, 3);
        assert_eq!(
            l,
            "42 execve(\"/bin/e\\\"c\\377ho\", [\"echo\", \"a b\", \"\", \"x\\ny\"], 0x7ffd0000 /* 3 vars */) = 0"
        );
        skipped(&l, Some("execve"));
        let at = ExecCall::from_entry(&entry(nr::EXECVEAT, [(-100i64) as u64, 1, 2, 0x10, 0x1000, 0]), |_| {
            Some(b"".to_vec())
        })
        .unwrap();
        let l = at.line(Pid::from_raw(42), &[b"x".to_vec()], 0);
        assert_eq!(
            l,
            "42 execveat(AT_FDCWD, \"\", [\"x\"], 0x10 /* 0 vars */, AT_EMPTY_PATH) = 0"
        );
        skipped(&l, Some("execveat"));
        assert!(nul_list(b"").is_empty());
        let me = Pid::from_raw(42);
        assert_eq!(exit_line(me, Exit::Code(3), false), "42 +++ exited with 3 +++");
        assert_eq!(
            exit_line(me, Exit::Signal(11), true),
            "42 +++ killed by SIGSEGV (core dumped) +++"
        );
        assert_eq!(exit_line(me, Exit::Signal(37), false), "42 +++ killed by SIGRT_5 +++");
        for l in [
            exit_line(me, Exit::Code(0), false),
            exit_line(me, Exit::Signal(9), false),
        ] {
            skipped(&l, None);
        }
    }
}
