//! Fixture format 2: every process followed, its fork-like calls, execs
//! and exits written as lines, and each address space (image) snapshotted
//! under `mm/`.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use mm_ops::call::{Call, Outcome};
use mm_ops::strace::{Line, Parser, Recorded, TraceLine, parse_line, split_pid};

use super::common::TempDir;
use super::{Live, Rec, check_fixture, check_image_final_maps, have, live_from, live_ranges, record, vmas};

/// The name of a process-event line's call (`fork`, `vfork`, `clone`,
/// `clone3`, `execve`, `execveat`), or `+++` for an exit line.
fn event_name(l: &str) -> Option<&str> {
    let body = split_pid(l).1;
    if body.starts_with("+++ ") {
        return Some("+++");
    }
    let name = body.split('(').next()?;
    ["fork", "vfork", "clone", "clone3", "execve", "execveat"]
        .contains(&name)
        .then_some(name)
}

/// A process-event line (checked to read back as a skipped line with its
/// pid).
pub(super) fn is_event(l: &str) -> bool {
    let Some(name) = event_name(l) else {
        return false;
    };
    assert!(split_pid(l).0.is_some(), "no pid: {l}");
    match parse_line(l) {
        Ok(Line::Skipped { name: n }) => assert_eq!(n.as_deref(), (name != "+++").then_some(name), "{l}"),
        other => panic!("{l}: {other:?}"),
    }
    true
}

/// How a fork-like line made its child.
#[derive(Clone, Debug)]
pub(super) struct Fork {
    /// The line (1-based).
    pub line: u64,
    pub parent: u32,
    pub child: u32,
    /// The child got its own address space (image `line`).
    pub own_mm: bool,
}

/// The processes and images of a trace, worked out from its lines as the
/// format says (and checked on the way: every task's first line comes
/// after the line that made it, every task has one exit line, last).
#[derive(Debug, Default)]
pub(super) struct Model {
    /// Each task's process.
    pub tgid: BTreeMap<u32, u32>,
    /// Each task's image at the end.
    pub image: BTreeMap<u32, u64>,
    /// The lines (1-based) of each image: its calls and faults.
    pub lines: BTreeMap<u64, Vec<u64>>,
    pub forks: Vec<Fork>,
    /// The exec lines: (line, pid).
    pub execs: Vec<(u64, u32)>,
    /// The tasks that exited, with their exit lines' text after the pid.
    pub exits: BTreeMap<u32, String>,
}

impl Model {
    pub(super) fn of(rec: &Rec) -> Model {
        let root = rec.meta_num("pid") as u32;
        let mut m = Model::default();
        m.tgid.insert(root, root);
        m.image.insert(root, 0);
        m.lines.insert(0, Vec::new());
        for (i, l) in rec.lines().into_iter().enumerate() {
            let n = i as u64 + 1;
            let (Some(pid), body) = split_pid(l) else {
                panic!("line {n} has no pid: {l}");
            };
            assert!(
                m.tgid.contains_key(&pid),
                "line {n} of task {pid} before the line that made it: {l}"
            );
            assert!(
                !m.exits.contains_key(&pid),
                "line {n} of task {pid} after its exit: {l}"
            );
            match event_name(l) {
                Some("+++") => {
                    m.exits.insert(pid, body.to_string());
                }
                Some("execve" | "execveat") => {
                    assert_eq!(m.tgid[&pid], pid, "exec line of a thread: {l}");
                    for (t, g) in &m.tgid {
                        if *g == pid && !m.exits.contains_key(t) {
                            m.image.insert(*t, n);
                        }
                    }
                    m.lines.insert(n, Vec::new());
                    m.execs.push((n, pid));
                }
                Some(_) => {
                    let (_, result) = body.rsplit_once(" = ").expect("a result");
                    let Ok(child) = result.parse::<u32>() else {
                        assert!(result.starts_with("-1 ") || result.starts_with("? "), "{l}");
                        continue;
                    };
                    let vm = body.starts_with("vfork(") || body.contains("CLONE_VM");
                    let thread = body.contains("CLONE_THREAD");
                    let tgid = if thread { m.tgid[&pid] } else { child };
                    m.tgid.insert(child, tgid);
                    let image = if vm { m.image[&pid] } else { n };
                    if !vm {
                        m.lines.insert(n, Vec::new());
                    }
                    m.image.insert(child, image);
                    m.forks.push(Fork {
                        line: n,
                        parent: pid,
                        child,
                        own_mm: !vm,
                    });
                }
                None => m.lines.get_mut(&m.image[&pid]).expect("image").push(n),
            }
        }
        m
    }

    /// Every task seen.
    pub(super) fn tasks(&self) -> BTreeSet<u32> {
        self.tgid.keys().copied().collect()
    }

    /// Every process seen.
    pub(super) fn processes(&self) -> u64 {
        self.tgid.values().collect::<BTreeSet<_>>().len() as u64
    }

    /// The modeled calls of image `id`.
    pub(super) fn calls_of(&self, rec: &Rec, id: u64) -> Vec<TraceLine> {
        self.numbered_calls_of(rec, id).into_iter().map(|(_, t)| t).collect()
    }

    /// The modeled calls of image `id`, with their line numbers.
    pub(super) fn numbered_calls_of(&self, rec: &Rec, id: u64) -> Vec<(u64, TraceLine)> {
        let lines = rec.lines();
        let wanted: BTreeSet<&str> = rec.call_lines().into_iter().collect();
        self.lines[&id]
            .iter()
            .map(|&n| (n, lines[n as usize - 1]))
            .filter(|(_, l)| wanted.contains(l))
            .map(|(n, l)| match parse_line(l) {
                Ok(Line::Call(t)) => (n, t),
                other => panic!("{l}: {other:?}"),
            })
            .collect()
    }
}

/// The format-2 checks every recording of processes must pass: every line
/// reads back; each exec line and each fork child with its own mm has its
/// snapshots; every image has final maps, which hold what its calls left
/// mapped when it has calls; every task that made a line has one exit line.
fn check_processes(rec: &Rec, argv: &[&str]) -> Model {
    check_fixture(rec, argv);
    let mut parser = Parser::new();
    for l in rec.lines() {
        assert!(parser.feed(l).is_ok_and(|x| x.is_some()), "{l}");
    }
    assert!(parser.finish().is_empty());
    let m = Model::of(rec);
    assert_eq!(rec.mm["0.initial-maps.txt"], rec.initial);
    assert_eq!(rec.mm["0.final-maps.txt"].is_empty(), rec.final_maps.is_empty());
    for &(n, pid) in &m.execs {
        let maps = &rec.mm[&format!("{n}.initial-maps.txt")];
        assert!(!vmas(maps).is_empty(), "exec line {n}: no initial maps");
        let meta = &rec.mm[&format!("{n}.meta.txt")];
        assert!(meta.starts_with(&format!("pid: {pid}\ncwd: ")), "{meta}");
        for key in [
            "start_brk: 0x",
            "brk: 0x",
            "start_stack: 0x",
            "rlimit_stack: ",
            "personality: 0x",
        ] {
            assert!(meta.lines().any(|l| l.starts_with(key)), "{key}: {meta}");
        }
    }
    for f in m.forks.iter().filter(|f| f.own_mm) {
        let maps = &rec.mm[&format!("{}.initial-maps.txt", f.line)];
        assert!(vmas(maps).len() > 5, "fork line {}: {maps}", f.line);
    }
    for id in m.lines.keys() {
        let fin = &rec.mm[&format!("{id}.final-maps.txt")];
        let calls = m.calls_of(rec, *id);
        if !live_ranges(&calls).is_empty() {
            check_image_final_maps(fin, &calls);
        }
    }
    let images = m.lines.len();
    let files = rec.mm.keys().filter(|k| k.ends_with(".final-maps.txt")).count();
    assert_eq!(files, images, "{:?}", rec.mm.keys());
    // Every task exits, with one line (the exec'ing thread of a process
    // whose leader exec'd away is the exception, not made here).
    assert_eq!(m.exits.keys().copied().collect::<BTreeSet<_>>(), m.tasks(), "{m:?}");
    assert_eq!(rec.meta_num("threads"), m.tasks().len() as u64);
    assert_eq!(rec.meta_num("processes"), m.processes());
    assert_eq!(rec.meta_num("execs"), m.execs.len() as u64);
    m
}

#[test]
fn every_process_is_followed() {
    let argv = ["sh", "-c", "/bin/true; ls / >/dev/null | cat"];
    let rec = record("sh-procs", &argv);
    let m = check_processes(&rec, &argv);
    assert_eq!(rec.meta("format"), "2");
    assert!(m.processes() >= 4, "{m:?}");
    let exes: Vec<String> = rec
        .lines()
        .into_iter()
        .filter(|l| l.contains(" execve("))
        .map(|l| l.split('"').nth(1).unwrap().to_string())
        .collect();
    assert_eq!(exes.len(), 3, "{exes:?}");
    assert!(exes.iter().any(|e| e.ends_with("/true")), "{exes:?}");
    assert!(exes.iter().any(|e| e.ends_with("/ls")), "{exes:?}");
    // ls's calls are recorded (it maps libselinux), under its own pid.
    let ls = rec
        .lines()
        .into_iter()
        .find(|l| l.contains(" execve(\"/usr/bin/ls\", [\"ls\", \"/\"], 0x"));
    let ls = split_pid(ls.expect("ls's exec line")).0.unwrap();
    assert!(
        rec.calls()
            .iter()
            .any(|t| t.pid == Some(ls) && matches!(&t.call, Call::Openat { path, .. } if path.contains("libselinux"))),
        "no libselinux open by ls"
    );
    for (pid, how) in &m.exits {
        assert_eq!(how, "+++ exited with 0 +++", "{pid}");
    }
    // The root image's final maps are the shell's.
    assert!(
        vmas(&rec.final_maps)
            .iter()
            .any(|v| v.name.ends_with("/dash") || v.name.ends_with("/bash"))
    );
}

/// Compiles `src` into `dir` with the system's C compiler (`None` when
/// there is none).
fn compile(dir: &TempDir, src: &str, extra: &[&str]) -> Option<String> {
    if !have("cc") {
        eprintln!("skipping: no cc");
        return None;
    }
    let c = dir.path().join("prog.c");
    std::fs::write(&c, src).unwrap();
    let exe = format!("{}/prog", dir.str());
    let ok = Command::new("cc")
        .arg("-O1")
        .arg("-o")
        .arg(&exe)
        .arg(&c)
        .args(extra)
        .status()
        .unwrap();
    assert!(ok.success(), "cc failed");
    Some(exe)
}

const FORKS_C: &str = r#"
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
int main(void) {
    int st;
    pid_t a = fork();
    if (a == 0) {
        char *p = mmap(0, 0x703000, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        p[0] = 1;
        _exit(0);
    }
    waitpid(a, &st, 0);
    pid_t b = fork();
    if (b == 0) {
        execl("/bin/true", "true", "x y", (char *)0);
        _exit(127);
    }
    waitpid(b, &st, 0);
    pid_t c = fork();
    if (c == 0) {
        execl("/nonexistent/program", "nope", (char *)0);
        _exit(3);
    }
    waitpid(c, &st, 0);
    _exit(0);
}
"#;

#[test]
fn forked_children_map_and_exec() {
    let tmp = TempDir::new("cc-forks");
    let Some(exe) = compile(&tmp, FORKS_C, &[]) else {
        return;
    };
    let rec = record("forks", &[&exe]);
    let m = check_processes(&rec, &[&exe]);
    let root = rec.meta_num("pid") as u32;
    assert_eq!(m.forks.len(), 3, "{m:?}");
    assert!(m.forks.iter().all(|f| f.own_mm && f.parent == root));
    let lines = rec.lines();
    for f in &m.forks {
        let l = lines[f.line as usize - 1];
        assert!(
            l == format!("{root} fork() = {}", f.child)
                || l.starts_with(&format!("{root} clone(child_stack=NULL, flags="))
                    && l.ends_with(&format!("|SIGCHLD) = {}", f.child)),
            "{l}"
        );
        // The parent makes no layout change after its forks: each child
        // starts with the parent's final layout.
        let child = vmas(&rec.mm[&format!("{}.initial-maps.txt", f.line)]);
        let parent = vmas(&rec.final_maps);
        let ranges = |v: &[super::Vma]| v.iter().map(|v| (v.start, v.end)).collect::<Vec<_>>();
        assert_eq!(ranges(&child), ranges(&parent), "fork line {}", f.line);
    }
    // The first child's mmap is in its image, not the parent's.
    let (a, b, c) = (&m.forks[0], &m.forks[1], &m.forks[2]);
    let mapped = m
        .calls_of(&rec, a.line)
        .into_iter()
        .find(|t| matches!(t.call, Call::Mmap { len: 0x703000, .. }))
        .expect("child a's mmap");
    assert_eq!(mapped.pid, Some(a.child));
    let Some(Recorded::Outcome(Outcome::Val(addr))) = mapped.recorded else {
        panic!("{mapped:?}");
    };
    let fin_a = vmas(&rec.mm[&format!("{}.final-maps.txt", a.line)]);
    assert!(fin_a.iter().any(|v| v.start <= addr && addr + 0x703000 <= v.end));
    assert!(!vmas(&rec.final_maps).iter().any(|v| (v.start..v.end).contains(&addr)));
    assert!(m.calls_of(&rec, 0).iter().all(|t| t.pid == Some(root)));
    // The second child's exec, with its image's snapshots.
    assert_eq!(m.execs.len(), 1);
    let (n, pid) = m.execs[0];
    assert_eq!(pid, b.child);
    let l = lines[n as usize - 1];
    let want = format!("{pid} execve(\"/bin/true\", [\"true\", \"x y\"], 0x");
    assert!(l.starts_with(&want) && l.ends_with(" vars */) = 0"), "{l}");
    let init = vmas(&rec.mm[&format!("{n}.initial-maps.txt")]);
    assert!(init.iter().any(|v| v.name.ends_with("/true")));
    assert_eq!(m.image[&b.child], n);
    // The fork image ended at the exec: its final maps are the parent's
    // copy, not true's.
    let fin_b = vmas(&rec.mm[&format!("{}.final-maps.txt", b.line)]);
    assert!(fin_b.iter().any(|v| v.name == exe), "{fin_b:?}");
    // The third child's exec failed: no line; it exited with 3.
    assert_eq!(m.exits[&c.child], "+++ exited with 3 +++");
    assert_eq!(m.exits[&root], "+++ exited with 0 +++");
    assert_eq!(rec.meta_num("processes"), 4);
}

/// Threads that map and unmap while the main thread forks: the fork is a
/// layout call of its image, so each child's initial maps hold exactly
/// what the parent's calls before the fork line left mapped.
#[test]
fn forks_of_a_threaded_process_are_serialized() {
    let script = "\
import mmap, os, threading
def work(i):
    for _ in range(30):
        m = mmap.mmap(-1, (1 << 20) + i * 4096, flags=mmap.MAP_PRIVATE)
        m[0] = 1
        m.close()
ts = [threading.Thread(target=work, args=(i,)) for i in range(1, 4)]
for t in ts: t.start()
kids = []
for _ in range(6):
    p = os.fork()
    if p == 0:
        os._exit(0)
    kids.append(p)
for t in ts: t.join()
for p in kids: os.waitpid(p, 0)
";
    let py = super::python();
    let argv = [py, "-c", script];
    let rec = record("py-thread-forks", &argv);
    let m = check_processes(&rec, &argv);
    let root = rec.meta_num("pid") as u32;
    let threads: Vec<&super::procs::Fork> = m.forks.iter().filter(|f| !f.own_mm).collect();
    assert!(threads.len() >= 3, "{m:?}");
    let forks: Vec<&super::procs::Fork> = m.forks.iter().filter(|f| f.own_mm && f.parent == root).collect();
    assert_eq!(forks.len(), 6, "{m:?}");
    for f in forks {
        // The layout at the fork line, from the initial maps and the root
        // image's calls before it, is in the child; what those after it
        // map where nothing was is not.
        let calls = m.numbered_calls_of(&rec, 0);
        let initial: Vec<Live> = vmas(&rec.initial)
            .into_iter()
            .map(|v| Live {
                start: v.start,
                end: v.end,
                file: None,
            })
            .collect();
        let before: Vec<TraceLine> = calls
            .iter()
            .filter(|(n, _)| *n < f.line)
            .map(|(_, t)| t.clone())
            .collect();
        let layout = live_from(initial, &before);
        let child = vmas(&rec.mm[&format!("{}.initial-maps.txt", f.line)]);
        let covered = |a: u64| child.iter().any(|v| (v.start..v.end).contains(&a));
        for r in &layout {
            assert!(
                covered(r.start) && covered(r.end - 1),
                "fork line {}: {r:x?}, mapped before it, is not in the child",
                f.line
            );
        }
        for (n, t) in calls.iter().filter(|(n, _)| *n > f.line) {
            if let (Call::Mmap { .. }, Some(Outcome::Val(a))) =
                (&t.call, t.recorded.as_ref().and_then(Recorded::outcome))
                && !layout.iter().any(|r| (r.start..r.end).contains(&a))
            {
                assert!(
                    !covered(a),
                    "fork line {}: line {n} mapped {a:#x} after it, yet the child has it",
                    f.line
                );
            }
        }
    }
}

/// An exec does not restart the recording: the trace goes on from the
/// first exec, the exec is a line, and the final maps are the new image's.
#[test]
fn exec_is_a_line_of_the_trace() {
    let argv = ["sh", "-c", "ls / >/dev/null; exec cat /dev/null"];
    let rec = record("sh-exec", &argv);
    let m = check_processes(&rec, &argv);
    let root = rec.meta_num("pid") as u32;
    assert_eq!(rec.meta("execs"), "2");
    // The shell's own start is in the trace and in initial-maps.txt.
    let names: BTreeSet<String> = vmas(&rec.initial).into_iter().map(|v| v.name).collect();
    assert!(
        names.iter().any(|n| n.ends_with("/dash") || n.ends_with("/bash")),
        "{names:?}"
    );
    let first = &rec.calls()[0];
    assert_eq!(first.call, Call::Brk { addr: 0 });
    assert_eq!(
        first.recorded,
        Some(Recorded::Outcome(Outcome::Val(rec.meta_num("start_brk"))))
    );
    let (n, pid) = *m.execs.last().unwrap();
    assert_eq!(pid, root);
    let l = rec.lines()[n as usize - 1];
    assert!(
        l.starts_with(&format!("{root} execve(\"/usr/bin/cat\", [\"cat\", \"/dev/null\"], 0x")),
        "{l}"
    );
    assert!(vmas(&rec.final_maps).iter().any(|v| v.name == "/usr/bin/cat"));
    assert_eq!(m.image[&root], n);
    // The shell's image ended at the exec, with the shell's maps.
    let shell = vmas(&rec.mm["0.final-maps.txt"]);
    assert!(!shell.iter().any(|v| v.name == "/usr/bin/cat"), "{shell:?}");
    assert!(!shell.is_empty());

    // A thread that is not the leader execs: the exec line has the pid.
    let script = "import threading, os\n\
                  t = threading.Thread(target=lambda: os.execv('/bin/true', ['true']))\n\
                  t.start(); t.join()";
    let py = super::python();
    let rec = record("py-thread-exec", &[py, "-c", script]);
    super::check_fixture(&rec, &[py, "-c", "…"]);
    let root = rec.meta_num("pid") as u32;
    let m = Model::of(&rec);
    let (n, pid) = *m.execs.last().expect("an exec line");
    assert_eq!(pid, root);
    assert!(rec.lines()[n as usize - 1].starts_with(&format!("{root} execve(\"/bin/true\", [\"true\"], 0x")));
    assert!(vmas(&rec.final_maps).iter().any(|v| v.name == "/usr/bin/true"));
    assert!(rec.mm[&format!("{n}.meta.txt")].starts_with(&format!("pid: {root}\n")));
    assert_eq!(m.exits[&root], "+++ exited with 0 +++");
}

#[test]
fn a_debuggers_inferior_is_let_go_at_its_traceme() {
    // gdb forks its inferior, which asks to be traced by gdb: a task has
    // one tracer, so the recorder lets it go at that call.
    if !have("gdb") {
        eprintln!("skipped: gdb is not installed");
        return;
    }
    let rec = record("gdb", &["gdb", "-batch", "-nx", "-ex", "run", "--args", "/bin/true"]);
    assert_eq!(rec.code, Some(0), "{}", rec.stderr);
    assert!(rec.stdout.contains("exited normally"), "{}", rec.stdout);
    // The inferior, and the children gdb forks to probe ptrace's features.
    let detached: u64 = rec.meta("detached").parse().expect("a number");
    assert!(detached >= 1, "{}", rec.stderr);
    assert!(rec.stderr.contains("PTRACE_TRACEME"), "{}", rec.stderr);
}
