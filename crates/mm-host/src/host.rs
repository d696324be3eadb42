//! [`HostProcess`]: one running helper, driven over its pipes.

use std::io::{self, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};

use mm_ops::call::{Call, Outcome, Signal};
use mm_ops::uapi::{Errno, madv};

use crate::protocol::{self, Op, REPLY_LEN, ROUTE_CHILD, Request};
use crate::stat::ProcStat;

/// Path of the helper executable built by `build.rs`.
pub fn helper_path() -> &'static Path {
    Path::new(env!("MM_HOST_HELPER"))
}

/// The helper's `argv[0]`.
const ARGV0: &str = "mm-host-helper";

/// Fault probe results: the signal numbers.
const SIGSEGV: i64 = libc::SIGSEGV as i64;
const SIGBUS: i64 = libc::SIGBUS as i64;

/// How to start a [`HostProcess`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostOptions {
    /// Leave address-space layout randomization as inherited (default:
    /// false, i.e. set `ADDR_NO_RANDOMIZE` as `setarch -R` does, so that the
    /// layout is identical from run to run).
    pub aslr: bool,
    /// Soft `RLIMIT_STACK` of the helper in bytes; it decides where the
    /// top-down mmap area starts: `mmap_base` = `TASK_SIZE` minus the limit
    /// clamped to [128 MiB, 5/6 of `TASK_SIZE`]. (On x86-64 even
    /// `RLIM_INFINITY` keeps the top-down layout, just with `mmap_base`
    /// near `TASK_SIZE / 6`.) Default: 8 MiB. `None` inherits ours.
    pub stack_limit: Option<u64>,
    /// Working directory of the helper, against which relative paths of
    /// `open`/`openat(AT_FDCWD, …)` resolve. Default (`None`): the caller's.
    pub cwd: Option<PathBuf>,
    /// Empty the capability bounding and ambient sets before exec, so that
    /// even a helper started by root runs without capabilities (then, e.g.,
    /// `mmap` below `vm.mmap_min_addr` fails with `EPERM` and `MAP_LOCKED`
    /// is bound by `RLIMIT_MEMLOCK`). The uid is unchanged. Default: false.
    pub drop_capabilities: bool,
    /// Let `madvise(MADV_HWPOISON | MADV_SOFT_OFFLINE)` through. They act
    /// on real physical pages of the host when the helper is privileged,
    /// so by default [`HostProcess::call`] refuses them with an I/O error.
    pub allow_hwpoison: bool,
    /// Limits set (soft and hard) before exec, as `prlimit` would:
    /// `(resource, bytes)`, e.g. `(libc::RLIMIT_AS, 1 << 30)`;
    /// [`libc::RLIM_INFINITY`] for none. `RLIMIT_STACK` is
    /// [`stack_limit`](Self::stack_limit)'s.
    pub rlimits: Vec<(libc::__rlimit_resource_t, u64)>,
    /// Run the helper as this uid and gid (no supplementary groups), as
    /// `setpriv --reuid --regid --clear-groups` does: an unprivileged
    /// process, whose effective capabilities are gone. Needs root.
    pub user: Option<u32>,
    /// Personality flags added to `ADDR_NO_RANDOMIZE` (or to the inherited
    /// personality with [`aslr`](Self::aslr)): `ADDR_COMPAT_LAYOUT` (the
    /// legacy bottom-up layout, `setarch -L`), `READ_IMPLIES_EXEC`.
    pub personality: u64,
}

impl Default for HostOptions {
    fn default() -> Self {
        HostOptions {
            aslr: false,
            stack_limit: Some(8 << 20),
            cwd: None,
            drop_capabilities: false,
            allow_hwpoison: false,
            rlimits: Vec::new(),
            user: None,
            personality: 0,
        }
    }
}

/// A helper process on the host kernel that runs [`Call`]s for real.
///
/// Its address space holds only its own two ELF segments, the stack, the
/// vDSO and whatever the calls create (see the crate documentation).
#[derive(Debug)]
pub struct HostProcess {
    allow_hwpoison: bool,
    /// Requests go to the fork child ([`HostChild`]).
    route_child: bool,
    /// The fork child's pid, while there is one.
    child_pid: Option<u32>,
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl HostProcess {
    /// Starts a helper with the default [`HostOptions`] (ASLR off).
    pub fn spawn() -> io::Result<HostProcess> {
        Self::spawn_with(&HostOptions::default())
    }

    /// Starts a helper with the given options.
    pub fn spawn_with(opts: &HostOptions) -> io::Result<HostProcess> {
        let exe = helper_path();
        let dir = exe.parent().unwrap_or(Path::new("/"));
        let name = exe
            .file_name()
            .ok_or_else(|| io::Error::other("helper path has no file name"))?;
        // Exec `./mm-host-helper` from its own directory, with a fixed argv[0]
        // and no environment: the strings execve() copies onto the stack
        // (argv, envp, AT_EXECFN) are then the same on every machine, and so
        // is the initial stack pointer.
        let mut cmd = Command::new(Path::new(".").join(name));
        cmd.arg0(ARGV0)
            .env_clear()
            .current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());

        let aslr = opts.aslr;
        let drop_caps = opts.drop_capabilities;
        let extra_personality = opts.personality;
        let user = opts.user;
        // Fixed-size, so that the pre-exec closure allocates nothing.
        let mut limits = [(0 as libc::__rlimit_resource_t, 0u64); 8];
        if opts.rlimits.len() > limits.len() {
            return Err(io::Error::other("more than 8 rlimits"));
        }
        limits[..opts.rlimits.len()].copy_from_slice(&opts.rlimits);
        let nlimits = opts.rlimits.len();
        let stack = match opts.stack_limit {
            Some(cur) => {
                let mut lim = libc::rlimit {
                    rlim_cur: 0,
                    rlim_max: 0,
                };
                // SAFETY: getrlimit writes into the struct we own.
                if unsafe { libc::getrlimit(libc::RLIMIT_STACK, &mut lim) } != 0 {
                    return Err(io::Error::last_os_error());
                }
                let max = if lim.rlim_max == libc::RLIM_INFINITY {
                    lim.rlim_max
                } else {
                    lim.rlim_max.max(cur)
                };
                Some(libc::rlimit {
                    rlim_cur: cur,
                    rlim_max: max,
                })
            }
            None => None,
        };
        // SAFETY: the closure runs in the forked child before exec and only
        // makes async-signal-safe system calls (personality, setrlimit,
        // prctl, setgroups, setgid, setuid, close_range) on values captured
        // by copy; it allocates
        // nothing and touches no lock.
        unsafe {
            cmd.pre_exec(move || {
                if !aslr || extra_personality != 0 {
                    let cur = libc::personality(0xffff_ffff);
                    if cur == -1 {
                        return Err(io::Error::last_os_error());
                    }
                    let mut p = (cur as libc::c_ulong) | extra_personality as libc::c_ulong;
                    if !aslr {
                        p |= libc::ADDR_NO_RANDOMIZE as libc::c_ulong;
                    }
                    if libc::personality(p) == -1 {
                        return Err(io::Error::last_os_error());
                    }
                }
                for &(resource, bytes) in &limits[..nlimits] {
                    let lim = libc::rlimit {
                        rlim_cur: bytes,
                        rlim_max: bytes,
                    };
                    if libc::setrlimit(resource, &lim) != 0 {
                        return Err(io::Error::last_os_error());
                    }
                }
                if let Some(lim) = stack
                    && libc::setrlimit(libc::RLIMIT_STACK, &lim) != 0
                {
                    return Err(io::Error::last_os_error());
                }
                // A System V IPC namespace of its own (when privileged): its
                // segments get the ids of a fresh namespace, meet no other
                // process's keys, and go away with it.
                libc::unshare(libc::CLONE_NEWIPC);
                if drop_caps {
                    for cap in 0..64 {
                        // EINVAL past the last capability; EPERM when we
                        // are unprivileged and have nothing to drop anyway.
                        libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0);
                    }
                    let clear = libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong;
                    libc::prctl(libc::PR_CAP_AMBIENT, clear, 0, 0, 0);
                }
                if let Some(id) = user
                    && (libc::setgroups(0, std::ptr::null()) != 0 || libc::setgid(id) != 0 || libc::setuid(id) != 0)
                {
                    return Err(io::Error::last_os_error());
                }
                // Any descriptor leaked to us without O_CLOEXEC must not reach
                // the helper: its descriptor table is exactly 0, 1, 2.
                // (CLOEXEC rather than close: std's exec-error pipe lives here.)
                libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, libc::CLOSE_RANGE_CLOEXEC);
                Ok(())
            });
        }

        let mut child = cmd.spawn()?;
        let stdin = child.stdin.take().expect("stdin is piped");
        let stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
        let mut host = HostProcess {
            allow_hwpoison: opts.allow_hwpoison,
            route_child: false,
            child_pid: None,
            child,
            stdin,
            stdout,
        };
        let (hello, _) = host.reply()?;
        if hello != protocol::HELLO_MAGIC {
            return Err(io::Error::other(format!("helper said {hello:#x} instead of hello")));
        }
        let cwd = match &opts.cwd {
            Some(dir) => Some(dir.clone()),
            None => std::env::current_dir().ok(),
        };
        if let Some(dir) = cwd {
            let dir = dir.into_os_string().into_encoded_bytes();
            let ret = host.raw(&Request {
                op: Op::Chdir,
                args: [0; 6],
                string: &dir,
            })?;
            if ret < 0 {
                return Err(io::Error::from_raw_os_error(-ret as i32));
            }
        }
        Ok(host)
    }

    /// The helper's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Performs `call` in the helper and returns what the kernel answered.
    ///
    /// Successes are [`Outcome::Val`] (the address for mmap, mremap and brk),
    /// failures [`Outcome::Err`]; a [`Call::Fault`] gives `Val(0)` or
    /// [`Outcome::Signal`]. Note that `brk` never fails on Linux: it returns
    /// the unchanged break instead. An `Err` here means the helper is gone
    /// or the request could not be sent, or that the call was refused (see
    /// [`HostOptions::allow_hwpoison`]).
    ///
    /// Calls act on the helper's whole address space: unmapping its text,
    /// bss or stack, or closing descriptors 1022/1023 (its protocol pipes),
    /// kills it or cuts the line; later calls then fail.
    pub fn call(&mut self, call: &Call) -> io::Result<Outcome> {
        if let Call::Madvise {
            advice: madv::HWPOISON | madv::SOFT_OFFLINE,
            ..
        } = call
            && !self.allow_hwpoison
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "MADV_HWPOISON/MADV_SOFT_OFFLINE refused (see HostOptions::allow_hwpoison)",
            ));
        }
        let ret = self.raw(&Request::from_call(call))?;
        if let Call::Fault { .. } = call {
            return match ret {
                0 => Ok(Outcome::Val(0)),
                SIGSEGV => Ok(Outcome::Signal(Signal::Segv)),
                SIGBUS => Ok(Outcome::Signal(Signal::Bus)),
                r if r < 0 => Err(io::Error::other(format!(
                    "fault probe could not run: {}",
                    Errno(-r as i32)
                ))),
                r => Err(io::Error::other(format!("fault probe returned {r}"))),
            };
        }
        Ok(outcome(ret))
    }

    /// The helper's `/proc/self/maps`, read by the helper itself.
    pub fn maps(&mut self) -> io::Result<String> {
        self.stream(Op::Maps)
    }

    /// The helper's `/proc/self/smaps` (for the `VmFlags` lines).
    pub fn smaps(&mut self) -> io::Result<String> {
        self.stream(Op::Smaps)
    }

    /// Reads a streamed `/proc` file.
    fn stream(&mut self, op: Op) -> io::Result<String> {
        self.send(&Request::bare(op))?;
        let mut text = Vec::new();
        loop {
            let (value, data) = self.reply()?;
            match value {
                1 => text.extend_from_slice(&data),
                0 => break,
                e => return Err(io::Error::from_raw_os_error(-e as i32)),
            }
        }
        String::from_utf8(text).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    /// The layout fields of the helper's `/proc/self/stat`, plus `brk(0)`.
    pub fn stat(&mut self) -> io::Result<ProcStat> {
        self.send(&Request::bare(Op::Stat))?;
        let (brk, data) = self.reply()?;
        if brk < 0 {
            return Err(io::Error::from_raw_os_error(-brk as i32));
        }
        let line = String::from_utf8_lossy(&data);
        ProcStat::parse(&line, brk as u64)
    }

    /// `fork(2)` in the helper: the child's pid, or the errno. The child is
    /// a helper too, whose address space and descriptor table are the
    /// helper's as fork copies them; [`child`](Self::child) drives it (one
    /// child at a time: `EBUSY` while it lives). Its pipes sit at
    /// descriptors 1020–1023, above anything the calls use. It exits with
    /// the helper, or by [`HostChild::exit`].
    pub fn fork(&mut self) -> io::Result<Result<u32, Errno>> {
        let r = self.raw(&Request::bare(Op::Fork))?;
        if r < 0 {
            return Ok(Err(Errno(-r as i32)));
        }
        self.child_pid = Some(r as u32);
        Ok(Ok(r as u32))
    }

    /// The fork child made by [`fork`](Self::fork): the same calls, run in
    /// it (relayed by the helper).
    pub fn child(&mut self) -> HostChild<'_> {
        HostChild { host: self }
    }

    /// Asks the helper to exit and waits for it.
    pub fn exit(mut self) -> io::Result<ExitStatus> {
        self.raw(&Request::bare(Op::Exit))?;
        self.child.wait()
    }

    /// Sends one request and returns the value of its single reply.
    fn raw(&mut self, req: &Request<'_>) -> io::Result<i64> {
        self.send(req)?;
        Ok(self.reply()?.0)
    }

    fn send(&mut self, req: &Request<'_>) -> io::Result<()> {
        if req.string.len() > protocol::STR_MAX {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("string longer than {} bytes", protocol::STR_MAX),
            ));
        }
        let mut bytes = req.encode();
        if self.route_child {
            bytes[..8].copy_from_slice(&(req.op as u64 | ROUTE_CHILD).to_le_bytes());
        }
        let res = self.stdin.write_all(&bytes);
        res.map_err(|e| self.explain(e))
    }

    fn reply(&mut self) -> io::Result<(i64, Vec<u8>)> {
        let mut head = [0u8; REPLY_LEN];
        if let Err(e) = self.stdout.read_exact(&mut head) {
            return Err(self.explain(e));
        }
        let (value, len) = protocol::decode_header(&head);
        let mut data = vec![0u8; len as usize];
        if let Err(e) = self.stdout.read_exact(&mut data) {
            return Err(self.explain(e));
        }
        Ok((value, data))
    }

    /// Adds the helper's exit status, if it ends within 100 ms, to an
    /// I/O error (a closed pipe usually means it is dying).
    fn explain(&mut self, err: io::Error) -> io::Error {
        for _ in 0..100 {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    return io::Error::new(err.kind(), format!("mm-host helper {status}: {err}"));
                }
                Ok(None) => std::thread::sleep(std::time::Duration::from_millis(1)),
                Err(_) => break,
            }
        }
        err
    }
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        // The helper owns nothing worth a clean exit: kill and reap it.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The fork child of a [`HostProcess`] ([`HostProcess::fork`]): its calls
/// and `/proc` files, as the helper's own.
#[derive(Debug)]
pub struct HostChild<'a> {
    host: &'a mut HostProcess,
}

impl HostChild<'_> {
    fn routed<T>(&mut self, f: impl FnOnce(&mut HostProcess) -> io::Result<T>) -> io::Result<T> {
        self.host.route_child = true;
        let r = f(self.host);
        self.host.route_child = false;
        r
    }

    /// The child's pid, if it lives.
    pub fn pid(&self) -> Option<u32> {
        self.host.child_pid
    }

    /// [`HostProcess::call`] in the child.
    pub fn call(&mut self, call: &Call) -> io::Result<Outcome> {
        self.routed(|h| h.call(call))
    }

    /// The child's `/proc/self/maps`.
    pub fn maps(&mut self) -> io::Result<String> {
        self.routed(HostProcess::maps)
    }

    /// The child's `/proc/self/smaps`.
    pub fn smaps(&mut self) -> io::Result<String> {
        self.routed(HostProcess::smaps)
    }

    /// The child's [`ProcStat`].
    pub fn stat(&mut self) -> io::Result<ProcStat> {
        self.routed(HostProcess::stat)
    }

    /// Ends the child (the helper reaps it); a later
    /// [`HostProcess::fork`] may make another.
    pub fn exit(mut self) -> io::Result<()> {
        let r = self.routed(|h| h.raw(&Request::bare(Op::Exit)));
        self.host.child_pid = None;
        r.map(|_| ())
    }
}

/// Converts a raw system-call return value to an [`Outcome`].
fn outcome(ret: i64) -> Outcome {
    if (-4095..0).contains(&ret) {
        Outcome::Err(Errno(-ret as i32))
    } else {
        Outcome::Val(ret as u64)
    }
}
