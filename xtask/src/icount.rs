//! Deterministic per-operation costs: `benches/icount.rs` (`mm-icount`)
//! under valgrind's callgrind with its cache simulator. Instructions and
//! simulated cache misses do not depend on the machine's load or clock,
//! so they tell a policy's code cost apart from noise; wall-clock figures
//! stay for what they cannot show (fences, contention).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{cargo, step, target_dir};

/// The operations `mm-icount` measures: (name, what one operation is).
pub const OPS: [(&str, &str); 8] = [
    ("spec_lookup", "one speculative vma_lookup"),
    ("mmap_munmap_4k", "mmap 4 KiB (merging) + munmap"),
    ("mmap_munmap_4k_own", "mmap 4 KiB in a hole (own VMA) + munmap"),
    ("mprotect_toggle", "mprotect rw + mprotect r of one page"),
    ("brk1", "brk +1 page + brk -1 page"),
    ("maps_render", "one /proc/PID/maps line"),
    ("write_lock_unlock", "mmap_write_lock + unlock"),
    ("try_begin_retry", "try_begin + retry"),
];

/// Iterations of each measured loop.
const ITERS: u64 = 2000;

/// Per-operation costs of one (policy, VMA count).
#[derive(Clone, Debug)]
pub struct Cost {
    /// Operation (one of [`OPS`]).
    pub op: String,
    /// Policy name.
    #[allow(dead_code)]
    pub policy: String,
    /// VMA count parameter.
    pub vmas: u64,
    /// Instructions per operation.
    pub ir: f64,
    /// Simulated L1 data misses (reads + writes) per operation.
    pub d1_miss: f64,
    /// Simulated last-level data misses per operation.
    pub ll_miss: f64,
}

/// The heaviest functions of one operation (exclusive instructions).
#[derive(Clone, Debug)]
pub struct Profile {
    /// Operation.
    pub op: String,
    /// Instructions per operation in total.
    pub ir: f64,
    /// `(function, instructions per operation)`, heaviest first.
    pub top: Vec<(String, f64)>,
    /// `(source file, instructions per operation)`, heaviest first: the
    /// same instructions counted where their code is written, so that
    /// inlined code (tree walks, lock steps, bounds checks) is counted
    /// under its own file rather than under the function it was inlined
    /// into.
    pub files: Vec<(String, f64)>,
}

/// A readable name for a source file of a callgrind line: relative to the
/// workspace, the Rust library's files as `std: PATH`, the C library's as
/// `libc: FILE`.
pub fn source_label(file: &str) -> String {
    let root = crate::root();
    let root = format!("{}/", root.display());
    if let Some(r) = file.strip_prefix(&root) {
        return r.to_string();
    }
    if let Some(i) = file.find("/library/")
        && file.starts_with("/rustc/")
    {
        return format!("std: {}", &file[i + "/library/".len()..]);
    }
    if file.starts_with("./") || file.starts_with("/usr/") {
        let base = file.rsplit('/').next().unwrap_or(file);
        return format!("libc: {base}");
    }
    if file.contains("/.cargo/registry/") {
        // registry/src/INDEX/CRATE-VERSION/src/FILE
        let mut parts = file.split('/').skip_while(|p| *p != "src").skip(2);
        let krate = parts.next().unwrap_or("?");
        let rest: Vec<&str> = parts.collect();
        return format!("{krate}: {}", rest.join("/"));
    }
    file.to_string()
}

/// What a source file is for, for the report's summary by concern.
pub fn concern(label: &str) -> &'static str {
    if label.starts_with("crates/mm-core/src/tree/") || label == "crates/mm-core/src/ordering/keys.rs" {
        "the VMA tree (walks, key search, entry shifts, gap maxima, publication)"
    } else if label.ends_with("vma_lock.rs") || label.ends_with("ordering.rs") {
        "per-VMA locks and the barrier policy (`vma_start_write`, ordering)"
    } else if label.ends_with("mmap_lock.rs") || label.ends_with("sync.rs") || label.starts_with("parking_lot") {
        "`mmap_lock` (lock, unlock, `mm_lock_seq`)"
    } else if label.starts_with("crates/mm-core/") {
        "VMA slots and the write section's position (`vma_iter`, slab, publication)"
    } else if label.starts_with("crates/mm-ops/") {
        "the system call's own rules (mm-ops: checks, accounting, merge decisions)"
    } else if label.starts_with("crates/mm-spec/") {
        "the speculative reader (mm-spec: begin, validate, range check)"
    } else if label == "std: core/src/sync/atomic.rs" {
        "atomic accesses inlined (`READ_ONCE`/`WRITE_ONCE` loads and stores, lock RMWs)"
    } else if label == "std: core/src/slice/index.rs" || label == "std: alloc/src/vec/mod.rs" {
        "indexing inlined (bounds checks, address arithmetic)"
    } else if label.starts_with("std: ") {
        "other Rust library code inlined (`Option`/`Result`, iterators, copies)"
    } else if label.starts_with("libc: ") {
        "C library (`memmove`/`memcpy`, allocator)"
    } else if label.starts_with("benches/") {
        "the measuring loop"
    } else {
        "other"
    }
}

/// The nine event counts of a callgrind_annotate line, and the rest of it.
fn events(line: &str) -> Option<([f64; 9], &str)> {
    let mut v = [0.0; 9];
    let mut rest = line.trim_start();
    for slot in &mut v {
        let tok_end = rest.find(char::is_whitespace)?;
        let tok = &rest[..tok_end];
        *slot = if tok == "." {
            0.0
        } else {
            tok.replace(',', "").parse().ok()?
        };
        rest = rest[tok_end..].trim_start();
        if rest.starts_with('(') {
            let close = rest.find(')')?;
            rest = rest[close + 1..].trim_start();
        }
    }
    Some((v, rest))
}

fn valgrind_ok() -> bool {
    Command::new("valgrind")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
        && Command::new("callgrind_annotate").arg("--version").output().is_ok()
}

fn annotate(out: &Path, inclusive: bool) -> Option<String> {
    let o = Command::new("callgrind_annotate")
        .arg(format!("--inclusive={}", if inclusive { "yes" } else { "no" }))
        .arg("--threshold=100")
        .arg(out)
        .output()
        .ok()?;
    o.status
        .success()
        .then(|| String::from_utf8_lossy(&o.stdout).into_owned())
}

/// Runs `mm-icount` under callgrind; returns the output file and stdout.
fn callgrind(
    bin: &Path,
    dir: &Path,
    tag: &str,
    args: &[String],
    extra: &[String],
) -> Result<(PathBuf, String), String> {
    let out = dir.join(format!("callgrind.{tag}.out"));
    let o = Command::new("valgrind")
        .args(["--tool=callgrind", "--cache-sim=yes"])
        .arg(format!("--callgrind-out-file={}", out.display()))
        .args(extra)
        .arg(bin)
        .args(args)
        .output()
        .map_err(|e| format!("valgrind: {e}"))?;
    if !o.status.success() {
        return Err(format!(
            "valgrind {tag}: {}",
            String::from_utf8_lossy(&o.stderr).lines().last().unwrap_or("")
        ));
    }
    Ok((out, String::from_utf8_lossy(&o.stdout).into_owned()))
}

/// The per-operation divisor `mm-icount` reports for maps (lines × rounds).
fn maps_divisor(stdout: &str) -> f64 {
    let get = |k: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(k)?.trim().parse::<f64>().ok())
            .unwrap_or(1.0)
    };
    get("lines\t") * get("maps_iters\t")
}

/// Measures every operation for each `(policy, vmas)` in `runs`, and
/// profiles every operation of the first run. `Err` says why nothing
/// could be measured (no valgrind, a failed build).
pub fn measure(runs: &[(String, u64)]) -> Result<(Vec<Cost>, Vec<Profile>), String> {
    if !valgrind_ok() {
        return Err("valgrind (with callgrind_annotate) is not installed".into());
    }
    let mut b = cargo();
    b.args(["build", "--release", "-p", "mm-benches", "--bin", "mm-icount"]);
    if !step("build mm-icount", b) {
        return Err("mm-icount did not build".into());
    }
    let bin = target_dir().join("release").join("mm-icount");
    let dir = target_dir().join("mm-bench").join("callgrind");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let mut costs = vec![];
    for (policy, vmas) in runs {
        println!("    callgrind: {policy} at {vmas} VMAs");
        let args = [policy.clone(), vmas.to_string(), ITERS.to_string()];
        let (out, stdout) = callgrind(&bin, &dir, &format!("{policy}-{vmas}"), &args, &[])?;
        let text = annotate(&out, true).ok_or("callgrind_annotate failed")?;
        for (op, _) in OPS {
            let needle = format!(":mm_icount::measure_{op} [");
            let Some((ev, _)) = text.lines().filter(|l| l.contains(&needle)).find_map(events) else {
                return Err(format!("no inclusive cost of measure_{op} in {}", out.display()));
            };
            let div = if op == "maps_render" {
                maps_divisor(&stdout)
            } else {
                ITERS as f64
            };
            costs.push(Cost {
                op: op.to_string(),
                policy: policy.clone(),
                vmas: *vmas,
                ir: ev[0] / div,
                d1_miss: (ev[4] + ev[5]) / div,
                ll_miss: (ev[7] + ev[8]) / div,
            });
        }
    }
    // Profiles: each operation alone (callgrind collects only inside its
    // measure function), exclusive cost per function.
    let mut profiles = vec![];
    if let Some((policy, vmas)) = runs.first() {
        for (op, _) in OPS {
            let args = [policy.clone(), vmas.to_string(), ITERS.to_string()];
            let toggle = [format!("--toggle-collect=mm_icount::measure_{op}")];
            let (out, stdout) = callgrind(&bin, &dir, &format!("profile-{op}"), &args, &toggle)?;
            let text = annotate(&out, false).ok_or("callgrind_annotate failed")?;
            let div = if op == "maps_render" {
                maps_divisor(&stdout)
            } else {
                ITERS as f64
            };
            let (total, top, files) = parse_profile(&text, div);
            profiles.push(Profile {
                op: op.to_string(),
                ir: total,
                top,
                files,
            });
        }
    }
    Ok((costs, profiles))
}

/// `cargo xtask icount [POLICY VMAS...]`: the table alone (default:
/// upstream at 1,024 VMAs), for quick design iterations.
pub fn icount(args: &[String]) -> bool {
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!(
            "cargo xtask icount [POLICY [VMAS...]]\n\n\
             Counts instructions and cache misses per operation under callgrind\n\
             (valgrind), with each operation's costliest functions and source\n\
             files. POLICY: a registered barrier policy (default upstream);\n\
             VMAS: address space sizes (default 1024). Writes nothing outside\n\
             the target directory."
        );
        return true;
    }
    let policy = args.first().cloned().unwrap_or_else(|| "upstream".into());
    let vmas: Vec<u64> = if args.len() > 1 {
        args[1..].iter().filter_map(|a| a.parse().ok()).collect()
    } else {
        vec![1024]
    };
    let runs: Vec<(String, u64)> = vmas.iter().map(|&v| (policy.clone(), v)).collect();
    match measure(&runs) {
        Ok((costs, profiles)) => {
            println!(
                "{:<18} {:>7} {:>10} {:>8} {:>8}",
                "OP", "VMAS", "INSTR/OP", "D1 MISS", "LL MISS"
            );
            for c in &costs {
                println!(
                    "{:<18} {:>7} {:>10.0} {:>8.2} {:>8.2}",
                    c.op, c.vmas, c.ir, c.d1_miss, c.ll_miss
                );
            }
            for p in &profiles {
                println!(
                    "\n{} ({:.0} instructions per operation at {} VMAs):",
                    p.op, p.ir, runs[0].1
                );
                for (f, ir) in &p.top {
                    println!("  {ir:>8.0}  {f}");
                }
                println!("  by source file:");
                for (f, ir) in p.files.iter().take(12) {
                    println!("  {ir:>8.0}  {f}");
                }
            }
            true
        }
        Err(e) => {
            eprintln!("xtask icount: {e}");
            false
        }
    }
}

/// Reads the function table of a `callgrind_annotate --inclusive=no`
/// report: the total, the 8 costliest functions (inlined code summed into
/// the function it was inlined in) and the cost per source file, each
/// divided by `div`.
#[allow(clippy::type_complexity)]
fn parse_profile(text: &str, div: f64) -> (f64, Vec<(String, f64)>, Vec<(String, f64)>) {
    let mut total = 0.0;
    let mut top = vec![];
    let mut files: Vec<(String, f64)> = vec![];
    let mut in_table = false;
    for l in text.lines() {
        if l.contains("PROGRAM TOTALS") {
            if let Some((ev, _)) = events(l) {
                total = ev[0] / div;
            }
            continue;
        }
        if l.trim_start().starts_with("Ir ") && l.contains("file:function") {
            in_table = true;
            continue;
        }
        if !in_table {
            continue;
        }
        if l.trim().is_empty() {
            if top.is_empty() {
                continue;
            }
            // The function table ends; annotated source follows.
            break;
        }
        if let Some((ev, rest)) = events(l) {
            let full = rest.split(" [").next().unwrap_or(rest).trim();
            let name = full.rsplit_once(':').map_or(full, |(_, f)| f);
            let file = full.split_once(':').map_or("???", |(f, _)| f);
            if ev[0] > 0.0 {
                top.push((name.to_string(), ev[0] / div));
                let label = source_label(file);
                match files.iter_mut().find(|(g, _): &&mut (String, f64)| *g == label) {
                    Some(e) => e.1 += ev[0] / div,
                    None => files.push((label, ev[0] / div)),
                }
            }
        }
    }
    files.sort_by(|a, b| b.1.total_cmp(&a.1));
    // Inlined code is listed per source file: sum per function.
    let mut by_fn: Vec<(String, f64)> = vec![];
    for (f, ir) in top {
        match by_fn.iter_mut().find(|(g, _)| *g == f) {
            Some(e) => e.1 += ir,
            None => by_fn.push((f, ir)),
        }
    }
    by_fn.sort_by(|a, b| b.1.total_cmp(&a.1));
    let mut top = by_fn;
    top.truncate(8);
    (total, top, files)
}

#[cfg(test)]
mod tests {
    use super::{concern, parse_profile};

    /// The head of a `callgrind_annotate --inclusive=no` report of the brk
    /// loop (valgrind 3.19, 2,000 rounds), shortened.
    const SAMPLE: &str = include_str!("icount_sample.txt");

    /// Each function's cost per round, the total, and the files, read back
    /// from the report (the parser once found no table in this format).
    #[test]
    fn profiles_are_read_from_callgrind_annotate() {
        let (total, top, files) = parse_profile(SAMPLE, 2000.0);
        assert_eq!(total, 1_938_223.0 / 2000.0);
        assert!(!top.is_empty(), "no function read");
        assert_eq!(top[0].0, "sys_brk");
        assert!(top[0].1 > 134.0, "{top:?}");
        assert!(
            files.iter().any(|(f, ir)| f.contains("tree/update.rs") && *ir == 132.0),
            "{files:?}"
        );
    }

    /// The lockless walk's key search is the tree's, though it lives with
    /// the memory-ordering code; the policies' code is not.
    #[test]
    fn concerns_follow_what_the_code_does() {
        let tree = concern("crates/mm-core/src/tree/walk.rs");
        assert_eq!(concern("crates/mm-core/src/ordering/keys.rs"), tree);
        assert_ne!(concern("crates/mm-core/src/ordering.rs"), tree);
        assert_ne!(concern("crates/mm-core/src/vma_iter.rs"), tree);
        assert_eq!(
            concern("std: core/src/slice/index.rs"),
            concern("std: alloc/src/vec/mod.rs")
        );
    }
}
