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
//!
//! This module holds both views' types and the lockless walks; the
//! writer's operations are split by concern: `walk` (`mas_walk`,
//! `mas_next`/`mas_prev`, iteration), `update` (node allocation,
//! publication, the ancestors' summaries, in-place stores), `insert`
//! (`mas_store` of a new entry, node splits), `remove` (`mas_erase`, node
//! merges), `gap` (`mas_empty_area*`) and `check` (invariants).

#[cfg(all(target_arch = "x86_64", not(miri), not(loom)))]
use crate::ordering::keys::Avx2Search;
use crate::ordering::keys::{KeySearch, PAD_KEY, ScalarSearch};
use crate::ordering::{read_once, read_once_u32};
use crate::slab::{IndexAlloc, Slab, ZeroSlot};
use crate::sync::{AtomicU32, AtomicU64};

mod check;
mod gap;
mod insert;
mod remove;
mod update;
mod walk;

/// Maximum entries per node (4 under loom, to keep the model small).
pub const FANOUT: usize = if cfg!(loom) { 4 } else { 16 };
const NIL: u32 = u32::MAX;
/// Bound on the height a lockless walk will follow.
const MAX_HEIGHT: u32 = 16;

/// A node as lockless readers see it: `FANOUT` keys and values, aligned to
/// a cache line (three lines at fanout 16). Keys past the node's length
/// are [`PAD_KEY`], so that a reader searches all `FANOUT` keys without
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
    #[inline(always)]
    pub fn lookup_le(&self, addr: u64) -> Option<u32> {
        #[cfg(all(target_arch = "x86_64", not(miri), not(loom)))]
        match Avx2Search::detect() {
            Some(s) => self.lookup_le_with(s, addr),
            None => self.lookup_le_scalar(addr),
        }
        #[cfg(not(all(target_arch = "x86_64", not(miri), not(loom))))]
        self.lookup_le_with(ScalarSearch, addr)
    }

    /// The walk with the portable search, kept out of line where the
    /// vector one is the common case (so that readers inline one walk).
    #[cfg(all(target_arch = "x86_64", not(miri), not(loom)))]
    #[inline(never)]
    fn lookup_le_scalar(&self, addr: u64) -> Option<u32> {
        self.lookup_le_with(ScalarSearch, addr)
    }

    #[inline(always)]
    fn lookup_le_with<S: KeySearch>(&self, s: S, addr: u64) -> Option<u32> {
        let r = read_once(&self.root);
        let mut node = r as u32;
        let mut height = (r >> 32) as u32;
        if height == 0 || height > MAX_HEIGHT {
            return None;
        }
        loop {
            let n = self.nodes.get(node)?;
            let v = read_once_u32(&n.vals[s.count_le(&n.keys, addr) & (FANOUT - 1)]);
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
        #[cfg(all(target_arch = "x86_64", not(miri), not(loom)))]
        if let Some(s) = Avx2Search::detect() {
            return self.first_gt_in(s, r as u32, height, addr);
        }
        self.first_gt_in(ScalarSearch, r as u32, height, addr)
    }

    fn first_gt_in<S: KeySearch>(&self, s: S, node: u32, height: u32, addr: u64) -> Option<u32> {
        let n = self.nodes.get(node)?;
        let i = s.count_le(&n.keys, addr) & (FANOUT - 1);
        if height == 1 {
            // Entry i has the greatest start <= addr (or starts above it).
            for j in [i, i + 1] {
                if j < FANOUT {
                    let k = read_once(&n.keys[j]);
                    if k != PAD_KEY && k > addr {
                        return Some(read_once_u32(&n.vals[j]));
                    }
                }
            }
            return None;
        }
        if let Some(v) = self.first_gt_in(s, read_once_u32(&n.vals[i]), height - 1, addr) {
            return Some(v);
        }
        // Nothing above addr in child i: the first entry of child i + 1.
        if i + 1 < FANOUT && read_once(&n.keys[i + 1]) != PAD_KEY {
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
    /// Bumped by every change that moves entries or changes a value
    /// (insert, remove, node splits and merges, `set_val`): a position
    /// taken at the same generation is still valid ([`Tree::generation`]).
    generation: u64,
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
            generation: 0,
        }
    }
}

/// The tree ran out of node slots (the caller maps this to `ENOMEM`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TreeFull;

impl Tree {
    /// The tree's generation: a position found at one generation stays
    /// valid (the same entry at the same leaf and index) until it changes.
    /// Range changes that keep entries in place (`set_range`,
    /// `move_boundary`) do not change it. The kernel's counterpart is the
    /// rule that a `ma_state` is reset after the tree is modified through
    /// another one.
    #[inline]
    pub fn generation(&self) -> u64 {
        self.generation
    }

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
}
