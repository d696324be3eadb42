//! `mremap(2)` (`mm/mremap.c`). Filled in by the real-programs work; until
//! then every call fails as on a kernel without it.

use mm_core::{BarrierPolicy, MmStruct};

use crate::uapi::Errno;

/// `SYSCALL_DEFINE5(mremap)`.
pub fn sys_mremap<P: BarrierPolicy>(
    _mm: &MmStruct<P>,
    _old_addr: u64,
    _old_len: u64,
    _new_len: u64,
    _flags: u64,
    _new_addr: u64,
) -> Result<u64, Errno> {
    Err(Errno::ENOSYS)
}
