//! `mmsim record`, run live on real programs of this machine: the fixture
//! files, the trace's syntax (every line read back by the strace parser and
//! printed again the same), its agreement with the final address space,
//! threads followed; exit statuses and output kept apart from the
//! program's in `record/exits.rs`; child processes and execs (fixture
//! format 2) in `record/procs.rs`.

mod common;
#[path = "record/exits.rs"]
mod exits;
#[path = "record/procs.rs"]
mod procs;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::TempDir;
use mm_ops::call::{Call, Outcome};
use mm_ops::strace::{
    Line, Parser, Recorded, TraceLine, equivalent_call, format_call, format_result, parse_line, parse_path_op,
    split_pid,
};

/// A recording: the fixture files and how `mmsim record` ended.
#[derive(Debug)]
struct Rec {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    initial: String,
    trace: String,
    final_maps: String,
    meta: Vec<(String, String)>,
    /// The files of `mm/`, by name.
    mm: BTreeMap<String, String>,
}

impl Rec {
    fn meta(&self, key: &str) -> &str {
        self.meta
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("meta.txt has no `{key}`: {:?}", self.meta))
    }

    fn meta_num(&self, key: &str) -> u64 {
        let v = self.meta(key);
        match v.strip_prefix("0x") {
            Some(h) => u64::from_str_radix(h, 16),
            None => v.parse(),
        }
        .unwrap_or_else(|_| panic!("meta `{key}: {v}` is not a number"))
    }

    fn lines(&self) -> Vec<&str> {
        self.trace.lines().collect()
    }

    /// The lines of modeled calls (the others are process events, see
    /// [`procs::is_event`], and side calls: unlink, rename, fcntl F_DUPFD,
    /// creat, each checked to read back as one).
    fn call_lines(&self) -> Vec<&str> {
        self.lines()
            .into_iter()
            .filter(|l| !self.is_fault(l) && !procs::is_event(l))
            .filter(|l| {
                let side = matches!(parse_path_op(l), Ok(Some(_))) || matches!(equivalent_call(l), Ok(Some(_)));
                if side {
                    assert!(split_pid(l).0.is_some(), "no pid: {l}");
                    assert!(l.contains(") = "), "no result: {l}");
                }
                !side
            })
            .collect()
    }

    /// Every modeled call's line, parsed (and checked to be a modeled call
    /// with a pid and a result).
    fn calls(&self) -> Vec<TraceLine> {
        self.call_lines()
            .iter()
            .map(|l| match parse_line(l) {
                Ok(Line::Call(t)) => {
                    assert!(t.pid.is_some(), "no pid: {l}");
                    assert!(t.recorded.is_some(), "no result: {l}");
                    t
                }
                other => panic!("not a modeled call: {l}: {other:?}"),
            })
            .collect()
    }

    /// A recorded page fault: `PID fault(ADDR, ACCESS) = OUTCOME` (checked
    /// to parse as one, with its thread).
    fn is_fault(&self, l: &str) -> bool {
        if !split_pid(l).1.starts_with("fault(") {
            return false;
        }
        match parse_line(l) {
            Ok(Line::Call(t)) => {
                assert!(matches!(t.call, Call::Fault { .. }), "{l}");
                assert!(t.pid.is_some(), "no pid: {l}");
                // `0`, a signal, or `?` (the last fault of a running thread).
                assert!(t.recorded.is_some(), "a fault has a result: {l}");
                if let Some(o) = t.recorded.as_ref().and_then(Recorded::outcome) {
                    assert!(matches!(o, Outcome::Val(0) | Outcome::Signal(_)), "{l}");
                }
            }
            other => panic!("not a fault line: {l}: {other:?}"),
        }
        true
    }

    /// The recorded faults.
    fn faults(&self) -> usize {
        self.lines().into_iter().filter(|l| self.is_fault(l)).count()
    }

    fn tids(&self) -> BTreeSet<u32> {
        self.calls().iter().filter_map(|t| t.pid).collect()
    }
}

fn mmsim_record(dir: &Path, argv: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mmsim"))
        .arg("record")
        .arg("-o")
        .arg(dir)
        .arg("--")
        .args(argv)
        .stdin(Stdio::null())
        .output()
        .expect("mmsim runs")
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{}/{name}: {e}", dir.display()))
}

/// Records `argv` into a fresh directory (named after `tag`).
fn record(tag: &str, argv: &[&str]) -> Rec {
    let tmp = TempDir::new(&format!("rec-{tag}"));
    let dir = tmp.path().join("fixture");
    let out = mmsim_record(&dir, argv);
    let meta = read(&dir, "meta.txt")
        .lines()
        .map(|l| {
            let (k, v) = l.split_once(": ").unwrap_or_else(|| panic!("meta line `{l}`"));
            (k.to_string(), v.to_string())
        })
        .collect();
    Rec {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        initial: read(&dir, "initial-maps.txt"),
        trace: read(&dir, "trace.txt"),
        final_maps: read(&dir, "final-maps.txt"),
        meta,
        mm: std::fs::read_dir(dir.join("mm"))
            .expect("mm/")
            .map(|e| {
                let e = e.expect("mm/ entry");
                let name = e.file_name().to_string_lossy().into_owned();
                (name, std::fs::read_to_string(e.path()).expect("mm/ file"))
            })
            .collect(),
    }
}

/// The system's python (not a version manager's shim, a shell script
/// whose processes would be recorded too).
fn python() -> &'static str {
    if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// One `/proc/PID/maps` line.
#[derive(Clone, Debug)]
struct Vma {
    start: u64,
    end: u64,
    name: String,
}

fn vmas(text: &str) -> Vec<Vma> {
    text.lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (s, e) = f[0].split_once('-').expect("range");
            Vma {
                start: u64::from_str_radix(s, 16).expect("hex"),
                end: u64::from_str_radix(e, 16).expect("hex"),
                name: f.get(5..).map(|n| n.join(" ")).unwrap_or_default(),
            }
        })
        .collect()
}

/// The line without its `-y` annotations: every `<…>` group (nested ones,
/// backslash escapes inside) outside quoted strings, and a `(deleted)`
/// right after one.
fn strip_annotations(line: &str) -> String {
    let b = line.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                out.push(b'"');
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' {
                        out.push(b[i]);
                        i += 1;
                    }
                    out.push(b[i]);
                    i += 1;
                }
                out.push(b'"');
                i += 1;
            }
            b'<' => {
                let mut depth = 0;
                while i < b.len() {
                    match b[i] {
                        b'\\' => i += 1,
                        b'<' => depth += 1,
                        b'>' => {
                            depth -= 1;
                            if depth == 0 {
                                i += 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                    i += 1;
                }
                if line[i..].starts_with("(deleted)") {
                    i += "(deleted)".len();
                }
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).expect("utf-8")
}

/// Every line reads back as the same call: parsed, then printed again by
/// the canonical writer, it gives the line without its annotations; a
/// [`Parser`] fed the whole trace joins nothing and loses nothing.
fn check_round_trip(rec: &Rec) {
    let mut parser = Parser::new();
    for (l, t) in rec.call_lines().into_iter().zip(rec.calls()) {
        let outcome = t.recorded.as_ref().and_then(Recorded::outcome).expect("an outcome");
        let again = format!(
            "{} {} = {}",
            t.pid.expect("pid"),
            format_call(&t.call),
            format_result(&t.call, &outcome)
        );
        assert_eq!(strip_annotations(l), again, "line does not round-trip");
        match parser.feed(l) {
            Ok(Some(Line::Call(p))) => assert_eq!(p, t),
            other => panic!("Parser on {l}: {other:?}"),
        }
    }
    assert!(parser.finish().is_empty());
}

/// A mapped range the trace leaves in place, and the file it maps.
#[derive(Clone, Debug)]
struct Live {
    start: u64,
    end: u64,
    file: Option<String>,
}

fn page_up(x: u64) -> u64 {
    x.wrapping_add(4095) & !4095
}

fn remove(live: &mut Vec<Live>, lo: u64, hi: u64) {
    let mut out = Vec::new();
    for r in live.drain(..) {
        if r.end <= lo || r.start >= hi {
            out.push(r);
            continue;
        }
        if r.start < lo {
            out.push(Live { end: lo, ..r.clone() });
        }
        if r.end > hi {
            out.push(Live { start: hi, ..r });
        }
    }
    *live = out;
}

/// What the trace says is still mapped at the end: successful `mmap`s,
/// minus `munmap`s, with `mremap` moving ranges (brk's heap left out).
fn live_ranges(calls: &[TraceLine]) -> Vec<Live> {
    live_from(Vec::new(), calls)
}

/// [`live_ranges`] from the ranges `live` on.
fn live_from(mut live: Vec<Live>, calls: &[TraceLine]) -> Vec<Live> {
    for t in calls {
        let Some(Outcome::Val(r)) = t.recorded.as_ref().and_then(Recorded::outcome) else {
            continue;
        };
        match t.call {
            Call::Mmap { len, flags, .. } => {
                let end = r + page_up(len);
                remove(&mut live, r, end);
                let file = (flags & 0x20 == 0).then(|| t.fd_path.clone()).flatten();
                live.push(Live { start: r, end, file });
            }
            Call::Munmap { addr, len } => remove(&mut live, addr, addr + page_up(len)),
            Call::Mremap {
                old_addr,
                old_len,
                new_len,
                flags,
                ..
            } => {
                let file = live
                    .iter()
                    .find(|l| (l.start..l.end).contains(&old_addr))
                    .and_then(|l| l.file.clone());
                if flags & 4 == 0 {
                    remove(&mut live, old_addr, old_addr + page_up(old_len));
                }
                remove(&mut live, r, r + page_up(new_len));
                live.push(Live {
                    start: r,
                    end: r + page_up(new_len),
                    file,
                });
            }
            _ => {}
        }
    }
    live
}

/// The final maps agree with the trace: every range the calls of the root
/// process's last image leave mapped is covered by final VMAs, and
/// file-backed ones by VMAs of that file.
fn check_final_maps(rec: &Rec) {
    let model = procs::Model::of(rec);
    let calls = model.calls_of(rec, model.image[&(rec.meta_num("pid") as u32)]);
    check_image_final_maps(&rec.final_maps, &calls);
}

/// The calls of one image agree with its final maps (see
/// [`check_final_maps`]).
fn check_image_final_maps(final_maps: &str, calls: &[TraceLine]) {
    let fin = vmas(final_maps);
    assert!(!fin.is_empty(), "final-maps.txt is empty");
    let live = live_ranges(calls);
    assert!(!live.is_empty(), "the trace maps nothing");
    for l in &live {
        let mut at = l.start;
        while at < l.end {
            let v = fin
                .iter()
                .find(|v| (v.start..v.end).contains(&at))
                .unwrap_or_else(|| panic!("{at:#x} of {l:x?} is not in the final maps:\n{final_maps}"));
            if let Some(f) = &l.file {
                let name = v.name.strip_suffix(" (deleted)").unwrap_or(&v.name);
                assert_eq!(name, f, "{at:#x} of {l:x?} maps another file");
            }
            at = v.end;
        }
    }
}

/// The checks every recording must pass.
fn check_fixture(rec: &Rec, argv: &[&str]) {
    assert_eq!(rec.code, Some(0), "{argv:?}: {}", rec.stderr);
    assert!(!rec.initial.is_empty() && !rec.trace.is_empty());
    assert_eq!(rec.meta_num("calls") as usize, rec.lines().len());
    assert_eq!(rec.meta("exit"), "0");
    let plural = |n: &str, one: &str| if n == "1" { one.to_string() } else { format!("{one}s") };
    let (calls, threads, processes) = (rec.meta("calls"), rec.meta("threads"), rec.meta("processes"));
    let summary = format!(
        "mmsim record: recorded {calls} trace {} from {threads} {} in {processes} {} to ",
        plural(calls, "line"),
        plural(threads, "thread"),
        if processes == "1" { "process" } else { "processes" }
    );
    assert!(rec.stderr.contains(&summary), "{argv:?}: {}", rec.stderr);
    assert_eq!(rec.meta("format"), "2");
    // Calls of the program and of the tasks it made, each announced.
    let pid = rec.meta_num("pid") as u32;
    assert!(rec.tids().contains(&pid), "{argv:?}: no call from the process {pid}");
    let model = procs::Model::of(rec);
    assert!(rec.tids().is_subset(&model.tasks()), "{argv:?}: calls of unknown tasks");
    assert!(rec.meta_num("processes") >= model.processes(), "{argv:?}");
    check_round_trip(rec);
    check_final_maps(rec);
}

#[test]
fn fixture_of_true() {
    let rec = record("true", &["/bin/true"]);
    check_fixture(&rec, &["/bin/true"]);
    let init = vmas(&rec.initial);
    // ASLR off: a PIE is loaded at the fixed base 2/3 of TASK_SIZE gives.
    let exe = init.iter().find(|v| v.name.ends_with("/true")).expect("true in maps");
    // As root with tracefs, every fault is recorded (true's text and data
    // pages, its stack, ld.so's relocations at least).
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        assert!(rec.meta("faults").starts_with("recorded"), "{}", rec.meta("faults"));
        assert!(rec.faults() > 10, "{} faults", rec.faults());
        assert_eq!(rec.meta("faults"), format!("recorded {}", rec.faults()));
    }
    assert_eq!(exe.start, 0x5555_5555_4000, "{}", rec.initial);
    assert_ne!(rec.meta_num("personality") & 0x0040000, 0, "ADDR_NO_RANDOMIZE");
    // The break starts right after the program's image; brk(NULL) says so too.
    let start_brk = rec.meta_num("start_brk");
    assert_eq!(rec.meta_num("brk"), start_brk);
    let image_end = init
        .iter()
        .filter(|v| v.name.ends_with("/true"))
        .map(|v| v.end)
        .max()
        .unwrap();
    assert!(start_brk >= image_end && start_brk < image_end + (32 << 20));
    let first_brk = rec
        .calls()
        .into_iter()
        .find(|t| matches!(t.call, Call::Brk { addr: 0 }))
        .expect("brk(NULL)");
    assert_eq!(first_brk.recorded, Some(Recorded::Outcome(Outcome::Val(start_brk))));
    let start_stack = rec.meta_num("start_stack");
    let stack = init.iter().find(|v| v.name == "[stack]").expect("[stack]");
    assert!((stack.start..stack.end).contains(&start_stack));
    let ulimit = Command::new("sh").args(["-c", "ulimit -s"]).output().unwrap();
    let ulimit = String::from_utf8_lossy(&ulimit.stdout).trim().to_string();
    let want = if ulimit == "unlimited" {
        u64::MAX
    } else {
        ulimit.parse::<u64>().unwrap() * 1024
    };
    assert_eq!(rec.meta_num("rlimit_stack"), want);
    let uname = Command::new("uname").arg("-r").output().unwrap();
    assert_eq!(rec.meta("kernel"), String::from_utf8_lossy(&uname.stdout).trim());
    assert_eq!(rec.meta("command"), "/bin/true");
    assert_eq!(rec.meta("threads"), "1");
    assert_eq!(rec.meta("final_maps"), "exit_group");
    // The loader opened libc and mapped it from the descriptor it got.
    let calls = rec.calls();
    let open = calls
        .iter()
        .find(|t| {
            matches!(&t.call, Call::Openat { path, .. } if path.ends_with("libc.so.6"))
                && matches!(t.recorded, Some(Recorded::FdWithPath(..)))
        })
        .expect("libc opened");
    let Some(Recorded::FdWithPath(fd, path)) = &open.recorded else {
        panic!("openat result without -y path: {open:?}");
    };
    assert!(path.starts_with('/') && path.contains("libc"));
    assert!(
        calls
            .iter()
            .any(|t| matches!(t.call, Call::Mmap { fd: f, .. } if f == *fd as i64)
                && t.fd_path.as_deref() == Some(path.as_str())),
        "no mmap of {path}"
    );
    assert!(
        calls
            .iter()
            .any(|t| t.call == Call::Close { fd: *fd as i64 } && t.fd_path.as_deref() == Some(path.as_str())),
        "no close of {path}"
    );
}

#[test]
fn real_programs() {
    let tmp = TempDir::new("rec-inputs");
    let input = tmp.file("input.txt", 0);
    let text: String = (0..2000).map(|i| format!("line {}\n", (i * 7919) % 2000)).collect();
    std::fs::write(&input, text).unwrap();
    let tar_out = format!("{}/out.tar", tmp.str());
    let mut programs: Vec<Vec<&str>> = vec![
        vec!["cat", &input],
        vec!["ls", "-la", "/usr/lib", "/etc"],
        vec!["sort", "-r", &input],
        vec!["tar", "cf", &tar_out, "-C", "/etc", "passwd", "hostname"],
        vec![
            "perl",
            "-e",
            "my @a = map { 'x' x 1000 } 1..5000; print scalar(@a), qq(\\n);",
        ],
        vec!["awk", "{ n[$2]++ } END { print length(n) }", &input],
        vec![
            python(),
            "-c",
            "import json; print(len(json.dumps(list(range(100000)))))",
        ],
    ];
    if have("sqlite3") {
        programs.push(vec![
            "sqlite3",
            ":memory:",
            "create table t(x); insert into t values (1),(2); select sum(x) from t;",
        ]);
    }
    for (i, argv) in programs.iter().enumerate() {
        let rec = record(&format!("prog{i}"), argv);
        check_fixture(&rec, argv);
        let calls = rec.calls();
        for name in ["mmap", "openat", "close", "mprotect", "brk"] {
            assert!(calls.iter().any(|t| t.call.name() == name), "{argv:?}: no {name}");
        }
        eprintln!(
            "{argv:?}: {} calls, {} threads, {} execs",
            rec.meta("calls"),
            rec.meta("threads"),
            rec.meta("execs")
        );
    }
}

#[test]
fn threads_are_followed() {
    // Each thread maps its own size, so each call names its thread.
    let script = "\
import mmap, threading
def work(i):
    m = mmap.mmap(-1, (3 << 20) + i * 4096)
    m[0] = 1
    m.close()
ts = [threading.Thread(target=work, args=(i,)) for i in range(1, 5)]
for t in ts: t.start()
for t in ts: t.join()
";
    let rec = record("py-threads", &[python(), "-c", script]);
    check_fixture(&rec, &["python3", "-c", "…"]);
    let pid = rec.meta_num("pid") as u32;
    assert!(rec.meta_num("threads") >= 5, "{:?}", rec.meta);
    let calls = rec.calls();
    let mut by_thread = BTreeSet::new();
    for i in 1..5u64 {
        let len = (3 << 20) + i * 4096;
        let t = calls
            .iter()
            .find(|t| matches!(t.call, Call::Mmap { len: l, .. } if l == len))
            .unwrap_or_else(|| panic!("no mmap of {len}"));
        let tid = t.pid.unwrap();
        assert_ne!(tid, pid, "thread {i}'s mmap came from the main thread");
        by_thread.insert(tid);
        assert!(
            calls
                .iter()
                .any(|u| u.pid == Some(tid) && matches!(u.call, Call::Munmap { len: l, .. } if l == len)),
            "thread {i} unmapped elsewhere"
        );
    }
    assert_eq!(by_thread.len(), 4, "four threads, four tids");

    if have("node") {
        let argv = [
            "node",
            "-e",
            "setTimeout(() => console.log(require('os').cpus().length > 0), 20)",
        ];
        let rec = record("node", &argv);
        check_fixture(&rec, &argv);
        assert_eq!(rec.stdout, "true\n");
        assert!(rec.meta_num("threads") > 1, "{:?}", rec.meta);
        assert!(rec.tids().len() > 1, "calls from one thread only");
        eprintln!("node: {} calls, {} threads", rec.meta("calls"), rec.meta("threads"));
    }
}

#[test]
fn mseal_is_recorded_and_replays() {
    // Maps three pages, seals the middle one (system call 462), then asks
    // to unmap all three: EPERM. The final maps show the split.
    let script = "\
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
libc.syscall.restype = ctypes.c_long
libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
a = libc.mmap(None, 3 * 4096, 3, 0x22, -1, 0)
r = libc.syscall(ctypes.c_long(462), ctypes.c_ulong(a + 4096), ctypes.c_ulong(4096), ctypes.c_ulong(0))
u = libc.munmap(a, 3 * 4096)
print(r, u, ctypes.get_errno())
";
    let rec = record("py-mseal", &[python(), "-c", script]);
    check_fixture(&rec, &["python3", "-c", "…"]);
    // The kernel sealed (0) and refused the unmap (-1, EPERM = 1).
    assert_eq!(rec.stdout, "0 -1 1\n", "{}", rec.stderr);
    let calls = rec.calls();
    let seal = calls
        .iter()
        .find(|t| {
            matches!(
                t.call,
                Call::Mseal {
                    len: 4096,
                    flags: 0,
                    ..
                }
            )
        })
        .expect("the mseal call is in the trace");
    let Call::Mseal { addr, .. } = seal.call else {
        unreachable!()
    };
    assert!(
        calls
            .iter()
            .any(|t| matches!(t.call, Call::Munmap { addr: a, len } if a == addr - 4096 && len == 3 * 4096)),
        "the refused munmap is in the trace"
    );
}

#[test]
fn sysv_shm_is_recorded_and_replays() {
    // A segment of 5000 bytes attached twice (once read-only), the first
    // attach detached, the segment removed while still attached: the final
    // maps keep the read-only attach, named by the segment's key.
    let script = "\
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
libc.shmat.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
libc.shmdt.argtypes = [ctypes.c_void_p]
i = libc.shmget(0x5eed, 5000, 0o1600)
a = libc.shmat(i, None, 0)
b = libc.shmat(i, None, 0o10000)
print(i >= 0, b > 0, libc.shmdt(ctypes.c_void_p(a)), libc.shmctl(i, 0, None))
";
    let rec = record("py-shm", &[python(), "-c", script]);
    check_fixture(&rec, &["python3", "-c", "…"]);
    assert_eq!(rec.stdout, "True True 0 0\n", "{}", rec.stderr);
    let calls = rec.calls();
    for name in ["shmget", "shmat", "shmdt", "shmctl"] {
        assert!(
            calls.iter().any(|t| t.call.name() == name),
            "{name} is in the trace:\n{}",
            rec.trace
        );
    }
    assert!(
        rec.final_maps.contains("r--s 00000000 00:01") && rec.final_maps.contains("/SYSV00005eed (deleted)"),
        "{}",
        rec.final_maps
    );
}
