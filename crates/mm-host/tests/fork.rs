//! `fork(2)` against the host kernel (`kernel/fork.c` `dup_mm`, `mm/mmap.c`
//! `dup_mmap`, `mm/rmap.c` `anon_vma_fork`, the fork-child merge rules of
//! `mm/vma.c`; Linux 6.18): the helper forks ([`HostProcess::fork`]) and
//! the model forks ([`Task::fork`]); then the same calls run in the parent
//! and in the child on both sides, and every result, both `/proc/PID/maps`
//! and both smaps `VmFlags` must be identical after each one.
#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

use mm_core::VmaView;
use mm_host::Twin;
use mm_host::callgen::{CallGen, Key0Guard, temp_dir};
use mm_host::twin::{diff_maps_text, model_pkeys, parse_smaps_flags, parse_smaps_pkeys, with_pkeys};
use mm_ops::call::{Access, Call, Outcome, Signal};
use mm_ops::task::Task;
use mm_ops::uapi::madv::*;
use mm_ops::uapi::oflags::{O_RDWR, O_TRUNC};
use mm_ops::uapi::*;

const P: u64 = PAGE_SIZE;
const RW: u64 = PROT_READ | PROT_WRITE;
/// Where the scenarios place their mappings (`MAP_FIXED`): far below the
/// helper's `mmap_base`, far above its heap.
const BASE: u64 = 0x2000_0000_0000;

fn at(page: u64) -> u64 {
    BASE + page * P
}

/// A twin (the parent on both sides) and, after [`Fx::fork`], the
/// model's child; the host's child is `twin.host.child()`.
struct Fx {
    twin: Twin,
    child: Option<Task>,
    log: Vec<String>,
}

impl Fx {
    fn new() -> Fx {
        Fx {
            twin: Twin::spawn().expect("helper"),
            child: None,
            log: Vec::new(),
        }
    }

    /// A twin in the environment of random session `seed`
    /// ([`session_options`](mm_host::callgen::session_options): capabilities, limits, user, layout; ASLR
    /// off), working
    /// in `dir`, where relative paths start (not the crate's directory,
    /// where the test runs).
    fn in_dir(dir: &std::path::Path, seed: u64) -> Fx {
        let opts = mm_host::HostOptions {
            cwd: Some(dir.to_path_buf()),
            // The calls stay off the helper's stack and vDSO only where
            // they are not randomized.
            aslr: false,
            ..mm_host::callgen::session_options(seed)
        };
        Fx {
            twin: Twin::spawn_with(&opts).expect("helper"),
            child: None,
            log: Vec::new(),
        }
    }

    fn fail(&self, what: &str) -> ! {
        let child = self
            .child
            .as_ref()
            .map_or(String::new(), |c| format!("\nthe model child's maps:\n{}", c.maps()));
        panic!(
            "{what}\ncalls so far:\n{}\nthe model parent's maps:\n{}{child}",
            self.log.join("\n"),
            self.twin.model.maps()
        )
    }

    /// Runs `call` in the parent on both sides; returns the host's answer.
    fn parent(&mut self, call: Call) -> Outcome {
        let (h, m) = self.twin.step(&call).expect("host");
        self.log.push(format!("parent {call:?} = {h:?}"));
        if h != m {
            self.fail(&format!("parent: {call:?}: host {h:?}, model {m:?}"));
        }
        self.check();
        h
    }

    /// Runs `call` in the child on both sides; returns the host's answer.
    fn child(&mut self, call: Call) -> Outcome {
        // As in `Twin::step`: an open that may create its file goes to the
        // model first, which looks at the host's files (with the host
        // first, O_CREAT|O_EXCL found the file the host had just made).
        let creates = matches!(call, Call::Open { flags, .. } | Call::Openat { flags, .. }
            if flags & mm_ops::uapi::oflags::O_CREAT != 0);
        let (h, m) = if creates {
            let m = self.child.as_mut().expect("forked").apply(&call, None);
            (self.twin.host.child().call(&call).expect("host child"), m)
        } else {
            let h = self.twin.host.child().call(&call).expect("host child");
            let fd = match (call.creates_fd(), h) {
                (true, Outcome::Val(fd)) => Some(fd as i64),
                _ => None,
            };
            (h, self.child.as_mut().expect("forked").apply(&call, fd))
        };
        self.log.push(format!("child {call:?} = {h:?}"));
        if h != m {
            self.fail(&format!("child: {call:?}: host {h:?}, model {m:?}"));
        }
        self.check();
        h
    }

    fn fork(&mut self) {
        let pid = self.twin.host.fork().expect("host").expect("host fork");
        assert!(pid > 0);
        let child = self.twin.model.fork().expect("model fork");
        self.child = Some(child);
        self.log.push("fork".into());
        self.check();
    }

    /// Both sides' maps and `VmFlags`, parent and child, and the model's
    /// invariants.
    fn check(&mut self) {
        if let Some(d) = self.twin.diff_maps().expect("maps") {
            self.fail(&format!("parent maps differ:\n{d}"));
        }
        if let Some(d) = self.twin.diff_vmflags().expect("smaps") {
            self.fail(&format!("parent VmFlags differ:\n{d}"));
        }
        if let Err(e) = mm_ops::invariants::check(self.twin.model.mm()) {
            self.fail(&format!("parent model: {e}"));
        }
        let Some(child) = &self.child else { return };
        let (maps, flags) = (child.maps(), {
            let r = child.mm().read();
            mm_ops::kernel::task_mmu::smaps_flags(&r)
        });
        if let Err(e) = mm_ops::invariants::check(child.mm()) {
            self.fail(&format!("child model: {e}"));
        }
        let mut host = self.twin.host.child();
        let (hmaps, hsmaps) = (host.maps().expect("child maps"), host.smaps().expect("child smaps"));
        if let Some(d) = diff_maps_text(&hmaps, &maps) {
            self.fail(&format!("child maps differ:\n{d}"));
        }
        let (mut hflags, mut flags) = (parse_smaps_flags(&hsmaps), flags);
        with_pkeys(&mut hflags, &parse_smaps_pkeys(&hsmaps));
        with_pkeys(&mut flags, &model_pkeys(child.mm()));
        if hflags != flags {
            self.fail(&format!("child VmFlags differ:\nhost  {hflags:x?}\nmodel {flags:x?}"));
        }
    }

    /// Lines of the model's maps (parent or child) within `[at(lo), at(hi))`.
    fn lines(&self, child: bool, lo: u64, hi: u64) -> usize {
        let t = if child {
            self.child.as_ref().expect("forked")
        } else {
            &self.twin.model
        };
        let r = t.mm().read();
        r.snapshot()
            .iter()
            .filter(|v| v.start >= at(lo) && v.end <= at(hi))
            .count()
    }
}

fn anon(page: u64, pages: u64, prot: u64, extra: u64) -> Call {
    Call::Mmap {
        addr: at(page),
        len: pages * P,
        prot,
        flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | extra,
        fd: -1,
        off: 0,
    }
}

fn write(page: u64) -> Call {
    Call::Fault {
        addr: at(page),
        access: Access::Write,
    }
}

fn read(page: u64) -> Call {
    Call::Fault {
        addr: at(page),
        access: Access::Read,
    }
}

fn mprotect(page: u64, pages: u64, prot: u64) -> Call {
    Call::Mprotect {
        addr: at(page),
        len: pages * P,
        prot,
    }
}

fn madvise(page: u64, pages: u64, advice: u64) -> Call {
    Call::Madvise {
        addr: at(page),
        len: pages * P,
        advice,
    }
}

const OK: Outcome = Outcome::Val(0);

/// The rule of `vma_is_fork_child`: in the child, a new mapping next to an
/// inherited VMA that has an `anon_vma` stays a VMA of its own (its
/// `anon_vma_chain` links the parent's too); the same call in the parent
/// merges. Next to an inherited VMA without `anon_vma`, it merges in both.
#[test]
fn new_mapping_next_to_inherited_anon_memory_does_not_merge_in_the_child() {
    let mut fx = Fx::new();
    fx.parent(anon(0, 2, RW, 0));
    assert_eq!(fx.parent(write(0)), OK);
    fx.parent(anon(8, 2, RW, 0)); // never written: no anon_vma
    fx.fork();
    // Above the faulted VMA: no merge in the child, a merge in the parent.
    fx.child(anon(2, 1, RW, 0));
    fx.parent(anon(2, 1, RW, 0));
    assert_eq!((fx.lines(true, 0, 4), fx.lines(false, 0, 4)), (2, 1));
    // Below it too (case 2 of is_mergeable_anon_vma from the other side).
    fx.child(anon(20, 1, RW, 0));
    fx.child(Call::Munmap { addr: at(20), len: P });
    // Next to the unfaulted VMA: a merge in both.
    fx.child(anon(10, 1, RW, 0));
    fx.parent(anon(10, 1, RW, 0));
    assert_eq!((fx.lines(true, 8, 12), fx.lines(false, 8, 12)), (1, 1));
    // A fault in the child's new page takes a new anon_vma (the fork
    // child's is not reusable), so an mprotect round trip keeps them apart.
    assert_eq!(fx.child(write(2)), OK);
    fx.child(mprotect(2, 1, PROT_READ));
    fx.child(mprotect(2, 1, RW));
    assert_eq!(fx.lines(true, 0, 4), 2);
    fx.parent(mprotect(2, 1, PROT_READ));
    fx.parent(mprotect(2, 1, RW));
    assert_eq!(fx.lines(false, 0, 4), 1);
    // Below the new page's VMA in the child a new mapping merges with it
    // (its anon_vma is the child's own).
    fx.child(anon(3, 1, RW, 0));
    assert_eq!(fx.lines(true, 0, 4), 2);
}

/// `anon_vma_fork` gives each VMA its own `anon_vma`, even where the
/// parent's VMAs share one: an mprotect that rejoins a split VMA merges in
/// the parent but not in the child.
#[test]
fn split_vmas_get_separate_anon_vmas() {
    let mut fx = Fx::new();
    fx.parent(anon(0, 4, RW, 0));
    for p in 0..4 {
        fx.parent(write(p));
    }
    fx.parent(mprotect(1, 2, PROT_READ));
    fx.fork();
    fx.child(mprotect(1, 2, RW));
    fx.parent(mprotect(1, 2, RW));
    assert_eq!((fx.lines(true, 0, 4), fx.lines(false, 0, 4)), (3, 1));
    // The child's pieces still split and rejoin among themselves.
    fx.child(mprotect(0, 1, PROT_READ));
    fx.child(mprotect(0, 1, RW));
    fx.child(Call::Munmap { addr: at(1), len: P });
    fx.child(anon(1, 1, RW, 0));
    assert_eq!(fx.child(read(1)), OK);
}

/// `MADV_DONTFORK` VMAs are not copied; `MADV_WIPEONFORK` VMAs are, without
/// their memory (no `anon_vma`: a new mapping next to one merges in the
/// child); `MADV_DOFORK` in the parent brings the VMA back for a next fork.
#[test]
fn dontfork_and_wipeonfork() {
    let mut fx = Fx::new();
    fx.parent(anon(0, 2, RW, 0));
    fx.parent(write(0));
    fx.parent(madvise(0, 2, DONTFORK));
    fx.parent(anon(4, 2, RW, 0));
    fx.parent(write(4));
    fx.parent(madvise(4, 2, WIPEONFORK));
    fx.parent(anon(8, 4, RW, 0));
    fx.parent(write(9));
    fx.parent(madvise(9, 1, DONTFORK)); // a split: three VMAs, the middle not copied
    fx.fork();
    assert_eq!(fx.lines(true, 0, 2), 0);
    assert_eq!(fx.lines(true, 8, 12), 2);
    // A written page next to the wiped VMA, made wipe-on-fork too: its
    // anon_vma joins the child's copy, which has none; in the parent the
    // two VMAs have two anon_vmas.
    for child in [true, false] {
        let run = |fx: &mut Fx, c: Call| if child { fx.child(c) } else { fx.parent(c) };
        run(&mut fx, anon(6, 1, RW, 0));
        assert_eq!(run(&mut fx, write(6)), OK);
        run(&mut fx, madvise(6, 1, WIPEONFORK));
    }
    assert_eq!((fx.lines(true, 4, 7), fx.lines(false, 4, 7)), (1, 2));
    // Memory the child never had: SIGSEGV there.
    assert_eq!(fx.child(read(0)), Outcome::Signal(mm_ops::call::Signal::Segv));
    fx.child(madvise(4, 2, KEEPONFORK));
    assert_eq!(fx.child(write(4)), OK);
}

/// `VM_LOCKED` is not inherited: the child's copy of a `MAP_LOCKED`
/// mapping has no `lo` in smaps (and the model's `locked_vm` is 0); its
/// populated memory has a fork child's `anon_vma`.
#[test]
fn locked_memory_is_unlocked_in_the_child() {
    let mut fx = Fx::new();
    fx.parent(anon(0, 4, RW, MAP_LOCKED));
    fx.parent(anon(8, 2, RW, MAP_LOCKED | MAP_NORESERVE));
    fx.fork();
    {
        let child = fx.child.as_ref().expect("forked");
        let r = child.mm().read();
        assert_eq!(r.state().locked_vm, 0);
    }
    fx.child(anon(4, 1, RW, 0));
    fx.parent(anon(4, 1, RW, MAP_LOCKED));
    fx.child(mprotect(1, 1, PROT_READ));
    fx.child(mprotect(1, 1, RW));
    fx.parent(mprotect(1, 1, PROT_READ));
    fx.parent(mprotect(1, 1, RW));
}

/// mremap in the child: moving a fork child's VMA (one with an
/// `anon_vma`) back next to the unfaulted VMA it was split from does not
/// merge (`is_mergeable_anon_vma` checks `copied_from`), nor does growing
/// an unfaulted VMA up to an inherited faulted one (`vma_merge_extend`);
/// in the parent both merge.
#[test]
fn mremap_in_the_child() {
    let mut fx = Fx::new();
    let mv = |from: u64, to: u64| Call::Mremap {
        old_addr: at(from),
        old_len: 2 * P,
        new_len: 2 * P,
        flags: MREMAP_MAYMOVE | MREMAP_FIXED,
        new_addr: at(to),
    };
    fx.parent(anon(0, 4, RW, 0));
    fx.parent(mprotect(0, 2, PROT_READ));
    fx.parent(write(2)); // an anon_vma for the upper half only
    fx.parent(mv(2, 30)); // faulted, it keeps its offset: it fits at 2 again
    fx.parent(mprotect(0, 2, RW));
    fx.parent(anon(20, 1, RW, 0));
    fx.parent(anon(21, 2, RW, 0));
    fx.parent(mprotect(21, 2, PROT_READ)); // a VMA of its own
    fx.parent(mprotect(21, 2, RW));
    fx.parent(write(21));
    fx.fork();
    fx.child(mv(30, 2));
    fx.parent(mv(30, 2));
    assert_eq!((fx.lines(true, 0, 4), fx.lines(false, 0, 4)), (2, 1));
    let grow = Call::Mremap {
        old_addr: at(20),
        old_len: P,
        new_len: 1 + P,
        flags: 0,
        new_addr: 0,
    };
    fx.child(Call::Munmap { addr: at(21), len: P });
    fx.parent(Call::Munmap { addr: at(21), len: P });
    fx.child(grow.clone());
    fx.parent(grow);
    fx.child(Call::Brk { addr: 0 });
}

/// Shared file mappings and descriptors: the child's descriptors name the
/// parent's open files, so mapping the next page of an inherited
/// descriptor merges with the inherited VMA in both.
#[test]
fn files_are_shared() {
    let dir = temp_dir("fork-files").expect("tmp");
    let path = dir.join("f");
    std::fs::File::create(&path)
        .and_then(|f| f.set_len(8 * P))
        .expect("file");
    let mut fx = Fx::new();
    let path = path.to_string_lossy().into_owned();
    let open = Call::Open {
        path,
        flags: O_RDWR,
        mode: None,
    };
    let Outcome::Val(fd) = fx.parent(open) else {
        panic!("open")
    };
    let map = |page: u64, off: u64, flags: u64| Call::Mmap {
        addr: at(page),
        len: P,
        prot: RW,
        flags: flags | MAP_FIXED,
        fd: fd as i64,
        off: off * P,
    };
    fx.parent(map(0, 0, MAP_SHARED));
    fx.parent(map(4, 0, MAP_PRIVATE));
    fx.parent(write(4));
    fx.fork();
    fx.child(map(1, 1, MAP_SHARED));
    fx.parent(map(1, 1, MAP_SHARED));
    fx.child(map(5, 1, MAP_PRIVATE));
    fx.parent(map(5, 1, MAP_PRIVATE));
    assert_eq!((fx.lines(true, 4, 6), fx.lines(false, 4, 6)), (2, 1));
    fx.child(Call::Close { fd: fd as i64 });
    fx.child(Call::Dup { fd: 1 });
    fx.parent(Call::Dup { fd: 1 });
    let _ = std::fs::remove_dir_all(&dir);
}

/// One inode for parent and child: a child's `ftruncate` of a file (a
/// memfd, a file on disk) they share decides where the parent's faults
/// are `SIGBUS`, and the parent's decides the child's. Found by the random
/// fork sessions (seed 577): the model's file tables are per address
/// space, and each had its own copy of the size.
#[test]
fn a_relative_sees_the_size_a_child_sets() {
    let dir = temp_dir("fork-size").expect("tmp");
    let path = dir.join("f");
    std::fs::File::create(&path)
        .and_then(|f| f.set_len(2 * P))
        .expect("file");
    let mut fx = Fx::new();
    let Outcome::Val(disk) = fx.parent(Call::Open {
        path: path.to_string_lossy().into_owned(),
        flags: O_RDWR,
        mode: None,
    }) else {
        panic!("open")
    };
    let Outcome::Val(memfd) = fx.parent(Call::MemfdCreate {
        name: "size".into(),
        flags: 0,
    }) else {
        panic!("memfd_create")
    };
    fx.parent(Call::Ftruncate {
        fd: memfd as i64,
        length: P,
    });
    for (page, fd) in [(0, disk), (8, memfd)] {
        fx.parent(Call::Mmap {
            addr: at(page),
            len: 6 * P,
            prot: RW,
            flags: MAP_SHARED | MAP_FIXED,
            fd: fd as i64,
            off: 0,
        });
    }
    fx.fork();
    for (page, fd) in [(0, disk), (8, memfd)] {
        fx.child(Call::Ftruncate {
            fd: fd as i64,
            length: 5 * P,
        });
        fx.parent(read(page + 4));
        fx.parent(write(page + 3));
        fx.child(Call::Ftruncate {
            fd: fd as i64,
            length: P + 1,
        });
        fx.parent(read(page + 2));
        fx.parent(read(page + 1));
        fx.parent(Call::Ftruncate {
            fd: fd as i64,
            length: 4 * P,
        });
        fx.child(read(page + 3));
        fx.child(read(page + 5));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A file that parent and child each open after the fork is one inode
/// too (the kernel's inode cache): an `O_TRUNC` open by one empties what
/// the other maps, and the other's `ftruncate` gives it back. Found by the
/// random fork sessions with ten times the calls (`MM_FORK_LEN=10`, seed
/// 30080): the child's fault past the parent's truncation was `SIGBUS` on
/// the host and succeeded in the model.
#[test]
fn a_file_both_open_after_fork_is_one_inode() {
    let dir = temp_dir("fork-icache").expect("tmp");
    let path = dir.join("f");
    std::fs::File::create(&path)
        .and_then(|f| f.set_len(4 * P))
        .expect("file");
    let path = path.to_string_lossy().into_owned();
    let open = |flags| Call::Open {
        path: path.clone(),
        flags,
        mode: None,
    };
    let mut fx = Fx::new();
    fx.fork();
    let Outcome::Val(fd) = fx.child(open(O_RDWR)) else {
        panic!("open in the child")
    };
    fx.child(Call::Mmap {
        addr: at(0),
        len: 4 * P,
        prot: RW,
        flags: MAP_SHARED | MAP_FIXED,
        fd: fd as i64,
        off: 0,
    });
    assert_eq!(fx.child(read(3)), Outcome::Val(0));
    // The parent's own open, with O_TRUNC: the child's pages are gone.
    let Outcome::Val(pfd) = fx.parent(open(O_RDWR | O_TRUNC)) else {
        panic!("open in the parent")
    };
    assert_eq!(fx.child(read(0)), Outcome::Signal(Signal::Bus));
    // The parent grows it by two pages: the child's first two come back.
    fx.parent(Call::Ftruncate {
        fd: pfd as i64,
        length: 2 * P,
    });
    assert_eq!(fx.child(read(1)), Outcome::Val(0));
    assert_eq!(fx.child(read(2)), Outcome::Signal(Signal::Bus));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Random calls in the parent, a fork, then random calls in parent and
/// child in turn, compared after each one; halfway, the child exits and
/// the parent forks again (a second child of the same parent). Seeds
/// `MM_FORK_SEED` (default 0) and the `MM_FORK_SEEDS - 1` after it
/// (default 10 in all); `MM_FORK_LEN` (default 1) multiplies the number of
/// calls before the first fork and in each child's life.
#[test]
fn random_calls_around_fork() {
    let dir = temp_dir("fork-random").expect("tmp");
    let knob = |name: &str, default: u64| std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let first = knob("MM_FORK_SEED", 0);
    let len = knob("MM_FORK_LEN", 1).max(1);
    for seed in first..first + knob("MM_FORK_SEEDS", 10) {
        let mut gen_p = CallGen::new(seed, &dir);
        let seed_line = format!("seed {seed}");
        for (i, p) in gen_p.file_paths().iter().enumerate() {
            let f = std::fs::File::create(p).expect("file");
            f.set_len((i as u64 + 1) * 3 * P + 100).expect("size");
        }
        let mut fx = Fx::in_dir(std::path::Path::new(gen_p.file_dir()), seed);
        fx.log.push(seed_line);
        let low = fx.twin.model.mm().read().state_brk();
        let vmas = |t: &Task| -> Vec<(u64, u64)> {
            let r = t.mm().read();
            r.snapshot()
                .iter()
                .filter(|v| v.start >= low && v.end <= 0x7fff_f7ff_7000)
                .map(|v| (v.start, v.end))
                .collect()
        };
        // Keeps the helper's key 0 usable (hosts with protection keys).
        let mut key_p = Key0Guard::default();
        for _ in 0..(10 + 5 * (seed % 10)) * len {
            gen_p.set_vmas(vmas(&fx.twin.model));
            let mut call = gen_p.next_call();
            if !key_p.adjust(&mut call) {
                continue;
            }
            let h = fx.parent(call.clone());
            gen_p.observe(&call, &h);
            key_p.observe(&call, &h);
        }
        for round in 0..2u64 {
            let mut gen_c = gen_p.fork_with_seed(seed ^ (0xf0f0 + round));
            let mut key_c = key_p;
            fx.fork();
            for i in 0..40 * len {
                let child = i % 2 == 1;
                let (g, t, k) = if child {
                    (&mut gen_c, fx.child.as_ref().expect("forked"), &mut key_c)
                } else {
                    (&mut gen_p, &fx.twin.model, &mut key_p)
                };
                g.set_vmas(vmas(t));
                let mut call = g.next_call();
                if !k.adjust(&mut call) {
                    continue;
                }
                let h = if child {
                    fx.child(call.clone())
                } else {
                    fx.parent(call.clone())
                };
                g.observe(&call, &h);
                k.observe(&call, &h);
            }
            fx.twin.host.child().exit().expect("child exit");
            fx.child = None;
            fx.log.push("child exit".into());
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The helper's protocol: no child before a fork, one at a time, and a
/// new one after the last exited.
#[test]
fn host_fork_protocol() {
    let mut host = mm_host::HostProcess::spawn().expect("helper");
    let c = Call::Brk { addr: 0 };
    assert_eq!(host.child().call(&c).expect("line"), Outcome::Err(Errno::ECHILD));
    let pid = host.fork().expect("line").expect("fork");
    assert_ne!(pid, host.pid());
    assert_eq!(host.fork().expect("line"), Err(Errno::EBUSY));
    assert_eq!(host.child().pid(), Some(pid));
    assert!(host.child().stat().is_ok());
    host.child().exit().expect("exit");
    assert_eq!(host.child().call(&c).expect("line"), Outcome::Err(Errno::ECHILD));
    assert!(host.fork().expect("line").is_ok());
}

/// Guard markers are page-table state: copied with the page tables of a
/// VMA the child inherits, not with a `VM_WIPEONFORK` one's.
#[test]
fn guard_markers() {
    let mut fx = Fx::new();
    fx.parent(anon(0, 4, RW, 0));
    fx.parent(madvise(1, 1, GUARD_INSTALL));
    fx.parent(anon(8, 4, RW, 0));
    fx.parent(madvise(9, 1, GUARD_INSTALL));
    fx.parent(madvise(8, 4, WIPEONFORK));
    fx.parent(anon(16, 4, RW, 0));
    fx.parent(write(16));
    fx.parent(madvise(17, 1, GUARD_INSTALL));
    fx.fork();
    let segv = Outcome::Signal(mm_ops::call::Signal::Segv);
    for p in [0, 1, 2, 8, 9, 10, 16, 17, 18] {
        let guarded = [1, 9, 17].contains(&p);
        // Host: the wiped VMA's marker is gone in the child.
        let expect_child = if guarded && p != 9 { segv } else { OK };
        assert_eq!(fx.child(read(p)), expect_child, "child page {p}");
        assert_eq!(fx.parent(read(p)), if guarded { segv } else { OK }, "parent page {p}");
    }
    fx.child(madvise(1, 1, GUARD_REMOVE));
    fx.child(read(1));
    fx.parent(read(1));
}
