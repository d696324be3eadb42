//! The VMA tree: an analogue of the maple tree (`lib/maple_tree.c`,
//! `mm/vma.h` `vma_iter_*`), as a B+tree of non-overlapping ranges keyed by
//! start address.
//!
//! Two views of one tree:
//! * [`TreeShared`] is what lockless readers walk: nodes in type-stable memory
//!   ([`Slab`]) whose every field is an atomic, mutated in place by the writer
//!   (as the maple tree is, under RCU). A reader may see a torn or recycled
//!   node; every walk is bounded and every index is checked, so the worst it
//!   gets is a wrong answer, which `mm_lock_seq` validation then rejects.
//! * [`Tree`] is the writer's authoritative copy in plain memory (behind
//!   `mmap_lock`), which also keeps what only the writer needs: each entry's
//!   end, the largest gap below each subtree (the maple tree's gap
//!   augmentation, for `unmapped_area*`), parent pointers and leaf links.
//!
//! Every change to the writer copy is published to the shared copy with
//! `WRITE_ONCE` stores ([`crate::ordering::write_once`]).

use crate::mutation::{self, Mutation};
use crate::ordering::{read_once, read_once_u32, write_once, write_once_u32};
use crate::slab::{IndexAlloc, Slab, ZeroSlot};
use crate::sync::{AtomicU32, AtomicU64, Ordering};

/// Maximum entries per node (4 under loom, to keep the model small).
pub const FANOUT: usize = if cfg!(loom) { 4 } else { 16 };
const NIL: u32 = u32::MAX;
/// Bound on the height a lockless walk will follow.
const MAX_HEIGHT: u32 = 16;

/// A node as lockless readers see it: `FANOUT` keys and values, aligned to
/// a cache line (three lines at fanout 16). Keys past the node's length
/// are `u64::MAX`, so that a reader searches all `FANOUT` keys without
/// branching on a length.
#[repr(C, align(64))]
pub struct NodeSlot {
    keys: [AtomicU64; FANOUT],
    vals: [AtomicU32; FANOUT],
}

impl Default for NodeSlot {
    fn default() -> Self {
        NodeSlot {
            keys: core::array::from_fn(|_| AtomicU64::new(0)),
            vals: core::array::from_fn(|_| AtomicU32::new(0)),
        }
    }
}

// SAFETY: all fields are atomic integers, valid when zeroed (under loom
// the slab builds slots with `Default` instead). A zeroed node is never
// reachable before its first publication writes every key.
unsafe impl ZeroSlot for NodeSlot {}

/// The index of the entry a lockless walk follows for `addr`: the number
/// of keys after the first that are `<= addr` (keys sorted ascending, the
/// padding `u64::MAX`), by a branch-free binary search of one load and one
/// conditional add per halving. The first key is not looked at: below it,
/// the walk follows entry 0 and ends at an entry that starts above `addr`,
/// which the reader's range check rejects (the tree has no entry there).
/// Torn keys give some index in range, which validation then rejects.
#[inline(always)]
fn follow(keys: &[AtomicU64; FANOUT], addr: u64) -> usize {
    let mut i = 0usize;
    let mut step = FANOUT / 2;
    while step > 0 {
        let k = read_once(&keys[(i + step) & (FANOUT - 1)]);
        i += usize::from(k <= addr) * step;
        step /= 2;
    }
    i
}

/// The reader-visible half of the tree.
pub struct TreeShared {
    /// `height << 32 | root node`, so a reader loads both in one access.
    root: AtomicU64,
    nodes: Slab<NodeSlot>,
}

impl TreeShared {
    /// An empty tree able to grow to `max_nodes` nodes.
    pub fn new(max_nodes: usize) -> Self {
        TreeShared {
            root: AtomicU64::new(NIL as u64),
            nodes: Slab::with_capacity(max_nodes),
        }
    }

    /// Lockless lookup: the value of the entry with the greatest start
    /// `<= addr`, or of the first entry if none starts at or below `addr`
    /// (the caller checks the entry's range). Any thread, any time; the
    /// answer is only meaningful if validated.
    #[inline]
    pub fn lookup_le(&self, addr: u64) -> Option<u32> {
        let r = read_once(&self.root);
        let mut node = r as u32;
        let mut height = (r >> 32) as u32;
        if height == 0 || height > MAX_HEIGHT {
            return None;
        }
        loop {
            let n = self.nodes.get(node)?;
            let v = read_once_u32(&n.vals[follow(&n.keys, addr) & (FANOUT - 1)]);
            height -= 1;
            if height == 0 {
                return Some(v);
            }
            node = v;
        }
    }

    /// Lockless: the value of the first entry whose start is above
    /// `addr` (the successor walk of `vma_next`/`mas_find`). Any thread,
    /// any time; the answer is only meaningful if validated.
    pub fn first_gt(&self, addr: u64) -> Option<u32> {
        let r = read_once(&self.root);
        let height = (r >> 32) as u32;
        if height == 0 || height > MAX_HEIGHT {
            return None;
        }
        self.first_gt_in(r as u32, height, addr)
    }

    fn first_gt_in(&self, node: u32, height: u32, addr: u64) -> Option<u32> {
        let n = self.nodes.get(node)?;
        let i = follow(&n.keys, addr) & (FANOUT - 1);
        if height == 1 {
            // Entry i has the greatest start <= addr (or starts above it).
            for j in [i, i + 1] {
                if j < FANOUT {
                    let k = read_once(&n.keys[j]);
                    if k != u64::MAX && k > addr {
                        return Some(read_once_u32(&n.vals[j]));
                    }
                }
            }
            return None;
        }
        if let Some(v) = self.first_gt_in(read_once_u32(&n.vals[i]), height - 1, addr) {
            return Some(v);
        }
        // Nothing above addr in child i: the first entry of child i + 1.
        if i + 1 < FANOUT && read_once(&n.keys[i + 1]) != u64::MAX {
            let mut node = read_once_u32(&n.vals[i + 1]);
            for _ in 1..height {
                node = read_once_u32(&self.nodes.get(node)?.vals[0]);
            }
            return Some(node);
        }
        None
    }

    /// Bytes of node memory allocated.
    pub fn allocated_bytes(&self) -> usize {
        self.nodes.allocated_bytes()
    }
}

#[derive(Clone)]
struct NodeM {
    len: usize,
    /// Leaf: entry starts. Internal: the smallest start in each child.
    keys: [u64; FANOUT],
    /// Leaf: entry ends. (Unused in internal nodes.)
    ends: [u64; FANOUT],
    /// Leaf: values. Internal: child node ids.
    vals: [u32; FANOUT],
    /// Leaf: the gap below each entry. Internal: the largest gap in each child.
    gaps: [u64; FANOUT],
    parent: u32,
    prev_leaf: u32,
    next_leaf: u32,
    is_leaf: bool,
    /// The largest of `gaps[..len]` (kept by `refresh_up`).
    max: u64,
    /// `keys[0]` as the parent last saw it (kept by `refresh_up`).
    min: u64,
    /// Index of this node in its parent's `vals` (kept by `reindex`).
    pidx: u16,
}

impl NodeM {
    fn empty() -> Self {
        NodeM {
            len: 0,
            keys: [0; FANOUT],
            ends: [0; FANOUT],
            vals: [NIL; FANOUT],
            gaps: [0; FANOUT],
            parent: NIL,
            prev_leaf: NIL,
            next_leaf: NIL,
            is_leaf: false,
            max: 0,
            min: 0,
            pidx: 0,
        }
    }
    fn max_gap(&self) -> u64 {
        self.gaps[..self.len].iter().copied().max().unwrap_or(0)
    }
}

/// The number of sorted `keys` that are `<= addr` (a binary search: fewer
/// instructions than counting all 16, whose 64-bit compares x86-64's
/// baseline SSE2 lacks).
#[inline]
fn count_le(keys: &[u64], addr: u64) -> usize {
    keys.partition_point(|&k| k <= addr)
}

/// A node's largest gap after one of its gaps went from `old` to `new`,
/// given the largest before (`None`: unknown); `None` when only a rescan
/// can tell (the largest gap shrank).
#[inline]
fn max_after(max: Option<u64>, old: u64, new: u64) -> Option<u64> {
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

/// A position in the tree: leaf node and index. Invalidated by any change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pos {
    leaf: u32,
    idx: usize,
}

/// One entry: `[start, end)` with a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// First address.
    pub start: u64,
    /// One past the last address.
    pub end: u64,
    /// The stored value (a VMA id).
    pub val: u32,
}

/// The writer's copy of the tree.
pub struct Tree {
    nodes: Vec<NodeM>,
    alloc: IndexAlloc,
    root: u32,
    height: u32,
    len: usize,
    /// The leaf of the last lookup: successive lookups of one system call
    /// touch neighbouring addresses, so checking it first usually saves the
    /// descent (a hint, validated before use).
    hint: AtomicU32,
    /// The leaf each value was last put in (a hint, validated before use):
    /// finds an entry by value without a descent.
    leaf_of: Vec<u32>,
    /// Per node: the length last published (`FANOUT` for a node not yet
    /// published, whose keys may hold anything).
    pub_len: Vec<u8>,
}

impl Default for Tree {
    fn default() -> Self {
        Tree {
            nodes: Vec::new(),
            alloc: IndexAlloc::default(),
            root: NIL,
            height: 0,
            len: 0,
            hint: AtomicU32::new(NIL),
            leaf_of: Vec::new(),
            pub_len: Vec::new(),
        }
    }
}

/// The tree ran out of node slots (the caller maps this to `ENOMEM`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TreeFull;

impl Tree {
    /// Number of entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if there are no entries.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of levels (0 when empty).
    pub fn height(&self) -> u32 {
        self.height
    }

    /// Number of nodes in use.
    pub fn node_count(&self) -> usize {
        self.alloc.in_use()
    }

    /// The root node's id (changes when the root grows or collapses).
    pub fn root_id(&self) -> Option<u32> {
        (self.root != NIL).then_some(self.root)
    }

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

    /// The entry next to `pos` (after it, else before it) if it holds value
    /// `val`; `pos` is a held position, checked before use.
    #[inline]
    pub fn neighbour_holding(&self, pos: Pos, val: u32) -> Option<Pos> {
        let n = self.nodes.get(pos.leaf as usize)?;
        if !n.is_leaf || pos.idx >= n.len {
            return None;
        }
        let p = self.next(pos).filter(|&p| self.get(p).val == val);
        p.or_else(|| self.prev(pos).filter(|&p| self.get(p).val == val))
    }

    /// The entry with the greatest start `<= addr`.
    pub fn find_le(&self, addr: u64) -> Option<Pos> {
        use Ordering::Relaxed;
        if self.root == NIL {
            return None;
        }
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
                let i = count_le(&l.keys[..l.len], addr);
                if leaf != h {
                    self.hint.store(leaf, Relaxed);
                }
                return Some(Pos { leaf, idx: i - 1 });
            }
        }
        let mut node = self.root;
        for level in (0..self.height).rev() {
            let n = &self.nodes[node as usize];
            let i = count_le(&n.keys[..n.len], addr);
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

    fn note_leaf(&mut self, val: u32, leaf: u32) {
        let i = val as usize;
        if i >= self.leaf_of.len() {
            self.leaf_of.resize(i + 1, NIL);
        }
        self.leaf_of[i] = leaf;
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

    // ----- writer mutations -------------------------------------------------

    fn new_node(&mut self, sh: &TreeShared) -> Result<u32, TreeFull> {
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

    fn free_node(&mut self, id: u32) {
        self.nodes[id as usize].len = 0;
        self.alloc.free(id);
    }

    fn publish_root(&self, sh: &TreeShared) {
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

    /// Publishes slots `from..len` of `node`, and `u64::MAX` in the keys
    /// from its length up to what was published before (all of them for a
    /// node not yet published).
    fn publish_node(&mut self, sh: &TreeShared, node: u32, from: usize) {
        let n = &self.nodes[node as usize];
        let s = sh.nodes.get(node).expect("ensured at allocation");
        for i in from..n.len {
            write_once(&s.keys[i], n.keys[i]);
            write_once_u32(&s.vals[i], n.vals[i]);
        }
        let was = &mut self.pub_len[node as usize];
        for k in &s.keys[n.len..(*was as usize).max(n.len)] {
            write_once(k, u64::MAX);
        }
        *was = n.len as u8;
    }

    fn index_in_parent(&self, node: u32) -> Option<(u32, usize)> {
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
    fn reindex(&mut self, node: u32, from: usize) {
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
    fn refresh_up(&mut self, sh: &TreeShared, node: u32) {
        self.refresh_up_with(sh, node, None);
    }

    /// [`refresh_up`](Self::refresh_up) when the caller already knows
    /// `node`'s new largest gap (`None`: rescan it).
    fn refresh_up_with(&mut self, sh: &TreeShared, mut node: u32, known_max: Option<u64>) {
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
    fn pred_end(&self, pos: Pos) -> u64 {
        self.prev(pos).map_or(0, |p| self.get(p).end)
    }

    /// Recomputes the gap below the entry at `pos`.
    fn fix_gap(&mut self, sh: &TreeShared, pos: Pos) {
        let gap = self.get(pos).start - self.pred_end(pos);
        let n = &mut self.nodes[pos.leaf as usize];
        let known = max_after(Some(n.max), n.gaps[pos.idx], gap);
        n.gaps[pos.idx] = gap;
        self.refresh_up_with(sh, pos.leaf, known);
    }

    /// Fixes the gaps of the entry starting at `start` and of its successor.
    fn fix_gaps_around(&mut self, sh: &TreeShared, start: u64) {
        if let Some(p) = self.find_ge(start) {
            self.fix_gap(sh, p);
            let p = self.find_ge(start).expect("still there");
            if let Some(n) = self.next(p) {
                self.fix_gap(sh, n);
            }
        }
    }

    /// Inserts `[start, end) → val`; the range must not overlap an entry.
    pub fn insert(&mut self, sh: &TreeShared, start: u64, end: u64, val: u32) -> Result<(), TreeFull> {
        debug_assert!(start < end);
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
            let (leaf, idx) = match self.find_le(start) {
                Some(p) => (p.leaf, p.idx + 1),
                None => (self.first().expect("non-empty").leaf, 0),
            };
            if self.nodes[leaf as usize].len < FANOUT {
                // Fast path: room in the leaf; fix both gaps, refresh once.
                self.insert_in_leaf(sh, leaf, idx, start, end, val);
                self.len += 1;
                return Ok(());
            }
            self.insert_at(sh, leaf, idx, start, end, val)?;
        }
        self.len += 1;
        self.fix_gaps_around(sh, start);
        Ok(())
    }

    /// Inserts into a leaf with room, setting the gaps of the new entry and
    /// of its successor.
    fn insert_in_leaf(&mut self, sh: &TreeShared, leaf: u32, idx: usize, start: u64, end: u64, val: u32) {
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
        self.note_leaf(val, leaf);
        let n = &mut self.nodes[leaf as usize];
        let next_leaf = n.next_leaf;
        if idx + 1 < n.len {
            n.gaps[idx + 1] = n.keys[idx + 1] - end;
        } else if next_leaf != NIL {
            let nn = &mut self.nodes[next_leaf as usize];
            nn.gaps[0] = nn.keys[0] - end;
            self.refresh_up(sh, next_leaf);
        }
        self.publish_node(sh, leaf, idx);
        self.refresh_up(sh, leaf);
    }

    /// Inserts into `node` at `idx`, splitting upwards as needed.
    fn insert_at(
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
        // Appending at the end of the tree (or prepending at its start) is
        // how address spaces are built and grow (brk, runs of MAP_FIXED):
        // split at the insertion point there, leaving the full node full
        // and the new entry alone in its half (a B-tree's bulk-load
        // split), so that sequential growth fills every node and the tree
        // stays as shallow as its fanout allows. Elsewhere, an append (or
        // prepend) splits off one entry (inserts that follow usually land
        // next to it: top-down growth below a fixed entry), and any other
        // insert splits the node in half.
        let (half, place) = if idx == FANOUT && self.at_edge(node, true) {
            (FANOUT, Some(false))
        } else if idx <= 1 && self.at_edge(node, false) {
            (idx, Some(true))
        } else if idx == FANOUT {
            (FANOUT - 1, None)
        } else if idx == 0 {
            (1, None)
        } else {
            (FANOUT / 2, None)
        };
        let (mut l, mut r) = (self.nodes[node as usize].clone(), NodeM::empty());
        let moved = l.len - half;
        r.keys[..moved].copy_from_slice(&l.keys[half..l.len]);
        r.ends[..moved].copy_from_slice(&l.ends[half..l.len]);
        r.vals[..moved].copy_from_slice(&l.vals[half..l.len]);
        r.gaps[..moved].copy_from_slice(&l.gaps[half..l.len]);
        r.len = moved;
        l.len = half;
        // The new entry at the end of its half (its gap is the caller's to
        // fix, as after an insert into a node with room).
        if let Some(left) = place {
            let h = if left { &mut l } else { &mut r };
            let j = h.len;
            h.keys[j] = key;
            h.ends[j] = end;
            h.vals[j] = val;
            h.gaps[j] = 0;
            h.len += 1;
        }
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
            for i in 0..self.nodes[right as usize].len {
                let v = self.nodes[right as usize].vals[i];
                self.note_leaf(v, right);
            }
            if place == Some(true) {
                self.note_leaf(val, node);
            }
        } else if place == Some(true) {
            self.reindex(node, half);
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
        if place.is_some() {
            return Ok(());
        }
        // Now insert the entry into the proper half.
        let (target, tidx) = if idx <= half { (node, idx) } else { (right, idx - half) };
        self.insert_at(sh, target, tidx, key, end, val)
    }

    /// Whether `node` is the last (`right`) or first node of its level:
    /// it and each of its ancestors is its parent's last (first) child.
    fn at_edge(&self, mut node: u32, right: bool) -> bool {
        while let Some((parent, i)) = self.index_in_parent(node) {
            let edge = if right { self.nodes[parent as usize].len - 1 } else { 0 };
            if i != edge {
                return false;
            }
            node = parent;
        }
        true
    }

    fn is_leaf(&self, node: u32) -> bool {
        self.nodes[node as usize].is_leaf
    }

    /// Removes the entry at `pos`.
    pub fn remove(&mut self, sh: &TreeShared, pos: Pos) {
        let n = &self.nodes[pos.leaf as usize];
        if n.len > (FANOUT / 4).max(1) {
            // Fast path: the leaf stays big enough; fix the successor's gap
            // and refresh once.
            let pred_end = self.pred_end(pos);
            let next = self.next(pos);
            let n = &mut self.nodes[pos.leaf as usize];
            let (idx, len) = (pos.idx, n.len);
            n.keys.copy_within(idx + 1..len, idx);
            n.ends.copy_within(idx + 1..len, idx);
            n.vals.copy_within(idx + 1..len, idx);
            n.gaps.copy_within(idx + 1..len, idx);
            n.len -= 1;
            match next {
                Some(nx) if nx.leaf == pos.leaf => n.gaps[idx] = n.keys[idx] - pred_end,
                Some(nx) => {
                    let nn = &mut self.nodes[nx.leaf as usize];
                    nn.gaps[0] = nn.keys[0] - pred_end;
                    self.refresh_up(sh, nx.leaf);
                }
                None => {}
            }
            self.publish_node(sh, pos.leaf, idx);
            self.refresh_up(sh, pos.leaf);
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

    fn remove_at(&mut self, sh: &TreeShared, node: u32, idx: usize) {
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
    fn drop_node(&mut self, sh: &TreeShared, node: u32) {
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

    fn collapse_root(&mut self, sh: &TreeShared) {
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
    fn try_merge(&mut self, sh: &TreeShared, node: u32) {
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
        self.nodes[pos.leaf as usize].vals[pos.idx] = val;
        write_once_u32(&sh.nodes.get(pos.leaf).expect("allocated").vals[pos.idx], val);
    }

    // ----- gap search (mas_empty_area / mas_empty_area_rev) ----------------

    /// The highest gap whose part inside `[low, high)` is at least `size`
    /// long; returns that part as `(start, end)`. `mas_empty_area_rev`.
    pub fn highest_gap(&self, low: u64, high: u64, size: u64) -> Option<(u64, u64)> {
        if size == 0 || high <= low || high - low < size {
            return None;
        }
        let fits = |a: u64, b: u64| {
            let (a, b) = (a.max(low), b.min(high));
            (b > a && b - a >= size).then_some((a, b))
        };
        // The gap that straddles `high` (or lies just below it).
        let m = self.find_ge(high);
        let straddle = match m {
            Some(p) => (self.pred_end(p), self.get(p).start),
            None => (self.last().map_or(0, |p| self.get(p).end), u64::MAX),
        };
        if let Some(g) = fits(straddle.0, straddle.1) {
            return Some(g);
        }
        let bound = m.map_or(u64::MAX, |p| self.get(p).start);
        let pos = self.last_gap_below(self.root, self.height, bound, size)?;
        fits(self.pred_end(pos), self.get(pos).start)
    }

    /// The last entry with start `< bound` whose gap is `>= size`.
    fn last_gap_below(&self, node: u32, height: u32, bound: u64, size: u64) -> Option<Pos> {
        if node == NIL {
            return None;
        }
        let n = &self.nodes[node as usize];
        for j in (0..n.len).rev() {
            if n.keys[j] >= bound || n.gaps[j] < size {
                continue;
            }
            if height == 1 {
                return Some(Pos { leaf: node, idx: j });
            }
            if let Some(p) = self.last_gap_below(n.vals[j], height - 1, bound, size) {
                return Some(p);
            }
        }
        None
    }

    /// The lowest gap whose part inside `[low, high)` is at least `size`
    /// long; returns that part as `(start, end)`. `mas_empty_area`.
    pub fn lowest_gap(&self, low: u64, high: u64, size: u64) -> Option<(u64, u64)> {
        if size == 0 || high <= low || high - low < size {
            return None;
        }
        let fits = |a: u64, b: u64| {
            let (a, b) = (a.max(low), b.min(high));
            (b > a && b - a >= size).then_some((a, b))
        };
        // The gap that straddles `low`: below the first entry ending after it.
        let k = self.find_vma(low);
        let (a, b) = match k {
            Some(p) => (self.pred_end(p), self.get(p).start),
            None => (self.last().map_or(0, |p| self.get(p).end), u64::MAX),
        };
        if let Some(g) = fits(a, b) {
            return Some(g);
        }
        let k = k?;
        let bound = self.get(k).start;
        match self.first_gap_above(self.root, self.height, bound, size) {
            Some(pos) => fits(self.pred_end(pos), self.get(pos).start),
            None => {
                let end = self.get(self.last().expect("non-empty")).end;
                fits(end, u64::MAX)
            }
        }
    }

    /// The first entry with start `> bound` whose gap is `>= size`.
    fn first_gap_above(&self, node: u32, height: u32, bound: u64, size: u64) -> Option<Pos> {
        if node == NIL {
            return None;
        }
        let n = &self.nodes[node as usize];
        for j in 0..n.len {
            // Child j holds starts in [keys[j], keys[j+1]): skip it when they
            // are all <= bound, or when none of its gaps is large enough.
            if n.gaps[j] < size || (j + 1 < n.len && n.keys[j + 1] <= bound.saturating_add(1)) {
                continue;
            }
            if height == 1 {
                if n.keys[j] > bound {
                    return Some(Pos { leaf: node, idx: j });
                }
                continue;
            }
            if let Some(p) = self.first_gap_above(n.vals[j], height - 1, bound, size) {
                return Some(p);
            }
        }
        None
    }

    /// Checks the structural invariants (tests and debug builds).
    pub fn check(&self, sh: &TreeShared) -> Result<(), String> {
        let want_root = if self.root == NIL {
            NIL as u64
        } else {
            (self.height as u64) << 32 | self.root as u64
        };
        let root = read_once(&sh.root);
        if root != want_root {
            return Err(format!("published root {root:#x}, writer's {want_root:#x}"));
        }
        let entries: Vec<Entry> = self.iter().collect();
        if entries.len() != self.len {
            return Err(format!("len {} but {} entries", self.len, entries.len()));
        }
        let mut prev_end = 0;
        for e in &entries {
            if e.start < prev_end || e.end <= e.start {
                return Err(format!("bad order at {e:?}"));
            }
            let lk = sh.lookup_le(e.start);
            if lk != Some(e.val) {
                return Err(format!("shared lookup of {:#x} gave {lk:?}, want {}", e.start, e.val));
            }
            prev_end = e.end;
        }
        if self.root != NIL {
            self.check_node(self.root, self.height)?;
        }
        Ok(())
    }

    fn check_node(&self, node: u32, height: u32) -> Result<(u64, u64, u64), String> {
        let n = &self.nodes[node as usize];
        if n.len == 0 {
            return Err(format!("empty node {node}"));
        }
        if height == 1 {
            for i in 0..n.len {
                let pos = Pos { leaf: node, idx: i };
                let want = n.keys[i] - self.pred_end(pos);
                if n.gaps[i] != want {
                    return Err(format!("leaf {node}[{i}] gap {} want {want}", n.gaps[i]));
                }
            }
        } else {
            for i in 0..n.len {
                let c = n.vals[i];
                if self.nodes[c as usize].parent != node {
                    return Err(format!("parent link of {c}"));
                }
                let (k, e, g) = self.check_node(c, height - 1)?;
                if (k, g) != (n.keys[i], n.gaps[i]) || e < k {
                    return Err(format!("summary of child {c} in {node}"));
                }
            }
        }
        if n.max != n.max_gap() || (n.parent != NIL && n.min != n.keys[0]) {
            return Err(format!("node {node}: cached max gap {} want {}", n.max, n.max_gap()));
        }
        Ok((n.keys[0], n.ends[n.len - 1], n.max_gap()))
    }
}
