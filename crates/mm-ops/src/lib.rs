//! Address-space mutators over [`mm_core`], following the Linux kernel's rules.
//!
//! | module | kernel counterpart |
//! |---|---|
//! | [`uapi`] | `include/uapi/…/mman*.h`, `errno-base.h` |
//! | [`call`] | the system-call vocabulary shared with the host oracle and strace |
//! | [`strace`] | strace syntax: reading and canonical writing of calls |

pub mod call;
pub mod strace;
pub mod uapi;
