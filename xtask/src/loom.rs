//! `cargo xtask loom [--exhaustive]`: the loom model checks of every
//! scenario under every policy, then the mutation table: each one-site
//! mutation of the read or write path (`mm_core::mutation`) run against
//! loom, the real-thread stress test and the reference state machine, each
//! of which must be caught by at least one of them.
//!
//! Every scenario is explored under the reference policy (`upstream`)
//! first, with its own bound. The few whose exhaustive exploration there
//! takes more than 100,000 executions run at preemption bound 4 under the
//! other policies (measured 2026-12-02: `two-writers`, `split-node` and
//! `fault-vs-split`, 42–67 s each unbounded, 3–5 s at bound 4);
//! `--exhaustive` explores them fully under every policy. Writes
//! `target/mm-loom/summary.json`, which `mmsim simulate` reads when it was
//! made from the same sources.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use serde_json::{Value, json};

use crate::fingerprint::source_fingerprint;
use crate::{cargo, root, target_dir};

/// Every mutation (`mm_core::mutation::Mutation::ALL`, by name), with the
/// loom scenarios to try first (all scenarios are tried if these miss it).
const MUTATIONS: [(&str, &str); 26] = [
    ("no-wmb-begin", "mprotect-flags,split-uprobe"),
    ("no-wmb-end", "mprotect-flags,split-uprobe"),
    ("relaxed-try-begin", "mprotect-flags,split-uprobe"),
    ("no-rmb-retry", "mprotect-flags,split-uprobe"),
    ("no-bump-lock", "two-sections,mprotect-flags"),
    ("no-bump-unlock", "mprotect-flags,two-sections"),
    ("no-bump-downgrade", "downgrade-then-write"),
    ("no-bump-trylock", "trylock"),
    ("no-publish-start", "split-uprobe"),
    ("no-publish-end", "expand,munmap-tail"),
    ("no-publish-pgoff", "split-uprobe"),
    ("no-publish-flags", "mprotect-flags"),
    ("no-publish-key", "merge-boundary,munmap-head"),
    ("no-publish-root", "split-root"),
    ("relaxed-file-reinit", "file-reuse"),
    ("no-range-check", "munmap-tail"),
    ("ino-after-retry", "file-reuse"),
    ("relaxed-vma-ref-inc", "lock-vs-mprotect,lock-vs-split,fault-vs-split"),
    ("relaxed-vma-end-read", "lock-vs-mprotect,lock-vs-split"),
    ("relaxed-vma-seq-reread", "lock-vs-mprotect,lock-vs-split"),
    ("no-vma-seq-recheck", "lock-vs-mprotect,lock-vs-split"),
    ("no-vma-mm-check", "lock-vs-reuse"),
    ("no-vma-wait-readers", "lock-vs-mprotect,lock-vs-split"),
    ("relaxed-vma-reinit", "spec-vs-reuse"),
    ("no-maps-gap-check", "maps-vs-split"),
    ("no-killable-undo", "killable-writer"),
];

/// Builds a test target and returns its executable (cargo's JSON messages).
fn build_test(name: &str, args: &[&str], envs: &[(&str, &str)]) -> Option<PathBuf> {
    let mut c = cargo();
    c.args(["test", "--no-run", "--message-format=json"]).args(args);
    for (k, v) in envs {
        c.env(k, v);
    }
    println!("==> build {name}");
    let t = Instant::now();
    let out = c.stderr(Stdio::inherit()).output().ok()?;
    println!("<== build {name}: {:.1}s", t.elapsed().as_secs_f64());
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout).lines().find_map(|l| {
        let v: Value = serde_json::from_str(l).ok()?;
        v.get("executable")?.as_str().map(PathBuf::from)
    })
}

/// One process to run, with what to call it in the log, and how long it
/// may take before it is killed (a mutation can leave a lock held and a
/// thread waiting on it forever).
struct Job {
    label: String,
    cmd: Command,
    timeout: std::time::Duration,
}

impl Job {
    fn new(label: String, cmd: Command, timeout_secs: u64) -> Job {
        Job {
            label,
            cmd,
            timeout: std::time::Duration::from_secs(timeout_secs),
        }
    }
}

/// What a job did.
struct Done {
    label: String,
    ok: bool,
    output: String,
    secs: f64,
}

/// A job in flight.
struct Running {
    index: usize,
    label: String,
    started: Instant,
    timeout: std::time::Duration,
    child: std::process::Child,
    log: PathBuf,
}

/// Runs `jobs` at most `par` at a time, logging each to
/// `target/mm-loom/logs/TAG-N.log`; returns their results in order.
fn run_jobs(tag: &str, jobs: Vec<Job>, par: usize) -> Vec<Done> {
    let mut pending: Vec<(usize, Job)> = jobs.into_iter().enumerate().collect();
    pending.reverse();
    let mut running: Vec<Running> = vec![];
    let mut done: Vec<(usize, Done)> = vec![];
    let tmp = target_dir().join("mm-loom").join("logs");
    let _ = std::fs::create_dir_all(&tmp);
    loop {
        while running.len() < par.max(1) {
            let Some((i, mut job)) = pending.pop() else { break };
            let log = tmp.join(format!("{tag}-{i}.log"));
            let file = std::fs::File::create(&log).expect("log file");
            let err = file.try_clone().expect("log file");
            match job.cmd.stdout(file).stderr(err).spawn() {
                Ok(child) => running.push(Running {
                    index: i,
                    label: job.label,
                    started: Instant::now(),
                    timeout: job.timeout,
                    child,
                    log,
                }),
                Err(e) => done.push((
                    i,
                    Done {
                        label: job.label,
                        ok: false,
                        output: format!("cannot start: {e}"),
                        secs: 0.0,
                    },
                )),
            }
        }
        if running.is_empty() {
            break;
        }
        let mut k = 0;
        while k < running.len() {
            let r = &mut running[k];
            let late = r.started.elapsed() > r.timeout;
            if late {
                let _ = r.child.kill();
            }
            match r.child.try_wait() {
                Ok(Some(status)) => {
                    let r = running.remove(k);
                    let mut output = std::fs::read_to_string(&r.log).unwrap_or_default();
                    if late {
                        output.push_str(&format!("\n(killed after {}s)\n", r.timeout.as_secs()));
                    }
                    done.push((
                        r.index,
                        Done {
                            label: r.label,
                            ok: status.success() && !late,
                            output,
                            secs: r.started.elapsed().as_secs_f64(),
                        },
                    ));
                }
                _ => k += 1,
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    done.sort_by_key(|d| d.0);
    done.into_iter().map(|(_, d)| d).collect()
}

/// Result rows (`policy scenario verdict executions seconds bound first`)
/// printed by the loom binary (after libtest's `test NAME ... `, which
/// `--nocapture` puts on the first row's line).
fn rows(output: &str) -> Vec<Vec<String>> {
    output
        .lines()
        .map(|l| match l.strip_prefix("test ") {
            Some(rest) => rest.split_once(" ... ").map_or(l, |(_, r)| r),
            None => l,
        })
        .map(|l| l.split('\t').map(str::to_string).collect::<Vec<_>>())
        .filter(|r| r.len() >= 6 && (r[2] == "violation-found" || r[2] == "no-violation"))
        .collect()
}

fn loom_cmd(bin: &Path, test: &str, envs: &[(&str, &str)]) -> Command {
    let mut c = Command::new(bin);
    c.args([test, "--exact", "--nocapture", "--test-threads", "1"])
        .env("RUST_BACKTRACE", "0");
    if let Ok(b) = std::env::var("LOOM_BOUND") {
        c.env("LOOM_BOUND", b);
    }
    for (k, v) in envs {
        c.env(k, v);
    }
    c
}

/// What the loom binary lists: its scenarios, and the registered
/// policies with whether each is expected to be sound.
fn listing(bin: &Path) -> (Vec<String>, Vec<(String, bool)>) {
    let out = loom_cmd(bin, "list_scenarios", &[("MM_LOOM_LIST", "1")]).output();
    let text = out
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let mut scenarios = vec![];
    let mut policies = vec![];
    for l in text.lines() {
        let f: Vec<&str> = l.split('\t').collect();
        match f.as_slice() {
            ["scenario", name, ..] => scenarios.push(name.to_string()),
            ["policy", name, sound] => policies.push((name.to_string(), *sound == "sound")),
            _ => {}
        }
    }
    (scenarios, policies)
}

/// Which check detected a mutation, from a failed stress or state-machine
/// run's output.
fn classify(output: &str) -> String {
    if output.contains("mm_lock_seq invariant broken") {
        "yes (seq invariant)".into()
    } else if output.contains("published") || output.contains("disagrees") {
        "yes (published copy)".into()
    } else if output.contains("wrong answers") || output.contains("validated") {
        "yes (wrong answer)".into()
    } else {
        "yes".into()
    }
}

/// The policy every scenario runs under exhaustively (the kernel's).
const REFERENCE: &str = "upstream";

/// Executions above which a scenario explored exhaustively under the
/// reference policy is bounded under the others.
const HEAVY: u64 = 100_000;

/// The preemption bound of those scenarios under the other policies.
const HEAVY_BOUND: usize = 4;

/// `cargo xtask loom [--exhaustive]`.
pub fn loom(args: &[String]) -> bool {
    let exhaustive = args.iter().any(|a| a == "--exhaustive");
    if let Some(a) = args.iter().find(|a| *a != "--exhaustive") {
        eprintln!("xtask loom: unknown argument {a:?} (usage: cargo xtask loom [--exhaustive])");
        return false;
    }
    let t0 = Instant::now();
    let out = target_dir().join("mm-loom");
    let _ = std::fs::remove_dir_all(&out);
    if let Err(e) = std::fs::create_dir_all(&out) {
        eprintln!("xtask: cannot create {}: {e}", out.display());
        return false;
    }
    let fingerprint = source_fingerprint(&root());
    let loom_target = target_dir().join("loom");
    let loom_target = loom_target.to_string_lossy().into_owned();
    let loom_env = [("RUSTFLAGS", "--cfg loom"), ("CARGO_TARGET_DIR", loom_target.as_str())];
    let Some(loom_bin) = build_test(
        "loom model checks",
        &[
            "--release",
            "-p",
            "mm-spec",
            "--features",
            "mutations",
            "--test",
            "loom",
        ],
        &loom_env,
    ) else {
        eprintln!("xtask: cannot build the loom tests");
        return false;
    };
    let Some(stress_bin) = build_test(
        "stress test (mutations)",
        &["-p", "mm-spec", "--features", "mutations", "--test", "stress"],
        &[],
    ) else {
        return false;
    };
    let Some(machine_bin) = build_test(
        "state machine (mutations)",
        &[
            "-p",
            "mm-ops",
            "--features",
            "proptest,mutations",
            "--test",
            "state_machine",
        ],
        &[],
    ) else {
        return false;
    };
    let par = std::thread::available_parallelism().map_or(2, |n| n.get()).min(8);

    let (names, policies) = listing(&loom_bin);
    if names.is_empty() || policies.is_empty() {
        eprintln!("xtask: the loom binary listed no scenarios or no policies");
        return false;
    }

    // 1. Every scenario under every registered policy, one job per pair
    //    (a policy expected unsound is reported, and must fail somewhere);
    //    Jann Horn's two scenarios, which must be caught; the scenario
    //    shape checks. The reference policy goes first: a scenario whose
    //    exhaustive exploration under it takes more than HEAVY executions
    //    runs at preemption bound HEAVY_BOUND under the other policies,
    //    unless `--exhaustive`.
    let (reference, reference_sound) = policies
        .iter()
        .find(|(p, _)| p == REFERENCE)
        .or_else(|| policies.iter().find(|(_, sound)| *sound))
        .unwrap_or(&policies[0])
        .clone();
    let job = |policy: &str, sc: &str, bound: Option<usize>| {
        let mut c = loom_cmd(
            &loom_bin,
            "policies",
            &[("MM_LOOM_POLICY", policy), ("MM_LOOM_ONLY", sc)],
        );
        if let Some(b) = bound {
            c.env("LOOM_BOUND", b.to_string());
        }
        Job::new(format!("{policy} {sc}"), c, 1800)
    };
    let mut jobs = vec![];
    let mut expect = vec![];
    for sc in &names {
        jobs.push(job(&reference, sc, None));
        expect.push(reference_sound);
    }
    jobs.push(Job::new(
        "seed-v1 halves (Jann Horn's two scenarios)".into(),
        loom_cmd(&loom_bin, "seed_v1_violations_are_found", &[]),
        600,
    ));
    expect.push(true);
    jobs.push(Job::new(
        "scenario shapes".into(),
        loom_cmd(&loom_bin, "scenarios_exercise_what_they_claim", &[]),
        600,
    ));
    expect.push(true);
    println!(
        "==> loom: {} scenarios x {} policies, seed-v1's halves, shapes ({par} at a time); {reference} first",
        names.len(),
        policies.len()
    );
    let t = Instant::now();
    let mut done = run_jobs("reference", jobs, par);
    // The scenarios too large to explore exhaustively under every policy,
    // by their exploration under the reference policy.
    let mut heavy = vec![];
    for d in &done {
        for r in rows(&d.output) {
            let execs = r[3].parse::<u64>().unwrap_or(0);
            if !exhaustive && r[0] == reference && r[5] == "none" && execs > HEAVY {
                heavy.push((r[1].clone(), execs));
            }
        }
    }
    if !heavy.is_empty() {
        let list: Vec<String> = heavy.iter().map(|(s, n)| format!("{s} ({n} executions)")).collect();
        println!(
            "    explored exhaustively under {reference} with more than {HEAVY} executions, so run at \
             preemption bound {HEAVY_BOUND} under the other policies (--exhaustive: unbounded): {}",
            list.join(", ")
        );
    }
    let mut jobs = vec![];
    for (policy, sound) in &policies {
        if *policy == reference {
            continue;
        }
        for sc in &names {
            let bound = heavy.iter().any(|(h, _)| h == sc).then_some(HEAVY_BOUND);
            jobs.push(job(policy, sc, bound));
            expect.push(*sound);
        }
    }
    done.extend(run_jobs("policies", jobs, par));
    let mut ok = true;
    let mut all_rows = vec![];
    for (d, &expect_pass) in done.iter().zip(&expect) {
        let r = rows(&d.output);
        // A policy expected unsound may fail (that is the point); the
        // others must pass, and every job but the shape check must report
        // its rows.
        if (expect_pass && !d.ok) || (r.is_empty() && !d.label.starts_with("scenario shapes")) {
            ok = false;
            println!("FAILED: {} ({:.1}s)\n{}", d.label, d.secs, tail(&d.output, 30));
        }
        all_rows.extend(r);
    }
    let v1 = all_rows
        .iter()
        .filter(|r| r[0] == "seed-v1" && r[2] == "violation-found")
        .count();
    if v1 == 0 {
        ok = false;
        println!("FAILED: seed-v1 passed every scenario; its known bugs went unseen");
    }
    println!(
        "<== loom policies: {} in {:.1}s",
        if ok { "ok" } else { "FAILED" },
        t.elapsed().as_secs_f64()
    );
    println!();
    println!(
        "{:<16} {:<22} {:<16} {:>10} {:>8} {:>6}",
        "POLICY", "SCENARIO", "VERDICT", "EXECUTIONS", "SECONDS", "BOUND"
    );
    for r in &all_rows {
        println!(
            "{:<16} {:<22} {:<16} {:>10} {:>8} {:>6}",
            r[0], r[1], r[2], r[3], r[4], r[5]
        );
    }

    // 2. The mutation table.
    let mut jobs = vec![];
    for (m, targets) in MUTATIONS {
        jobs.push(Job::new(
            format!("{m} loom"),
            loom_cmd(
                &loom_bin,
                "mutation_is_detected",
                &[("MM_MUTATION", m), ("MM_LOOM_ONLY", targets)],
            ),
            1800,
        ));
        let mut s = Command::new(&stress_bin);
        s.args(["mutation_run", "--exact", "--nocapture"])
            .env("MM_MUTATION", m)
            .env("RUST_BACKTRACE", "0");
        jobs.push(Job::new(format!("{m} stress"), s, 60));
        let mut sm = Command::new(&machine_bin);
        sm.args(["model_matches_reference", "--exact"])
            .env("MM_MUTATION", m)
            .env("PROPTEST_CASES", "64")
            // A mutation's failures are not regressions to keep.
            .env("PROPTEST_DISABLE_FAILURE_PERSISTENCE", "1")
            .env("PROPTEST_MAX_SHRINK_ITERS", "64")
            .env("RUST_BACKTRACE", "0");
        jobs.push(Job::new(format!("{m} state-machine"), sm, 300));
    }
    println!("\n==> mutations: {} x (loom, stress, state machine)", MUTATIONS.len());
    let t = Instant::now();
    let mut done = run_jobs("mutations", jobs, par);
    // A mutation the target scenarios miss is tried on every scenario.
    for (i, (m, _)) in MUTATIONS.iter().enumerate() {
        if !done[3 * i].ok {
            println!("    {m}: not caught by its target scenarios; trying all");
            let again = run_jobs(
                &format!("retry-{m}"),
                vec![Job::new(
                    format!("{m} loom (all scenarios)"),
                    loom_cmd(&loom_bin, "mutation_is_detected", &[("MM_MUTATION", m)]),
                    3600,
                )],
                1,
            );
            done[3 * i] = again.into_iter().next().expect("one job");
        }
    }
    println!("<== mutations in {:.1}s", t.elapsed().as_secs_f64());
    println!();
    println!(
        "{:<20} {:<44} {:<22} {:<22}",
        "MUTATION", "LOOM", "STRESS", "STATE MACHINE"
    );
    let mut table = vec![];
    for (i, (m, _)) in MUTATIONS.iter().enumerate() {
        let (l, s, sm) = (&done[3 * i], &done[3 * i + 1], &done[3 * i + 2]);
        // loom's test passes when it detected the mutation.
        let loom_cell = if l.ok {
            rows(&l.output)
                .into_iter()
                .find(|r| r[2] == "violation-found")
                .map_or("yes".into(), |r| format!("yes: {} after {} executions", r[1], r[3]))
        } else {
            "no".into()
        };
        // The stress and state-machine tests fail when they detect it.
        let stress_cell = if s.ok { "no".into() } else { classify(&s.output) };
        let sm_cell = if sm.ok { "no".into() } else { classify(&sm.output) };
        let detected = l.ok || !s.ok || !sm.ok;
        if !detected {
            ok = false;
        }
        println!(
            "{m:<20} {loom_cell:<44} {stress_cell:<22} {sm_cell:<22}{}",
            if detected { "" } else { "  UNDETECTED" }
        );
        table.push(json!({"mutation": m, "loom": loom_cell, "stress": stress_cell, "state_machine": sm_cell, "detected": detected}));
    }

    let commit = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let dirty = git(&["status", "--porcelain"]).is_some_and(|s| !s.is_empty());
    let summary = json!({
        "date": utc_now(),
        "commit": commit,
        "dirty": dirty,
        "source_fingerprint": fingerprint,
        "complete": ok,
        "exhaustive": exhaustive,
        "bounded_under_other_policies": heavy.iter().map(|(s, n)| json!({"scenario": s, "reference_executions": n, "bound": HEAVY_BOUND})).collect::<Vec<_>>(),
        "rows": all_rows.iter().map(|r| json!({
            "policy": r[0], "scenario": r[1], "verdict": r[2],
            "executions": r[3].parse::<u64>().unwrap_or(0), "seconds": r[4], "bound": r[5],
            "first_violation": r.get(6).cloned().unwrap_or_default(),
        })).collect::<Vec<_>>(),
        "mutations": table,
    });
    let text = serde_json::to_string_pretty(&summary).unwrap_or_default();
    if let Err(e) = std::fs::write(out.join("summary.json"), text) {
        eprintln!("xtask: cannot write the loom summary: {e}");
        ok = false;
    }
    println!(
        "\nloom: {} in {:.0}s (commit {commit}{}, sources {fingerprint}); summary in target/mm-loom/summary.json",
        if ok {
            "every policy clean, every mutation detected"
        } else {
            "FAILED"
        },
        t0.elapsed().as_secs_f64(),
        if dirty { ", uncommitted changes" } else { "" }
    );
    ok
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").arg("-C").arg(root()).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The current UTC time, ISO 8601 (from `date`, which every CI machine has).
fn utc_now() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}
