//! System V shared memory's share of [`CallGen`]'s calls.

use mm_ops::call::Call;
use mm_ops::kernel::shm::*;
use mm_ops::uapi::PAGE_SIZE;
use rand::RngExt;

use super::{ARENA, ARENA_PAGES, CallGen};

impl CallGen {
    /// `shmget` (a few keys, sizes in pages or odd bytes, now and then
    /// `IPC_EXCL`, no `IPC_CREAT`, size 0, or `SHM_HUGETLB`), `shmat` of a known segment
    /// (anywhere, or fixed in the arena with `SHM_RND`, `SHM_REMAP`,
    /// `SHM_RDONLY`, `SHM_EXEC`), `shmdt` of an attach address or of some
    /// VMA, and `shmctl(IPC_RMID)`. The segments' fragments then meet the
    /// other calls: `mprotect`, `munmap`, `mremap`, `fork`.
    pub(super) fn shm(&mut self) -> Call {
        match self.rng.random_range(0..10) {
            0..=2 => {
                let key = [IPC_PRIVATE, IPC_PRIVATE, 0x51, 0x52][self.rng.random_range(0..4)];
                let size = match self.rng.random_range(0..12) {
                    0 => 0,
                    1 => 5000,
                    2 => self.rng.random_range(1..3 * PAGE_SIZE),
                    _ => self.pages(6) * PAGE_SIZE,
                };
                let mut flags = [0o600, 0o640, 0o400][self.rng.random_range(0..3)];
                match self.rng.random_range(0..8) {
                    0 => {}
                    1 => flags |= IPC_CREAT | IPC_EXCL,
                    2 => flags |= IPC_CREAT | SHM_NORESERVE,
                    _ => flags |= IPC_CREAT,
                }
                // Huge pages now and then: the default size, 2 MiB or
                // 1 GiB by log2, or a size with no pool (EINVAL).
                if self.rng.random_ratio(1, 6) {
                    flags |= SHM_HUGETLB | [0, 0, 21 << 26, 30 << 26, 25 << 26][self.rng.random_range(0..5)];
                    if self.rng.random_bool(0.5) {
                        flags |= IPC_CREAT | SHM_NORESERVE;
                    }
                }
                Call::Shmget { key, size, flags }
            }
            3..=6 => {
                let id = self.shm_id();
                let mut flags = 0;
                for bit in [SHM_RDONLY, SHM_EXEC, SHM_RND] {
                    if self.rng.random_ratio(1, 4) {
                        flags |= bit;
                    }
                }
                let addr = if self.rng.random_bool(0.5) {
                    0
                } else {
                    if self.rng.random_ratio(1, 3) {
                        flags |= SHM_REMAP;
                    }
                    let a = ARENA + self.rng.random_range(0..ARENA_PAGES) * PAGE_SIZE;
                    if self.rng.random_ratio(1, 4) { a + 123 } else { a }
                };
                Call::Shmat { id, addr, flags }
            }
            7..=8 => {
                let addr = match self.rng.random_range(0..8) {
                    0..=5 if !self.shm_addrs.is_empty() => {
                        self.shm_addrs[self.rng.random_range(0..self.shm_addrs.len())]
                    }
                    6 => self.vma_range().map_or(ARENA, |(a, _)| a),
                    _ => self.some_addr(),
                };
                Call::Shmdt { addr }
            }
            _ => Call::ShmctlRmid { id: self.shm_id() },
        }
    }

    /// A segment id the session made, now and then one that is not.
    fn shm_id(&mut self) -> i64 {
        if self.shm_ids.is_empty() || self.rng.random_ratio(1, 12) {
            return [-1, 1 << 15, 3][self.rng.random_range(0..3)];
        }
        self.shm_ids[self.rng.random_range(0..self.shm_ids.len())]
    }
}
