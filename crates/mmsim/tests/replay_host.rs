//! `mmsim replay` against the real kernel: every call of a hand-written
//! script runs natively in an `mm-host` helper first, its result becomes
//! the script's recorded result and the expected output line, and then the
//! replay's results and its maps of the arena must match the kernel's.
//!
//! The helper's address space differs from a fresh model (its own binary,
//! stack, vDSO), so the scripts only use calls whose results do not depend
//! on the initial layout: fixed addresses inside an arena at 4 GiB, errors,
//! faults, and descriptors on files in a temporary directory.
//!
//! `madvise` and `mremap` are left out: the model does not implement them
//! yet (both answer `ENOSYS`).

mod common;

use common::{TempDir, maps_in, replay};
use mm_host::{HostOptions, HostProcess};
use mm_ops::call::{Call, Outcome};
use mm_ops::strace::{Line, format_call, format_result, parse_line};

/// The arena: 1 MiB at 4 GiB, empty in the helper and in a fresh model.
const ARENA: u64 = 0x1_0000_0000;
const ARENA_END: u64 = ARENA + 0x10_0000;

/// A script recorded on the host.
struct Recorded {
    /// The input for `mmsim replay`: each template line with ` = RESULT`.
    script: String,
    /// What `mmsim replay` must print for it.
    expected: Vec<String>,
}

/// Runs every template line on the host, in order.
fn record(host: &mut HostProcess, template: &[String]) -> Recorded {
    let mut script = String::new();
    let mut expected = Vec::new();
    for t in template {
        let Ok(Line::Call(tl)) = parse_line(t) else {
            panic!("template line is not a modeled call: {t}");
        };
        let o = host.call(&tl.call).expect("host helper alive");
        let result = format_result(&tl.call, &o);
        script.push_str(&format!("{t} = {result}\n"));
        expected.push(format!("{} = {result}", format_call(&tl.call)));
    }
    Recorded { script, expected }
}

/// Replays `rec` and checks every result line and the arena's maps lines
/// against the host.
fn check(host: &mut HostProcess, rec: &Recorded, args: &[&str]) {
    let mut a = vec!["--maps"];
    a.extend_from_slice(args);
    let run = replay(&a, &rec.script);
    assert_eq!(run.code, Some(0), "mmsim failed: {}", run.stderr);
    let got = run.call_lines();
    let mut diffs = String::new();
    for (i, want) in rec.expected.iter().enumerate() {
        let g = got.get(i).copied().unwrap_or("<missing>");
        if g != want {
            diffs.push_str(&format!("line {}:\n  kernel: {want}\n  model:  {g}\n", i + 1));
        }
    }
    assert_eq!(got.len(), rec.expected.len(), "call line count\n{}", run.stdout);
    assert!(diffs.is_empty(), "results differ from the kernel:\n{diffs}");
    let host_maps = host.maps().expect("host maps");
    let want = maps_in(&host_maps, ARENA, ARENA_END);
    let got = maps_in(&run.stdout, ARENA, ARENA_END);
    assert!(!want.is_empty(), "the script left the arena empty");
    assert_eq!(
        got, want,
        "arena maps differ (left: model, right: kernel)\nmodel:\n{}\nkernel:\n{host_maps}",
        run.stdout
    );
}

fn lines(text: &str, dir: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| l.replace("{D}", dir))
        .collect()
}

#[test]
fn replay_matches_the_kernel() {
    let tmp = TempDir::new("host");
    let d = tmp.str();
    std::fs::create_dir(tmp.path().join("sub")).expect("mkdir");
    tmp.file("sub/g", 8192);
    tmp.file("rel", 4096);
    let template = lines(
        r#"
        mmap(0x100000000, 65536, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, -1, 0)
        mprotect(0x100004000, 8192, PROT_READ)
        fault(0x100004000, WRITE)
        fault(0x100000000, WRITE)
        fault(0x100004000, READ)
        fault(0x100004000, EXEC)
        fault(0x100090000, READ)
        munmap(0x100008000, 4096)
        mmap(0x100008000, 4096, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED_NOREPLACE, -1, 0)
        mmap(0x100008000, 4096, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED_NOREPLACE, -1, 0)
        mmap(0x100000001, 4096, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, -1, 0)
        mmap(NULL, 0, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        mmap(0x100000000, 140737488355328, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, -1, 0)
        mprotect(0x100080000, 4096, PROT_READ)
        mprotect(0x10000f000, 8192, PROT_READ)
        mprotect(0x100000800, 4096, PROT_READ)
        munmap(0x100000001, 4096)
        munmap(0x100000000, 0)
        openat(AT_FDCWD, "{D}/f", O_RDWR|O_CREAT, 0600)
        ftruncate(3, 65536)
        mmap(0x100020000, 16384, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_FIXED, 3, 0x4000)
        dup(3)
        mmap(0x10001e000, 8192, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_FIXED, 4, 0x2000)
        openat(AT_FDCWD, "{D}/f", O_RDWR)
        mmap(0x100024000, 8192, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_FIXED, 5, 0x8000)
        mmap(0x100026000, 8192, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_FIXED, 5, 0xa000)
        dup2(3, 9)
        mmap(0x10001c000, 8192, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_FIXED, 9, 0)
        fault(0x10001c000, WRITE)
        mmap(0x100030000, 8192, PROT_READ, MAP_SHARED|MAP_FIXED, 3, 0xf000)
        fault(0x100030000, READ)
        fault(0x100031000, READ)
        openat(AT_FDCWD, "{D}/sub", O_RDONLY|O_DIRECTORY)
        openat(6, "g", O_RDONLY)
        mmap(0x100040000, 8192, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_FIXED, 7, 0)
        mmap(0x100040000, 8192, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_FIXED, 7, 0)
        mprotect(0x100040000, 4096, PROT_READ|PROT_WRITE|PROT_EXEC)
        openat(AT_FDCWD, "rel", O_RDWR)
        mmap(0x100044000, 4096, PROT_READ, MAP_SHARED|MAP_FIXED, 8, 0)
        memfd_create("mmsim-test", MFD_CLOEXEC)
        ftruncate(10, 8192)
        mmap(0x100050000, 16384, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_FIXED, 10, 0)
        fault(0x100051000, WRITE)
        fault(0x100052000, READ)
        close(3)
        mmap(0x100060000, 4096, PROT_READ, MAP_SHARED|MAP_FIXED, 3, 0)
        close(3)
        dup(3)
        dup2(3, 11)
        ftruncate(3, 0)
        openat(AT_FDCWD, "{D}/missing", O_RDONLY)
        munmap(0x100026000, 4096)
        mprotect(0x10001c000, 4096, PROT_READ)
        "#,
        &d,
    );
    let opts = HostOptions {
        cwd: Some(tmp.path().to_path_buf()),
        ..HostOptions::default()
    };
    let mut host = HostProcess::spawn_with(&opts).expect("host helper");
    let rec = record(&mut host, &template);
    // The script has what it is meant to test: a merge through the dup'ed
    // descriptors, none with the re-opened file, and the errors.
    for want in [
        "EEXIST", "EINVAL", "ENOMEM", "EBADF", "EACCES", "ENOENT", "SIGSEGV", "SIGBUS",
    ] {
        assert!(rec.script.contains(want), "no {want} in\n{}", rec.script);
    }
    check(&mut host, &rec, &["--cwd", &d]);
    let maps = host.maps().expect("maps");
    let file = format!("{d}/f");
    let f_lines: Vec<_> = maps_in(&maps, ARENA, ARENA_END)
        .into_iter()
        .filter(|k| k.name == file)
        .map(|k| (k.start, k.end))
        .collect();
    // dup and dup2 of fd 3 merged with it; the re-opened file (fd 5) did
    // not, though its pages continue the same file.
    assert!(f_lines.contains(&(0x1_0001_d000, 0x1_0002_4000)), "{f_lines:x?}");
    assert!(f_lines.contains(&(0x1_0002_4000, 0x1_0002_6000)), "{f_lines:x?}");
    // `openat(6, "g")` opened the file in the directory behind fd 6.
    let g = maps_in(&maps, 0x1_0004_0000, 0x1_0004_1000);
    assert_eq!(g.len(), 1, "{maps}");
    assert_eq!(g[0].name, format!("{d}/sub/g"));
}

#[test]
fn inherited_descriptor_matches_the_kernel() {
    let tmp = TempDir::new("inherit");
    let x = tmp.file("x", 5 * 4096);
    let mut host = HostProcess::spawn().expect("host helper");
    // Open the file as descriptor 5 before the script begins.
    let open = Call::Open {
        path: x.clone(),
        flags: 2,
        mode: None,
    };
    let Ok(Outcome::Val(fd)) = host.call(&open) else {
        panic!("open {x}");
    };
    let moved = host.call(&Call::Dup2 {
        oldfd: fd as i64,
        newfd: 5,
    });
    assert_eq!(moved.ok(), Some(Outcome::Val(5)));
    assert_eq!(host.call(&Call::Close { fd: fd as i64 }).ok(), Some(Outcome::Val(0)));
    let template = lines(
        r#"
        mmap(0x100000000, 8192, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_FIXED, 5</{X}>, 0)
        mmap(0x100002000, 4096, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_FIXED, 5</{X}>, 0x2000)
        dup(5</{X}>)
        mmap(0x100003000, 4096, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_FIXED, 3</{X}>, 0x3000)
        openat(AT_FDCWD, "/{X}", O_RDONLY)
        mmap(0x100004000, 4096, PROT_READ, MAP_SHARED|MAP_FIXED, 4</{X}>, 0x4000)
        fault(0x100004000, READ)
        fault(0x100005000, READ)
        close(5</{X}>)
        mmap(0x100010000, 4096, PROT_READ, MAP_SHARED|MAP_FIXED, 5, 0)
        "#,
        "",
    )
    .into_iter()
    .map(|l| l.replace("/{X}", &x))
    .collect::<Vec<_>>();
    let rec = record(&mut host, &template);
    assert!(rec.script.contains("EBADF"), "{}", rec.script);
    check(&mut host, &rec, &[]);
    let maps = host.maps().expect("maps");
    let lines = maps_in(&maps, ARENA, ARENA_END);
    assert_eq!(lines.len(), 2, "{maps}");
    assert!(lines.iter().all(|k| k.name == x), "{maps}");
}

#[test]
fn brk_from_the_option_matches_the_kernel() {
    let mut host = HostProcess::spawn().expect("host helper");
    let Ok(Outcome::Val(start)) = host.call(&Call::Brk { addr: 0 }) else {
        panic!("brk(NULL)");
    };
    let template = vec![
        "brk(NULL)".to_string(),
        format!("brk({:#x})", start + 0x21000),
        format!("brk({:#x})", start + 0x10000),
        format!("mprotect({:#x}, 4096, PROT_READ)", start + 0x8000),
        "brk(NULL)".to_string(),
    ];
    let rec = record(&mut host, &template);
    let run = replay(&["--maps", "--brk", &format!("{start:#x}")], &rec.script);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.call_lines(), rec.expected);
    let host_maps = host.maps().expect("maps");
    let end = start + 0x10000;
    assert_eq!(
        maps_in(&run.stdout, start, end),
        maps_in(&host_maps, start, end),
        "model:\n{}\nkernel:\n{host_maps}",
        run.stdout
    );
}
