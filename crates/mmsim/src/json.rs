//! `--format json`: what `mmsim replay` and `mmsim simulate` print, as
//! JSON. The schema is documented in `docs/json.md`; every object carries
//! `"schema"` (`"mmsim-replay/1"` or `"mmsim-simulate/1"`), so that a
//! reader can refuse a version it does not know.
//!
//! * replay: JSON Lines (one object per line, streamed as the replay
//!   goes): a `"call"` object per modeled call, then one `"summary"`.
//! * simulate: one object.

use serde_json::{Value, json};

use crate::replay::ReplaySummary;
use crate::simulate::{LoomRecord, PolicyResult, SimulateOptions, verdict};

/// The replay schema's name and version.
pub const REPLAY_SCHEMA: &str = "mmsim-replay/1";
/// The simulate schema's name and version.
pub const SIMULATE_SCHEMA: &str = "mmsim-simulate/1";

/// One modeled call of a replay: its line, its process (`pid`, once the
/// trace has shown more than one), the call and result as strace prints
/// them, and whether the model applied it.
pub fn replay_call(line: usize, pid: Option<u32>, call: &str, result: &str, applied: bool) -> Value {
    let mut v = json!({
        "schema": REPLAY_SCHEMA,
        "type": "call",
        "line": line,
        "call": call,
        "result": result,
        "applied": applied,
    });
    if let Some(p) = pid {
        v["pid"] = json!(p);
    }
    v
}

/// The end of a replay: counts, divergences, final maps (one string per
/// line) and whether the replay passed its checks (`diverged` adds what
/// the caller compared after the replay, such as a fixture's final maps).
pub fn replay_summary(s: &ReplaySummary, diverged: bool, extra: &[String]) -> Value {
    json!({
        "schema": REPLAY_SCHEMA,
        "type": "summary",
        "lines": s.lines,
        "calls": s.calls,
        "not_applied": s.not_applied,
        "pkru_learned": s.pkru_learned,
        "skipped_calls": s.skipped_calls,
        "strace_lines": s.strace_lines,
        "blank_lines": s.blank_lines,
        "before_exec": s.before_exec,
        "other_processes": s.other_processes,
        "unrecognized": s.unrecognized,
        "first_unrecognized": s.first_unrecognized.as_ref().map(|(l, t)| json!({"line": l, "text": t})),
        "restarts": s.restarts,
        "checked": s.checked,
        "divergences": s.divergences.iter().map(|d| json!({
            "line": d.line,
            "text": d.text,
            "model": d.model,
            "recorded": d.recorded,
            "model_maps_around": d.around,
        })).collect::<Vec<_>>(),
        "processes": s.processes,
        "unanchored": s.unanchored,
        "maps_checks": s.maps_checks.iter().map(|c| json!({
            "pid": c.pid,
            "image": c.image,
            "what": c.what,
            "identical": c.diff.is_none(),
            "diff": c.diff,
        })).collect::<Vec<_>>(),
        "notes": extra,
        "final_maps": s.final_maps.lines().collect::<Vec<_>>(),
        "pass": !diverged,
    })
}

/// A simulate run: the options, each policy's rounds, the loom record and
/// the verdict (computed from the rounds, as the text report's).
pub fn simulate(opts: &SimulateOptions, results: &[PolicyResult], loom: &LoomRecord) -> Value {
    let policies: Vec<Value> = results
        .iter()
        .map(|r| {
            let rounds: Vec<Value> = r
                .rounds
                .iter()
                .map(|x| {
                    json!({
                        "elapsed_s": x.elapsed.as_secs_f64(),
                        "lookups": {"attempts": x.lookups.attempts, "successes": x.lookups.successes,
                                    "retries": x.lookups.retries, "busy": x.lookups.busy,
                                    "fallbacks": x.lookups.fallbacks},
                        "uprobes": {"attempts": x.uprobes.attempts, "successes": x.uprobes.successes,
                                    "retries": x.uprobes.retries, "busy": x.uprobes.busy,
                                    "fallbacks": x.uprobes.fallbacks},
                        "checked": x.checked,
                        "fallback_checked": x.fallback_checked,
                        "wrong": x.wrong,
                        "first_wrong": x.first_wrong,
                        "faults": {"total": x.faults.faults, "vma_lock": x.faults.vma_lock,
                                   "vma_retry": x.faults.vma_retry, "mmap_lock": x.faults.mmap_lock},
                        "maps": {"reads": x.maps.reads, "lines": x.maps.lines, "fallbacks": x.maps.fallbacks},
                        "write_sections": x.writer_ops,
                        "write_latency_ns": {"samples": x.writer_latency.samples, "p50": x.writer_latency.p50,
                                             "p99": x.writer_latency.p99, "max": x.writer_latency.max},
                        "downgrades": x.downgrades,
                        "opens": x.opens,
                        "vmas": x.vmas,
                        "initial_seq": x.initial_seq,
                        "final_seq": x.final_seq,
                    })
                })
                .collect();
            json!({
                "policy": r.policy.name(),
                "expected_sound": r.policy.expected_sound(),
                "wrong": r.wrong(),
                "rounds": rounds,
            })
        })
        .collect();
    let loom = match loom {
        LoomRecord::Missing(why) => json!({"state": "missing", "why": why}),
        LoomRecord::OtherSources { date, commit } => {
            json!({"state": "other_sources", "date": date, "commit": commit})
        }
        LoomRecord::Current { date, commit, rows } => json!({
            "state": "current",
            "date": date,
            "commit": commit,
            "rows": rows.iter().map(|(p, s, v, b)| json!({"policy": p, "scenario": s, "verdict": v, "bound": b})).collect::<Vec<_>>(),
        }),
    };
    let v = verdict(results);
    json!({
        "schema": SIMULATE_SCHEMA,
        "arch": std::env::consts::ARCH,
        "cpus": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "options": {
            "readers": opts.readers, "writers": opts.writers, "openers": opts.openers,
            "maps_readers": opts.maps_readers, "duration_s": opts.duration.as_secs_f64(),
            "rounds": opts.rounds, "vmas": opts.vmas, "seed": opts.seed,
        },
        "policies": policies,
        "loom": loom,
        "checked": v.checked,
        "sound_wrong": v.sound_wrong,
        "pass": v.pass,
    })
}
