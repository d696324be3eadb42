//! loom model checks of the speculation protocol, through the project's own
//! code: `MmStruct`, `MmapLock` (a loom spin lock under `cfg(loom)`), the
//! barrier policies, the VMA tree and slots, the file table (a loom mutex)
//! and the mm-ops system calls, all built on the `cfg(loom)` facade.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p mm-spec --test loom
//! --release --features mutations` (what `cargo xtask loom` does). Each
//! (policy, scenario) is explored over all interleavings unless the
//! scenario gives a preemption bound (`LOOM_BOUND=N|none` overrides). A
//! reader result that differs from every state the address space had at
//! the sequence number it validated against is a violation.
//!
//! `MM_LOOM_ONLY=a,b` restricts the scenarios; `MM_MUTATION=name` (feature
//! `mutations`) runs `mutation_is_detected` instead of the policy checks.
#![cfg(loom)]

mod harness;
mod scenarios;

use harness::{Scenario, Verdict, check, check_shape};
use mm_core::sync::AtomicU32;
use mm_core::{BarrierPolicy, PolicyKind, PolicyVisitor, SeedV1, Upstream};
use scenarios::{SCENARIOS, by_name};

/// `seed-v1` on the reader side only (sound `upstream` writer): Jann Horn's
/// first scenario, a load-acquire cannot end a read section.
struct V1Reader;
impl BarrierPolicy for V1Reader {
    const NAME: &'static str = "seed-v1-reader";
    fn write_begin(s: &AtomicU32, new: u32) {
        Upstream::write_begin(s, new)
    }
    fn write_end(s: &AtomicU32, new: u32) {
        Upstream::write_end(s, new)
    }
    fn read_begin(s: &AtomicU32) -> Option<u32> {
        SeedV1::read_begin(s)
    }
    fn read_retry(s: &AtomicU32, start: u32) -> bool {
        SeedV1::read_retry(s, start)
    }
}

/// `seed-v1` on the writer side only (sound `upstream` reader): Jann Horn's
/// second scenario, a store-release cannot begin a write section.
struct V1Writer;
impl BarrierPolicy for V1Writer {
    const NAME: &'static str = "seed-v1-writer";
    fn write_begin(s: &AtomicU32, new: u32) {
        SeedV1::write_begin(s, new)
    }
    fn write_end(s: &AtomicU32, new: u32) {
        SeedV1::write_end(s, new)
    }
    fn read_begin(s: &AtomicU32) -> Option<u32> {
        Upstream::read_begin(s)
    }
    fn read_retry(s: &AtomicU32, start: u32) -> bool {
        Upstream::read_retry(s, start)
    }
}

fn mutation() -> Option<&'static str> {
    mm_core::mutation::selected().map(|m| m.name())
}

/// The scenarios to run (`MM_LOOM_ONLY` restricts them, in its order).
fn selected() -> Vec<&'static Scenario> {
    match std::env::var("MM_LOOM_ONLY") {
        Ok(list) if !list.is_empty() => list.split(',').map(by_name).collect(),
        _ => SCENARIOS.iter().collect(),
    }
}

/// Prints one result row and appends it to `$MM_LOOM_OUT/rows.tsv`:
/// policy, scenario, verdict, executions, seconds, bound, first violation.
fn row(policy: &str, sc: &Scenario, v: &Verdict) {
    let verdict = if v.violation.is_some() {
        "violation-found"
    } else {
        "no-violation"
    };
    let first = v
        .violation
        .as_deref()
        .map(|m| m.lines().next().unwrap_or("").replace('\t', " "))
        .unwrap_or_default();
    let line = format!(
        "{policy}\t{}\t{verdict}\t{}\t{:.1}\t{}\t{first}",
        sc.name,
        v.executions,
        v.secs,
        v.bound.map_or("none".into(), |b| b.to_string())
    );
    println!("{line}");
    if let Some(dir) = std::env::var_os("MM_LOOM_OUT") {
        use std::io::Write;
        let path = std::path::Path::new(&dir).join("rows.tsv");
        if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
            let _ = writeln!(f, "{line}");
        }
    }
}

/// Checks the selected scenarios under one policy; returns the
/// violations.
struct CheckPolicy;

impl PolicyVisitor for CheckPolicy {
    type Output = Vec<String>;
    fn visit<Pol: BarrierPolicy>(self) -> Vec<String> {
        let mut bad = vec![];
        for sc in selected() {
            let v = check::<Pol>(sc);
            row(Pol::NAME, sc, &v);
            if let Some(m) = v.violation {
                bad.push(format!("{}: {m}", sc.name));
            }
        }
        bad
    }
}

/// Every registered policy (`MM_LOOM_POLICY=a,b` restricts them) on the
/// selected scenarios. A policy the registry expects to be sound must be
/// clean; the others (seed-v1) are reported, and `cargo xtask loom`
/// requires a violation somewhere.
#[test]
fn policies() {
    if mutation().is_some() {
        return;
    }
    let chosen: Vec<PolicyKind> = match std::env::var("MM_LOOM_POLICY") {
        Ok(list) if !list.is_empty() => list
            .split(',')
            .map(|n| PolicyKind::from_name(n).unwrap_or_else(|| panic!("no policy {n}")))
            .collect(),
        _ => PolicyKind::ALL.to_vec(),
    };
    for p in chosen {
        let bad = p.visit(CheckPolicy);
        assert!(!p.expected_sound() || bad.is_empty(), "{p} violations: {bad:#?}");
    }
}

/// Jann Horn's two scenarios: each half of seed-v1, paired with a sound
/// other half, must be caught.
#[test]
fn seed_v1_violations_are_found() {
    if mutation().is_some() || std::env::var("MM_LOOM_ONLY").is_ok() {
        return;
    }
    for (policy, name, v) in [
        (
            V1Reader::NAME,
            "mprotect-flags",
            check::<V1Reader>(by_name("mprotect-flags")),
        ),
        (
            V1Writer::NAME,
            "mprotect-flags",
            check::<V1Writer>(by_name("mprotect-flags")),
        ),
        (
            V1Writer::NAME,
            "split-uprobe",
            check::<V1Writer>(by_name("split-uprobe")),
        ),
    ] {
        row(policy, by_name(name), &v);
        assert!(v.violation.is_some(), "loom should find seed-v1's bug in {name}");
    }
}

/// With `MM_MUTATION` set, some scenario must find a violation. Stops at
/// the first one unless `MM_LOOM_ALL` is set.
#[test]
fn mutation_is_detected() {
    let Some(m) = mutation() else { return };
    let all = std::env::var("MM_LOOM_ALL").is_ok();
    let mut found = vec![];
    for sc in selected() {
        let v = check::<Upstream>(sc);
        row(&format!("upstream-{m}"), sc, &v);
        if v.violation.is_some() {
            found.push(sc.name);
            if !all {
                break;
            }
        }
    }
    assert!(!found.is_empty(), "mutation {m} was not detected by any scenario");
}

/// Each scenario still does what it claims (a node split, a slot reuse).
#[test]
fn scenarios_exercise_what_they_claim() {
    if mutation().is_some() {
        return;
    }
    for sc in SCENARIOS {
        check_shape::<Upstream>(sc);
    }
}

/// Lists the scenarios and the registered policies (for `cargo xtask
/// loom`) when `MM_LOOM_LIST` is set.
#[test]
fn list_scenarios() {
    if std::env::var("MM_LOOM_LIST").is_err() {
        return;
    }
    for sc in SCENARIOS {
        println!("scenario\t{}\t{}", sc.name, sc.about);
    }
    for p in PolicyKind::ALL {
        println!(
            "policy\t{}\t{}",
            p.name(),
            if p.expected_sound() { "sound" } else { "unsound" }
        );
    }
}
