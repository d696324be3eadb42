//! `mmsim simulate`, the main job: writers, file openers and readers on
//! real threads ([`mm_spec::stress`]), every answer checked, for each
//! barrier policy; side by side with the policy's loom verdict, taken from
//! a `cargo xtask loom` summary only when that summary was made from the
//! sources this binary was built from.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use mm_core::{BarrierPolicy, PolicyKind, PolicyVisitor};
use mm_spec::stress::{StressConfig, StressReport, run};

/// What to simulate.
#[derive(Clone, Debug)]
pub struct SimulateOptions {
    /// Reader threads.
    pub readers: usize,
    /// Writer threads.
    pub writers: usize,
    /// Threads that open and close files outside `mmap_lock`.
    pub openers: usize,
    /// Threads that read `/proc/PID/maps` under per-VMA locks.
    pub maps_readers: usize,
    /// Time per policy (split over the rounds).
    pub duration: Duration,
    /// Rounds per policy: the policies run in turn, round after round, so
    /// that drift of the machine falls on all of them; the spread of the
    /// rounds is the run-to-run noise the throughput columns show.
    pub rounds: usize,
    /// VMAs (slots) at the start.
    pub vmas: usize,
    /// Policies to run, in order.
    pub policies: Vec<PolicyKind>,
    /// Seed of the workloads.
    pub seed: u64,
    /// Show a progress bar on stderr.
    pub progress: bool,
    /// The loom summary to read (default: `mm-loom/summary.json` in the
    /// target directory this binary was built in).
    pub loom_summary: Option<PathBuf>,
}

/// One policy's results: one stress report per round.
#[derive(Clone, Debug)]
pub struct PolicyResult {
    /// The policy.
    pub policy: PolicyKind,
    /// The rounds.
    pub rounds: Vec<StressReport>,
}

impl PolicyResult {
    fn sum(&self, f: impl Fn(&StressReport) -> u64) -> u64 {
        self.rounds.iter().map(f).sum()
    }

    /// Per-round rates of `f` per second.
    fn rates(&self, f: impl Fn(&StressReport) -> u64) -> Vec<f64> {
        self.rounds
            .iter()
            .map(|r| f(r) as f64 / r.elapsed.as_secs_f64().max(1e-9))
            .collect()
    }

    /// Wrong answers over all rounds.
    pub fn wrong(&self) -> u64 {
        self.sum(|r| r.wrong)
    }
}

/// The run's verdict, from its data: every answer checked, none wrong
/// under a policy expected to be sound, and at least one checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// The run passes.
    pub pass: bool,
    /// Answers checked (validated speculative answers and fallbacks).
    pub checked: u64,
    /// Wrong answers under policies expected to be sound.
    pub sound_wrong: u64,
}

/// Computes the [`Verdict`] of `results`.
pub fn verdict(results: &[PolicyResult]) -> Verdict {
    let sound_wrong: u64 = results
        .iter()
        .filter(|r| r.policy.expected_sound())
        .map(PolicyResult::wrong)
        .sum();
    let checked: u64 = results.iter().map(|r| r.sum(|x| x.checked + x.fallback_checked)).sum();
    Verdict {
        pass: sound_wrong == 0 && checked > 0,
        checked,
        sound_wrong,
    }
}

/// What `cargo xtask loom` last recorded, and whether it applies here.
#[derive(Clone, Debug)]
pub enum LoomRecord {
    /// No summary file, or an unreadable one.
    Missing(String),
    /// A summary made from other sources than this build's.
    OtherSources {
        /// When it was made.
        date: String,
        /// The commit it names.
        commit: String,
    },
    /// A summary of this build's sources.
    Current {
        /// When it was made.
        date: String,
        /// The commit it names.
        commit: String,
        /// Its rows: (policy, scenario, verdict, preemption bound:
        /// `none` where the exploration was exhaustive).
        rows: Vec<(String, String, String, String)>,
    },
}

/// Reads the loom summary and compares its source fingerprint with the one
/// this binary was built from.
pub fn loom_record(path: Option<&PathBuf>) -> LoomRecord {
    let path = path.cloned().unwrap_or_else(|| {
        PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../target/mm-loom/summary.json"
        ))
    });
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => return LoomRecord::Missing(format!("{}: {e}", path.display())),
    };
    let v: serde_json::Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => return LoomRecord::Missing(format!("{}: {e}", path.display())),
    };
    let s = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("?").to_string();
    let (date, commit) = (s("date"), s("commit"));
    if s("source_fingerprint") != env!("MMSIM_SOURCE_FINGERPRINT") || v.get("complete") != Some(&true.into()) {
        return LoomRecord::OtherSources { date, commit };
    }
    let rows = v
        .get("rows")
        .and_then(|r| r.as_array())
        .map(|a| {
            a.iter()
                .map(|r| {
                    let f = |k: &str| r.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
                    (f("policy"), f("scenario"), f("verdict"), f("bound"))
                })
                .collect()
        })
        .unwrap_or_default();
    LoomRecord::Current { date, commit, rows }
}

/// The LOOM column of `policy` from a current record.
fn loom_cell(rec: &LoomRecord, policy: PolicyKind) -> String {
    let LoomRecord::Current { rows, .. } = rec else {
        return "-".into();
    };
    let mine: Vec<_> = rows.iter().filter(|r| r.0 == policy.name()).collect();
    if mine.is_empty() {
        return "not checked".into();
    }
    let bad: Vec<&str> = mine
        .iter()
        .filter(|r| r.2 == "violation-found")
        .map(|r| r.1.as_str())
        .collect();
    // How many were explored exhaustively (a summary without bounds says
    // nothing about it).
    let exhaustive = mine.iter().filter(|r| r.3 == "none").count();
    let how = if mine.iter().all(|r| r.3.is_empty()) {
        String::new()
    } else {
        format!(", {exhaustive} of them exhaustively")
    };
    if bad.is_empty() {
        format!("no violation in {} scenarios{how}", mine.len())
    } else {
        format!("violations in {}/{} ({})", bad.len(), mine.len(), bad.join(", "))
    }
}

/// One stress round of the visited policy.
struct RunPolicy<'a> {
    cfg: &'a StressConfig,
    pb: &'a ProgressBar,
    done: f64,
    total: f64,
}

impl PolicyVisitor for RunPolicy<'_> {
    type Output = StressReport;
    fn visit<P: BarrierPolicy>(self) -> StressReport {
        self.pb.set_message(P::NAME);
        let f = |x: f64| {
            self.pb
                .set_position(((self.done + x.min(1.0)) / self.total * 1000.0) as u64)
        };
        run::<P>(self.cfg, &f)
    }
}

/// Runs the simulation for every selected policy, round after round.
pub fn simulate(opts: &SimulateOptions) -> Vec<PolicyResult> {
    let rounds = opts.rounds.max(1);
    let cfg = StressConfig {
        writers: opts.writers.max(1),
        readers: opts.readers,
        openers: opts.openers,
        maps_readers: opts.maps_readers,
        duration: opts.duration / rounds as u32,
        slots: opts.vmas.max(1),
        seed: opts.seed,
        initial_seq: 0,
        sections_per_writer: None,
    };
    let pb = if opts.progress {
        ProgressBar::new(1000)
    } else {
        ProgressBar::hidden()
    };
    pb.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {percent:>3}% {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let total = (opts.policies.len() * rounds) as f64;
    let mut out: Vec<PolicyResult> = opts
        .policies
        .iter()
        .map(|&policy| PolicyResult { policy, rounds: vec![] })
        .collect();
    for round in 0..rounds {
        for (i, res) in out.iter_mut().enumerate() {
            let done = (round * opts.policies.len() + i) as f64;
            let cfg = StressConfig {
                seed: cfg.seed.wrapping_add(round as u64),
                ..cfg.clone()
            };
            let report = res.policy.visit(RunPolicy {
                cfg: &cfg,
                pb: &pb,
                done,
                total,
            });
            res.rounds.push(report);
        }
    }
    pb.finish_and_clear();
    out
}

/// Median, minimum and maximum.
fn spread(v: &[f64]) -> (f64, f64, f64) {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    if s.is_empty() {
        return (0.0, 0.0, 0.0);
    }
    (s[s.len() / 2], s[0], s[s.len() - 1])
}

fn rate(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2}M", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.1}k", x / 1e3)
    } else {
        format!("{x:.0}")
    }
}

/// Whether the policies' [min, max] ranges of `rates` overlap pairwise
/// for every pair (so that no ranking between them is supported).
fn ranges_overlap(ranges: &[(f64, f64, f64)]) -> bool {
    ranges.iter().all(|a| ranges.iter().all(|b| a.1 <= b.2 && b.1 <= a.2))
}

/// The report: what ran, one row per policy, the legend, the loom record
/// and a verdict computed from this run. Returns the text and whether no
/// checked answer was wrong under a sound policy.
pub fn render(opts: &SimulateOptions, results: &[PolicyResult], loom: &LoomRecord) -> (String, bool) {
    let mut s = String::new();
    let rounds = results.first().map_or(0, |r| r.rounds.len());
    let _ = writeln!(
        s,
        "mmsim simulate: {} writer(s), {} reader(s), {} opener(s), {} maps reader(s), {} VMAs, {:.1} s per policy in {} round(s), seed {}, {} on {} CPUs",
        opts.writers.max(1),
        opts.readers,
        opts.openers,
        opts.maps_readers,
        opts.vmas,
        opts.duration.as_secs_f64(),
        rounds,
        opts.seed,
        std::env::consts::ARCH,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let _ = writeln!(
        s,
        "{:<11} {:>24} {:>8} {:>9} {:>9} {:>8} {:>5} {:>7} {:>5} {:>22} {:>17} {:>5} {:>7}  LOOM",
        "POLICY",
        "READS/S med (min-max)",
        "SPEC OK%",
        "CHECKED",
        "FALLBACK",
        "FAULTS",
        "VMA%",
        "MAPS/S",
        "WRONG",
        "SECTIONS/S med (min-max)",
        "WRITE us p50/p99/max",
        "DOWNG",
        "OPENS"
    );
    let mut read_ranges = vec![];
    let mut write_ranges = vec![];
    for r in results {
        let reads = spread(&r.rates(|x| x.lookups.attempts + x.uprobes.attempts));
        let writes = spread(&r.rates(|x| x.writer_ops));
        read_ranges.push(reads);
        write_ranges.push(writes);
        let (att, ok) = (
            r.sum(|x| x.lookups.attempts + x.uprobes.attempts),
            r.sum(|x| x.lookups.successes + x.uprobes.successes),
        );
        let faults = r.sum(|x| x.faults.faults);
        let maps_rate = spread(&r.rates(|x| x.maps.reads)).0;
        // Over the rounds: the median of the medians, the worst p99 and max.
        let lat = {
            let mut p50: Vec<u64> = r.rounds.iter().map(|x| x.writer_latency.p50).collect();
            p50.sort_unstable();
            let p99 = r.rounds.iter().map(|x| x.writer_latency.p99).max().unwrap_or(0);
            let max = r.rounds.iter().map(|x| x.writer_latency.max).max().unwrap_or(0);
            format!(
                "{:.1}/{:.1}/{:.0}",
                p50.get(p50.len() / 2).copied().unwrap_or(0) as f64 / 1e3,
                p99 as f64 / 1e3,
                max as f64 / 1e3
            )
        };
        let _ = writeln!(
            s,
            "{:<11} {:>24} {:>8.3} {:>9} {:>9} {:>8} {:>5.1} {:>7} {:>5} {:>22} {:>17} {:>5} {:>7}  {}",
            r.policy.name(),
            format!("{} ({}-{})", rate(reads.0), rate(reads.1), rate(reads.2)),
            if att == 0 { 0.0 } else { 100.0 * ok as f64 / att as f64 },
            r.sum(|x| x.checked),
            r.sum(|x| x.fallback_checked),
            faults,
            if faults == 0 {
                0.0
            } else {
                100.0 * r.sum(|x| x.faults.vma_lock) as f64 / faults as f64
            },
            rate(maps_rate),
            r.wrong(),
            format!("{} ({}-{})", rate(writes.0), rate(writes.1), rate(writes.2)),
            lat,
            r.sum(|x| x.downgrades),
            r.sum(|x| x.opens),
            loom_cell(loom, r.policy)
        );
    }
    let _ = writeln!(
        s,
        "\nREADS/S: speculative vma_lookup and uprobe attempts per second, median and range over the rounds.\n\
         SPEC OK%: attempts that validated. CHECKED: validated answers compared with the writers' record at the\n\
         sequence number they validated against. FALLBACKS: answers of vma_lookup and uprobe resolve with their\n\
         locked fallbacks, and fault outcomes, compared with the records in force during the call.\n\
         FAULTS: page faults taken (read, write, exec); VMA%: of them handled under the VMA's own lock\n\
         (lock_vma_under_rcu), the rest under mmap_lock. MAPS/S: whole /proc/PID/maps reads per second under\n\
         per-VMA locks (median over the rounds), each checked for order, existing VMAs and phantom gaps.\n\
         WRONG: checked answers that matched no record. SECTIONS/S: write sections per second; WRITE us:\n\
         write-section latency including the lock wait (median of the rounds' medians, worst p99, worst max);\n\
         DOWNG: sections ended by mmap_write_downgrade.\n\
         OPENS: files opened and closed outside mmap_lock, recycling freed file slots."
    );
    if results.len() > 1 && rounds > 1 {
        for (what, ranges) in [("READS/S", &read_ranges), ("SECTIONS/S", &write_ranges)] {
            if ranges_overlap(ranges) {
                let _ = writeln!(
                    s,
                    "{what}: the policies' ranges overlap, so this run does not rank them (benchmarks measure barrier cost)."
                );
            }
        }
    }
    if std::env::consts::ARCH == "x86_64" {
        let _ = writeln!(
            s,
            "This machine is x86-64 (TSO): the hardware does not reorder the loads or the stores the policies\n\
             order, so WRONG here reflects logic errors, not missing barriers; the LOOM column is the check of those."
        );
    }
    match loom {
        LoomRecord::Current { date, commit, .. } => {
            let _ = writeln!(
                s,
                "LOOM: from `cargo xtask loom` of {date} at commit {commit}; this build (commit {}) has the same\n\
                 sources (mm-core, mm-ops, mm-spec fingerprint {}).",
                env!("MMSIM_GIT_COMMIT"),
                env!("MMSIM_SOURCE_FINGERPRINT")
            );
        }
        LoomRecord::OtherSources { date, commit } => {
            let _ = writeln!(
                s,
                "LOOM: no model check on record for this build (commit {}, sources {}): the summary of {date}\n\
                 (commit {commit}) checked other sources or did not finish; run `cargo xtask loom`.",
                env!("MMSIM_GIT_COMMIT"),
                env!("MMSIM_SOURCE_FINGERPRINT")
            );
        }
        LoomRecord::Missing(why) => {
            let _ = writeln!(s, "LOOM: no model check on record ({why}); run `cargo xtask loom`.");
        }
    }
    let Verdict {
        pass,
        checked,
        sound_wrong,
    } = verdict(results);
    if checked == 0 {
        let _ = writeln!(s, "verdict: FAIL: no answer was checked in this run");
    } else if pass {
        let _ = writeln!(
            s,
            "verdict: PASS: {checked} answers checked in this run, none wrong under a sound policy"
        );
    } else {
        let _ = writeln!(s, "verdict: FAIL: {sound_wrong} wrong answers under a sound policy");
    }
    for r in results {
        if let Some(w) = r.rounds.iter().find_map(|x| x.first_wrong.as_ref()) {
            let _ = writeln!(s, "  first wrong answer under {}: {w}", r.policy.name());
        }
    }
    (s, pass)
}
