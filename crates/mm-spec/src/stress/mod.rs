//! The real-thread stress oracle: writer threads mutate the address space
//! while reader threads look VMAs up, speculatively and through the
//! fallbacks users call, and every answer is checked against the address
//! space as it was at the sequence number the answer belongs to.
//!
//! The address space is cut into *slots*: `SLOT_PAGES` pages each,
//! separated by an unmapped guard page that no call maps, so that no merge
//! crosses a slot. Each writer owns some slots and, inside its write
//! section, records the slot's VMAs (as the locked view sees them) with the
//! sequence number the section ends at.
//!
//! What runs:
//! * writers: `mprotect`, `munmap` (a third of them ending with
//!   `mmap_write_downgrade`, as `vm_munmap` does), anonymous mappings,
//!   mappings of one shared memfd, and mappings of *fresh* files that the
//!   VMA alone keeps open, so that `munmap` frees their file slots;
//! * openers: open and close files outside `mmap_lock`, recycling the
//!   freed file slots (the pattern of the file-slot bug that loom found);
//! * readers, in turn: speculative `vma_lookup` and uprobe resolution
//!   (each validated answer must equal the record at its sequence number),
//!   `vma_lookup` and `uprobe::resolve` with their locked fallbacks (each
//!   answer must equal a record in force at some sequence number between
//!   the call's start and end), and page faults of each access kind, under
//!   the VMA's lock or `mmap_lock` (each outcome must be the one of a
//!   record in force during the fault).
//!
//! On x86-64 (TSO) the hardware never reorders the loads or the stores
//! that the barrier policies order, so this oracle catches logic errors
//! (a missing publication, range check or bump), not missing barriers:
//! those are loom's (`cargo xtask loom`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mm_core::file::{FileId, Inode, InodeKind};
use mm_core::{BarrierPolicy, MmConfig, MmStruct, MmWrite, VmaView};
use mm_ops::kernel::mmap::{MapFile, do_mmap};
use mm_ops::kernel::mprotect::mprotect_locked;
use mm_ops::kernel::vma_region::do_vmi_munmap;
use mm_ops::uapi::*;
use parking_lot::{Mutex, RwLock};
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};

use crate::lookup::{SpecCounts, VmaInfo};

mod check;
use check::{Tally, maps_step, read_step};

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
    /// Threads that open and close files outside `mmap_lock`.
    pub openers: usize,
    /// Threads that read `/proc/PID/maps` under per-VMA locks.
    pub maps_readers: usize,
    /// How long.
    pub duration: Duration,
    /// Slots (about one VMA each at the start).
    pub slots: usize,
    /// Seed of the call sequences.
    pub seed: u64,
    /// `mm_lock_seq` at the start (even); near 2^32 to cross the wrap.
    pub initial_seq: u32,
    /// Stop after this many write sections per writer instead of after
    /// `duration` (for Miri and sanitizers, where time runs differently).
    pub sections_per_writer: Option<u64>,
}

impl Default for StressConfig {
    fn default() -> Self {
        StressConfig {
            writers: 1,
            readers: 2,
            openers: 1,
            maps_readers: 1,
            duration: Duration::from_secs(2),
            slots: 1024,
            seed: 1,
            initial_seq: 0,
            sections_per_writer: None,
        }
    }
}

/// How the readers' page faults were handled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultCounts {
    /// Faults taken.
    pub faults: u64,
    /// Handled under the VMA's read lock.
    pub vma_lock: u64,
    /// The VMA was locked, then the fault retried under `mmap_lock`.
    pub vma_retry: u64,
    /// No VMA could be locked: `mmap_lock` handled it.
    pub mmap_lock: u64,
}

/// The lock-free maps reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MapsCounts {
    /// Whole reads of the maps.
    pub reads: u64,
    /// Lines (VMAs) read.
    pub lines: u64,
    /// VMAs found under `mmap_lock` (`lock_next_vma`'s fallback).
    pub fallbacks: u64,
}

/// Write-section latencies (lock wait included), in nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Latency {
    /// Sections measured.
    pub samples: u64,
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// Largest.
    pub max: u64,
}

impl Latency {
    fn of(mut v: Vec<u64>) -> Latency {
        if v.is_empty() {
            return Latency::default();
        }
        v.sort_unstable();
        let at = |q: f64| v[((v.len() - 1) as f64 * q) as usize];
        Latency {
            samples: v.len() as u64,
            p50: at(0.5),
            p99: at(0.99),
            max: v[v.len() - 1],
        }
    }
}

/// What happened.
#[derive(Clone, Debug, Default)]
pub struct StressReport {
    /// Speculative `vma_lookup` attempts and their outcomes.
    pub lookups: SpecCounts,
    /// Speculative uprobe resolutions and their outcomes.
    pub uprobes: SpecCounts,
    /// Validated speculative answers checked against the records.
    pub checked: u64,
    /// Answers of `vma_lookup` and `resolve` (with their locked
    /// fallbacks), and fault outcomes, checked against the records.
    pub fallback_checked: u64,
    /// The readers' page faults, by the path that handled them.
    pub faults: FaultCounts,
    /// The maps readers' reads (each checked).
    pub maps: MapsCounts,
    /// The writers' section latencies.
    pub writer_latency: Latency,
    /// Checked answers that did not match (must be 0).
    pub wrong: u64,
    /// The first wrong answer, described.
    pub first_wrong: Option<String>,
    /// Write sections the writers ran.
    pub writer_ops: u64,
    /// Of which ended with `mmap_write_downgrade`.
    pub downgrades: u64,
    /// Files opened (and closed) outside `mmap_lock` by the openers.
    pub opens: u64,
    /// Wall-clock time.
    pub elapsed: Duration,
    /// VMAs at the end.
    pub vmas: usize,
    /// `mm_lock_seq` at the start.
    pub initial_seq: u32,
    /// `mm_lock_seq` at the end.
    pub final_seq: u32,
}

/// The VMAs of one slot at one sequence number.
type SlotState = Vec<VmaInfo>;

/// The writers' records of one slot.
struct Slot {
    /// `(seq, state)`: the state from `seq` on, in increasing `seq`.
    history: RwLock<Vec<(u32, SlotState)>>,
}

fn slot_base(i: usize) -> u64 {
    BASE + i as u64 * (SLOT_PAGES + 1) * PAGE_SIZE
}

/// The slot an address lies in (with its guard page), if any.
fn slot_of(addr: u64) -> Option<usize> {
    let off = addr.checked_sub(BASE)?;
    Some((off / ((SLOT_PAGES + 1) * PAGE_SIZE)) as usize)
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

/// A new file that only its mappings will keep open (ino unique to it).
fn fresh_file<P: BarrierPolicy>(mm: &MmStruct<P>, ino: u64) -> Option<FileId> {
    let mut files = mm.files();
    let inode = files.add_inode(Inode::new(
        ino,
        (0, 1),
        SLOT_PAGES * PAGE_SIZE,
        format!("/stress/{ino}"),
        InodeKind::Memfd,
    ));
    files.open(mm.file_slots(), inode, true, true, false)
}

/// Inode numbers of fresh files, unique across threads.
static NEXT_INO: AtomicU64 = AtomicU64::new(1 << 40);

/// One random call inside slot `i`; returns whether the section should end
/// with a downgrade (as `vm_munmap` does).
fn random_op<P: BarrierPolicy>(
    mm: &MmStruct<P>,
    w: &mut MmWrite<'_, P>,
    rng: &mut SmallRng,
    i: usize,
    shared: &MapFile,
) -> bool {
    let base = slot_base(i);
    let a = rng.random_range(0..SLOT_PAGES);
    let n = rng.random_range(1..=SLOT_PAGES - a);
    let (addr, len) = (base + a * PAGE_SIZE, n * PAGE_SIZE);
    let prot = [PROT_READ, PROT_READ | PROT_WRITE, PROT_READ | PROT_EXEC, PROT_NONE][rng.random_range(0..4)];
    match rng.random_range(0..12) {
        0..=3 => {
            let _ = mprotect_locked(w, addr, addr + len, prot, 0);
        }
        4..=6 => {
            let _ = do_vmi_munmap(w, addr, len);
            return rng.random_range(0..3) == 0;
        }
        7..=8 => {
            let _ = do_mmap(w, None, addr, len, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, 0);
        }
        9 => {
            let _ = do_mmap(w, Some(shared), addr, len, prot, MAP_SHARED | MAP_FIXED, a);
        }
        _ => {
            // A fresh file, mapped, its descriptor closed at once: the VMA
            // holds its only reference, so unmapping frees its slot.
            let ino = NEXT_INO.fetch_add(1, Ordering::Relaxed);
            if let Some(f) = fresh_file(mm, ino) {
                let desc = MapFile::describe_locked(w, f);
                let _ = do_mmap(w, Some(&desc), addr, len, prot, MAP_SHARED | MAP_FIXED, 0);
                w.files().put(f);
            }
        }
    }
    false
}

/// Runs writers, openers and readers on a fresh address space with
/// barrier policy `P`, calling `progress` with the elapsed fraction now
/// and then.
pub fn run<P: BarrierPolicy>(cfg: &StressConfig, progress: &(dyn Fn(f64) + Sync)) -> StressReport {
    let mcfg = MmConfig {
        vma_capacity: cfg.slots * (SLOT_PAGES as usize + 1) + 64,
        ..MmConfig::default()
    };
    let mm: Arc<MmStruct<P>> = Arc::new(MmStruct::with_lock_seq(mcfg, cfg.initial_seq & !1));
    let shared_id = fresh_file(&mm, 1).expect("file slot");
    {
        let mut ft = mm.files();
        let inode = ft.file(shared_id).inode;
        ft.inode_mut(inode).set_size(4 * SLOT_PAGES * PAGE_SIZE);
    }
    let shared = MapFile::describe(&mm, shared_id);
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
                do_mmap(&mut w, Some(&shared), addr, len, PROT_READ, MAP_SHARED | MAP_FIXED, 0)
            };
            r.expect("initial mapping");
            v.push(Slot {
                history: RwLock::new(vec![(w.lock_seq().wrapping_add(1), snapshot(&w, i))]),
            });
        }
        v
    });
    let stop = AtomicBool::new(false);
    let writers_left = AtomicU64::new(cfg.writers.max(1) as u64);
    let (writer_ops, downgrades, opens) = (AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0));
    let totals = Mutex::new(Tally::default());
    let maps_totals = Mutex::new(MapsCounts::default());
    let latencies = Mutex::new(Vec::<u64>::new());
    let first_wrong = Mutex::new(None::<String>);
    let start = Instant::now();
    std::thread::scope(|s| {
        let writers = cfg.writers.max(1);
        for wk in 0..writers {
            let (mm, slots, stop, writer_ops, downgrades, shared) =
                (&mm, &slots, &stop, &writer_ops, &downgrades, &shared);
            let (writers_left, limit) = (&writers_left, cfg.sections_per_writer);
            let latencies = &latencies;
            let seed = cfg.seed ^ ((wk as u64 + 1) * 0x9e37_79b9);
            s.spawn(move || {
                let mut rng = SmallRng::seed_from_u64(seed);
                let mine: Vec<usize> = (wk..slots.len()).step_by(writers).collect();
                let (mut n, mut d) = (0, 0);
                let mut lat = Vec::new();
                while !stop.load(Ordering::Relaxed) && limit.is_none_or(|l| n < l) {
                    let i = mine[rng.random_range(0..mine.len())];
                    let t0 = Instant::now();
                    let mut w = mm.write();
                    let downgrade = random_op(mm, &mut w, &mut rng, i, shared);
                    // The state this write section ends with, at the
                    // sequence number its unlock (or downgrade) makes.
                    let seq = w.lock_seq().wrapping_add(1);
                    let snap = snapshot(&w, i);
                    slots[i].history.write().push((seq, snap));
                    if downgrade {
                        let r = w.downgrade();
                        std::hint::black_box(r.vma_count());
                        d += 1;
                    } else {
                        drop(w);
                    }
                    // At most a million samples per writer.
                    if lat.len() < 1 << 20 {
                        lat.push(t0.elapsed().as_nanos() as u64);
                    }
                    n += 1;
                }
                latencies.lock().extend(lat);
                writer_ops.fetch_add(n, Ordering::Relaxed);
                downgrades.fetch_add(d, Ordering::Relaxed);
                writers_left.fetch_sub(1, Ordering::Release);
            });
        }
        for _ in 0..cfg.maps_readers {
            let (mm, slots, stop, maps_totals, totals, first_wrong) =
                (&mm, &slots, &stop, &maps_totals, &totals, &first_wrong);
            s.spawn(move || {
                let mut m = MapsCounts::default();
                let mut wrong = 0;
                while !stop.load(Ordering::Relaxed) {
                    if let Some(w) = maps_step(mm, slots, &mut m) {
                        wrong += 1;
                        first_wrong.lock().get_or_insert(w);
                    }
                }
                let mut t = maps_totals.lock();
                t.reads += m.reads;
                t.lines += m.lines;
                t.fallbacks += m.fallbacks;
                totals.lock().wrong += wrong;
            });
        }
        for _ in 0..cfg.openers {
            let (mm, stop, opens) = (&mm, &stop, &opens);
            s.spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let ino = NEXT_INO.fetch_add(1, Ordering::Relaxed);
                    if let Some(f) = fresh_file(mm, ino) {
                        mm.files().put(f);
                        n += 1;
                    }
                    std::thread::yield_now();
                }
                opens.fetch_add(n, Ordering::Relaxed);
            });
        }
        for rk in 0..cfg.readers {
            let (mm, slots, stop, totals, first_wrong) = (&mm, &slots, &stop, &totals, &first_wrong);
            let seed = cfg.seed ^ 0x5151_0000 ^ rk as u64;
            let batch = if cfg.sections_per_writer.is_some() { 4 } else { 256 };
            s.spawn(move || {
                let mut rng = SmallRng::seed_from_u64(seed);
                let mut t = Tally::default();
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..batch {
                        let i = rng.random_range(0..slots.len());
                        let addr = slot_base(i) + rng.random_range(0..(SLOT_PAGES + 1) * PAGE_SIZE);
                        // Mostly speculative reads, as on the fast path;
                        // faults of each kind.
                        let kind = [0, 1, 2, 0, 1, 2, 3, 4, 5, 6, 7][rng.random_range(0..11)];
                        if let Some(w) = read_step(mm, &slots[i], addr, kind, &mut t) {
                            t.wrong += 1;
                            first_wrong.lock().get_or_insert(w);
                        }
                    }
                }
                let mut guard = totals.lock();
                let all = &mut *guard;
                for (a, b) in [(&mut all.lookups, &t.lookups), (&mut all.uprobes, &t.uprobes)] {
                    a.attempts += b.attempts;
                    a.successes += b.successes;
                    a.retries += b.retries;
                    a.busy += b.busy;
                }
                all.faults.faults += t.faults.faults;
                all.faults.vma_lock += t.faults.vma_lock;
                all.faults.vma_retry += t.faults.vma_retry;
                all.faults.mmap_lock += t.faults.mmap_lock;
                all.checked += t.checked;
                all.fallback_checked += t.fallback_checked;
                all.wrong += t.wrong;
            });
        }
        if cfg.sections_per_writer.is_some() {
            while writers_left.load(Ordering::Acquire) > 0 {
                std::thread::yield_now();
            }
        } else {
            let deadline = start + cfg.duration;
            while Instant::now() < deadline {
                progress(start.elapsed().as_secs_f64() / cfg.duration.as_secs_f64());
                std::thread::sleep(Duration::from_millis(50).min(cfg.duration));
            }
        }
        stop.store(true, Ordering::Relaxed);
    });
    progress(1.0);
    let t = totals.into_inner();
    let r = mm.read();
    StressReport {
        lookups: t.lookups,
        uprobes: t.uprobes,
        checked: t.checked,
        fallback_checked: t.fallback_checked,
        faults: t.faults,
        maps: maps_totals.into_inner(),
        writer_latency: Latency::of(latencies.into_inner()),
        wrong: t.wrong,
        first_wrong: first_wrong.into_inner(),
        writer_ops: writer_ops.into_inner(),
        downgrades: downgrades.into_inner(),
        opens: opens.into_inner(),
        elapsed: start.elapsed(),
        vmas: r.vma_count(),
        initial_seq: cfg.initial_seq & !1,
        final_seq: mm.mmap_lock().seq(),
    }
}
