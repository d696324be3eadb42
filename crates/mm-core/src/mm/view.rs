//! The lookups both sections share ([`VmaView`]: `find_vma`,
//! `vma_lookup`, `vma_prev`/`vma_next`, `for_each_vma`, the gap search of
//! `vma_iter_area_*`) and what a page fault may change under the read lock
//! ([`FaultView`]: `anon_vma`, `page_table_lock`), with their
//! implementations for [`MmRead`] and [`MmWrite`].

use super::{MmRead, MmState, MmWrite};
use crate::ordering::BarrierPolicy;
use crate::sync::{MutexGuard, Ordering};
use crate::vma::{AnonVmaId, Vma, VmaId, VmaSlot};
use crate::vma_cache::VmaCache;

/// What a page fault may change under `mmap_read_lock`, as the kernel's
/// fault path does (`__anon_vma_prepare`): a VMA's `anon_vma`, under
/// `mm->page_table_lock`. Apart from [`VmaView`], which only reads, so that
/// a read-only view cannot change anything; implemented by [`MmRead`] and
/// [`MmWrite`].
pub trait FaultView: VmaView {
    /// Sets `vma->anon_vma`. Allowed under the read lock, as the kernel's
    /// fault path does it; hold [`page_table_lock`](FaultView::page_table_lock)
    /// around the decision.
    fn set_anon_vma(&self, id: VmaId, anon: Option<AnonVmaId>) {
        if let Some(s) = self.cache().get(id) {
            s.anon_vma.store(anon.map_or(0, |a| a.0), Ordering::Relaxed);
        }
    }

    /// Allocates a new `anon_vma` identity (`anon_vma_alloc`).
    fn new_anon_vma(&self) -> AnonVmaId {
        AnonVmaId(self.state().next_anon_vma.fetch_add(1, Ordering::Relaxed) + 1)
    }

    /// `mm->page_table_lock`.
    fn page_table_lock(&self) -> MutexGuard<'_, ()> {
        self.state().page_table_lock.lock()
    }
}

impl<P: BarrierPolicy> FaultView for MmRead<'_, P> {}
impl<P: BarrierPolicy> FaultView for MmWrite<'_, P> {}

/// Read access to the VMAs, shared by [`MmRead`] and [`MmWrite`]. It
/// changes nothing; the one change a reader may make (a fault's
/// `anon_vma`) is [`FaultView`]'s.
pub trait VmaView {
    /// The writer-side state.
    fn state(&self) -> &MmState;

    /// A copy of the VMA `id`.
    #[inline]
    fn vma(&self, id: VmaId) -> Vma {
        let mut v = self.state().vmas[id as usize];
        v.anon_vma = self.cache().get(id).and_then(VmaSlot::anon_vma);
        v
    }

    /// The writer's copy of VMA `id`, by reference (no copy; `anon_vma`,
    /// which faults set in the published slot, is not in it: read it with
    /// [`vma`](Self::vma) or `MmWrite::vma_anon_vma`).
    #[inline]
    fn vma_ref(&self, id: VmaId) -> &Vma {
        &self.state().vmas[id as usize]
    }

    /// The VMA cache (for the published slots).
    fn cache(&self) -> &VmaCache;

    /// `find_vma`: the first VMA ending above `addr`.
    fn find_vma(&self, addr: u64) -> Option<VmaId> {
        let t = &self.state().tree;
        t.find_vma(addr).map(|p| t.get(p).val)
    }

    /// `vma_lookup`: the VMA containing `addr`.
    fn vma_lookup(&self, addr: u64) -> Option<VmaId> {
        let t = &self.state().tree;
        t.lookup(addr).map(|p| t.get(p).val)
    }

    /// `find_vma_intersection`: the first VMA intersecting `[start, end)`.
    fn find_vma_intersection(&self, start: u64, end: u64) -> Option<VmaId> {
        self.find_vma(start).filter(|&v| self.vma(v).start < end)
    }

    /// The VMA before `id`.
    fn vma_prev(&self, id: VmaId) -> Option<VmaId> {
        let t = &self.state().tree;
        let p = t.pos_of(self.state().vmas[id as usize].start, id)?;
        t.prev(p).map(|p| t.get(p).val)
    }

    /// The VMA after `id`.
    fn vma_next(&self, id: VmaId) -> Option<VmaId> {
        let t = &self.state().tree;
        let p = t.pos_of(self.state().vmas[id as usize].start, id)?;
        t.next(p).map(|p| t.get(p).val)
    }

    /// The last VMA ending at or below `addr` (`vma_prev` of a gap at `addr`).
    fn vma_before(&self, addr: u64) -> Option<VmaId> {
        let t = &self.state().tree;
        let p = t.find_le(addr.checked_sub(1)?)?;
        Some(t.get(p).val)
    }

    /// All VMAs in address order.
    fn vma_ids(&self) -> Vec<VmaId> {
        self.state().tree.iter().map(|e| e.val).collect()
    }

    /// Copies of all VMAs in address order.
    fn snapshot(&self) -> Vec<Vma> {
        self.state().tree.iter().map(|e| self.vma(e.val)).collect()
    }

    /// Calls `f` on a copy of every VMA in address order, without
    /// allocating (`for_each_vma`, `include/linux/mm.h`).
    fn for_each_vma(&self, mut f: impl FnMut(&Vma))
    where
        Self: Sized,
    {
        for e in self.state().tree.iter() {
            f(&self.vma(e.val));
        }
    }

    /// [`for_each_vma`](Self::for_each_vma) on the writer's copies, by
    /// reference ([`vma_ref`](Self::vma_ref): `anon_vma` is not read).
    fn for_each_vma_ref(&self, mut f: impl FnMut(&Vma))
    where
        Self: Sized,
    {
        let st = self.state();
        for e in st.tree.iter() {
            f(&st.vmas[e.val as usize]);
        }
    }

    /// Number of VMAs in the tree.
    fn vma_count(&self) -> usize {
        self.state().tree.len()
    }

    /// The VMA tree's shape, for tests that need a write section to split
    /// or grow it: `(height, nodes in use, root node id)`.
    fn tree_shape(&self) -> (u32, usize, Option<u32>) {
        let t = &self.state().tree;
        (t.height(), t.node_count(), t.root_id())
    }

    /// Highest gap in `[low, high)` of at least `size` (`vma_iter_area_highest`).
    fn area_highest(&self, low: u64, high: u64, size: u64) -> Option<(u64, u64)> {
        self.state().tree.highest_gap(low, high, size)
    }

    /// Lowest gap in `[low, high)` of at least `size` (`vma_iter_area_lowest`).
    fn area_lowest(&self, low: u64, high: u64, size: u64) -> Option<(u64, u64)> {
        self.state().tree.lowest_gap(low, high, size)
    }
}

impl<P: BarrierPolicy> VmaView for MmRead<'_, P> {
    #[inline]
    fn state(&self) -> &MmState {
        &self.g
    }
    #[inline]
    fn cache(&self) -> &VmaCache {
        &self.sh.vmas
    }
}

impl<P: BarrierPolicy> VmaView for MmWrite<'_, P> {
    #[inline]
    fn state(&self) -> &MmState {
        self.gr()
    }
    #[inline]
    fn cache(&self) -> &VmaCache {
        &self.sh.vmas
    }
    // The lookups start from the section's position (`vma_iterator`).
    fn find_vma(&self, addr: u64) -> Option<VmaId> {
        self.vmi_find_vma(addr)
    }
    fn vma_lookup(&self, addr: u64) -> Option<VmaId> {
        self.vmi_find_vma_in(addr)
            .filter(|&id| self.gr().vmas[id as usize].start <= addr)
    }
    fn find_vma_intersection(&self, start: u64, end: u64) -> Option<VmaId> {
        self.vmi_find_vma_in(start)
            .filter(|&id| self.gr().vmas[id as usize].start < end)
    }
    fn vma_prev(&self, id: VmaId) -> Option<VmaId> {
        self.vmi_step(id, false)
    }
    fn vma_next(&self, id: VmaId) -> Option<VmaId> {
        self.vmi_step(id, true)
    }
    fn vma_before(&self, addr: u64) -> Option<VmaId> {
        self.vmi_find_le(addr.checked_sub(1)?)
    }
}
