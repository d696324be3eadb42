//! Where the replay of a trace starts when it is given the first process's
//! maps at its last exec (`--initial-maps`, a fixture of format 1): after
//! that exec line. Finding it means following that process's lines:
//!
//! A trace may hold several processes (`strace -f` follows forked
//! children, which have their own mm) and several images (a program that
//! execs another). This pass follows one mm:
//!
//! * the first pid seen, and every thread it creates (`clone`/`clone3`
//!   with `CLONE_THREAD`) — threads share the mm;
//! * not the children of `fork`, `vfork` or a `clone` without
//!   `CLONE_THREAD`: their calls are counted and skipped;
//! * a pid never announced by a `clone` line is taken as a thread (a
//!   recording that follows threads only has no clone lines).
//!
//! With an initial maps snapshot, which is taken at the last successful
//! `execve`, the replay starts after that `execve` line
//! ([`start_after_last_exec`]).

use std::collections::{HashSet, VecDeque};

use mm_ops::strace::split_pid;

/// What a clone-like call creates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// A thread: same mm.
    Thread,
    /// A process: its own mm (after `fork`), or one about to exec.
    Child,
}

/// Tracks the pids of a trace.
#[derive(Debug, Default)]
pub struct Procs {
    main: Option<u32>,
    ours: HashSet<u32>,
    others: HashSet<u32>,
    /// Clone-like calls whose new pid is not known yet, oldest first.
    expected: VecDeque<Kind>,
}

/// The call a line starts (or resumes), if clone-like.
fn clone_kind(body: &str) -> Option<(Kind, &str)> {
    let b = body.trim_start();
    let b = match b.strip_prefix("<... ") {
        Some(r) => r,
        None => b,
    };
    for name in ["clone3", "clone", "vfork", "fork"] {
        if let Some(rest) = b.strip_prefix(name)
            && (rest.starts_with('(') || rest.starts_with(" resumed>"))
        {
            let kind = if name.starts_with("clone") && rest.contains("CLONE_THREAD") {
                Kind::Thread
            } else {
                Kind::Child
            };
            return Some((kind, rest));
        }
    }
    None
}

/// What follows the call's closing parenthesis and ` = ` (strace pads the
/// space before `=` to align results: `)          = 0`), trimmed.
pub(crate) fn result_text(body: &str) -> Option<&str> {
    let mut end = body.len();
    while let Some(i) = body[..end].rfind(" = ") {
        if body[..i].trim_end().ends_with(')') {
            return Some(body[i + 3..].trim());
        }
        end = i;
    }
    None
}

/// The non-negative value after the last ` = ` of a complete line.
fn result_value(body: &str) -> Option<u32> {
    result_text(body)?.split_whitespace().next()?.parse().ok()
}

/// `strace: Process N attached` (possibly cut into another line).
fn attached(body: &str) -> Option<u32> {
    let i = body.find("strace: Process ")?;
    let rest = &body[i + "strace: Process ".len()..];
    rest.trim_end().strip_suffix(" attached")?.parse().ok()
}

impl Procs {
    fn classify(&mut self, pid: u32, kind: Kind) {
        if self.ours.contains(&pid) || self.others.contains(&pid) {
            return;
        }
        match kind {
            Kind::Thread => self.ours.insert(pid),
            Kind::Child => self.others.insert(pid),
        };
    }

    fn new_pid(&mut self, pid: u32) {
        let kind = self.expected.pop_front().unwrap_or(Kind::Thread);
        self.classify(pid, kind);
    }

    /// Reads one raw line; true if it belongs to the replayed mm.
    pub fn observe(&mut self, line: &str) -> bool {
        let (pid, body) = split_pid(line);
        if let Some(pid) = pid {
            if self.main.is_none() {
                self.main = Some(pid);
                self.ours.insert(pid);
            }
            if !self.ours.contains(&pid) && !self.others.contains(&pid) {
                self.new_pid(pid);
            }
        }
        let mine = pid.is_none_or(|p| !self.others.contains(&p));
        let known = |p: &Procs, n: u32| p.ours.contains(&n) || p.others.contains(&n);
        if let Some((kind, rest)) = clone_kind(body) {
            // Whatever another process creates belongs to it.
            let kind = if mine { kind } else { Kind::Child };
            let resumed = body.trim_start().starts_with("<... ");
            if let Some(child) = result_value(rest).filter(|&c| c > 0) {
                if !known(self, child) {
                    if resumed {
                        // Its unfinished half announced the kind.
                        self.new_pid(child);
                    } else {
                        self.classify(child, kind);
                    }
                }
            } else if let Some(n) = attached(rest) {
                self.classify(n, kind);
            } else if !resumed && rest.contains("<unfinished ...>") {
                self.expected.push_back(kind);
            }
        } else if let Some(n) = attached(body)
            && !known(self, n)
        {
            self.new_pid(n);
        }
        mine
    }

    /// Lines from other processes seen so far.
    pub fn other_pids(&self) -> usize {
        self.others.len()
    }
}

/// The index of the first line after the last successful `execve` (or
/// `execveat`) of the trace's first process, or 0 if it has none.
pub fn start_after_last_exec(lines: &[String]) -> usize {
    let mut procs = Procs::default();
    let mut start = 0;
    for (i, l) in lines.iter().enumerate() {
        if !procs.observe(l) {
            continue;
        }
        if is_successful_exec(l) {
            start = i + 1;
        }
    }
    start
}

/// `execve`/`execveat` (or its resumed half) that returned 0.
pub fn is_successful_exec(line: &str) -> bool {
    let (_, body) = split_pid(line);
    let b = body.trim_start();
    let is_exec = ["execve(", "execveat(", "<... execve resumed>", "<... execveat resumed>"]
        .iter()
        .any(|p| b.starts_with(p));
    is_exec && result_value(b) == Some(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ours(lines: &[&str]) -> Vec<bool> {
        let mut p = Procs::default();
        lines.iter().map(|l| p.observe(l)).collect()
    }

    #[test]
    fn threads_are_followed_and_children_are_not() {
        let got = ours(&[
            "100 mmap(NULL, 4096, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7ffff7fb0000",
            "100 clone3({flags=CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM, exit_signal=0}, 88) = 101",
            "101 mmap(NULL, 8192, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7ffff7fa0000",
            "100 clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD, child_tidptr=0x7ffff7d8fa10) = 102",
            "102 mmap(NULL, 4096, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7ffff7fb0000",
            "101 munmap(0x7ffff7fa0000, 8192) = 0",
        ]);
        assert_eq!(got, [true, true, true, true, false, true]);
    }

    #[test]
    fn a_child_that_runs_before_its_clone_returns_is_still_a_child() {
        let got = ours(&[
            "[pid   100] vfork( <unfinished ...>",
            "[pid   103] execve(\"/bin/ls\", [\"ls\"], 0x7ffc /* 3 vars */) = 0",
            "[pid   103] mmap(NULL, 4096, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7ffff7fb0000",
            "[pid   100] <... vfork resumed>) = 103",
            "[pid   100] munmap(0x7ffff7fa0000, 8192) = 0",
            // A child's own children and threads are not ours either.
            "[pid   103] vfork( <unfinished ...>",
            "[pid   104] execve(\"/bin/ld\", [\"ld\"], 0x7ffc /* 3 vars */ <unfinished ...>",
            "[pid   103] <... vfork resumed>) = 104",
            "[pid   104] brk(NULL) = 0x555555559000",
            "[pid   103] clone3({flags=CLONE_VM|CLONE_THREAD, exit_signal=0}, 88) = 105",
            "[pid   105] mmap(NULL, 4096, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7ffff7fb0000",
            "[pid   100] brk(NULL) = 0x555555559000",
        ]);
        assert_eq!(
            got,
            [
                true, false, false, true, true, false, false, false, false, false, false, true
            ]
        );
    }

    #[test]
    fn attach_messages_name_the_new_thread() {
        let got = ours(&[
            "clone3({flags=CLONE_VM|CLONE_THREAD, exit_signal=0}strace: Process 19535 attached",
            " => {parent_tid=[19535]}, 88) = 19535",
            "[pid 19535] mmap(NULL, 4096, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7ffff7fb0000",
        ]);
        assert_eq!(got, [true, true, true]);
    }

    #[test]
    fn replay_starts_after_the_last_successful_exec() {
        let lines: Vec<String> = [
            "execve(\"/bin/sh\", [\"sh\"], 0x7ffc /* 3 vars */) = 0",
            "mmap(NULL, 4096, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7ffff7fb0000",
            "execve(\"/nope\", [\"nope\"], 0x7ffc /* 3 vars */) = -1 ENOENT (No such file or directory)",
            "execve(\"/bin/ls\", [\"ls\"], 0x7ffc /* 3 vars */) = 0",
            "brk(NULL) = 0x555555559000",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(start_after_last_exec(&lines), 4);
        // strace -o pads results into a column.
        assert!(is_successful_exec("20144 <... execve resumed>)             = 0"));
        assert!(!is_successful_exec(
            "20144 <... execve resumed>)             = -1 ENOENT (No such file)"
        ));
        assert_eq!(start_after_last_exec(&lines[4..]), 0);
    }
}
