//! The mm_struct, VMAs and vm_flags; mmap_lock, mm_lock_seq and barrier policies.
