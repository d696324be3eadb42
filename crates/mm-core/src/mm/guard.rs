//! The locked sections of an address space: [`MmRead`]
//! (`mmap_read_lock`) and [`MmWrite`] (`mmap_write_lock`, with
//! `mmap_write_downgrade` and the publication of the `mm_struct` fields
//! that lockless maps readers read at `mmap_write_unlock`), and
//! [`NoMem`], the failure of the write section's primitives.

use super::{MmShared, MmState};
use crate::file::{FileSlot, FileTable};
use crate::mmap_lock::{MmapReadGuard, MmapWriteGuard};
use crate::ordering::BarrierPolicy;
use crate::slab::Slab;
use crate::sync::{Mutex, MutexGuard};

/// A read-locked mm (`mmap_read_lock`).
pub struct MmRead<'a, P: BarrierPolicy> {
    pub(super) g: MmapReadGuard<'a, MmState, P>,
    pub(super) sh: &'a MmShared,
    pub(super) files: &'a Mutex<FileTable>,
}

impl<'a, P: BarrierPolicy> MmRead<'a, P> {
    /// `mm->brk`.
    pub fn state_brk(&self) -> u64 {
        self.g.brk
    }

    /// PKRU ([`MmStruct::pkru`](crate::MmStruct::pkru)).
    pub fn pkru(&self) -> u32 {
        crate::ordering::read_once_u32(&self.sh.pkru)
    }

    /// The file table.
    pub fn files(&self) -> MutexGuard<'a, FileTable> {
        self.files.lock()
    }

    /// Checks that the published copy agrees with the writer's copy.
    pub fn check_published(&self) -> Result<(), String> {
        check_published(&self.g, self.sh)
    }
}

/// A write-locked mm (`mmap_write_lock`), with the VMA primitives of
/// `mm/vma.h`. Dropping it is `mmap_write_unlock`.
pub struct MmWrite<'a, P: BarrierPolicy> {
    /// The guard (released in place by `downgrade`).
    pub(crate) g: MmapWriteGuard<'a, MmState, P>,
    pub(crate) sh: &'a MmShared,
    pub(super) files: &'a Mutex<FileTable>,
    /// The section's position in the tree (`struct vma_iterator`), carried
    /// from one step of the system call to the next: see [`crate::vma_iter`].
    pub(crate) vmi: core::cell::Cell<crate::vma_iter::VmaIter>,
}

impl<'a, P: BarrierPolicy> MmWrite<'a, P> {
    #[inline]
    pub(crate) fn gr(&self) -> &MmapWriteGuard<'a, MmState, P> {
        &self.g
    }

    #[inline]
    pub(crate) fn gm(&mut self) -> &mut MmapWriteGuard<'a, MmState, P> {
        &mut self.g
    }

    /// Publishes the `mm_struct` fields that lock-free readers of
    /// `/proc/PID/maps` read (`vma_is_initial_heap`/`_stack` read
    /// `mm->brk`, `start_brk` and `start_stack` without `mmap_lock`); the
    /// end of the section orders them before its end bump.
    fn publish_mm_fields(&self) {
        let st: &MmState = self.gr();
        crate::ordering::write_once(&self.sh.brk, st.brk);
        crate::ordering::write_once(&self.sh.start_brk, st.start_brk);
        crate::ordering::write_once(&self.sh.start_stack, st.start_stack);
    }
}

impl<P: BarrierPolicy> Drop for MmWrite<'_, P> {
    /// `mmap_write_unlock`, after publishing the maps fields.
    fn drop(&mut self) {
        if self.g.is_held() {
            self.publish_mm_fields();
            let vmi = self.vmi.get();
            self.gm().last_vmi = vmi;
        }
    }
}

/// The VMA slab or tree is full (the caller maps this to `ENOMEM`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoMem;

impl<'a, P: BarrierPolicy> MmWrite<'a, P> {
    /// The writer-side state.
    #[inline]
    pub fn st(&mut self) -> &mut MmState {
        self.gm()
    }

    /// PKRU ([`MmStruct::pkru`](crate::MmStruct::pkru)).
    pub fn pkru(&self) -> u32 {
        crate::ordering::read_once_u32(&self.sh.pkru)
    }

    /// Sets PKRU ([`MmStruct::set_pkru`](crate::MmStruct::set_pkru)).
    pub fn set_pkru(&self, pkru: u32) {
        if self.sh.pkeys {
            crate::ordering::write_once_u32(&self.sh.pkru, pkru);
        }
    }

    /// The file table.
    pub fn files(&self) -> MutexGuard<'a, FileTable> {
        self.files.lock()
    }

    /// Published file slots.
    pub fn file_slots(&self) -> &'a Slab<FileSlot> {
        &self.sh.files
    }

    /// `mm_lock_seq` inside this write section (odd).
    #[inline]
    pub fn lock_seq(&self) -> u32 {
        self.gr().lock().seq()
    }

    /// `mmap_write_downgrade`.
    pub fn downgrade(mut self) -> MmRead<'a, P> {
        self.publish_mm_fields();
        self.g.last_vmi = self.vmi.get();
        let (sh, files) = (self.sh, self.files);
        // `self` drops released, which does nothing.
        MmRead {
            g: self.g.downgrade_in_place(),
            sh,
            files,
        }
    }

    /// Checks that the published copy agrees with the writer's copy.
    pub fn check_published(&self) -> Result<(), String> {
        check_published(self.gr(), self.sh)
    }
}

fn check_published(st: &MmState, sh: &MmShared) -> Result<(), String> {
    st.tree.check(&sh.tree)?;
    for e in st.tree.iter() {
        let v = &st.vmas[e.val as usize];
        if (v.start, v.end) != (e.start, e.end) {
            return Err(format!("tree entry {e:?} disagrees with VMA {v:?}"));
        }
        let s = sh.vmas.get(e.val).ok_or("unpublished VMA")?;
        if (s.start(), s.end(), s.pgoff(), s.flags(), s.file()) != (v.start, v.end, v.pgoff, v.flags, v.file) {
            return Err(format!("published VMA {} disagrees with {v:?}", e.val));
        }
    }
    Ok(())
}
