//! The `vma_start_write` table of the locking section: nanoseconds per
//! write section by policy and number of write-locked VMAs, the slope per
//! VMA, and whether the policies differ beyond the rounds' spread.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use super::{Locking, rounds, spread};

pub(super) fn vsw_section(out: &mut String, l: &Locking) {
    if l.vsw.is_empty() {
        return;
    }
    let policies: Vec<String> = {
        let mut seen = Vec::new();
        for r in &l.vsw {
            if !seen.contains(&r.policy) {
                seen.push(r.policy.clone());
            }
        }
        seen
    };
    let ks: BTreeSet<usize> = l.vsw.iter().map(|r| r.k).collect();
    let kmax = *ks.last().unwrap();
    let at = |p: &str, k: usize, round: usize| {
        l.vsw
            .iter()
            .find(|r| r.policy == p && r.k == k && r.round == round)
            .map(|r| r.ns)
    };
    let slope = |p: &str| {
        spread(
            rounds(&l.vsw, |r| r.round)
                .into_iter()
                .filter_map(|round| Some((at(p, kmax, round)? - at(p, 0, round)?) / kmax as f64))
                .collect(),
        )
    };
    let _ = write!(out, "| policy |");
    for k in &ks {
        let _ = write!(out, " section, {k} VMAs |");
    }
    let _ = writeln!(out, " per write-locked VMA |");
    let _ = writeln!(out, "|---|{}---|", "---|".repeat(ks.len()));
    let mut slopes = Vec::new();
    for p in &policies {
        let _ = write!(out, "| {p} |");
        for &k in &ks {
            let s = spread(
                l.vsw
                    .iter()
                    .filter(|r| &r.policy == p && r.k == k)
                    .map(|r| r.ns)
                    .collect(),
            );
            let _ = write!(
                out,
                " {} |",
                s.map_or("–".into(), |(m, lo, hi)| format!("{m:.1} ns [{lo:.1}–{hi:.1}]"))
            );
        }
        let s = slope(p);
        let _ = writeln!(
            out,
            " {} |",
            s.map_or("–".into(), |(m, lo, hi)| format!("{m:.2} ns [{lo:.2}–{hi:.2}]"))
        );
        if let Some(s) = s {
            slopes.push((p.clone(), s));
        }
    }
    if slopes.len() >= 2 {
        slopes.sort_by(|a, b| a.1.0.total_cmp(&b.1.0));
        let (lo, hi) = (&slopes[0], &slopes[slopes.len() - 1]);
        let noise = slopes.iter().map(|(_, s)| s.2 - s.1).fold(0.0, f64::max);
        let verdict = if hi.1.1 > lo.1.2 {
            "larger than the rounds' spread: the policies differ"
        } else {
            "within the rounds' spread: this run cannot tell the policies apart"
        };
        let _ = writeln!(
            out,
            "\nPer write-locked VMA, the policies range from {:.2} ns ({}) to {:.2} ns ({}); the largest spread of one policy across rounds is {noise:.2} ns, so the difference is {verdict}. The slope is (section with {kmax} VMAs − empty section) / {kmax}; the empty section is `mmap_write_lock`, the `mm_lock_seq` bump and `mmap_write_unlock`. The kernel's `vma_start_write` cannot be isolated from userspace, so this figure has no kernel column.\n",
            lo.1.0, lo.0, hi.1.0, hi.0
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench_locking::VswRow;

    #[test]
    fn vsw_verdict_depends_on_the_spread() {
        let mut l = Locking::default();
        for round in 0..3 {
            for (p, per) in [("a", 10.0), ("b", 12.0 + round as f64 * 3.0)] {
                l.vsw.push(VswRow {
                    policy: p.into(),
                    k: 0,
                    round,
                    ns: 20.0,
                });
                l.vsw.push(VswRow {
                    policy: p.into(),
                    k: 64,
                    round,
                    ns: 20.0 + 64.0 * per,
                });
            }
        }
        let mut out = String::new();
        vsw_section(&mut out, &l);
        assert!(out.contains("the policies differ"), "{out}");
        l.vsw
            .iter_mut()
            .filter(|r| r.policy == "b" && r.k == 64 && r.round == 0)
            .for_each(|r| r.ns = 20.0 + 64.0 * 9.0);
        let mut out = String::new();
        vsw_section(&mut out, &l);
        assert!(out.contains("cannot tell the policies apart"), "{out}");
    }
}
