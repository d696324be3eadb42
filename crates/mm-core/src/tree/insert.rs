//! Inserting an entry (`mas_store` of a new range): into a leaf with
//! room, or by splitting nodes upwards.

use super::update::max_after;
use super::{FANOUT, NIL, NodeM, Pos, Tree, TreeFull, TreeShared};

impl Tree {
    /// Inserts `[start, end) → val`; the range must not overlap an entry.
    pub fn insert(&mut self, sh: &TreeShared, start: u64, end: u64, val: u32) -> Result<(), TreeFull> {
        self.insert_near(sh, None, start, end, val).map(|_| ())
    }

    /// [`insert`](Self::insert) from a held position `near` (the kernel's
    /// `vma_iter_store_new` through a `vma_iterator` already at the gap):
    /// when `near` is the new range's predecessor or successor, the leaf
    /// and slot come from it instead of a descent from the root. `near` is
    /// checked before use, so a stale one costs a descent, never a wrong
    /// slot. Returns the new entry's position when the insert did not
    /// split a node (a split moves entries; the caller then holds none).
    pub fn insert_near(
        &mut self,
        sh: &TreeShared,
        near: Option<Pos>,
        start: u64,
        end: u64,
        val: u32,
    ) -> Result<Option<Pos>, TreeFull> {
        debug_assert!(start < end);
        self.generation = self.generation.wrapping_add(1);
        // A split may allocate one node per level plus a new root: refuse up
        // front rather than fail half-way.
        if self.alloc.in_use() + self.height as usize + 2 > sh.nodes.capacity() {
            return Err(TreeFull);
        }
        if self.root == NIL {
            let leaf = self.new_node(sh)?;
            self.nodes[leaf as usize].is_leaf = true;
            self.root = leaf;
            self.height = 1;
            self.insert_at(sh, leaf, 0, start, end, val)?;
            self.publish_root(sh);
        } else {
            let pred = match near.and_then(|p| self.pred_from(p, start)) {
                Some(p) => p,
                None => self.find_le(start),
            };
            let (leaf, idx) = match pred {
                Some(p) => (p.leaf, p.idx + 1),
                None => (self.first().expect("non-empty").leaf, 0),
            };
            if self.nodes[leaf as usize].len < FANOUT {
                // Fast path: room in the leaf; fix both gaps, refresh once.
                self.insert_in_leaf(sh, leaf, idx, start, end, val);
                self.len += 1;
                return Ok(Some(Pos { leaf, idx }));
            }
            self.insert_at(sh, leaf, idx, start, end, val)?;
        }
        self.len += 1;
        self.fix_gaps_around(sh, start);
        Ok(None)
    }

    /// What [`find_le`](Self::find_le)`(start)` returns, read from the
    /// live position `p` when `p` is the entry before `start` or the one
    /// after it (`Some(None)`: no entry starts at or below `start`);
    /// `None` when `p` is neither (or not a live position).
    fn pred_from(&self, p: Pos, start: u64) -> Option<Option<Pos>> {
        let n = self.nodes.get(p.leaf as usize)?;
        if !n.is_leaf || p.idx >= n.len {
            return None;
        }
        if n.keys[p.idx] <= start {
            // `p` precedes: it is the predecessor if the next entry starts
            // above `start`.
            match self.next(p) {
                Some(q) if self.get(q).start <= start => None,
                _ => Some(Some(p)),
            }
        } else {
            // `p` follows: its predecessor (if any) must start at or below.
            match self.prev(p) {
                None => Some(None),
                Some(q) if self.get(q).start <= start => Some(Some(q)),
                Some(_) => None,
            }
        }
    }

    /// Inserts into a leaf with room, setting the gaps of the new entry and
    /// of its successor.
    pub(super) fn insert_in_leaf(&mut self, sh: &TreeShared, leaf: u32, idx: usize, start: u64, end: u64, val: u32) {
        let pred_end = if idx > 0 {
            self.nodes[leaf as usize].ends[idx - 1]
        } else {
            self.pred_end(Pos { leaf, idx: 0 })
        };
        let n = &mut self.nodes[leaf as usize];
        let len = n.len;
        n.keys.copy_within(idx..len, idx + 1);
        n.ends.copy_within(idx..len, idx + 1);
        n.vals.copy_within(idx..len, idx + 1);
        n.gaps.copy_within(idx..len, idx + 1);
        n.keys[idx] = start;
        n.ends[idx] = end;
        n.vals[idx] = val;
        n.gaps[idx] = start - pred_end;
        n.len += 1;
        // The leaf's largest gap, kept incrementally: a new slot holds the
        // new entry's gap, and the successor's gap shrinks (the two parts
        // of the hole the entry went into). A rescan only when the
        // successor's gap was the largest.
        let mut known = max_after(Some(n.max), 0, start - pred_end);
        self.note_leaf(val, leaf);
        let n = &mut self.nodes[leaf as usize];
        let next_leaf = n.next_leaf;
        if idx + 1 < n.len {
            let (old, gap) = (n.gaps[idx + 1], n.keys[idx + 1] - end);
            n.gaps[idx + 1] = gap;
            known = max_after(known, old, gap);
        } else if next_leaf != NIL {
            let nn = &mut self.nodes[next_leaf as usize];
            let (old, gap) = (nn.gaps[0], nn.keys[0] - end);
            nn.gaps[0] = gap;
            let k = max_after(Some(nn.max), old, gap);
            self.refresh_up_with(sh, next_leaf, k);
        }
        self.publish_node(sh, leaf, idx);
        self.refresh_up_with(sh, leaf, known);
    }

    /// Inserts into `node` at `idx`, splitting upwards as needed.
    pub(super) fn insert_at(
        &mut self,
        sh: &TreeShared,
        node: u32,
        idx: usize,
        key: u64,
        end: u64,
        val: u32,
    ) -> Result<(), TreeFull> {
        if self.nodes[node as usize].len < FANOUT {
            let n = &mut self.nodes[node as usize];
            let len = n.len;
            n.keys.copy_within(idx..len, idx + 1);
            n.ends.copy_within(idx..len, idx + 1);
            n.vals.copy_within(idx..len, idx + 1);
            n.gaps.copy_within(idx..len, idx + 1);
            n.keys[idx] = key;
            n.ends[idx] = end;
            n.vals[idx] = val;
            n.gaps[idx] = 0;
            n.len += 1;
            if n.is_leaf {
                self.note_leaf(val, node);
            } else {
                self.reindex(node, idx);
            }
            self.publish_node(sh, node, idx);
            self.refresh_up(sh, node);
            return Ok(());
        }
        // Split: the upper half moves to a new right sibling.
        let right = self.new_node(sh)?;
        let is_leaf = self.is_leaf(node);
        // Appending at the end (or the start) of a full node is how address
        // spaces grow (bottom-up, or top-down from mmap_base): split off one
        // entry rather than half, so that sequential growth leaves nodes
        // nearly full and the tree shallow (a B-tree's bulk-append split).
        // Nodes are left one slot short of full: a node filled to the last
        // slot splits on every insert into it (a mapping placed in a hole),
        // which measured 2.5x slower for mmap+munmap in a hole at 1,024
        // VMAs (183.7 ns -> 467.8 ns, `cargo xtask bench --quick`).
        let half = if idx == FANOUT {
            FANOUT - 1
        } else if idx == 0 {
            1
        } else {
            FANOUT / 2
        };
        let (mut l, mut r) = (self.nodes[node as usize].clone(), NodeM::empty());
        let moved = l.len - half;
        r.keys[..moved].copy_from_slice(&l.keys[half..l.len]);
        r.ends[..moved].copy_from_slice(&l.ends[half..l.len]);
        r.vals[..moved].copy_from_slice(&l.vals[half..l.len]);
        r.gaps[..moved].copy_from_slice(&l.gaps[half..l.len]);
        r.len = moved;
        l.len = half;
        r.parent = l.parent;
        r.is_leaf = l.is_leaf;
        if is_leaf {
            r.prev_leaf = node;
            r.next_leaf = l.next_leaf;
            if l.next_leaf != NIL {
                self.nodes[l.next_leaf as usize].prev_leaf = right;
            }
            l.next_leaf = right;
        }
        self.nodes[node as usize] = l;
        self.nodes[right as usize] = r;
        if is_leaf {
            for i in 0..moved {
                let v = self.nodes[right as usize].vals[i];
                self.note_leaf(v, right);
            }
        }
        self.reindex(right, 0);
        // Publish the new right node before it becomes reachable.
        self.publish_node(sh, right, 0);
        self.publish_node(sh, node, half);
        // Link the right node into the parent (or grow a new root).
        let parent = self.nodes[node as usize].parent;
        if parent == NIL {
            let root = self.new_node(sh)?;
            let (ln, rn) = (&self.nodes[node as usize], &self.nodes[right as usize]);
            let mut nr = NodeM::empty();
            nr.len = 2;
            nr.keys[0] = ln.keys[0];
            nr.ends[0] = ln.ends[ln.len - 1];
            nr.gaps[0] = ln.max_gap();
            nr.max = nr.gaps[0];
            nr.vals[0] = node;
            nr.keys[1] = rn.keys[0];
            nr.ends[1] = rn.ends[rn.len - 1];
            nr.gaps[1] = rn.max_gap();
            nr.max = nr.max.max(nr.gaps[1]);
            nr.min = nr.keys[0];
            nr.vals[1] = right;
            self.nodes[root as usize] = nr;
            for c in [node, right] {
                let n = &mut self.nodes[c as usize];
                n.max = n.max_gap();
                n.min = n.keys[0];
            }
            self.nodes[root as usize].parent = NIL;
            self.reindex(root, 0);
            self.publish_node(sh, root, 0);
            self.root = root;
            self.height += 1;
            self.publish_root(sh);
        } else {
            let (_, i) = self.index_in_parent(node).expect("has a parent");
            let rn = &self.nodes[right as usize];
            let (rk, re) = (rn.keys[0], rn.ends[rn.len - 1]);
            self.insert_at(sh, parent, i + 1, rk, re, right)?;
            self.refresh_up(sh, node);
            self.refresh_up(sh, right);
        }
        // Now insert the entry into the proper half.
        let (target, tidx) = if idx <= half { (node, idx) } else { (right, idx - half) };
        self.insert_at(sh, target, tidx, key, end, val)
    }
}
