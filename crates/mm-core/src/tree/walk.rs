//! Walks of the writer's copy: `mas_walk`, `mas_find`, `mas_next` /
//! `mas_prev`, and iteration in address order.

use super::{Entry, FANOUT, NIL, Pos, Tree};
use crate::sync::Ordering;

/// The search of the writer's copy of a node, chosen once per walk: the
/// vector search where the CPU has it (`ordering::keys`), else a binary
/// search.
#[derive(Clone, Copy)]
struct PrefixSearch {
    #[cfg(all(target_arch = "x86_64", not(miri), not(loom)))]
    avx2: Option<crate::ordering::keys::Avx2Search>,
}

impl PrefixSearch {
    #[inline(always)]
    fn detect() -> PrefixSearch {
        PrefixSearch {
            #[cfg(all(target_arch = "x86_64", not(miri), not(loom)))]
            avx2: crate::ordering::keys::Avx2Search::detect(),
        }
    }

    /// The number of the sorted `keys[..len]` that are `<= addr`.
    #[inline(always)]
    fn count_le(self, keys: &[u64; FANOUT], len: usize, addr: u64) -> usize {
        #[cfg(all(target_arch = "x86_64", not(miri), not(loom)))]
        if let Some(s) = self.avx2 {
            return s.count_le_prefix(keys, len, addr);
        }
        keys[..len].partition_point(|&k| k <= addr)
    }
}

impl Tree {
    /// The entry at `pos`.
    #[inline]
    pub fn get(&self, pos: Pos) -> Entry {
        let n = &self.nodes[pos.leaf as usize];
        Entry {
            start: n.keys[pos.idx],
            end: n.ends[pos.idx],
            val: n.vals[pos.idx],
        }
    }

    /// Whether `pos` (kept from before a change) still holds value `val`: checked before each use.
    #[inline]
    pub fn pos_holds(&self, pos: Pos, val: u32) -> bool {
        self.nodes
            .get(pos.leaf as usize)
            .is_some_and(|n| n.is_leaf && pos.idx < n.len && n.vals[pos.idx] == val)
    }

    /// The value at `pos` if `pos` is a live position (a leaf in the tree,
    /// an index below its length); for a position kept across a change.
    #[inline]
    pub fn val_at(&self, pos: Pos) -> Option<u32> {
        let n = self.nodes.get(pos.leaf as usize)?;
        (n.is_leaf && pos.idx < n.len).then(|| n.vals[pos.idx])
    }

    /// The position before `pos` in the same leaf, or `pos` itself at a
    /// leaf's start: where a removal at `pos` leaves a neighbour.
    #[inline]
    pub fn step_back_in_leaf(pos: Pos) -> Pos {
        Pos {
            leaf: pos.leaf,
            idx: pos.idx.saturating_sub(1),
        }
    }

    /// The entry with the greatest start `<= addr`.
    pub fn find_le(&self, addr: u64) -> Option<Pos> {
        use Ordering::Relaxed;
        if self.root == NIL {
            return None;
        }
        let search = PrefixSearch::detect();
        // The hinted leaf, or one of its neighbours, answers if its key
        // range holds `addr`.
        let h = self.hint.load(Relaxed);
        if let Some(n) = self.nodes.get(h as usize)
            && n.is_leaf
            && n.len > 0
        {
            let leaf = if addr < n.keys[0] {
                n.prev_leaf
            } else if n.next_leaf != NIL && self.nodes[n.next_leaf as usize].keys[0] <= addr {
                n.next_leaf
            } else {
                h
            };
            if let Some(l) = self.nodes.get(leaf as usize)
                && l.keys[0] <= addr
                && (l.next_leaf == NIL || self.nodes[l.next_leaf as usize].keys[0] > addr)
            {
                let i = search.count_le(&l.keys, l.len, addr);
                if leaf != h {
                    self.hint.store(leaf, Relaxed);
                }
                return Some(Pos { leaf, idx: i - 1 });
            }
        }
        let mut node = self.root;
        for level in (0..self.height).rev() {
            let n = &self.nodes[node as usize];
            let i = search.count_le(&n.keys, n.len, addr);
            if i == 0 {
                return None;
            }
            if level == 0 {
                self.hint.store(node, Relaxed);
                return Some(Pos { leaf: node, idx: i - 1 });
            }
            node = n.vals[i - 1];
        }
        None
    }

    /// The position of the entry starting at `start` with value `val`,
    /// found through the value's leaf hint when it is still right.
    pub fn pos_of(&self, start: u64, val: u32) -> Option<Pos> {
        if let Some(&leaf) = self.leaf_of.get(val as usize)
            && let Some(n) = self.nodes.get(leaf as usize)
            && n.is_leaf
            && let Some(idx) = n.vals[..n.len].iter().position(|&v| v == val)
            && n.keys[idx] == start
        {
            return Some(Pos { leaf, idx });
        }
        self.find_le(start).filter(|&p| self.get(p).val == val)
    }

    /// The first entry with start `>= addr`.
    pub fn find_ge(&self, addr: u64) -> Option<Pos> {
        match self.find_le(addr) {
            Some(p) if self.get(p).start == addr => Some(p),
            Some(p) => self.next(p),
            None => self.first(),
        }
    }

    /// `find_vma`: the first entry with end `> addr`.
    pub fn find_vma(&self, addr: u64) -> Option<Pos> {
        match self.find_le(addr) {
            Some(p) if self.get(p).end > addr => Some(p),
            Some(p) => self.next(p),
            None => self.first(),
        }
    }

    /// `vma_lookup`: the entry containing `addr`.
    pub fn lookup(&self, addr: u64) -> Option<Pos> {
        self.find_le(addr).filter(|&p| self.get(p).end > addr)
    }

    /// The first entry.
    pub fn first(&self) -> Option<Pos> {
        let mut node = self.root;
        if node == NIL {
            return None;
        }
        for _ in 1..self.height {
            node = self.nodes[node as usize].vals[0];
        }
        (self.nodes[node as usize].len > 0).then_some(Pos { leaf: node, idx: 0 })
    }

    /// The last entry.
    pub fn last(&self) -> Option<Pos> {
        let mut node = self.root;
        if node == NIL {
            return None;
        }
        for _ in 1..self.height {
            let n = &self.nodes[node as usize];
            node = n.vals[n.len - 1];
        }
        let n = &self.nodes[node as usize];
        (n.len > 0).then(|| Pos {
            leaf: node,
            idx: n.len - 1,
        })
    }

    /// The entry after `pos`.
    #[inline]
    pub fn next(&self, pos: Pos) -> Option<Pos> {
        let n = &self.nodes[pos.leaf as usize];
        if pos.idx + 1 < n.len {
            Some(Pos {
                leaf: pos.leaf,
                idx: pos.idx + 1,
            })
        } else if n.next_leaf != NIL {
            Some(Pos {
                leaf: n.next_leaf,
                idx: 0,
            })
        } else {
            None
        }
    }

    /// The entry before `pos`.
    #[inline]
    pub fn prev(&self, pos: Pos) -> Option<Pos> {
        if pos.idx > 0 {
            Some(Pos {
                leaf: pos.leaf,
                idx: pos.idx - 1,
            })
        } else {
            let p = self.nodes[pos.leaf as usize].prev_leaf;
            (p != NIL).then(|| Pos {
                leaf: p,
                idx: self.nodes[p as usize].len - 1,
            })
        }
    }

    /// Iterates entries in address order, starting at `from`.
    pub fn iter_from(&self, from: Option<Pos>) -> impl Iterator<Item = Entry> + '_ {
        let mut cur = from;
        core::iter::from_fn(move || {
            let p = cur?;
            cur = self.next(p);
            Some(self.get(p))
        })
    }

    /// Iterates all entries in address order.
    pub fn iter(&self) -> impl Iterator<Item = Entry> + '_ {
        self.iter_from(self.first())
    }
}
