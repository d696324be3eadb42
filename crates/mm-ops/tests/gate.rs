//! The `[vsyscall]` gate area's line in `/proc/PID/maps`, by the boot
//! option `vsyscall=`: `xonly` (the default) `--xp`, `emulate` `r-xp`,
//! `none` no line (`arch/x86/entry/vsyscall/vsyscall_64.c`: `gate_vma`'s
//! flags, `get_gate_vma`). `ProcEnv` reads the mode from the process's
//! own maps.

use mm_ops::TaskBuilder;

fn last_line(mode: &str) -> String {
    let t = TaskBuilder::new().set("vsyscall", mode).unwrap().build().unwrap();
    t.maps().lines().last().unwrap_or("").to_string()
}

#[test]
fn the_gate_line_follows_the_mode() {
    assert!(last_line("xonly").starts_with("ffffffffff600000-ffffffffff601000 --xp "));
    assert!(last_line("emulate").starts_with("ffffffffff600000-ffffffffff601000 r-xp "));
    assert!(!last_line("none").contains("vsyscall"));
    assert!(TaskBuilder::new().set("vsyscall", "sometimes").is_err());
}

#[test]
fn this_host_s_mode_is_read_from_its_maps() {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let host = maps.lines().find(|l| l.ends_with("[vsyscall]"));
    let t = TaskBuilder::host().build().unwrap();
    let model = t.maps();
    let line = model.lines().find(|l| l.ends_with("[vsyscall]"));
    // The same permissions as this process's own gate line, or none.
    assert_eq!(
        host.map(|l| l.split_whitespace().nth(1).unwrap().to_string()),
        line.map(|l| l.split_whitespace().nth(1).unwrap().to_string())
    );
}
