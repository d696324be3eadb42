//! The protection-key calls' share of [`CallGen`]'s calls.

use mm_ops::call::Call;
use rand::RngExt;

use super::CallGen;

impl CallGen {
    /// `pkey_mprotect` over a mapped range (or anywhere) with key -1 (a
    /// plain `mprotect`), a small key, or a key the kernel reads as -1 or 0
    /// from a 64-bit register; `pkey_alloc` with valid and reserved flags
    /// and access rights; `pkey_free` of small keys. Without protection
    /// keys (this host) every key but -1 is `EINVAL` and the allocator
    /// gives out nothing; with them (`ospke`) the keys go into `VM_PKEY_*`
    /// and split VMAs that would merge.
    pub(super) fn pkey(&mut self) -> Call {
        let key = |g: &mut CallGen| -> i64 {
            match g.rng.random_range(0..10) {
                0..=3 => -1,
                4 => 0x1_ffff_ffff,
                5 => 0x1_0000_0000,
                _ => g.rng.random_range(0..4),
            }
        };
        match self.rng.random_range(0..6) {
            0 => Call::PkeyAlloc {
                flags: if self.rng.random_ratio(1, 6) { 1 } else { 0 },
                init_val: self.rng.random_range(0..5),
            },
            1 => Call::PkeyFree { pkey: key(self) },
            _ => {
                let prot = self.prot();
                let pkey = key(self);
                let (addr, len) = match self.vma_range() {
                    Some((a, b)) if self.rng.random_ratio(3, 4) => (a, b - a),
                    _ => (self.some_addr(), self.len()),
                };
                Call::PkeyMprotect { addr, len, prot, pkey }
            }
        }
    }
}
