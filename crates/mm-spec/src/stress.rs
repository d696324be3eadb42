//! The real-thread stress oracle: writer threads mutate the address space
//! while reader threads look VMAs up speculatively, and every validated
//! read is checked against the address space as it was at the sequence
//! number the reader validated against.
//!
//! The address space is cut into *slots*: `SLOT_PAGES` pages each,
//! separated by an unmapped guard page that no call maps, so that no merge
//! crosses a slot. Each writer owns some slots and, inside its write
//! section, records the slot's VMAs (as the locked view sees them) with the
//! sequence number the section ends at. A reader's validated result for an
//! address must equal the record of its slot at the reader's sequence
//! number.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mm_core::{BarrierPolicy, MmConfig, MmWrite, VmaView};
use mm_ops::mmap::{MapFile, do_mmap};
use mm_ops::mprotect::mprotect_locked;
use mm_ops::task::Task;
use mm_ops::uapi::*;
use mm_ops::vma_region::do_vmi_munmap;
use parking_lot::RwLock;
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};

use crate::lookup::{Spec, SpecCounts, SpecStats, VmaInfo, vma_lookup_locked, vma_lookup_speculative};

/// Pages per slot.
pub const SLOT_PAGES: u64 = 8;
/// Start of the first slot.
pub const BASE: u64 = 0x1000_0000_0000;

/// What to run.
#[derive(Clone, Debug)]
pub struct StressConfig {
    /// Writer threads.
    pub writers: usize,
    /// Reader threads.
    pub readers: usize,
    /// How long.
    pub duration: Duration,
    /// Slots (about one VMA each at the start).
    pub slots: usize,
    /// Seed of the call sequences.
    pub seed: u64,
}

impl Default for StressConfig {
    fn default() -> Self {
        StressConfig {
            writers: 1,
            readers: 2,
            duration: Duration::from_secs(2),
            slots: 1024,
            seed: 1,
        }
    }
}

/// What happened.
#[derive(Clone, Debug, Default)]
pub struct StressReport {
    /// Speculative reader counters.
    pub reads: SpecCounts,
    /// Validated reads checked against the writers' records.
    pub checked: u64,
    /// Validated reads that did not match (must be 0 for sound policies).
    pub wrong: u64,
    /// The first wrong read, described.
    pub first_wrong: Option<String>,
    /// Calls the writers made.
    pub writer_ops: u64,
    /// Wall-clock time.
    pub elapsed: Duration,
    /// VMAs at the end.
    pub vmas: usize,
    /// `mm_lock_seq` at the end.
    pub final_seq: u32,
}

/// The VMAs of one slot at one sequence number.
type SlotState = Vec<VmaInfo>;

struct Slot {
    /// `(seq, state)`: the state from `seq` on, in increasing `seq`.
    history: RwLock<Vec<(u32, SlotState)>>,
}

fn slot_base(i: usize) -> u64 {
    BASE + i as u64 * (SLOT_PAGES + 1) * PAGE_SIZE
}

/// The slot's VMAs under the (write) lock.
fn snapshot<P: BarrierPolicy>(w: &MmWrite<'_, P>, i: usize) -> SlotState {
    let (lo, hi) = (slot_base(i), slot_base(i) + SLOT_PAGES * PAGE_SIZE);
    let mut out = vec![];
    let mut cur = w.find_vma_intersection(lo, hi);
    while let Some(id) = cur {
        let v = w.vma(id);
        if v.start >= hi {
            break;
        }
        let ino = v.file.map(|f| w.files().file_inode(f).ino);
        out.push(VmaInfo {
            start: v.start,
            end: v.end,
            pgoff: v.pgoff,
            flags: v.flags,
            ino,
        });
        cur = w.vma_next(id);
    }
    out
}

/// The expected result for `addr` in a slot state.
fn expect(state: &SlotState, addr: u64) -> Option<VmaInfo> {
    state.iter().find(|v| v.start <= addr && addr < v.end).copied()
}

/// One random call inside slot `i`.
fn random_op<P: BarrierPolicy>(w: &mut MmWrite<'_, P>, rng: &mut SmallRng, i: usize, file: &MapFile) {
    let base = slot_base(i);
    let a = rng.random_range(0..SLOT_PAGES);
    let n = rng.random_range(1..=SLOT_PAGES - a);
    let (addr, len) = (base + a * PAGE_SIZE, n * PAGE_SIZE);
    let prot = [PROT_READ, PROT_READ | PROT_WRITE, PROT_READ | PROT_EXEC, PROT_NONE][rng.random_range(0..4)];
    let _ = match rng.random_range(0..10) {
        0..=3 => mprotect_locked(w, addr, addr + len, prot, 0),
        4..=5 => do_vmi_munmap(w, addr, len),
        6..=7 => do_mmap(w, None, addr, len, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, 0).map(|_| ()),
        _ => do_mmap(w, Some(file), addr, len, prot, MAP_PRIVATE | MAP_FIXED, a).map(|_| ()),
    };
}

/// Runs writers and readers on a fresh address space with barrier policy
/// `P`, calling `progress` with the elapsed fraction now and then.
pub fn run<P: BarrierPolicy>(cfg: &StressConfig, progress: &(dyn Fn(f64) + Sync)) -> StressReport {
    let mcfg = MmConfig {
        vma_capacity: cfg.slots * (SLOT_PAGES as usize + 1) + 64,
        ..MmConfig::default()
    };
    let mut task: Task<P> = Task::new(mcfg);
    let fd = task.memfd_create("stress", 0, None).expect("memfd");
    task.ftruncate(fd, 4 * SLOT_PAGES * PAGE_SIZE).expect("ftruncate");
    let fid = task.fget(fd).expect("fget");
    let mm = task.mm().clone();
    let file = MapFile::describe(&mm, fid);
    // Initial layout: one VMA per slot, alternately anonymous and file-backed.
    let slots: Arc<Vec<Slot>> = Arc::new({
        let mut w = mm.write();
        let mut v = Vec::with_capacity(cfg.slots);
        for i in 0..cfg.slots {
            let (addr, len) = (slot_base(i), SLOT_PAGES * PAGE_SIZE);
            let r = if i % 2 == 0 {
                do_mmap(
                    &mut w,
                    None,
                    addr,
                    len,
                    PROT_READ,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
                    0,
                )
            } else {
                do_mmap(&mut w, Some(&file), addr, len, PROT_READ, MAP_SHARED | MAP_FIXED, 0)
            };
            r.expect("initial mapping");
            v.push(Slot {
                history: RwLock::new(vec![(w.lock_seq().wrapping_add(1), snapshot(&w, i))]),
            });
        }
        v
    });
    let stop = AtomicBool::new(false);
    let stats = SpecStats::default();
    let writer_ops = AtomicU64::new(0);
    let checked = AtomicU64::new(0);
    let wrong = AtomicU64::new(0);
    let first_wrong = parking_lot::Mutex::new(None::<String>);
    let start = Instant::now();
    std::thread::scope(|s| {
        for wk in 0..cfg.writers.max(1) {
            let (mm, slots, stop, writer_ops, file) = (&mm, &slots, &stop, &writer_ops, &file);
            let seed = cfg.seed ^ ((wk as u64 + 1) * 0x9e37_79b9);
            let writers = cfg.writers.max(1);
            s.spawn(move || {
                let mut rng = SmallRng::seed_from_u64(seed);
                let mine: Vec<usize> = (wk..slots.len()).step_by(writers).collect();
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let i = mine[rng.random_range(0..mine.len())];
                    let mut w = mm.write();
                    random_op(&mut w, &mut rng, i, file);
                    // The state this write section ends with, at the
                    // sequence number its unlock makes.
                    let seq = w.lock_seq().wrapping_add(1);
                    let snap = snapshot(&w, i);
                    slots[i].history.write().push((seq, snap));
                    drop(w);
                    n += 1;
                }
                writer_ops.fetch_add(n, Ordering::Relaxed);
            });
        }
        for rk in 0..cfg.readers {
            let (mm, slots, stop, stats, checked, wrong, first_wrong) =
                (&mm, &slots, &stop, &stats, &checked, &wrong, &first_wrong);
            let seed = cfg.seed ^ 0x5151_0000 ^ rk as u64;
            s.spawn(move || {
                let mut rng = SmallRng::seed_from_u64(seed);
                let mut c = SpecCounts::default();
                let (mut ok, mut bad) = (0u64, 0u64);
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..256 {
                        let i = rng.random_range(0..slots.len());
                        let addr = slot_base(i) + rng.random_range(0..(SLOT_PAGES + 1) * PAGE_SIZE);
                        let sp = vma_lookup_speculative(mm, addr);
                        c.attempts += 1;
                        match sp {
                            Spec::Valid { value, seq } => {
                                c.successes += 1;
                                let h = slots[i].history.read();
                                // The record in force at `seq`.
                                let idx = h.partition_point(|(s, _)| s.wrapping_sub(seq) as i32 <= 0);
                                let want = idx.checked_sub(1).map(|k| expect(&h[k].1, addr));
                                ok += 1;
                                if want != Some(value) {
                                    bad += 1;
                                    let mut fw = first_wrong.lock();
                                    if fw.is_none() {
                                        *fw = Some(format!(
                                            "addr {addr:#x} at seq {seq}: read {value:?}, expected {want:?}"
                                        ));
                                    }
                                }
                            }
                            Spec::Retry | Spec::Busy => {
                                if matches!(sp, Spec::Retry) {
                                    c.retries += 1;
                                } else {
                                    c.busy += 1;
                                }
                                c.fallbacks += 1;
                                std::hint::black_box(vma_lookup_locked(mm, addr));
                            }
                        }
                    }
                }
                stats.add(&c);
                checked.fetch_add(ok, Ordering::Relaxed);
                wrong.fetch_add(bad, Ordering::Relaxed);
            });
        }
        let deadline = start + cfg.duration;
        while Instant::now() < deadline {
            progress(start.elapsed().as_secs_f64() / cfg.duration.as_secs_f64());
            std::thread::sleep(Duration::from_millis(50).min(cfg.duration));
        }
        stop.store(true, Ordering::Relaxed);
    });
    progress(1.0);
    let r = mm.read();
    StressReport {
        reads: stats.snapshot(),
        checked: checked.into_inner(),
        wrong: wrong.into_inner(),
        first_wrong: first_wrong.into_inner(),
        writer_ops: writer_ops.into_inner(),
        elapsed: start.elapsed(),
        vmas: r.vma_count(),
        final_seq: mm.mmap_lock().seq(),
    }
}
