//! `mmsim replay` of traces with several processes: fork gives the child a
//! copy, vfork shares, exec starts over, `--pid` selects a tree.
//!
//! The recorded results in these traces are what Linux gives (fork copies
//! the address space, vfork shares it, `MAP_FIXED_NOREPLACE` fails with
//! `EEXIST` on a mapped range); `--check` compares the model's with them.
//! The first anonymous mapping of an empty model lands right below
//! `mmap_base` (0x7ffff7fff000 with ASLR off and an 8 MiB stack limit).

mod common;

use common::replay;

const RW_ANON: &str = "PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS";
const NOREPLACE: &str = "PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED_NOREPLACE";

/// A fork child keeps the parent's mapping that the parent then unmaps; a
/// vfork child's mapping is the parent's too.
fn fork_and_vfork_trace() -> String {
    format!(
        "\
100 mmap(NULL, 8192, {RW_ANON}, -1, 0) = 0x7ffff7ffd000
100 fork() = 101
100 munmap(0x7ffff7ffd000, 8192) = 0
101 mmap(0x7ffff7ffd000, 8192, {NOREPLACE}, -1, 0) = -1 EEXIST (File exists)
100 mmap(0x7ffff7ffd000, 8192, {NOREPLACE}, -1, 0) = 0x7ffff7ffd000
101 +++ exited with 0 +++
100 vfork() = 102
102 mmap(NULL, 4096, {RW_ANON}, -1, 0) = 0x7ffff7ffc000
102 +++ exited with 0 +++
100 mmap(0x7ffff7ffc000, 4096, {NOREPLACE}, -1, 0) = -1 EEXIST (File exists)
100 munmap(0x7ffff7ffc000, 4096) = 0
100 clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD, child_tidptr=0x7ffff7d8fa10) = 103
103 clone3({{flags=CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM, exit_signal=0}}, 88) = 104
104 mmap(NULL, 4096, {RW_ANON}, -1, 0) = 0x7ffff7ffc000
103 mmap(0x7ffff7ffc000, 4096, {NOREPLACE}, -1, 0) = -1 EEXIST (File exists)
100 mmap(NULL, 4096, {RW_ANON}, -1, 0) = 0x7ffff7ffc000
"
    )
}

#[test]
fn fork_copies_vfork_shares_and_threads_share() {
    let run = replay(&["--check"], &fork_and_vfork_trace());
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stderr.contains(" 0 divergences"), "{}", run.stderr);
    assert!(run.stderr.contains("4 processes"), "{}", run.stderr);
    // Once a second process appears, every line names its process.
    assert!(
        run.stdout
            .contains("101 mmap(0x7ffff7ffd000, 8192, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED_NOREPLACE, -1, 0) = -1 EEXIST"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_child_applied_to_its_parent_would_diverge() {
    // The same calls as one process: the child's EEXIST is wrong for the
    // parent, which unmapped the range. The check must see it.
    let one: String = fork_and_vfork_trace()
        .lines()
        .filter(|l| !l.contains("fork()") && !l.contains("clone"))
        .map(|l| format!("100 {}\n", l.split_once(' ').unwrap().1))
        .collect();
    let run = replay(&["--check"], &one);
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(run.stderr.contains("divergence: line 3"), "{}", run.stderr);
}

#[test]
fn pid_selects_one_tree() {
    let run = replay(&["--check", "--pid", "101"], &fork_and_vfork_trace());
    assert_eq!(run.code, Some(0), "{run:?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{}", run.stdout);
    assert!(lines[0].starts_with("101 mmap("), "{}", run.stdout);
    assert!(run.stderr.contains("1 checked"), "{}", run.stderr);
}

#[test]
fn an_exec_without_a_snapshot_is_not_checked() {
    // After the exec the kernel mapped the new program first: a model
    // without a snapshot cannot know where its first mmap lands.
    let trace = format!(
        "\
100 fork() = 101
101 execve(\"/bin/true\", [\"true\"], 0x7ffe0000 /* 3 vars */) = 0
101 mmap(NULL, 8192, {RW_ANON}, -1, 0) = 0x7ffff7fbd000
101 +++ exited with 0 +++
100 mmap(NULL, 8192, {RW_ANON}, -1, 0) = 0x7ffff7ffd000
"
    );
    let run = replay(&["--check"], &trace);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stderr.contains("1 process with no snapshot"), "{}", run.stderr);
    assert!(run.stderr.contains("2 checked"), "{}", run.stderr);
    // The same mmap in the parent is checked and wrong.
    let wrong = trace.replace("= 0x7ffff7ffd000", "= 0x7ffff7fbd000");
    let run = replay(&["--check"], &wrong);
    assert_eq!(run.code, Some(1), "{run:?}");
}

#[test]
fn strace_split_clone_gives_the_child_at_its_first_line() {
    // strace -f prints the parent's clone unfinished when the child runs
    // first.
    let trace = format!(
        "\
100 mmap(NULL, 8192, {RW_ANON}, -1, 0) = 0x7ffff7ffd000
100 clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD <unfinished ...>
101 munmap(0x7ffff7ffd000, 8192) = 0
100 <... clone resumed>, child_tidptr=0x7ffff7d8fa10) = 101
100 mmap(0x7ffff7ffd000, 8192, {NOREPLACE}, -1, 0) = -1 EEXIST (File exists)
101 mmap(0x7ffff7ffd000, 8192, {NOREPLACE}, -1, 0) = 0x7ffff7ffd000
"
    );
    let run = replay(&["--check"], &trace);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stderr.contains("2 processes"), "{}", run.stderr);
}

/// Parent and child are one inode for a file they share: after the child's
/// `ftruncate` the parent can populate its mapping to the new end (Linux
/// 6.18: `MADV_POPULATE_READ` past the end of a shared file mapping is
/// `EFAULT`), and after the child's `unlink` the parent's maps show the
/// file deleted (both measured with a C program here).
#[test]
fn a_childs_truncate_and_unlink_reach_its_parent() {
    let dir = common::TempDir::new("tree-size");
    let f = dir.file("f", 4096);
    let script = format!(
        "\
100 openat(AT_FDCWD, \"{f}\", O_RDWR) = 3
100 mmap(0x200000000, 16384, PROT_READ, MAP_SHARED|MAP_FIXED, 3, 0) = 0x200000000
100 madvise(0x200000000, 16384, MADV_POPULATE_READ) = -1 EFAULT (Bad address)
100 fork() = 101
101 ftruncate(3, 16384) = 0
101 unlink(\"{f}\") = 0
101 +++ exited with 0 +++
100 madvise(0x200000000, 16384, MADV_POPULATE_READ) = 0
"
    );
    let run = replay(&["--check", "--maps"], &script);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stderr.contains(" 0 divergences"), "{}", run.stderr);
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with("200000000-200004000 r--s") && l.ends_with(&format!("{f} (deleted)"))),
        "{}",
        run.stdout
    );
}

/// The file system is one for every process: a rename or unlink by one
/// process changes the names every other process's maps show, a forked
/// child's, its parent's and an unrelated process's alike (Linux: `d_path`
/// of the one dentry). A rename onto a mapped file's name shows that file
/// deleted everywhere.
#[test]
fn renames_and_unlinks_reach_every_process() {
    let dir = common::TempDir::new("tree-rename");
    let a = dir.file("a", 4096);
    let b = dir.file("b", 4096);
    let c = dir.file("c", 4096);
    let moved = format!("{}/moved", dir.str());
    let script = format!(
        "\
100 openat(AT_FDCWD, \"{a}\", O_RDONLY) = 3
100 mmap(0x200000000, 4096, PROT_READ, MAP_SHARED|MAP_FIXED, 3, 0) = 0x200000000
100 openat(AT_FDCWD, \"{b}\", O_RDONLY) = 4
100 mmap(0x300000000, 4096, PROT_READ, MAP_SHARED|MAP_FIXED, 4, 0) = 0x300000000
100 openat(AT_FDCWD, \"{c}\", O_RDONLY) = 5
100 mmap(0x400000000, 4096, PROT_READ, MAP_SHARED|MAP_FIXED, 5, 0) = 0x400000000
100 fork() = 101
101 rename(\"{a}\", \"{moved}\") = 0
101 rename(\"{b}\", \"{c}\") = 0
101 +++ exited with 0 +++
"
    );
    let run = replay(&["--check", "--maps"], &script);
    assert_eq!(run.code, Some(0), "{run:?}");
    let line = |addr: &str| {
        run.stdout
            .lines()
            .find(|l| l.starts_with(addr))
            .unwrap_or_else(|| panic!("no {addr} in\n{}", run.stdout))
            .to_string()
    };
    assert!(line("200000000-").ends_with(&format!(" {moved}")), "{}", run.stdout);
    assert!(line("300000000-").ends_with(&format!(" {c}")), "{}", run.stdout);
    assert!(
        line("400000000-").ends_with(&format!(" {c} (deleted)")),
        "{}",
        run.stdout
    );
}
