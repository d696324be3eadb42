//! `mmsim replay` never panics: random call sequences replay to one line
//! per call, and mangled lines are errors, not crashes.
//!
//! `MMSIM_FUZZ_ROUNDS=N` runs more rounds than the default.

mod common;

use mm_host::callgen::CallGen;
use mm_ops::strace::format_call;
use mmsim::replay::{ReplayError, ReplayOptions, replay};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

fn rounds(default: u64) -> u64 {
    std::env::var("MMSIM_FUZZ_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// A random script of `n` calls without recorded results.
fn script(seed: u64, n: usize, dir: &std::path::Path) -> Vec<String> {
    let mut cg = CallGen::new(seed, dir);
    (0..n).map(|_| format_call(&cg.next_call())).collect()
}

fn run(text: &str) -> (Result<mmsim::replay::ReplaySummary, ReplayError>, String) {
    let opts = ReplayOptions {
        maps: true,
        ..ReplayOptions::default()
    };
    let mut out = Vec::new();
    let r = replay(text.as_bytes(), &opts, &mut out);
    (r, String::from_utf8_lossy(&out).into_owned())
}

#[test]
fn random_calls_replay_one_line_each() {
    let tmp = common::TempDir::new("robust");
    for seed in 0..rounds(8) {
        let lines = script(seed, 300, tmp.path());
        let text = lines.join("\n");
        let (r, out) = run(&text);
        let summary = r.unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert_eq!(summary.calls, lines.len(), "seed {seed}");
        // Each output line is the call as read, then ` = ` and a result.
        for (i, (o, l)) in out.lines().zip(&lines).enumerate() {
            assert!(o.starts_with(&format!("{l} = ")), "seed {seed} line {}: {o}", i + 1);
        }
        assert!(out.ends_with("[vsyscall]\n"), "seed {seed}");
    }
}

#[test]
fn mangled_lines_are_errors_not_crashes() {
    let tmp = common::TempDir::new("mangle");
    let base = script(1000, 200, tmp.path());
    let extra = [
        "",
        "# comment",
        "+++ exited with 0 +++",
        "--- SIGSEGV {si_signo=SIGSEGV} ---",
        "strace: Process 5 attached",
        "[pid 5] <... mmap resumed>) = 0x1000",
        "mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, 5</a b>, 0) = 0x1000",
        "openat(AT_FDCWD</nonexistent/dir>, \"x\", O_RDONLY) = 3</nonexistent/dir/x>",
        "openat(9</tmp>, \"x\", O_RDONLY) = ?",
        "dup3(3<socket:[1]>, 4</dev/null>, O_CLOEXEC) = 4",
        "open(\"x\", O_RDONLY) = -1",
        "open(\"x\", O_RDONLY) = 99999999999",
        "memfd_create(\"\\377\\0\", MFD_HUGE_1GB|MFD_HUGETLB) = 2147483647",
        "brk(0xffffffffffffffff) = 0x1",
        "mmap(0xfffffffffffff000, 18446744073709551615, 0xff, 0xffffffff, 2147483647, 0xfffffffffffff000) = 0",
        "mremap(0x1000, 4096, 8192, MREMAP_MAYMOVE|MREMAP_FIXED, 0x2000) = 0x2000",
        "fault(0xffffffffffffffff, EXEC) = SIGBUS",
        "munmap(0, 18446744073709551615) = 0",
        "mprotect(0x7ffffffff000, 18446744073709547520, PROT_READ|PROT_GROWSDOWN|PROT_GROWSUP) = 0",
    ];
    let mut rng = StdRng::seed_from_u64(42);
    let junk = b"()<>\",|=?-0x123456789abcdefXYZ \\ {}[]/\n\t";
    for round in 0..rounds(1) * 400 {
        let mut lines: Vec<String> = Vec::new();
        for _ in 0..rng.random_range(1..30usize) {
            let mut l = if rng.random_ratio(1, 3) {
                extra[rng.random_range(0..extra.len())].to_string()
            } else {
                base[rng.random_range(0..base.len())].clone()
            };
            if rng.random_ratio(1, 2) {
                let mut b = l.into_bytes();
                for _ in 0..rng.random_range(1..4) {
                    let at = rng.random_range(0..=b.len());
                    match rng.random_range(0..3) {
                        0 => b.truncate(at),
                        1 => b.insert(at, junk[rng.random_range(0..junk.len())]),
                        _ if at < b.len() => {
                            b.remove(at);
                        }
                        _ => {}
                    }
                }
                l = String::from_utf8_lossy(&b).into_owned();
            }
            lines.push(l);
        }
        let text = lines.join("\n");
        // Inserted junk may split a line in two.
        let n = text.lines().count().max(1);
        let (r, out) = run(&text);
        match r {
            Ok(s) => assert_eq!(s.calls, out.lines().filter(|l| l.contains(") = ")).count()),
            Err(ReplayError::Parse { line, .. }) => {
                assert!((1..=n).contains(&line), "round {round}: line {line}");
            }
            // A bug in the model, reported as such (see the crate's report).
            Err(ReplayError::ModelPanic { line, .. }) => {
                assert!((1..=n).contains(&line), "round {round}: line {line}");
            }
            Err(e) => panic!("round {round}: {e}"),
        }
    }
}
