//! `cargo xtask bench`: runs the criterion suite (`benches/benches/mm.rs`),
//! the locking-protocol suite (`benches/benches/locking.rs`) and the callgrind instruction counts (`benches/icount.rs`), reads them
//! back, and writes `summary.json`, `benchmarks.md` and `benchmarks.svg`
//! under `TARGET/mm-bench/` (`--update-docs` also copies the report and the
//! chart to `docs/`). `cargo xtask bench --help` says more.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::Value;

use crate::{cargo, root, step, target_dir};

/// The VMA counts of the suite.
pub const VMAS: [u64; 3] = [64, 1024, 65530];

/// `cargo xtask bench --help`.
const HELP: &str = "\
cargo xtask bench [--quick] [--report-only] [--update-docs] [--no-icount] [--no-locking] [-- CRITERION-ARGS...]

Runs the criterion suite (every registered barrier policy at 64, 1,024 and
65,530 VMAs, each loop next to the same loop on the host kernel), the
locking-protocol suite (pft-threads, will-it-scale page_fault1/2/3 in
threads mode, a proc-mmap_sem-test analogue, vma_start_write per VMA; each
next to the kernel; MM_BENCH_THREADS=1,2,4 sets its thread counts) and the
callgrind instruction and cache-miss counts per operation, then writes
TARGET/mm-bench/summary.json, benchmarks.md and benchmarks.svg (TARGET: the
cargo target directory, CARGO_TARGET_DIR honoured).

  --quick        10 samples of about 0.2 s per benchmark (about 1 minute)
  --report-only  rewrite the report from the last run's results
  --update-docs  also copy the report and the chart to docs/
  --no-icount    skip the callgrind counts (they need valgrind)
  --no-locking   skip the locking-protocol suite
  --help         this text; nothing is run or deleted
Arguments after `--` go to criterion (a benchmark filter, say).
";

/// The bench's command line.
#[derive(Debug, Default)]
struct Opts {
    quick: bool,
    report_only: bool,
    update_docs: bool,
    icount: bool,
    locking: bool,
    criterion: Vec<String>,
}

fn parse(args: &[String]) -> Result<Option<Opts>, String> {
    let mut o = Opts {
        icount: true,
        locking: true,
        ..Opts::default()
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--help" | "-h" => return Ok(None),
            "--quick" => o.quick = true,
            "--report-only" => o.report_only = true,
            "--update-docs" => o.update_docs = true,
            "--no-icount" => o.icount = false,
            "--no-locking" => o.locking = false,
            "--" => o.criterion.extend(it.by_ref().cloned()),
            other => return Err(format!("unknown argument `{other}` (see cargo xtask bench --help)")),
        }
    }
    Ok(Some(o))
}

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
    /// The registered policies, in registry order (the baseline first),
    /// with whether each is expected to be sound.
    pub policies: Vec<(String, bool)>,
    /// Instruction and cache-miss counts, or why there are none.
    pub icount: Result<Vec<crate::icount::Cost>, String>,
    /// The profiles of each operation (upstream, 1,024 VMAs).
    pub profiles: Vec<crate::icount::Profile>,
    /// What each policy compiles to, if it could be disassembled.
    pub asm: Option<crate::asm::Listing>,
    /// The locking-protocol suite (`benches/benches/locking.rs`), or why
    /// there is none.
    pub locking: Result<crate::bench_locking::Locking, String>,
}

impl Default for Run {
    fn default() -> Self {
        Run {
            est: BTreeMap::new(),
            rates: BTreeMap::new(),
            mem: BTreeMap::new(),
            kmem: BTreeMap::new(),
            machine: Machine::default(),
            quick: false,
            kernel_alias: BTreeMap::new(),
            policies: vec![],
            icount: Err("not measured".into()),
            profiles: vec![],
            asm: None,
            locking: Err("not measured".into()),
        }
    }
}

impl Run {
    /// Policy names, registry order.
    pub fn policy_names(&self) -> Vec<&str> {
        self.policies.iter().map(|p| p.0.as_str()).collect()
    }

    /// The baseline policy (the registry's first, `seed-v1`).
    pub fn baseline(&self) -> &str {
        self.policies.first().map_or("seed-v1", |p| p.0.as_str())
    }

    /// Instructions (and misses) of `op` under `policy` at `vmas`.
    pub fn cost(&self, op: &str, policy: &str, vmas: u64) -> Option<&crate::icount::Cost> {
        self.icount
            .as_ref()
            .ok()?
            .iter()
            .find(|c| c.op == op && c.policy == policy && c.vmas == vmas)
    }
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
    /// `/proc/loadavg`'s 1-minute load before and after the run.
    pub load: (f64, f64),
}

/// The 1-minute load average.
pub fn loadavg() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
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
            load: (f64::NAN, f64::NAN),
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
    let opts = match parse(args) {
        Ok(Some(o)) => o,
        Ok(None) => {
            print!("{HELP}");
            return true;
        }
        Err(e) => {
            eprintln!("xtask bench: {e}");
            return false;
        }
    };
    let target = target_dir();
    let out = target.join("mm-bench");
    let crit = target.join("criterion");
    let load_before = loadavg();
    if !opts.report_only {
        let _ = std::fs::remove_dir_all(&crit);
        let _ = std::fs::remove_dir_all(&out);
        if let Err(e) = std::fs::create_dir_all(&out) {
            eprintln!("xtask: cannot create {}: {e}", out.display());
            return false;
        }
        let mut cmd = cargo();
        cmd.args(["bench", "-p", "mm-benches", "--bench", "mm", "--"])
            .env("MM_BENCH_OUT", &out);
        if opts.quick {
            cmd.args(QUICK_ARGS);
        } else {
            cmd.arg("--noplot");
        }
        cmd.args(&opts.criterion);
        if !step("criterion suite", cmd) {
            return false;
        }
        if opts.locking {
            let mut cmd = cargo();
            cmd.args(["bench", "-p", "mm-benches", "--bench", "locking"])
                .env("MM_BENCH_OUT", &out);
            if opts.quick {
                cmd.env("MM_BENCH_QUICK", "1");
            }
            if !step("locking-protocol suite", cmd) {
                return false;
            }
        }
    }
    let mut run = match collect(&crit, &out) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("xtask: reading the results: {e}");
            return false;
        }
    };
    run.quick = opts.quick;
    run.locking = if opts.locking {
        crate::bench_locking::read(&out.join("locking.tsv"))
    } else {
        Err("skipped (--no-locking)".into())
    };
    run.machine = Machine::probe();
    alias_kernel_baselines(&mut run);
    // Deterministic counts: upstream at every size, every policy at 1,024.
    run.icount = if !opts.icount {
        Err("not measured (--no-icount)".into())
    } else if opts.report_only {
        crate::bench_files::read_icount(&out)
    } else {
        let mut runs: Vec<(String, u64)> = VMAS.iter().map(|&v| ("upstream".to_string(), v)).collect();
        for p in run.policy_names() {
            if p != "upstream" {
                runs.push((p.to_string(), 1024));
            }
        }
        println!("==> callgrind instruction counts ({} runs + profiles)", runs.len());
        // Profiles are of the first run: upstream at 1,024 VMAs.
        runs.swap(0, 1);
        match crate::icount::measure(&runs) {
            Ok((costs, profiles)) => {
                crate::bench_files::write_icount(&out, &costs, &profiles);
                run.profiles = profiles;
                Ok(costs)
            }
            Err(e) => Err(e),
        }
    };
    if opts.report_only && run.icount.is_ok() {
        run.profiles = crate::bench_files::read_profiles(&out);
    }
    run.asm = crate::asm::listing();
    if opts.report_only {
        // The machine, date and load of the run the data come from.
        run.machine = crate::bench_files::read_machine(&out).unwrap_or(Machine {
            load: (f64::NAN, f64::NAN),
            ..run.machine
        });
    } else {
        run.machine.load = (load_before, loadavg());
        crate::bench_files::write_machine(&out, &run.machine);
    }
    let summary = crate::bench_files::summary_json(&run);
    let md = out.join("benchmarks.md");
    let svg = out.join("benchmarks.svg");
    let written = std::fs::write(
        out.join("summary.json"),
        serde_json::to_string_pretty(&summary).unwrap(),
    )
    .and_then(|_| std::fs::write(&md, crate::bench_report::markdown(&run)))
    .map_err(|e| e.to_string())
    .and_then(|_| crate::bench_chart::chart(&run, &svg));
    if let Err(e) = written {
        eprintln!("xtask: writing the report: {e}");
        return false;
    }
    println!(
        "xtask: {} results -> {}, {}, {}",
        run.est.len(),
        out.join("summary.json").display(),
        md.display(),
        svg.display()
    );
    if opts.update_docs {
        let docs = root().join("docs");
        let copied = std::fs::copy(&md, docs.join("benchmarks.md"))
            .and_then(|_| std::fs::copy(&svg, docs.join("benchmarks.svg")));
        match copied {
            Ok(_) => println!("xtask: copied to docs/benchmarks.md and docs/benchmarks.svg"),
            Err(e) => {
                eprintln!("xtask: copying to docs/: {e}");
                return false;
            }
        }
    }
    true
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
            "policy" if f.len() >= 3 && !run.policies.iter().any(|p| p.0 == f[1]) => {
                run.policies.push((f[1].to_string(), f[2] == "true"));
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
    let a = run.est.get(&(name.into(), run.baseline().into(), vmas))?;
    let b = run.est.get(&(name.into(), policy.into(), vmas))?;
    if a.samples.len() < 2 || b.samples.len() < 2 {
        return None;
    }
    let (lo, hi) = ratio_ci(&a.samples, &b.samples);
    let r = b.median / a.median;
    Some((r, (lo > 1.0 || hi < 1.0) && (r - 1.0).abs() > NOISE))
}
