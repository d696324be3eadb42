//! The write section's VMA primitives and the position it carries between
//! them: the model's `struct vma_iterator` (`include/linux/mm_types.h`,
//! the `vma_iter_*` helpers of `mm/vma.h`) over `struct ma_state`.
//!
//! In the kernel, a system call creates one `vma_iterator` and threads it
//! through its steps (`vms_gather_munmap_vmas`, `__split_vma`,
//! `vma_merge_*`, `vma_expand`, `commit_merge`), so that each step starts
//! where the last one left the maple state instead of walking down from
//! the root again. Here the position lives in the [`MmWrite`] guard, which
//! is created once per system call (and starts from where the last write
//! section left it, a hint checked like any other):
//!
//! 1. every lookup of the section ([`find_vma`](crate::VmaView::find_vma),
//!    [`vma_lookup`](crate::VmaView::vma_lookup), [`vma_next`](crate::VmaView::vma_next),
//!    [`vma_prev`](crate::VmaView::vma_prev), [`vma_before`](crate::VmaView::vma_before))
//!    first tries the held position and its neighbours, and leaves the
//!    position on what it found;
//! 2. every primitive that changes a VMA ([`MmWrite::vma_set_range`],
//!    [`MmWrite::vma_move_boundary`], [`MmWrite::vma_unlink`]) finds the
//!    VMA's tree entry through the held position;
//! 3. a held position carries the tree's generation ([`Tree::generation`])
//!    and is used only at that generation: a tree change that moved entries
//!    (an insert, a removal, a node split or merge) costs a descent, never
//!    a wrong answer (debug builds also check that the leaf still holds
//!    that VMA at that index, [`Tree::pos_holds`]).
//!
//! The lock protocol is unchanged: each primitive write-locks the VMAs it
//! changes (`vma_start_write`) before publishing them.

use crate::mm::{MmWrite, NoMem};
use crate::ordering::BarrierPolicy;
use crate::tree::{Pos, Tree};
use crate::vm_flags::VmFlags;
use crate::vma::{AnonVmaId, Vma, VmaId, VmaSlot};

/// The held position: a tree position, the VMA found there, and the
/// tree's generation when it was found.
#[derive(Clone, Copy, Debug, Default)]
pub struct VmaIter {
    at: Option<(VmaId, Pos, u64)>,
}

impl<'a, P: BarrierPolicy> MmWrite<'a, P> {
    #[inline]
    fn tree(&self) -> &Tree {
        &self.gr().tree
    }

    #[inline]
    fn vmi_set(&self, pos: Pos) -> VmaId {
        let t = self.tree();
        let id = t.get(pos).val;
        self.vmi.set(VmaIter {
            at: Some((id, pos, t.generation())),
        });
        id
    }

    /// Holds `pos`, where VMA `id` is.
    #[inline]
    fn vmi_hold(&self, id: VmaId, pos: Pos) {
        self.vmi.set(VmaIter {
            at: Some((id, pos, self.tree().generation())),
        });
    }

    /// The held VMA and position, if taken at the tree's generation.
    #[inline]
    fn vmi_current(&self) -> Option<(VmaId, Pos)> {
        let (id, pos, generation) = self.vmi.get().at?;
        let t = self.tree();
        if generation != t.generation() {
            return None;
        }
        debug_assert!(t.pos_holds(pos, id), "a held position at the current generation");
        Some((id, pos))
    }

    /// The held position, if it is still valid.
    #[inline]
    fn vmi_held(&self) -> Option<Pos> {
        self.vmi_current().map(|(_, pos)| pos)
    }

    /// The tree position of VMA `id`: the held one when it is that VMA's,
    /// else found through the tree (and held from then on).
    ///
    /// The held position's neighbours are tried too: a step of a system
    /// call often changes the VMA next to the one the last lookup found.
    #[inline]
    pub(crate) fn vmi_pos(&self, id: VmaId) -> Pos {
        if let Some((held, pos)) = self.vmi_current() {
            if held == id {
                return pos;
            }
            let t = self.tree();
            if let Some(p) = t.next(pos).filter(|&p| t.get(p).val == id) {
                self.vmi_hold(id, p);
                return p;
            }
            if let Some(p) = t.prev(pos).filter(|&p| t.get(p).val == id) {
                self.vmi_hold(id, p);
                return p;
            }
        }
        self.vmi_pos_slow(id)
    }

    /// [`vmi_pos`](Self::vmi_pos) when the held position does not help.
    #[inline(never)]
    fn vmi_pos_slow(&self, id: VmaId) -> Pos {
        let st = self.gr();
        let pos = st
            .tree
            .pos_of(st.vmas[id as usize].start, id)
            .expect("VMA is in the tree");
        self.vmi_hold(id, pos);
        pos
    }

    /// The tree positions of adjacent VMAs `left` and `right` (`left` is
    /// the entry before `right`): from the held position when it is on
    /// `left`, else through [`vmi_pos`](Self::vmi_pos) of `right`.
    #[inline]
    fn vmi_pair(&self, left: VmaId, right: VmaId) -> (Pos, Pos) {
        let t = self.tree();
        if let Some((held, pl)) = self.vmi_current()
            && held == left
            && let Some(pr) = t.next(pl)
            && t.get(pr).val == right
        {
            return (pl, pr);
        }
        let pr = self.vmi_pos(right);
        let pl = t.prev(pr).expect("left neighbour");
        debug_assert_eq!(t.get(pl).val, left);
        (pl, pr)
    }

    /// [`vmi_find_vma`](Self::vmi_find_vma) for a caller that expects
    /// `addr` inside a VMA (`find_vma_intersection`, `vma_lookup`): inline
    /// when the held VMA contains it.
    #[inline]
    pub(crate) fn vmi_find_vma_in(&self, addr: u64) -> Option<VmaId> {
        if let Some(p) = self.vmi_held() {
            let e = self.tree().get(p);
            if e.start <= addr && addr < e.end {
                return Some(e.val);
            }
        }
        self.vmi_find_vma(addr)
    }

    /// `find_vma` from the held position (`vma_find`): the first VMA ending
    /// above `addr`.
    pub(crate) fn vmi_find_vma(&self, addr: u64) -> Option<VmaId> {
        let t = self.tree();
        if let Some(p) = self.vmi_held() {
            let e = t.get(p);
            if e.start <= addr {
                if addr < e.end {
                    return Some(e.val);
                }
                // Past the held VMA: its successor answers if it ends above.
                match t.next(p) {
                    None => return None,
                    Some(n) if t.get(n).end > addr => {
                        return Some(self.vmi_set(n));
                    }
                    Some(_) => {}
                }
            } else {
                // Below the held VMA: it answers if its predecessor ends
                // at or below `addr`.
                match t.prev(p) {
                    None => return Some(e.val),
                    Some(q) if t.get(q).end <= addr => return Some(e.val),
                    Some(q) if t.get(q).start <= addr => {
                        return Some(self.vmi_set(q));
                    }
                    Some(_) => {}
                }
            }
        }
        let p = t.find_vma(addr)?;
        Some(self.vmi_set(p))
    }

    /// The VMA with the greatest start `<= addr`, from the held position.
    pub(crate) fn vmi_find_le(&self, addr: u64) -> Option<VmaId> {
        let t = self.tree();
        if let Some(p) = self.vmi_held() {
            let e = t.get(p);
            if e.start <= addr {
                match t.next(p) {
                    None => return Some(e.val),
                    Some(n) if t.get(n).start > addr => return Some(e.val),
                    Some(_) => {}
                }
            } else {
                match t.prev(p) {
                    None => return None,
                    Some(q) if t.get(q).start <= addr => {
                        return Some(self.vmi_set(q));
                    }
                    Some(_) => {}
                }
            }
        }
        let p = t.find_le(addr)?;
        Some(self.vmi_set(p))
    }

    /// `vma_next` / `vma_prev` of VMA `id` (`vma_iter_next_range`,
    /// `vma_iter_prev_range`), moving the held position there.
    #[inline(always)]
    pub(crate) fn vmi_step(&self, id: VmaId, forward: bool) -> Option<VmaId> {
        let p = self.vmi_pos(id);
        let t = self.tree();
        let q = if forward { t.next(p) } else { t.prev(p) }?;
        Some(self.vmi_set(q))
    }

    /// The published slot of VMA `id`.
    #[inline]
    pub(crate) fn vma_slot(&self, id: VmaId) -> &VmaSlot {
        self.sh.vmas.get(id).expect("live VMA")
    }

    /// Allocation-failure injection ([`failslab`](crate::failslab)).
    #[inline]
    pub fn fail_nth(&self) -> &crate::failslab::FailNth {
        &self.sh.fail_nth
    }

    /// How many more VMAs the slab can hold (`vm_area_alloc` fails at 0).
    pub fn free_vma_slots(&self) -> usize {
        self.gr().cfg.vma_capacity.saturating_sub(self.gr().vma_live)
    }

    /// `vm_area_alloc` + `vma_iter_store_new`: links a new VMA into the tree
    /// (the range must be free). Does not touch counters or file references.
    pub fn vma_link(&mut self, v: Vma) -> Result<VmaId, NoMem> {
        let seq = self.lock_seq();
        let st = &mut *self.g;
        if st.vma_live >= st.cfg.vma_capacity {
            return Err(NoMem);
        }
        let id = self.sh.vmas.alloc().ok_or(NoMem)?;
        let slot = self.sh.vmas.get(id).expect("allocated");
        // The slot may have been another address space's VMA.
        crate::ordering::recycle_fence();
        slot.publish(&v);
        // A new VMA belongs to this mm and is write-locked in this section
        // (`vma_start_write` of a detached VMA only sets `vm_lock_seq`);
        // then `vma_mark_attached`, before the tree makes it reachable.
        crate::vma_lock::prepare_new(slot, self.sh.id, seq);
        let i = id as usize;
        if i >= st.vmas.len() {
            st.vmas.resize(i + 1, v);
        }
        st.vmas[i] = v;
        crate::vma_lock::mark_attached(slot);
        // The held position (checked) is usually the gap's neighbour: the
        // insert starts from it instead of from the root.
        let near = self.vmi.get().at.map(|(_, p, _)| p);
        match st.tree.insert_near(&self.sh.tree, near, v.start, v.end, id) {
            Err(_) => {
                crate::vma_lock::mark_detached(slot);
                self.sh.vmas.free(id);
                return Err(NoMem);
            }
            Ok(Some(p)) => {
                let generation = st.tree.generation();
                self.vmi.set(VmaIter {
                    at: Some((id, p, generation)),
                });
            }
            Ok(None) => {}
        }
        st.vma_live += 1;
        Ok(id)
    }

    /// Removes VMA `id` from the tree and frees its slot (`vma_iter_clear`,
    /// `vma_mark_detached`, `vm_area_free`), write-locking it first.
    /// Detaching waits for the VMA's readers to leave. Does not touch
    /// counters or file references.
    pub fn vma_unlink(&mut self, id: VmaId) {
        self.vma_start_write(id);
        let p = self.vmi_pos(id);
        let st = &mut *self.g;
        st.tree.remove(&self.sh.tree, p);
        st.vma_live -= 1;
        // Hold a neighbour of the removed entry (checked before use), so
        // that the next lookup near the new gap starts there.
        let near = Tree::step_back_in_leaf(p);
        self.vmi.set(VmaIter {
            at: st.tree.val_at(near).map(|v| (v, near, st.tree.generation())),
        });
        let slot = self.sh.vmas.get(id).expect("live VMA");
        crate::vma_lock::mark_detached(slot);
        self.sh.vmas.free(id);
    }

    /// Moves the boundary between adjacent VMAs `left` and `right` to `x`
    /// (`left` grows and `right` shrinks, or the reverse), giving `right`
    /// the offset `right_pgoff`: what `commit_merge` does when a merge moves
    /// part of one VMA into its neighbour (`vma_adjust_trans_huge` aside).
    pub fn vma_move_boundary(&mut self, left: VmaId, right: VmaId, x: u64, right_pgoff: u64) {
        let seq = self.lock_seq();
        let sh = self.sh;
        let ls = sh.vmas.get(left).expect("live VMA");
        let rs = sh.vmas.get(right).expect("live VMA");
        crate::vma_lock::start_write_slot(ls, seq);
        crate::vma_lock::start_write_slot(rs, seq);
        let (pl, pr) = self.vmi_pair(left, right);
        let st = &mut *self.g;
        let l = &mut st.vmas[left as usize];
        let ol = (l.start, l.end, l.pgoff);
        l.end = x;
        let r = &mut st.vmas[right as usize];
        let or = (r.start, r.end, r.pgoff);
        r.start = x;
        r.pgoff = right_pgoff;
        // Publish the shrinking side first, so that the two published
        // ranges never overlap.
        ls.guarded.write();
        rs.guarded.write();
        if x < ol.1 {
            ls.publish_changed_range(ol, ol.0, x, ol.2);
            rs.publish_changed_range(or, x, or.1, right_pgoff);
        } else {
            rs.publish_changed_range(or, x, or.1, right_pgoff);
            ls.publish_changed_range(ol, ol.0, x, ol.2);
        }
        st.tree.move_boundary(&self.sh.tree, pl, pr, x);
    }

    /// `vma_set_range` in place (and the tree entry), keeping address order.
    #[inline(always)]
    pub fn vma_set_range(&mut self, id: VmaId, start: u64, end: u64, pgoff: u64) {
        let sh = self.sh;
        let slot = sh.vmas.get(id).expect("live VMA");
        crate::vma_lock::start_write_slot(slot, self.lock_seq());
        let p = self.vmi_pos(id);
        let st = &mut *self.g;
        let v = &mut st.vmas[id as usize];
        let old = (v.start, v.end, v.pgoff);
        slot.guarded.write();
        // Publish only what changes, as the kernel writes only those fields.
        if old != (start, end, pgoff) {
            v.start = start;
            v.end = end;
            v.pgoff = pgoff;
            slot.publish_changed_range(old, start, end, pgoff);
        }
        if old.0 != start || old.1 != end {
            st.tree.set_range(&self.sh.tree, p, start, end);
        }
    }

    /// `vm_flags_reset` in place.
    #[inline]
    pub fn vma_set_flags(&mut self, id: VmaId, flags: VmFlags) {
        if self.gr().vmas[id as usize].flags != flags {
            self.vma_reset_flags(id, flags);
        }
    }

    /// `vm_flags_reset` of a VMA whose flags change.
    fn vma_reset_flags(&mut self, id: VmaId, flags: VmFlags) {
        self.vma_start_write(id);
        self.gm().vmas[id as usize].flags = flags;
        let slot = self.sh.vmas.get(id).expect("live VMA");
        slot.guarded.write();
        slot.publish_changed_flags(flags);
    }

    /// `vma->anon_vma` of VMA `id`, from its published slot (what
    /// [`vma`](crate::VmaView::vma) puts in its copy), without copying the VMA.
    #[inline]
    pub fn vma_anon_vma(&self, id: VmaId) -> Option<AnonVmaId> {
        self.sh.vmas.get(id).and_then(VmaSlot::anon_vma)
    }
}
