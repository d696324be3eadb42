//! The mlock family's share of [`CallGen`]'s calls.

use mm_ops::call::Call;
use mm_ops::uapi::*;
use rand::RngExt;

use super::CallGen;

impl CallGen {
    /// `mlock`, `mlock2`, `munlock`, `mlockall`, `munlockall`. The host
    /// prefaults what `mlock` locks, so the ranges stay small (64 pages at
    /// most), and `mlockall` always carries `MCL_ONFAULT` (nothing is
    /// prefaulted, now or for later mappings), besides invalid flags.
    pub(super) fn mlock(&mut self) -> Call {
        let (mut addr, mut len) = match self.vma_range() {
            Some((a, b)) if self.rng.random_ratio(3, 4) => (a, (b - a).min(64 * PAGE_SIZE)),
            _ => (self.some_addr(), self.pages(8) * PAGE_SIZE),
        };
        match self.rng.random_range(0..40) {
            0..=1 => addr += self.rng.random_range(1..PAGE_SIZE),
            2 => len = 0,
            3 => len = [u64::MAX, u64::MAX - 4095, u64::MAX - 3 * PAGE_SIZE][self.rng.random_range(0..3)],
            4 => len += self.rng.random_range(1..PAGE_SIZE),
            _ => {}
        }
        match self.rng.random_range(0..10) {
            0..=3 => Call::Mlock { addr, len },
            4..=5 => {
                let flags = if self.rng.random_ratio(1, 10) {
                    [2, 0x8000_0000, 1 << 32][self.rng.random_range(0..3)]
                } else {
                    [0, MLOCK_ONFAULT][self.rng.random_range(0..2)]
                };
                Call::Mlock2 { addr, len, flags }
            }
            6..=8 => Call::Munlock { addr, len },
            _ if self.rng.random_bool(0.5) => Call::Munlockall,
            _ => {
                let flags = [
                    MCL_CURRENT | MCL_ONFAULT,
                    MCL_FUTURE | MCL_ONFAULT,
                    MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT,
                    0,
                    MCL_ONFAULT,
                    8,
                ][self.rng.random_range(0..6)];
                Call::Mlockall { flags }
            }
        }
    }
}
