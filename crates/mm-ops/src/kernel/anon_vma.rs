//! `anon_vma` reuse on a fault (`mm/rmap.c`): `__anon_vma_prepare` and
//! the `find_mergeable_anon_vma` rules of `mm/vma.c` that decide whether a
//! neighbour's `anon_vma` can be shared.

use mm_core::{AnonVmaId, FaultView, VmFlags, Vma, VmaId, VmaView};

use crate::uapi::PAGE_SHIFT;

/// `anon_vma_compatible`: adjacent, same file, flags equal but for access
/// bits, linear offsets.
fn anon_vma_compatible(a: &Vma, b: &Vma) -> bool {
    a.end == b.start
        && a.file == b.file
        && (a.flags ^ b.flags).0 & !(VmFlags::ACCESS_FLAGS.0 | VmFlags::IGNORE_MERGE.0) == 0
        && b.pgoff == a.pgoff + ((b.start - a.start) >> PAGE_SHIFT)
}

/// `reusable_anon_vma`'s chain test: only a neighbour whose
/// `anon_vma_chain` is singular (not a fork child's) lends its `anon_vma`.
fn reusable_anon_vma(a: AnonVmaId) -> bool {
    !a.is_fork_child()
}

/// `find_mergeable_anon_vma`: reuse a neighbour's `anon_vma` (next first)
/// so that a later mprotect can merge the two again.
pub fn find_mergeable_anon_vma(mm: &impl VmaView, id: VmaId) -> Option<AnonVmaId> {
    let v = mm.vma(id);
    if let Some(n) = mm.vma_next(id) {
        let n = mm.vma(n);
        if anon_vma_compatible(&v, &n) && n.anon_vma.is_some_and(reusable_anon_vma) {
            return n.anon_vma;
        }
    }
    if let Some(p) = mm.vma_prev(id) {
        let p = mm.vma(p);
        if anon_vma_compatible(&p, &v) && p.anon_vma.is_some_and(reusable_anon_vma) {
            return p.anon_vma;
        }
    }
    None
}

/// `__anon_vma_prepare` (`mm/rmap.c`): gives `id` an `anon_vma`, reusing a
/// neighbour's when compatible. Works under the read lock, as on a fault.
pub fn anon_vma_prepare(mm: &impl FaultView, id: VmaId) {
    let _ptl = mm.page_table_lock();
    if mm.vma(id).anon_vma.is_some() {
        return;
    }
    let av = find_mergeable_anon_vma(mm, id).unwrap_or_else(|| mm.new_anon_vma());
    mm.set_anon_vma(id, Some(av));
}
