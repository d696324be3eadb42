//! The huge page pool as data (`struct hstate`'s counters, `mm/hugetlb.c`)
//! and the state a hugetlbfs object keeps about it: its reservation map
//! and its pages. The rules that change them are `mm_ops::kernel::hugetlb`.
//!
//! The pool is the machine's: every address space of a [`FileTable`]
//! (and its fork copies) shares one, made from
//! [`MmConfig::hugetlb_free`](crate::MmConfig) and
//! [`hugetlb_resv`](crate::MmConfig). A hugetlbfs inode's state is shared
//! by the fork copies of the inode, and goes back to the pool when the
//! last of them is dropped (`hugetlbfs_evict_inode`:
//! `remove_inode_hugepages` and `resv_map_release`).
//!
//! [`FileTable`]: crate::file::FileTable

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard};

/// The pool index of a huge page size: 0 for 2 MiB, 1 for 1 GiB.
pub fn hstate_index(huge_size: u64) -> usize {
    usize::from(huge_size > (2 << 20))
}

/// One `struct hstate`'s counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HState {
    /// `free_huge_pages`.
    pub free: u64,
    /// `resv_huge_pages`: promised to mappings, not yet faulted in.
    pub resv: u64,
}

impl HState {
    /// `available_huge_pages`: free pages nobody has reserved.
    pub fn available(&self) -> u64 {
        self.free.saturating_sub(self.resv)
    }
}

/// The machine's huge page pools (2 MiB and 1 GiB), shared.
#[derive(Clone, Debug, Default)]
pub struct HugePool(Arc<Mutex<[HState; 2]>>);

impl HugePool {
    /// A pool with these counters.
    pub fn new(h: [HState; 2]) -> Self {
        HugePool(Arc::new(Mutex::new(h)))
    }

    /// The counters, locked (`hugetlb_lock`).
    pub fn lock(&self) -> MutexGuard<'_, [HState; 2]> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl PartialEq for HugePool {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for HugePool {}

/// What a hugetlbfs object holds of the pool, in huge-page indices of the
/// file.
#[derive(Debug, Default)]
pub struct HugeMaps {
    /// The shared reservation map (`inode->i_mapping->private_data`'s
    /// regions): indices reserved for shared mappings, or backed by a page.
    pub reserved: BTreeSet<u64>,
    /// Pages in the page cache (shared mappings).
    pub cached: BTreeSet<u64>,
    /// Private mappings' reservations not yet used (a private mapping's
    /// `resv_map`, which the model keeps with the object: an anonymous
    /// `MAP_HUGETLB` object has one mapping).
    pub priv_resv: BTreeSet<u64>,
    /// Private mappings' pages.
    pub priv_pages: BTreeSet<u64>,
    /// A private mapping has been made of the object: a fork copy of it
    /// starts with state of its own ([`HugeInode::fork_copy`]).
    pub private: bool,
}

/// A hugetlbfs object's [`HugeMaps`], with the pool they draw from.
#[derive(Debug)]
pub struct HugeInode {
    /// The pool index ([`hstate_index`]).
    pub h: usize,
    /// The pool.
    pub pool: HugePool,
    maps: Mutex<HugeMaps>,
}

impl HugeInode {
    /// State for a new object of pool `h`.
    pub fn new(pool: HugePool, h: usize) -> Arc<Self> {
        Arc::new(HugeInode {
            h,
            pool,
            maps: Mutex::new(HugeMaps::default()),
        })
    }

    /// The state a fork child's copy of the object holds: the same, for
    /// an object only mapped shared; for one mapped private, fresh state
    /// (`hugetlb_dup_vma_private`: the child's VMAs have no reservations,
    /// and its faults take pages of their own).
    pub fn fork_copy(self: &Arc<Self>) -> Arc<Self> {
        if self.maps().private {
            HugeInode::new(self.pool.clone(), self.h)
        } else {
            self.clone()
        }
    }

    /// The maps, locked (take the pool's lock after this one).
    pub fn maps(&self) -> MutexGuard<'_, HugeMaps> {
        self.maps.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl PartialEq for HugeInode {
    /// The same object.
    fn eq(&self, other: &Self) -> bool {
        core::ptr::eq(self, other)
    }
}

impl Eq for HugeInode {}

impl Drop for HugeInode {
    /// `hugetlbfs_evict_inode`: the page cache's pages go back to the pool
    /// and the reservations nothing used are released.
    fn drop(&mut self) {
        let m = self.maps.get_mut().unwrap_or_else(|e| e.into_inner());
        let mut pool = self.pool.lock();
        let h = &mut pool[self.h];
        let unused = m.reserved.difference(&m.cached).count() as u64;
        h.resv = h.resv.saturating_sub(unused + m.priv_resv.len() as u64);
        h.free += (m.cached.len() + m.priv_pages.len()) as u64;
    }
}
