//! The commit charge after calls that fail late: nothing may leak.

use mm_core::{MmConfig, MmStruct, VmaView};
use mm_ops::kernel::mmap::{vm_mmap_pgoff, vm_munmap};
use mm_ops::uapi::*;

const P: u64 = PAGE_SIZE;

fn committed(mm: &MmStruct) -> u64 {
    mm.read().state().committed
}

/// A private writable mapping is charged before its VMA is linked; when
/// the link fails (no VMA slot left), the charge is given back
/// (`__mmap_region`'s `unacct_error`), and so is a new shmem object's.
#[test]
fn a_failed_link_gives_its_charge_back() {
    let cfg = MmConfig {
        vma_capacity: 4,
        ..MmConfig::default()
    };
    let mm: MmStruct = MmStruct::new(cfg);
    let rw = PROT_READ | PROT_WRITE;
    let mut n = 0;
    // Alternate protections so that nothing merges, until no slot is left.
    let err = loop {
        let prot = if n % 2 == 0 { rw } else { PROT_READ };
        match vm_mmap_pgoff(
            &mm,
            None,
            0x1000_0000 + n * 2 * P,
            P,
            prot,
            MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
            0,
        ) {
            Ok(_) => n += 1,
            Err(e) => break e,
        }
        assert!(n < 100, "the slab never ran out");
    };
    assert_eq!(err, Errno::ENOMEM);
    let charged = committed(&mm);
    assert_eq!(charged, n.div_ceil(2), "one page per writable mapping");
    let e = vm_mmap_pgoff(&mm, None, 0x2000_0000, 16 * P, rw, MAP_PRIVATE | MAP_ANONYMOUS, 0).unwrap_err();
    assert_eq!(e, Errno::ENOMEM);
    assert_eq!(committed(&mm), charged, "a failed private mapping keeps no charge");
    let e = vm_mmap_pgoff(&mm, None, 0x2000_0000, 16 * P, rw, MAP_SHARED | MAP_ANONYMOUS, 0).unwrap_err();
    assert_eq!(e, Errno::ENOMEM);
    assert_eq!(committed(&mm), charged, "a failed shared mapping keeps no charge");
    assert_eq!(mm.files().live_files(), 0, "nor a file");
}

/// A shared anonymous mapping's shmem object is charged while it lives:
/// across a split, until its last VMA is gone.
#[test]
fn the_shmem_charge_lives_as_long_as_the_object() {
    let mm: MmStruct = MmStruct::new(MmConfig::default());
    let a = vm_mmap_pgoff(&mm, None, 0, 8 * P, PROT_READ, MAP_SHARED | MAP_ANONYMOUS, 0).unwrap();
    assert_eq!(committed(&mm), 8);
    vm_munmap(&mm, a + 2 * P, 2 * P).unwrap();
    assert_eq!(mm.read().vma_count(), 2);
    assert_eq!(committed(&mm), 8, "the object is still there");
    vm_munmap(&mm, a, 2 * P).unwrap();
    assert_eq!(committed(&mm), 8);
    vm_munmap(&mm, a + 4 * P, 4 * P).unwrap();
    assert_eq!(committed(&mm), 0, "gone with its last VMA");
    let b = vm_mmap_pgoff(
        &mm,
        None,
        0,
        8 * P,
        PROT_READ,
        MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE,
        0,
    )
    .unwrap();
    assert_eq!(committed(&mm), 0, "MAP_NORESERVE: no charge");
    vm_munmap(&mm, b, 8 * P).unwrap();
}

/// `shm_close` → `shm_destroy`: a System V segment removed while attached
/// is destroyed when its last attach goes, however it goes (`munmap`, a
/// fork child's exit), and `shmem_unacct_size` gives its commit charge
/// back then, before the next call (`ipc/shm.c`).
#[test]
fn a_removed_segment_gives_its_charge_back_at_its_last_detach() {
    let mut t: mm_ops::Task = mm_ops::Task::new(MmConfig::default());
    let base = t.mm().read().state().committed;
    let id = t.shmget(0, 8 * PAGE_SIZE, 0o1600, None).unwrap();
    let a = t.shmat(id, 0, 0).unwrap();
    assert_eq!(t.mm().read().state().committed, base + 8, "newseg charges the segment");
    t.shmctl_rmid(id).unwrap();
    assert_eq!(t.mm().read().state().committed, base + 8, "still attached");
    // munmap, not shmdt, removes the last attach.
    t.munmap(a, 8 * PAGE_SIZE).unwrap();
    assert_eq!(t.mm().read().state().committed, base, "destroyed at the munmap");
    assert_eq!(t.shmat(id, 0, 0), Err(Errno::EINVAL));

    // The last attach in a fork child: destroyed once the child is gone.
    let id = t.shmget(0, 4 * PAGE_SIZE, 0o1600, None).unwrap();
    let a = t.shmat(id, 0, 0).unwrap();
    let child = t.fork().unwrap();
    t.apply(&mm_ops::Call::Shmdt { addr: a }, None);
    t.apply(&mm_ops::Call::ShmctlRmid { id }, None);
    assert_eq!(t.mm().read().state().committed, base + 4, "the child still maps it");
    drop(child);
    t.apply(&mm_ops::Call::Brk { addr: 0 }, None);
    assert_eq!(
        t.mm().read().state().committed,
        base,
        "destroyed after the child's exit"
    );
}

/// `SHM_HUGETLB` charges no commitment, and who may ask for it is
/// `can_do_hugetlb_shm` (`fs/hugetlbfs/inode.c`): `CAP_IPC_LOCK`, or the
/// file-system gid or a supplementary group equal to
/// `vm.hugetlb_shm_group`; anyone else gets `EPERM`, before the pool is
/// asked (so also with `SHM_NORESERVE`).
#[test]
fn sysv_huge_pages_need_the_capability_or_the_group() {
    const HUGE_NORESERVE: u64 = 0o1000 | 0o4000 | 0o10000 | 0o600;
    let task = |cap: bool, fsgid: u32, groups: Vec<u32>, group: u32| {
        let cfg = MmConfig {
            cap_ipc_lock: cap,
            fsgid,
            groups,
            hugetlb_shm_group: group,
            ..MmConfig::default()
        };
        let t: mm_ops::Task = mm_ops::Task::new(cfg);
        t
    };
    let mut t = task(true, 1000, vec![], 0);
    let base = t.mm().read().state().committed;
    assert!(t.shmget(0, 3 << 20, HUGE_NORESERVE, None).is_ok(), "CAP_IPC_LOCK");
    assert_eq!(t.mm().read().state().committed, base, "no commit charge");
    // Without a pool, a reserving segment cannot be made.
    assert_eq!(t.shmget(0, 3 << 20, 0o5600, None), Err(Errno::ENOMEM));
    assert!(
        task(false, 7, vec![], 7).shmget(0, 1, HUGE_NORESERVE, None).is_ok(),
        "fsgid"
    );
    assert!(
        task(false, 1000, vec![4, 7], 7)
            .shmget(0, 1, HUGE_NORESERVE, None)
            .is_ok(),
        "a supplementary group"
    );
    assert_eq!(
        task(false, 1000, vec![4], 7).shmget(0, 1, HUGE_NORESERVE, None),
        Err(Errno::EPERM)
    );
    assert_eq!(
        task(false, 1000, vec![4], 7).shmget(0, 1, 0o5600, None),
        Err(Errno::EPERM),
        "EPERM before the pool's ENOMEM"
    );
    // An unknown huge page size comes first: EINVAL.
    assert_eq!(
        task(false, 1000, vec![], 7).shmget(0, 1, HUGE_NORESERVE | 25 << 26, None),
        Err(Errno::EINVAL)
    );
}
