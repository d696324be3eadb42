//! `mremap`'s share of [`CallGen`]'s calls.

use mm_ops::call::Call;
use mm_ops::uapi::*;
use rand::RngExt;

use super::CallGen;

impl CallGen {
    /// A length in pages that stays near the arena's scale (mremap never
    /// unmaps far beyond what it targets).
    fn remap_len(&mut self, base: u64) -> u64 {
        match self.rng.random_range(0..10) {
            0..=2 => base,
            3..=4 => base
                .saturating_sub(self.rng.random_range(1..=4) * PAGE_SIZE)
                .max(PAGE_SIZE),
            5..=8 => base + self.rng.random_range(1..=16) * PAGE_SIZE,
            _ => (2 << 20) * self.rng.random_range(1..3),
        }
    }

    /// An `mremap` call: on an existing VMA (or a range around one), or
    /// anywhere; every flag combination, sometimes invalid arguments.
    pub(super) fn mremap(&mut self) -> Call {
        let (old_addr, mut old_len) = match self.vma_range() {
            Some((a, b)) if self.rng.random_ratio(4, 5) => (a, b - a),
            _ => (self.some_addr(), self.pages(8) * PAGE_SIZE),
        };
        let mut new_len = self.remap_len(old_len);
        let mut flags = [
            0,
            MREMAP_MAYMOVE,
            MREMAP_MAYMOVE | MREMAP_FIXED,
            MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP,
            MREMAP_MAYMOVE | MREMAP_DONTUNMAP,
            MREMAP_FIXED,
            MREMAP_DONTUNMAP,
        ][self.rng.random_range(0..7)];
        if flags & MREMAP_DONTUNMAP != 0 && self.rng.random_ratio(3, 4) {
            new_len = old_len;
        }
        if flags & MREMAP_FIXED != 0 && self.rng.random_bool(0.5) {
            new_len = old_len;
        }
        let new_addr = if flags & (MREMAP_FIXED | MREMAP_DONTUNMAP) != 0 || self.rng.random_ratio(1, 10) {
            match self.rng.random_range(0..4) {
                0 => self.vma_range().map_or_else(|| self.arena_addr(), |(_, b)| b),
                1 => old_addr + self.rng.random_range(0..4) * PAGE_SIZE,
                _ => self.arena_addr(),
            }
        } else {
            0
        };
        let mut old_addr = old_addr;
        match self.rng.random_range(0..40) {
            0 => flags |= 8,
            1 => old_addr += 0x10,
            2 => old_len = 0,
            3 => new_len = 0,
            4 => new_len = 1 << 47,
            5 => old_len += self.rng.random_range(1..PAGE_SIZE),
            6 => new_len = new_len.saturating_sub(self.rng.random_range(1..PAGE_SIZE)).max(1),
            7 if new_len > old_len => old_len = 1 << 46,
            _ => {}
        }
        let new_addr = if self.rng.random_ratio(1, 40) {
            new_addr | 0x100
        } else {
            new_addr
        };
        Call::Mremap {
            old_addr,
            old_len,
            new_len,
            flags,
            new_addr,
        }
    }
}
