//! The `mmsim` binary's command line (a module of `main.rs`, not of the
//! library): the subcommands and their arguments as clap reads them, the
//! value parsers, and the exit statuses `--help` shows.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use mm_core::PolicyKind;
use mmsim::parse_u64;

/// Exit statuses, shown by `--help`.
const EXIT_CODES: &str = "\
Exit status:
  replay, simulate:
    0  success
    1  the model diverged from the recording (replay --check, --fixture), a
       wrong answer under a sound policy (simulate), or the output could not
       be written
    2  bad arguments, unreadable input, a malformed line
    3  the model panicked on a call (a bug in the model; the line is named)
  record:
    the recorded program's status (128 + N when signal N killed it; 1 if its
    end was not seen), 127 when the program is not found, 2 when the fixture
    cannot be written or the program cannot be started or traced";

/// Output formats of `replay` and `simulate`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// strace syntax (replay) or a table (simulate), for people.
    Text,
    /// JSON (schema in docs/json.md): JSON Lines for replay, one object
    /// for simulate.
    Json,
}

/// mm-sim: a userspace model of Linux's address-space manager.
#[derive(Parser, Debug)]
#[command(name = "mmsim", version, about, after_help = EXIT_CODES)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) cmd: Cmd,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Cmd {
    /// Replay calls in strace syntax on a fresh model, printing each call
    /// with the model's result.
    Replay(ReplayArgs),
    /// The main job: writers mutate while speculative readers look VMAs up,
    /// every validated read checked, for each barrier policy.
    Simulate(SimulateArgs),
    /// Run a program under ptrace (ASLR off) and write a fixture directory:
    /// initial maps, the calls that shape its address space, final maps.
    Record(RecordArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), e.g. `mmsim man > mmsim.1`.
    Man,
}

#[derive(Args, Debug)]
#[command(after_help = EXIT_CODES)]
pub(crate) struct ReplayArgs {
    /// Write the output to FILE instead of standard output.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub(crate) format: Format,
    /// Print the final address space (/proc/PID/maps format) after the calls.
    #[arg(long)]
    pub(crate) maps: bool,
    /// Print and check only the process PID and its descendants (every
    /// process is still replayed: a child's model is its parent's at the
    /// fork).
    #[arg(long, value_name = "PID")]
    pub(crate) pid: Option<u32>,
    /// Initial program break, `mm->start_brk` (hex with 0x, or decimal);
    /// default: the first brk call's recorded result.
    #[arg(long, value_name = "ADDR", value_parser = parse_u64)]
    pub(crate) brk: Option<u64>,
    /// Directory relative paths resolve against (default: the current one).
    #[arg(long, value_name = "DIR")]
    pub(crate) cwd: Option<String>,
    /// Start from this /proc/PID/maps snapshot, taken at the program's
    /// last execve; the trace is replayed from after its last execve line.
    #[arg(long, value_name = "FILE")]
    pub(crate) initial_maps: Option<String>,
    /// mm->mmap_base (default 0x7ffff7fff000: x86-64, ASLR off, 8 MiB
    /// stack limit).
    #[arg(long, value_name = "ADDR", value_parser = parse_u64)]
    pub(crate) mmap_base: Option<u64>,
    /// Compare each result with the one recorded after ` = `; print every
    /// divergence (with its line) and exit 1 if there is any.
    #[arg(long)]
    pub(crate) check: bool,
    /// Set one part of the process's environment, KEY=VALUE (repeatable;
    /// over --host-env and a fixture's meta.txt). Keys: mem_total_kb,
    /// swap_total_kb, hugetlb_total_kb, hugetlb_free_2m, hugetlb_resv_2m,
    /// hugetlb_free_1g, hugetlb_resv_1g (huge page pool counters),
    /// hugetlb_shm_group, overcommit_memory,
    /// overcommit_ratio, overcommit_kbytes, max_map_count, mmap_min_addr,
    /// legacy_va_layout, thp_enabled (always|madvise|never), rlimit_as,
    /// rlimit_data, rlimit_stack, rlimit_memlock (bytes or unlimited),
    /// cap_eff (hex), uid, personality (hex). Default: the reference host
    /// (root, 8 MiB stack, sysctl defaults, 24 GiB, THP madvise).
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_env_setting)]
    pub(crate) env: Vec<(String, String)>,
    /// Start from this machine's and this process's environment (memory
    /// size, sysctls, THP mode, rlimits, capabilities, personality) instead
    /// of the reference host's, for a plain strace trace taken here.
    #[arg(long)]
    pub(crate) host_env: bool,
    /// Assume the program writes to private writable memory as soon as a
    /// call makes it writable (an anon_vma, as a write fault gives; it
    /// decides later merges). Default: on with --initial-maps or --fixture.
    #[arg(long, overrides_with = "no_assume_written")]
    pub(crate) assume_written: bool,
    /// Do not assume writes (see --assume-written).
    #[arg(long)]
    pub(crate) no_assume_written: bool,
    /// Replay a fixture directory from `mmsim record` (initial maps, trace,
    /// break, working directory), check every result, and compare the final
    /// address space with the recorded final maps.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["file", "initial_maps"])]
    pub(crate) fixture: Option<String>,
    /// The trace, or `-` for standard input.
    #[arg(value_name = "FILE|-", required_unless_present = "fixture")]
    pub(crate) file: Option<String>,
}

#[derive(Args, Debug)]
#[command(after_help = EXIT_CODES)]
pub(crate) struct SimulateArgs {
    /// Write the report to FILE instead of standard output.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub(crate) format: Format,
    /// Reader threads (speculative lookups).
    #[arg(long, default_value_t = 2, value_name = "N")]
    pub(crate) threads: usize,
    /// Writer threads (mmap/munmap/mprotect, some ending with a downgrade).
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub(crate) writers: usize,
    /// Threads that open and close files outside mmap_lock (file-slot reuse).
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub(crate) openers: usize,
    /// Threads that read /proc/PID/maps under per-VMA locks.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub(crate) maps_readers: usize,
    /// Seconds per policy.
    #[arg(long, default_value_t = 8.0, value_name = "SECS", value_parser = parse_secs)]
    pub(crate) duration: f64,
    /// Rounds per policy (the policies alternate; the throughput columns
    /// show the spread over the rounds).
    #[arg(long, default_value_t = 4, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub(crate) rounds: u32,
    /// The loom summary to take the LOOM column from (default: the
    /// workspace's target/mm-loom/summary.json).
    #[arg(long, value_name = "FILE")]
    pub(crate) loom_summary: Option<PathBuf>,
    /// VMAs at the start (one per slot).
    #[arg(long, default_value_t = 1024, value_name = "N")]
    pub(crate) vmas: usize,
    /// Barrier policy: seed-v1, seed-fixed, upstream, full, or all.
    #[arg(long, default_value = "all", value_name = "NAME", value_parser = parse_policies)]
    pub(crate) policy: PolicyList,
    /// Seed of the workloads.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub(crate) seed: u64,
    /// No progress bar.
    #[arg(long)]
    pub(crate) quiet: bool,
}

/// The policies `--policy` selects.
#[derive(Clone, Debug)]
pub(crate) struct PolicyList(pub(crate) Vec<PolicyKind>);

fn parse_policies(s: &str) -> Result<PolicyList, String> {
    if s == "all" {
        return Ok(PolicyList(PolicyKind::ALL.to_vec()));
    }
    parse_policy(s).map(|p| PolicyList(vec![p]))
}

#[derive(Args, Debug)]
pub(crate) struct RecordArgs {
    /// The fixture directory (default: ./mmsim-record-PROGNAME).
    #[arg(short = 'o', long = "output", value_name = "DIR")]
    pub(crate) output: Option<PathBuf>,
    /// Do not record page faults. By default every fault of the traced
    /// threads (perf tracepoint exceptions:page_fault_user/kernel; needs
    /// root and tracefs, which is mounted if missing) goes into the trace
    /// as a `fault(ADDR, READ|WRITE|EXEC)` line, and the replay needs no
    /// --assume-written.
    #[arg(long)]
    pub(crate) no_faults: bool,
    /// The program and its arguments, after `--`.
    #[arg(
        value_name = "CMD",
        required = true,
        num_args = 1..,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub(crate) command: Vec<String>,
}

fn parse_secs(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("`{s}` is not a number of seconds"))?;
    if v.is_finite() && (0.0..=86_400.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("`{s}`: seconds must be between 0 and 86400"))
    }
}

fn parse_policy(s: &str) -> Result<PolicyKind, String> {
    PolicyKind::from_name(s).ok_or_else(|| {
        let names: Vec<&str> = PolicyKind::ALL.iter().map(|p| p.name()).collect();
        format!("unknown policy `{s}` (one of: {})", names.join(", "))
    })
}

/// `KEY=VALUE` for `--env`; the key and value are checked when the
/// replay starts (with every other setting).
fn parse_env_setting(s: &str) -> Result<(String, String), String> {
    let (k, v) = s.split_once('=').ok_or_else(|| format!("`{s}`: expected KEY=VALUE"))?;
    let mut probe = mm_ops::env::ProcEnv::default();
    probe.set(k.trim(), v)?;
    Ok((k.trim().to_string(), v.to_string()))
}
