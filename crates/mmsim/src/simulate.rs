//! `mmsim simulate` — **placeholder**: a short, deterministic random
//! workload on the model, run by one thread.
//!
//! The real concurrent simulation (threads faulting under the lockless
//! VMA lookup while others mutate the address space) replaces this module;
//! until then it only exercises the model through [`Task::apply`] with
//! `mmap`, `munmap`, `mprotect`, `brk` and faults in a fixed arena, and
//! reports calls per second, the VMA count and `mm_lock_seq`.

use std::fmt;
use std::time::{Duration, Instant};

use mm_core::{BarrierPolicy, Full, MmConfig, PolicyKind, SeedFixed, SeedV1, Upstream, VmaView};
use mm_ops::call::{Access, Call, Outcome};
use mm_ops::task::Task;
use mm_ops::uapi::{MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, PAGE_SIZE};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// Start of the arena the workload maps into (4 GiB).
const ARENA: u64 = 0x1_0000_0000;
/// The initial program break of the simulated process.
const HEAP: u64 = 0x5555_5555_9000;

/// What to simulate.
#[derive(Clone, Debug, PartialEq)]
pub struct SimulateOptions {
    /// Threads asked for (the placeholder runs one).
    pub threads: usize,
    /// How long to run.
    pub duration: Duration,
    /// About how many VMAs the workload keeps: above it, it unmaps more
    /// than it maps.
    pub vmas: usize,
    /// The barrier policy of the model.
    pub policy: PolicyKind,
    /// Seed of the call sequence.
    pub seed: u64,
}

impl Default for SimulateOptions {
    /// One thread, one second, 64 VMAs, the upstream policy, seed 0.
    fn default() -> Self {
        SimulateOptions {
            threads: 1,
            duration: Duration::from_secs(1),
            vmas: 64,
            policy: PolicyKind::Upstream,
            seed: 0,
        }
    }
}

/// What a run did.
#[derive(Clone, Debug, PartialEq)]
pub struct SimulateReport {
    /// The options it ran with.
    pub opts: SimulateOptions,
    /// Calls applied.
    pub calls: u64,
    /// Calls that failed with an errno.
    pub errors: u64,
    /// Faults that delivered a signal.
    pub signals: u64,
    /// Time spent.
    pub elapsed: Duration,
    /// VMAs at the end.
    pub vmas: usize,
    /// `mm_lock_seq` at the end.
    pub mm_lock_seq: u32,
}

impl fmt::Display for SimulateReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.elapsed.as_secs_f64();
        let rate = if secs > 0.0 { self.calls as f64 / secs } else { 0.0 };
        writeln!(
            f,
            "mmsim simulate: PLACEHOLDER (single-threaded random workload; the concurrent simulation is not implemented yet)"
        )?;
        let o = &self.opts;
        let rows = [
            ("threads", format!("1 (asked for {})", o.threads)),
            ("policy", o.policy.to_string()),
            ("seed", o.seed.to_string()),
            ("VMA target", o.vmas.to_string()),
            ("seconds", format!("{secs:.2}")),
            ("calls", self.calls.to_string()),
            ("calls/s", format!("{rate:.0}")),
            ("errors", self.errors.to_string()),
            ("signals", self.signals.to_string()),
            ("VMAs at end", self.vmas.to_string()),
            ("mm_lock_seq", self.mm_lock_seq.to_string()),
        ];
        for (k, v) in rows {
            writeln!(f, "  {k:<12} {v}")?;
        }
        Ok(())
    }
}

/// Runs the placeholder workload.
pub fn simulate(opts: &SimulateOptions) -> SimulateReport {
    match opts.policy {
        PolicyKind::SeedV1 => run::<SeedV1>(opts),
        PolicyKind::SeedFixed => run::<SeedFixed>(opts),
        PolicyKind::Upstream => run::<Upstream>(opts),
        PolicyKind::Full => run::<Full>(opts),
    }
}

/// The next call of the workload: mostly small fixed mappings, unmaps and
/// protection changes in an arena sized for `max_vmas`, faults, and the
/// heap going up and down.
fn next_call(rng: &mut StdRng, max_vmas: usize, vmas: usize, brk: u64) -> Call {
    let pages = (max_vmas as u64).max(1) * 8;
    let addr = ARENA + rng.random_range(0..pages) * PAGE_SIZE;
    let len = rng.random_range(1..=8u64) * PAGE_SIZE;
    let prot = rng.random_range(0..8u64);
    let unmap_bias = if vmas >= max_vmas { 60 } else { 15 };
    match rng.random_range(0..100u32) {
        n if n < unmap_bias => Call::Munmap { addr, len },
        n if n < 70 => Call::Mmap {
            addr,
            len,
            prot,
            flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
            fd: -1,
            off: 0,
        },
        n if n < 80 => Call::Mprotect { addr, len, prot },
        n if n < 85 => {
            let delta = rng.random_range(0..16u64) * PAGE_SIZE;
            let addr = if rng.random_bool(0.5) {
                brk + delta
            } else {
                brk.saturating_sub(delta).max(HEAP)
            };
            Call::Brk { addr }
        }
        _ => {
            let access = match rng.random_range(0..3u32) {
                0 => Access::Read,
                1 => Access::Write,
                _ => Access::Exec,
            };
            Call::Fault {
                addr: addr + rng.random_range(0..PAGE_SIZE),
                access,
            }
        }
    }
}

fn run<P: BarrierPolicy>(opts: &SimulateOptions) -> SimulateReport {
    let mut task: Task<P> = Task::new(MmConfig::default());
    {
        let mut w = task.mm().write();
        w.st().start_brk = HEAP;
        w.st().brk = HEAP;
    }
    let mut rng = StdRng::seed_from_u64(opts.seed);
    let (mut calls, mut errors, mut signals) = (0u64, 0u64, 0u64);
    let mut vmas = 0;
    let mut brk = HEAP;
    let start = Instant::now();
    loop {
        // Check the clock every 256 calls; the sequence of calls depends
        // on the seed only.
        if calls % 256 == 0 {
            vmas = task.mm().read().vma_count();
            if start.elapsed() >= opts.duration {
                break;
            }
        }
        let call = next_call(&mut rng, opts.vmas, vmas, brk);
        match task.apply(&call, None) {
            Outcome::Val(v) => {
                if let Call::Brk { .. } = call {
                    brk = v;
                }
            }
            Outcome::Err(_) => errors += 1,
            Outcome::Signal(_) => signals += 1,
        }
        calls += 1;
    }
    let elapsed = start.elapsed();
    let vmas = task.mm().read().vma_count();
    SimulateReport {
        opts: opts.clone(),
        calls,
        errors,
        signals,
        elapsed,
        vmas,
        mm_lock_seq: task.mm().mmap_lock().seq(),
    }
}
