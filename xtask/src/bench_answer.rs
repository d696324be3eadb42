//! The section of the report that answers the seed thread's question. Every
//! conclusion in it is computed from this run's data: the wall-clock
//! comparisons with their bootstrap intervals, the instruction counts, and
//! the disassembly of each policy. Where the data cannot decide, it says so
//! and gives the noise.

use std::fmt::Write as _;

use crate::bench::{Run, overhead};

fn med(run: &Run, name: &str, func: &str, vmas: u64) -> Option<f64> {
    run.est
        .get(&(name.to_string(), func.to_string(), vmas))
        .map(|e| e.median)
}

/// The wall-clock resolution of this run for comparisons between
/// policies: the largest difference between two policies whose protocol
/// steps compile to the same instructions (and whose paths callgrind counts
/// at most one instruction or 1% apart), for the same benchmark. `None`
/// when no such pair exists or no counts were taken.
fn resolution(run: &Run, vmas: u64) -> Option<(f64, String)> {
    let names = run.policy_names();
    let mut worst: Option<(f64, String)> = None;
    for (op, bench) in [
        ("mmap_munmap_4k", "mmap_munmap_4k"),
        ("mprotect_toggle", "mprotect_toggle"),
        ("brk1", "brk1"),
        ("spec_lookup", "spec_lookup"),
        ("write_lock_unlock", "write_lock_unlock"),
        ("try_begin_retry", "try_begin_retry"),
    ] {
        for (i, a) in names.iter().enumerate() {
            for b in &names[i + 1..] {
                let (Some(ca), Some(cb)) = (run.cost(op, a, vmas), run.cost(op, b, vmas)) else {
                    continue;
                };
                // Equivalent code: the four protocol steps disassemble to
                // the same instructions (then the whole paths differ only
                // by code placement, at most an instruction or 1% here);
                // without a disassembly, equal instruction counts.
                let equivalent = match asm_differs(run, a, b) {
                    Some(d) => d.is_empty() && (ca.ir - cb.ir).abs() <= 1.5_f64.max(0.01 * ca.ir),
                    None => (ca.ir - cb.ir).abs() < 0.5,
                };
                if !equivalent {
                    continue;
                }
                let (Some(ta), Some(tb)) = (med(run, bench, a, vmas), med(run, bench, b, vmas)) else {
                    continue;
                };
                let d = (tb / ta - 1.0).abs() * 100.0;
                if worst.as_ref().is_none_or(|w| d > w.0) {
                    worst = Some((d, format!("`{bench}`: {a} vs {b}")));
                }
            }
        }
    }
    worst
}

/// Steps whose instructions differ between two policies (from the
/// disassembly).
fn asm_differs(run: &Run, a: &str, b: &str) -> Option<Vec<String>> {
    let l = run.asm.as_ref()?;
    let get = |p: &str, s: &str| l.iter().find(|x| x.0 == p && x.1 == s).map(|x| x.2.clone());
    let steps = ["write-lock", "write-unlock", "try-begin", "retry"];
    Some(
        steps
            .iter()
            .filter(|s| get(a, s) != get(b, s))
            .map(|s| s.to_string())
            .collect(),
    )
}

/// The answer, as markdown.
pub fn answer(run: &Run) -> String {
    let v = 1024;
    let base = run.baseline().to_string();
    let names = run.policy_names();
    let mut o = String::new();
    o.push_str(
        "## The answer to the seed's question\n\n\
         > Do you think this might have a noticeable impact on performance? What sort of \
         benchmark do mm folks use to quantify changes like that?\n\n\
         **The benchmarks mm developers use** for mmap_lock changes are will-it-scale's \
         `mmap1`, `mmap2`, `brk1` (processes and threads modes), run through mmtests or the \
         0-day bot, which reports per-commit regressions in ops/s. This suite has their \
         analogues above, next to the same loop on the host kernel, plus the microbenchmarks \
         that isolate the change (the lock/unlock pair, the speculative begin/retry pair) and \
         callgrind's instruction counts, which do not depend on the machine's load.\n\n",
    );
    let _ = writeln!(
        o,
        "**Measured at {v} VMAs in this run** (wall clock: median, and the change against \
         `{base}` with its significance; instructions per operation from callgrind):\n"
    );
    let mut head = "| |".to_string();
    for p in &names {
        let _ = write!(head, " {p} |");
    }
    let _ = writeln!(o, "{head}\n|{}", "---|".repeat(names.len() + 1));
    for name in [
        "write_lock_unlock",
        "try_begin_retry",
        "mmap_munmap_4k",
        "mprotect_toggle",
        "spec_lookup",
    ] {
        let mut row = format!("| `{name}` |");
        for p in &names {
            let m = med(run, name, p, v).map_or("–".into(), |m| format!("{m:.2} ns"));
            let d = if *p == base {
                String::new()
            } else {
                match overhead(run, name, p, v) {
                    Some((r, sig)) => format!(
                        ", {:+.1}% ({})",
                        (r - 1.0) * 100.0,
                        if sig { "significant" } else { "within noise" }
                    ),
                    None => String::new(),
                }
            };
            let ic = run
                .cost(name, p, v)
                .map_or(String::new(), |c| format!(", {:.0} instr", c.ir));
            let _ = write!(row, " {m}{d}{ic} |");
        }
        let _ = writeln!(o, "{row}");
    }
    o.push('\n');

    // The conclusion, per policy, from the data above.
    let res = resolution(run, v);
    match &res {
        Some((d, pair)) => {
            let _ = writeln!(
                o,
                "**This run's resolution.** Policies whose protocol steps compile to the same \
                 instructions differ by up to {d:.1}% in wall time here (largest: {pair}); differences smaller than that are \
                 not a measurement of barrier cost on this machine.\n"
            );
        }
        None => {
            let _ = writeln!(
                o,
                "**This run's resolution** could not be estimated (no two policies with equal \
                 instruction counts, or no counts).\n"
            );
        }
    }
    let benches = [
        "write_lock_unlock",
        "try_begin_retry",
        "mmap_munmap_4k",
        "mprotect_toggle",
        "spec_lookup",
        "brk1",
    ];
    for p in names.iter().filter(|p| **p != base) {
        let mut sig_up = vec![];
        let mut sig_down = vec![];
        let mut noise = 0;
        for b in benches {
            match overhead(run, b, p, v) {
                Some((r, true)) if res.as_ref().is_none_or(|(d, _)| (r - 1.0).abs() * 100.0 > *d) => {
                    if r > 1.0 {
                        sig_up.push(format!("`{b}` {:+.1}%", (r - 1.0) * 100.0));
                    } else {
                        sig_down.push(format!("`{b}` {:+.1}%", (r - 1.0) * 100.0));
                    }
                }
                Some(_) => noise += 1,
                None => {}
            }
        }
        let extra_instr: Vec<String> = benches
            .iter()
            .filter_map(|b| {
                let (a, c) = (run.cost(b, &base, v)?, run.cost(b, p, v)?);
                ((c.ir - a.ir).abs() > 0.5).then(|| format!("`{b}` {:+.0}", c.ir - a.ir))
            })
            .collect();
        let asm = asm_differs(run, &base, p);
        let _ = write!(o, "- **`{p}`**: ");
        if sig_up.is_empty() && sig_down.is_empty() {
            let _ = write!(
                o,
                "no difference from `{base}` beyond this run's noise on any of the {noise} compared benchmarks"
            );
        } else {
            if !sig_up.is_empty() {
                let _ = write!(o, "slower than `{base}` beyond the noise on {}", sig_up.join(", "));
            }
            if !sig_down.is_empty() {
                let _ = write!(
                    o,
                    "{}faster than `{base}` beyond the noise on {}",
                    if sig_up.is_empty() { "" } else { "; " },
                    sig_down.join(", ")
                );
            }
        }
        if run.icount.is_ok() {
            if extra_instr.is_empty() {
                let _ = write!(o, "; the same instruction counts as `{base}`");
            } else {
                let _ = write!(
                    o,
                    "; instructions per operation against `{base}`: {}",
                    extra_instr.join(", ")
                );
            }
        }
        match asm {
            Some(d) if d.is_empty() => {
                let _ = write!(
                    o,
                    "; its four protocol steps compile to the same instructions as `{base}`'s"
                );
            }
            Some(d) => {
                let _ = write!(
                    o,
                    "; its {} compile to other instructions than `{base}`'s",
                    d.join(", ")
                );
            }
            None => {}
        }
        o.push_str(".\n");
    }
    o.push('\n');

    if let Some(l) = &run.asm {
        let _ = writeln!(
            o,
            "**What the policies compile to** on this machine ({}; `cargo xtask asm`):\n\n\
             | policy | write lock | write unlock | try_begin | retry |\n|---|---|---|---|---|",
            std::env::consts::ARCH
        );
        for p in &names {
            let cell = |s: &str| {
                l.iter()
                    .find(|x| x.0 == *p && x.1 == s)
                    .map_or("–".into(), |x| format!("`{}`", x.2))
            };
            let _ = writeln!(
                o,
                "| {p} | {} | {} | {} | {} |",
                cell("write-lock"),
                cell("write-unlock"),
                cell("try-begin"),
                cell("retry")
            );
        }
        o.push('\n');
    }

    // Against the kernel's own cost: the extra time of each policy's lock
    // pair as a share of the kernel's mmap+munmap.
    if let Some(k) = med(run, "mmap_munmap_4k", "kernel", v) {
        let a = med(run, "write_lock_unlock", &base, v);
        let mut parts = vec![];
        for p in names.iter().filter(|p| **p != base) {
            if let (Some(a), Some(b)) = (a, med(run, "write_lock_unlock", p, v)) {
                // mmap + munmap: two write sections.
                parts.push(format!(
                    "`{p}` {:+.2} ns per section, {:+.2}% of it",
                    b - a,
                    200.0 * (b - a) / k
                ));
            }
        }
        let _ = writeln!(
            o,
            "**Against the kernel's own cost.** The kernel's mmap+munmap of 4 KiB took {k:.0} ns in \
             this run, with two write sections. Each policy's lock+unlock pair against `{base}`'s, \
             counted twice: {}.\n",
            if parts.is_empty() {
                "not measured".to_string()
            } else {
                parts.join("; ")
            }
        );
    }
    o.push_str(
        "**arm64**: not measured (no arm64 machine here); `docs/ordering.md` lists the \
         instructions each policy needs there, on paper.\n\n",
    );
    o
}
