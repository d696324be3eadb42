//! Node allocation, publication to the readers' copy, and the
//! summaries the ancestors keep (smallest key, largest gap): what every
//! store needs; and the in-place stores that change no entry's order
//! (`vma_iter_store` of a moved range, a moved boundary, a new value).

use super::{FANOUT, NIL, NodeM, Pos, Tree, TreeFull, TreeShared};
use crate::mutation::{self, Mutation};
use crate::ordering::{read_once, write_once, write_once_u32};

/// A node's largest gap after one of its gaps went from `old` to `new`,
/// given the largest before (`None`: unknown); `None` when only a rescan
/// can tell (the largest gap shrank).
#[inline]
pub(super) fn max_after(max: Option<u64>, old: u64, new: u64) -> Option<u64> {
    let max = max?;
    if new >= max {
        Some(new)
    } else if old == max {
        None
    } else {
        Some(max)
    }
}

/// Publishes a key changed in place (a boundary move, a VMA's new start, a
/// child's new smallest key).
#[inline]
fn publish_key(sh: &TreeShared, node: u32, idx: usize, key: u64) {
    if !mutation::active(Mutation::NoPublishKey) {
        write_once(&sh.nodes.get(node).expect("allocated").keys[idx], key);
    }
}

impl Tree {
    pub(super) fn new_node(&mut self, sh: &TreeShared) -> Result<u32, TreeFull> {
        let id = self.alloc.alloc();
        if !sh.nodes.ensure(id) {
            self.alloc.free(id);
            return Err(TreeFull);
        }
        if id as usize == self.nodes.len() {
            self.nodes.push(NodeM::empty());
            self.pub_len.push(FANOUT as u8);
        } else {
            self.nodes[id as usize] = NodeM::empty();
            self.pub_len[id as usize] = FANOUT as u8;
        }
        Ok(id)
    }

    pub(super) fn free_node(&mut self, id: u32) {
        self.nodes[id as usize].len = 0;
        self.alloc.free(id);
    }

    pub(super) fn note_leaf(&mut self, val: u32, leaf: u32) {
        let i = val as usize;
        if i >= self.leaf_of.len() {
            self.leaf_of.resize(i + 1, NIL);
        }
        self.leaf_of[i] = leaf;
    }

    pub(super) fn is_leaf(&self, node: u32) -> bool {
        self.nodes[node as usize].is_leaf
    }

    pub(super) fn publish_root(&self, sh: &TreeShared) {
        // The mutation forgets root changes (growth, collapse), not the
        // first root of an empty tree.
        if mutation::active(Mutation::NoPublishRoot) && read_once(&sh.root) != NIL as u64 {
            return;
        }
        let v = if self.root == NIL {
            NIL as u64
        } else {
            (self.height as u64) << 32 | self.root as u64
        };
        write_once(&sh.root, v);
    }

    /// Publishes slots `from..len` of `node`, and `PAD_KEY` in the keys
    /// from its length up to what was published before (all of them for a
    /// node not yet published).
    pub(super) fn publish_node(&mut self, sh: &TreeShared, node: u32, from: usize) {
        let n = &self.nodes[node as usize];
        let s = sh.nodes.get(node).expect("ensured at allocation");
        for i in from..n.len {
            write_once(&s.keys[i], n.keys[i]);
            write_once_u32(&s.vals[i], n.vals[i]);
        }
        let was = &mut self.pub_len[node as usize];
        for k in &s.keys[n.len..(*was as usize).max(n.len)] {
            write_once(k, crate::ordering::keys::PAD_KEY);
        }
        *was = n.len as u8;
    }

    pub(super) fn index_in_parent(&self, node: u32) -> Option<(u32, usize)> {
        let n = &self.nodes[node as usize];
        if n.parent == NIL {
            return None;
        }
        debug_assert_eq!(
            self.nodes[n.parent as usize].vals[n.pidx as usize], node,
            "stale parent index"
        );
        Some((n.parent, n.pidx as usize))
    }

    /// Sets the parent links of the children of internal node `node` from
    /// position `from` on.
    pub(super) fn reindex(&mut self, node: u32, from: usize) {
        let n = &self.nodes[node as usize];
        if n.is_leaf {
            return;
        }
        let (len, vals) = (n.len, n.vals);
        for (k, &c) in vals.iter().enumerate().take(len).skip(from) {
            let child = &mut self.nodes[c as usize];
            child.parent = node;
            child.pidx = k as u16;
        }
    }

    /// Recomputes the summaries of `node` in its ancestors: the smallest key
    /// and the largest gap of each child. `node`'s own largest gap is
    /// rescanned; above it, each ancestor's is updated incrementally and
    /// rescanned only when the child that held it shrank.
    pub(super) fn refresh_up(&mut self, sh: &TreeShared, node: u32) {
        self.refresh_up_with(sh, node, None);
    }

    /// [`refresh_up`](Self::refresh_up) when the caller already knows
    /// `node`'s new largest gap (`None`: rescan it).
    pub(super) fn refresh_up_with(&mut self, sh: &TreeShared, mut node: u32, known_max: Option<u64>) {
        let n = &mut self.nodes[node as usize];
        let mut new_max = known_max.unwrap_or_else(|| n.max_gap());
        if new_max == n.max && n.keys[0] == n.min && n.parent != NIL {
            // Nothing the ancestors summarize has changed.
            return;
        }
        n.max = new_max;
        n.min = n.keys[0];
        while let Some((parent, i)) = self.index_in_parent(node) {
            let key = self.nodes[node as usize].keys[0];
            let p = &mut self.nodes[parent as usize];
            let old = p.gaps[i];
            if p.keys[i] == key && old == new_max {
                return;
            }
            if p.keys[i] != key {
                p.keys[i] = key;
                publish_key(sh, parent, i, key);
            }
            p.gaps[i] = new_max;
            if new_max >= p.max {
                p.max = new_max;
            } else if old == p.max {
                p.max = p.max_gap();
            }
            p.min = p.keys[0];
            new_max = p.max;
            node = parent;
        }
    }

    /// The end of the entry before `pos` (0 if none).
    pub(super) fn pred_end(&self, pos: Pos) -> u64 {
        self.prev(pos).map_or(0, |p| self.get(p).end)
    }

    /// Recomputes the gap below the entry at `pos`.
    pub(super) fn fix_gap(&mut self, sh: &TreeShared, pos: Pos) {
        let gap = self.get(pos).start - self.pred_end(pos);
        let n = &mut self.nodes[pos.leaf as usize];
        let known = max_after(Some(n.max), n.gaps[pos.idx], gap);
        n.gaps[pos.idx] = gap;
        self.refresh_up_with(sh, pos.leaf, known);
    }

    /// Fixes the gaps of the entry starting at `start` and of its successor.
    pub(super) fn fix_gaps_around(&mut self, sh: &TreeShared, start: u64) {
        if let Some(p) = self.find_ge(start) {
            self.fix_gap(sh, p);
            let p = self.find_ge(start).expect("still there");
            if let Some(n) = self.next(p) {
                self.fix_gap(sh, n);
            }
        }
    }

    /// Changes the range of the entry at `pos` without changing its order
    /// among entries (the caller guarantees no overlap results).
    pub fn set_range(&mut self, sh: &TreeShared, pos: Pos, start: u64, end: u64) {
        let old_start = self.nodes[pos.leaf as usize].keys[pos.idx];
        // The gap below the entry changes only with its start.
        let mut known = Some(self.nodes[pos.leaf as usize].max);
        if start != old_start {
            let pred_end = self.pred_end(pos);
            let n = &mut self.nodes[pos.leaf as usize];
            let gap = start - pred_end;
            known = max_after(known, n.gaps[pos.idx], gap);
            n.keys[pos.idx] = start;
            n.gaps[pos.idx] = gap;
            publish_key(sh, pos.leaf, pos.idx, start);
        }
        self.nodes[pos.leaf as usize].ends[pos.idx] = end;
        // The successor's gap starts at our new end.
        if let Some(nx) = self.next(pos) {
            let nn = &mut self.nodes[nx.leaf as usize];
            let gap = nn.keys[nx.idx] - end;
            let old = nn.gaps[nx.idx];
            nn.gaps[nx.idx] = gap;
            if nx.leaf != pos.leaf {
                let k = max_after(Some(nn.max), old, gap);
                self.refresh_up_with(sh, nx.leaf, k);
            } else {
                known = max_after(known, old, gap);
            }
        }
        self.refresh_up_with(sh, pos.leaf, known);
    }

    /// Moves the boundary between adjacent entries (`left` ends where `right` starts) to `x`, strictly
    /// inside `left.start..right.end`. No gap changes: only a leaf's new smallest key goes up.
    pub fn move_boundary(&mut self, sh: &TreeShared, left: Pos, right: Pos, x: u64) {
        debug_assert_eq!(self.get(left).end, self.get(right).start, "not adjacent");
        debug_assert!(self.get(left).start < x && x < self.get(right).end);
        self.nodes[left.leaf as usize].ends[left.idx] = x;
        let n = &mut self.nodes[right.leaf as usize];
        n.keys[right.idx] = x;
        let (known, new_min) = (Some(n.max), n.keys[0] != n.min);
        publish_key(sh, right.leaf, right.idx, x);
        if new_min {
            self.refresh_up_with(sh, right.leaf, known);
        }
    }

    /// Replaces the value of the entry at `pos`.
    pub fn set_val(&mut self, sh: &TreeShared, pos: Pos, val: u32) {
        self.generation = self.generation.wrapping_add(1);
        self.nodes[pos.leaf as usize].vals[pos.idx] = val;
        write_once_u32(&sh.nodes.get(pos.leaf).expect("allocated").vals[pos.idx], val);
    }
}
