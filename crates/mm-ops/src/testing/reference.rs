//! A deliberately simple reference model of the address space: a
//! page-granular [`RangeMap`] from page number to the attributes of the VMA
//! covering it, with the kernel's rules stated declaratively on top.
//!
//! Adjacent pages with equal [`Seg`] values coalesce into one range, which
//! *is* one VMA. Each VMA carries an identity (`id`) so that two VMAs the
//! kernel keeps apart (for instance the halves of a split that a failed call
//! left behind) never coalesce by accident; a merge is an explicit relabel
//! of the merged range with the surviving VMA's value. The rules follow
//! `mm/vma.c` (`is_mergeable_vma`, `is_mergeable_anon_vma`,
//! `can_vma_merge_right`, `vma_merge_existing_range`), `mm/mprotect.c`,
//! `mm/mmap.c` and `mm/memory.c`, but written over pages instead of a tree.

use std::collections::BTreeMap;
use std::ops::Range;

use mm_core::VmFlags;
use rangemap::RangeMap;

/// Attributes of the VMA covering a page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seg {
    /// Identity of the VMA.
    pub id: u32,
    /// `vm_flags`.
    pub flags: VmFlags,
    /// Identity of the open file description (`None`: anonymous).
    pub file: Option<u32>,
    /// `vm_pgoff - vm_start / PAGE_SIZE`: equal for pages of one linear mapping.
    pub base: u64,
    /// `anon_vma` identity.
    pub anon: Option<u32>,
}

/// One VMA of the reference: its page range and attributes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RVma {
    /// First page.
    pub start: u64,
    /// One past the last page.
    pub end: u64,
    /// Attributes.
    pub seg: Seg,
}

impl RVma {
    /// `vm_pgoff`.
    pub fn pgoff(&self) -> u64 {
        self.seg.base.wrapping_add(self.start)
    }
    /// Pages.
    pub fn pages(&self) -> u64 {
        self.end - self.start
    }
}

/// The pages of the address space.
#[derive(Clone, Debug, Default)]
pub struct Layout {
    map: RangeMap<u64, Seg>,
    next_id: u32,
    next_anon: u32,
    /// Boundaries (pages) between VMAs that the kernel leaves unmerged even
    /// though the two could merge: made by operations that never merge (a
    /// stack growing down to its neighbour, splits of a failed call) and
    /// not revisited since.
    pub unmerged: std::collections::BTreeSet<u64>,
}

impl Layout {
    /// All VMAs in address order.
    pub fn vmas(&self) -> Vec<RVma> {
        self.map
            .iter()
            .map(|(r, s)| RVma {
                start: r.start,
                end: r.end,
                seg: s.clone(),
            })
            .collect()
    }

    /// The VMA covering `page`.
    pub fn at(&self, page: u64) -> Option<RVma> {
        self.map.get_key_value(&page).map(|(r, s)| RVma {
            start: r.start,
            end: r.end,
            seg: s.clone(),
        })
    }

    /// The first VMA ending above `page` (`find_vma`).
    pub fn find(&self, page: u64) -> Option<RVma> {
        self.map.overlapping(page..u64::MAX).next().map(|(r, s)| RVma {
            start: r.start,
            end: r.end,
            seg: s.clone(),
        })
    }

    /// The VMA ending exactly at `page`.
    pub fn ending_at(&self, page: u64) -> Option<RVma> {
        page.checked_sub(1).and_then(|p| self.at(p)).filter(|v| v.end == page)
    }

    /// The VMA starting exactly at `page`.
    pub fn starting_at(&self, page: u64) -> Option<RVma> {
        self.at(page).filter(|v| v.start == page)
    }

    /// Is any page of `r` mapped?
    pub fn overlaps(&self, r: Range<u64>) -> bool {
        self.map.overlaps(&r)
    }

    /// Free ranges inside `r`, in ascending order.
    pub fn gaps(&self, r: Range<u64>) -> Vec<Range<u64>> {
        self.map.gaps(&r).collect()
    }

    /// A fresh VMA identity.
    pub fn fresh_id(&mut self) -> u32 {
        self.next_id += 1;
        self.next_id
    }

    /// A fresh `anon_vma` identity.
    pub fn fresh_anon(&mut self) -> u32 {
        self.next_anon += 1;
        self.next_anon
    }

    /// Sets the attributes of `r` (one VMA).
    pub fn set(&mut self, r: Range<u64>, seg: Seg) {
        self.map.insert(r, seg);
    }

    /// Unmaps `r`.
    pub fn clear(&mut self, r: Range<u64>) {
        self.map.remove(r);
    }

    /// Makes `page` a VMA boundary as `__split_vma` would: the part the
    /// kernel allocates anew (below `page` if `new_below`) gets a fresh id.
    pub fn split_at(&mut self, page: u64, new_below: bool) {
        let Some(v) = self.at(page).filter(|v| v.start < page) else {
            return;
        };
        let id = self.fresh_id();
        let piece = if new_below { v.start..page } else { page..v.end };
        self.set(piece, Seg { id, ..v.seg });
    }

    /// An operation on `r` reconsiders merges at its boundaries: forget
    /// the unmerged boundaries in `[r.start, r.end]`.
    pub fn touch(&mut self, r: Range<u64>) {
        let keep = self.unmerged.split_off(&r.start);
        self.unmerged.extend(keep.into_iter().filter(|&b| b > r.end));
    }

    /// Sets `anon` on a whole VMA.
    pub fn set_anon(&mut self, v: &RVma, anon: Option<u32>) {
        self.set(v.start..v.end, Seg { anon, ..v.seg.clone() });
    }
}

/// `is_mergeable_vma` + pgoff contiguity + `is_mergeable_anon_vma` for `a`
/// directly below `b` (no fork children exist here).
pub fn mergeable(a: &Seg, b: &Seg) -> bool {
    (a.flags ^ b.flags).0 & !VmFlags::IGNORE_MERGE.0 == 0
        && !a.flags.intersects(VmFlags::SPECIAL)
        && a.file == b.file
        && a.base == b.base
        && anon_compatible(a.anon, b.anon)
}

/// Two `anon_vma`s can live in one VMA if at most one exists, or they are one.
pub fn anon_compatible(a: Option<u32>, b: Option<u32>) -> bool {
    a.is_none() || b.is_none() || a == b
}

/// Places a new range `[s, e)` with attributes `new` (whose `id` is unused),
/// merging with the neighbours as `vma_merge_new_range` does; `just_expand`
/// only allows the left neighbour (brk).
pub fn place_new(l: &mut Layout, s: u64, e: u64, mut new: Seg, just_expand: bool) {
    let left = l.ending_at(s).filter(|p| mergeable(&p.seg, &new));
    let right = if just_expand {
        None
    } else {
        l.starting_at(e).filter(|n| mergeable(&new, &n.seg))
    };
    // Left and right must also agree with each other (the merge degrades to
    // the left side otherwise).
    let right = right.filter(|n| left.as_ref().is_none_or(|p| anon_compatible(p.seg.anon, n.seg.anon)));
    match (left, right) {
        (Some(p), Some(n)) => {
            let anon = p.seg.anon.or(n.seg.anon);
            l.set(p.start..n.end, Seg { anon, ..p.seg });
        }
        (Some(p), None) => l.set(p.start..e, p.seg),
        (None, Some(n)) => l.set(s..n.end, n.seg),
        (None, None) => {
            new.id = l.fresh_id();
            l.set(s..e, new);
        }
    }
}

/// Changes `[a, b)` of VMA `v` to `flags`, merging or splitting as
/// `vma_modify` does; returns the range of the VMA that now holds `[a, b)`.
pub fn modify(l: &mut Layout, v: &RVma, a: u64, b: u64, flags: VmFlags) -> Range<u64> {
    let new = Seg { flags, ..v.seg.clone() };
    let special = flags.intersects(VmFlags::SPECIAL);
    let left_side = a == v.start;
    let right_side = b == v.end;
    let prev = if left_side && !special {
        l.ending_at(a).filter(|p| mergeable(&p.seg, &new))
    } else {
        None
    };
    let next = if right_side && !special {
        l.starting_at(b)
            .filter(|n| mergeable(&new, &n.seg))
            .filter(|n| prev.as_ref().is_none_or(|p| anon_compatible(p.seg.anon, n.seg.anon)))
    } else {
        None
    };
    match (prev, next) {
        (Some(p), Some(n)) => {
            let anon = p.seg.anon.or(n.seg.anon).or(v.seg.anon);
            l.set(p.start..n.end, Seg { anon, ..p.seg });
            p.start..n.end
        }
        (Some(p), None) => {
            let anon = p.seg.anon.or(v.seg.anon);
            l.set(p.start..b, Seg { anon, ..p.seg });
            p.start..b
        }
        (None, Some(n)) => {
            let anon = n.seg.anon.or(v.seg.anon);
            l.set(a..n.end, Seg { anon, ..n.seg });
            a..n.end
        }
        (None, None) => {
            if a > v.start {
                l.split_at(a, true);
            }
            if b < v.end {
                l.split_at(b, false);
            }
            l.set(a..b, new);
            a..b
        }
    }
}

/// `find_mergeable_anon_vma` + `anon_vma_prepare` on the VMA at `page`.
pub fn anon_prepare(l: &mut Layout, page: u64) {
    let Some(v) = l.at(page) else { return };
    if v.seg.anon.is_some() {
        return;
    }
    // Neighbours whose flags differ only in access bits may share one.
    let compatible = |a: &RVma, b: &RVma| {
        a.end == b.start
            && a.seg.file == b.seg.file
            && (a.seg.flags ^ b.seg.flags).0 & !(VmFlags::ACCESS_FLAGS.0 | VmFlags::IGNORE_MERGE.0) == 0
            && a.seg.base == b.seg.base
    };
    let from_next = l
        .starting_at(v.end)
        .filter(|n| compatible(&v, n))
        .and_then(|n| n.seg.anon);
    let from_prev = l
        .ending_at(v.start)
        .filter(|p| compatible(p, &v))
        .and_then(|p| p.seg.anon);
    let anon = from_next.or(from_prev).unwrap_or_else(|| l.fresh_anon());
    l.set_anon(&v, Some(anon));
}

/// Counters derived from the layout (`vm_stat_account`'s split).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// `map_count`.
    pub map_count: u64,
    /// `total_vm`.
    pub total_vm: u64,
    /// `data_vm`.
    pub data_vm: u64,
    /// `exec_vm`.
    pub exec_vm: u64,
    /// `stack_vm`.
    pub stack_vm: u64,
    /// `locked_vm`.
    pub locked_vm: u64,
}

impl Layout {
    /// The counters a kernel would hold for this layout.
    pub fn counters(&self) -> Counters {
        let mut c = Counters::default();
        for v in self.vmas() {
            let (f, n) = (v.seg.flags, v.pages());
            c.map_count += 1;
            c.total_vm += n;
            if f.is_exec_mapping() {
                c.exec_vm += n;
            } else if f.is_stack_mapping() {
                c.stack_vm += n;
            } else if f.is_data_mapping() {
                c.data_vm += n;
            }
            if f.contains(VmFlags::LOCKED) {
                c.locked_vm += n;
            }
        }
        c
    }
}

/// A file of the reference world.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RFile {
    /// Identity of the open file description.
    pub desc: u32,
    /// Path shown in maps (with ` (deleted)` where the kernel adds it).
    pub path: String,
    /// Opened for reading.
    pub readable: bool,
    /// Opened for writing.
    pub writable: bool,
    /// Size in pages (shared by descriptions of one inode through `size_of`).
    pub inode: u32,
    /// A disk file (ext4-like): large mappings are THP-aligned.
    pub thp: bool,
}

/// Inode sizes, in bytes.
pub type Sizes = BTreeMap<u32, u64>;
