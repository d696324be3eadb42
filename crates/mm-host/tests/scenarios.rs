//! Named differential scenarios after the kernel's userspace VMA tests,
//! `tools/testing/vma/vma.c` (merging, splitting, expanding, `anon_vma`
//! rules), expressed as system calls and run on the host kernel and on the
//! model side by side.
//!
//! Every call's result must be identical on both sides, and so must the
//! whole `/proc/PID/maps` (but dev and inode) and every VMA's `VmFlags` in
//! `/proc/PID/smaps` after every call. Each
//! scenario also asserts what the kernel test expects (boundaries, pgoffs,
//! number of VMAs) against the *host's* maps, so that a harness comparing
//! two wrong things would fail too.
//!
//! Each scenario is its own `#[test]` (named after it) on a fresh helper;
//! `summary` runs them all again in sequence and prints
//! `scenarios: N named scenarios, M calls, all identical to the host kernel`.
//! A scenario on which the model is known to diverge is listed with
//! `ignore "reason"` and skipped by both (`--ignored` shows the
//! divergence). With `MM_SCENARIOS_HOST_ONLY=1` the calls run on the host
//! only and just the kernel expectations are checked, which validates the
//! scenarios themselves (`-- --include-ignored` for all of them).
#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

#[path = "scenarios/advice.rs"]
mod advice;
#[path = "scenarios/extra.rs"]
mod extra;
#[path = "scenarios/harness.rs"]
mod harness;
#[path = "scenarios/vma_existing.rs"]
mod vma_existing;
#[path = "scenarios/vma_new.rs"]
mod vma_new;
#[path = "scenarios/vma_remap.rs"]
mod vma_remap;

use harness::{Scenario, run};

macro_rules! scenarios {
    ($($name:ident $(ignore $why:literal)? => $f:path,)*) => {
        $(
            #[test]
            $(#[ignore = $why])?
            fn $name() {
                run(stringify!($name), $f);
            }
        )*

        /// Every scenario: name, body, and the reason it is ignored.
        const ALL: &[(&str, Scenario, Option<&str>)] = &[
            $((stringify!($name), $f, scenarios!(@why $($why)?)),)*
        ];
    };
    (@why) => { None };
    (@why $why:literal) => { Some($why) };
}

scenarios! {
    // tools/testing/vma/vma.c
    simple_merge => vma_new::simple_merge,
    simple_modify => vma_existing::simple_modify,
    simple_expand => vma_new::simple_expand,
    simple_shrink => vma_new::simple_shrink,
    simple_shrink_mremap => vma_remap::simple_shrink_mremap,
    merge_new => vma_new::merge_new,
    merge_new_anon_vma => vma_new::merge_new_anon_vma,
    merge_new_file => vma_new::merge_new_file,
    vma_merge_special_flags => extra::vma_merge_special_flags,
    special_flags_mremap => vma_remap::special_flags_mremap,
    merge_existing => vma_existing::merge_existing,
    merge_existing_file => vma_existing::merge_existing_file,
    anon_vma_non_mergeable => vma_existing::anon_vma_non_mergeable,
    dup_anon_vma => vma_existing::dup_anon_vma,
    merge_extend => vma_remap::merge_extend,
    copy_vma => vma_remap::copy_vma,
    expand_only_mode_brk => vma_new::expand_only_mode_brk,
    mmap_region_basic => vma_new::mmap_region_basic,
    // Implied by it.
    account_noreserve => extra::account_noreserve,
    map_stack_nohugepage => extra::map_stack_nohugepage,
    map_locked_populate => extra::map_locked_populate,
    madvise_flags_block_merge => advice::madvise_flags_block_merge,
    growsdown => extra::growsdown,
    files_and_descriptors => extra::files_and_descriptors,
    pgoff_noncontiguous => extra::pgoff_noncontiguous,
    shared_anonymous => extra::shared_anonymous,
    mprotect_enomem_hole => extra::mprotect_enomem_hole,
    madvise_enomem_hole => advice::madvise_enomem_hole,
    mmap_fixed_over => extra::mmap_fixed_over,
    special_mapping_keeps_account => extra::special_mapping_keeps_account,
}

/// Runs every scenario that is not ignored, in order, and prints the count
/// (in host-only mode: every scenario, and only the host side).
#[test]
fn summary() {
    let host_only = harness::host_only();
    let (mut n, mut calls) = (0, 0);
    for &(name, f, why) in ALL {
        if let (Some(why), false) = (why, host_only) {
            println!("scenario {name}: skipped ({why})");
            continue;
        }
        let k = run(name, f);
        println!("scenario {name}: {k} calls");
        calls += k;
        n += 1;
    }
    if host_only {
        println!("scenarios (host only): {n} named scenarios, {calls} calls, kernel expectations hold");
    } else {
        mm_host::summary::report(
            "scenarios",
            &format!("scenarios: {n} named scenarios, {calls} calls, all identical to the host kernel"),
        );
    }
}
