//! `mmsim replay` as a command: input, errors, the summary, the heap rules
//! and descriptors the trace did not open.

mod common;

use common::{TempDir, maps_keys, mmsim, replay};

#[test]
fn malformed_line_names_its_number_and_stops() {
    let script = "\
mmap(0x100000000, 4096, PROT_READ, MAP_PRIVATE|MAP_FIXED|MAP_ANONYMOUS, -1, 0) = 0x100000000
read(0, \"\", 1) = 0
mmap(NULL, 4096) = 0x7ffff7ffe000
munmap(0x100000000, 4096) = 0
";
    let run = replay(&["--maps"], script);
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(
        run.stderr
            .contains("mmsim replay: line 3: mmap takes 6 arguments, found 2: mmap(NULL, 4096)"),
        "{}",
        run.stderr
    );
    // The lines before it were printed; nothing after it, no maps, no summary.
    assert_eq!(
        run.stdout,
        "mmap(0x100000000, 4096, PROT_READ, MAP_PRIVATE|MAP_FIXED|MAP_ANONYMOUS, -1, 0) = 0x100000000\n"
    );
    assert!(!run.stderr.contains("replayed"), "{}", run.stderr);
}

#[test]
fn bad_flag_and_bad_result_are_errors() {
    let run = replay(&[], "\n\nmprotect(0x1000, 4096, PROT_BOGUS) = 0\n");
    assert_eq!(run.code, Some(2));
    assert!(run.stderr.contains("line 3: "), "{}", run.stderr);
    assert!(run.stderr.contains("PROT_BOGUS"), "{}", run.stderr);
    let run = replay(&[], "munmap(0x1000, 4096) = banana\n");
    assert_eq!(run.code, Some(2));
    assert!(run.stderr.contains("line 1: "), "{}", run.stderr);
}

#[test]
fn unfinished_call_never_resumed_is_an_error() {
    let script = "\
[pid 10] mmap(NULL, 4096, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0 <unfinished ...>
[pid 11] read(0, \"\", 1) = 0
[pid 11] +++ exited with 0 +++
";
    let run = replay(&[], script);
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(run.stderr.contains("line 1: "), "{}", run.stderr);
    assert!(run.stderr.contains("never resumed"), "{}", run.stderr);
}

#[test]
fn unfinished_and_resumed_halves_are_joined() {
    let script = "\
[pid 10] mmap(0x100000000, 4096, PROT_READ, MAP_PRIVATE|MAP_FIXED|MAP_ANONYMOUS, -1, 0 <unfinished ...>
[pid 11] write(1, \"x\", 1) = 1
[pid 10] <... mmap resumed>) = 0x100000000
";
    let run = replay(&[], script);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(
        run.stdout,
        "mmap(0x100000000, 4096, PROT_READ, MAP_PRIVATE|MAP_FIXED|MAP_ANONYMOUS, -1, 0) = 0x100000000\n"
    );
    assert!(
        run.stderr.contains("1 call replayed, 1 line skipped (write 1)"),
        "{}",
        run.stderr
    );
}

#[test]
fn missing_file_exits_2_naming_it() {
    let run = mmsim(&["replay", "/nonexistent/mmsim/trace.txt"], "");
    assert_eq!(run.code, Some(2));
    assert!(run.stderr.contains("/nonexistent/mmsim/trace.txt"), "{}", run.stderr);
    assert!(run.stdout.is_empty());
}

#[test]
fn skipped_lines_are_counted_and_dash_reads_stdin() {
    let script = "\
execve(\"/bin/true\", [\"true\"], 0x7ffe /* 0 vars */) = 0
brk(NULL)                               = 0x555555559000
read(3, \"\\177ELF\"..., 832) = 832
# a comment

read(3, \"\", 4096) = 0
write(1, \"hi\\n\", 3) = 3
mmap(NULL, 8192, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7ffff7ffd000
--- SIGCHLD {si_signo=SIGCHLD, si_code=CLD_EXITED} ---
exit_group(0)                           = ?
+++ exited with 0 +++
";
    let run = replay(&[], script);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(
        run.stdout,
        "brk(NULL) = 0x555555559000\n\
         mmap(NULL, 8192, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7ffff7ffd000\n"
    );
    let summary: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(
        summary,
        ["mmsim replay: 2 calls replayed, 9 lines skipped \
          (read 2, execve 1, exit_group 1, write 1, strace messages 2, blank or comments 2)"]
    );
    // The same from a file.
    let tmp = TempDir::new("cli-file");
    let path = tmp.file("trace.txt", 0);
    std::fs::write(&path, script).expect("write trace");
    let from_file = mmsim(&["replay", &path], "");
    assert_eq!(from_file.code, Some(0));
    assert_eq!(from_file.stdout, run.stdout);
    assert_eq!(from_file.stderr, run.stderr);
}

#[test]
fn brk_option_sets_the_initial_break() {
    let run = replay(
        &["--maps", "--brk", "0x555555559000"],
        "brk(NULL)\nbrk(0x55555557a000)\n",
    );
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(
        run.call_lines(),
        ["brk(NULL) = 0x555555559000", "brk(0x55555557a000) = 0x55555557a000"]
    );
    let heap: Vec<_> = maps_keys(&run.stdout)
        .into_iter()
        .filter(|k| k.name == "[heap]")
        .map(|k| (k.start, k.end, k.perms))
        .collect();
    assert_eq!(heap, [(0x5555_5555_9000, 0x5555_5557_a000, "rw-p".to_string())]);
    // The option wins over the trace's first recorded break.
    let run = replay(&["--brk", "4194304"], "brk(NULL) = 0x555555559000\n");
    assert_eq!(run.stdout, "brk(NULL) = 0x400000\n");
}

#[test]
fn first_recorded_brk_sets_the_initial_break() {
    let script = "\
brk(NULL) = 0x555555559000
brk(0x55555557a000) = 0x1234
";
    let run = replay(&["--maps"], script);
    assert_eq!(run.code, Some(0), "{run:?}");
    // The second result is the model's, not the recorded one.
    assert_eq!(
        run.call_lines(),
        ["brk(NULL) = 0x555555559000", "brk(0x55555557a000) = 0x55555557a000"]
    );
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with("555555559000-55555557a000 rw-p ") && l.ends_with(" [heap]")),
        "{}",
        run.stdout
    );
    // Only the first brk call counts: without a recorded result, the break
    // stays 0 whatever later lines recorded.
    let run = replay(&[], "brk(NULL)\nbrk(NULL) = 0x555555559000\n");
    assert_eq!(run.call_lines(), ["brk(NULL) = 0", "brk(NULL) = 0"]);
    // A brk after other calls still decides it when it is the first brk.
    let script = "\
mmap(0x100000000, 4096, PROT_READ, MAP_PRIVATE|MAP_FIXED|MAP_ANONYMOUS, -1, 0) = 0x100000000
brk(NULL) = 0x5555555a0000
";
    let run = replay(&[], script);
    assert_eq!(run.call_lines()[1], "brk(NULL) = 0x5555555a0000");
}

#[test]
fn inherited_descriptor_names_its_file_and_closed_one_is_ebadf() {
    let tmp = TempDir::new("cli-inherit");
    let x = tmp.file("x", 8192);
    let script = format!(
        "\
mmap(0x100000000, 8192, PROT_READ, MAP_PRIVATE|MAP_FIXED, 5<{x}>, 0) = 0x100000000
close(5<{x}>) = 0
mmap(0x100010000, 4096, PROT_READ, MAP_PRIVATE|MAP_FIXED, 5, 0) = -1 EBADF (Bad file descriptor)
close(5) = -1 EBADF (Bad file descriptor)
"
    );
    let run = replay(&["--maps"], &script);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(
        run.call_lines(),
        [
            "mmap(0x100000000, 8192, PROT_READ, MAP_PRIVATE|MAP_FIXED, 5, 0) = 0x100000000",
            "close(5) = 0",
            "mmap(0x100010000, 4096, PROT_READ, MAP_PRIVATE|MAP_FIXED, 5, 0) = -1 EBADF (Bad file descriptor)",
            "close(5) = -1 EBADF (Bad file descriptor)",
        ]
    );
    let line = run
        .stdout
        .lines()
        .find(|l| l.starts_with("100000000-100002000 r--p 00000000 "))
        .unwrap_or_else(|| panic!("no mapping of {x}:\n{}", run.stdout));
    assert!(line.ends_with(&format!(" {x}")), "{line}");
}

#[test]
fn failed_open_is_printed_as_recorded_and_not_applied() {
    let tmp = TempDir::new("cli-open");
    let f = tmp.file("f", 4096);
    let script = format!(
        "\
openat(AT_FDCWD, \"{f}\", O_RDONLY) = -1 EMFILE (Too many open files)
openat(AT_FDCWD, \"{f}\", O_RDONLY) = 7</{f}>
mmap(0x100000000, 4096, PROT_READ, MAP_SHARED|MAP_FIXED, 7, 0) = 0x100000000
open(\"f\", O_RDONLY)
dup(7)
"
    );
    let run = replay(&["--cwd", &tmp.str(), "--maps"], &script);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(
        run.call_lines(),
        [
            format!("openat(AT_FDCWD, \"{f}\", O_RDONLY) = -1 EMFILE (Too many open files)").as_str(),
            &format!("openat(AT_FDCWD, \"{f}\", O_RDONLY) = 7"),
            "mmap(0x100000000, 4096, PROT_READ, MAP_SHARED|MAP_FIXED, 7, 0) = 0x100000000",
            // Without a recorded result: the lowest descriptor not open.
            "open(\"f\", O_RDONLY) = 3",
            "dup(7) = 4",
        ]
    );
    assert!(
        run.stderr
            .contains("5 calls replayed (1 failed call taken from the trace)"),
        "{}",
        run.stderr
    );
}

#[test]
fn simulate_prints_a_table_and_rejects_a_bad_policy() {
    let run = mmsim(
        &[
            "simulate",
            "--threads",
            "4",
            "--duration",
            "0.2",
            "--vmas",
            "32",
            "--policy",
            "seed-v1",
            "--seed",
            "7",
        ],
        "",
    );
    assert_eq!(run.code, Some(0), "{run:?}");
    for row in ["POLICY", "READS/S", "WRONG", "seed-v1", "verdict: PASS"] {
        assert!(run.stdout.contains(row), "no {row} in\n{}", run.stdout);
    }
    for (args, says) in [
        (&["simulate", "--writers", "0"][..], "--writers must be at least 1"),
        (&["simulate", "--threads", "0"][..], "--threads must be at least 1"),
        (&["simulate", "--vmas", "70000"][..], "--vmas 70000 is out of range"),
        (&["simulate", "--duration", "0"][..], "--duration must be more than 0"),
    ] {
        let r = mmsim(args, "");
        assert_eq!(r.code, Some(2), "{args:?}: {r:?}");
        assert!(r.stderr.contains(says), "{args:?}: {}", r.stderr);
    }
    let bad = mmsim(&["simulate", "--policy", "nonsense"], "");
    assert_eq!(bad.code, Some(2));
    assert!(bad.stderr.contains("unknown policy `nonsense`"), "{}", bad.stderr);
    // record needs a command.
    let rec = mmsim(&["record"], "");
    assert_eq!(rec.code, Some(2), "{rec:?}");
}

/// The LOOM column comes from a loom summary only when the summary was
/// made from this build's sources and finished; otherwise simulate says
/// that no model check is on record.
#[test]
fn simulate_takes_the_loom_verdict_only_from_a_summary_of_its_own_sources() {
    let dir = TempDir::new("loomsum");
    let summary = |fingerprint: &str, complete: bool, verdict: &str| {
        format!(
            r#"{{"date": "2026-01-02T03:04:05Z", "commit": "abcdef123456", "source_fingerprint": "{fingerprint}",
                "complete": {complete}, "rows": [
                {{"policy": "upstream", "scenario": "s1", "verdict": "no-violation", "bound": "none"}},
                {{"policy": "upstream", "scenario": "s2", "verdict": "{verdict}", "bound": "4"}}]}}"#
        )
    };
    let run_with = |text: String| {
        let p = dir.file("summary.json", 0);
        std::fs::write(&p, text).expect("write the summary");
        mmsim(
            &[
                "simulate",
                "--duration",
                "0.2",
                "--rounds",
                "2",
                "--vmas",
                "16",
                "--policy",
                "upstream",
                "--loom-summary",
                &p,
            ],
            "",
        )
    };
    let own = env!("MMSIM_SOURCE_FINGERPRINT");
    let run = run_with(summary(own, true, "no-violation"));
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(
        run.stdout
            .contains("no violation in 2 scenarios, 1 of them exhaustively"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("2026-01-02T03:04:05Z at commit abcdef123456"),
        "{}",
        run.stdout
    );
    let run = run_with(summary(own, true, "violation-found"));
    assert!(run.stdout.contains("violations in 1/2 (s2)"), "{}", run.stdout);
    for other in [
        summary("0000000000000000", true, "no-violation"),
        summary(own, false, "no-violation"),
    ] {
        let run = run_with(other);
        assert!(
            run.stdout.contains("no model check on record for this build"),
            "{}",
            run.stdout
        );
        assert!(!run.stdout.contains("no violation in"), "{}", run.stdout);
    }
    let run = mmsim(
        &[
            "simulate",
            "--duration",
            "0.1",
            "--rounds",
            "1",
            "--vmas",
            "8",
            "--policy",
            "upstream",
            "--loom-summary",
            "/nonexistent/summary.json",
        ],
        "",
    );
    assert!(
        run.stdout
            .contains("LOOM: no model check on record (/nonexistent/summary.json"),
        "{}",
        run.stdout
    );
}

#[test]
fn unlink_and_rename_change_the_names_maps_show() {
    let dir = TempDir::new("unlink");
    let a = dir.file("a", 8192);
    let b = dir.file("b", 8192);
    let script = format!(
        "\
openat(AT_FDCWD, \"{a}\", O_RDONLY) = 3
mmap(0x200000000, 4096, PROT_READ, MAP_PRIVATE|MAP_FIXED, 3, 0) = 0x200000000
openat(AT_FDCWD, \"{b}\", O_RDONLY) = 4
mmap(0x300000000, 4096, PROT_READ, MAP_PRIVATE|MAP_FIXED, 4, 0) = 0x300000000
unlink(\"{a}\") = 0
rename(\"{b}\", \"{a}\") = 0
unlinkat(AT_FDCWD, \"{b}\", 0) = -1 ENOENT (No such file or directory)
"
    );
    let run = replay(&["--maps"], &script);
    assert_eq!(run.code, Some(0), "{run:?}");
    let maps: Vec<&str> = run.stdout.lines().filter(|l| common::is_maps_line(l)).collect();
    assert!(maps[0].ends_with(&format!(" {a} (deleted)")), "{maps:?}");
    assert!(maps[1].ends_with(&format!(" {a}")), "{maps:?}");
    assert!(run.stderr.contains("unlink 1"), "{}", run.stderr);
}

/// A descriptor the trace never opened, annotated `(deleted)` (a memfd a
/// process inherited, or received, as chromium's crashpad handler does;
/// an unlinked file whose name now belongs to another): the mapping shows
/// the name deleted, as the kernel's does, and is not the live file of that
/// name.
#[test]
fn inherited_deleted_descriptor_maps_as_deleted() {
    let dir = TempDir::new("inherit-deleted");
    let a = dir.file("a", 8192);
    let script = format!(
        "\
mmap(0x200000000, 8192, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_FIXED, 5</memfd:shared-memory-region>(deleted), 0) = 0x200000000
mmap(0x300000000, 4096, PROT_READ, MAP_SHARED|MAP_FIXED, 6<{a}>(deleted), 0) = 0x300000000
mmap(0x300001000, 4096, PROT_READ, MAP_SHARED|MAP_FIXED, 7<{a}>, 4096) = 0x300001000
"
    );
    let run = replay(&["--maps", "--check"], &script);
    assert_eq!(run.code, Some(0), "{run:?}");
    let maps: Vec<&str> = run.stdout.lines().filter(|l| common::is_maps_line(l)).collect();
    assert_eq!(maps.len(), 4, "three mappings and [vsyscall]: {maps:?}");
    assert!(maps[0].ends_with(" /memfd:shared-memory-region (deleted)"), "{maps:?}");
    assert!(maps[1].ends_with(&format!(" {a} (deleted)")), "{maps:?}");
    assert!(maps[2].ends_with(&format!(" {a}")), "{maps:?}");
}

/// Host behaviour (checked with a C program on Linux 6.18): a mapping made
/// through a descriptor from `fcntl(F_DUPFD_CLOEXEC)` merges with one made
/// through the original (same open file description); a second open of the
/// same file does not.
#[test]
fn fcntl_dupfd_shares_the_open_file_and_creat_opens() {
    let dir = TempDir::new("dupfd");
    let f = dir.file("f", 1 << 20);
    let out = format!("{}/new.tar", dir.str());
    let script = format!(
        "\
openat(AT_FDCWD, \"{f}\", O_RDWR|O_CREAT, 0600) = 3
mmap(0x7e0000000000, 4096, PROT_READ, MAP_PRIVATE|MAP_FIXED, 3, 0) = 0x7e0000000000
fcntl(3, F_DUPFD_CLOEXEC, 10) = 10
mmap(0x7e0000001000, 4096, PROT_READ, MAP_PRIVATE|MAP_FIXED, 10, 0x1000) = 0x7e0000001000
openat(AT_FDCWD, \"{f}\", O_RDONLY) = 11
mmap(0x7e0000002000, 4096, PROT_READ, MAP_PRIVATE|MAP_FIXED, 11, 0x2000) = 0x7e0000002000
creat(\"{out}\", 0666) = 12
close(12) = 0
"
    );
    let run = replay(&["--maps", "--check"], &script);
    assert_eq!(run.code, Some(0), "{run:?}");
    let maps: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| common::is_maps_line(l) && l.contains(&f))
        .collect();
    assert_eq!(maps.len(), 2, "{maps:?}");
    assert!(
        maps[0].starts_with("7e0000000000-7e0000002000 r--p 00000000"),
        "{maps:?}"
    );
    assert!(
        maps[1].starts_with("7e0000002000-7e0000003000 r--p 00002000"),
        "{maps:?}"
    );
    // close(12) found the descriptor creat made.
    assert!(run.stderr.contains(" 0 divergences"), "{}", run.stderr);
}

#[test]
fn bad_initial_maps_are_named_by_file_and_line() {
    let tmp = TempDir::new("bad-maps");
    let cases = [
        (
            "above.txt",
            "555555554000-555555556000 r--p 00000000 fe:00 1 /bin/x\n7fffffffe000-800000001000 rw-p 00000000 00:00 0 [stack]\n",
            "above.txt: line 2, column 1: 0x7fffffffe000-0x800000001000 ends above TASK_SIZE",
        ),
        (
            "overlap.txt",
            "555555554000-555555558000 r--p 00000000 fe:00 1 /bin/x\n\n555555556000-555555559000 rw-p 00000000 00:00 0\n",
            "overlap.txt: line 3, column 1: 0x555555556000-0x555555559000 overlaps or precedes line 1",
        ),
        (
            "garbage.txt",
            "garbage line\n",
            "garbage.txt: line 1, column 1: bad range \"garbage\"",
        ),
        (
            "perms.txt",
            "555555554000-555555556000 r-q- 00000000 fe:00 1 /bin/x\n",
            "perms.txt: line 1, column 27: bad perms \"r-q-\"",
        ),
    ];
    for (name, text, want) in cases {
        let p = tmp.path().join(name);
        std::fs::write(&p, text).unwrap();
        let run = replay(&["--initial-maps", p.to_str().unwrap()], "brk(NULL) = 0x1000\n");
        assert_eq!(run.code, Some(2), "{name}: {run:?}");
        assert!(run.stderr.contains(want), "{name}: {}", run.stderr);
    }
    // The gate area above TASK_SIZE is fine.
    let p = tmp.path().join("ok.txt");
    std::fs::write(
        &p,
        "7ffffffde000-7ffffffff000 rw-p 00000000 00:00 0 [stack]\nffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0 [vsyscall]\n",
    )
    .unwrap();
    let run = replay(&["--initial-maps", p.to_str().unwrap()], "brk(NULL) = 0x1000\n");
    assert_eq!(run.code, Some(0), "{run:?}");
}

#[test]
fn env_settings_are_checked_and_applied() {
    let run = replay(&["--env", "rlimit_as=lots"], "brk(NULL) = 0x1000\n");
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(run.stderr.contains("rlimit_as"), "{}", run.stderr);
    let run = replay(&["--env", "colour=blue"], "brk(NULL) = 0x1000\n");
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(run.stderr.contains("unknown key `colour`"), "{}", run.stderr);
    // 16 MiB of address space: a 32 MiB mapping fails, as recorded.
    let script =
        "mmap(NULL, 33554432, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = -1 ENOMEM (Cannot allocate memory)\n";
    let run = replay(&["--check", "--env", "rlimit_as=16777216"], script);
    assert_eq!(run.code, Some(0), "{run:?}");
    let run = replay(&["--check"], script);
    assert_eq!(run.code, Some(1), "without the limit the model maps it: {run:?}");
}

#[test]
fn pipes_sockets_and_event_descriptors_cannot_be_mapped() {
    let script = "\
mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, 3<pipe:[1234]>, 0) = -1 ENODEV (No such device)
mmap(NULL, 4096, PROT_READ, MAP_SHARED, 4<socket:[99]>, 0) = -1 ENODEV (No such device)
mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, 5<anon_inode:[eventfd]>, 0) = -1 ENODEV (No such device)
";
    let run = replay(&["--check"], script);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stderr.contains("0 divergences"), "{}", run.stderr);
}

#[test]
fn rings_of_anonymous_inodes_map_under_their_name() {
    // io_uring's rings as strace printed them on this machine (the
    // addresses are those of an empty address space, top-down from
    // 0x7ffff7fff000): the name is strace's, not a path relative to the
    // working directory (it was `/CWD/anon_inode:[io_uring]`), and a
    // 2 MiB + 4 KiB perf ring is placed plainly, right below, not
    // THP-aligned (perf has no get_unmapped_area).
    let script = "\
mmap(NULL, 352, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_POPULATE, 3<anon_inode:[io_uring]>, 0) = 0x7ffff7ffe000
mmap(NULL, 512, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_POPULATE, 3<anon_inode:[io_uring]>, 0x10000000) = 0x7ffff7ffd000
mmap(NULL, 2101248, PROT_READ|PROT_WRITE, MAP_SHARED, 4<anon_inode:[perf_event]>, 0) = 0x7ffff7dfc000
";
    let run = replay(&["--check", "--maps"], script);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stderr.contains("0 divergences"), "{}", run.stderr);
    for (start, name) in [
        ("7ffff7ffe000-", "anon_inode:[io_uring]"),
        ("7ffff7ffd000-", "anon_inode:[io_uring]"),
        ("7ffff7dfc000-", "anon_inode:[perf_event]"),
    ] {
        let line = run.stdout.lines().find(|l| l.starts_with(start)).unwrap_or_default();
        assert!(line.ends_with(&format!(" {name}")), "{start}: {}", run.stdout);
    }
}

#[test]
fn renaming_a_directory_renames_the_mapped_files_in_it() {
    let tmp = TempDir::new("rename-dir");
    let d = tmp.path().join("d");
    std::fs::create_dir(&d).unwrap();
    std::fs::write(d.join("f"), vec![0u8; 4096]).unwrap();
    let (d, e) = (
        d.to_str().unwrap().to_string(),
        tmp.path().join("e").to_str().unwrap().to_string(),
    );
    let script = format!(
        "openat(AT_FDCWD, \"{d}/f\", O_RDONLY) = 3\n\
         mmap(0x100000000, 4096, PROT_READ, MAP_PRIVATE|MAP_FIXED, 3, 0) = 0x100000000\n\
         rename(\"{d}\", \"{e}\") = 0\n"
    );
    let run = replay(&["--maps"], &script);
    assert_eq!(run.code, Some(0), "{run:?}");
    let line = run
        .stdout
        .lines()
        .find(|l| l.starts_with("100000000-"))
        .unwrap_or_default();
    assert!(line.ends_with(&format!("{e}/f")), "{}", run.stdout);
}

#[test]
fn input_with_nothing_recognized_is_an_error() {
    // Random-looking bytes: no call, no strace message.
    let junk: String = (0..40u32)
        .map(|i| format!("{:x}{}\u{7f}zz~~ {}\n", i.wrapping_mul(2_654_435_761), "\u{1}", i * 7))
        .collect();
    let run = replay(&[], &junk);
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(
        run.stderr
            .contains("no line of the input is a system call or a message of strace's (40 lines not understood)"),
        "{}",
        run.stderr
    );
    // A junk line among calls is reported, not counted as a message.
    let script = "\
mmap(0x100000000, 4096, PROT_READ, MAP_PRIVATE|MAP_FIXED|MAP_ANONYMOUS, -1, 0) = 0x100000000
garbage mmap(0x100001000, 4096, PROT_READ, MAP_PRIVATE|MAP_FIXED|MAP_ANONYMOUS, -1, 0) = 0x100001000
+++ exited with 0 +++
";
    let run = replay(&[], script);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stderr.contains("not understood 1"), "{}", run.stderr);
    assert!(
        run.stderr.contains("first line not understood: line 2"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("strace messages 1"), "{}", run.stderr);
}

#[test]
fn a_stream_with_a_snapshot_starts_over_at_each_exec() {
    let tmp = TempDir::new("stream-exec");
    let maps = tmp.path().join("maps.txt");
    std::fs::write(&maps, "7ffffffde000-7ffffffff000 rw-p 00000000 00:00 0 [stack]\n").unwrap();
    let script = "\
1 mmap(0x100000000, 4096, PROT_READ, MAP_PRIVATE|MAP_FIXED|MAP_ANONYMOUS, -1, 0) = 0x100000000
1 execve(\"/bin/a\", [\"a\"], 0x7ffc /* 1 var */) = 0
1 mmap(0x200000000, 4096, PROT_READ, MAP_PRIVATE|MAP_FIXED|MAP_ANONYMOUS, -1, 0) = 0x200000000
1 execve(\"/bin/b\", [\"b\"], 0x7ffc /* 1 var */) = 0
1 mmap(0x300000000, 4096, PROT_READ, MAP_PRIVATE|MAP_FIXED|MAP_ANONYMOUS, -1, 0) = 0x300000000
";
    // From a pipe: it starts after each exec it meets.
    let run = replay(&["--maps", "--initial-maps", maps.to_str().unwrap()], script);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stderr.contains("started over 2 time(s)"), "{}", run.stderr);
    assert!(run.stdout.contains("300000000-300001000"), "{}", run.stdout);
    assert!(!run.stdout.contains("200000000-200001000"), "{}", run.stdout);
    // From a file: a first pass finds the last exec; no start over.
    let file = tmp.path().join("trace.txt");
    std::fs::write(&file, script).unwrap();
    let run = mmsim(
        &[
            "replay",
            "--maps",
            "--initial-maps",
            maps.to_str().unwrap(),
            file.to_str().unwrap(),
        ],
        "",
    );
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(!run.stderr.contains("started over"), "{}", run.stderr);
    assert!(run.stderr.contains("before the last execve 4"), "{}", run.stderr);
    assert_eq!(run.call_lines().len(), 1, "{}", run.stdout);
}

/// The replay streams: its peak memory does not grow with the input.
#[test]
fn replay_memory_does_not_grow_with_the_input() {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let pair = "mmap(0x100000000, 4096, PROT_READ, MAP_PRIVATE|MAP_FIXED|MAP_ANONYMOUS, -1, 0) = 0x100000000\n\
                munmap(0x100000000, 4096) = 0\n";
    let peak_kib = |pairs: usize| -> i64 {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mmsim"));
        // Under AddressSanitizer, freed memory waits in a quarantine (256
        // MiB by default) that would be counted as the replay's.
        if std::env::var_os("ASAN_OPTIONS").is_some() {
            cmd.env("ASAN_OPTIONS", "quarantine_size_mb=0:detect_leaks=0");
        }
        let mut child = cmd
            .args(["replay", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        let chunk = pair.repeat(1000);
        for _ in 0..pairs / 1000 {
            input.write_all(chunk.as_bytes()).unwrap();
        }
        drop(input);
        let pid = child.id() as libc::pid_t;
        let mut status = 0;
        // SAFETY: an all-zero rusage is valid; wait4 fills it.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: waits for our own child (reaping it: `child` is not waited
        // on again), with valid out-pointers.
        assert_eq!(unsafe { libc::wait4(pid, &mut status, 0, &mut ru) }, pid);
        assert_eq!(status, 0, "replay failed");
        std::mem::forget(child);
        ru.ru_maxrss
    };
    let small = peak_kib(10_000);
    let large = peak_kib(300_000);
    // 600,000 lines (64 MiB) held in memory would add far more than 16 MiB.
    assert!(
        large < small + 16 * 1024,
        "peak {small} KiB for 20,000 lines, {large} KiB for 600,000"
    );
}

/// A program's own `WRPKRU` (`pkey_set`) is no system call: a write the
/// trace shows succeeding through a key whose rights `pkey_alloc` set to
/// "no write" tells the replay that the thread gave itself the right
/// (V8 does this around its JIT code). The replay learns it and says so;
/// the other thread keeps its own PKRU, and an access the trace shows
/// refused stays checked.
#[test]
fn pkru_rights_are_learned_from_faults() {
    let script = "\
100 pkey_alloc(0, PKEY_DISABLE_WRITE) = 1
100 mmap(0x200000000, 8192, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, -1, 0) = 0x200000000
100 pkey_mprotect(0x200000000, 8192, PROT_READ|PROT_WRITE, 1) = 0
100 clone3({flags=CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM, exit_signal=0}, 88) = 101
100 fault(0x200000000, WRITE) = 0
101 fault(0x200001000, READ) = 0
101 fault(0x200001000, WRITE) = SIGSEGV
";
    let run = replay(&["--check", "--env", "pkeys=1"], script);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(
        run.stderr.contains("PKRU rights learned from 1 fault"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains(" 0 divergences"), "{}", run.stderr);
    // The other thread learns its own right from its own write.
    let wrong = script.replace(
        "101 fault(0x200001000, WRITE) = SIGSEGV",
        "101 fault(0x200001000, WRITE) = 0",
    );
    let run = replay(&["--check", "--env", "pkeys=1"], &wrong);
    assert!(
        run.stderr.contains("PKRU rights learned from 2 faults"),
        "{}",
        run.stderr
    );
}
