//! 5-level page tables (x86 `la57`): `TASK_SIZE` is 2^56 − 4 KiB, but
//! `mmap` places a mapping above the 47-bit `DEFAULT_MAP_WINDOW` only for
//! a hint above it (`find_start_end`, `arch_get_unmapped_area_topdown`,
//! `mmap_address_hint_valid` in `arch/x86/kernel/sys_x86_64.c` and
//! `arch/x86/mm/hugetlbpage.c`), and ranges up there are valid for
//! `munmap` and `MAP_FIXED`. The expected values are those rules, worked
//! by hand: the development host has 4-level tables, so no differential
//! test has run with five (the twin turns them on where `la57` is set).

use mm_ops::uapi::*;
use mm_ops::{Errno, Task, TaskBuilder};

const P: u64 = PAGE_SIZE;
const WINDOW: u64 = (1 << 47) - P;

fn task(la57: bool) -> Task {
    TaskBuilder::new()
        .set("la57", if la57 { "1" } else { "0" })
        .unwrap()
        .build()
        .unwrap()
}

fn anon(t: &mut Task, hint: u64, flags: u64) -> Result<u64, Errno> {
    t.mmap(hint, 4 * P, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | flags, -1, 0)
}

#[test]
fn only_a_high_hint_maps_above_the_47_bit_window() {
    let mut t = task(true);
    let low = anon(&mut t, 0, 0).unwrap();
    assert!(low < WINDOW);
    // The same placement as with 4-level tables without a hint.
    assert_eq!(low, anon(&mut task(false), 0, 0).unwrap());
    assert_eq!(anon(&mut t, 1 << 50, 0), Ok(1 << 50));
    // Taken: the search covers the whole space, from its top down.
    let again = anon(&mut t, 1 << 50, 0).unwrap();
    assert!(again > WINDOW && again != 1 << 50, "{again:#x}");
    // A hint that straddles the window's end is no hint.
    assert!(anon(&mut t, WINDOW - P, 0).unwrap() < WINDOW);
    // Beyond TASK_SIZE it is no hint either, but being above the window
    // it still opens the whole space.
    let beyond = anon(&mut t, 1 << 57, 0).unwrap();
    assert!(beyond > WINDOW && beyond < 1 << 56, "{beyond:#x}");
    assert_eq!(anon(&mut t, 1 << 52, MAP_FIXED), Ok(1 << 52));
    assert_eq!(t.munmap(1 << 52, 4 * P), Ok(()));
    assert_eq!(t.munmap(1 << 55, P), Ok(()));
}

#[test]
fn with_four_levels_the_window_is_all() {
    let mut t = task(false);
    assert!(anon(&mut t, 1 << 50, 0).unwrap() < WINDOW);
    assert_eq!(anon(&mut t, 1 << 52, MAP_FIXED), Err(Errno::ENOMEM));
    assert_eq!(t.munmap(1 << 52, P), Err(Errno::EINVAL));
}
