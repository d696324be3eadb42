//! The VMA cache (`vm_area_cachep`, `kernel/fork.c` / `mm/vma_init.c`): one
//! type-stable slab of [`VmaSlot`]s that several address spaces may share,
//! as every mm of a Linux system allocates its VMAs from the same
//! `SLAB_TYPESAFE_BY_RCU` cache. A reader that found a VMA through one
//! mm's tree may therefore, by the time it locks it, hold a slot that has
//! been freed and reused for *another* mm: `vma_start_read` checks
//! `vm_mm` for that reason ([`crate::vma_lock`]).
//!
//! Each [`crate::MmStruct`] gets a cache of its own unless it is built
//! with [`crate::MmStruct::with_cache`].

use crate::slab::{IndexAlloc, Slab};
use crate::sync::{Arc, Mutex};
use crate::vma::{VmaId, VmaSlot};

/// A VMA slab shared by address spaces.
pub struct VmaCache {
    slots: Slab<VmaSlot>,
    alloc: Mutex<IndexAlloc>,
}

impl VmaCache {
    /// A cache of `capacity` VMAs.
    pub fn new(capacity: usize) -> Arc<VmaCache> {
        Arc::new(VmaCache {
            slots: Slab::with_capacity(capacity),
            alloc: Mutex::new(IndexAlloc::default()),
        })
    }

    /// The slot `id` (any thread, any time).
    #[inline(always)]
    pub fn get(&self, id: VmaId) -> Option<&VmaSlot> {
        self.slots.get(id)
    }

    /// `vm_area_alloc`: a free slot, or `None` when the cache is full.
    pub(crate) fn alloc(&self) -> Option<VmaId> {
        let mut a = self.alloc.lock();
        let id = a.alloc();
        if self.slots.ensure(id) {
            Some(id)
        } else {
            a.free(id);
            None
        }
    }

    /// `vm_area_free`: the slot may be reused at once, by any address
    /// space (readers in flight are excluded by its reference count and
    /// `vm_mm`, not by delaying the reuse).
    pub(crate) fn free(&self, id: VmaId) {
        self.alloc.lock().free(id);
    }

    /// Bytes of slots ever used.
    pub fn allocated_bytes(&self) -> usize {
        self.slots.allocated_bytes()
    }

    /// How many slots it can hold.
    pub fn capacity(&self) -> usize {
        self.slots.capacity()
    }

    /// Slots in use, over every address space sharing the cache.
    pub fn in_use(&self) -> usize {
        self.alloc.lock().in_use()
    }
}

impl core::fmt::Debug for VmaCache {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("VmaCache")
            .field("capacity", &self.slots.capacity())
            .finish()
    }
}
