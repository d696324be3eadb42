//! `cargo xtask bench [--quick]`: runs the criterion suite
//! (`benches/benches/mm.rs`), reads criterion's own estimates and samples
//! back, and writes `target/mm-bench/summary.json`, `docs/benchmarks.md`
//! and `docs/benchmarks.svg`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};

use crate::{cargo, root, step, target_dir};

/// The VMA counts of the suite.
pub const VMAS: [u64; 3] = [64, 1024, 65530];
/// Policies in report order; the baseline first.
pub const POLICIES: [&str; 4] = ["seed-v1", "seed-fixed", "upstream", "full"];

/// One criterion result, in nanoseconds per iteration.
#[derive(Clone, Debug)]
pub struct Est {
    /// Median.
    pub median: f64,
    /// 95% confidence interval of the median.
    pub lo: f64,
    /// Upper end of the interval.
    pub hi: f64,
    /// Per-iteration time of each sample (for the comparisons).
    pub samples: Vec<f64>,
}

/// Every result of a run plus the bench's side records.
#[derive(Default)]
pub struct Run {
    /// `(name, policy or "kernel", vmas)` → estimate.
    pub est: BTreeMap<(String, String, u64), Est>,
    /// Speculation outcomes: `(name, policy, vmas)` → counts.
    pub rates: BTreeMap<(String, String, u64), Rates>,
    /// Model bytes per VMA: `(policy, vmas)`.
    pub mem: BTreeMap<(String, u64), u64>,
    /// Kernel slab bytes per VMA (`vm_area_struct` + `maple_node`).
    pub kmem: BTreeMap<u64, u64>,
    /// The machine.
    pub machine: Machine,
    /// `--quick`.
    pub quick: bool,
    /// Benchmarks whose kernel figure is another benchmark's kernel loop
    /// (the lookups: a process cannot call the kernel's speculative or
    /// uprobe lookup, so their baseline is the kernel's locked lookup).
    pub kernel_alias: BTreeMap<String, String>,
}

/// Benchmarks measured against another one's kernel loop: name → source.
pub const KERNEL_ALIASES: [(&str, &str); 4] = [
    ("spec_lookup", "locked_lookup"),
    ("uprobe_spec", "locked_lookup"),
    ("uprobe_locked", "locked_lookup"),
    ("spec_lookup_with_writer", "locked_lookup_with_writer"),
];

/// Gives the benchmarks of [`KERNEL_ALIASES`] their source's kernel figures.
fn alias_kernel_baselines(run: &mut Run) {
    for (name, src) in KERNEL_ALIASES {
        for v in VMAS {
            let Some(e) = run.est.get(&(src.to_string(), "kernel".to_string(), v)).cloned() else {
                continue;
            };
            run.est.entry((name.to_string(), "kernel".to_string(), v)).or_insert(e);
            run.kernel_alias.insert(name.to_string(), src.to_string());
        }
    }
}

/// Outcomes of speculative lookups in one benchmark.
#[derive(Clone, Copy, Debug, Default)]
pub struct Rates {
    /// Attempts.
    pub attempts: u64,
    /// Validated.
    pub valid: u64,
    /// Failed `retry`.
    pub retry: u64,
    /// Failed `try_begin`.
    pub busy: u64,
    /// Answered by the locked path.
    pub fallback: u64,
    /// The background writer's calls per second (0: none).
    pub writer_ops: f64,
}

/// What the run ran on.
#[derive(Clone, Debug, Default)]
pub struct Machine {
    /// CPU model.
    pub cpu: String,
    /// Online CPUs.
    pub cpus: usize,
    /// `uname -r`.
    pub kernel: String,
    /// rustc version.
    pub rustc: String,
    /// UTC date of the run.
    pub date: String,
}

impl Machine {
    fn probe() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| {
                l.strip_prefix("model name")
                    .map(|r| r.trim_start_matches([' ', '\t', ':']).to_string())
            })
            .unwrap_or_else(|| "unknown".into());
        let out = |cmd: &str, args: &[&str]| {
            std::process::Command::new(cmd)
                .args(args)
                .output()
                .ok()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
                .unwrap_or_default()
        };
        Machine {
            cpu,
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .unwrap_or_default()
                .trim()
                .to_string(),
            rustc: out("rustc", &["--version"]),
            date: out("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        }
    }
}

/// Criterion arguments of a quick run: criterion's statistics on 10
/// samples per benchmark, about 0.3 s each.
const QUICK_ARGS: [&str; 9] = [
    "--warm-up-time",
    "0.05",
    "--measurement-time",
    "0.2",
    "--sample-size",
    "10",
    "--nresamples",
    "5000",
    "--noplot",
];

/// The `bench` command.
pub fn bench(args: &[String]) -> bool {
    let quick = args.iter().any(|a| a == "--quick");
    // `--report-only`: rewrite the report from the last run's results.
    let report_only = args.iter().any(|a| a == "--report-only");
    let extra_args: Vec<&String> = args
        .iter()
        .filter(|a| *a != "--quick" && *a != "--report-only")
        .collect();
    let target = target_dir();
    let out = target.join("mm-bench");
    let crit = target.join("criterion");
    if !report_only {
        let _ = std::fs::remove_dir_all(&crit);
        let _ = std::fs::remove_dir_all(&out);
        if let Err(e) = std::fs::create_dir_all(&out) {
            eprintln!("xtask: cannot create {}: {e}", out.display());
            return false;
        }
        let mut cmd = cargo();
        cmd.args(["bench", "-p", "mm-benches", "--bench", "mm", "--"])
            .env("MM_BENCH_OUT", &out);
        if quick {
            cmd.args(QUICK_ARGS);
        } else {
            cmd.arg("--noplot");
        }
        cmd.args(extra_args);
        if !step("criterion suite", cmd) {
            return false;
        }
    }
    let mut run = match collect(&crit, &out) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("xtask: reading the results: {e}");
            return false;
        }
    };
    run.quick = quick;
    run.machine = Machine::probe();
    alias_kernel_baselines(&mut run);
    let summary = summary_json(&run);
    let docs = root().join("docs");
    let written = std::fs::write(
        out.join("summary.json"),
        serde_json::to_string_pretty(&summary).unwrap(),
    )
    .and_then(|_| std::fs::write(docs.join("benchmarks.md"), crate::bench_report::markdown(&run)))
    .map_err(|e| e.to_string())
    .and_then(|_| crate::bench_report::chart(&run, &docs.join("benchmarks.svg")));
    match written {
        Ok(()) => {
            println!(
                "xtask: {} results → target/mm-bench/summary.json, docs/benchmarks.md, docs/benchmarks.svg",
                run.est.len()
            );
            true
        }
        Err(e) => {
            eprintln!("xtask: writing the report: {e}");
            false
        }
    }
}

fn read_json(p: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))
}

fn find_new_dirs(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            if p.file_name().is_some_and(|n| n == "new") {
                found.push(p);
            } else {
                find_new_dirs(&p, found);
            }
        }
    }
}

/// Reads criterion's `new/{benchmark,estimates,sample}.json` files and the
/// bench's `extra.tsv`.
pub fn collect(crit: &Path, out: &Path) -> Result<Run, String> {
    let mut run = Run::default();
    let mut dirs = Vec::new();
    find_new_dirs(crit, &mut dirs);
    for d in dirs {
        let b = read_json(&d.join("benchmark.json"))?;
        let e = read_json(&d.join("estimates.json"))?;
        let s = read_json(&d.join("sample.json"))?;
        let name = b["group_id"].as_str().ok_or("group_id")?.to_string();
        let func = b["function_id"].as_str().ok_or("function_id")?.to_string();
        let vmas: u64 = b["value_str"]
            .as_str()
            .and_then(|v| v.parse().ok())
            .ok_or("value_str")?;
        let m = &e["median"];
        let num = |v: &Value| v.as_f64().ok_or_else(|| format!("{}: not a number", d.display()));
        let iters = s["iters"].as_array().ok_or("iters")?;
        let times = s["times"].as_array().ok_or("times")?;
        let samples = iters
            .iter()
            .zip(times)
            .map(|(i, t)| Ok(num(t)? / num(i)?))
            .collect::<Result<Vec<f64>, String>>()?;
        run.est.insert(
            (name, func, vmas),
            Est {
                median: num(&m["point_estimate"])?,
                lo: num(&m["confidence_interval"]["lower_bound"])?,
                hi: num(&m["confidence_interval"]["upper_bound"])?,
                samples,
            },
        );
    }
    if run.est.is_empty() {
        return Err(format!("no criterion results under {}", crit.display()));
    }
    let extra = std::fs::read_to_string(out.join("extra.tsv")).unwrap_or_default();
    for line in extra.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let n = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        match f[0] {
            "rates" if f.len() >= 10 => {
                run.rates.insert(
                    (f[1].into(), f[2].into(), n(3)),
                    Rates {
                        attempts: n(4),
                        valid: n(5),
                        retry: n(6),
                        busy: n(7),
                        fallback: n(8),
                        writer_ops: f[9].parse().unwrap_or(0.0),
                    },
                );
            }
            "mem" if f.len() >= 4 => {
                run.mem.insert((f[1].into(), n(2)), n(3));
            }
            "kmem" if f.len() >= 3 => {
                run.kmem.insert(n(1), n(2));
            }
            _ => {}
        }
    }
    Ok(run)
}

/// The bootstrap comparison of two sample sets: the 95% interval of the
/// ratio of their medians, `b / a`.
pub fn ratio_ci(a: &[f64], b: &[f64]) -> (f64, f64) {
    fn median(v: &mut [f64]) -> f64 {
        v.sort_by(f64::total_cmp);
        let n = v.len();
        if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        }
    }
    let mut rng = StdRng::seed_from_u64(0x006d_6d73_696d);
    let mut ra = vec![0.0; a.len()];
    let mut rb = vec![0.0; b.len()];
    let mut ratios: Vec<f64> = (0..2000)
        .map(|_| {
            for x in ra.iter_mut() {
                *x = a[rng.random_range(0..a.len())];
            }
            for x in rb.iter_mut() {
                *x = b[rng.random_range(0..b.len())];
            }
            median(&mut rb) / median(&mut ra)
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    (ratios[49], ratios[1949])
}

/// Differences below this (2%) are noise whatever the interval says: the
/// samples of one run do not see the drift between runs (criterion's own
/// noise threshold plays the same role).
pub const NOISE: f64 = 0.02;

/// The overhead of `policy` against `seed-v1` for one benchmark: the ratio
/// of medians, and whether it is significant: its 95% interval excludes 1
/// and it is larger than [`NOISE`].
pub fn overhead(run: &Run, name: &str, policy: &str, vmas: u64) -> Option<(f64, bool)> {
    let a = run.est.get(&(name.into(), POLICIES[0].into(), vmas))?;
    let b = run.est.get(&(name.into(), policy.into(), vmas))?;
    if a.samples.len() < 2 || b.samples.len() < 2 {
        return None;
    }
    let (lo, hi) = ratio_ci(&a.samples, &b.samples);
    let r = b.median / a.median;
    Some((r, (lo > 1.0 || hi < 1.0) && (r - 1.0).abs() > NOISE))
}

fn summary_json(run: &Run) -> Value {
    let m = &run.machine;
    let mut rows = Vec::new();
    for ((name, func, vmas), e) in &run.est {
        if func == "kernel" {
            continue;
        }
        let k = run.est.get(&(name.clone(), "kernel".into(), *vmas));
        let mut row = json!({
            "name": name,
            "policy": func,
            "vmas": vmas,
            "model_ns": e.median,
            "kernel_ns": k.map(|k| k.median),
            "model_ci_ns": [e.lo, e.hi],
            "kernel_ci_ns": k.map(|k| [k.lo, k.hi]),
        });
        if let Some(k) = k {
            row["kernel_over_model"] = json!(k.median / e.median);
            let src = run.kernel_alias.get(name).map_or(name.as_str(), String::as_str);
            row["kernel_bench"] = json!(match src {
                "locked_lookup" => "mincore(2) of one page at the same addresses",
                "locked_lookup_with_writer" => "mincore(2) while a thread mmaps and munmaps 4 KiB",
                "write_lock_unlock" => "brk(NULL): takes and drops mmap_write_lock",
                _ => "the same loop through the system calls",
            });
        }
        if let Some((r, sig)) = overhead(run, name, func, *vmas).filter(|_| func != POLICIES[0]) {
            row["vs_seed_v1"] = json!({"ratio": r, "significant": sig});
        }
        if let Some(r) = run
            .rates
            .get(&(name.clone(), func.clone(), *vmas))
            .filter(|r| r.attempts > 0)
        {
            row["retry_rate"] = json!((r.retry + r.busy) as f64 / r.attempts as f64);
            row["fallback_rate"] = json!(r.fallback as f64 / r.attempts as f64);
        }
        if let Some(r) = run
            .rates
            .get(&(name.clone(), func.clone(), *vmas))
            .filter(|r| r.writer_ops > 0.0)
        {
            row["writer_ops_per_s"] = json!(r.writer_ops);
        }
        rows.push(row);
    }
    let floor = run
        .est
        .get(&("syscall_floor".into(), "kernel".into(), 0))
        .map(|e| e.median);
    json!({
        "machine": {
            "cpu": m.cpu,
            "cpus": m.cpus,
            "kernel": m.kernel,
            "rustc": m.rustc,
            "date": m.date,
            "mode": if run.quick { "quick" } else { "full" },
            "syscall_floor_ns": floor,
        },
        "benchmarks": rows,
    })
}
