//! The proc-mmap_sem-test table of the locking section: the writer's
//! mmap+munmap latencies with and without maps readers, kernel and model,
//! and which of the model's two maps readers the kernel's ratio is closer
//! to.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use super::{Locking, SemRow, ns_cell, rate_cell, rounds, spread, x_cell};

pub(super) fn sem_section(out: &mut String, l: &Locking) {
    if l.sem.is_empty() {
        return;
    }
    let readers: BTreeSet<usize> = l.sem.iter().map(|r| r.readers).collect();
    let variants = [
        ("kernel", "kernel (6.18: maps under per-VMA locks)"),
        ("model-vma-locked-maps", "model, maps under per-VMA locks (6.17+)"),
        ("model-mmap-lock-maps", "model, maps under mmap_read_lock (before 6.17)"),
    ];
    let get = |v: &str, n: usize, f: &dyn Fn(&SemRow) -> f64| {
        spread(
            l.sem
                .iter()
                .filter(|r| r.variant == v && r.readers == n)
                .map(f)
                .collect(),
        )
    };
    let _ = writeln!(
        out,
        "| maps readers | mmap+munmap of | p50 | p99 | max | pairs timed | maps reads |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|");
    for &n in &readers {
        for (v, name) in variants {
            let _ = writeln!(
                out,
                "| {n} | {name} | {} | {} | {} | {} | {} |",
                ns_cell(get(v, n, &|r| r.p50)),
                ns_cell(get(v, n, &|r| r.p99)),
                ns_cell(get(v, n, &|r| r.max)),
                rate_cell(get(v, n, &|r| r.count as f64)),
                rate_cell(get(v, n, &|r| r.reads as f64)),
            );
        }
    }
    let most = *readers.last().unwrap();
    if most == 0 || !readers.contains(&0) {
        return;
    }
    let ratio = |v: &str, f: fn(&SemRow) -> f64| {
        let rs = rounds(&l.sem, |r| r.round);
        spread(
            rs.into_iter()
                .filter_map(|round| {
                    let find = |n| {
                        l.sem
                            .iter()
                            .find(|r| r.variant == v && r.readers == n && r.round == round)
                    };
                    Some(f(find(most)?) / f(find(0)?))
                })
                .collect(),
        )
    };
    for (what, f) in [
        ("p50", (|r: &SemRow| r.p50) as fn(&SemRow) -> f64),
        ("p99", |r: &SemRow| r.p99),
    ] {
        let (k, v, m) = (
            ratio("kernel", f),
            ratio("model-vma-locked-maps", f),
            ratio("model-mmap-lock-maps", f),
        );
        let _ = write!(
            out,
            "\nWith {most} maps reader(s), the writer's {what} went {} on the kernel; the model predicts {} with maps read under per-VMA locks and {} with maps read under mmap_read_lock.",
            x_cell(k),
            x_cell(v),
            x_cell(m)
        );
        if let (Some(k), Some(v), Some(m)) = (k, v, m) {
            let (dv, dm) = ((k.0 / v.0).ln().abs(), (k.0 / m.0).ln().abs());
            let closer = if dv < dm { "per-VMA-lock" } else { "mmap_read_lock" };
            let _ = write!(
                out,
                " The kernel's median ratio is closer to the {closer} prediction (|ln| distance: {dv:.2} to per-VMA locks, {dm:.2} to mmap_read_lock)."
            );
        }
    }
    if let Some(k) = get("kernel", most, &|r| r.max) {
        let _ = write!(
            out,
            "\nThe maxima vary from {:.0} to {:.0} ns across the kernel's rounds with readers: single events, which the rounds do not reproduce closely enough to compare.",
            k.1, k.2
        );
    }
    let _ = writeln!(out, "\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sem_conclusion_names_the_closer_prediction() {
        let mut l = Locking::default();
        for (v, p99_readers) in [
            ("kernel", 5000.0),
            ("model-vma-locked-maps", 900.0),
            ("model-mmap-lock-maps", 90_000.0),
        ] {
            for (readers, p99) in [(0, 450.0), (1, p99_readers)] {
                l.sem.push(SemRow {
                    variant: v.into(),
                    readers,
                    round: 0,
                    count: 10,
                    p50: 100.0,
                    p99,
                    max: p99,
                    reads: 5,
                });
            }
        }
        let mut out = String::new();
        sem_section(&mut out, &l);
        assert!(out.contains("closer to the mmap_read_lock prediction"), "{out}");
        for r in l.sem.iter_mut().filter(|r| r.variant == "kernel" && r.readers == 1) {
            r.p99 = 950.0;
        }
        let mut out = String::new();
        sem_section(&mut out, &l);
        assert!(out.contains("p99 went 2.11×"), "{out}");
        assert!(out.contains("closer to the per-VMA-lock prediction"), "{out}");
    }
}
