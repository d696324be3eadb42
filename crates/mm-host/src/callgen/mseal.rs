//! `mseal`'s share of [`CallGen`]'s calls.

use mm_ops::call::Call;
use mm_ops::uapi::PAGE_SIZE;
use rand::RngExt;

use super::CallGen;

impl CallGen {
    /// `mseal` of part of the mapped range (holes included now and then:
    /// `ENOMEM`), sometimes with an unaligned start, a length that rounds
    /// up or wraps, or reserved flags. A seal lasts: later `munmap`,
    /// `mprotect`, `mremap` and `MAP_FIXED` calls over it fail with
    /// `EPERM`, which is part of what the sessions compare.
    pub(super) fn mseal(&mut self) -> Call {
        let (mut addr, mut len) = match self.vma_range() {
            Some((a, b)) if self.rng.random_ratio(3, 4) => {
                let pages = (b - a) / PAGE_SIZE;
                let skip = self.rng.random_range(0..pages.max(1));
                let a = a + skip * PAGE_SIZE;
                (a, self.pages(8) * PAGE_SIZE)
            }
            _ => (self.some_addr(), self.pages(8) * PAGE_SIZE),
        };
        let mut flags = 0;
        match self.rng.random_range(0..30) {
            0 => addr += self.rng.random_range(1..PAGE_SIZE),
            1 => len = 0,
            2 => len = [u64::MAX, u64::MAX - 4095, u64::MAX - 3 * PAGE_SIZE][self.rng.random_range(0..3)],
            3 => len += self.rng.random_range(1..PAGE_SIZE),
            4 => flags = [1, 1 << 32][self.rng.random_range(0..2)],
            _ => {}
        }
        Call::Mseal { addr, len, flags }
    }
}
