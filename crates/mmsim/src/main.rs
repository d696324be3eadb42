//! `mmsim`: the mm-sim command line.
//!
//! ```text
//! mmsim replay [-o FILE] [--format text|json] [--maps] [--brk ADDR] [--cwd DIR] [--initial-maps FILE]
//!              [--mmap-base ADDR] [--check] FILE|-
//! mmsim replay --fixture DIR [--maps]
//! mmsim simulate [-o FILE] [--format text|json] [--threads N] [--writers N] [--openers N] [--maps-readers N] [--duration SECS] [--rounds N] [--vmas N]
//!                [--policy NAME|all] [--seed N] [--loom-summary FILE] [--quiet]
//! mmsim record [-o DIR] -- CMD [ARGS…]
//! ```
//!
//! `--format json` is described in `docs/json.md`.
//!
//! Exit status (also in `--help`): 0 on success, 2 for bad arguments, unreadable input or a
//! malformed line, 1 when the output cannot be written or (`--check`,
//! `--fixture`) when the model diverged from the recording, 3 when the
//! model panicked on a call (a bug in the model, reported with the line).
//!
//! `mmsim record` exits with the recorded program's status (128 + N when
//! signal N killed it; 1 if its end was not seen), 127 when the program is
//! not found, and 2 when the fixture cannot be written or the program
//! cannot be started or traced.

use std::io::{self, BufReader, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use mmsim::record::{RecordError, RecordOptions, default_dir, record};
use mmsim::replay::fixture::{self, Fixture};
use mmsim::replay::{ReplayError, ReplayOptions, lines_before_last_exec, replay, replay_from};
use mmsim::simulate::{SimulateOptions, loom_record, render, simulate};

mod cli;

use cli::{Cli, Cmd, Format, RecordArgs, ReplayArgs, SimulateArgs};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Replay(a) => run_replay(&a),
        Cmd::Simulate(a) => {
            if let Err(e) = check_simulate_args(&a) {
                eprintln!("mmsim simulate: {e}");
                return ExitCode::from(2);
            }
            let opts = SimulateOptions {
                readers: a.threads,
                writers: a.writers,
                openers: a.openers,
                maps_readers: a.maps_readers,
                duration: Duration::from_secs_f64(a.duration),
                rounds: a.rounds as usize,
                vmas: a.vmas,
                policies: a.policy.0,
                seed: a.seed,
                progress: !a.quiet,
                loom_summary: a.loom_summary,
            };
            // Opened first, so that a bad path fails before the run.
            let mut out = match open_output(a.output.as_deref()) {
                Ok(o) => o,
                Err(e) => {
                    eprintln!("mmsim simulate: {e}");
                    return ExitCode::from(2);
                }
            };
            let results = simulate(&opts);
            let loom = loom_record(opts.loom_summary.as_ref());
            let (text, pass) = render(&opts, &results, &loom);
            let text = match a.format {
                Format::Text => text,
                Format::Json => format!("{:#}\n", mmsim::json::simulate(&opts, &results, &loom)),
            };
            if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
                eprintln!("mmsim simulate: writing the report: {e}");
                return ExitCode::from(1);
            }
            if pass { ExitCode::SUCCESS } else { ExitCode::from(1) }
        }
        Cmd::Record(a) => run_record(a),
        Cmd::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            // Into memory first: clap_complete panics on a write error.
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut cmd, "mmsim", &mut buf);
            match io::stdout().write_all(&buf) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => write_failed(&e),
            }
        }
        Cmd::Man => {
            let cmd = <Cli as clap::CommandFactory>::command();
            let mut out = io::stdout();
            match clap_mangen::Man::new(cmd).render(&mut out) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => write_failed(&e),
            }
        }
    }
}

/// Standard output, or `path` created (truncated) for writing.
fn open_output(path: Option<&Path>) -> Result<Box<dyn Write>, String> {
    match path {
        None => Ok(Box::new(io::stdout().lock())),
        Some(p) => std::fs::File::create(p)
            .map(|f| Box::new(f) as Box<dyn Write>)
            .map_err(|e| format!("cannot create {}: {e}", p.display())),
    }
}

/// Rejects simulate options that cannot describe a run.
fn check_simulate_args(a: &SimulateArgs) -> Result<(), String> {
    // The model's default max_map_count; each VMA slot also has a guard
    // page after it, so this many slots fit the address space easily.
    const MAX_MAP_COUNT: usize = 65530;
    if a.writers == 0 {
        return Err("--writers must be at least 1 (the writers are what the readers race with)".into());
    }
    if a.threads == 0 {
        return Err("--threads must be at least 1 (the readers are what is checked)".into());
    }
    if a.vmas == 0 || a.vmas > MAX_MAP_COUNT - 64 {
        return Err(format!(
            "--vmas {} is out of range: 1 to {} (max_map_count {MAX_MAP_COUNT}, less room for the writers' splits)",
            a.vmas,
            MAX_MAP_COUNT - 64
        ));
    }
    if a.duration <= 0.0 {
        return Err("--duration must be more than 0 seconds".into());
    }
    Ok(())
}

/// An absolute working directory for `--cwd` (relative ones are taken
/// from the current directory).
fn absolute_dir(dir: &str) -> String {
    let p = Path::new(dir);
    if p.is_absolute() {
        return dir.to_string();
    }
    match std::env::current_dir() {
        Ok(cur) => cur.join(p).to_string_lossy().into_owned(),
        Err(_) => format!("/{dir}"),
    }
}

/// Replays the file at `path`, streamed: with a snapshot, a first pass
/// finds the last `execve`, then the replay starts after it.
fn replay_file(
    path: &str,
    opts: &ReplayOptions,
    out: &mut impl Write,
) -> io::Result<Result<mmsim::replay::ReplaySummary, ReplayError>> {
    let open = || std::fs::File::open(path).map(BufReader::new);
    let size = std::fs::metadata(path).map(|m| m.len()).ok();
    let start = if opts.initial_maps.is_some() && !opts.whole_trace {
        match lines_before_last_exec(open()?) {
            Ok(n) => Some(n),
            Err(e) => return Ok(Err(e)),
        }
    } else {
        None
    };
    Ok(replay_from(progress(open()?, size), start, opts, out))
}

/// `input`, showing progress (bytes, and the share of `total` when known)
/// on stderr when stderr is a terminal.
fn progress<R: io::BufRead + 'static>(input: R, total: Option<u64>) -> Box<dyn io::BufRead + 'static> {
    use std::io::IsTerminal;
    if !io::stderr().is_terminal() {
        return Box::new(input);
    }
    let bar = match total {
        Some(t) => indicatif::ProgressBar::new(t).with_style(
            indicatif::ProgressStyle::with_template(
                "mmsim replay {bar:30} {bytes}/{total_bytes} {bytes_per_sec} {eta}",
            )
            .expect("template"),
        ),
        None => indicatif::ProgressBar::new_spinner().with_style(
            indicatif::ProgressStyle::with_template("mmsim replay {spinner} {bytes} {bytes_per_sec}")
                .expect("template"),
        ),
    }
    .with_finish(indicatif::ProgressFinish::AndClear);
    Box::new(io::BufReader::new(bar.wrap_read(input)))
}

fn run_replay(a: &ReplayArgs) -> ExitCode {
    let mut opts = ReplayOptions {
        maps: a.maps,
        brk: a.brk,
        mmap_base: a.mmap_base,
        check: a.check,
        assume_written: match (a.assume_written, a.no_assume_written) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => None,
        },
        env_overrides: a.env.clone(),
        json: a.format == Format::Json,
        pid: a.pid,
        ..ReplayOptions::default()
    };
    if a.host_env {
        let (env, missing) = mm_ops::env::ProcEnv::from_host();
        for m in missing {
            eprintln!("mmsim replay: --host-env: cannot read {m}; keeping the reference host's value");
        }
        opts.env = env;
    }
    if let Some(d) = &a.cwd {
        opts.cwd = absolute_dir(d);
    }
    if let Some(f) = &a.initial_maps {
        match std::fs::read_to_string(f) {
            Ok(t) => {
                // Checked here so that an error names this file, not the trace.
                if let Err(e) = mm_ops::procmaps::parse_maps_snapshot(&t, mm_core::mm::TASK_SIZE_4LEVEL) {
                    eprintln!("mmsim replay: {f}: {e}");
                    return ExitCode::from(2);
                }
                opts.initial_maps = Some(t)
            }
            Err(e) => {
                eprintln!("mmsim replay: cannot read {f}: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let mut out = match open_output(a.output.as_deref()) {
        Ok(o) => io::BufWriter::new(o),
        Err(e) => {
            eprintln!("mmsim replay: {e}");
            return ExitCode::from(2);
        }
    };
    let mut fixture = None;
    let (name, result) = if let Some(dir) = &a.fixture {
        let fx = match Fixture::load(Path::new(dir)).and_then(|f| f.options(&opts).map(|o| (f, o))) {
            Ok(x) => x,
            Err(e) => {
                eprintln!("mmsim replay: fixture {dir}: {e}");
                return ExitCode::from(2);
            }
        };
        let path = fx.0.trace.to_string_lossy().into_owned();
        let r = match replay_file(&path, &fx.1, &mut out) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("mmsim replay: cannot open {path}: {e}");
                return ExitCode::from(2);
            }
        };
        fixture = Some(fx.0);
        (format!("{dir}/{}", fixture::TRACE), r)
    } else {
        let file = a.file.clone().unwrap_or_else(|| "-".into());
        let r = if file == "-" {
            replay(progress(io::stdin().lock(), None), &opts, &mut out)
        } else {
            match replay_file(&file, &opts, &mut out) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("mmsim replay: cannot open {file}: {e}");
                    return ExitCode::from(2);
                }
            }
        };
        (file, r)
    };
    // Whatever was printed goes out before the message on stderr.
    let flushed = out.flush();
    let name = if name == "-" {
        String::new()
    } else {
        format!("{name}: ")
    };
    match result {
        Ok(summary) => {
            if let Err(e) = flushed {
                return write_failed(&e);
            }
            for d in &summary.divergences {
                eprintln!("mmsim replay: {name}divergence: {d}");
                if !d.around.is_empty() {
                    eprintln!("  the model's VMAs there after the call:");
                    for l in &d.around {
                        eprintln!("    {l}");
                    }
                }
            }
            let mut diverged = !summary.divergences.is_empty();
            // What the fixture comparison found, for stderr and the JSON summary.
            let mut notes = vec![];
            if let Some(fx) = &fixture {
                match fx
                    .final_maps
                    .as_deref()
                    .map(|m| fixture::diff_maps(m, &summary.final_maps))
                {
                    Some(Ok(None)) => notes.push(format!("final maps identical to {}", fixture::FINAL_MAPS)),
                    Some(Ok(Some(diff))) => {
                        notes.push(format!("final maps differ from {}:\n{diff}", fixture::FINAL_MAPS));
                        diverged = true;
                    }
                    Some(Err(e)) => {
                        notes.push(format!("comparing final maps: {e}"));
                        diverged = true;
                    }
                    None => notes.push(format!("no {} to compare with", fixture::FINAL_MAPS)),
                }
            }
            // Format 2: each address space after each fork and at its end.
            let differ: Vec<_> = summary.maps_checks.iter().filter(|c| c.diff.is_some()).collect();
            if !summary.maps_checks.is_empty() {
                notes.push(format!(
                    "{} of {} address-space snapshots (after fork, final) identical",
                    summary.maps_checks.len() - differ.len(),
                    summary.maps_checks.len()
                ));
            }
            for c in &differ {
                notes.push(c.to_string());
                diverged = true;
            }
            for n in &notes {
                eprintln!("mmsim replay: {n}");
            }
            if summary.restarts > 0 {
                eprintln!(
                    "mmsim replay: note: started over {} time(s) at a later execve (a stream cannot look ahead); the lines printed before the last start belong to an earlier image",
                    summary.restarts
                );
            }
            eprintln!("mmsim replay: {summary}");
            if a.format == Format::Json {
                let obj = mmsim::json::replay_summary(&summary, diverged, &notes);
                if let Err(e) = writeln!(out, "{obj}").and_then(|()| out.flush()) {
                    return write_failed(&e);
                }
            }
            if diverged { ExitCode::from(1) } else { ExitCode::SUCCESS }
        }
        Err(ReplayError::Write(e)) => write_failed(&e),
        Err(e @ (ReplayError::Parse { .. } | ReplayError::Setup(_))) => {
            eprintln!("mmsim replay: {name}{e}");
            ExitCode::from(2)
        }
        Err(e @ ReplayError::ModelPanic { .. }) => {
            eprintln!("mmsim replay: {name}{e}");
            ExitCode::from(3)
        }
        Err(e @ ReplayError::Read { .. }) => {
            eprintln!("mmsim replay: {name}{e}");
            ExitCode::from(2)
        }
    }
}

fn run_record(a: RecordArgs) -> ExitCode {
    let dir = a.output.unwrap_or_else(|| default_dir(&a.command));
    let opts = RecordOptions {
        command: a.command,
        dir,
        faults: !a.no_faults,
    };
    match record(&opts) {
        Ok(s) => {
            for w in &s.warnings {
                eprintln!("mmsim record: warning: {w}");
            }
            let plural = |n: usize, one: &str| if n == 1 { one.to_string() } else { format!("{one}s") };
            eprintln!(
                "mmsim record: recorded {} trace {} from {} {} in {} {} to {}",
                s.meta.calls,
                plural(s.meta.calls as usize, "line"),
                s.meta.threads,
                plural(s.meta.threads as usize, "thread"),
                s.meta.processes,
                if s.meta.processes == 1 { "process" } else { "processes" },
                s.dir.display()
            );
            match s.meta.exit {
                Some(e) => ExitCode::from(e.status()),
                None => ExitCode::from(1),
            }
        }
        Err(e) => {
            eprintln!("mmsim record: {e}");
            match e {
                RecordError::Spawn { source, .. } if source.kind() == io::ErrorKind::NotFound => ExitCode::from(127),
                _ => ExitCode::from(2),
            }
        }
    }
}

/// A closed pipe (`mmsim replay … | head`) ends the run quietly; any other
/// output error is reported.
fn write_failed(e: &io::Error) -> ExitCode {
    if e.kind() == io::ErrorKind::BrokenPipe {
        return ExitCode::SUCCESS;
    }
    eprintln!("mmsim replay: writing the output: {e}");
    ExitCode::from(1)
}
