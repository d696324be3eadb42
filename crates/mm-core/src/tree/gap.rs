//! Gap search over the largest-gap summaries: `mas_empty_area` and
//! `mas_empty_area_rev`.

use super::{NIL, Pos, Tree};

impl Tree {
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
    pub(super) fn last_gap_below(&self, node: u32, height: u32, bound: u64, size: u64) -> Option<Pos> {
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
    pub(super) fn first_gap_above(&self, node: u32, height: u32, bound: u64, size: u64) -> Option<Pos> {
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
}
