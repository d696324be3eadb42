//! A barrier policy of your own: how `mm_lock_seq` is bumped by writers
//! and checked by speculative readers is a type parameter of the model.
//!
//! 1. Implement [`BarrierPolicy`]: the four operations of the seqcount
//!    contract, written with the atomics of `mm_core::sync` (std's, or
//!    loom's under `cfg(loom)`).
//! 2. Use it: `Task<YourPolicy>` / `MmStruct<YourPolicy>`, and every
//!    reader of `mm_spec` is generic over it.
//! 3. To have `mmsim simulate --policy`, `cargo xtask loom` (which checks
//!    it under the C++ memory model and its mutations) and `cargo xtask
//!    bench` run it by name, add one line to `policy_registry!` in
//!    `crates/mm-core/src/ordering.rs` (see docs/ordering.md).
//!
//! The policy here puts a full barrier (`smp_mb`) after the bump that
//! begins a write section, and only a release at its end.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64};

use mm_core::VmaView;
use mm_core::ordering::BarrierPolicy;
use mm_core::sync::{AtomicU32, Ordering, fence};
use mm_ops::Task;
use mm_ops::uapi::*;
use mm_spec::lookup::{Spec, vma_lookup_locked, vma_lookup_speculative};

/// `smp_mb()` after the bump at `mmap_write_lock`; `smp_store_release` at
/// unlock; readers load-acquire the count and put `smp_rmb()` before the
/// re-check.
struct MbAtWriteBegin;

impl BarrierPolicy for MbAtWriteBegin {
    const NAME: &'static str = "example-mb-at-write-begin";

    fn write_begin(seq: &AtomicU32, new: u32) {
        seq.store(new, Ordering::Relaxed);
        // Orders the odd count before every store of the section.
        fence(Ordering::SeqCst);
    }

    fn write_end(seq: &AtomicU32, new: u32) {
        // Every store of the section before the even count.
        seq.store(new, Ordering::Release);
    }

    fn read_begin(seq: &AtomicU32) -> Option<u32> {
        let s = seq.load(Ordering::Acquire);
        (s & 1 == 0).then_some(s)
    }

    fn read_retry(seq: &AtomicU32, start: u32) -> bool {
        // The section's loads before the re-check (Jann Horn's point: an
        // acquire load cannot end a read section, a fence can).
        fence(Ordering::Acquire);
        seq.load(Ordering::Relaxed) != start
    }
}

fn main() -> ExitCode {
    // 2. The model with the policy.
    let mut task: Task<MbAtWriteBegin> = Task::new(Default::default());
    let base = task
        .mmap(0, 64 * 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        .expect("mmap");

    // Single-threaded, a validated speculative answer equals the locked one.
    for i in 0..64 {
        let addr = base + i * 4096;
        let locked = vma_lookup_locked(task.mm(), addr);
        match vma_lookup_speculative(task.mm(), addr) {
            Spec::Valid { value, .. } if value == locked => {}
            other => {
                eprintln!("{addr:#x}: speculative {other:?}, locked {locked:?}");
                return ExitCode::FAILURE;
            }
        }
    }

    // With a writer on another thread: validated answers hold the address.
    let mm = Arc::clone(task.mm());
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(AtomicU64::new(0));
    let reader = {
        let (mm, stop, seen) = (Arc::clone(&mm), Arc::clone(&stop), Arc::clone(&seen));
        std::thread::spawn(move || {
            let (mut valid, mut wrong) = (0u64, 0u64);
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                i = (i + 13) % 64;
                let addr = base + i * 4096;
                if let Spec::Valid { value: Some(v), .. } = vma_lookup_speculative(&mm, addr) {
                    valid += 1;
                    seen.store(valid, std::sync::atomic::Ordering::Relaxed);
                    wrong += u64::from(!(v.start <= addr && addr < v.end));
                }
            }
            (valid, wrong)
        })
    };
    // Until the reader has validated 10,000 lookups (or 10 s have passed).
    let started = std::time::Instant::now();
    let mut rounds = 0u64;
    while seen.load(std::sync::atomic::Ordering::Relaxed) < 10_000 && started.elapsed().as_secs() < 10 {
        let page = base + (rounds * 11 % 64) * 4096;
        let prot = if rounds.is_multiple_of(2) {
            PROT_READ | PROT_WRITE
        } else {
            PROT_READ
        };
        task.mprotect(page, 4096, prot).expect("mprotect");
        rounds += 1;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (valid, wrong) = reader.join().expect("reader");
    println!(
        "policy {}: {valid} validated lookups beside {rounds} mprotects, {wrong} wrong; {} VMAs",
        MbAtWriteBegin::NAME,
        task.mm().read().vma_count()
    );
    if wrong > 0 || valid == 0 {
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
