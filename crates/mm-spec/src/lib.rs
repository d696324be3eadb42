//! Speculative lockless VMA lookups, validated by `mm_lock_seq`.
//!
//! | module | what | kernel counterpart |
//! |---|---|---|
//! | [`lookup`] | speculative `vma_lookup` with fallback, counters | `lock_vma_under_rcu` style readers, `mmap_lock_speculate_*` |
//! | [`oracle`] | expected fault outcomes, for checkers | `arch/x86/mm/fault.c` |
//! | [`uprobe`] | address → (file identity, file offset) | `find_active_uprobe_speculative` (`kernel/events/uprobes.c`) |
//! | [`stress`] | real threads: writers mutate, readers speculate, every validated read checked | — |
//!
//! The contract every policy but `seed-v1` must keep: a validated
//! speculative result equals what the locked lookup returned at the
//! sequence number the reader started from. On x86-64 (TSO) real threads
//! cannot show the v1 reorderings; the loom tests of this crate are the
//! proof (`cargo xtask loom`).
//!
//! ```
//! use mm_core::{MmConfig, MmStruct, Upstream};
//! use mm_spec::lookup::{Spec, SpecStats, vma_lookup, vma_lookup_speculative};
//!
//! let mm: MmStruct<Upstream> = MmStruct::new(MmConfig::default());
//! // Nothing mapped: a validated "no VMA".
//! assert!(matches!(vma_lookup_speculative(&mm, 0x1000), Spec::Valid { value: None, .. }));
//! let stats = SpecStats::default();
//! assert_eq!(vma_lookup(&mm, 0x1000, &stats), None);
//! assert_eq!(stats.snapshot().successes, 1);
//! ```

pub mod lookup;
pub mod oracle;
#[cfg(not(loom))]
pub mod stress;
pub mod uprobe;
