//! The helper's initial address space: small, fixed, identical run to run.

mod common;

use common::{anon, maps, parse_maps};
use mm_host::{HostOptions, HostProcess, helper_path};
use mm_ops::uapi::{PROT_READ, PROT_WRITE};

#[test]
fn layout_is_identical_across_spawns() {
    let mut a = HostProcess::spawn().unwrap();
    let mut b = HostProcess::spawn().unwrap();
    assert_ne!(a.pid(), b.pid());
    assert_eq!(a.maps().unwrap(), b.maps().unwrap());
    assert_eq!(a.stat().unwrap(), b.stat().unwrap());
    // The same goes for the first mapping the kernel picks.
    assert_eq!(anon(&mut a, 3, PROT_READ), anon(&mut b, 3, PROT_READ));
    assert_eq!(a.maps().unwrap(), b.maps().unwrap());
}

#[test]
fn initial_layout_has_only_the_expected_vmas() {
    let mut h = HostProcess::spawn().unwrap();
    let lines = maps(&mut h);
    let names: Vec<&str> = lines.iter().map(|l| l.name.as_str()).collect();
    let helper = helper_path().to_str().unwrap();
    // text+rodata, bss, then the kernel's special mappings and the stack.
    assert_eq!(names[0], helper);
    assert_eq!(names[1], "");
    assert!(names.contains(&"[vdso]"));
    assert!(names.contains(&"[stack]"));
    assert!(!names.contains(&"[heap]"), "no brk area before brk grows");
    assert_eq!(lines[0].start, 0x40_0000);
    assert_eq!(lines[0].perms, "r-xp");
    assert_eq!(lines[1].start, lines[0].end);
    assert_eq!(lines[1].perms, "rw-p");
    assert!(lines.len() <= 8, "unexpected VMAs:\n{}", h.maps().unwrap());

    let st = h.stat().unwrap();
    assert_eq!(st.start_code, 0x40_0000);
    assert_eq!(st.start_brk, st.brk);
    assert_eq!(st.start_brk, lines[1].end, "the break starts right after bss");
    assert!(lines[1].start <= st.start_data && st.end_data <= st.start_brk);
    let stack = lines.iter().find(|l| l.name == "[stack]").unwrap();
    assert!(stack.start <= st.start_stack && st.start_stack < stack.end);
    assert_eq!(stack.end, 0x7fff_ffff_f000, "stack top without ASLR");
}

#[test]
fn first_mmap_lands_right_below_the_vdso_area() {
    let mut h = HostProcess::spawn().unwrap();
    let lowest_special = maps(&mut h)
        .iter()
        .filter(|l| l.name.starts_with("[v"))
        .map(|l| l.start)
        .min()
        .unwrap();
    let addr = anon(&mut h, 2, PROT_READ | PROT_WRITE);
    assert_eq!(addr + 2 * 4096, lowest_special);
}

#[test]
fn unlimited_stack_lowers_mmap_base_but_stays_top_down() {
    // On x86-64 only ADDR_COMPAT_LAYOUT or vm.legacy_va_layout select the
    // bottom-up layout; an unlimited RLIMIT_STACK merely caps the stack gap
    // at 5/6 of the address space, so mmap_base drops to about TASK_SIZE/6.
    if std::fs::read_to_string("/proc/sys/vm/legacy_va_layout").unwrap().trim() != "0" {
        eprintln!("vm.legacy_va_layout is set; skipping");
        return;
    }
    let opts = HostOptions {
        stack_limit: Some(libc::RLIM_INFINITY),
        ..HostOptions::default()
    };
    let mut h = HostProcess::spawn_with(&opts).unwrap();
    let task_size: u64 = 0x7fff_ffff_f000;
    let vdso = maps(&mut h).into_iter().find(|l| l.name == "[vdso]").unwrap();
    assert_eq!(vdso.end, (task_size - task_size / 6 * 5 + 4095) & !4095);
    let a = anon(&mut h, 1, PROT_READ);
    let b = anon(&mut h, 1, PROT_READ);
    assert!(a < vdso.start, "{a:#x}");
    assert_eq!(b + 4096, a, "still top-down");
}

#[test]
fn aslr_on_moves_the_stack() {
    let randomize = std::fs::read_to_string("/proc/sys/kernel/randomize_va_space").unwrap();
    if randomize.trim() == "0" {
        eprintln!("ASLR is disabled system-wide; nothing to compare");
        return;
    }
    let opts = HostOptions {
        aslr: true,
        ..HostOptions::default()
    };
    let stacks: Vec<u64> = (0..3)
        .map(|_| HostProcess::spawn_with(&opts).unwrap().stat().unwrap().start_stack)
        .collect();
    assert!(stacks.windows(2).any(|w| w[0] != w[1]), "{stacks:x?}");
}

#[test]
fn maps_text_is_well_formed() {
    let mut h = HostProcess::spawn().unwrap();
    let text = h.maps().unwrap();
    assert!(text.ends_with('\n'));
    let lines = parse_maps(&text);
    assert!(lines.windows(2).all(|w| w[0].end <= w[1].start), "sorted, disjoint");
}
