//! The fault tables of the locking section (pft-threads and will-it-scale
//! page_fault1/2/3): pages per second per variant and thread count, and
//! the conclusions computed from them, the scaling the model's lock
//! protocol predicts for the kernel among them.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use super::{FaultRow, Locking, ns_cell, rate_cell, rounds, spread, x_cell};

impl Locking {
    fn fault(&self, kind: &str, variant: &str, threads: usize, round: usize) -> Option<&FaultRow> {
        self.faults
            .iter()
            .find(|r| r.kind == kind && r.variant == variant && r.threads == threads && r.round == round)
    }

    /// Per round, `f` of the rows it needs; rounds where one is missing
    /// are left out.
    fn per_round(&self, f: impl Fn(usize) -> Option<f64>) -> Option<(f64, f64, f64)> {
        spread(rounds(&self.faults, |r| r.round).into_iter().filter_map(f).collect())
    }

    fn rate(&self, kind: &str, variant: &str, t: usize, round: usize) -> Option<f64> {
        self.fault(kind, variant, t, round).map(FaultRow::rate)
    }

    /// The kernel's scaling from 1 to `n` threads if the model's lock
    /// protocol (through `variant`) were its only shared cost: per thread
    /// the kernel spends `b` ns a fault at 1 thread, the protocol `a1` of
    /// them, becoming `an` at `n` threads.
    fn predicted(&self, kind: &str, variant: &str, n: usize, round: usize) -> Option<f64> {
        let b = 1e9 / self.rate(kind, "kernel", 1, round)?;
        let a1 = 1e9 / self.rate(kind, variant, 1, round)?;
        let an = n as f64 * 1e9 / self.rate(kind, variant, n, round)?;
        Some(n as f64 * b / (b - a1 + an))
    }
}

/// Verdict of a measured range against a predicted one.
fn compare(measured: (f64, f64, f64), predicted: (f64, f64, f64)) -> &'static str {
    if measured.2 < predicted.1 {
        "below the prediction's range in every round: the kernel loses more than its lock protocol explains (the rest is work the model leaves out, such as page allocation, zeroing, page-table and LRU locks and memcg charging, or the machine's CPUs)"
    } else if measured.1 > predicted.2 {
        "above the prediction's range in every round: the model overstates the contention of the protocol"
    } else {
        "within the prediction's range: the rounds cannot tell them apart"
    }
}

const VARIANTS: [(&str, &str); 3] = [
    ("kernel", "kernel"),
    ("model-vma-lock", "model, per-VMA locks"),
    ("model-mmap-lock", "model, mmap_lock only"),
];

pub(super) fn fault_section(out: &mut String, l: &Locking, kind: &str, what: &str) {
    let threads: Vec<usize> = {
        let s: BTreeSet<usize> = l.faults.iter().filter(|r| r.kind == kind).map(|r| r.threads).collect();
        s.into_iter().collect()
    };
    if threads.is_empty() {
        return;
    }
    let _ = writeln!(out, "**`{kind}`**: {what}\n");
    let _ = writeln!(
        out,
        "| threads | kernel (pages/s) | model, per-VMA locks | model, mmap_lock only | per-VMA locks: faults under the VMA lock |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|");
    for &t in &threads {
        let cells: Vec<String> = VARIANTS
            .iter()
            .map(|(v, _)| rate_cell(l.per_round(|r| l.rate(kind, v, t, r))))
            .collect();
        let (vl, all) = l
            .faults
            .iter()
            .filter(|r| r.kind == kind && r.variant == "model-vma-lock" && r.threads == t)
            .fold((0, 0), |(a, b), r| (a + r.vma_lock, b + r.faults));
        let share = if all > 0 {
            format!("{:.2}%", 100.0 * vl as f64 / all as f64)
        } else {
            "–".into()
        };
        let _ = writeln!(out, "| {t} | {} | {} | {} | {share} |", cells[0], cells[1], cells[2]);
    }
    let n = *threads.last().unwrap();
    if n == 1 || !threads.contains(&1) {
        let _ = writeln!(out, "\nOnly one thread count was measured: no scaling to compare.\n");
        return;
    }
    let scale = |v: &str| l.per_round(|r| Some(l.rate(kind, v, n, r)? / l.rate(kind, v, 1, r)?));
    let (k, vm, mm) = (scale("kernel"), scale("model-vma-lock"), scale("model-mmap-lock"));
    let p_vma = l.per_round(|r| l.predicted(kind, "model-vma-lock", n, r));
    let p_mm = l.per_round(|r| l.predicted(kind, "model-mmap-lock", n, r));
    let cost = |v: &str, t: usize| l.per_round(|r| Some(t as f64 * 1e9 / l.rate(kind, v, t, r)?));
    let _ = writeln!(
        out,
        "\nFrom 1 to {n} threads the kernel's throughput went {}; the model's lock protocol went {} with per-VMA locks and {} with mmap_lock only.",
        x_cell(k),
        x_cell(vm),
        x_cell(mm)
    );
    let _ = writeln!(
        out,
        "Per thread, a kernel fault took {} at 1 thread; the model's protocol took {} at 1 thread and {} at {n} (per-VMA locks), {} and {} (mmap_lock only).",
        ns_cell(cost("kernel", 1)),
        ns_cell(cost("model-vma-lock", 1)),
        ns_cell(cost("model-vma-lock", n)),
        ns_cell(cost("model-mmap-lock", 1)),
        ns_cell(cost("model-mmap-lock", n)),
    );
    if let (Some(k), Some(p)) = (k, p_vma) {
        let _ = writeln!(
            out,
            "If the per-VMA lock protocol were the kernel's only shared cost, the kernel would scale {} (its 1-thread time per fault, less the protocol's 1-thread cost, plus the protocol's {n}-thread cost). The kernel's {:.2}× is {}.",
            x_cell(Some(p)),
            k.0,
            compare(k, p)
        );
    }
    if let Some(p) = p_mm {
        let _ = writeln!(
            out,
            "The same arithmetic for a kernel without per-VMA locks (mmap_lock only, which this kernel cannot be switched to) predicts {}.",
            x_cell(Some(p))
        );
    }
    if let Some(r) =
        l.per_round(|r| Some(l.rate(kind, "model-vma-lock", n, r)? / l.rate(kind, "model-mmap-lock", n, r)?))
    {
        let verdict = if r.1 > 1.0 {
            "faster in every round"
        } else if r.2 < 1.0 {
            "slower in every round"
        } else {
            "neither faster nor slower in every round: the rounds cannot tell them apart"
        };
        let _ = writeln!(
            out,
            "At {n} threads the model's per-VMA locks handle {} the faults per second of mmap_lock only: {verdict}.",
            x_cell(Some(r))
        );
    }
    let _ = writeln!(out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench_locking::markdown;

    fn row(kind: &str, variant: &str, threads: usize, round: usize, rate: f64) -> FaultRow {
        FaultRow {
            kind: kind.into(),
            variant: variant.into(),
            threads,
            round,
            faults: rate as u64,
            secs: 1.0,
            vma_lock: rate as u64,
            fallback: 0,
        }
    }

    fn data(kernel2: [f64; 3]) -> Locking {
        let mut l = Locking {
            cpus: 2,
            ..Locking::default()
        };
        for (round, &k2) in kernel2.iter().enumerate() {
            l.faults.push(row("pft", "kernel", 1, round, 1e6));
            l.faults.push(row("pft", "kernel", 2, round, k2));
            l.faults.push(row("pft", "model-vma-lock", 1, round, 1e8));
            l.faults.push(row("pft", "model-vma-lock", 2, round, 1e8));
            l.faults.push(row("pft", "model-mmap-lock", 1, round, 5e7));
            l.faults.push(row("pft", "model-mmap-lock", 2, round, 1e7));
        }
        l
    }

    #[test]
    fn the_prediction_follows_the_arithmetic() {
        // b = 1000 ns, a1 = 10 ns, a2 = 20 ns: 2 * 1000 / 1010.
        let l = data([1.9e6; 3]);
        let p = l.predicted("pft", "model-vma-lock", 2, 0).unwrap();
        assert!((p - 2000.0 / 1010.0).abs() < 1e-9, "{p}");
    }

    #[test]
    fn the_conclusions_follow_the_data() {
        let mut below = String::new();
        markdown(&mut below, &data([1.2e6, 1.3e6, 1.1e6]));
        assert!(below.contains("below the prediction's range"), "{below}");
        let mut within = String::new();
        markdown(&mut within, &data([1.9e6, 2.0e6, 1.95e6]));
        assert!(within.contains("within the prediction's range"), "{within}");
        assert!(within.contains("faster in every round"));
    }
}
