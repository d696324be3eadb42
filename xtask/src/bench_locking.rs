//! The locking-protocol part of the report: reads `locking.tsv` (written
//! by `benches/benches/locking.rs`) and turns it into tables and computed
//! conclusions: pft-threads, will-it-scale page_fault1/2/3, the
//! proc-mmap_sem-test analogue and `vma_start_write` per VMA.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;

use serde_json::{Value, json};

/// One fault run: `pft` or `page_faultN`.
#[derive(Clone, Debug)]
pub struct FaultRow {
    pub kind: String,
    pub variant: String,
    pub threads: usize,
    pub round: usize,
    pub faults: u64,
    pub secs: f64,
    pub vma_lock: u64,
    pub fallback: u64,
}

impl FaultRow {
    fn rate(&self) -> f64 {
        self.faults as f64 / self.secs
    }
}

/// One proc-mmap_sem-test run.
#[derive(Clone, Debug)]
pub struct SemRow {
    pub variant: String,
    pub readers: usize,
    pub round: usize,
    pub count: u64,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
    pub reads: u64,
}

/// One `vma_start_write` measurement: ns per section locking `k` VMAs.
#[derive(Clone, Debug)]
pub struct VswRow {
    pub policy: String,
    pub k: usize,
    pub round: usize,
    pub ns: f64,
}

/// Everything `locking.tsv` holds.
#[derive(Clone, Debug, Default)]
pub struct Locking {
    pub cpus: usize,
    pub faults: Vec<FaultRow>,
    pub sem: Vec<SemRow>,
    pub vsw: Vec<VswRow>,
}

fn field<T: std::str::FromStr>(f: &[&str], i: usize, line: usize) -> Result<T, String> {
    f.get(i)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("locking.tsv line {line}: field {} unreadable", i + 1))
}

/// Reads `locking.tsv`.
pub fn read(path: &Path) -> Result<Locking, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut l = Locking::default();
    for (n, line) in text.lines().enumerate() {
        let f: Vec<&str> = line.split('\t').collect();
        let n = n + 1;
        match f[0] {
            "cpus" => l.cpus = field(&f, 1, n)?,
            "vsw" => l.vsw.push(VswRow {
                policy: f[1].to_string(),
                k: field(&f, 2, n)?,
                round: field(&f, 3, n)?,
                ns: field(&f, 4, n)?,
            }),
            "mmapsem" => l.sem.push(SemRow {
                variant: f[1].to_string(),
                readers: field(&f, 2, n)?,
                round: field(&f, 3, n)?,
                count: field(&f, 4, n)?,
                p50: field(&f, 5, n)?,
                p99: field(&f, 6, n)?,
                max: field(&f, 7, n)?,
                reads: field(&f, 8, n)?,
            }),
            kind if kind == "pft" || kind.starts_with("page_fault") => l.faults.push(FaultRow {
                kind: kind.to_string(),
                variant: f.get(1).ok_or(format!("locking.tsv line {n}: no variant"))?.to_string(),
                threads: field(&f, 2, n)?,
                round: field(&f, 3, n)?,
                faults: field(&f, 4, n)?,
                secs: field(&f, 5, n)?,
                vma_lock: field(&f, 6, n)?,
                fallback: field(&f, 7, n)?,
            }),
            other => return Err(format!("locking.tsv line {n}: unknown record {other:?}")),
        }
    }
    if l.faults.is_empty() && l.sem.is_empty() && l.vsw.is_empty() {
        return Err(format!("{}: no measurements", path.display()));
    }
    Ok(l)
}

/// Median, minimum and maximum of `v` (`None` if empty).
fn spread(mut v: Vec<f64>) -> Option<(f64, f64, f64)> {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let med = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    Some((med, v[0], v[n - 1]))
}

fn rate_cell(s: Option<(f64, f64, f64)>) -> String {
    match s {
        Some((m, lo, hi)) => format!("{} [{}–{}]", si(m), si(lo), si(hi)),
        None => "–".into(),
    }
}

fn x_cell(s: Option<(f64, f64, f64)>) -> String {
    match s {
        Some((m, lo, hi)) => format!("{m:.2}× [{lo:.2}–{hi:.2}]"),
        None => "–".into(),
    }
}

fn ns_cell(s: Option<(f64, f64, f64)>) -> String {
    match s {
        Some((m, lo, hi)) => format!("{m:.0} ns [{lo:.0}–{hi:.0}]"),
        None => "–".into(),
    }
}

/// 1234567 → "1.23 M".
fn si(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2} M", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.1} k", x / 1e3)
    } else {
        format!("{x:.0}")
    }
}

fn rounds<T>(rows: &[T], round: impl Fn(&T) -> usize) -> Vec<usize> {
    let s: BTreeSet<usize> = rows.iter().map(round).collect();
    s.into_iter().collect()
}

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

fn fault_section(out: &mut String, l: &Locking, kind: &str, what: &str) {
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

fn sem_section(out: &mut String, l: &Locking) {
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

fn vsw_section(out: &mut String, l: &Locking) {
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

/// The report's locking section.
pub fn markdown(out: &mut String, l: &Locking) {
    let nrounds = rounds(&l.faults, |r| r.round)
        .len()
        .max(rounds(&l.sem, |r| r.round).len());
    let _ = writeln!(out, "## Locking protocol: faults, maps readers and vma_start_write\n");
    let _ = writeln!(
        out,
        "Threads mode: every thread in this one process, so they share one mm (kernel) or one `MmStruct` (model), upstream policy. This machine has **{} CPU(s)**: thread counts above that time-share. `MM_BENCH_THREADS=1,2,4,8 cargo xtask bench` runs other counts on a larger machine. Each figure is the median of {nrounds} rounds, with [min–max] across them. A model fault handles no page: it is the lock protocol (lookup, VMA read lock or `mmap_lock`, the checks), so the model's time per fault is what the protocol costs, and the kernel's is the whole fault. Anonymous memory is `MADV_NOHUGEPAGE` on both sides. page_fault counts are pages written, as will-it-scale counts them; for a shared file mapping (page_fault3) the kernel maps up to 16 pages per fault (fault-around), the model faults each.\n",
        l.cpus
    );
    fault_section(
        out,
        l,
        "pft",
        "pft-threads: the threads fault disjoint 16 MiB parts of one anonymous mapping (one VMA), one write per page; mapping and unmapping are outside the timed phase.",
    );
    fault_section(
        out,
        l,
        "page_fault1",
        "will-it-scale page_fault1: each thread maps 128 MiB anonymous, writes every page, unmaps, in a loop.",
    );
    fault_section(
        out,
        l,
        "page_fault2",
        "will-it-scale page_fault2: as page_fault1 on a private mapping of the thread's own 128 MiB file (copy on write).",
    );
    fault_section(
        out,
        l,
        "page_fault3",
        "will-it-scale page_fault3: as page_fault2 with a shared mapping.",
    );
    let _ = writeln!(
        out,
        "**proc-mmap_sem-test analogue**: one thread maps and unmaps 4 KiB in a hole of a 1,024-VMA layout and times each pair, while the other CPU's thread reads `/proc/pid/maps` in a loop (kernel: `/proc/self/maps`; model: the model's maps).\n"
    );
    sem_section(out, l);
    let _ = writeln!(
        out,
        "**`vma_start_write` per VMA**: write sections that write-lock `k` of 64 VMAs, per policy, single thread, no readers.\n"
    );
    vsw_section(out, l);
}

/// The section for `summary.json`.
pub fn json(l: &Locking) -> Value {
    json!({
        "cpus": l.cpus,
        "faults": l.faults.iter().map(|r| json!({"test": r.kind, "variant": r.variant, "threads": r.threads,
            "round": r.round, "pages": r.faults, "secs": r.secs, "pages_per_s": r.rate(),
            "vma_lock": r.vma_lock, "fallback": r.fallback})).collect::<Vec<_>>(),
        "mmap_sem": l.sem.iter().map(|r| json!({"variant": r.variant, "readers": r.readers, "round": r.round,
            "pairs": r.count, "p50_ns": r.p50, "p99_ns": r.p99, "max_ns": r.max, "maps_reads": r.reads}))
            .collect::<Vec<_>>(),
        "vma_start_write": l.vsw.iter().map(|r| json!({"policy": r.policy, "vmas": r.k, "round": r.round,
            "ns_per_section": r.ns})).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn bad_lines_are_named() {
        let dir = std::env::temp_dir().join(format!("xtask-locking-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("locking.tsv");
        std::fs::write(&p, "cpus\t2\npft\tkernel\tx\t0\t1\t1\t0\t0\n").unwrap();
        let e = read(&p).unwrap_err();
        assert!(e.contains("line 2"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
