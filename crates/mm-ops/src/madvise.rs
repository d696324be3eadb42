//! `madvise(2)` (`mm/madvise.c`). Filled in by the real-programs work; until
//! then every call fails as on a kernel without it.

use mm_core::{BarrierPolicy, MmStruct};

use crate::uapi::Errno;

/// `do_madvise`.
pub fn do_madvise<P: BarrierPolicy>(_mm: &MmStruct<P>, _addr: u64, _len: u64, _advice: u64) -> Result<(), Errno> {
    Err(Errno::ENOSYS)
}
