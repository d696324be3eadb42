//! Removing an entry (`mas_erase`): shrinking, merging and dropping
//! nodes, and collapsing the root.

use super::update::max_after;
use super::{FANOUT, NIL, Pos, Tree, TreeShared};

impl Tree {
    /// Removes the entry at `pos`.
    pub fn remove(&mut self, sh: &TreeShared, pos: Pos) {
        self.generation = self.generation.wrapping_add(1);
        let n = &self.nodes[pos.leaf as usize];
        if n.len > (FANOUT / 4).max(1) {
            // Fast path: the leaf stays big enough; fix the successor's gap
            // and refresh once.
            let pred_end = self.pred_end(pos);
            let next = self.next(pos);
            let n = &mut self.nodes[pos.leaf as usize];
            let (idx, len) = (pos.idx, n.len);
            // The leaf's largest gap, kept incrementally: the successor's
            // gap grows to take in the removed entry and its gap (so it is
            // at least that gap), then the removed slot goes.
            let removed_gap = n.gaps[idx];
            let mut known = Some(n.max);
            n.keys.copy_within(idx + 1..len, idx);
            n.ends.copy_within(idx + 1..len, idx);
            n.vals.copy_within(idx + 1..len, idx);
            n.gaps.copy_within(idx + 1..len, idx);
            n.len -= 1;
            match next {
                Some(nx) if nx.leaf == pos.leaf => {
                    let (old, gap) = (n.gaps[idx], n.keys[idx] - pred_end);
                    n.gaps[idx] = gap;
                    known = max_after(known, old, gap);
                }
                Some(nx) => {
                    let nn = &mut self.nodes[nx.leaf as usize];
                    let (old, gap) = (nn.gaps[0], nn.keys[0] - pred_end);
                    nn.gaps[0] = gap;
                    let k = max_after(Some(nn.max), old, gap);
                    self.refresh_up_with(sh, nx.leaf, k);
                }
                None => {}
            }
            let known = max_after(known, removed_gap, 0);
            self.publish_node(sh, pos.leaf, idx);
            self.refresh_up_with(sh, pos.leaf, known);
            self.len -= 1;
            return;
        }
        let succ = self.next(pos).map(|p| self.get(p).start);
        self.remove_at(sh, pos.leaf, pos.idx);
        self.len -= 1;
        if let Some(s) = succ {
            let p = self.find_ge(s).expect("successor survives");
            self.fix_gap(sh, p);
        }
    }

    pub(super) fn remove_at(&mut self, sh: &TreeShared, node: u32, idx: usize) {
        let n = &mut self.nodes[node as usize];
        let len = n.len;
        n.keys.copy_within(idx + 1..len, idx);
        n.ends.copy_within(idx + 1..len, idx);
        n.vals.copy_within(idx + 1..len, idx);
        n.gaps.copy_within(idx + 1..len, idx);
        n.len -= 1;
        let new_len = n.len;
        self.reindex(node, idx);
        self.publish_node(sh, node, idx);
        if new_len == 0 {
            self.drop_node(sh, node);
            return;
        }
        self.refresh_up(sh, node);
        if new_len < FANOUT / 4 {
            self.try_merge(sh, node);
        }
    }

    /// Unlinks an empty node from its parent and frees it.
    pub(super) fn drop_node(&mut self, sh: &TreeShared, node: u32) {
        let (prev, next) = {
            let n = &self.nodes[node as usize];
            (n.prev_leaf, n.next_leaf)
        };
        if prev != NIL {
            self.nodes[prev as usize].next_leaf = next;
        }
        if next != NIL {
            self.nodes[next as usize].prev_leaf = prev;
        }
        match self.index_in_parent(node) {
            None => {
                self.root = NIL;
                self.height = 0;
                self.publish_root(sh);
            }
            Some((parent, i)) => {
                self.remove_at(sh, parent, i);
                self.collapse_root(sh);
            }
        }
        self.free_node(node);
    }

    pub(super) fn collapse_root(&mut self, sh: &TreeShared) {
        while self.height > 1 && self.root != NIL && self.nodes[self.root as usize].len == 1 {
            let old = self.root;
            self.root = self.nodes[old as usize].vals[0];
            self.nodes[self.root as usize].parent = NIL;
            self.height -= 1;
            self.publish_root(sh);
            self.free_node(old);
        }
    }

    /// Merges an underfull node with a sibling when both fit in one node.
    pub(super) fn try_merge(&mut self, sh: &TreeShared, node: u32) {
        let Some((parent, i)) = self.index_in_parent(node) else {
            self.collapse_root(sh);
            return;
        };
        let plen = self.nodes[parent as usize].len;
        let (left, right) = if i + 1 < plen {
            (node, self.nodes[parent as usize].vals[i + 1])
        } else if i > 0 {
            (self.nodes[parent as usize].vals[i - 1], node)
        } else {
            return;
        };
        let (ll, rl) = (self.nodes[left as usize].len, self.nodes[right as usize].len);
        if ll + rl > FANOUT {
            return;
        }
        let is_leaf = self.is_leaf(left);
        let r = self.nodes[right as usize].clone();
        {
            let l = &mut self.nodes[left as usize];
            l.keys[ll..ll + rl].copy_from_slice(&r.keys[..rl]);
            l.ends[ll..ll + rl].copy_from_slice(&r.ends[..rl]);
            l.vals[ll..ll + rl].copy_from_slice(&r.vals[..rl]);
            l.gaps[ll..ll + rl].copy_from_slice(&r.gaps[..rl]);
            l.len = ll + rl;
            if is_leaf {
                l.next_leaf = r.next_leaf;
            }
        }
        if is_leaf && r.next_leaf != NIL {
            self.nodes[r.next_leaf as usize].prev_leaf = left;
        }
        if is_leaf {
            for &v in &r.vals[..rl] {
                self.note_leaf(v, left);
            }
        }
        self.reindex(left, ll);
        self.publish_node(sh, left, ll);
        self.refresh_up(sh, left);
        // `right` is now empty: drop it from the parent without relinking leaves.
        self.nodes[right as usize].len = 0;
        self.nodes[right as usize].prev_leaf = NIL;
        self.nodes[right as usize].next_leaf = NIL;
        let (parent, ri) = self.index_in_parent(right).expect("sibling has the same parent");
        self.remove_at(sh, parent, ri);
        self.collapse_root(sh);
        self.free_node(right);
    }
}
