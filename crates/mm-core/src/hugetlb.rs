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
//! `remove_inode_hugepages` and `resv_map_release`). A privately mapped
//! object's fork copy has state of its own instead, whose private pages
//! ([`HugePage`]) are shared with its parent's until either copies or
//! drops them.
//!
//! [`FileTable`]: crate::file::FileTable

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

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

/// A private mapping's huge page. A fork child's copy of the mapping maps
/// its parent's pages (copy-on-write, `copy_hugetlb_page_range`) until one
/// of them writes or drops its mapping; the page goes back to the pool
/// with the last reference. References are taken, dropped and counted
/// under the pool's lock ([`HugePage::release`]).
#[derive(Clone, Debug, Default)]
pub struct HugePage(Arc<()>);

impl HugePage {
    /// A page just taken from the pool.
    pub fn new() -> Self {
        HugePage::default()
    }

    /// Whether another fork copy maps this page too.
    pub fn shared(&self) -> bool {
        Arc::strong_count(&self.0) > 1
    }

    /// The same page.
    pub fn same(&self, other: &HugePage) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// Drops this mapping of the page, with the pool `h` locked: the page
    /// is free again if nobody else maps it. Returns whether it was freed.
    pub fn release(self, h: &mut HState) -> bool {
        let last = !self.shared();
        if last {
            h.free += 1;
        }
        last
    }
}

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
    pub priv_pages: BTreeMap<u64, HugePage>,
    /// A private mapping has been made of the object: a fork copy of it
    /// starts with state of its own ([`HugeInode::fork_copy`]).
    pub private: bool,
    /// A fork child's copy: it owns no reservations (`hugetlb_dup_vma_private`
    /// clears the child's `HPAGE_RESV_OWNER`), so a copy-on-write it cannot
    /// have a free page for fails.
    pub copy: bool,
    /// `HPAGE_RESV_UNMAPPED`: the owner took back a page this copy shared
    /// (it found no free page for its own copy-on-write); every later fault
    /// that needs a page is `SIGBUS`.
    pub unmapped: bool,
}

/// A hugetlbfs object's [`HugeMaps`], with the pool they draw from.
#[derive(Debug)]
pub struct HugeInode {
    /// The pool index ([`hstate_index`]).
    pub h: usize,
    /// The pool.
    pub pool: HugePool,
    maps: Mutex<HugeMaps>,
    /// The fork copies of a privately mapped object (the kernel finds them
    /// through the file's `i_mmap`), for the owner's `unmap_ref_private`.
    family: Arc<Mutex<Vec<Weak<HugeInode>>>>,
}

impl HugeInode {
    /// State for a new object of pool `h`.
    pub fn new(pool: HugePool, h: usize) -> Arc<Self> {
        Arc::new(HugeInode {
            h,
            pool,
            maps: Mutex::new(HugeMaps::default()),
            family: Arc::default(),
        })
    }

    /// The state a fork child's copy of the object holds: the same, for
    /// an object only mapped shared; for one mapped private, state of its
    /// own (`hugetlb_dup_vma_private`: the child's VMAs have no
    /// reservations) that maps the parent's private pages
    /// (`copy_hugetlb_page_range`; the child then drops those its copied
    /// VMAs do not cover, `mm_ops`'s `hugetlb_fork_prune`).
    pub fn fork_copy(self: &Arc<Self>) -> Arc<Self> {
        let m = self.maps();
        if !m.private {
            drop(m);
            return self.clone();
        }
        let pages = {
            let _pool = self.pool.lock();
            m.priv_pages.clone()
        };
        drop(m);
        let child = Arc::new(HugeInode {
            h: self.h,
            pool: self.pool.clone(),
            maps: Mutex::new(HugeMaps {
                priv_pages: pages,
                private: true,
                copy: true,
                ..HugeMaps::default()
            }),
            family: self.family.clone(),
        });
        let mut family = self.family.lock().unwrap_or_else(|e| e.into_inner());
        family.retain(|w| w.strong_count() > 0);
        family.push(Arc::downgrade(&child));
        child
    }

    /// `unmap_ref_private`: the owner takes `page` (at index `idx`) back
    /// from the fork copies that map it, which are marked
    /// [`unmapped`](HugeMaps::unmapped). Call with no lock held.
    pub fn unmap_from_copies(&self, idx: u64, page: &HugePage) {
        let copies: Vec<Arc<HugeInode>> = {
            let family = self.family.lock().unwrap_or_else(|e| e.into_inner());
            family.iter().filter_map(Weak::upgrade).collect()
        };
        for c in copies.iter().filter(|c| !core::ptr::eq(&***c, self)) {
            let mut m = c.maps();
            if m.priv_pages.get(&idx).is_some_and(|p| p.same(page)) {
                let p = m.priv_pages.remove(&idx).expect("present");
                m.unmapped = true;
                let mut pool = self.pool.lock();
                p.release(&mut pool[self.h]);
            }
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
        h.free += m.cached.len() as u64;
        for (_, p) in std::mem::take(&mut m.priv_pages) {
            p.release(h);
        }
    }
}
