//! `cargo xtask`: the project's automation, so that `cargo xtask ci` runs
//! locally exactly what CI runs (matklad's cargo-xtask pattern).
//!
//! * `cargo xtask ci` — format check, clippy with `-D warnings`, every test
//!   of the workspace (doc tests, the reference state machine, the
//!   differential tests against the host kernel), the embedding examples
//!   (`cargo xtask examples`), the checkers below, then a summary of the
//!   counts the tests reported. Miri and ThreadSanitizer run beside the
//!   plain tests, the fuzz smoke run beside AddressSanitizer
//!   ([`background`]), each lane's log printed when it is waited for.
//! * `cargo xtask examples` — runs each program of `examples/`.
//! * `cargo xtask dist` — the man page and shell completions of `mmsim`,
//!   under `target/dist/`.
//! * `cargo xtask loom [--exhaustive]` — the loom model checks of every
//!   scenario under every barrier policy (the heaviest few at preemption
//!   bound 4 under all but `upstream`, unless `--exhaustive`), then the
//!   mutation table (each one-site mutation of the read or write path must
//!   be caught by loom, the stress test or the state machine); writes
//!   `target/mm-loom/summary.json`.
//! * `cargo xtask asan` — every crate's tests (the host-kernel
//!   differential tests and the CLI's included; not the benches') under
//!   AddressSanitizer with LeakSanitizer on (nightly).
//! * `cargo xtask tsan` — the concurrency tests under ThreadSanitizer
//!   (nightly, `-Zbuild-std`).
//! * `cargo xtask miri` — the small concurrency test under Miri, over
//!   several scheduling seeds, mm-core's lock tests and the maps writer's
//!   unit tests (nightly).
//! * `cargo xtask fuzz [--time S] [--runs N] [--max-len B] [--sanitizer
//!   address|none] [TARGET...]` — the cargo-fuzz targets of `fuzz/` (the
//!   strace parser, `mmsim replay`, system-call sequences under the
//!   invariant checker) from the committed seeds, `S` seconds or `N`
//!   executions each (CI: 20 s), built by cargo with cargo-fuzz's flags.
//! * `cargo xtask asm` — what each barrier policy compiles to on this
//!   machine (for `docs/ordering.md`).
//! * `cargo xtask bench [--quick]` — the criterion suite, side by side with
//!   the host kernel; writes `docs/benchmarks.md`, `docs/benchmarks.svg` and
//!   `target/mm-bench/summary.json`. Extra arguments go to criterion (a
//!   filter, say).

mod asm;
mod background;
mod bench;
mod bench_answer;
mod bench_chart;
mod bench_files;
mod bench_locking;
mod bench_missed;
mod bench_report;
mod bench_targets;
mod dist;
#[path = "../../crates/mmsim/fingerprint.rs"]
mod fingerprint;
mod fuzz;
mod icount;
mod loom;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use background::Background;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

/// The workspace's target directory (`cargo metadata`, so that
/// `CARGO_TARGET_DIR` and `build.target-dir` are honoured); `target/`
/// under the workspace if cargo cannot say.
fn target_dir() -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .current_dir(root())
            .args(["metadata", "--format-version", "1", "--no-deps"])
            .output();
        out.ok()
            .and_then(|o| serde_json::from_slice::<serde_json::Value>(&o.stdout).ok())
            .and_then(|v| v.get("target_directory")?.as_str().map(PathBuf::from))
            .unwrap_or_else(|| root().join("target"))
    })
    .clone()
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root());
    c
}

/// Runs a step, printing its name and duration; false on failure.
fn step(name: &str, mut cmd: Command) -> bool {
    println!("==> {name}");
    let t = Instant::now();
    let ok = match cmd.status() {
        Ok(s) => s.success(),
        Err(e) => {
            eprintln!("xtask: cannot run {name}: {e}");
            false
        }
    };
    println!(
        "<== {name}: {} in {:.1}s",
        if ok { "ok" } else { "FAILED" },
        t.elapsed().as_secs_f64()
    );
    ok
}

fn summary_dir() -> PathBuf {
    target_dir().join("mm-ci")
}

/// The programs `crates/mmsim/tests/programs.rs` and `process_trees.rs`
/// run, with the Debian
/// package that provides each one a fresh machine may lack.
const TEST_PROGRAMS: [(&str, &str); 18] = [
    ("cat", "coreutils"),
    ("ls", "coreutils"),
    ("sort", "coreutils"),
    ("tar", "tar"),
    ("perl", "perl"),
    ("python3", "python3"),
    ("awk", "mawk"),
    ("sqlite3", "sqlite3"),
    ("node", "nodejs"),
    ("ruby", "ruby"),
    ("go", "golang-go"),
    ("gdb", "gdb"),
    ("setpriv", "util-linux"),
    ("setarch", "util-linux"),
    ("sh", "dash"),
    ("make", "make"),
    ("gcc", "gcc"),
    ("strace", "strace"),
];

fn on_path(prog: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(prog).is_file()))
        .unwrap_or(false)
}

/// Installs the recorded programs that are missing (with apt-get, when it
/// is there and we are root). A failure is reported; the test then names
/// the missing program.
fn ensure_test_programs() {
    let missing: Vec<&str> = TEST_PROGRAMS
        .iter()
        .filter(|(p, _)| !on_path(p))
        .map(|&(_, pkg)| pkg)
        .collect();
    if missing.is_empty() {
        return;
    }
    println!("==> installing programs the replay tests record: {}", missing.join(" "));
    let apt = |args: &[&str]| {
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success())
    };
    let mut install = vec!["install", "-y", "-qq", "--no-install-recommends"];
    install.extend(&missing);
    if !(apt(&["update", "-qq"]) && apt(&install)) {
        eprintln!(
            "xtask: could not install {}; tests/programs.rs will fail",
            missing.join(" ")
        );
    }
}

fn ci() -> bool {
    ensure_test_programs();
    let dir = summary_dir();
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("xtask: cannot create {}: {e}", dir.display());
        return false;
    }
    let mut fmt = cargo();
    fmt.args(["fmt", "--all", "--", "--check"]);
    let mut clippy = cargo();
    clippy.args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--all-features",
        "--",
        "-D",
        "warnings",
    ]);
    let mut doc = cargo();
    doc.args(["doc", "--workspace", "--no-deps", "--all-features"])
        .env("RUSTDOCFLAGS", "-D warnings");
    let mut test = cargo();
    test.args(["test", "--workspace", "--all-features", "--no-fail-fast"])
        .env("MM_CI_SUMMARY_DIR", &dir);
    // The lockless tree walks again with the portable key search, which
    // the first run only uses where the CPU lacks AVX2.
    let mut portable = cargo();
    portable
        .args(["test", "--all-features", "-p", "mm-core", "--test", "tree"])
        .args(["-p", "mm-spec", "--test", "stress"])
        .env("MM_KEY_SEARCH", "portable");
    let lint = [
        ("cargo fmt --check", fmt),
        ("cargo clippy -D warnings", clippy),
        ("cargo doc -D warnings", doc),
    ];
    let tests = [
        (
            "cargo test (all, with doc tests and the host-kernel differential tests)",
            test,
        ),
        ("cargo test (tree and stress, MM_KEY_SEARCH=portable)", portable),
    ];
    if !lint.into_iter().all(|(name, cmd)| step(name, cmd)) {
        println!("ci: FAILED");
        return false;
    }
    // The checkers run even after one fails, so that CI shows them all.
    // Miri and ThreadSanitizer run beside the plain tests, the fuzz smoke
    // run beside AddressSanitizer (`background`: those stretches keep one
    // core of two busy). Their nightly components are installed first, so
    // that two lanes never run rustup at once.
    let mut ok = nightly_components(&["miri", "rust-src"]);
    let side = Background::start("Miri, then ThreadSanitizer", "miri-tsan", &["miri", "tsan"]);
    ok &= tests.into_iter().all(|(name, cmd)| step(name, cmd));
    if ok {
        ok = run_examples();
    }
    let mut lanes = vec![side];
    if ok {
        ok &= loom::loom(&[]);
        // The fuzz targets, a short smoke run each from the seed corpus.
        lanes.push(Background::start("fuzz smoke run", "fuzz", &["fuzz-smoke"]));
        ok &= asan();
    }
    for lane in lanes {
        ok &= lane.finish();
    }
    println!("==> summary");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    for f in files {
        if let Ok(text) = std::fs::read_to_string(&f) {
            print!("{text}");
        }
    }
    println!("ci: {}", if ok { "all steps passed" } else { "FAILED" });
    ok
}

/// The embedding examples (`examples/`), each a program that checks what
/// it shows.
const EXAMPLES: [&str; 4] = ["snapshot", "readers", "custom_policy", "property"];

/// Runs every example; false if one fails.
fn run_examples() -> bool {
    let mut ok = true;
    for e in EXAMPLES {
        let mut c = cargo();
        c.args(["run", "-q", "-p", "mm-examples", "--example", e]);
        ok &= step(&format!("example {e}"), c);
    }
    ok
}

fn nightly(args: &[&str]) -> Command {
    let mut c = Command::new("cargo");
    c.current_dir(root()).arg("+nightly").args(args);
    c
}

/// Makes sure the nightly components a checker needs are installed.
fn nightly_components(components: &[&str]) -> bool {
    let mut c = Command::new("rustup");
    c.args(["component", "add", "--toolchain", "nightly"]).args(components);
    step(&format!("rustup: nightly {}", components.join(", ")), c)
}

/// The recorded programs the AddressSanitizer run records and replays:
/// threads, fork and exec, System V and POSIX shared memory, protection
/// keys, stack growth and `setrlimit`, which take the recorder's `ptrace`
/// code (its `unsafe`) down every path. The large runtimes (Java, Node,
/// Go, Ruby, a Go build) take most of the time under ASan and add no path
/// of their own; the plain run records and replays every program.
const ASAN_PROGRAMS: &str = "cat,ls,sh-pipeline,make-j4,python3-pool,python3-shm-unlinked,python3-sysv-shm,\
     python3-setrlimit,python3-pkeys,c-stack-growth,c-pkey-threads,python3-written-then-mapped";

fn asan() -> bool {
    // Every crate's tests, the CLI's and the host-kernel differential tests
    // included, with LeakSanitizer on. Not mm-benches: its host fixture
    // maps at fixed addresses ASan's own mappings may hold (and xtask is
    // tooling). The semantic checks that only repeat the plain run's are
    // shorter here: 4,000 random differential calls instead of 10,000, and
    // the programs of ASAN_PROGRAMS (the plain run has them all), and no
    // doc tests.
    let mut c = nightly(&[
        "test",
        "--target",
        "x86_64-unknown-linux-gnu",
        "--workspace",
        "--exclude",
        "xtask",
        "--exclude",
        "mm-benches",
        "--all-features",
        "--no-fail-fast",
        // Unit and integration tests; not the doc tests (the plain run
        // has them, and they hold no `unsafe` of their own).
        "--tests",
    ]);
    c.env("RUSTFLAGS", "-Zsanitizer=address")
        .env("RUSTDOCFLAGS", "-Zsanitizer=address")
        .env("ASAN_OPTIONS", "detect_leaks=1")
        .env("MM_DIFF_OPS", "4000")
        .env("MM_PROGRAMS", ASAN_PROGRAMS)
        .env("CARGO_TARGET_DIR", target_dir().join("asan"));
    step(
        "AddressSanitizer + LeakSanitizer: every crate's tests but the benches' (nightly; fewer random calls and programs)",
        c,
    )
}

/// ThreadSanitizer over the concurrency tests: the standard library is
/// rebuilt instrumented (`-Zbuild-std`), so that its atomics and parking
/// are seen too.
fn tsan() -> bool {
    if !nightly_components(&["rust-src"]) {
        return false;
    }
    let mut c = nightly(&[
        "test",
        "-Zbuild-std",
        "--target",
        "x86_64-unknown-linux-gnu",
        "-p",
        "mm-spec",
        "--test",
        "threads",
        "--test",
        "stress",
    ]);
    c.env("RUSTFLAGS", "-Zsanitizer=thread")
        .env("TSAN_OPTIONS", "halt_on_error=1")
        .env("CARGO_TARGET_DIR", target_dir().join("tsan"));
    step(
        "ThreadSanitizer: mm-spec threads and stress tests (nightly, build-std)",
        c,
    )
}

/// Miri over the small concurrency test, on several scheduling seeds
/// (`MIRI_SEEDS`, default 4; loom explores the interleavings exhaustively,
/// Miri adds undefined behaviour, data races and the aliasing rules of the
/// guards' `unsafe` on a few of them).
fn miri() -> bool {
    if !nightly_components(&["miri", "rust-src"]) {
        return false;
    }
    let seeds = std::env::var("MIRI_SEEDS").unwrap_or_else(|_| "4".into());
    let mut c = nightly(&["miri", "test", "-p", "mm-spec", "--test", "threads"]);
    c.env("MIRIFLAGS", format!("-Zmiri-many-seeds=0..{seeds}"))
        .env("CARGO_TARGET_DIR", target_dir().join("miri"));
    let threads = step(
        &format!("Miri: mm-spec threads test over {seeds} scheduling seeds (nightly)"),
        c,
    );
    // The lock's own unsafe code (guards over the raw rwsem, downgrade)
    // and its sequence count, single-threaded.
    let mut l = nightly(&["miri", "test", "-p", "mm-core", "--test", "mmap_lock"]);
    l.env("CARGO_TARGET_DIR", target_dir().join("miri"));
    let lock = step("Miri: mm-core mmap_lock tests (nightly)", l);
    // The maps header's ASCII-to-str conversion (mm-ops `task_mmu`).
    let mut m = nightly(&["miri", "test", "-p", "mm-ops", "--lib", "task_mmu"]);
    m.env("CARGO_TARGET_DIR", target_dir().join("miri"));
    let maps = step("Miri: mm-ops task_mmu unit tests (nightly)", m);
    threads && lock && maps
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let ok = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("loom") => loom::loom(&args[1..]),
        Some("asan") => asan(),
        Some("tsan") => tsan(),
        Some("miri") => miri(),
        Some("lane") => background::lane(&args[1..]),
        Some("examples") => run_examples(),
        Some("dist") => dist::dist(),
        Some("asm") => asm::asm(),
        Some("bench") => bench::bench(&args[1..]),
        Some("icount") => icount::icount(&args[1..]),
        Some("fuzz") => fuzz::fuzz(&args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask ci | loom [--exhaustive] | asan | tsan | miri | examples | dist | asm | icount [POLICY VMAS...] | bench [--help] | fuzz [--help]"
            );
            false
        }
    };
    if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
