//! Simulate a process from a snapshot: start a model from this process's
//! own `/proc/self/maps`, with its program break and stack, get the same
//! maps back, and carry on with calls the model answers as the kernel
//! would.
//!
//! 1. Read the snapshot: maps, and `start_brk` / `start_stack` from
//!    `/proc/self/stat` (fields 47 and 28).
//! 2. Configure the model from this process's limits and sysctls
//!    (`ProcEnv::from_host`), then import the maps and take the mmap
//!    area's base from them.
//! 3. Export: render the maps and compare them with the snapshot, line by
//!    line; check the break and the stack.
//! 4. Make calls on the model: grow the heap with `brk`, map, protect and
//!    unmap memory, and check what maps shows.

use std::process::ExitCode;

use mm_ops::Task;
use mm_ops::env::ProcEnv;
use mm_ops::procmaps::parse_maps_snapshot;
use mm_ops::uapi::*;

/// Field `n` (1-based, as `proc_pid_stat(5)` numbers them) of a stat line.
fn stat_field(stat: &str, n: usize) -> Result<u64, String> {
    // `comm` (field 2) is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')').ok_or("no ')' in /proc/self/stat")? + 1..];
    let f = rest.split_whitespace().nth(n - 3).ok_or(format!("no field {n}"))?;
    f.parse().map_err(|e| format!("field {n} {f:?}: {e}"))
}

fn run() -> Result<(), String> {
    // 1. The snapshot.
    let maps = std::fs::read_to_string("/proc/self/maps").map_err(|e| e.to_string())?;
    let stat = std::fs::read_to_string("/proc/self/stat").map_err(|e| e.to_string())?;
    let start_brk = stat_field(&stat, 47)?;
    let start_stack = stat_field(&stat, 28)?;

    // 2. A model configured as this process is, then the import.
    let (env, warnings) = ProcEnv::from_host();
    for w in warnings {
        eprintln!("note: {w}");
    }
    let mut task: Task = Task::new(env.config());
    // A bad line is a typed error (`MapsError`: line, column, message).
    let lines = parse_maps_snapshot(&maps, task.mm().task_size()).map_err(|e| format!("/proc/self/maps: {e}"))?;
    task.import_maps(&lines).map_err(|e| format!("import: {e}"))?;
    // Where this process's mmap area begins (randomized at exec): new
    // mappings go below the program interpreter, as the kernel puts them.
    task.infer_mmap_base(&lines);
    // The heap's range came from the `[heap]` line; stat has the exact
    // start and the stack pointer at exec.
    let (_, brk) = task.brk_range();
    task.set_brk(start_brk, brk.max(start_brk));
    task.set_start_stack(start_stack);

    // 3. The same maps back.
    let back = task.maps();
    let mut differ = 0;
    for (i, (a, b)) in maps.lines().zip(back.lines()).enumerate() {
        if a != b {
            eprintln!("line {}:\n  host:  {a}\n  model: {b}", i + 1);
            differ += 1;
        }
    }
    if differ > 0 || maps.lines().count() != back.lines().count() {
        return Err(format!(
            "{differ} lines differ; host {} lines, model {}",
            maps.lines().count(),
            back.lines().count()
        ));
    }
    println!(
        "imported {} VMAs; maps round-trip: identical ({} lines)",
        lines.len() - 1,
        back.lines().count()
    );
    let (start_brk, brk) = task.brk_range();
    println!(
        "break: start_brk {start_brk:#x}, brk {brk:#x}; start_stack {:#x}",
        task.start_stack()
    );
    if task.brk(0) != brk {
        return Err("brk(0) does not answer the break".into());
    }

    // 4. Calls on the model.
    let new_brk = task.brk(brk + 3 * 4096);
    if new_brk != brk + 3 * 4096 {
        return Err(format!("brk grew to {new_brk:#x}, not {:#x}", brk + 3 * 4096));
    }
    let heap = task.maps().lines().filter(|l| l.ends_with("[heap]")).count();
    println!("brk({:#x}) = {new_brk:#x}; [heap] lines: {heap}", brk + 3 * 4096);
    if heap == 0 {
        return Err("no [heap] line after brk".into());
    }
    let a = task
        .mmap(0, 4 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        .map_err(|e| format!("mmap: {e}"))?;
    task.mprotect(a + 4096, 4096, PROT_NONE)
        .map_err(|e| format!("mprotect: {e}"))?;
    let shown: Vec<String> = task
        .maps()
        .lines()
        .filter(|l| {
            let s = u64::from_str_radix(l.split('-').next().unwrap_or(""), 16).unwrap_or(0);
            (a..a + 4 * 4096).contains(&s)
        })
        .map(str::to_string)
        .collect();
    println!("mmap 4 pages at {a:#x}, mprotect the second PROT_NONE:");
    for l in &shown {
        println!("  {l}");
    }
    if shown.len() != 3 {
        return Err(format!(
            "expected 3 VMAs in the new mapping, maps shows {}",
            shown.len()
        ));
    }
    task.munmap(a, 4 * 4096).map_err(|e| format!("munmap: {e}"))?;
    match task.mprotect(a, 4096, PROT_READ) {
        Err(Errno::ENOMEM) => println!(
            "after munmap, mprotect there fails with {:?}, as in the kernel",
            Errno::ENOMEM
        ),
        other => return Err(format!("mprotect of unmapped memory gave {other:?}")),
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("snapshot example: {e}");
            ExitCode::FAILURE
        }
    }
}
