//! `madvise`'s share of [`CallGen`]'s calls.

use mm_ops::call::Call;
use mm_ops::uapi::*;
use rand::RngExt;

use super::CallGen;

impl CallGen {
    /// A `madvise` call: every advice value (but `MADV_HWPOISON` and
    /// `MADV_SOFT_OFFLINE`, which the host helper refuses), and invalid
    /// ones, on existing VMAs or anywhere.
    pub(super) fn madvise(&mut self) -> Call {
        use mm_ops::uapi::madv::*;
        const ALL: [u64; 25] = [
            NORMAL,
            RANDOM,
            SEQUENTIAL,
            WILLNEED,
            DONTNEED,
            FREE,
            REMOVE,
            DONTFORK,
            DOFORK,
            MERGEABLE,
            UNMERGEABLE,
            HUGEPAGE,
            NOHUGEPAGE,
            DONTDUMP,
            DODUMP,
            WIPEONFORK,
            KEEPONFORK,
            COLD,
            PAGEOUT,
            POPULATE_READ,
            POPULATE_WRITE,
            DONTNEED_LOCKED,
            COLLAPSE,
            GUARD_INSTALL,
            GUARD_REMOVE,
        ];
        let advice = if self.rng.random_ratio(1, 25) {
            [5, 6, 7, 26, 99, 104, 1 << 32 | DONTDUMP, u64::MAX, 0x8000_0000][self.rng.random_range(0..9)]
        } else {
            ALL[self.rng.random_range(0..ALL.len())]
        };
        let (mut addr, mut len) = match self.vma_range() {
            Some((a, b)) if self.rng.random_ratio(3, 4) => (a, b - a),
            _ => (self.some_addr(), self.len()),
        };
        match self.rng.random_range(0..40) {
            0 => addr += 0x10,
            1 => len = 0,
            2 => len = u64::MAX - 4095,
            3 => len = u64::MAX - 10,
            _ => {}
        }
        // MADV_COLLAPSE is modeled for ranges holding no whole aligned 2 MiB block.
        if advice == COLLAPSE {
            len = len.min(PMD_SIZE - PAGE_SIZE);
        }
        Call::Madvise { addr, len, advice }
    }
}
