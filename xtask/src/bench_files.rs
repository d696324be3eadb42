//! What a bench run writes beside the report and reads back for
//! `--report-only`: `summary.json`, the callgrind counts (`icount.tsv`),
//! the profiles (`profiles.tsv`) and the run's machine, date and load
//! (`machine.tsv`), all under `TARGET/mm-bench/`.

use std::path::Path;

use serde_json::{Value, json};

use crate::bench::{Machine, Run, overhead};

pub(crate) fn write_icount(out: &Path, costs: &[crate::icount::Cost], profiles: &[crate::icount::Profile]) {
    let mut t = String::new();
    for c in costs {
        t.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\t{}\n",
            c.op, c.policy, c.vmas, c.ir, c.d1_miss, c.ll_miss
        ));
    }
    let _ = std::fs::write(out.join("icount.tsv"), t);
    let mut t = String::new();
    for p in profiles {
        for (f, ir) in &p.top {
            t.push_str(&format!("{}\t{}\t{}\t{}\tfn\n", p.op, p.ir, f.replace('\t', " "), ir));
        }
        for (f, ir) in &p.files {
            t.push_str(&format!("{}\t{}\t{}\t{}\tfile\n", p.op, p.ir, f.replace('\t', " "), ir));
        }
    }
    let _ = std::fs::write(out.join("profiles.tsv"), t);
}

/// Records the run's machine, date and load (`machine.tsv`), so that
/// `--report-only` reports them rather than the moment it runs.
pub(crate) fn write_machine(out: &Path, m: &Machine) {
    let t = format!(
        "cpu\t{}\ncpus\t{}\nkernel\t{}\nrustc\t{}\ndate\t{}\nload_before\t{}\nload_after\t{}\n",
        m.cpu, m.cpus, m.kernel, m.rustc, m.date, m.load.0, m.load.1
    );
    let _ = std::fs::write(out.join("machine.tsv"), t);
}

/// What [`write_machine`] recorded, if anything.
pub(crate) fn read_machine(out: &Path) -> Option<Machine> {
    let text = std::fs::read_to_string(out.join("machine.tsv")).ok()?;
    let get = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(k)?.strip_prefix('\t'))
            .map(str::to_string)
    };
    Some(Machine {
        cpu: get("cpu")?,
        cpus: get("cpus")?.parse().ok()?,
        kernel: get("kernel")?,
        rustc: get("rustc")?,
        date: get("date")?,
        load: (get("load_before")?.parse().ok()?, get("load_after")?.parse().ok()?),
    })
}

pub(crate) fn read_icount(out: &Path) -> Result<Vec<crate::icount::Cost>, String> {
    let text =
        std::fs::read_to_string(out.join("icount.tsv")).map_err(|_| "no counts from the last run".to_string())?;
    Ok(text
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            Some(crate::icount::Cost {
                op: f.first()?.to_string(),
                policy: f.get(1)?.to_string(),
                vmas: f.get(2)?.parse().ok()?,
                ir: f.get(3)?.parse().ok()?,
                d1_miss: f.get(4)?.parse().ok()?,
                ll_miss: f.get(5)?.parse().ok()?,
            })
        })
        .collect())
}

pub(crate) fn read_profiles(out: &Path) -> Vec<crate::icount::Profile> {
    let text = std::fs::read_to_string(out.join("profiles.tsv")).unwrap_or_default();
    let mut v: Vec<crate::icount::Profile> = vec![];
    for l in text.lines() {
        let f: Vec<&str> = l.split('\t').collect();
        let (Some(op), Some(ir), Some(func), Some(fir)) = (f.first(), f.get(1), f.get(2), f.get(3)) else {
            continue;
        };
        let (Ok(ir), Ok(fir)) = (ir.parse::<f64>(), fir.parse::<f64>()) else {
            continue;
        };
        let is_file = f.get(4) == Some(&"file");
        let p = match v.iter().position(|p| p.op == *op) {
            Some(i) => &mut v[i],
            None => {
                v.push(crate::icount::Profile {
                    op: op.to_string(),
                    ir,
                    top: vec![],
                    files: vec![],
                });
                v.last_mut().expect("pushed")
            }
        };
        if is_file {
            p.files.push((func.to_string(), fir));
        } else {
            p.top.push((func.to_string(), fir));
        }
    }
    v
}

pub(crate) fn summary_json(run: &Run) -> Value {
    let m = &run.machine;
    let mut rows = Vec::new();
    for ((name, func, vmas), e) in &run.est {
        if func == "kernel" {
            continue;
        }
        let k = run.est.get(&(name.clone(), "kernel".into(), *vmas));
        let mut row = json!({
            "name": name,
            "policy": func,
            "vmas": vmas,
            "model_ns": e.median,
            "kernel_ns": k.map(|k| k.median),
            "model_ci_ns": [e.lo, e.hi],
            "kernel_ci_ns": k.map(|k| [k.lo, k.hi]),
        });
        if let Some(k) = k {
            row["kernel_over_model"] = json!(k.median / e.median);
            let src = run.kernel_alias.get(name).map_or(name.as_str(), String::as_str);
            row["kernel_bench"] = json!(match src {
                "locked_lookup" => "mincore(2) of one page at the same addresses",
                "locked_lookup_with_writer" => "mincore(2) while a thread mmaps and munmaps 4 KiB",
                "write_lock_unlock" => "brk(NULL): takes and drops mmap_write_lock",
                _ => "the same loop through the system calls",
            });
        }
        if let Some((r, sig)) = overhead(run, name, func, *vmas).filter(|_| func != run.baseline()) {
            row["vs_seed_v1"] = json!({"ratio": r, "significant": sig});
        }
        if let Some(r) = run
            .rates
            .get(&(name.clone(), func.clone(), *vmas))
            .filter(|r| r.attempts > 0)
        {
            row["retry_rate"] = json!((r.retry + r.busy) as f64 / r.attempts as f64);
            row["fallback_rate"] = json!(r.fallback as f64 / r.attempts as f64);
        }
        if let Some(r) = run
            .rates
            .get(&(name.clone(), func.clone(), *vmas))
            .filter(|r| r.writer_ops > 0.0)
        {
            row["writer_ops_per_s"] = json!(r.writer_ops);
        }
        rows.push(row);
    }
    let floor = run
        .est
        .get(&("syscall_floor".into(), "kernel".into(), 0))
        .map(|e| e.median);
    let icount = match &run.icount {
        Ok(c) => json!(
            c.iter()
                .map(|c| json!({"op": c.op, "policy": c.policy, "vmas": c.vmas,
                "instructions": c.ir, "d1_misses": c.d1_miss, "ll_misses": c.ll_miss}))
                .collect::<Vec<_>>()
        ),
        Err(e) => json!({ "not_measured": e }),
    };
    let locking = match &run.locking {
        Ok(l) => crate::bench_locking::json(l),
        Err(e) => json!({ "not_measured": e }),
    };
    let profiles: Vec<Value> = run
        .profiles
        .iter()
        .map(|p| {
            json!({"op": p.op, "instructions": p.ir,
                "functions": p.top.iter().map(|(f, ir)| json!({"name": f, "instructions": ir})).collect::<Vec<_>>(),
                "files": p.files.iter().map(|(f, ir)| json!({"name": f, "instructions": ir})).collect::<Vec<_>>()})
        })
        .collect();
    let targets: Vec<Value> = crate::bench_report::targets(run)
        .into_iter()
        .map(|t| json!({"target": t.what, "measured": t.measured, "met": t.met}))
        .collect();
    json!({
        "targets": targets,
        "icount": icount,
        "profiles": profiles,
        "locking": locking,
        "policies": run.policies.iter().map(|p| json!({"name": p.0, "expected_sound": p.1})).collect::<Vec<_>>(),
        "machine": {
            "cpu": m.cpu,
            "cpus": m.cpus,
            "kernel": m.kernel,
            "rustc": m.rustc,
            "date": m.date,
            "mode": if run.quick { "quick" } else { "full" },
            "loadavg_before": m.load.0,
            "loadavg_after": m.load.1,
            "syscall_floor_ns": floor,
        },
        "benchmarks": rows,
    })
}
