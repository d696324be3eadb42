//! Page faults into the trace: the faults sampled since the last line,
//! with their outcomes, written before the next line.

use std::collections::HashMap;

use nix::libc;
use nix::unistd::Pid;

use super::Tracer;

impl Tracer {
    /// Writes every fault sampled so far into the trace, oldest first (see
    /// [`flush_faults_at`](Self::flush_faults_at)); no thread is known to
    /// be stopped.
    pub(super) fn flush_faults(&mut self) {
        self.flush_faults_at(None, None, &[]);
    }

    /// Writes every fault sampled so far into the trace, oldest first, with
    /// its outcome: a user fault followed by a later fault of its thread,
    /// or the last one of `stopped` (a thread in a ptrace stop, which it
    /// did not reach through a signal), succeeded; the last one of the
    /// thread `signal` stopped, at the signal's address, raised it; the
    /// last one of a thread still running is not known yet (`?`).  The
    /// faults of the tasks in `skip` are dropped (not counted either).
    pub(super) fn flush_faults_at(&mut self, stopped: Option<Pid>, signal: Option<(Pid, i32, u64)>, skip: &[i32]) {
        let Some(f) = self.faults.as_mut() else {
            return;
        };
        let mut faults = f.drain();
        if !skip.is_empty() {
            let before = faults.len();
            faults.retain(|x| !skip.contains(&x.tid));
            f.recorded -= (before - faults.len()) as u64;
        }
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
            self.dirty(Pid::from_raw(fault.tid));
        }
    }

    /// Starts sampling `tid`'s faults (a failure turns fault recording off).
    pub(super) fn attach_faults(&mut self, tid: Pid) {
        if let Some(f) = self.faults.as_mut()
            && let Err(e) = f.attach(tid.as_raw())
        {
            self.faults = None;
            self.faults_off = Some(e);
        }
    }
}
