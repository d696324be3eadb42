//! `docs/benchmarks.md` from a [`Run`]; its chart, `docs/benchmarks.svg`,
//! is drawn by [`bench_chart`](crate::bench_chart), and the targets its
//! first table judges by [`bench_targets`](crate::bench_targets).

use std::fmt::Write as _;

use crate::bench::{Est, Run, VMAS, overhead};
pub(crate) use crate::bench_targets::targets;

/// The write-path loops (will-it-scale analogues), with what they do.
pub(crate) const WRITE: [(&str, &str); 6] = [
    (
        "mmap_munmap_4k",
        "mmap 4 KiB anonymous `rw-p` next to an `rw-p` neighbour (merges), munmap it (splits)",
    ),
    (
        "mmap_munmap_4k_own",
        "mmap 4 KiB anonymous `r--p` in a hole (own VMA), munmap it",
    ),
    ("mmap1", "will-it-scale mmap1: mmap 128 MiB anonymous, munmap"),
    ("mmap2", "will-it-scale mmap2: mmap 128 MiB of a file, private, munmap"),
    ("brk1", "will-it-scale brk1: brk +1 page, brk −1 page"),
    (
        "mprotect_toggle",
        "mprotect one page rw (split + merge left), back to r (split + merge right)",
    ),
];

/// The read-path benches.
const READ: [(&str, &str); 10] = [
    (
        "spec_lookup",
        "speculative vma_lookup (one attempt, then the locked path); kernel: mincore(2) of one page, the \
         cheapest lookup a process can ask the kernel for (its speculative lookup is not callable)",
    ),
    (
        "locked_lookup",
        "vma_lookup under mmap_read_lock; kernel: mincore(2) of one page",
    ),
    (
        "uprobe_spec",
        "uprobe-style address → (file, offset), speculative; kernel: mincore(2)",
    ),
    ("uprobe_locked", "the same under mmap_read_lock; kernel: mincore(2)"),
    (
        "spec_lookup_with_writer",
        "speculative, while a writer thread maps and unmaps; kernel: mincore(2) while a thread mmaps \
         and munmaps",
    ),
    (
        "locked_lookup_with_writer",
        "locked, while a writer thread maps and unmaps; kernel: mincore(2) while a thread mmaps and \
         munmaps",
    ),
    ("spec_lookup_2r", "speculative, two reader threads"),
    ("locked_lookup_2r", "locked, two reader threads"),
    ("spec_lookup_2r_with_writer", "speculative, two readers and a writer"),
    ("locked_lookup_2r_with_writer", "locked, two readers and a writer"),
];

/// Instruction budgets per operation at 1,024 VMAs (upstream).
pub(crate) const BUDGETS: [(&str, f64); 5] = [
    ("spec_lookup", 160.0),
    ("mmap_munmap_4k", 700.0),
    ("mprotect_toggle", 600.0),
    ("brk1", 700.0),
    ("maps_render", 650.0),
];

pub(crate) fn ns(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2} ms", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.2} µs", x / 1e3)
    } else if x >= 10.0 {
        format!("{x:.1} ns")
    } else {
        format!("{x:.2} ns")
    }
}

fn est_cell(e: Option<&Est>) -> String {
    match e {
        Some(e) => format!("{} [{}–{}]", ns(e.median), ns(e.lo), ns(e.hi)),
        None => "–".into(),
    }
}

fn get<'a>(run: &'a Run, name: &str, func: &str, vmas: u64) -> Option<&'a Est> {
    run.est.get(&(name.to_string(), func.to_string(), vmas))
}

pub(crate) fn median(run: &Run, name: &str, func: &str, vmas: u64) -> Option<f64> {
    get(run, name, func, vmas).map(|e| e.median)
}

/// Instructions and simulated cache misses per operation.
fn icount_section(out: &mut String, run: &Run) {
    let _ = writeln!(
        out,
        "## Instructions and cache misses per operation (callgrind)
"
    );
    let costs = match &run.icount {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(
                out,
                "Not measured in this run: {e}.
"
            );
            return;
        }
    };
    let _ = writeln!(
        out,
        "`benches/icount.rs` under `valgrind --tool=callgrind --cache-sim=yes`, 2,000 operations per loop after a warm-up round, on the same fixture as the wall-clock benches. These counts are deterministic for a given binary: they do not move with the machine's load. D1 and LL are callgrind's simulated first- and last-level data-cache misses.\n\n| operation | policy | 64 VMAs | 1,024 VMAs | 65,530 VMAs | growth 64 → 65,530 |\n|---|---|---|---|---|---|"
    );
    let mut policies: Vec<&str> = run.policy_names();
    policies.sort_by_key(|p| *p != "upstream");
    for (op, what) in crate::icount::OPS {
        for p in &policies {
            let cell = |v: u64| {
                costs
                    .iter()
                    .find(|c| c.op == op && c.policy == *p && c.vmas == v)
                    .map(|c| format!("{:.0} ({:.2} D1, {:.2} LL)", c.ir, c.d1_miss, c.ll_miss))
            };
            let (a, b, c) = (cell(64), cell(1024), cell(65530));
            if b.is_none() {
                continue;
            }
            let g = costs
                .iter()
                .find(|c| c.op == op && c.policy == *p && c.vmas == 64)
                .zip(costs.iter().find(|c| c.op == op && c.policy == *p && c.vmas == 65530))
                .map_or("–".into(), |(a, b)| format!("{:.2}×", b.ir / a.ir));
            let _ = writeln!(
                out,
                "| `{op}` ({what}) | {p} | {} | {} | {} | {g} |",
                a.unwrap_or_else(|| "–".into()),
                b.unwrap_or_else(|| "–".into()),
                c.unwrap_or_else(|| "–".into())
            );
        }
    }
    out.push('\n');
}

/// The noise of this run: the machine's load, and the spread of
/// criterion's samples (each sample is a repeated run of the loop).
fn noise_section(out: &mut String, run: &Run) {
    let _ = writeln!(out, "## Noise of this run\n");
    let (a, b) = run.machine.load;
    if a.is_nan() || b.is_nan() {
        let _ = writeln!(
            out,
            "- **Load:** not recorded with this run's data (a report from data older than `machine.tsv`), on {} CPUs.",
            run.machine.cpus
        );
    } else {
        let _ = writeln!(
            out,
            "- **Load:** the 1-minute load average was {a:.2} before the run and {b:.2} after it, on {} CPUs.",
            run.machine.cpus
        );
    }
    let mut spreads: Vec<(f64, String)> = run
        .est
        .iter()
        .filter(|(_, e)| e.samples.len() >= 2)
        .map(|((n, p, v), e)| {
            let lo = e.samples.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = e.samples.iter().copied().fold(0.0, f64::max);
            (100.0 * (hi - lo) / e.median.max(1e-12), format!("`{n}` {p} {v}"))
        })
        .collect();
    spreads.sort_by(|x, y| x.0.total_cmp(&y.0));
    if let (Some(first), Some(last)) = (spreads.first(), spreads.last()) {
        let mid = &spreads[spreads.len() / 2];
        let _ = writeln!(
            out,
            "- **Spread between repeated runs of each loop** ((slowest − fastest sample) / median, over {} benchmarks): median {:.1}%, smallest {:.1}% ({}), largest {:.1}% ({}).",
            spreads.len(),
            mid.0,
            first.0,
            first.1,
            last.0,
            last.1
        );
    }
    out.push('\n');
}

fn policy_table(out: &mut String, run: &Run, names: &[(&str, &str)]) {
    for (name, what) in names {
        if !run.est.keys().any(|k| k.0 == *name) {
            continue;
        }
        let with_kernel = run.est.keys().any(|k| k.0 == *name && k.1 == "kernel");
        let _ = writeln!(out, "**`{name}`**: {what}.\n");
        let mut head = "| VMAs |".to_string();
        if with_kernel {
            head.push_str(" kernel |");
        }
        for p in run.policy_names() {
            let _ = write!(head, " {p} |");
        }
        if with_kernel {
            head.push_str(" kernel / upstream |");
        }
        let _ = writeln!(out, "{head}");
        let _ = writeln!(out, "|{}", "---|".repeat(head.matches('|').count() - 1));
        for v in VMAS {
            if !run.policy_names().iter().any(|p| get(run, name, p, v).is_some()) {
                continue;
            }
            let mut row = format!("| {v} |");
            if with_kernel {
                let _ = write!(row, " {} |", est_cell(get(run, name, "kernel", v)));
            }
            for p in run.policy_names() {
                let _ = write!(row, " {} |", est_cell(get(run, name, p, v)));
            }
            if with_kernel {
                let r = median(run, name, "kernel", v).zip(median(run, name, "upstream", v));
                let _ = write!(row, " {} |", r.map_or("–".into(), |(k, m)| format!("{:.1}×", k / m)));
            }
            let _ = writeln!(out, "{row}");
        }
        out.push('\n');
    }
}

/// The whole report.
pub fn markdown(run: &Run) -> String {
    let m = &run.machine;
    let mut o = String::new();
    let _ = writeln!(o, "# Benchmarks\n");
    let _ = writeln!(
        o,
        "Generated by `cargo xtask bench{}` on {}; every number and every conclusion here is \
         computed from that run (rerun it to refresh them).\n",
        if run.quick { " --quick" } else { "" },
        m.date
    );
    let _ = writeln!(
        o,
        "- **Machine:** {} ({} CPUs), Linux {}, {}.",
        m.cpu, m.cpus, m.kernel, m.rustc
    );
    let _ = writeln!(
        o,
        "- **Method:** criterion ({}); every figure is the median time per operation with its 95% \
         confidence interval in brackets. The kernel column runs the same loop through the real \
         system calls (libc) in the same process, on the same layout, in the same run.",
        if run.quick {
            "`--quick`: 10 samples of about 0.2 s per benchmark"
        } else {
            "30 samples over 2 s per benchmark"
        }
    );
    if let Some(f) = median(run, "syscall_floor", "kernel", 0) {
        let _ = writeln!(o, "- **Syscall floor:** `getppid(2)` takes {} here.", ns(f));
    }
    let _ = writeln!(
        o,
        "- **Layout:** VMAs of two pages, shared mappings of one sparse file in the temporary directory, alternately \
         `r--s` and `rw-s`, plus an anonymous arena (`benches/lib.rs`). \"65530\" is max_map_count; \
         the address space then holds 65,522 VMAs, 8 fewer, so that the benchmarked calls can \
         still map. The kernel's counts include the bench process's own VMAs.\n"
    );

    let _ = writeln!(
        o,
        "## Targets\n\n| target | measured (upstream policy) | met |\n|---|---|---|"
    );
    for t in targets(run) {
        let met = match t.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "–",
        };
        let _ = writeln!(o, "| {} | {} | {} |", t.what, t.measured, met);
    }
    o.push_str("\nFor each missed target, the profile and what it shows are under [Where the targets are missed](#where-the-targets-are-missed).\n\n");

    let _ = writeln!(o, "## Write path: will-it-scale analogues\n");
    let _ = writeln!(
        o,
        "Time per loop iteration (one call pair). `kernel / upstream` is how many times faster \
         the model is than the kernel for the same loop.\n"
    );
    policy_table(&mut o, run, &WRITE);

    let _ = writeln!(o, "## Read path\n");
    let _ = writeln!(
        o,
        "Time per lookup (per lookup per thread for the two-reader benches). The addresses cycle \
         through 4,096 pseudo-random fixture addresses, so no lookup reuses the last one's path. \
         The writer thread maps and unmaps 4 KiB in a loop and makes one real empty system call \
         (`getppid`) per call, the entry and exit cost a real writer pays outside `mmap_lock`. \
         The machine has {} CPUs: with two readers and a writer, three threads share them.\n",
        m.cpus
    );
    policy_table(&mut o, run, &READ);
    let _ = writeln!(
        o,
        "**Speculation outcomes** (every attempt made during the benchmark, warm-up included):\n\n\
         | bench | policy | VMAs | attempts | validated | retry failed | try_begin failed | fell back | writer calls/s |\n\
         |---|---|---|---|---|---|---|---|---|"
    );
    for ((name, p, v), r) in &run.rates {
        if r.attempts == 0 || !name.starts_with("spec") {
            continue;
        }
        let pct = |x: u64| format!("{:.2}%", 100.0 * x as f64 / r.attempts as f64);
        let _ = writeln!(
            o,
            "| `{name}` | {p} | {v} | {} | {} | {} | {} | {} | {} |",
            r.attempts,
            pct(r.valid),
            pct(r.retry),
            pct(r.busy),
            pct(r.fallback),
            if r.writer_ops > 0.0 {
                format!("{:.0}", r.writer_ops)
            } else {
                "–".into()
            }
        );
    }
    o.push('\n');

    let _ = writeln!(o, "## Lock cost: the barriers alone\n");
    policy_table(
        &mut o,
        run,
        &[
            (
                "write_lock_unlock",
                "mmap_write_lock + mmap_write_unlock (two `mm_lock_seq` bumps; kernel: `brk(NULL)`, a \
                 system call that takes and drops the write lock)",
            ),
            (
                "try_begin_retry",
                "mmap_lock_speculate_try_begin + mmap_lock_speculate_retry",
            ),
        ],
    );

    let base = run.baseline().to_string();
    let others: Vec<&str> = run.policy_names().into_iter().filter(|p| *p != base).collect();
    let _ = writeln!(o, "## Each policy's overhead against {base}\n");
    let _ = writeln!(
        o,
        "Ratio of medians (policy / {base}); *significant* when the 95% bootstrap interval of \
         the ratio (2,000 resamples of criterion's samples) excludes 1 and the difference exceeds \
         {:.0}% (criterion's samples within one run do not show the drift between runs; the \
         resolution measured between instruction-identical policies is in the answer below).\n\n\
         | bench | VMAs | {} |\n|---|---|{}",
        crate::bench::NOISE * 100.0,
        others.join(" | "),
        "---|".repeat(others.len())
    );
    let names: Vec<&str> = WRITE
        .iter()
        .map(|w| w.0)
        .chain([
            "write_lock_unlock",
            "try_begin_retry",
            "spec_lookup",
            "locked_lookup",
            "uprobe_spec",
        ])
        .collect();
    for name in names {
        for v in VMAS {
            let cells: Vec<String> = others
                .iter()
                .map(|p| match overhead(run, name, p, v) {
                    Some((r, true)) => format!("{:+.1}% (significant)", (r - 1.0) * 100.0),
                    Some((r, false)) => format!("{:+.1}% (noise)", (r - 1.0) * 100.0),
                    None => "–".into(),
                })
                .collect();
            if cells.iter().all(|c| c == "–") {
                continue;
            }
            let _ = writeln!(o, "| `{name}` | {v} | {} |", cells.join(" | "));
        }
    }
    o.push('\n');

    let _ = writeln!(o, "## Scaling with the number of VMAs\n");
    let _ = writeln!(
        o,
        "upstream policy; growth = time at 65,530 / time at 64. The kernel's growth over the same \
         range is beside it where the kernel runs the loop.\n\n\
         | bench | 64 | 1,024 | 65,530 | growth | kernel growth |\n|---|---|---|---|---|---|"
    );
    for name in WRITE
        .iter()
        .map(|w| w.0)
        .chain(["spec_lookup", "locked_lookup", "uprobe_spec", "maps_render_per_vma"])
    {
        let c = |v| median(run, name, "upstream", v);
        let g = c(64).zip(c(65530)).map(|(a, b)| b / a);
        let kg = median(run, name, "kernel", 64)
            .zip(median(run, name, "kernel", 65530))
            .map(|(a, b)| b / a);
        let _ = writeln!(
            o,
            "| `{name}` | {} | {} | {} | {} | {} |",
            c(64).map_or("–".into(), ns),
            c(1024).map_or("–".into(), ns),
            c(65530).map_or("–".into(), ns),
            g.map_or("–".into(), |g| format!("{g:.2}×")),
            kg.map_or("–".into(), |g| format!("{g:.2}×"))
        );
    }
    o.push('\n');

    let _ = writeln!(o, "## Memory per VMA\n");
    let _ = writeln!(
        o,
        "Model: bytes allocated by the VMA slab, the tree and the file slab divided by the VMA \
         count (`MmStruct::allocated_bytes`). Kernel: growth of the `vm_area_struct` and \
         `maple_node` slabs in `/proc/slabinfo` while the fixture was mapped, per fixture VMA \
         (machine-wide, so other activity adds noise).\n\n| VMAs | {} | kernel |\n|---|{}---|",
        run.policy_names().join(" | "),
        "---|".repeat(run.policy_names().len())
    );
    for v in VMAS {
        let cells: Vec<String> = run
            .policy_names()
            .iter()
            .map(|p| {
                run.mem
                    .get(&(p.to_string(), v))
                    .map_or("–".into(), |b| format!("{b} B"))
            })
            .collect();
        let k = run.kmem.get(&v).map_or("–".into(), |b| format!("{b} B"));
        let _ = writeln!(o, "| {v} | {} | {k} |", cells.join(" | "));
    }
    o.push_str("\n## Chart\n\n![model vs kernel, and scaling](benchmarks.svg)\n\n");
    match &run.locking {
        Ok(l) => crate::bench_locking::markdown(&mut o, l),
        Err(e) => {
            let _ = writeln!(
                o,
                "## Locking protocol: faults, maps readers and vma_start_write\n\nNot measured in this run: {e}.\n"
            );
        }
    }
    icount_section(&mut o, run);
    crate::bench_missed::missed_section(&mut o, run);
    noise_section(&mut o, run);
    o.push_str(&crate::bench_answer::answer(run));
    o
}
