//! loom model checks of the speculation protocol, through the project's own
//! code: `MmStruct`, `MmapLock`, the barrier policies, the VMA tree and the
//! mm-ops mutators, all built on the `cfg(loom)` facade.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p mm-spec --test loom --release`
//! (what `cargo xtask loom` does). Each (policy, scenario) is explored over
//! all interleavings, without a preemption bound unless `LOOM_BOUND=N`; a
//! validated read that differs from the address space at the sequence
//! number it validated against is a violation.
#![cfg(loom)]

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use loom::sync::Arc;
use loom::thread;
use mm_core::file::{Inode, InodeKind};
use mm_core::sync::AtomicU32;
use mm_core::{BarrierPolicy, Full, MmConfig, MmStruct, SeedFixed, SeedV1, Upstream, VmaView};
use mm_ops::mmap::{MapFile, do_mmap};
use mm_ops::mprotect::mprotect_locked;
use mm_ops::uapi::*;
use mm_spec::lookup::{Spec, VmaInfo, vma_lookup_speculative};
use mm_spec::uprobe::find_active_uprobe_speculative;

const A: u64 = 0x1000_0000;
const P: u64 = PAGE_SIZE;

/// `seed-v1` on the reader side only (sound `upstream` writer): Jann Horn's
/// first scenario, a load-acquire cannot end a read section.
struct V1Reader;
impl BarrierPolicy for V1Reader {
    const NAME: &'static str = "seed-v1";
    fn write_begin(s: &AtomicU32, new: u32) {
        Upstream::write_begin(s, new)
    }
    fn write_end(s: &AtomicU32, new: u32) {
        Upstream::write_end(s, new)
    }
    fn read_begin(s: &AtomicU32) -> Option<u32> {
        SeedV1::read_begin(s)
    }
    fn read_retry(s: &AtomicU32, start: u32) -> bool {
        SeedV1::read_retry(s, start)
    }
}

/// `seed-v1` on the writer side only (sound `upstream` reader): Jann Horn's
/// second scenario, a store-release cannot begin a write section.
struct V1Writer;
impl BarrierPolicy for V1Writer {
    const NAME: &'static str = "seed-v1";
    fn write_begin(s: &AtomicU32, new: u32) {
        SeedV1::write_begin(s, new)
    }
    fn write_end(s: &AtomicU32, new: u32) {
        SeedV1::write_end(s, new)
    }
    fn read_begin(s: &AtomicU32) -> Option<u32> {
        Upstream::read_begin(s)
    }
    fn read_retry(s: &AtomicU32, start: u32) -> bool {
        Upstream::read_retry(s, start)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scenario {
    /// Writer: mprotect of a whole VMA (vm_flags rewritten in place).
    /// Reader: speculative vma_lookup. Exposes the reader's barrier.
    ReaderSide,
    /// The same calls, exposing the writer's barrier.
    WriterMprotect,
    /// Writer: mprotect of the upper half of a file VMA, a split that moves
    /// vm_start and vm_pgoff of the original VMA in place and links a new one.
    /// Reader: uprobe-style resolution of an address in the upper half.
    WriterSplit,
    /// Writer: the same split; reader: vma_lookup of the upper half, which
    /// must never return a half-split VMA.
    HalfSplit,
    /// Writer: mprotect, then mmap_write_downgrade (the count ends there).
    Downgrade,
    /// Reader holds mmap_read_lock: try_begin must succeed while a writer
    /// waits, and the speculative result must match.
    ReadLockTryBegin,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::ReaderSide => "reader-side(jann1)",
            Scenario::WriterMprotect => "writer-mprotect(jann2)",
            Scenario::WriterSplit => "writer-split(jann2)",
            Scenario::HalfSplit => "half-split",
            Scenario::Downgrade => "downgrade",
            Scenario::ReadLockTryBegin => "read-lock-try-begin",
        }
    }
}

fn config() -> MmConfig {
    MmConfig {
        vma_capacity: 6,
        ..MmConfig::default()
    }
}

/// An address space with one VMA `[A, A + 2 pages)`: anonymous read-write,
/// or a shared read-only file mapping (offset 0) for the split scenarios.
fn setup<Pol: BarrierPolicy>(file: bool) -> Arc<MmStruct<Pol>> {
    let mm: MmStruct<Pol> = MmStruct::new(config());
    {
        let mut w = mm.write();
        if file {
            let id = {
                let mut files = w.files();
                let inode = files.add_inode(Inode::new(77, (0, 1), 16 * P, "/f".into(), InodeKind::Memfd));
                files.open(w.file_slots(), inode, true, true, false).expect("file slot")
            };
            let desc = MapFile::describe_locked(&w, id);
            do_mmap(&mut w, Some(&desc), A, 2 * P, PROT_READ, MAP_SHARED | MAP_FIXED, 0).expect("map");
            w.files().put(id);
        } else {
            do_mmap(
                &mut w,
                None,
                A,
                2 * P,
                PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
                0,
            )
            .expect("map");
        }
    }
    Arc::new(mm)
}

/// The locked view of the VMA containing `addr`.
fn locked<Pol: BarrierPolicy>(mm: &MmStruct<Pol>, addr: u64) -> Option<VmaInfo> {
    mm_spec::lookup::vma_lookup_locked(mm, addr)
}

/// One execution of `scenario`; panics on a violation with what was read.
fn execution<Pol: BarrierPolicy>(scenario: Scenario) {
    let split = matches!(scenario, Scenario::WriterSplit | Scenario::HalfSplit);
    let mm = setup::<Pol>(split);
    let s0 = mm.mmap_lock().seq();
    let probe = if split { A + P + 8 } else { A + 8 };
    let before = locked(&mm, probe);
    // The state after the write section, computed on a twin.
    let after = {
        let twin = setup::<Pol>(split);
        {
            let mut w = twin.write();
            writer_calls(&mut w, split);
        }
        locked(&twin, probe)
    };
    let wm = mm.clone();
    let writer = thread::spawn(move || {
        let mut w = wm.write();
        writer_calls(&mut w, split);
        if scenario == Scenario::Downgrade {
            drop(w.downgrade());
        }
    });
    let state_at = |seq: u32| -> Option<VmaInfo> {
        if seq == s0 {
            before
        } else if seq == s0.wrapping_add(2) {
            after
        } else {
            panic!("validated at impossible seq {seq} (start {s0})")
        }
    };
    match scenario {
        Scenario::WriterSplit => {
            if let Some(hit) = find_active_uprobe_speculative(&mm, probe) {
                // The file offset of `probe` is the same before and after;
                // a torn (vm_start, vm_pgoff) pair gives another.
                assert_eq!((hit.ino, hit.offset), (77, P + 8), "validated torn read: {hit:?}");
            }
        }
        Scenario::ReadLockTryBegin => {
            let r = mm.read();
            let seq = mm.speculate_try_begin();
            assert!(seq.is_some(), "try_begin failed under mmap_read_lock");
            drop(r);
            if let Spec::Valid { value, seq } = vma_lookup_speculative(&mm, probe) {
                assert_eq!(value, state_at(seq), "validated torn read at seq {seq}");
            }
        }
        _ => {
            if let Spec::Valid { value, seq } = vma_lookup_speculative(&mm, probe) {
                assert_eq!(value, state_at(seq), "validated torn read at seq {seq}");
            }
        }
    }
    writer.join().expect("writer");
}

fn writer_calls<Pol: BarrierPolicy>(w: &mut mm_core::MmWrite<'_, Pol>, split: bool) {
    if split {
        mprotect_locked(w, A + P, A + 2 * P, PROT_NONE, 0).expect("split");
    } else {
        mprotect_locked(w, A, A + 2 * P, PROT_READ, 0).expect("mprotect");
    }
}

struct Verdict {
    violation: Option<String>,
    executions: usize,
    secs: f64,
}

static EXECUTIONS: AtomicUsize = AtomicUsize::new(0);

/// The preemption bound: `LOOM_BOUND=N`, or `none` (the default) for an
/// unbounded search, which these small scenarios allow.
fn bound() -> Option<usize> {
    match std::env::var("LOOM_BOUND") {
        Ok(v) if v != "none" => v.parse().ok(),
        _ => None,
    }
}

fn bound_name() -> String {
    bound().map_or("none".into(), |b| b.to_string())
}

fn check<Pol: BarrierPolicy>(scenario: Scenario) -> Verdict {
    EXECUTIONS.store(0, Ordering::SeqCst);
    let t = Instant::now();
    let r = std::panic::catch_unwind(AssertUnwindSafe(|| {
        let mut b = loom::model::Builder::new();
        b.preemption_bound = bound();
        b.max_branches = 100_000;
        b.check(move || {
            EXECUTIONS.fetch_add(1, Ordering::SeqCst);
            execution::<Pol>(scenario);
        });
    }));
    let violation = r.err().map(|e| {
        e.downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()
    });
    Verdict {
        violation,
        executions: EXECUTIONS.load(Ordering::SeqCst),
        secs: t.elapsed().as_secs_f64(),
    }
}

/// Writes one result row (for `cargo xtask loom`) and prints it.
fn row(policy: &str, scenario: &str, v: &Verdict) {
    let verdict = if v.violation.is_some() {
        "violation-found"
    } else {
        "no-violation"
    };
    let line = format!(
        "{policy}\t{scenario}\t{verdict}\t{}\t{:.1}\t{}",
        v.executions,
        v.secs,
        bound_name()
    );
    println!("{line}");
    if let Some(msg) = &v.violation {
        println!("    first violation: {}", msg.lines().next().unwrap_or(""));
    }
    if let Some(dir) = std::env::var_os("MM_LOOM_OUT") {
        use std::io::Write;
        let path = std::path::Path::new(&dir).join("rows.tsv");
        if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
            let _ = writeln!(f, "{line}");
        }
    }
}

const SCENARIOS: [Scenario; 6] = [
    Scenario::ReaderSide,
    Scenario::WriterMprotect,
    Scenario::WriterSplit,
    Scenario::HalfSplit,
    Scenario::Downgrade,
    Scenario::ReadLockTryBegin,
];

const MUTATION: Option<&str> = if cfg!(feature = "mutation-no-wmb-begin") {
    Some("no-wmb-begin")
} else if cfg!(feature = "mutation-no-wmb-end") {
    Some("no-wmb-end")
} else if cfg!(feature = "mutation-relaxed-try-begin") {
    Some("relaxed-try-begin")
} else if cfg!(feature = "mutation-no-rmb-retry") {
    Some("no-rmb-retry")
} else {
    None
};

#[test]
fn seed_v1_violations_are_found() {
    if MUTATION.is_some() {
        return;
    }
    for (s, v) in [
        (Scenario::ReaderSide, check::<V1Reader>(Scenario::ReaderSide)),
        (Scenario::WriterMprotect, check::<V1Writer>(Scenario::WriterMprotect)),
        (Scenario::WriterSplit, check::<V1Writer>(Scenario::WriterSplit)),
    ] {
        row("seed-v1", s.name(), &v);
        assert!(v.violation.is_some(), "loom should find seed-v1's bug in {}", s.name());
    }
}

fn sound<Pol: BarrierPolicy>() {
    if MUTATION.is_some() {
        return;
    }
    for s in SCENARIOS {
        let v = check::<Pol>(s);
        row(Pol::NAME, s.name(), &v);
        assert!(v.violation.is_none(), "{} / {}: {:?}", Pol::NAME, s.name(), v.violation);
    }
}

#[test]
fn seed_fixed_is_sound() {
    sound::<SeedFixed>();
}

#[test]
fn upstream_is_sound() {
    sound::<Upstream>();
}

#[test]
fn full_is_sound() {
    sound::<Full>();
}

/// With one barrier of `upstream` removed (a mutation feature), some
/// scenario must find a violation.
#[test]
fn upstream_mutation_is_detected() {
    let Some(m) = MUTATION else { return };
    let mut found = vec![];
    for s in SCENARIOS {
        let v = check::<Upstream>(s);
        row(&format!("upstream-{m}"), s.name(), &v);
        if v.violation.is_some() {
            found.push(s.name());
        }
    }
    assert!(!found.is_empty(), "mutation {m} was not detected by any scenario");
}

#[test]
fn locked_lookup_sees_the_vma() {
    // A sanity check of the setup that also runs without violations.
    loom::model(|| {
        let mm = setup::<Upstream>(false);
        assert!(locked(&mm, A).is_some());
        assert_eq!(mm.read().vma_count(), 1);
    });
}
