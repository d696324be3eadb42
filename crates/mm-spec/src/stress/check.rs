//! The stress oracle's checks: what each reader's answer must equal, given
//! the writers' records of each slot.

use mm_core::{BarrierPolicy, MmStruct, VmFlags};
use mm_ops::call::{Access, Signal};
use mm_ops::kernel::memory::{FaultPath, handle_user_fault_path};
use mm_ops::kernel::task_mmu::for_each_vma_locked;

use super::{FaultCounts, MapsCounts, SLOT_PAGES, Slot, SlotState, slot_base, slot_of};
use crate::lookup::{Spec, SpecCounts, SpecStats, VmaInfo, vma_lookup, vma_lookup_speculative};
use crate::uprobe::{UprobeHit, resolve, uprobe_speculative};
use mm_ops::uapi::PAGE_SIZE;

/// The expected `vma_lookup` result for `addr` in a slot state.
pub(super) fn expect(state: &SlotState, addr: u64) -> Option<VmaInfo> {
    state.iter().find(|v| v.start <= addr && addr < v.end).copied()
}

/// The expected uprobe result for `addr` in a slot state.
pub(super) fn expect_uprobe(state: &SlotState, addr: u64) -> Option<UprobeHit> {
    let v = expect(state, addr)?;
    Some(UprobeHit {
        ino: v.ino?,
        offset: (v.pgoff << 12) + (addr - v.start),
    })
}

/// The outcome of a user fault in a slot state.
pub(super) fn expect_fault(state: &SlotState, addr: u64, access: Access) -> Result<(), Signal> {
    crate::oracle::expected_fault(expect(state, addr).map(|v| v.flags), access)
}

/// `x <= y` for sequence numbers, across the wrap at 2^32.
pub(super) fn seq_le(x: u32, y: u32) -> bool {
    x.wrapping_sub(y) as i32 <= 0
}

impl Slot {
    /// The record in force at `seq`.
    fn at(&self, seq: u32) -> Option<SlotState> {
        let h = self.history.read();
        let idx = h.partition_point(|(s, _)| seq_le(*s, seq));
        idx.checked_sub(1).map(|k| h[k].1.clone())
    }

    /// Every record in force at some sequence number in `[lo, hi]`.
    fn during(&self, lo: u32, hi: u32) -> Vec<SlotState> {
        let h = self.history.read();
        let first = h.partition_point(|(s, _)| seq_le(*s, lo)).saturating_sub(1);
        let last = h.partition_point(|(s, _)| seq_le(*s, hi));
        h[first..last.max(first)].iter().map(|(_, s)| s.clone()).collect()
    }
}

/// Per-reader tallies, flushed at the end.
#[derive(Default)]
pub(super) struct Tally {
    pub(super) lookups: SpecCounts,
    pub(super) uprobes: SpecCounts,
    pub(super) faults: FaultCounts,
    pub(super) checked: u64,
    pub(super) fallback_checked: u64,
    pub(super) wrong: u64,
}

fn count(c: &mut SpecCounts, s: &Spec<impl Sized>) {
    c.attempts += 1;
    match s {
        Spec::Valid { .. } => c.successes += 1,
        Spec::Retry => c.retries += 1,
        Spec::Busy => c.busy += 1,
    }
}

/// One reader step at `addr` in slot `slot`; returns a description of a
/// wrong answer.
pub(super) fn read_step<P: BarrierPolicy>(
    mm: &MmStruct<P>,
    slot: &Slot,
    addr: u64,
    kind: u32,
    t: &mut Tally,
) -> Option<String> {
    let stats = SpecStats::default();
    match kind {
        0 | 1 => {
            let sp = vma_lookup_speculative(mm, addr);
            count(&mut t.lookups, &sp);
            if let Spec::Valid { value, seq } = sp {
                t.checked += 1;
                let want = slot.at(seq).map(|s| expect(&s, addr));
                if want != Some(value) {
                    return Some(format!(
                        "vma_lookup {addr:#x} validated at seq {seq}: {value:?}, expected {want:?}"
                    ));
                }
            }
        }
        2 => {
            let sp = uprobe_speculative(mm, addr);
            count(&mut t.uprobes, &sp);
            if let Spec::Valid { value, seq } = sp {
                t.checked += 1;
                let want = slot.at(seq).map(|s| expect_uprobe(&s, addr));
                if want != Some(value) {
                    return Some(format!(
                        "uprobe {addr:#x} validated at seq {seq}: {value:?}, expected {want:?}"
                    ));
                }
            }
        }
        5..=7 => {
            let access = [Access::Read, Access::Write, Access::Exec][kind as usize - 5];
            // A section in progress may not have write-locked this VMA
            // yet: the state before it counts too.
            let lo = mm.mmap_lock().seq() & !1;
            let (got, path) = handle_user_fault_path(mm, addr, access);
            let hi = mm.mmap_lock().seq();
            t.faults.faults += 1;
            match path {
                FaultPath::VmaLock => t.faults.vma_lock += 1,
                FaultPath::VmaRetry => t.faults.vma_retry += 1,
                FaultPath::MmapLock | FaultPath::KernelSpace => t.faults.mmap_lock += 1,
            }
            t.fallback_checked += 1;
            if !slot.during(lo, hi).iter().any(|s| expect_fault(s, addr, access) == got) {
                return Some(format!(
                    "fault {access:?} at {addr:#x}: {got:?}, in force at no seq in [{lo}, {hi}]"
                ));
            }
        }
        _ => {
            let lo = mm.mmap_lock().seq();
            let (desc, ok) = if kind == 3 {
                let v = vma_lookup(mm, addr, &stats);
                let hi = mm.mmap_lock().seq();
                (
                    format!("vma_lookup {addr:#x}: {v:?}"),
                    slot.during(lo, hi).iter().any(|s| expect(s, addr) == v),
                )
            } else {
                let v = resolve(mm, addr, &stats);
                let hi = mm.mmap_lock().seq();
                (
                    format!("resolve {addr:#x}: {v:?}"),
                    slot.during(lo, hi).iter().any(|s| expect_uprobe(s, addr) == v),
                )
            };
            t.fallback_checked += 1;
            if !ok {
                return Some(format!(
                    "{desc}, in force at no seq in [{lo}, {}]",
                    mm.mmap_lock().seq()
                ));
            }
        }
    }
    None
}

/// One lock-free `/proc/PID/maps` read (`for_each_vma_locked`, the walk of
/// `render_maps_vma_locked`), checked against what its algorithm
/// guarantees: VMA ends strictly increase; each VMA is a VMA of its slot in
/// some record in force during the read; each gap between consecutive
/// VMAs of a slot is a gap in some such record.
pub(super) fn maps_step<P: BarrierPolicy>(mm: &MmStruct<P>, slots: &[Slot], m: &mut MapsCounts) -> Option<String> {
    let lo = mm.mmap_lock().seq() & !1;
    let mut seen: Vec<(u64, u64, VmFlags)> = vec![];
    let stats = for_each_vma_locked(mm, |v| seen.push((v.start, v.end, v.flags)));
    let hi = mm.mmap_lock().seq();
    m.reads += 1;
    m.lines += stats.lines;
    m.fallbacks += stats.fallbacks;
    // lock_next_vma returns a VMA that ends above the previous line's end
    // (it may start below it: a VMA that grew or merged backwards since is
    // shown again, overlapping, as the kernel shows it).
    for w in seen.windows(2) {
        if w[0].1 >= w[1].1 {
            return Some(format!(
                "maps: {:#x}-{:#x} then {:#x}-{:#x}, ends not increasing",
                w[0].0, w[0].1, w[1].0, w[1].1
            ));
        }
    }
    // Per slot: its VMAs as read, then the check against its records.
    let mut by_slot: std::collections::BTreeMap<usize, Vec<(u64, u64, VmFlags)>> = Default::default();
    for &(a, b, f) in &seen {
        if let Some(i) = slot_of(a).filter(|&i| i < slots.len()) {
            by_slot.entry(i).or_default().push((a, b, f));
        }
    }
    for (i, slot) in slots.iter().enumerate() {
        let states = slot.during(lo, hi);
        let vmas = by_slot.remove(&i).unwrap_or_default();
        for &(a, b, f) in &vmas {
            if !states
                .iter()
                .any(|st| st.iter().any(|v| (v.start, v.end, v.flags) == (a, b, f)))
            {
                return Some(format!(
                    "maps: {a:#x}-{b:#x} {f:?} in slot {i} is in no record in [{lo}, {hi}]"
                ));
            }
        }
        let (base, top) = (slot_base(i), slot_base(i) + SLOT_PAGES * PAGE_SIZE);
        let mut prev = base;
        let mut gaps = vec![];
        for &(a, b, _) in &vmas {
            if a > prev {
                gaps.push((prev, a));
            }
            prev = prev.max(b);
        }
        if prev < top {
            gaps.push((prev, top));
        }
        for (g0, g1) in gaps {
            if !states.iter().any(|st| st.iter().all(|v| v.end <= g0 || v.start >= g1)) {
                return Some(format!(
                    "maps: phantom gap {g0:#x}-{g1:#x} in slot {i} (records in [{lo}, {hi}])"
                ));
            }
        }
    }
    None
}
