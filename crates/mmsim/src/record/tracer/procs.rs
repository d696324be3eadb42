//! Processes and images (address spaces): the first exec, fork-like
//! calls, execs and reaped tasks, their trace lines and `mm/` snapshots,
//! and the per-image serialization of layout calls.
//!
//! An image is named by the trace line that made it: `0` for the root's
//! first exec, the fork-like line of a child that got its own mm, the
//! exec line of a process that exec'd.  Its users are the tasks in it: a
//! fork child starts its own; a `CLONE_VM` child (a thread, a `vfork` or
//! `posix_spawn` child) joins its parent's; an exec moves the process to
//! a new one.  It ends when its last user leaves it (reaped, or exec'd),
//! and its final maps (`mm/L.final-maps.txt`) are what was last read for
//! it: at an `exit_group` entry stop or a `PTRACE_EVENT_EXIT` stop of a
//! task whose process is alone in it (again when lines of the image were
//! written after that), or at the entry stop of an `execve` that
//! succeeds, when the exec'ing process is alone in it.

use std::time::Instant;

use mm_ops::call::{Call, Outcome};
use mm_ops::strace::format_result;
use nix::sys::ptrace;
use nix::unistd::Pid;

use super::super::calls::{self, nr};
use super::super::events::{self, ExecCall, ExecInfo, ForkCall};
use super::super::proc;
use super::{FinalMapsAt, HOLD_LIMIT, Image, Task, Tracer};
use crate::record::Exit;

impl Tracer {
    /// The root stopped at its first exec: image 0 starts, with
    /// `initial-maps.txt`, `mm/0.initial-maps.txt` and `mm/0.meta.txt`.
    pub(super) fn begin(&mut self, tid: Pid) {
        self.tasks.insert(tid, Task::new(tid, Some(0)));
        self.images.insert(0, Image::new(tid));
        self.root_image = 0;
        self.attach_faults(tid);
        let maps = proc::maps(tid).unwrap_or_default();
        self.exec = ExecInfo::read(tid);
        if let Err(e) = self.fixture.start(&maps) {
            self.write_error.get_or_insert(e);
        }
        self.snapshot("0.initial-maps.txt", &maps);
        let meta = self.exec.render();
        self.snapshot("0.meta.txt", &meta);
    }

    /// Writes `mm/NAME`.
    fn snapshot(&mut self, name: &str, text: &str) {
        if let Err(e) = self.fixture.write_mm(name, text) {
            self.write_error.get_or_insert(e);
        }
    }

    /// The image `tid` uses.
    pub(super) fn image_of(&self, tid: Pid) -> Option<&Image> {
        self.tasks.get(&tid)?.image.and_then(|i| self.images.get(&i))
    }

    /// True when every user of `tid`'s image belongs to `tid`'s process.
    pub(super) fn image_is_process_own(&self, tid: Pid) -> bool {
        let (Some(t), Some(im)) = (self.tasks.get(&tid), self.image_of(tid)) else {
            return false;
        };
        im.users
            .iter()
            .all(|u| self.tasks.get(u).is_some_and(|x| x.tgid == t.tgid))
    }

    /// `tid`'s maps, read at this stop (after the faults so far are
    /// written), when its image is its process's own: what its image's
    /// final maps are if it leaves the image here. `None` when another
    /// process uses the image, or when the maps cannot be read or are empty.
    pub(super) fn own_image_maps(&mut self, tid: Pid) -> Option<String> {
        self.flush_faults_at(Some(tid), None, &[]);
        if self.image_is_process_own(tid) {
            proc::maps(tid).ok().filter(|m| !m.is_empty())
        } else {
            None
        }
    }

    /// `tid` entered a serialized call: true when it may go on (its image
    /// has no other one in flight), false when it is held.
    pub(super) fn serialize(&mut self, tid: Pid) -> bool {
        let Some(img) = self.tasks.get(&tid).and_then(|t| t.image) else {
            return true;
        };
        let Some(im) = self.images.get_mut(&img) else {
            return true;
        };
        match im.busy {
            Some((b, _)) if b != tid => {
                im.held.push_back(tid);
                false
            }
            _ => {
                im.busy = Some((tid, Instant::now()));
                true
            }
        }
    }

    /// `tid`'s serialized call ended: the next held task of its image goes.
    pub(super) fn release(&mut self, tid: Pid) {
        let ids: Vec<u64> = self
            .images
            .iter()
            .filter(|(_, im)| im.busy.is_some_and(|(b, _)| b == tid))
            .map(|(&id, _)| id)
            .collect();
        for id in ids {
            self.release_next(id);
        }
    }

    /// The oldest held task of image `id` that still exists goes next.
    fn release_next(&mut self, id: u64) {
        loop {
            let Some(im) = self.images.get_mut(&id) else {
                return;
            };
            im.busy = None;
            let Some(h) = im.held.pop_front() else {
                return;
            };
            if self.tasks.contains_key(&h) {
                im.busy = Some((h, Instant::now()));
                self.resume(h, 0);
                return;
            }
        }
    }

    /// Lets the held tasks of images whose call in flight takes too long
    /// go, and new tasks whose parent's event stop never came.
    pub(super) fn expire_holds(&mut self) {
        for im in self.images.values_mut() {
            if im.busy.is_some_and(|(_, since)| since.elapsed() > HOLD_LIMIT) {
                im.busy = None;
                let held: Vec<_> = im.held.drain(..).collect();
                for h in held {
                    if let Err(e) = super::sys::resume(h, 0)
                        && e != nix::errno::Errno::ESRCH
                    {
                        eprintln!("mmsim record: cannot resume task {h}: {e}");
                    }
                }
            }
        }
        let late: Vec<Pid> = self
            .parked
            .iter()
            .filter(|(_, since)| since.elapsed() > HOLD_LIMIT)
            .map(|(&p, _)| p)
            .collect();
        for p in late {
            self.parked.remove(&p);
            let tgid = proc::tgid(p).map_or(p, Pid::from_raw);
            self.tasks.insert(p, Task::new(tgid, None));
            self.tasks_seen += 1;
            self.attach_faults(p);
            self.resume(p, 0);
        }
    }

    /// `tid` is gone or going: it holds nothing and waits for nothing.
    pub(super) fn forget(&mut self, tid: Pid) {
        for im in self.images.values_mut() {
            im.held.retain(|&h| h != tid);
        }
        self.release(tid);
    }

    /// `PTRACE_EVENT_FORK`, `VFORK` or `CLONE` of `parent`: writes the
    /// fork-like line, starts the child's image (with its initial maps)
    /// or adds it to the parent's, and lets a parked child go.
    pub(super) fn fork_event(&mut self, parent: Pid, ev: i32) {
        let Ok(new) = ptrace::getevent(parent) else {
            return;
        };
        let child = Pid::from_raw(new as libc::pid_t);
        let (ptgid, pimage) = self.tasks.get(&parent).map_or((parent, None), |t| (t.tgid, t.image));
        let call = match self.tasks.get_mut(&parent).and_then(|t| t.forking.as_mut()) {
            Some(f) => {
                f.announced = true;
                f.call.clone()
            }
            None => ForkCall::from_event(ev, proc::tgid(child) == Some(ptgid.as_raw())),
        };
        self.push_line(parent, &format!("{parent} {} = {child}", call.text()));
        let line = self.fixture.lines();
        let (tgid, image) = if call.thread() {
            (ptgid, pimage)
        } else if call.shares_vm() {
            (child, pimage)
        } else {
            (child, Some(line))
        };
        if call.shares_vm() {
            if let Some(im) = pimage.and_then(|i| self.images.get_mut(&i)) {
                im.users.insert(child);
            }
        } else {
            // The child has not run: its maps are the copy dup_mmap made.
            let maps = proc::maps(child).unwrap_or_default();
            self.snapshot(&format!("{line}.initial-maps.txt"), &maps);
            self.images.insert(line, Image::new(child));
            self.release(parent);
        }
        let parked = self.parked.remove(&child).is_some();
        let mut task = Task::new(tgid, image);
        task.fresh = !parked;
        self.tasks.insert(child, task);
        self.tasks_seen += 1;
        if !call.thread() {
            self.processes += 1;
        }
        self.attach_faults(child);
        if parked {
            self.resume(child, 0);
        }
    }

    /// The exit stop of `tid`'s call: a fork-like call that made no child
    /// is written with its error; an exec that got here failed.
    pub(super) fn process_call_exit(&mut self, tid: Pid) {
        let Some(th) = self.tasks.get_mut(&tid) else {
            return;
        };
        th.exec = None;
        th.exec_maps = None;
        let Some(f) = th.forking.take() else {
            return;
        };
        if f.announced {
            return;
        }
        if let Ok(r) = ptrace::getregs(tid)
            && let o @ Outcome::Err(_) = calls::outcome(r.rax)
        {
            let line = format!(
                "{tid} {} = {}",
                f.call.text(),
                format_result(&Call::Close { fd: 0 }, &o)
            );
            self.push_line(tid, &line);
        }
    }

    /// `PTRACE_EVENT_EXEC` of process `tid` (the thread that exec'd has
    /// that id now): writes the exec line, starts the new image with its
    /// snapshots, and takes the whole process out of the old one.
    pub(super) fn exec_event(&mut self, tid: Pid) {
        let former = ptrace::getevent(tid).map_or(tid, |v| Pid::from_raw(v as libc::pid_t));
        // The process's other threads are gone or going; what they and
        // the exec'ing thread faulted during the exec is in the new
        // image's snapshot or in the old image, which ends.
        let mut dying: Vec<Pid> = self
            .tasks
            .iter()
            .filter(|(p, t)| t.tgid == tid && **p != former)
            .map(|(&p, _)| p)
            .collect();
        let skip: Vec<i32> = dying.iter().chain([&tid, &former]).map(|p| p.as_raw()).collect();
        self.flush_faults_at(None, None, &skip);
        let mut task = self.tasks.remove(&former).unwrap_or_else(|| Task::new(tid, None));
        if former != tid {
            self.forget(former);
            dying.retain(|&p| p != tid);
            if let Some(old) = self.tasks.remove(&tid) {
                if old.pending.is_some() {
                    self.unfinished += 1;
                }
                self.forget(tid);
                self.leave_image(tid, old.image, None);
            }
            if let Some(f) = self.faults.as_mut() {
                f.detach(former.as_raw());
                f.detach(tid.as_raw());
            }
        }
        for d in dying {
            let img = self.tasks.get_mut(&d).and_then(|t| t.image.take());
            self.leave_image(d, img, None);
        }
        let call = task.exec.take().unwrap_or(ExecCall {
            nr: nr::EXECVE,
            dirfd: 0,
            path: Vec::new(),
            envp: 0,
            flags: 0,
        });
        let argv = events::nul_list(&proc::nul_file(tid, "cmdline").unwrap_or_default());
        let nenv = events::nul_list(&proc::nul_file(tid, "environ").unwrap_or_default()).len();
        self.push_raw(tid, &call.line(tid, &argv, nenv));
        let line = self.fixture.lines();
        let maps = proc::maps(tid).unwrap_or_default();
        self.snapshot(&format!("{line}.initial-maps.txt"), &maps);
        let meta = ExecInfo::read(tid).render();
        self.snapshot(&format!("{line}.meta.txt"), &meta);
        self.images.insert(line, Image::new(tid));
        if tid == self.root {
            self.root_image = line;
        }
        let old = task.image.replace(line);
        let candidate = task.exec_maps.take();
        self.leave_image(former, old, candidate);
        task.tgid = tid;
        task.in_syscall = true;
        task.pending = None;
        task.forking = None;
        self.tasks.insert(tid, task);
        self.attach_faults(tid);
        self.execs += 1;
    }

    /// `tid`, at the entry of `ptrace(PTRACE_TRACEME)`, asks its parent to
    /// trace it (a debugger starting its inferior): a task has one tracer,
    /// so it is let go here, before the call runs, and the call succeeds
    /// as it would without the recorder. Its image ends now, with the maps
    /// read at this stop when it was the process's own; what the process
    /// does next is not recorded.
    pub(super) fn detach_for_tracer(&mut self, tid: Pid) {
        let maps = self.own_image_maps(tid);
        self.forget(tid);
        if let Some(f) = self.faults.as_mut() {
            f.detach(tid.as_raw());
        }
        let Some(th) = self.tasks.remove(&tid) else {
            return;
        };
        self.detached += 1;
        if let Some(m) = maps
            && let Some(im) = th.image.and_then(|id| self.images.get_mut(&id))
        {
            im.final_maps = Some((m, FinalMapsAt::Detached));
        }
        self.leave_image(tid, th.image, None);
        if let Err(e) = ptrace::detach(tid, None)
            && e != nix::errno::Errno::ESRCH
        {
            eprintln!("mmsim record: cannot let task {tid} go: {e}");
        }
    }

    /// `tid` was reaped: its exit line, and it leaves its image.
    pub(super) fn gone(&mut self, tid: Pid, how: Exit, core: bool) {
        self.forget(tid);
        // A fault that killed it stopped it at the signal first.
        self.flush_faults_at(Some(tid), None, &[]);
        if let Some(f) = self.faults.as_mut() {
            f.detach(tid.as_raw());
        }
        if self.parked.remove(&tid).is_some() {
            return;
        }
        let Some(th) = self.tasks.remove(&tid) else {
            return;
        };
        if th.pending.is_some() {
            self.unfinished += 1;
        }
        self.push_raw(tid, &events::exit_line(tid, how, core));
        self.leave_image(tid, th.image, None);
        if tid == self.root {
            self.exit = Some(how);
        }
    }

    /// `tid` left image `image`; when it was the last user, the image
    /// ends, with `last_maps` (read at an exec's entry) as its final maps
    /// when given.
    fn leave_image(&mut self, tid: Pid, image: Option<u64>, last_maps: Option<String>) {
        let Some(id) = image else {
            return;
        };
        let Some(im) = self.images.get_mut(&id) else {
            return;
        };
        im.users.remove(&tid);
        if im.users.is_empty() {
            if let Some(m) = last_maps {
                im.final_maps = Some((m, FinalMapsAt::Exec));
            }
            self.end_image(id);
        }
    }

    /// Image `id` ended: `mm/ID.final-maps.txt` is written.
    fn end_image(&mut self, id: u64) {
        let Some(im) = self.images.remove(&id) else {
            return;
        };
        let text = im.final_maps.as_ref().map(|(m, _)| m.as_str()).unwrap_or_default();
        self.snapshot(&format!("{id}.final-maps.txt"), text);
        if id == self.root_image {
            self.root_final = im.final_maps;
        }
    }

    /// The recording ended: every image still in use ends.
    pub(super) fn end_all_images(&mut self) {
        let ids: Vec<u64> = self.images.keys().copied().collect();
        for id in ids {
            self.end_image(id);
        }
    }
}
