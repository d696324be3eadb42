//! Type-stable memory for lockless readers: the analogue of a
//! `SLAB_TYPESAFE_BY_RCU` cache (`vm_area_cachep` and `filp_cachep` are such
//! caches since Linux 6.15).
//!
//! A [`Slab`] hands out slots by index. Slots are never freed while the slab
//! lives, only recycled by the writer; a reader that races with a recycle
//! reads a slot of the same type with other contents, which is safe because
//! every field a reader touches is an atomic, and harmless because such a
//! read fails validation (the rule for recycled memory, `ordering.rs`).
//!
//! The slab is one flat array of its full capacity, so that a reader's
//! `get` is a bounds check and an index. It is allocated zeroed
//! ([`ZeroSlot`]): the allocator hands large zeroed blocks out as fresh
//! pages, which the kernel backs with memory only when touched, so an
//! unused capacity costs address space, not memory. Under loom (whose
//! atomics have no all-zero representation) slots are built with
//! `Default`, and loom tests use small capacities.

/// A slot type whose all-zero bit pattern is a valid, default-like value.
///
/// # Safety
/// Every field must be valid when all its bytes are zero (integers and
/// atomics of integers are).
pub unsafe trait ZeroSlot: Default {}

/// Fixed-capacity storage of `T` addressed by `u32` indices.
pub struct Slab<T> {
    slots: Box<[T]>,
    /// One past the highest index [`Slab::ensure`] has seen (for
    /// [`Slab::allocated_bytes`]).
    touched: std::sync::atomic::AtomicUsize,
}

impl<T: ZeroSlot> Slab<T> {
    /// A slab able to hold `capacity` slots.
    pub fn with_capacity(capacity: usize) -> Self {
        Slab {
            slots: Self::zeroed(capacity.max(1)),
            touched: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    #[cfg(not(loom))]
    fn zeroed(n: usize) -> Box<[T]> {
        use std::alloc::{Layout, alloc_zeroed, handle_alloc_error};
        if core::mem::size_of::<T>() == 0 {
            return (0..n).map(|_| T::default()).collect();
        }
        let layout = Layout::array::<T>(n).expect("slab capacity overflows");
        // SAFETY: the layout has a non-zero size (checked above); the block
        // is zeroed, which `T: ZeroSlot` makes `n` valid `T`s; ownership
        // goes to the `Box`, which frees it with the same layout (that of
        // `[T]` of length `n`).
        unsafe {
            let p = alloc_zeroed(layout) as *mut T;
            if p.is_null() {
                handle_alloc_error(layout);
            }
            Box::from_raw(core::ptr::slice_from_raw_parts_mut(p, n))
        }
    }

    #[cfg(loom)]
    fn zeroed(n: usize) -> Box<[T]> {
        (0..n).map(|_| T::default()).collect()
    }

    /// Makes sure slot `index` exists; returns `false` if it is beyond the
    /// capacity. Writer side.
    #[inline]
    pub fn ensure(&self, index: u32) -> bool {
        let i = index as usize;
        if i >= self.slots.len() {
            return false;
        }
        self.touched.fetch_max(i + 1, std::sync::atomic::Ordering::Relaxed);
        true
    }
}

impl<T> Slab<T> {
    /// The slot at `index`, if it is within the capacity. Safe to call
    /// from any thread at any time.
    #[inline(always)]
    pub fn get(&self, index: u32) -> Option<&T> {
        self.slots.get(index as usize)
    }

    /// Maximum number of slots.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Bytes of the slots up to the highest one ever used (what a slab of
    /// the kernel would hold; the rest is untouched address space).
    pub fn allocated_bytes(&self) -> usize {
        self.touched.load(std::sync::atomic::Ordering::Relaxed) * core::mem::size_of::<T>()
    }
}

impl<T> core::fmt::Debug for Slab<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Slab").field("capacity", &self.capacity()).finish()
    }
}

/// Writer-side allocator of slab indices: a free list plus a high-water mark.
#[derive(Debug, Default, Clone)]
pub struct IndexAlloc {
    free: Vec<u32>,
    next: u32,
}

impl IndexAlloc {
    /// Takes an index (recycling freed ones first, most recent first).
    pub fn alloc(&mut self) -> u32 {
        if let Some(i) = self.free.pop() {
            i
        } else {
            self.next += 1;
            self.next - 1
        }
    }

    /// Returns `index` for reuse.
    pub fn free(&mut self, index: u32) {
        self.free.push(index);
    }

    /// Number of indices in use.
    pub fn in_use(&self) -> usize {
        self.next as usize - self.free.len()
    }

    /// One past the highest index ever handed out.
    pub fn high_water(&self) -> u32 {
        self.next
    }
}
