//! `cargo xtask`: the project's automation, so that `cargo xtask ci` runs
//! locally exactly what CI runs (matklad's cargo-xtask pattern).
//!
//! * `cargo xtask ci` — format check, clippy with `-D warnings`, every test
//!   of the workspace (doc tests, the reference state machine, the
//!   differential tests against the host kernel), then a summary of the
//!   counts the tests reported.
//! * `cargo xtask loom` — the loom model checks (speculation issue).
//! * `cargo xtask bench [--quick]` — the criterion benches (benchmark issue).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
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
    root().join("target").join("mm-ci")
}

fn ci() -> bool {
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
    test.args(["test", "--workspace", "--all-features"])
        .env("MM_CI_SUMMARY_DIR", &dir);
    let steps = [
        ("cargo fmt --check", fmt),
        ("cargo clippy -D warnings", clippy),
        ("cargo doc -D warnings", doc),
        (
            "cargo test (all, with doc tests and the host-kernel differential tests)",
            test,
        ),
    ];
    let mut ok = true;
    for (name, cmd) in steps {
        if !step(name, cmd) {
            ok = false;
            break;
        }
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

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let ok = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("loom") | Some("bench") => {
            eprintln!("xtask: `{}` is not implemented yet", args[0]);
            false
        }
        _ => {
            eprintln!("usage: cargo xtask ci | loom | bench [--quick]");
            false
        }
    };
    if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
