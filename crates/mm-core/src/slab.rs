//! Type-stable memory for lockless readers: the analogue of a
//! `SLAB_TYPESAFE_BY_RCU` cache (`vm_area_cachep` and `filp_cachep` are such
//! caches since Linux 6.15).
//!
//! A [`Slab`] hands out slots by index. Slots are never freed while the slab
//! lives, only recycled by the writer; a reader that races with a recycle
//! reads a slot of the same type with other contents, which is safe because
//! every field a reader touches is an atomic, and harmless because such a
//! read fails validation. Memory therefore stays valid for any reader in
//! flight without any `unsafe`: chunks are allocated on first use and
//! published through a [`OnceLock`](std::sync::OnceLock), and dropped only
//! with the slab.

/// Number of slots per chunk (a power of two; small under loom, where every
/// slot of every chunk is a set of modeled atomics).
const CHUNK: usize = if cfg!(loom) { 4 } else { 256 };

/// Chunked, never-shrinking storage of `T` addressed by `u32` indices.
pub struct Slab<T> {
    #[cfg(not(loom))]
    chunks: Box<[std::sync::OnceLock<Box<[T]>>]>,
    #[cfg(loom)]
    chunks: Box<[Box<[T]>]>,
}

impl<T: Default> Slab<T> {
    /// A slab able to hold `capacity` slots.
    ///
    /// Without loom, chunks are allocated lazily by [`Slab::ensure`]. Under
    /// loom every chunk is allocated up front (loom does not model
    /// `OnceLock`), so loom tests use small capacities.
    pub fn with_capacity(capacity: usize) -> Self {
        let n = capacity.div_ceil(CHUNK).max(1);
        #[cfg(not(loom))]
        {
            Slab {
                chunks: (0..n).map(|_| std::sync::OnceLock::new()).collect(),
            }
        }
        #[cfg(loom)]
        {
            Slab {
                chunks: (0..n).map(|_| Self::new_chunk()).collect(),
            }
        }
    }

    fn new_chunk() -> Box<[T]> {
        (0..CHUNK).map(|_| T::default()).collect()
    }

    /// Makes sure slot `index` exists; returns `false` if it is beyond the
    /// capacity. Writer side.
    pub fn ensure(&self, index: u32) -> bool {
        let c = index as usize / CHUNK;
        match self.chunks.get(c) {
            #[cfg(not(loom))]
            Some(cell) => {
                cell.get_or_init(Self::new_chunk);
                true
            }
            #[cfg(loom)]
            Some(_) => true,
            None => false,
        }
    }
}

impl<T> Slab<T> {
    /// The slot at `index`, if it has been allocated. Safe to call from any
    /// thread at any time.
    #[inline]
    pub fn get(&self, index: u32) -> Option<&T> {
        let i = index as usize;
        #[cfg(not(loom))]
        let chunk = self.chunks.get(i / CHUNK)?.get()?;
        #[cfg(loom)]
        let chunk = self.chunks.get(i / CHUNK)?;
        chunk.get(i % CHUNK)
    }

    /// Maximum number of slots.
    pub fn capacity(&self) -> usize {
        self.chunks.len() * CHUNK
    }

    /// Bytes of slot memory currently allocated.
    pub fn allocated_bytes(&self) -> usize {
        #[cfg(not(loom))]
        let n = self.chunks.iter().filter(|c| c.get().is_some()).count();
        #[cfg(loom)]
        let n = self.chunks.len();
        n * CHUNK * core::mem::size_of::<T>()
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
