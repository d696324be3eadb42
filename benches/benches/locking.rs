//! The locking-protocol suite (`mm_benches::locking`): pft-threads,
//! will-it-scale page_fault1/2/3 in threads mode, a proc-mmap_sem-test
//! analogue and the cost of `vma_start_write` per VMA, each side by side
//! with the kernel in this run (except `vma_start_write`, which userspace
//! cannot isolate in the kernel).
//!
//! Writes `$MM_BENCH_OUT/locking.tsv` for `cargo xtask bench`.
//! `MM_BENCH_QUICK=1` shortens every run; `MM_BENCH_THREADS=1,2,4` sets
//! the thread counts (default: 1, then powers of two, up to the CPUs).

use std::time::Duration;

use mm_benches::Extra;
use mm_benches::locking::*;
use mm_core::{BarrierPolicy, PolicyKind, PolicyVisitor, Upstream};

/// The variants of one measurement, each a name and a closure.
type Runs<'a, T> = Vec<(&'static str, Box<dyn Fn() -> T + 'a>)>;

/// Durations and repetitions of one run.
struct Plan {
    dur: Duration,
    rounds: usize,
    threads: Vec<usize>,
    sections: u32,
}

impl Plan {
    fn from_env() -> Plan {
        let quick = std::env::var_os("MM_BENCH_QUICK").is_some_and(|v| v != "0");
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let threads = match std::env::var("MM_BENCH_THREADS") {
            Ok(list) => list
                .split(',')
                .map(|t| {
                    t.trim()
                        .parse::<usize>()
                        .ok()
                        .filter(|&n| n > 0)
                        .unwrap_or_else(|| panic!("MM_BENCH_THREADS: {t:?} is not a thread count"))
                })
                .collect(),
            Err(_) => {
                let mut v: Vec<usize> = std::iter::successors(Some(1), |&n| Some(n * 2))
                    .take_while(|&n| n <= cpus)
                    .collect();
                if *v.last().unwrap() != cpus {
                    v.push(cpus);
                }
                v
            }
        };
        Plan {
            dur: Duration::from_millis(if quick { 250 } else { 1000 }),
            rounds: if quick { 2 } else { 3 },
            threads,
            sections: if quick { 50_000 } else { 200_000 },
        }
    }
}

/// `vma_start_write_cost` for one policy at every `k`.
struct Vsw<'a> {
    out: &'a mut Extra,
    round: usize,
    sections: u32,
}

impl PolicyVisitor for Vsw<'_> {
    type Output = ();
    fn visit<P: BarrierPolicy>(self) {
        for k in [0, 1, 8, VSW_VMAS] {
            let ns = vma_start_write_cost::<P>(k, self.sections);
            self.out
                .record(&[&"vsw", &P::NAME, &k, &self.round, &format!("{ns:.2}")]);
        }
    }
}

fn fault(out: &mut Extra, kind: &str, variant: &str, threads: usize, round: usize, r: &FaultRate) {
    out.record(&[
        &kind,
        &variant,
        &threads,
        &round,
        &r.faults,
        &format!("{:.6}", r.secs),
        &r.vma_lock,
        &r.fallback,
    ]);
    println!(
        "{kind:<12} {variant:<16} {threads:>2} threads: {:>12.0} faults/s",
        r.per_sec()
    );
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is accepted.
    if let Some(a) = std::env::args().skip(1).find(|a| a != "--bench") {
        eprintln!("locking bench: unknown argument {a:?} (configure with MM_BENCH_QUICK, MM_BENCH_THREADS)");
        std::process::exit(2);
    }
    let plan = Plan::from_env();
    let mut out = Extra::create_named("locking.tsv");
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    out.record(&[&"cpus", &cpus]);
    let max_threads = *plan.threads.iter().max().unwrap();
    let pf_files = PfFiles::create(max_threads).expect("page_fault files in the temporary directory");
    let files = mm_benches::BenchFiles::create(&std::env::temp_dir()).expect("bench file in the temporary directory");
    let readers = cpus.saturating_sub(1).max(1);
    for round in 0..plan.rounds {
        // The variants take turns going first.
        for &t in &plan.threads {
            let mut runs: Runs<'_, FaultRate> = vec![
                ("kernel", Box::new(|| pft_kernel(t, plan.dur))),
                (
                    "model-vma-lock",
                    Box::new(|| pft_model::<Upstream>(t, plan.dur, FaultEntry::VmaLock)),
                ),
                (
                    "model-mmap-lock",
                    Box::new(|| pft_model::<Upstream>(t, plan.dur, FaultEntry::MmapLock)),
                ),
            ];
            runs.rotate_left(round % 3);
            for (name, run) in &runs {
                fault(&mut out, "pft", name, t, round, &run());
            }
        }
        for test in PageFault::ALL {
            let kind = format!("page_fault{}", test.number());
            for &t in &plan.threads {
                let f = &pf_files;
                let mut runs: Runs<'_, FaultRate> = vec![
                    ("kernel", Box::new(|| page_fault_kernel(test, t, plan.dur, f))),
                    (
                        "model-vma-lock",
                        Box::new(|| page_fault_model::<Upstream>(test, t, plan.dur, f, FaultEntry::VmaLock)),
                    ),
                    (
                        "model-mmap-lock",
                        Box::new(|| page_fault_model::<Upstream>(test, t, plan.dur, f, FaultEntry::MmapLock)),
                    ),
                ];
                runs.rotate_left(round % 3);
                for (name, run) in &runs {
                    fault(&mut out, &kind, name, t, round, &run());
                }
            }
        }
        for r in [0, readers] {
            let mut runs: Runs<'_, WriterLatency> = vec![
                ("kernel", Box::new(|| mmap_sem_kernel(r, plan.dur, &files))),
                (
                    "model-vma-locked-maps",
                    Box::new(|| mmap_sem_model::<Upstream>(r, plan.dur, &files, MapsRead::VmaLocked)),
                ),
                (
                    "model-mmap-lock-maps",
                    Box::new(|| mmap_sem_model::<Upstream>(r, plan.dur, &files, MapsRead::MmapLock)),
                ),
            ];
            runs.rotate_left(round % 3);
            for (name, run) in &runs {
                let l = run();
                out.record(&[&"mmapsem", name, &r, &round, &l.count, &l.p50, &l.p99, &l.max, &l.reads]);
                println!(
                    "mmap_sem     {name:<22} {r} readers: p50 {} ns, p99 {} ns, max {} ns, {} maps reads",
                    l.p50, l.p99, l.max, l.reads
                );
            }
        }
        let all = PolicyKind::ALL;
        for &p in all.iter().cycle().skip(round % all.len()).take(all.len()) {
            p.visit(Vsw {
                out: &mut out,
                round,
                sections: plan.sections,
            });
        }
    }
}
