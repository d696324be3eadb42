//! The structural invariants, checked by tests and debug builds.

use super::{Entry, NIL, Pos, Tree, TreeShared};
use crate::ordering::read_once;

impl Tree {
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

    pub(super) fn check_node(&self, node: u32, height: u32) -> Result<(u64, u64, u64), String> {
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
