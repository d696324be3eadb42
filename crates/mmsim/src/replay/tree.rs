//! The processes of a trace, each with its own model: what `fork`,
//! `vfork`, `clone`, `execve` and exits do to the replay.
//!
//! A trace of `strace -f` (or of `mmsim record`, which writes the same
//! lines) holds every process of a program. The replay gives each process
//! a [`Replayer`] of its own:
//!
//! * **Threads** (`clone`/`clone3` with `CLONE_THREAD`) share their
//!   process's replayer.
//! * **fork** (`fork`, or `clone`/`clone3` without `CLONE_VM`): the child's
//!   model is the parent's copied at that line by the model's own
//!   `dup_mmap` ([`Task::fork`](mm_ops::Task::fork)), descriptors included.
//!   A recorded `fork() = -1 ENOMEM` is compared with the model's fork.
//! * **vfork**, `posix_spawn` (a `clone` with `CLONE_VM` and without
//!   `CLONE_THREAD`): the child shares the parent's address space
//!   ([`Task::clone_vm`](mm_ops::Task::clone_vm)), with a copy of its
//!   descriptor table.
//! * **execve** that succeeded: the process's model is replaced by one
//!   started from the snapshot the fixture took at that exec
//!   ([`ImageFacts`], keyed by the exec's line number). Without a snapshot
//!   (a plain `strace -f` trace) the new image starts from an empty address
//!   space; the kernel mapped the program, its interpreter, the stack and
//!   the vDSO before the trace shows anything, so its results are printed
//!   but not checked (counted in [`ReplaySummary::unchecked`]).
//! * **Exits** (`+++ exited with N +++`, `+++ killed by SIG +++`): when the
//!   last task of an address space leaves it (an exit, or an exec), its
//!   maps are compared with the fixture's `mm/LINE.final-maps.txt`.
//!
//! A line of a task that no clone line announced belongs to the first
//! process (a trace that follows threads only has no clone lines), unless
//! a clone-like call is in flight (`clone(… <unfinished ...>`): then it is
//! that call's child, created at its first line.
//!
//! With a filter (`--pid PID`), every process is still replayed (a child's
//! model is its parent's at the fork), but only the process PID and its
//! descendants are printed and checked; the other lines are counted as
//! other processes.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use mm_ops::strace::split_pid;

use super::fixture::diff_maps;
use super::procs::is_successful_exec;
use super::report::MapsCheck;
use super::{ReplayError, ReplayOptions, ReplaySummary, Replayer};

/// How a clone-like call's child relates to its parent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CloneKind {
    /// `CLONE_THREAD`: the same process.
    Thread,
    /// `CLONE_VM` without `CLONE_THREAD` (vfork, posix_spawn): the same
    /// address space, another process.
    SharedVm,
    /// No `CLONE_VM`: a copy of the address space.
    Fork,
}

/// What a snapshot-taking recorder knows about one address space (an
/// *image*), keyed by the line that created it: its exec line, its fork
/// line, or 0 for the first process's first image.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageFacts {
    /// `/proc/PID/maps` when the image began (at the exec; for a fork
    /// child, right after `dup_mmap`).
    pub initial_maps: Option<String>,
    /// `/proc/PID/maps` when its last task left it.
    pub final_maps: Option<String>,
    /// For an exec image: the break at the exec.
    pub brk: Option<u64>,
    /// For an exec image: `mm->start_stack`.
    pub start_stack: Option<u64>,
    /// For an exec image: the working directory.
    pub cwd: Option<String>,
    /// For an exec image: its process's environment (limits, sysctls, …).
    pub env: Option<mm_ops::env::ProcEnv>,
}

/// One process of the trace.
struct Proc {
    /// Its pid (0 until the first line that names one).
    pid: u32,
    /// Its model; `None` once it has ended.
    r: Option<Replayer>,
    /// The line that created its current image (0: the first image).
    image: usize,
    /// Its tasks still alive.
    tids: HashSet<u32>,
    /// Printed and checked (in the `--pid` tree).
    selected: bool,
    /// Its image started from something known (the replay's start, a
    /// snapshot, or a checked process's fork): its results are checked.
    anchored: bool,
    /// Its final maps, once it ended (kept for the first process only).
    final_maps: Option<String>,
}

/// The processes of a trace and the task ids that map to them.
pub(crate) struct Tree {
    procs: Vec<Proc>,
    by_tid: HashMap<u32, usize>,
    /// Clone-like calls in flight (`<unfinished ...>`): the caller's task,
    /// its process and the kind; a new task takes the oldest.
    expected: VecDeque<(u32, usize, CloneKind)>,
    /// The kind of each task's clone-like call in flight, for its
    /// `resumed` half.
    pending: HashMap<u32, CloneKind>,
    filter: Option<u32>,
}

/// Whose line a line is.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Owner {
    /// The process's index.
    pub idx: usize,
    /// Printed and checked.
    pub selected: bool,
    /// Its results are compared with the recorded ones.
    pub checked: bool,
}

/// The clone-like call a line starts, completes or resumes: its kind
/// (`None` for a resumed half, whose flags were on the other half), its
/// child (`Ok(pid)`), its failure (`Err(enomem)`), or neither (in flight).
struct CloneLine {
    kind: Option<CloneKind>,
    result: Option<Result<u32, bool>>,
    unfinished: bool,
}

/// Reads a clone-like line (`fork(`, `vfork(`, `clone(`, `clone3(` or their
/// resumed halves).
fn clone_line(body: &str) -> Option<CloneLine> {
    let b = body.trim_start();
    let (resumed, b) = match b.strip_prefix("<... ") {
        Some(r) => (true, r),
        None => (false, b),
    };
    let name = ["clone3", "clone", "vfork", "fork"].into_iter().find(|n| {
        b.strip_prefix(n)
            .is_some_and(|r| r.starts_with('(') || r.starts_with(" resumed>"))
    })?;
    let rest = &b[name.len()..];
    let kind = if resumed {
        None
    } else {
        let flag = |f: &str| {
            rest.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .any(|w| w == f)
        };
        Some(match name {
            "fork" => CloneKind::Fork,
            "vfork" => CloneKind::SharedVm,
            _ if flag("CLONE_THREAD") => CloneKind::Thread,
            _ if flag("CLONE_VM") => CloneKind::SharedVm,
            _ => CloneKind::Fork,
        })
    };
    let result = super::procs::result_text(rest).map(|v| {
        match v.split_whitespace().next().and_then(|w| w.parse::<i64>().ok()) {
            Some(c) if c > 0 => Ok(c as u32),
            _ => Err(v.starts_with("-1 ENOMEM")),
        }
    });
    let unfinished = result.is_none() && rest.contains("<unfinished ...>");
    Some(CloneLine {
        kind,
        result,
        unfinished,
    })
}

/// `+++ exited with N +++` or `+++ killed by SIG +++`.
fn is_exit(body: &str) -> bool {
    let b = body.trim_start();
    b.starts_with("+++ exited with ") || b.starts_with("+++ killed by ")
}

impl Tree {
    /// The trace's first process, with `root` as its model.
    pub(crate) fn new(root: Replayer, filter: Option<u32>) -> Tree {
        Tree {
            procs: vec![Proc {
                pid: 0,
                r: Some(root),
                image: 0,
                tids: HashSet::new(),
                selected: filter.is_none(),
                anchored: true,
                final_maps: None,
            }],
            by_tid: HashMap::new(),
            expected: VecDeque::new(),
            pending: HashMap::new(),
            filter,
        }
    }

    /// More than one process has appeared.
    pub(crate) fn several(&self) -> bool {
        self.procs.len() > 1
    }

    /// Processes seen.
    pub(crate) fn processes(&self) -> usize {
        self.procs.len()
    }

    /// Applies an `unlink` or `rename` to the file table of every address
    /// space still replayed, once each (processes that share one, after
    /// `vfork` or `CLONE_VM`, share its table too).
    pub(crate) fn apply_path_op(&mut self, op: &super::paths::ResolvedPathOp) {
        let mut done: Vec<*const ()> = Vec::new();
        for r in self.procs.iter_mut().filter_map(|p| p.r.as_mut()) {
            let mm = std::sync::Arc::as_ptr(r.task.mm()).cast::<()>();
            if !done.contains(&mm) {
                done.push(mm);
                r.apply_path_op(op);
            }
        }
    }

    /// The model of process `idx`, if it has not ended.
    pub(crate) fn replayer(&mut self, idx: usize) -> Option<&mut Replayer> {
        self.procs[idx].r.as_mut()
    }

    /// The process of task `tid` (`None`: the first process), a new task
    /// being placed as the module documentation says.
    fn owner_of(&mut self, tid: Option<u32>, lineno: usize, summary: &mut ReplaySummary) -> usize {
        let Some(tid) = tid else {
            return 0;
        };
        if let Some(&i) = self.by_tid.get(&tid) {
            return i;
        }
        if self.procs[0].pid == 0 {
            self.procs[0].pid = tid;
            self.procs[0].tids.insert(tid);
            self.by_tid.insert(tid, 0);
            return 0;
        }
        match self.expected.pop_front() {
            Some((caller, parent, kind)) => {
                self.pending.remove(&caller);
                self.spawn(parent, kind, Some(caller), tid, lineno, None, summary)
            }
            None => self.spawn(0, CloneKind::Thread, None, tid, lineno, None, summary),
        }
    }

    /// Creates task `child` of process `parent` at line `lineno`, made by
    /// thread `caller` when known; returns its process. `checked_line`:
    /// the text of the line that recorded the child (a successful
    /// fork-like call), when its result is checked: then a model fork that
    /// fails is a divergence. A new thread, and a `CLONE_VM` child, start
    /// with their creator's PKRU ([`MmStruct::new_thread`](mm_core::MmStruct::new_thread)).
    #[allow(clippy::too_many_arguments)]
    fn spawn(
        &mut self,
        parent: usize,
        kind: CloneKind,
        caller: Option<u32>,
        child: u32,
        lineno: usize,
        checked_line: Option<&str>,
        summary: &mut ReplaySummary,
    ) -> usize {
        if let (Some(c), Some(r), CloneKind::Thread | CloneKind::SharedVm) =
            (caller, self.procs[parent].r.as_ref(), kind)
        {
            r.task().mm().new_thread(c, child);
        }
        if kind == CloneKind::Thread {
            self.procs[parent].tids.insert(child);
            self.by_tid.insert(child, parent);
            return parent;
        }
        let p = &mut self.procs[parent];
        let selected = p.selected || self.filter == Some(child);
        let (mut anchored, image) = (p.anchored, if kind == CloneKind::Fork { lineno } else { p.image });
        let r = match (kind, p.r.as_mut()) {
            (CloneKind::SharedVm, Some(r)) => Some(r.clone_vm()),
            (_, Some(r)) => match r.fork() {
                Ok(c) => Some(c),
                Err(e) => {
                    if let Some(text) = checked_line {
                        summary.divergences.push(super::report::Divergence {
                            line: lineno,
                            text: text.to_string(),
                            model: format!("-1 {e:?} ({e})"),
                            recorded: "a child".into(),
                            around: vec![],
                        });
                    }
                    None
                }
            },
            _ => None,
        };
        let r = r.unwrap_or_else(|| {
            // The parent's model is gone (or its fork failed): the child
            // starts from nothing and is not checked.
            anchored = false;
            Replayer::new(&ReplayOptions::default()).expect("default options")
        });
        if checked_line.is_some() && kind == CloneKind::Fork {
            summary.checked += 1;
        }
        self.procs.push(Proc {
            pid: child,
            r: Some(r),
            image,
            tids: HashSet::from([child]),
            selected,
            anchored,
            final_maps: None,
        });
        let idx = self.procs.len() - 1;
        self.by_tid.insert(child, idx);
        idx
    }

    /// Reads line `lineno` before it is parsed: its process, and the
    /// process events it shows (a clone-like call's child, an exec, an
    /// exit), applied.
    pub(crate) fn observe(
        &mut self,
        lineno: usize,
        text: &str,
        opts: &ReplayOptions,
        summary: &mut ReplaySummary,
    ) -> Result<Owner, ReplayError> {
        let (tid, body) = split_pid(text);
        let idx = self.owner_of(tid, lineno, summary);
        // The line's thread runs: its PKRU is the address space's.
        if let (Some(t), Some(r)) = (tid, self.procs[idx].r.as_ref()) {
            r.task().mm().switch_thread(t);
        }
        let p = &self.procs[idx];
        let owner = Owner {
            idx,
            selected: p.selected,
            checked: p.selected && p.anchored && opts.check,
        };
        if let Some(c) = clone_line(body) {
            let caller = tid.unwrap_or(self.procs[0].pid);
            let kind = match c.kind {
                Some(k) => Some(k),
                None => self.pending.remove(&caller),
            };
            if c.unfinished {
                if let Some(k) = c.kind {
                    self.pending.insert(caller, k);
                    self.expected.push_back((caller, idx, k));
                }
            } else {
                self.expected.retain(|&(t, _, _)| t != caller);
            }
            match (c.result, kind) {
                (Some(Ok(child)), Some(k)) if !self.by_tid.contains_key(&child) => {
                    let checked_line = owner.checked.then_some(text);
                    let child_idx = self.spawn(idx, k, Some(caller), child, lineno, checked_line, summary);
                    self.check_fork_copy(child_idx, lineno, opts, summary);
                }
                (Some(Err(true)), Some(CloneKind::Fork)) if owner.checked => {
                    // The recorded fork failed for lack of memory: so must
                    // the model's.
                    summary.checked += 1;
                    if let Some(r) = self.procs[idx].r.as_mut()
                        && r.fork().is_ok()
                    {
                        summary.divergences.push(super::report::Divergence {
                            line: lineno,
                            text: text.to_string(),
                            model: "a child".into(),
                            recorded: "-1 ENOMEM".into(),
                            around: vec![],
                        });
                    }
                }
                _ => {}
            }
        } else if is_successful_exec(text) {
            self.exec(idx, tid, lineno, opts, summary)?;
        } else if is_exit(body)
            && let Some(t) = tid
        {
            self.exit(idx, t, opts, summary);
        }
        let p = &self.procs[idx];
        Ok(Owner {
            idx,
            selected: p.selected,
            checked: p.selected && p.anchored && opts.check,
        })
    }

    /// A fork child's model against the maps the recorder read right after
    /// the fork (`mm/LINE.initial-maps.txt`).
    fn check_fork_copy(&mut self, idx: usize, lineno: usize, opts: &ReplayOptions, summary: &mut ReplaySummary) {
        let p = &self.procs[idx];
        if !(p.selected && p.anchored && opts.check) || p.image != lineno {
            return;
        }
        let (Some(recorded), Some(r)) = (
            opts.images.get(&lineno).and_then(|f| f.initial_maps.as_deref()),
            p.r.as_ref(),
        ) else {
            return;
        };
        summary.maps_checks.push(MapsCheck {
            pid: p.pid,
            image: lineno,
            what: "after fork",
            diff: diff_maps(recorded, &r.maps()).unwrap_or_else(Some),
        });
    }

    /// Process `idx`'s current image loses a user: when it was the last,
    /// its maps are its final ones, compared with the recorded ones.
    fn leave_image(&mut self, idx: usize, opts: &ReplayOptions, summary: &mut ReplaySummary) {
        let p = &mut self.procs[idx];
        let Some(r) = p.r.take() else {
            return;
        };
        let maps = r.maps();
        let last = Arc::strong_count(r.task().mm()) == 1;
        drop(r);
        // Only the first process's are asked for (the summary's final
        // maps); a long trace may end thousands of processes.
        if idx == 0 {
            p.final_maps = Some(maps.clone());
        }
        if !(last && p.selected && p.anchored && opts.check) {
            return;
        }
        if let Some(recorded) = opts.images.get(&p.image).and_then(|f| f.final_maps.as_deref()) {
            summary.maps_checks.push(MapsCheck {
                pid: p.pid,
                image: p.image,
                what: "final",
                diff: diff_maps(recorded, &maps).unwrap_or_else(Some),
            });
        }
    }

    /// A successful exec of process `idx` at line `lineno`.
    fn exec(
        &mut self,
        idx: usize,
        tid: Option<u32>,
        lineno: usize,
        opts: &ReplayOptions,
        summary: &mut ReplaySummary,
    ) -> Result<(), ReplayError> {
        let cwd = self.procs[idx].r.as_ref().map(|r| r.cwd.clone());
        self.leave_image(idx, opts, summary);
        let facts = opts.images.get(&lineno);
        let mut o = opts.clone();
        o.images = Default::default();
        o.initial_maps = facts.and_then(|f| f.initial_maps.clone());
        let anchored = o.initial_maps.is_some();
        o.brk = facts.and_then(|f| f.brk);
        o.start_stack = facts.and_then(|f| f.start_stack);
        if let Some(c) = facts.and_then(|f| f.cwd.clone()).or(cwd) {
            o.cwd = c;
        }
        if let Some(env) = facts.and_then(|f| f.env.clone()) {
            o.env = env;
        }
        let r = Replayer::new(&o).map_err(|e| ReplayError::Setup(format!("line {lineno}: exec snapshot: {e}")))?;
        let p = &mut self.procs[idx];
        // The exec ended every other thread; a thread that exec'd took the
        // process's pid.
        for t in p.tids.drain() {
            self.by_tid.remove(&t);
        }
        let tid = tid.unwrap_or(p.pid);
        p.tids.insert(tid);
        self.by_tid.insert(tid, idx);
        p.r = Some(r);
        p.image = lineno;
        p.anchored = anchored;
        p.final_maps = None;
        if !anchored && p.selected && opts.check {
            summary.unanchored += 1;
        }
        Ok(())
    }

    /// Task `tid` of process `idx` is gone; the process ends with its last.
    fn exit(&mut self, idx: usize, tid: u32, opts: &ReplayOptions, summary: &mut ReplaySummary) {
        let p = &mut self.procs[idx];
        if let Some(r) = p.r.as_ref() {
            r.task().mm().exit_thread(tid);
        }
        p.tids.remove(&tid);
        // A leader that exits before its threads keeps its pid (the
        // process's): a later exec by one of them is written with it.
        if tid != p.pid || p.tids.is_empty() {
            self.by_tid.remove(&tid);
        }
        if p.tids.is_empty() {
            self.by_tid.remove(&p.pid);
            self.leave_image(idx, opts, summary);
        }
    }

    /// The end of the input: every process still alive leaves its image
    /// (the last user of each address space compares its final maps).
    /// Returns the first process's final maps.
    pub(crate) fn finish(&mut self, opts: &ReplayOptions, summary: &mut ReplaySummary) -> String {
        // Children first: a vfork child's parent is the last user.
        for idx in (0..self.procs.len()).rev() {
            self.leave_image(idx, opts, summary);
        }
        self.procs[0].final_maps.clone().unwrap_or_default()
    }
}

impl Replayer {
    /// `fork(2)` of this process: a child replayer whose model is a copy
    /// of this one's ([`Task::fork`](mm_ops::Task::fork)), with the same
    /// descriptors and working directory. Memory still assumed about to be
    /// written is written first: the program moved on to something else.
    pub fn fork(&mut self) -> Result<Replayer, mm_ops::Errno> {
        self.flush_unwritten();
        let task = self.task.fork()?;
        Ok(self.child(task))
    }

    /// `vfork(2)` (or `clone(CLONE_VM)` without `CLONE_THREAD`): a child
    /// replayer that shares this one's address space, with a copy of its
    /// descriptor table ([`Task::clone_vm`](mm_ops::Task::clone_vm)).
    pub fn clone_vm(&mut self) -> Replayer {
        self.flush_unwritten();
        let task = self.task.clone_vm();
        self.child(task)
    }

    fn child(&self, task: mm_ops::Task) -> Replayer {
        Replayer {
            known: self.known.clone(),
            task,
            fds: self.fds.clone(),
            cwd: self.cwd.clone(),
            brk_decided: true,
            assume_written: self.assume_written,
            unwritten: Vec::new(),
        }
    }
}
