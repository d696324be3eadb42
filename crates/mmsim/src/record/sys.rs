//! The few ptrace and wait primitives `nix` cannot express: its `Signal`
//! has no real-time signals (`SIGRTMIN`…`SIGRTMAX`), so its `waitpid`
//! fails on a tracee stopped or killed by one, and its `PTRACE_SYSCALL`
//! cannot deliver one.  These take and give raw signal numbers.

use nix::errno::Errno;
use nix::libc;
use nix::unistd::Pid;

/// What `waitpid` reported for one task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Status {
    /// Exited with this status (`exit(2)`'s argument, low 8 bits).
    Exited(i32),
    /// Killed by this signal; true when it dumped core.
    Killed(i32, bool),
    /// A syscall-entry or syscall-exit stop (`SIGTRAP | 0x80`).
    Syscall,
    /// A `PTRACE_EVENT_*` stop.
    Event(i32),
    /// A signal-delivery stop or a group-stop, with the signal.
    Signal(i32),
    /// Anything else (continued).
    Other,
}

/// Waits for any traced task (`waitpid(-1, &status, __WALL)`), retrying
/// on `EINTR`; with `nohang`, returns `None` at once when no task has
/// anything to report (`WNOHANG`).
pub(crate) fn wait_any(nohang: bool) -> Result<Option<(Pid, Status)>, Errno> {
    let flags = if nohang {
        libc::__WALL | libc::WNOHANG
    } else {
        libc::__WALL
    };
    loop {
        let mut raw: libc::c_int = 0;
        // SAFETY: waitpid writes one int through the pointer, which points
        // to a live local; no other memory is touched.
        let r = unsafe { libc::waitpid(-1, &mut raw, flags) };
        if r < 0 {
            match Errno::last() {
                Errno::EINTR => continue,
                e => return Err(e),
            }
        }
        if r == 0 {
            return Ok(None);
        }
        return Ok(Some((Pid::from_raw(r), decode(raw))));
    }
}

/// Decodes a raw wait status.
fn decode(raw: i32) -> Status {
    if libc::WIFEXITED(raw) {
        Status::Exited(libc::WEXITSTATUS(raw))
    } else if libc::WIFSIGNALED(raw) {
        Status::Killed(libc::WTERMSIG(raw), libc::WCOREDUMP(raw))
    } else if libc::WIFSTOPPED(raw) {
        let sig = libc::WSTOPSIG(raw);
        let event = raw >> 16;
        if sig == libc::SIGTRAP | 0x80 {
            Status::Syscall
        } else if event != 0 {
            Status::Event(event)
        } else {
            Status::Signal(sig)
        }
    } else {
        Status::Other
    }
}

/// Restarts a stopped tracee until its next syscall stop
/// (`PTRACE_SYSCALL`), delivering signal `sig` (0 for none).
pub(crate) fn resume(tid: Pid, sig: i32) -> Result<(), Errno> {
    // SAFETY: PTRACE_SYSCALL reads no memory of ours: `addr` is ignored and
    // `data` is the signal number passed by value.
    let r = unsafe {
        libc::ptrace(
            libc::PTRACE_SYSCALL,
            tid.as_raw(),
            std::ptr::null_mut::<libc::c_void>(),
            sig as libc::c_long as *mut libc::c_void,
        )
    };
    Errno::result(r).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        assert_eq!(decode(3 << 8), Status::Exited(3));
        assert_eq!(decode(9), Status::Killed(9, false));
        assert_eq!(decode(34), Status::Killed(34, false)); // SIGRTMIN
        assert_eq!(decode(11 | 0x80), Status::Killed(11, true));
        assert_eq!(decode(0x7f | (34 << 8)), Status::Signal(34));
        assert_eq!(decode(0x7f | ((libc::SIGTRAP | 0x80) << 8)), Status::Syscall);
        assert_eq!(decode(0x7f | (libc::SIGTRAP << 8) | (4 << 16)), Status::Event(4));
    }
}
