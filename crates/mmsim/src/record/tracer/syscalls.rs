//! Syscall stops: which calls are serialized, the call a task entered
//! (read from its registers and memory at the entry stop, with the `-y`
//! annotations of its descriptors) and its trace line, written at the
//! exit stop with the result.

use mm_ops::call::{Call, Outcome};
use nix::libc;
use nix::sys::ptrace;
use nix::unistd::Pid;

use super::super::calls::{self, Entry, FdArg, MEMFD_NAME_MAX, PATH_MAX, StringArg, nr};
use super::super::events::{ExecCall, ForkCall};
use super::super::proc;
use super::{FinalMapsAt, Forking, Pending, Tracer};

/// `AUDIT_ARCH_X86_64`: the architecture `PTRACE_GET_SYSCALL_INFO` reports
/// for a 64-bit system call (as opposed to `int 0x80` from a 64-bit
/// process).
const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;

/// `ptrace`'s request asking the parent to trace the caller.
const PTRACE_TRACEME: u64 = 0;

/// The calls that change the layout, run one at a time.
fn serialized(nr: u64) -> bool {
    matches!(
        nr,
        nr::MMAP
            | nr::MUNMAP
            | nr::MPROTECT
            | nr::BRK
            | nr::MREMAP
            | nr::MADVISE
            | nr::MLOCK
            | nr::MLOCK2
            | nr::MUNLOCK
            | nr::MLOCKALL
            | nr::MUNLOCKALL
            | nr::MSEAL
            | nr::SHMAT
            | nr::SHMDT
            | nr::SHMCTL
            | nr::REMAP_FILE_PAGES
    )
}

impl Tracer {
    /// A syscall stop of `tid`; false when `tid` is held (not to be
    /// resumed now).
    pub(super) fn syscall_stop(&mut self, tid: Pid) -> bool {
        let Some(th) = self.tasks.get_mut(&tid) else {
            return true;
        };
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
            th.forking = None;
            th.exec = None;
            th.exec_maps = None;
            if arch != AUDIT_ARCH_X86_64 {
                self.compat_calls += 1;
                return true;
            }
            let Some(nr) = self.entry(tid) else {
                return true;
            };
            let forks = self
                .tasks
                .get(&tid)
                .and_then(|t| t.forking.as_ref())
                .is_some_and(|f| !f.call.shares_vm());
            if serialized(nr) || forks {
                return self.serialize(tid);
            }
        } else {
            if let Some(p) = th.pending.take() {
                self.exit(tid, p);
            }
            self.process_call_exit(tid);
            self.release(tid);
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
        if e.nr == nr::PTRACE && e.args[0] == PTRACE_TRACEME {
            self.detach_for_tracer(tid);
            return None;
        }
        if e.nr == nr::EXIT_GROUP {
            if self.image_is_process_own(tid) {
                self.take_final_maps(tid, FinalMapsAt::ExitGroup);
            }
            return Some(e.nr);
        }
        if let Some(call) = ForkCall::from_entry(&e, |addr, len| proc::read_bytes(tid, addr, len)) {
            if let Some(th) = self.tasks.get_mut(&tid) {
                th.forking = Some(Forking { call, announced: false });
            }
            return Some(e.nr);
        }
        if let Some(call) = ExecCall::from_entry(&e, |addr| proc::read_string(tid, addr, PATH_MAX)) {
            // The image's final maps if the exec succeeds and no other
            // process uses it.
            let maps = self.own_image_maps(tid);
            if let Some(th) = self.tasks.get_mut(&tid) {
                th.exec = Some(call);
                th.exec_maps = maps;
            }
            return Some(e.nr);
        }
        if let Some(text) = calls::path_op_text(
            &e,
            |addr| proc::read_string(tid, addr, PATH_MAX),
            |fd| proc::fd_link(tid, fd).map(|l| calls::annotation(&l)),
        ) {
            if let Some(th) = self.tasks.get_mut(&tid) {
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
            StringArg::Rlimit(i) => proc::read_bytes(tid, e.args[i], 16),
        };
        let Some(call) = calls::decode(&e, string.as_deref()) else {
            return Some(e.nr);
        };
        let anns: Vec<(usize, String)> = calls::fd_args(&call)
            .into_iter()
            .filter_map(|(i, a)| proc::fd_link(tid, a).map(|l| (i, calls::annotation(&l))))
            .collect();
        let text = calls::call_text(&call, &anns);
        if let Some(th) = self.tasks.get_mut(&tid) {
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
        self.flush_faults_at(Some(tid), None, &[]);
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
        self.push_raw(tid, &line);
    }
}
