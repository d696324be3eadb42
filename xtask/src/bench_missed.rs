//! The report's "Where the targets are missed": for each missed target
//! that an instruction count can explain, the callgrind profile of the
//! operation (by function, by source file, by concern) and, for the
//! lookup, instructions against simulated cache misses. Every sentence is
//! computed from the run.

use std::fmt::Write as _;

use crate::bench::Run;
use crate::bench_report::{BUDGETS, median, ns};

/// The profile of `op` (upstream, 1,024 VMAs): heaviest functions, the
/// same instructions by source file, and a sentence by concern, all from
/// this run's callgrind profile.
fn profile_block(out: &mut String, run: &Run, op: &str) {
    let Some(p) = run.profiles.iter().find(|p| p.op == op) else {
        let _ = writeln!(out, "(no profile of `{op}` in this run)\n");
        return;
    };
    let total = p.ir.max(1.0);
    if !p.files.is_empty() {
        let mut by: Vec<(&str, f64)> = vec![];
        for (f, ir) in &p.files {
            let c = crate::icount::concern(f);
            match by.iter_mut().find(|(g, _)| *g == c) {
                Some(e) => e.1 += ir,
                None => by.push((c, *ir)),
            }
        }
        by.sort_by(|a, b| b.1.total_cmp(&a.1));
        let parts: Vec<String> = by
            .iter()
            .filter(|(_, ir)| *ir >= 0.5)
            .map(|(c, ir)| format!("{c} {ir:.0} ({:.0}%)", 100.0 * ir / total))
            .collect();
        let _ = writeln!(
            out,
            "By concern (each instruction counted in the file its code is written in, inlined code included): {}.\n",
            parts.join("; ")
        );
    }
    let _ = writeln!(
        out,
        "| function (self) | instructions per operation | share |\n|---|---|---|"
    );
    for (f, ir) in &p.top {
        let _ = writeln!(out, "| `{f}` | {ir:.0} | {:.0}% |", 100.0 * ir / total);
    }
    out.push('\n');
    if !p.files.is_empty() {
        let _ = writeln!(
            out,
            "| source file | instructions per operation | share |\n|---|---|---|"
        );
        for (f, ir) in p.files.iter().take(10) {
            let _ = writeln!(out, "| `{f}` | {ir:.0} | {:.0}% |", 100.0 * ir / total);
        }
        out.push('\n');
    }
}

/// For each missed target that an instruction count can explain, where
/// the instructions (or the cache misses) go: the instruction budgets, the
/// write-path ratios, the lookup's time and its growth.
pub fn missed_section(out: &mut String, run: &Run) {
    let _ = writeln!(out, "## Where the targets are missed\n");
    let up = "upstream";
    let mut any = false;
    let lock = run.cost("write_lock_unlock", up, 1024).map(|l| l.ir);
    for (op, budget) in BUDGETS {
        let Some(c) = run.cost(op, up, 1024) else {
            continue;
        };
        if c.ir <= budget {
            continue;
        }
        any = true;
        let _ = writeln!(
            out,
            "**`{op}`**: {:.0} instructions against a budget of {budget:.0} ({:.1}×).{}\n",
            c.ir,
            c.ir / budget,
            match (op, lock) {
                ("spec_lookup" | "maps_render", _) | (_, None) => String::new(),
                (_, Some(l)) => format!(
                    " Its two calls take the lock twice: {:.0} instructions of it are `write_lock_unlock`'s.",
                    2.0 * l
                ),
            }
        );
        profile_block(out, run, op);
    }
    // Wall-clock ratios missed on operations with no budget of their own.
    for name in ["mmap_munmap_4k_own"] {
        let Some((k, m)) = median(run, name, "kernel", 1024).zip(median(run, name, up, 1024)) else {
            continue;
        };
        if k / m >= 25.0 {
            continue;
        }
        any = true;
        let c = run.cost(name, up, 1024);
        let _ = writeln!(
            out,
            "**`{name}`**: {:.1}× faster than the kernel, 25× wanted ({} would be needed against the kernel's {}).{}\n",
            k / m,
            ns(k / 25.0),
            ns(k),
            c.map_or(String::new(), |c| format!(
                " It takes {:.0} instructions, {:.1}× the merging `mmap_munmap_4k`'s {}.",
                c.ir,
                run.cost("mmap_munmap_4k", up, 1024).map_or(f64::NAN, |m| c.ir / m.ir),
                run.cost("mmap_munmap_4k", up, 1024)
                    .map_or("–".into(), |m| format!("{:.0}", m.ir))
            ))
        );
        profile_block(out, run, name);
    }
    // The lookup's time and its growth: instructions against cache misses.
    let s = median(run, "spec_lookup", up, 1024);
    let growth = median(run, "spec_lookup", up, 64).zip(median(run, "spec_lookup", up, 65530));
    let slow = s.is_some_and(|s| s > 15.0);
    let grows = growth.is_some_and(|(a, b)| b / a > 2.5);
    if slow || grows {
        any = true;
        let at = |v| run.cost("spec_lookup", up, v);
        let _ = write!(out, "**`spec_lookup`**:");
        if let Some(s) = s.filter(|_| slow) {
            let _ = write!(out, " {} at 1,024 VMAs, 15 ns wanted.", ns(s));
        }
        if let Some((a, b)) = growth.filter(|_| grows) {
            let _ = write!(
                out,
                " From 64 to 65,530 VMAs its time grows {:.2}× ({} → {}).",
                b / a,
                ns(a),
                ns(b)
            );
        }
        if let (Some(x), Some(y)) = (at(64), at(65530)) {
            let ig = y.ir / x.ir;
            let _ = write!(
                out,
                " Its instructions grow {ig:.2}× ({:.0} → {:.0}) and its simulated L1 data misses from {:.2} to {:.2} per lookup (last-level: {:.2} → {:.2}).",
                x.ir, y.ir, x.d1_miss, y.d1_miss, x.ll_miss, y.ll_miss
            );
            if let Some((a, b)) = growth {
                let tg = b / a;
                let _ = write!(
                    out,
                    " {}",
                    if tg > ig * 1.25 && y.d1_miss > x.d1_miss + 1.0 {
                        format!(
                            "Time grows more than instructions do ({tg:.2}× against {ig:.2}×), and each lookup misses L1 {:.1} more times at 65,530 VMAs: what a lookup touches (tree nodes, VMA slots) no longer fits in the first-level cache.",
                            y.d1_miss - x.d1_miss
                        )
                    } else if tg > ig * 1.25 {
                        format!(
                            "Time grows more than instructions do ({tg:.2}× against {ig:.2}×), without a matching rise in simulated L1 misses: this run does not show where the difference comes from."
                        )
                    } else {
                        format!(
                            "Time grows about as instructions do ({tg:.2}× against {ig:.2}×): the extra tree levels cost instructions."
                        )
                    }
                );
            }
        }
        out.push_str("\n\n");
        profile_block(out, run, "spec_lookup");
    }
    if !any {
        let _ = writeln!(
            out,
            "{}\n",
            if run.icount.is_ok() {
                "Every target with an instruction count behind it is met in this run."
            } else {
                "No instruction counts in this run."
            }
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::Est;
    use crate::icount::{Cost, Profile};

    fn est(median: f64) -> Est {
        Est {
            median,
            lo: median,
            hi: median,
            samples: vec![median],
        }
    }

    fn cost(op: &str, vmas: u64, ir: f64, d1: f64) -> Cost {
        Cost {
            op: op.into(),
            policy: "upstream".into(),
            vmas,
            ir,
            d1_miss: d1,
            ll_miss: 0.0,
        }
    }

    /// A run whose lookup takes `t64` and `t65k` ns and misses L1 `d1_64`
    /// and `d1_65k` times per lookup.
    fn run(t64: f64, t65k: f64, d1_64: f64, d1_65k: f64, mprotect_ir: f64) -> Run {
        let mut r = Run::default();
        for (v, t) in [(64, t64), (1024, t64), (65530, t65k)] {
            r.est.insert(("spec_lookup".into(), "upstream".into(), v), est(t));
        }
        r.icount = Ok(vec![
            cost("spec_lookup", 64, 120.0, d1_64),
            cost("spec_lookup", 1024, 150.0, d1_64),
            cost("spec_lookup", 65530, 180.0, d1_65k),
            cost("mprotect_toggle", 1024, mprotect_ir, 0.0),
        ]);
        r.profiles = vec![Profile {
            op: "mprotect_toggle".into(),
            ir: mprotect_ir,
            top: vec![
                ("do_mprotect".into(), mprotect_ir * 0.75),
                ("move_boundary".into(), mprotect_ir * 0.25),
            ],
            files: vec![
                ("crates/mm-ops/src/kernel/mprotect.rs".into(), mprotect_ir * 0.6),
                ("crates/mm-core/src/tree/update.rs".into(), mprotect_ir * 0.3),
                ("std: core/src/slice/index.rs".into(), mprotect_ir * 0.1),
            ],
        }];
        r
    }

    fn text(r: &Run) -> String {
        let mut s = String::new();
        missed_section(&mut s, r);
        s
    }

    #[test]
    fn growth_sentence_follows_the_cache_misses() {
        // Time grows 4x, instructions 1.5x, L1 misses +3: the cache.
        let t = text(&run(10.0, 40.0, 1.0, 4.0, 500.0));
        assert!(t.contains("no longer fits in the first-level cache"), "{t}");
        // Same times, no rise in misses: the run cannot say.
        let t = text(&run(10.0, 40.0, 1.0, 1.2, 500.0));
        assert!(t.contains("does not show where the difference comes from"), "{t}");
        // Time grows as instructions do (1.5x): within 2.5x, and under
        // 15 ns: no lookup paragraph at all.
        let t = text(&run(10.0, 14.0, 1.0, 4.0, 500.0));
        assert!(!t.contains("`spec_lookup`"), "{t}");
        // 20 ns at 1,024 VMAs is over 15 ns: the paragraph appears, with
        // the time and instructions growing alike (1.4x against 1.5x).
        let t = text(&run(20.0, 28.0, 1.0, 4.0, 500.0));
        assert!(t.contains("20.0 ns at 1,024 VMAs"), "{t}");
        assert!(t.contains("Time grows about as instructions do"), "{t}");
    }

    #[test]
    fn budget_paragraph_and_concerns_follow_the_counts() {
        // 1,000 instructions against a budget of 600: the profile, with
        // the concerns summed from the files.
        let t = text(&run(10.0, 14.0, 1.0, 1.0, 1000.0));
        assert!(
            t.contains("**`mprotect_toggle`**: 1000 instructions against a budget of 600 (1.7×)"),
            "{t}"
        );
        assert!(t.contains("the system call's own rules"), "{t}");
        assert!(t.contains("600 (60%)"), "{t}");
        assert!(t.contains("| `crates/mm-core/src/tree/update.rs` | 300 | 30% |"), "{t}");
        // Within the budget: no paragraph, and the closing sentence says so.
        let t = text(&run(10.0, 14.0, 1.0, 1.0, 550.0));
        assert!(!t.contains("**`mprotect_toggle`**"), "{t}");
        assert!(
            t.contains("Every target with an instruction count behind it is met"),
            "{t}"
        );
    }
}
