//! `cargo xtask fuzz [--time S] [--runs N] [--max-len B] [--sanitizer
//! address|none] [TARGET...]`: runs the libFuzzer
//! targets of `fuzz/` (nightly; AddressSanitizer unless `--sanitizer none`,
//! which builds with debug assertions and overflow checks instead and runs
//! about five times as many executions per second), each for `S` seconds
//! (default 60) or `N` executions, starting from the committed seed corpus
//! `fuzz/seeds/TARGET`. New inputs go to a working corpus under the
//! target directory, so the committed seeds do not change; a finding is
//! written under `target/mm-fuzz/artifacts/TARGET/` and fails the run.
//!
//! The targets are built the way `cargo fuzz build -O` builds them (the
//! same SanitizerCoverage, `--cfg fuzzing` and sanitizer flags, release
//! with line tables), by cargo itself, so that nothing has to be
//! installed (`cargo fuzz` in `fuzz/` works on them too). Like
//! cargo-fuzz's, the release build has one codegen unit: measured on
//! 2026-12-02, sixteen took longer to build here (204 s against 181 s) and
//! ran fewer executions per second.

use std::process::Command;

use crate::{root, step, target_dir};

/// The targets (`fuzz/Cargo.toml`).
pub const TARGETS: [&str; 3] = ["strace_line", "replay", "ops"];

/// The target triple the fuzz targets are built for (cargo-fuzz passes
/// one too, so that the flags below do not reach build scripts).
const TRIPLE: &str = "x86_64-unknown-linux-gnu";

/// `RUSTFLAGS` of `cargo fuzz build -O [-a] -s SANITIZER` (cargo-fuzz
/// 0.13's `project.rs`), one codegen unit.
fn fuzz_rustflags(sanitizer: &str) -> String {
    let mut f = vec![
        "-Cpasses=sancov-module",
        "-Cllvm-args=-sanitizer-coverage-level=4",
        "-Cllvm-args=-sanitizer-coverage-inline-8bit-counters",
        "-Cllvm-args=-sanitizer-coverage-pc-table",
        "-Cllvm-args=-sanitizer-coverage-trace-compares",
        "--cfg fuzzing",
        "-Cllvm-args=-simplifycfg-branch-fold-threshold=0",
        "-Cllvm-args=-sanitizer-coverage-stack-depth",
    ];
    if sanitizer == "address" {
        f.push("-Zsanitizer=address");
    } else {
        f.extend(["-Cdebug-assertions", "-Coverflow-checks"]);
    }
    f.push("-Ccodegen-units=1");
    f.join(" ")
}
/// Runs the fuzz targets; false on a finding or a failed build.
pub fn fuzz(args: &[String]) -> bool {
    let mut time = 60u64;
    let mut runs_limit: Option<u64> = None;
    let mut max_len: Option<u64> = None;
    let mut sanitizer = "address".to_string();
    let mut targets = vec![];
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--time" => match it.next().and_then(|t| t.parse().ok()) {
                Some(t) => time = t,
                None => {
                    eprintln!("xtask fuzz: --time takes a number of seconds");
                    return false;
                }
            },
            "--runs" | "--max-len" => match it.next().and_then(|t| t.parse().ok()) {
                Some(n) if a == "--runs" => runs_limit = Some(n),
                Some(n) => max_len = Some(n),
                None => {
                    eprintln!("xtask fuzz: {a} takes a number");
                    return false;
                }
            },
            "--sanitizer" => match it.next().map(String::as_str) {
                Some(s @ ("address" | "none")) => sanitizer = s.to_string(),
                _ => {
                    eprintln!("xtask fuzz: --sanitizer takes address or none");
                    return false;
                }
            },
            "--help" | "-h" => {
                println!(
                    "usage: cargo xtask fuzz [--time SECONDS] [--runs N] [--max-len BYTES] \
                     [--sanitizer address|none] [TARGET...]   (targets: {})",
                    TARGETS.join(", ")
                );
                return true;
            }
            t if TARGETS.contains(&t) => targets.push(t.to_string()),
            other => {
                eprintln!(
                    "xtask fuzz: unknown argument {other:?} (targets: {})",
                    TARGETS.join(", ")
                );
                return false;
            }
        }
    }
    if targets.is_empty() {
        targets = TARGETS.iter().map(|t| t.to_string()).collect();
    }
    if !crate::nightly_components(&["rust-src"]) {
        return false;
    }
    let fuzz_dir = root().join("fuzz");
    // Each sanitizer has its own build; the working corpus is shared.
    let build_dir = target_dir().join(if sanitizer == "none" { "fuzz-nosan" } else { "fuzz" });
    let work = target_dir().join("mm-fuzz");
    let mut b = crate::nightly(&["build", "--manifest-path"]);
    b.arg(fuzz_dir.join("Cargo.toml"))
        .args(["--target", TRIPLE, "--release", "--bins", "--config"])
        .arg("profile.release.debug=\"line-tables-only\"")
        .arg("--target-dir")
        .arg(&build_dir)
        .env("RUSTFLAGS", fuzz_rustflags(&sanitizer));
    if !step(&format!("build the fuzz targets (nightly, sanitizer {sanitizer})"), b) {
        return false;
    }
    let mut ok = true;
    let mut report = vec![];
    for t in &targets {
        let corpus = work.join("corpus").join(t);
        let artifacts = work.join("artifacts").join(t);
        let seeds = fuzz_dir.join("seeds").join(t);
        let _ = std::fs::create_dir_all(&corpus);
        let _ = std::fs::create_dir_all(&artifacts);
        let mut c = Command::new(build_dir.join(TRIPLE).join("release").join(t));
        c.arg(&corpus)
            .arg(&seeds)
            .arg(match runs_limit {
                Some(n) => format!("-runs={n}"),
                None => format!("-max_total_time={time}"),
            })
            .arg("-rss_limit_mb=2048")
            .arg("-timeout=20")
            .arg(format!("-artifact_prefix={}/", artifacts.display()));
        if sanitizer == "address" {
            // What cargo-fuzz adds.
            let mut opts = std::env::var("ASAN_OPTIONS").unwrap_or_default();
            if !opts.is_empty() {
                opts.push(':');
            }
            opts.push_str("detect_odr_violation=0");
            c.env("ASAN_OPTIONS", opts);
        }
        if let Some(n) = max_len {
            c.arg(format!("-max_len={n}"));
        }
        let started = std::time::Instant::now();
        match runs_limit {
            Some(n) => println!("==> fuzz {t} for {n} executions (sanitizer {sanitizer})"),
            None => println!("==> fuzz {t} for {time} s (sanitizer {sanitizer})"),
        }
        let out = c.output();
        let (passed, text) = match out {
            Ok(o) => (
                o.status.success(),
                String::from_utf8_lossy(&o.stderr).into_owned() + &String::from_utf8_lossy(&o.stdout),
            ),
            Err(e) => (false, format!("cannot run the fuzz target {t}: {e}")),
        };
        let runs = text
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix("Done ")?.split_whitespace().next()?.parse::<u64>().ok());
        if !passed {
            ok = false;
            // The finding: the panic message and libFuzzer's summary.
            let lines: Vec<&str> = text.lines().collect();
            for (i, l) in lines.iter().enumerate() {
                if l.contains("panicked") {
                    // The panic's message follows its location.
                    for m in lines.iter().skip(i).take(4) {
                        eprintln!("    {m}");
                    }
                } else if l.contains("SUMMARY") || l.contains("Test unit written") {
                    eprintln!("    {l}");
                }
            }
        }
        let line = format!(
            "{t}: {} executions in {} s (sanitizer {sanitizer}), {}",
            runs.map_or("?".into(), |r| r.to_string()),
            started.elapsed().as_secs(),
            if passed { "no finding" } else { "FINDING (see above)" }
        );
        println!("<== {line}");
        report.push(line);
    }
    println!("fuzz summary:");
    for l in &report {
        println!("  {l}");
    }
    let _ = std::fs::write(work.join("summary.txt"), report.join("\n") + "\n");
    ok
}
