//! Allocation-failure injection at every fallible point
//! (`mm_core::failslab`), as the kernel's `failslab` with `fail-nth`.
//!
//! `every_point_of_a_long_sequence_fails_cleanly` walks `n` over every
//! allocation point of every call of long random call sequences: a twin
//! without injection counts the points each call passes; a second model,
//! in the state the twin had before the call, then makes the call once per
//! point with that point failing. Each failure must return the kernel's
//! answer (`ENOMEM`; `EAGAIN` for madvise; the unchanged break for brk),
//! pass the invariant checker, and leave the state as it was — or changed
//! exactly as the kernel documents:
//! * munmap, mremap and brk keep splits already made (the VMAs, joined
//!   where their attributes allow, are unchanged);
//! * mprotect and madvise keep what they changed before the failure,
//!   mremap what it unmapped first, `MAP_FIXED` mmap the range it cleared
//!   (nothing outside the call's ranges changes);
//! * mmap whose merge fails maps a new VMA instead (`__mmap_region` falls
//!   back to `__mmap_new_vma`): it succeeds, unmerged;
//! * mremap whose move cannot unmap the source afterwards still succeeds,
//!   the source left mapped (`unmap_source_vma`).
//!
//! After a failure that changed the state, the second model is rebuilt by
//! replaying the sequence up to the call. `MM_FAILSLAB_CALLS` sets the
//! number of calls (default 20,000; the closing note reports 100,000).
//!
//! The other tests port `tools/testing/vma`'s `vmi_prealloc_fail`: a merge
//! whose preallocation fails leaves the VMAs and their `anon_vma`s as
//! they were.

use mm_core::failslab::AllocSite;
use mm_core::{MmConfig, Vma, VmaView};
use mm_ops::call::{Access, Call, Outcome};
use mm_ops::invariants::coalesced;
use mm_ops::task::Task;
use mm_ops::uapi::oflags::*;
use mm_ops::uapi::*;

const ARENA: u64 = 0x2_0000_0000;
const BRK0: u64 = ARENA - 0x40_0000;

fn fresh() -> Task {
    let mut t: Task = Task::new(MmConfig {
        max_map_count: 200,
        vma_capacity: 264,
        ..MmConfig::default()
    });
    {
        let mut w = t.mm().write();
        w.st().start_brk = BRK0;
        w.st().brk = BRK0;
    }
    assert_eq!(t.open("/fs/a", O_RDWR | O_CREAT, None), Ok(3));
    assert_eq!(t.ftruncate(3, 64 * PAGE_SIZE), Ok(()));
    assert_eq!(t.memfd_create("m", 0, None), Ok(4));
    assert_eq!(t.ftruncate(4, 64 * PAGE_SIZE), Ok(()));
    t
}

/// A deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn random_call(r: &mut Rng) -> Call {
    let page = |r: &mut Rng| ARENA + r.below(96) * PAGE_SIZE;
    let len = |r: &mut Rng| (1 + r.below(12)) * PAGE_SIZE;
    let prot = |r: &mut Rng| [PROT_READ, PROT_READ | PROT_WRITE, PROT_NONE, PROT_READ | PROT_EXEC][r.below(4) as usize];
    match r.below(20) {
        0..=5 => {
            let (fd, flags) = match r.below(4) {
                0 => (3, MAP_SHARED),
                1 => (4, MAP_PRIVATE),
                2 => (-1, MAP_SHARED | MAP_ANONYMOUS),
                _ => (-1, MAP_PRIVATE | MAP_ANONYMOUS),
            };
            let fixed = if r.below(3) == 0 { MAP_FIXED } else { 0 };
            Call::Mmap {
                addr: page(r),
                len: len(r),
                prot: prot(r),
                flags: flags | fixed,
                fd,
                off: if fd >= 0 { r.below(16) * PAGE_SIZE } else { 0 },
            }
        }
        6..=8 => Call::Munmap {
            addr: page(r),
            len: len(r),
        },
        9..=11 => Call::Mprotect {
            addr: page(r),
            len: len(r),
            prot: prot(r),
        },
        12 => Call::Madvise {
            addr: page(r),
            len: len(r),
            advice: [madv::DONTFORK, madv::DOFORK, madv::NOHUGEPAGE, madv::HUGEPAGE][r.below(4) as usize],
        },
        13 => Call::Mremap {
            old_addr: page(r),
            old_len: len(r),
            new_len: len(r),
            flags: [0, MREMAP_MAYMOVE, MREMAP_MAYMOVE | MREMAP_FIXED][r.below(3) as usize],
            new_addr: page(r),
        },
        14 => Call::Brk {
            addr: BRK0 + r.below(8) * PAGE_SIZE,
        },
        15 | 16 => Call::Fault {
            addr: page(r),
            access: if r.below(2) == 0 { Access::Write } else { Access::Read },
        },
        17 => Call::Open {
            path: format!("/fs/f{}", r.below(4)),
            flags: O_RDWR | O_CREAT,
            mode: Some(0o600),
        },
        18 => Call::MemfdCreate {
            name: "x".into(),
            flags: 0,
        },
        _ => Call::Close {
            fd: 5 + r.below(8) as i64,
        },
    }
}

/// What a failure must leave unchanged. (Not the inode numbers of objects
/// made later: a failed attempt may have taken one, as `get_next_ino`
/// does in the kernel.)
#[derive(Clone, Debug, PartialEq)]
struct State {
    vmas: Vec<Vma>,
    counters: [u64; 7],
    files: usize,
}

fn state(t: &Task) -> State {
    let r = t.mm().read();
    let st = r.state();
    State {
        vmas: r.snapshot(),
        counters: [
            u64::from(st.map_count),
            st.total_vm,
            st.locked_vm,
            st.data_vm,
            st.exec_vm,
            st.committed - st.committed_stranded,
            st.brk,
        ],
        files: r.files().live_files(),
    }
}

/// The parts of `vmas` outside every range of `ranges`, coalesced.
fn outside(vmas: &[Vma], ranges: &[(u64, u64)]) -> Vec<Vma> {
    let mut out = vec![];
    for v in coalesced(vmas) {
        let mut pieces = vec![v];
        for &(s, e) in ranges {
            let mut next = vec![];
            for p in pieces {
                if p.end <= s || p.start >= e {
                    next.push(p);
                    continue;
                }
                if p.start < s {
                    next.push(Vma { end: s, ..p });
                }
                if p.end > e {
                    let skip = (e - p.start) >> PAGE_SHIFT;
                    next.push(Vma {
                        start: e,
                        pgoff: p.pgoff + skip,
                        ..p
                    });
                }
            }
            pieces = next;
        }
        out.extend(pieces);
    }
    coalesced(&out)
}

/// The ranges a call may change before it fails.
fn touched(c: &Call) -> Vec<(u64, u64)> {
    let r = |a: u64, l: u64| (a, a.saturating_add(page_align(l)));
    match *c {
        Call::Mmap { addr, len, .. } => vec![r(addr, len)],
        Call::Mprotect { addr, len, .. } | Call::Madvise { addr, len, .. } | Call::Munmap { addr, len } => {
            vec![r(addr, len)]
        }
        Call::Mremap {
            old_addr,
            old_len,
            new_len,
            new_addr,
            ..
        } => {
            vec![r(old_addr, old_len.max(new_len)), r(new_addr, new_len)]
        }
        _ => vec![],
    }
}

fn page_align(l: u64) -> u64 {
    l.saturating_add(PAGE_SIZE - 1) & !(PAGE_SIZE - 1)
}

/// Checks one injected failure of `c` (the `k`-th point of `points`).
/// Returns whether the state changed (then the model must be rebuilt).
#[allow(clippy::too_many_arguments)]
fn check_failure(
    c: &Call,
    k: u64,
    points: u64,
    before: &State,
    after_twin: &State,
    want: Outcome,
    out: Outcome,
    t: &Task,
) -> bool {
    let site = t.mm().fail_nth().last_failed();
    let ctx = || {
        format!(
            "{} with point {k} of {points} ({site:?}) failing -> {out:?}",
            mm_ops::strace::format_call(c)
        )
    };
    assert!(!t.mm().fail_nth().pending(), "{}: the point was not reached", ctx());
    if let Err(e) = mm_ops::invariants::check(t.mm()) {
        panic!("{}: {e}", ctx());
    }
    let now = state(t);
    match (c, out) {
        // brk reports failure by returning the unchanged break; a shrink
        // keeps the split it made.
        (Call::Brk { .. }, Outcome::Val(b)) => {
            assert_eq!(b, before.counters[6], "{}", ctx());
            assert_eq!(coalesced(&now.vmas), coalesced(&before.vmas), "{}", ctx());
        }
        // A failed merge in mmap maps a new VMA instead: the twin's
        // result, unmerged.
        (Call::Mmap { .. }, Outcome::Val(a)) => {
            assert!(
                matches!(site, Some(AllocSite::TreePrealloc | AllocSite::AnonVmaClone)),
                "{}: only a merge may fail and the call succeed",
                ctx()
            );
            assert_eq!(Outcome::Val(a), want, "{}", ctx());
            // The new VMA has no anon_vma yet, where the merged one shares
            // its neighbour's.
            let no_anon = |v: &[Vma]| v.iter().map(|v| Vma { anon_vma: None, ..*v }).collect::<Vec<_>>();
            assert_eq!(
                coalesced(&no_anon(&now.vmas)),
                coalesced(&no_anon(&after_twin.vmas)),
                "{}",
                ctx()
            );
        }
        // A move whose source cannot be unmapped afterwards still succeeds
        // (unmap_source_vma: "just get accounts right"): the copy is
        // made, the source stays.
        (Call::Mremap { .. }, Outcome::Val(a)) => {
            assert_eq!(Outcome::Val(a), want, "{}", ctx());
        }
        (Call::Madvise { .. }, o) => {
            assert_eq!(o, Outcome::Err(Errno::EAGAIN), "{}", ctx());
            assert_eq!(
                outside(&now.vmas, &touched(c)),
                outside(&before.vmas, &touched(c)),
                "{}",
                ctx()
            );
        }
        (_, o) => {
            assert_eq!(o, Outcome::Err(Errno::ENOMEM), "{}", ctx());
            match c {
                Call::Munmap { .. } => {
                    assert_eq!(coalesced(&now.vmas), coalesced(&before.vmas), "{}", ctx());
                    // map_count aside: a kept split adds one.
                    assert_eq!(now.counters[1..], before.counters[1..], "{}", ctx());
                }
                Call::Mprotect { .. } | Call::Mremap { .. } | Call::Mmap { .. } => {
                    assert_eq!(
                        outside(&now.vmas, &touched(c)),
                        outside(&before.vmas, &touched(c)),
                        "{}",
                        ctx()
                    );
                }
                _ => assert_eq!(&now, before, "{}", ctx()),
            }
        }
    }
    &now != before
}

#[test]
fn every_point_of_a_long_sequence_fails_cleanly() {
    let total: usize = std::env::var("MM_FAILSLAB_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let seq_len = 250;
    let mut tally = std::collections::BTreeMap::<String, u64>::new();
    let (mut points_total, mut rebuilds) = (0u64, 0u64);
    for seq in 0..total.div_ceil(seq_len) {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (seq as u64 + 1));
        let calls: Vec<Call> = (0..seq_len).map(|_| random_call(&mut rng)).collect();
        let mut twin = fresh();
        twin.mm().fail_nth().set_counting(true);
        let mut t = fresh();
        for (i, c) in calls.iter().enumerate() {
            let before = state(&twin);
            let p0 = twin.mm().fail_nth().passed();
            let want = twin.apply(c, None);
            let points = twin.mm().fail_nth().passed() - p0;
            let after_twin = state(&twin);
            points_total += points;
            for k in 1..=points {
                t.mm().fail_nth().set(k);
                let out = t.apply(c, None);
                let site = t.mm().fail_nth().last_failed();
                *tally.entry(format!("{:?} {:?}", c.name(), site)).or_default() += 1;
                if check_failure(c, k, points, &before, &after_twin, want, out, &t) {
                    rebuilds += 1;
                    t = fresh();
                    for c in &calls[..i] {
                        t.apply(c, None);
                    }
                    assert_eq!(state(&t), before, "rebuilt model differs");
                }
            }
            // In step again: the call without a failure.
            assert_eq!(t.apply(c, None), want, "{}", mm_ops::strace::format_call(c));
        }
    }
    eprintln!("{total} calls, {points_total} allocation points failed one at a time, {rebuilds} partial effects");
    for (k, n) in &tally {
        eprintln!("  {k}: {n}");
    }
    // Every kind of point was reached.
    for site in ["VmAreaAlloc", "TreePrealloc", "AnonVmaClone", "File"] {
        assert!(tally.keys().any(|k| k.contains(site)), "no {site} point was reached");
    }
}

/// vmi_prealloc_fail, merge_existing: mprotect that would merge the middle
/// of three VMAs into both neighbours, the target taking the next VMA's
/// anon_vma, fails its preallocation, then its anon_vma_clone; each time
/// the VMAs and their anon_vmas are as they were.
#[test]
fn merge_existing_prealloc_failure_changes_nothing() {
    let mut t = fresh();
    let rw = PROT_READ | PROT_WRITE;
    let a = t
        .mmap(ARENA, 3 * PAGE_SIZE, rw, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0)
        .expect("mmap");
    mm_ops::kernel::mprotect::do_mprotect(t.mm(), a + PAGE_SIZE, PAGE_SIZE, PROT_READ).expect("split");
    // Only the last VMA has an anon_vma.
    t.apply(
        &Call::Fault {
            addr: a + 2 * PAGE_SIZE,
            access: Access::Write,
        },
        None,
    );
    let before = state(&t);
    assert_eq!(before.vmas.len(), 3);
    assert!(before.vmas[0].anon_vma.is_none() && before.vmas[2].anon_vma.is_some());
    for (n, site) in [(1, AllocSite::TreePrealloc), (2, AllocSite::AnonVmaClone)] {
        t.mm().fail_nth().set(n);
        let r = mm_ops::kernel::mprotect::do_mprotect(t.mm(), a + PAGE_SIZE, PAGE_SIZE, rw);
        assert_eq!(r, Err(Errno::ENOMEM));
        assert_eq!(t.mm().fail_nth().last_failed(), Some(site));
        assert_eq!(state(&t), before, "after {site:?} failed");
    }
    // Without a failure, the three merge, with the last one's anon_vma.
    mm_ops::kernel::mprotect::do_mprotect(t.mm(), a + PAGE_SIZE, PAGE_SIZE, rw).expect("merge");
    let after = state(&t);
    assert_eq!(after.vmas.len(), 1);
    assert_eq!(after.vmas[0].anon_vma, before.vmas[2].anon_vma);
}

/// vmi_prealloc_fail, expand_existing: brk growing the heap VMA fails its
/// preallocation; brk returns the old break and nothing changes.
#[test]
fn expand_existing_prealloc_failure_changes_nothing() {
    let t = fresh();
    let mm = t.mm();
    assert_eq!(mm_ops::kernel::mmap::sys_brk(mm, BRK0 + PAGE_SIZE), BRK0 + PAGE_SIZE);
    let before = state(&t);
    mm.fail_nth().set(1);
    assert_eq!(
        mm_ops::kernel::mmap::sys_brk(mm, BRK0 + 2 * PAGE_SIZE),
        BRK0 + PAGE_SIZE
    );
    assert_eq!(mm.fail_nth().last_failed(), Some(AllocSite::TreePrealloc));
    assert_eq!(state(&t), before);
    assert_eq!(
        mm_ops::kernel::mmap::sys_brk(mm, BRK0 + 2 * PAGE_SIZE),
        BRK0 + 2 * PAGE_SIZE
    );
    assert_eq!(state(&t).vmas.len(), 1, "the heap grew in place");
}

/// The shortcuts that skip the general path's allocations (`unmap_in_place`,
/// the mprotect edge merge) run only while no injection
/// is pending, and count the points the general path would have reached:
/// for every call of long random sequences, a model that counts (and so
/// takes the shortcuts) and one with an injection pending far ahead (which
/// takes the general path) reach the same number of points and the same
/// state. An undercount would leave points that the test above never fails.
#[test]
fn shortcuts_count_the_general_paths_points() {
    let mut shortcut_calls = 0u64;
    for seq in 0..8u64 {
        let mut rng = Rng(0x2545_f491_4f6c_dd1d ^ (seq + 1));
        let (mut short, mut general) = (fresh(), fresh());
        short.mm().fail_nth().set_counting(true);
        general.mm().fail_nth().set_counting(true);
        for _ in 0..250 {
            let c = random_call(&mut rng);
            general.mm().fail_nth().set(1 << 40);
            let (s0, g0) = (short.mm().fail_nth().passed(), general.mm().fail_nth().passed());
            let (a, b) = (short.apply(&c, None), general.apply(&c, None));
            let call = mm_ops::strace::format_call(&c);
            assert_eq!(a, b, "{call}");
            let (s, g) = (
                short.mm().fail_nth().passed() - s0,
                general.mm().fail_nth().passed() - g0,
            );
            assert_eq!(s, g, "points of {call}: shortcut {s}, general path {g}");
            assert_eq!(state(&short), state(&general), "{call}");
            shortcut_calls += u64::from(matches!(c.name(), "munmap" | "mprotect" | "brk"));
        }
    }
    assert!(shortcut_calls > 100, "only {shortcut_calls} munmap/mprotect/brk calls");
}
