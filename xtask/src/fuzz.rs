//! `cargo xtask fuzz [--time S] [--runs N] [--max-len B] [--sanitizer
//! address|none] [TARGET...]`: runs the cargo-fuzz targets of `fuzz/`
//! (nightly, libFuzzer; AddressSanitizer unless `--sanitizer none`, which
//! builds with debug assertions and overflow checks instead and runs
//! about five times as many executions per second), each for `S` seconds
//! (default 60) or `N` executions, starting from the committed seed corpus
//! `fuzz/seeds/TARGET`. New inputs go to a working corpus under the
//! target directory, so the committed seeds do not change; a finding is
//! written under `target/mm-fuzz/artifacts/TARGET/` and fails the run.
//! Installs cargo-fuzz when it is missing.

use std::process::Command;

use crate::{root, step, target_dir};

/// The targets (`fuzz/Cargo.toml`).
pub const TARGETS: [&str; 3] = ["strace_line", "replay", "ops"];

/// `cargo +nightly fuzz` in `fuzz/`.
fn cargo_fuzz() -> Command {
    let mut c = crate::nightly(&["fuzz"]);
    c.current_dir(root().join("fuzz"));
    c
}

fn ensure_cargo_fuzz() -> bool {
    let have = cargo_fuzz().arg("--version").output().is_ok_and(|o| o.status.success());
    if have {
        return true;
    }
    let mut c = Command::new("cargo");
    c.args(["install", "cargo-fuzz", "--locked"]);
    step("cargo install cargo-fuzz", c)
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
    if !crate::nightly_components(&["rust-src"]) || !ensure_cargo_fuzz() {
        return false;
    }
    let fuzz_dir = root().join("fuzz");
    // Each sanitizer has its own build; the working corpus is shared.
    let build_dir = target_dir().join(if sanitizer == "none" { "fuzz-nosan" } else { "fuzz" });
    let work = target_dir().join("mm-fuzz");
    let build_flags: &[&str] = if sanitizer == "none" {
        &["build", "-O", "-a", "-s", "none", "--target-dir"]
    } else {
        &["build", "-O", "--target-dir"]
    };
    let mut b = cargo_fuzz();
    b.args(build_flags).arg(&build_dir);
    if !step(&format!("cargo fuzz build (nightly, sanitizer {sanitizer})"), b) {
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
        let mut c = cargo_fuzz();
        c.arg("run").args(&build_flags[1..build_flags.len() - 1]);
        c.arg("--target-dir")
            .arg(&build_dir)
            .arg(t)
            .arg(&corpus)
            .arg(&seeds)
            .arg("--")
            .arg(match runs_limit {
                Some(n) => format!("-runs={n}"),
                None => format!("-max_total_time={time}"),
            })
            .arg("-rss_limit_mb=2048")
            .arg("-timeout=20")
            .arg(format!("-artifact_prefix={}/", artifacts.display()));
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
            Err(e) => (false, format!("cannot run cargo fuzz: {e}")),
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
