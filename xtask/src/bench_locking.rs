//! The locking-protocol part of the report: reads `locking.tsv` (written
//! by `benches/benches/locking.rs`) and turns it into tables and computed
//! conclusions: pft-threads, will-it-scale page_fault1/2/3, the
//! proc-mmap_sem-test analogue and `vma_start_write` per VMA.
//!
//! Here: the rows, reading `locking.tsv`, the cells shared by the tables,
//! the section's frame ([`markdown`]) and `summary.json`'s part
//! ([`json`](fn@json)); each table with its conclusions is a submodule:
//! `faults`, `mmap_sem`, `vsw`.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;

use serde_json::{Value, json};

mod faults;
mod mmap_sem;
mod vsw;

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
    faults::fault_section(
        out,
        l,
        "pft",
        "pft-threads: the threads fault disjoint 16 MiB parts of one anonymous mapping (one VMA), one write per page; mapping and unmapping are outside the timed phase.",
    );
    faults::fault_section(
        out,
        l,
        "page_fault1",
        "will-it-scale page_fault1: each thread maps 128 MiB anonymous, writes every page, unmaps, in a loop.",
    );
    faults::fault_section(
        out,
        l,
        "page_fault2",
        "will-it-scale page_fault2: as page_fault1 on a private mapping of the thread's own 128 MiB file (copy on write).",
    );
    faults::fault_section(
        out,
        l,
        "page_fault3",
        "will-it-scale page_fault3: as page_fault2 with a shared mapping.",
    );
    let _ = writeln!(
        out,
        "**proc-mmap_sem-test analogue**: one thread maps and unmaps 4 KiB in a hole of a 1,024-VMA layout and times each pair, while the other CPU's thread reads `/proc/pid/maps` in a loop (kernel: `/proc/self/maps`; model: the model's maps).\n"
    );
    mmap_sem::sem_section(out, l);
    let _ = writeln!(
        out,
        "**`vma_start_write` per VMA**: write sections that write-lock `k` of 64 VMAs, per policy, single thread, no readers.\n"
    );
    vsw::vsw_section(out, l);
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
