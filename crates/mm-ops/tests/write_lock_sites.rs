//! Which VMAs a write section write-locks, checked inside the section.

use mm_core::{MmConfig, MmStruct, VmFlags, VmaView};
use mm_ops::kernel::mmap::vm_mmap_pgoff;
use mm_ops::kernel::vma_region::do_vmi_munmap;
use mm_ops::uapi::*;

const P: u64 = PAGE_SIZE;

fn three_vmas() -> MmStruct {
    let mm: MmStruct = MmStruct::new(MmConfig::default());
    for (i, prot) in [PROT_READ, PROT_READ | PROT_WRITE, PROT_READ].into_iter().enumerate() {
        vm_mmap_pgoff(
            &mm,
            None,
            0x1000_0000 + i as u64 * 2 * P,
            2 * P,
            prot,
            MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
            0,
        )
        .unwrap();
    }
    assert_eq!(mm.read().vma_count(), 3);
    mm
}

/// A munmap over three VMAs whose last one is sealed fails with EPERM,
/// after the gather has write-locked the first two (as the kernel's loop
/// does); the sealed one is not locked, and nothing is unmapped.
#[test]
fn a_failed_gather_leaves_the_earlier_vmas_locked() {
    let mm = three_vmas();
    let mut w = mm.write();
    let ids: Vec<_> = (0..3).map(|i| w.find_vma(0x1000_0000 + i * 2 * P).unwrap()).collect();
    let f = w.vma(ids[2]).flags;
    w.vma_set_flags(ids[2], VmFlags(f.0 | VmFlags::SEALED.0));
    // Setting the flags locked it; take a fresh section to start clean.
    drop(w);
    let mut w = mm.write();
    assert!(ids.iter().all(|&id| !w.vma_is_write_locked(id)));
    assert_eq!(do_vmi_munmap(&mut w, 0x1000_0000, 6 * P), Err(Errno::EPERM));
    assert!(w.vma_is_write_locked(ids[0]));
    assert!(w.vma_is_write_locked(ids[1]));
    assert!(!w.vma_is_write_locked(ids[2]));
    drop(w);
    assert_eq!(mm.read().vma_count(), 3);
}

/// An mprotect that changes nothing locks nothing; one that changes the
/// middle VMA locks it and the neighbours it merges with.
#[test]
fn mprotect_locks_what_it_changes() {
    let mm = three_vmas();
    let mut w = mm.write();
    let ids: Vec<_> = (0..3).map(|i| w.find_vma(0x1000_0000 + i * 2 * P).unwrap()).collect();
    mm_ops::kernel::mprotect::mprotect_locked(&mut w, 0x1000_0000, 0x1000_0000 + 2 * P, PROT_READ, 0).unwrap();
    assert!(ids.iter().all(|&id| !w.vma_is_write_locked(id)), "no change, no lock");
    mm_ops::kernel::mprotect::mprotect_locked(&mut w, 0x1000_0000 + 2 * P, 0x1000_0000 + 4 * P, PROT_READ, 0).unwrap();
    assert!(w.vma_is_write_locked(ids[0]), "prev grows over the middle");
    drop(w);
    assert_eq!(mm.read().vma_count(), 1);
}
