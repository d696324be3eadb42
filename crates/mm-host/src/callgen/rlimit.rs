//! `setrlimit`'s (`prlimit64` on the process itself) share of
//! [`CallGen`]'s calls: the limits the memory calls consult, changed in
//! the middle of a session.

use mm_ops::call::Call;
use mm_ops::uapi::rlimit;
use rand::RngExt;

use super::CallGen;

/// `RLIM_INFINITY`.
const INF: u64 = u64::MAX;

/// `RLIMIT_CORE`: consulted by nothing the sessions do; a limit whose hard
/// value only decides whether raising it is allowed.
const CORE: u64 = 4;

impl CallGen {
    /// A new soft (and hard) limit for `RLIMIT_AS`, `RLIMIT_DATA`,
    /// `RLIMIT_MEMLOCK`, `RLIMIT_STACK`, `RLIMIT_NOFILE` or `RLIMIT_CORE`.
    /// The hard limit is mostly `RLIM_INFINITY` (`EPERM` for a session
    /// without `CAP_SYS_RESOURCE` whose hard limit is lower), sometimes
    /// the soft one (lowering the hard limit for good), and now and then
    /// below it (`EINVAL`), or the resource is out of range.
    ///
    /// The values spare the helper: its stack (below 128 KiB it could not
    /// grow), its protocol descriptors (1022 and 1023: `RLIMIT_NOFILE`
    /// stays at 1024 or above) and its signals (`RLIMIT_FSIZE`, whose
    /// `SIGXFSZ` the sessions already meet, and `RLIMIT_CPU` are left
    /// alone).
    pub(super) fn setrlimit(&mut self) -> Call {
        let mib = |n: u64| n << 20;
        let (resource, cur) = match self.rng.random_range(0..12) {
            0..=2 => (
                rlimit::AS,
                [mib(64), mib(256), mib(1024), INF][self.rng.random_range(0..4)],
            ),
            3..=4 => (
                rlimit::DATA,
                [mib(1), mib(4), mib(64), INF][self.rng.random_range(0..4)],
            ),
            5..=7 => (
                rlimit::MEMLOCK,
                [0, 16 << 10, 64 << 10, mib(8), INF][self.rng.random_range(0..5)],
            ),
            8..=9 => (
                rlimit::STACK,
                [128 << 10, mib(1), mib(8), INF][self.rng.random_range(0..4)],
            ),
            10 => (rlimit::NOFILE, [1024, 4096, 1 << 20][self.rng.random_range(0..3)]),
            _ => (CORE, [0, mib(1), INF][self.rng.random_range(0..3)]),
        };
        let max = match self.rng.random_range(0..20) {
            0..=1 => cur,
            2 => cur.saturating_sub(1).min(cur / 2),
            _ => INF,
        };
        let resource = match self.rng.random_range(0..40) {
            // Past RLIM_NLIMITS, and a resource the kernel's `unsigned
            // int` argument truncates.
            0 => [16, 1 << 32 | rlimit::AS][self.rng.random_range(0..2)],
            _ => resource,
        };
        Call::Setrlimit { resource, cur, max }
    }

    /// `remap_file_pages` on or around a mapped range: `prot` 0 mostly,
    /// a page offset from the first few, `MAP_NONBLOCK` or none (now and
    /// then another flag, ignored), an unaligned start or size, size 0.
    pub(super) fn remap_file_pages(&mut self) -> Call {
        use mm_ops::uapi::{MAP_NONBLOCK, PAGE_SIZE};
        let (mut start, mut size) = match self.vma_range() {
            Some((a, b)) if self.rng.random_ratio(4, 5) => (a, b - a),
            _ => (self.some_addr(), self.pages(4) * PAGE_SIZE),
        };
        match self.rng.random_range(0..20) {
            0 => start += self.rng.random_range(1..PAGE_SIZE),
            1 => size += self.rng.random_range(1..PAGE_SIZE),
            2 => size = 0,
            _ => {}
        }
        let prot = if self.rng.random_ratio(1, 10) { 1 } else { 0 };
        let pgoff = if self.rng.random_ratio(1, 30) {
            u64::MAX >> self.rng.random_range(0..13)
        } else {
            self.rng.random_range(0..12)
        };
        let flags = [0, 0, MAP_NONBLOCK, 0x2][self.rng.random_range(0..4)];
        Call::RemapFilePages {
            start,
            size,
            prot,
            pgoff,
            flags,
        }
    }
}
