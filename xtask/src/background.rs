//! Checkers that `cargo xtask ci` runs beside its main sequence of steps.
//!
//! Much of CI keeps one core busy, not two: the test binaries run one
//! after another and the differential tests are one thread each (the
//! plain and AddressSanitizer test runs), Miri interprets on one thread,
//! and each fuzz target is one libFuzzer process. On a two-core machine
//! the other core idles through those stretches, so CI starts Miri and
//! ThreadSanitizer beside the plain tests, and the fuzz smoke run beside
//! the AddressSanitizer run. Each background lane is this xtask binary
//! again (`xtask lane NAME...`), with its output in a log file that is
//! printed, with the lane's time, when the lane is waited for.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use crate::target_dir;

/// A lane in flight.
pub struct Background {
    name: String,
    child: Option<Child>,
    log: PathBuf,
    started: Instant,
}

impl Background {
    /// Starts `xtask lane CHECKS...` (the checkers by their subcommand
    /// name), its output going to `target/mm-ci-logs/TAG.log`.
    pub fn start(name: &str, tag: &str, checks: &[&str]) -> Background {
        let dir = target_dir().join("mm-ci-logs");
        let _ = std::fs::create_dir_all(&dir);
        let log = dir.join(format!("{tag}.log"));
        println!("==> started beside the next steps: {name} (log: {})", log.display());
        let child = std::env::current_exe().ok().and_then(|exe| {
            let out = std::fs::File::create(&log).ok()?;
            let err = out.try_clone().ok()?;
            Command::new(exe)
                .arg("lane")
                .args(checks)
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                .spawn()
                .map_err(|e| eprintln!("xtask: cannot start {name}: {e}"))
                .ok()
        });
        Background {
            name: name.to_string(),
            child,
            log,
            started: Instant::now(),
        }
    }

    /// Waits for the lane, prints its log and its time; false if it
    /// failed or could not start.
    pub fn finish(mut self) -> bool {
        let ok = match self.child.take() {
            Some(mut c) => c.wait().is_ok_and(|s| s.success()),
            None => false,
        };
        println!("==> {} (ran beside the steps above)", self.name);
        let text =
            std::fs::read_to_string(&self.log).unwrap_or_else(|e| format!("(no log at {}: {e})\n", self.log.display()));
        print!("{text}");
        // The lane's own time, which it printed last.
        let own = text
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix(LANE_TIME)?.trim().parse::<f64>().ok())
            .map_or("?".to_string(), |s| format!("{s:.1}"));
        println!(
            "<== {} (beside): {} in {own}s (waited for {:.1}s after it started)",
            self.name,
            if ok { "ok" } else { "FAILED" },
            self.started.elapsed().as_secs_f64()
        );
        ok
    }
}

/// `xtask lane CHECK...`: runs each named checker in turn, every one even
/// after a failure; false if any failed.
pub fn lane(checks: &[String]) -> bool {
    let t = Instant::now();
    let mut ok = true;
    for c in checks {
        ok &= match c.as_str() {
            "miri" => crate::miri(),
            "tsan" => crate::tsan(),
            "fuzz-smoke" => crate::fuzz::fuzz(&["--time".to_string(), "20".to_string()]),
            other => {
                eprintln!("xtask lane: unknown checker {other:?}");
                false
            }
        };
    }
    println!("{LANE_TIME} {:.1}", t.elapsed().as_secs_f64());
    ok
}

/// How a lane's log ends: its time in seconds follows.
const LANE_TIME: &str = "lane time (s):";
