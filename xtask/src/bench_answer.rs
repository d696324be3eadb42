//! The section of `docs/benchmarks.md` that answers the seed thread's
//! question, with this run's numbers.

use std::fmt::Write as _;

use crate::bench::{POLICIES, Run, overhead};

fn med(run: &Run, name: &str, func: &str, vmas: u64) -> Option<f64> {
    run.est
        .get(&(name.to_string(), func.to_string(), vmas))
        .map(|e| e.median)
}

fn delta(run: &Run, name: &str, p: &str, v: u64) -> String {
    match overhead(run, name, p, v) {
        Some((r, sig)) => format!(
            "{:+.1}% ({})",
            (r - 1.0) * 100.0,
            if sig { "significant" } else { "within noise" }
        ),
        None => "–".into(),
    }
}

/// The answer, as markdown.
pub fn answer(run: &Run) -> String {
    let v = 1024;
    let mut o = String::new();
    o.push_str(
        "## The answer to the seed's question\n\n\
         > Do you think this might have a noticeable impact on performance? What sort of \
         benchmark do mm folks use to quantify changes like that?\n\n\
         **The benchmarks mm developers use** for mmap_lock changes are will-it-scale's \
         `mmap1`, `mmap2`, `brk1` (processes and threads modes), run through mmtests or the \
         0-day bot, which reports per-commit regressions in ops/s. This suite has their \
         analogues above, next to the same loop on the host kernel, plus the microbenchmarks \
         that isolate the change: the lock/unlock pair and the speculative begin/retry pair.\n\n",
    );
    let _ = writeln!(
        o,
        "**The fix costs nothing measurable on x86-64.** Measured at {v} VMAs in this run:\n\n\
         | | seed-v1 | seed-fixed | upstream | full |\n|---|---|---|---|---|"
    );
    for name in [
        "write_lock_unlock",
        "try_begin_retry",
        "mmap_munmap_4k",
        "mprotect_toggle",
        "spec_lookup",
    ] {
        let mut row = format!("| `{name}` |");
        for (i, p) in POLICIES.iter().enumerate() {
            let m = med(run, name, p, v).map_or("–".into(), |m| format!("{m:.2} ns"));
            if i == 0 {
                let _ = write!(row, " {m} |");
            } else {
                let _ = write!(row, " {m}, {} |", delta(run, name, p, v));
            }
        }
        let _ = writeln!(o, "{row}");
    }
    // How far apart policies with identical instructions land: the
    // resolution of this machine for such comparisons.
    let write = [
        "mmap_munmap_4k",
        "mmap_munmap_4k_own",
        "mmap1",
        "mmap2",
        "brk1",
        "mprotect_toggle",
    ];
    let spread = |p: &str| -> Option<(f64, f64)> {
        let ds: Vec<f64> = write
            .iter()
            .flat_map(|n| crate::bench::VMAS.map(|v| overhead(run, n, p, v).map(|(r, _)| (r - 1.0) * 100.0)))
            .flatten()
            .collect();
        let lo = ds.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = ds.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (!ds.is_empty()).then_some((lo, hi))
    };
    if let (Some(sf), Some(up), Some(full)) = (spread("seed-fixed"), spread("upstream"), spread("full")) {
        let _ = writeln!(
            o,
            "\nOn the six write-path loops at every VMA count, `seed-fixed` lands between {:+.1}% and \
             {:+.1}% of `seed-v1` and `upstream` between {:+.1}% and {:+.1}%, in both directions, although \
             the three compile to the same instructions: that spread is code placement (each policy is a \
             separately compiled copy of the whole model) and drift within the run, and it is the \
             resolution of this machine for such comparisons. `full` lands between {:+.1}% and {:+.1}%.",
            sf.0, sf.1, up.0, up.1, full.0, full.1
        );
    }
    o.push_str(
        "\nThe instruction-level reason (`cargo xtask asm`, docs/ordering.md): x86-64 is TSO. \
         Loads are not reordered with loads, stores not with stores, so `smp_wmb()` and \
         `smp_rmb()` are compiler barriers only, and so are load-acquire and store-release: \
         `seed-v1`, `seed-fixed` and `upstream` compile to the same plain `mov`s. Jann Horn's \
         fix changes which reorderings the *compiler* may do, and nothing the CPU executes. \
         Only a full barrier (`smp_mb()`, the `full` policy) emits an instruction, a \
         `lock or $0,(%rsp)`, and it is the one policy whose lock/unlock and begin/retry costs rise far beyond that spread.\n\n",
    );
    let k = med(run, "mmap_munmap_4k", "kernel", v);
    let lock = med(run, "write_lock_unlock", "seed-v1", v).zip(med(run, "write_lock_unlock", "full", v));
    let spec = med(run, "try_begin_retry", "seed-v1", v).zip(med(run, "try_begin_retry", "full", v));
    if let (Some(k), Some((a, f))) = (k, lock) {
        let _ = writeln!(
            o,
            "**Against the kernel's own cost.** The kernel's mmap+munmap of 4 KiB takes {k:.0} ns \
             here, with two write sections. Even the `full` policy's extra {:.1} ns per section \
             would be {:.2}% of it; the fix as merged (`upstream`: `smp_wmb` after the bump at \
             lock, `smp_rmb` before the re-check) adds zero instructions, so will-it-scale cannot \
             see it on x86-64. The read side is where a barrier would show: a speculative \
             begin/retry pair costs {} with the merged barriers and {} with full fences, against \
             a lookup of tens of ns.\n",
            f - a,
            200.0 * (f - a) / k,
            spec.map_or("–".into(), |(s, _)| format!("{s:.2} ns")),
            spec.map_or("–".into(), |(_, f)| format!("{f:.2} ns")),
        );
    }
    o.push_str(
        "**arm64, on paper** (no arm64 machine here). There the barriers are real instructions: \
         `smp_wmb()` is `dmb ishst` after the odd bump at lock and before the even bump at \
         unlock, and `smp_rmb()` is `dmb ishld` before the re-check, where v1 had `stlr`/`ldar`. \
         A `dmb` costs on the order of tens of cycles on current cores when it has to wait for \
         outstanding stores or loads, and close to nothing when the queues are empty. That is \
         two barriers per write section (beside an `mmap()` that costs microseconds in the \
         kernel: well under 1%) and one per speculative read (comparable to the 5–15 ns read \
         itself, but it replaces an `mmap_read_lock` whose atomic RMW on a shared cache line \
         costs more under contention). Rust has no store-store-only fence, so this model's \
         `upstream` would emit `dmb ish` where the kernel emits `dmb ishst` (docs/ordering.md).\n\n",
    );
    o
}
