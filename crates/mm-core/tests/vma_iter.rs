//! The write section's held position (`mm_core::vma_iter`) never changes
//! an answer: within one long write section of random links, unlinks,
//! range changes and boundary moves, every lookup through the held
//! position equals the same lookup by a plain scan of the VMAs.

use mm_core::{MmConfig, MmStruct, Upstream, VmFlags, Vma, VmaId, VmaView};
use proptest::prelude::*;

const P: u64 = 4096;

fn vma(start: u64, end: u64) -> Vma {
    Vma {
        start,
        end,
        pgoff: start / P,
        flags: VmFlags::DATA_DEFAULT,
        file: None,
        anon_vma: None,
        special: None,
    }
}

/// The VMAs in address order: `(start, end, id)`.
fn scan(w: &impl VmaView) -> Vec<(u64, u64, VmaId)> {
    w.vma_ids()
        .into_iter()
        .map(|id| {
            let v = w.vma(id);
            (v.start, v.end, id)
        })
        .collect()
}

#[derive(Clone, Debug)]
enum Op {
    /// Link a VMA at page `a` of length `n` pages if free.
    Link(u64, u64),
    /// Unlink the `i`-th VMA.
    Unlink(usize),
    /// Shrink the `i`-th VMA from its end by one page.
    Shrink(usize),
    /// Move the boundary between the `i`-th VMA and its neighbour if adjacent.
    Move(usize, bool),
    /// Lookups at page `a`.
    Look(u64),
    /// Next/prev of the `i`-th VMA.
    Step(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u64..600, 1u64..6).prop_map(|(a, n)| Op::Link(a, n)),
        1 => any::<usize>().prop_map(Op::Unlink),
        1 => any::<usize>().prop_map(Op::Shrink),
        2 => (any::<usize>(), any::<bool>()).prop_map(|(i, b)| Op::Move(i, b)),
        4 => (0u64..620).prop_map(Op::Look),
        3 => any::<usize>().prop_map(Op::Step),
    ]
}

fn check_lookups(w: &impl VmaView, addr: u64) {
    let all = scan(w);
    let find = all.iter().find(|e| e.1 > addr).map(|e| e.2);
    assert_eq!(w.find_vma(addr), find, "find_vma({addr:#x})");
    let look = all.iter().find(|e| e.0 <= addr && addr < e.1).map(|e| e.2);
    assert_eq!(w.vma_lookup(addr), look, "vma_lookup({addr:#x})");
    let before = all.iter().rev().find(|e| e.0 < addr).map(|e| e.2);
    assert_eq!(w.vma_before(addr), before, "vma_before({addr:#x})");
    let inter = all.iter().find(|e| e.1 > addr && e.0 < addr + 3 * P).map(|e| e.2);
    assert_eq!(w.find_vma_intersection(addr, addr + 3 * P), inter, "intersection");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn held_position_never_changes_an_answer(ops in proptest::collection::vec(op(), 1..400)) {
        let mm: MmStruct<Upstream> = MmStruct::new(MmConfig::default());
        let mut w = mm.write();
        for op in ops {
            let all = scan(&w);
            let pick = |i: usize| (!all.is_empty()).then(|| all[i % all.len()]);
            match op {
                Op::Link(a, n) => {
                    let (s, e) = (0x10000 + a * P, 0x10000 + (a + n) * P);
                    if all.iter().all(|v| v.1 <= s || v.0 >= e) {
                        w.vma_link(vma(s, e)).expect("room");
                    }
                }
                Op::Unlink(i) => {
                    if let Some((_, _, id)) = pick(i) {
                        w.vma_unlink(id);
                    }
                }
                Op::Shrink(i) => {
                    if let Some((s, e, id)) = pick(i) && e - s > P {
                        w.vma_set_range(id, s, e - P, s / P);
                    }
                }
                Op::Move(i, grow_left) => {
                    let j = i % all.len().max(1);
                    if all.len() > 1 && j + 1 < all.len() && all[j].1 == all[j + 1].0 {
                        let (l, r) = (all[j], all[j + 1]);
                        let x = if grow_left { r.0 + P } else { l.1 - P };
                        if l.0 < x && x < r.1 {
                            w.vma_move_boundary(l.2, r.2, x, x / P);
                        }
                    }
                }
                Op::Look(a) => check_lookups(&w, 0x10000 + a * P),
                Op::Step(i) => {
                    if let Some((_, _, id)) = pick(i) {
                        let k = all.iter().position(|e| e.2 == id).unwrap();
                        prop_assert_eq!(w.vma_next(id), all.get(k + 1).map(|e| e.2));
                        prop_assert_eq!(w.vma_prev(id), k.checked_sub(1).map(|k| all[k].2));
                    }
                }
            }
            w.check_published().map_err(TestCaseError::fail)?;
        }
        // The same answers from a fresh read section (no held position).
        drop(w);
        let r = mm.read();
        for a in (0..620).step_by(7) {
            check_lookups(&r, 0x10000 + a * P);
        }
    }
}
