//! Process trees, recorded live and replayed: `mmsim record` follows every
//! process, and `mmsim replay --fixture` gives each its own model; every
//! result, each fork child's address space right after the fork, and each
//! address space at its end must match the kernel's. A plain `strace -f`
//! trace of the same program replays too, its fork children checked.
//!
//! The program is `tests/programs/tree.c`, built with gcc.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{TempDir, mmsim};

/// Builds `tree.c` into `dir`.
fn build_tree(dir: &Path) -> PathBuf {
    let src = dir.join("tree.c");
    std::fs::write(&src, include_str!("programs/tree.c")).expect("write tree.c");
    let exe = dir.join("tree");
    let out = Command::new("gcc")
        .args(["-O1", "-pthread", "-o"])
        .arg(&exe)
        .arg(&src)
        .output()
        .expect("gcc runs (`cargo xtask ci` installs it)");
    assert!(out.status.success(), "gcc: {}", String::from_utf8_lossy(&out.stderr));
    exe
}

/// `mmsim record -o DIR -- ./tree ARGS` in `dir`.
fn record(dir: &Path, args: &[&str]) -> PathBuf {
    let fixture = dir.join("fixture");
    let out = Command::new(env!("CARGO_BIN_EXE_mmsim"))
        .args(["record", "-o"])
        .arg(&fixture)
        .args(["--", "./tree"])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("mmsim record runs");
    assert!(
        out.status.success(),
        "mmsim record: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "/\ndone\n");
    fixture
}

fn meta(fixture: &Path, key: &str) -> String {
    let text = std::fs::read_to_string(fixture.join("meta.txt")).expect("meta.txt");
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}: ")))
        .unwrap_or_else(|| panic!("no {key} in meta.txt:\n{text}"))
        .to_string()
}

/// The number in `text` right before `what` (`"12 of 12 address-space"`).
fn count_before(text: &str, what: &str) -> usize {
    let i = text.find(what).unwrap_or_else(|| panic!("no {what:?} in:\n{text}"));
    text[..i]
        .split_whitespace()
        .last()
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("no number before {what:?} in:\n{text}"))
}

#[test]
fn a_recorded_process_tree_replays_with_zero_divergence() {
    let tmp = TempDir::new("tree-record");
    build_tree(tmp.path());
    let fixture = record(tmp.path(), &[]);
    assert_eq!(meta(&fixture, "format"), "2");
    // The parent, four fork children, posix_spawn's ls, the vfork child.
    let processes: usize = meta(&fixture, "processes").parse().expect("number");
    assert!(processes >= 7, "{processes} processes");
    let trace = std::fs::read_to_string(fixture.join("trace.txt")).expect("trace.txt");
    for what in [
        " vfork() = ",
        " clone(",
        " clone3(",
        " execve(",
        " +++ killed by SIGKILL +++",
    ] {
        assert!(trace.contains(what), "no {what:?} in the trace");
    }
    let fx = fixture.to_str().expect("utf-8");
    let run = mmsim(&["replay", "--fixture", fx], "");
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.stderr.contains("final maps identical"), "{}", run.stderr);
    assert!(run.stderr.contains(" 0 divergences"), "{}", run.stderr);
    // Each fork child after its fork, and every address space at its end.
    let compared = count_before(&run.stderr, "address-space snapshots");
    let identical = count_before(&run.stderr, "of ");
    assert_eq!(identical, compared, "{}", run.stderr);
    assert!(compared >= 10, "{compared} address spaces compared:\n{}", run.stderr);
    // Lines name their process; each fork child's lines are its own.
    let first_child = trace
        .lines()
        .find_map(|l| l.split_once(" clone(").and_then(|(_, r)| r.rsplit_once(") = ")))
        .map(|(_, pid)| pid.trim().to_string())
        .expect("a clone line");
    let only = mmsim(&["replay", "--fixture", fx, "--pid", &first_child], "");
    assert_eq!(only.code, Some(0), "{}", only.stderr);
    let lines: Vec<&str> = only.stdout.lines().collect();
    assert!(!lines.is_empty(), "{}", only.stderr);
    assert!(
        lines.iter().all(|l| l.starts_with(&format!("{first_child} "))),
        "{}",
        only.stdout
    );
    assert!(only.stdout.contains(" mremap("), "{}", only.stdout);
}

#[test]
fn a_plain_strace_trace_of_the_tree_replays_its_fork_children() {
    let strace_ok = Command::new("strace")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(strace_ok, "strace is not installed (`cargo xtask ci` installs it)");
    let tmp = TempDir::new("tree-strace");
    build_tree(tmp.path());
    // The same command, in the same directory, with the same environment
    // and randomization off: the layout at exec is the recorded one.
    // No worker threads: strace writes lines as calls complete, which is
    // not the order threads racing on mmap_lock got it in.
    let fixture = record(tmp.path(), &["serial"]);
    let out = Command::new("setarch")
        .args(["-R", "strace", "-f", "-o", "trace.txt", "./tree", "serial"])
        .current_dir(tmp.path())
        .output()
        .expect("setarch and strace run");
    assert!(out.status.success(), "strace: {}", String::from_utf8_lossy(&out.stderr));
    let maps = fixture.join("initial-maps.txt");
    let trace = tmp.path().join("trace.txt");
    let brk = meta(&fixture, "start_brk");
    // `mmsim replay --initial-maps … --brk … --check [EXTRA…] trace.txt`.
    let replay = |extra: &[&str]| {
        let mut args = vec![
            "replay",
            "--initial-maps",
            maps.to_str().expect("utf-8"),
            "--brk",
            &brk,
            "--check",
        ];
        args.extend_from_slice(extra);
        args.push(trace.to_str().expect("utf-8"));
        mmsim(&args, "")
    };
    let run = replay(&[]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.stderr.contains(" 0 divergences"), "{}", run.stderr);
    // ls (posix_spawn), the vfork child's exec of ./tree, and that
    // program's thread's exec of /bin/true: no snapshot, not checked.
    assert_eq!(
        count_before(&run.stderr, "processes with no snapshot"),
        3,
        "{}",
        run.stderr
    );
    // The parent's and its four fork children's calls are.
    let checked = count_before(&run.stderr, "checked,");
    assert!(checked >= 30, "{checked} checked:\n{}", run.stderr);
    // A fork child's own: its break, its mremap of what it inherited, its
    // mprotect of WIPEONFORK memory, its mmap over DONTFORK memory.
    let text = std::fs::read_to_string(&trace).expect("trace.txt");
    // The first fork child that mremaps (strace may split or restart a
    // clone: `<... clone resumed> …) = ? ERESTARTNOINTR`).
    let children: Vec<u32> = text
        .lines()
        .filter(|l| l.contains("clone(") || l.contains("clone resumed>"))
        .filter_map(|l| l.rsplit_once(" = ")?.1.trim().parse::<u32>().ok())
        .filter(|&c| c > 0)
        .collect();
    let child = *children
        .iter()
        .find(|c| {
            let prefix = format!("{c} ");
            text.lines().any(|l| l.starts_with(&prefix) && l.contains("mremap("))
        })
        .unwrap_or_else(|| panic!("no fork child that mremaps among {children:?}"));
    let run = replay(&["--pid", &child.to_string()]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    for call in ["brk(", "mmap(", "mremap(", "mprotect("] {
        assert!(run.stdout.contains(call), "no {call} of {child}:\n{}", run.stdout);
    }
    assert!(count_before(&run.stderr, "checked,") >= 4, "{}", run.stderr);
}
