//! The library behind the `mmsim` command line.
//!
//! | module | subcommand | what |
//! |---|---|---|
//! | [`replay`] | `mmsim replay` | applies a trace in strace syntax to a fresh model and prints each call with the model's result |
//! | [`simulate`] | `mmsim simulate` | writers, speculative readers, openers and maps readers on threads over one model, for each barrier policy; every validated answer checked |
//! | [`json`] | `--format json` | the JSON output of `replay` and `simulate` (schema `docs/json.md`) |
//! | [`record`] | `mmsim record` | runs a program under ptrace and writes a fixture directory (initial maps, trace, final maps, facts) |
//!
//! The binary (`src/main.rs`, its command line in `src/cli.rs`) only
//! parses arguments, opens files and maps errors to exit statuses;
//! everything it prints comes from these modules, so tests and later
//! options can drive them directly.

pub mod json;
pub mod record;
pub mod replay;
pub mod simulate;

/// Reads an address or size given on the command line: `0x…` hex, or
/// decimal.
pub fn parse_u64(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let r = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16),
        None => t.parse::<u64>(),
    };
    r.map_err(|_| format!("`{s}` is not a number (hex with 0x, or decimal)"))
}
