//! Speculative readers on threads: a writer maps, protects and unmaps
//! memory through the model's system calls while readers resolve
//! addresses without `mmap_lock`, as uprobes does
//! (`mmap_lock_speculate_try_begin` … `mmap_lock_speculate_retry`).
//!
//! 1. Build the model (`Task`, default policy: upstream's seqcount).
//! 2. Share its `MmStruct` with reader threads (`Arc`; it is `Send + Sync`).
//! 3. The writer owns the `Task` and makes calls; the readers look up
//!    addresses in the range the writer works on.
//! 4. Every answer a reader validated must be one the writer could have
//!    left: the VMA it found holds the address, and its protection is one
//!    the writer set. Answers that raced a writer come back as `Retry` or
//!    `Busy` and are not used.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use mm_core::{VmFlags, VmaView};
use mm_ops::Task;
use mm_ops::uapi::*;
use mm_spec::lookup::{Spec, vma_lookup_speculative};

const PAGES: u64 = 16;

fn main() -> ExitCode {
    // 1. The model, and a fixed range for the writer to work in.
    let mut task: Task = Task::new(Default::default());
    let base = task
        .mmap(0, PAGES * 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        .expect("mmap");
    let mm = Arc::clone(task.mm());
    let stop = Arc::new(AtomicBool::new(false));

    // 2. Readers.
    let readers: Vec<_> = (0..2)
        .map(|r| {
            let (mm, stop) = (Arc::clone(&mm), Arc::clone(&stop));
            std::thread::spawn(move || {
                let (mut valid, mut raced, mut bad) = (0u64, 0u64, Vec::new());
                let mut i = r;
                while !stop.load(Ordering::Relaxed) {
                    i = (i * 7 + 3) % PAGES;
                    let addr = base + i * 4096 + 8;
                    match vma_lookup_speculative(&mm, addr) {
                        Spec::Valid { value, .. } => {
                            valid += 1;
                            if let Some(v) = value {
                                // 4. The writer only ever leaves r-- or rw-
                                // anonymous VMAs inside its range.
                                let inside = v.start <= addr && addr < v.end;
                                let prot = v.flags & (VmFlags::READ | VmFlags::WRITE | VmFlags::EXEC);
                                let expected = prot == VmFlags::READ || prot == (VmFlags::READ | VmFlags::WRITE);
                                if !inside || !expected || v.ino.is_some() {
                                    bad.push(format!("{addr:#x} -> {v:?}"));
                                }
                            }
                        }
                        Spec::Retry | Spec::Busy => raced += 1,
                    }
                }
                (valid, raced, bad)
            })
        })
        .collect();

    // 3. The writer: protection changes that split and merge VMAs, and
    // unmap/remap of single pages.
    let mut calls = 0u64;
    for round in 0..20_000u64 {
        let page = base + (round * 5 % PAGES) * 4096;
        let prot = if round % 2 == 0 {
            PROT_READ | PROT_WRITE
        } else {
            PROT_READ
        };
        task.mprotect(page, 4096, prot).expect("mprotect");
        if round % 7 == 0 {
            task.munmap(page, 4096).expect("munmap");
            let again = task
                .mmap(page, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0)
                .expect("mmap");
            assert_eq!(again, page);
            calls += 2;
        }
        calls += 1;
    }
    stop.store(true, Ordering::Relaxed);

    let mut failed = false;
    for (r, h) in readers.into_iter().enumerate() {
        let (valid, raced, bad) = h.join().expect("reader panicked");
        println!("reader {r}: {valid} validated lookups, {raced} raced a writer and were retried");
        for b in bad.iter().take(5) {
            eprintln!("  impossible answer: {b}");
        }
        failed |= !bad.is_empty();
    }
    println!("writer: {calls} calls; VMAs now: {}", task.mm().read().vma_count());
    if failed {
        eprintln!("readers example: a validated answer the writer never left");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
