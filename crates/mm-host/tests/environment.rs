//! The process's environment decides results: rlimits, credentials,
//! personality, memory size. Each scenario starts a helper with a limit,
//! a user or a personality set before exec (as `prlimit`, `setpriv` and
//! `setarch -L` would), and a model configured from what `/proc` shows of
//! that helper ([`mm_ops::env::ProcEnv`]); every result and the maps must
//! be identical after every call. Each scenario also asserts that the
//! kernel did answer the way the environment makes it answer (the error
//! the limit causes), so a limit that was not applied fails the test.
#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

#[path = "scenarios/harness.rs"]
#[allow(dead_code)]
mod harness;

use harness::{P, Sc, at, run_with};
use mm_host::HostOptions;
use mm_ops::call::{Call, Outcome};
use mm_ops::env::{ADDR_COMPAT_LAYOUT, READ_IMPLIES_EXEC};
use mm_ops::uapi::*;

const NOBODY: u32 = 65534;

fn root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// An anonymous `mmap` call.
fn mmap(addr: u64, len: u64, prot: u64, flags: u64) -> Call {
    harness::mmap(addr, len, prot, flags, -1, 0)
}

const RW: u64 = PROT_READ | PROT_WRITE;
const ANON: u64 = MAP_PRIVATE | MAP_ANONYMOUS;

fn with_limit(resource: libc::__rlimit_resource_t, bytes: u64) -> HostOptions {
    HostOptions {
        rlimits: vec![(resource, bytes)],
        ..HostOptions::default()
    }
}

fn rlimit_as(s: &mut Sc) {
    // 32 MiB in all: the helper itself holds well under 1 MiB.
    s.anon(0, 2048, RW);
    s.err(mmap(0, 32 << 20, RW, ANON), Errno::ENOMEM);
    s.err(mmap(0, 32 << 20, PROT_NONE, ANON | MAP_NORESERVE), Errno::ENOMEM);
    s.err(
        Call::Mremap {
            old_addr: at(0),
            old_len: 2048 * P,
            new_len: 8192 * P,
            flags: MREMAP_MAYMOVE,
            new_addr: 0,
        },
        Errno::ENOMEM,
    );
    let brk = s.ok(Call::Brk { addr: 0 });
    // brk beyond the limit leaves the break where it was.
    s.expect(Call::Brk { addr: brk + (64 << 20) }, Outcome::Val(brk));
    s.ok(Call::Brk { addr: brk + 4 * P });
    s.munmap(0, 2048);
    s.anon(0, 4096, PROT_READ);
}

fn rlimit_data(s: &mut Sc) {
    // 1 MiB of data: private writable memory counts, read-only and shared
    // memory does not.
    s.err(mmap(0, 2 << 20, RW, ANON), Errno::ENOMEM);
    s.anon(0, 512, PROT_READ);
    s.shared_anon(1024, 512, RW);
    s.ok(Call::Mprotect {
        addr: at(0),
        len: 128 * P,
        prot: RW,
    });
    s.err(
        Call::Mprotect {
            addr: at(0),
            len: 512 * P,
            prot: RW,
        },
        Errno::ENOMEM,
    );
    let brk = s.ok(Call::Brk { addr: 0 });
    s.expect(Call::Brk { addr: brk + (2 << 20) }, Outcome::Val(brk));
}

fn unprivileged_low_addresses(s: &mut Sc) {
    // Below vm.mmap_min_addr a fixed mapping needs CAP_SYS_RAWIO; at it,
    // nothing.
    let min: u64 = std::fs::read_to_string("/proc/sys/vm/mmap_min_addr")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    s.err(mmap(0, P, PROT_READ, ANON | MAP_FIXED), Errno::EPERM);
    if min > P {
        s.err(mmap(min - P, P, PROT_READ, ANON | MAP_FIXED), Errno::EPERM);
    }
    s.ok(mmap(min.max(P), P, PROT_READ, ANON | MAP_FIXED_NOREPLACE));
    // A hint below it is not an error: it is moved up.
    s.ok(mmap(0x1000, P, PROT_READ, ANON));
    s.ok(mmap(0x10000, 2 * P, PROT_READ, ANON));
}

fn unprivileged_memlock(s: &mut Sc) {
    // RLIMIT_MEMLOCK of 64 KiB and no CAP_IPC_LOCK.
    s.err(mmap(0, 32 * P, RW, ANON | MAP_LOCKED), Errno::EAGAIN);
    s.ok(mmap(0, 8 * P, RW, ANON | MAP_LOCKED));
    s.err(mmap(0, 9 * P, RW, ANON | MAP_LOCKED), Errno::EAGAIN);
}

fn legacy_layout(s: &mut Sc) {
    let a = s.ok(mmap(0, 4 * P, PROT_READ, ANON));
    if a > 0x4000_0000_0000 {
        s.fail(&format!(
            "legacy layout: NULL-hint mmap at {a:#x}, expected bottom-up near TASK_SIZE/3"
        ));
    }
    let b = s.ok(mmap(0, 4 * P, RW, ANON));
    s.ok(mmap(0, 256 * P, PROT_READ, ANON));
    s.ok(Call::Munmap { addr: a, len: 4 * P });
    s.ok(mmap(0, 2 * P, PROT_READ, ANON));
    s.ok(Call::Munmap { addr: b, len: 4 * P });
}

fn big_stack_limit(s: &mut Sc) {
    // RLIMIT_STACK of 1 GiB at exec: mmap_base is 1 GiB + the guard gap
    // below TASK_SIZE.
    let a = s.ok(mmap(0, P, PROT_READ, ANON));
    if a > 0x7fff_ffff_f000 - (1 << 30) {
        s.fail(&format!("mmap at {a:#x} is inside the stack's 1 GiB"));
    }
    s.ok(mmap(0, 512 * P, RW, ANON));
}

fn read_implies_exec(s: &mut Sc) {
    // The exec of a 64-bit program clears READ_IMPLIES_EXEC
    // (set_personality_64bit), so the personality asked for before exec
    // is not the one the program runs with: the model must take the one
    // /proc shows.
    s.anon(0, 4, PROT_READ);
    s.anon(8, 4, RW);
    s.mprotect(0, 2, PROT_READ | PROT_WRITE);
    let lines = s.arena_lines();
    if lines.iter().any(|l| l.perms.contains(&b'x')) {
        s.fail("a 64-bit exec clears READ_IMPLIES_EXEC: no mapping may be executable");
    }
}

/// Kibibytes of RAM plus swap, from /proc/meminfo.
fn ram_and_swap() -> u64 {
    let mi = std::fs::read_to_string("/proc/meminfo").unwrap();
    let kb = |name: &str| -> u64 {
        mi.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim_start_matches(':').split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    (kb("MemTotal") + kb("SwapTotal")) << 10
}

fn overcommit_guess(s: &mut Sc) {
    // OVERCOMMIT_GUESS: one request larger than RAM + swap fails if it is
    // charged: private writable memory and shared anonymous memory (its
    // shmem object is charged at mmap), unless MAP_NORESERVE.
    let big = (ram_and_swap() * 2 + (1 << 30)) & !((1 << 21) - 1);
    s.err(mmap(0, big, RW, ANON), Errno::ENOMEM);
    s.err(mmap(0, big, RW, MAP_SHARED | MAP_ANONYMOUS), Errno::ENOMEM);
    s.err(mmap(0, big, PROT_READ, MAP_SHARED | MAP_ANONYMOUS), Errno::ENOMEM);
    let a = s.ok(mmap(0, big, RW, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE));
    s.ok(Call::Munmap { addr: a, len: big });
    let a = s.ok(mmap(0, big, PROT_READ, ANON));
    s.err(
        Call::Mprotect {
            addr: a,
            len: big,
            prot: RW,
        },
        Errno::ENOMEM,
    );
    s.ok(Call::Munmap { addr: a, len: big });
}

#[test]
fn env_rlimit_as() {
    run_with("rlimit_as", &with_limit(libc::RLIMIT_AS, 32 << 20), rlimit_as);
}

#[test]
fn env_rlimit_data() {
    run_with("rlimit_data", &with_limit(libc::RLIMIT_DATA, 1 << 20), rlimit_data);
}

/// Runs scenario `f` as `nobody` (root only: otherwise it says it skips).
fn run_as_nobody(name: &'static str, f: harness::Scenario) {
    if !root() {
        eprintln!("not root: cannot switch to an unprivileged user; skipping");
        return;
    }
    let opts = HostOptions {
        user: Some(NOBODY),
        ..HostOptions::default()
    };
    run_with(name, &opts, f);
}

#[test]
fn env_unprivileged_low_addresses() {
    run_as_nobody("unprivileged_low_addresses", unprivileged_low_addresses);
}

#[test]
fn env_unprivileged_memlock() {
    if !root() {
        eprintln!("not root: cannot switch to an unprivileged user; skipping");
        return;
    }
    let opts = HostOptions {
        user: Some(NOBODY),
        rlimits: vec![(libc::RLIMIT_MEMLOCK, 64 << 10)],
        ..HostOptions::default()
    };
    run_with("unprivileged_memlock", &opts, unprivileged_memlock);
}

/// As `nobody`, root's files: `0644` opens for reading only, `0600` not at
/// all, `0666` for writing; a read-only descriptor maps shared and
/// writable with `EACCES`, the writable one maps.
fn unprivileged_files(s: &mut Sc) {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("mm-sim-env-files-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod dir");
    let mut paths = vec![];
    for (name, mode) in [("r", 0o644), ("none", 0o600), ("rw", 0o666)] {
        let p = dir.join(name);
        std::fs::write(&p, vec![1u8; 2 * P as usize]).expect("file");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).expect("chmod");
        paths.push(p.to_string_lossy().into_owned());
    }
    let open = |path: &str, flags| Call::Openat {
        dirfd: AT_FDCWD,
        path: path.to_string(),
        flags,
        mode: None,
    };
    let r = s.ok(open(&paths[0], oflags::O_RDONLY)) as i64;
    s.err(open(&paths[0], oflags::O_RDWR), Errno::EACCES);
    s.err(open(&paths[0], oflags::O_WRONLY), Errno::EACCES);
    s.err(open(&paths[0], oflags::O_RDONLY | oflags::O_TRUNC), Errno::EACCES);
    s.err(open(&paths[1], oflags::O_RDONLY), Errno::EACCES);
    // O_PATH asks nothing of the file.
    s.ok(open(&paths[1], oflags::O_PATH));
    let rw = s.ok(open(&paths[2], oflags::O_RDWR)) as i64;
    s.err(harness::mmap(at(0), 2 * P, RW, MAP_SHARED, r, 0), Errno::EACCES);
    s.ok(harness::mmap(at(0), 2 * P, PROT_READ, MAP_SHARED, r, 0));
    s.ok(harness::mmap(at(4), 2 * P, RW, MAP_SHARED, rw, 0));
    // A directory never opens for writing, whoever asks.
    s.err(open(&dir.to_string_lossy(), oflags::O_RDWR), Errno::EISDIR);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn env_unprivileged_files() {
    run_as_nobody("unprivileged_files", unprivileged_files);
}

/// As `nobody`, paths through root's directories: a lookup in a
/// directory needs search (execute) permission on it (`may_lookup`), so a
/// `0700` directory hides everything under it (`EACCES`, even for names it
/// does not hold, for `O_PATH` and for `O_CREAT`), and a `0711` one lets
/// known names through. A missing name is `ENOENT`, a missing directory on
/// the way too, and a file used as a directory `ENOTDIR`.
fn unsearchable_dirs(s: &mut Sc) {
    use std::os::unix::fs::PermissionsExt;
    let top = std::env::temp_dir().join(format!("mm-sim-env-search-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&top);
    std::fs::create_dir_all(&top).expect("temp dir");
    std::fs::set_permissions(&top, std::fs::Permissions::from_mode(0o755)).expect("chmod dir");
    for (name, mode) in [("locked", 0o700), ("through", 0o711), ("listed", 0o744)] {
        let d = top.join(name);
        std::fs::create_dir(&d).expect("dir");
        std::fs::write(d.join("f"), vec![1u8; P as usize]).expect("file");
        std::fs::set_permissions(d.join("f"), std::fs::Permissions::from_mode(0o644)).expect("chmod");
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(mode)).expect("chmod dir");
    }
    std::fs::write(top.join("plain"), b"x").expect("file");
    std::fs::set_permissions(top.join("plain"), std::fs::Permissions::from_mode(0o644)).expect("chmod");
    std::os::unix::fs::symlink(top.join("locked/f"), top.join("link")).expect("symlink");
    let path = |rel: &str| top.join(rel).to_string_lossy().into_owned();
    let open = |rel: &str, flags, mode| Call::Openat {
        dirfd: AT_FDCWD,
        path: path(rel),
        flags,
        mode,
    };
    use oflags::*;
    s.err(open("locked/f", O_RDONLY, None), Errno::EACCES);
    s.err(open("locked/missing", O_RDONLY, None), Errno::EACCES);
    s.err(open("locked/f", O_PATH, None), Errno::EACCES);
    s.err(open("locked/new", O_CREAT | O_RDWR, Some(0o644)), Errno::EACCES);
    s.err(open("locked/../through/f", O_RDONLY, None), Errno::EACCES);
    s.err(open("link", O_RDONLY, None), Errno::EACCES);
    s.ok(open("through/f", O_RDONLY, None));
    s.ok(open("through/../through/./f", O_RDONLY, None));
    s.err(open("through/missing", O_RDONLY, None), Errno::ENOENT);
    // Read permission without search permission lets nothing through.
    s.err(open("listed/f", O_RDONLY, None), Errno::EACCES);
    s.ok(open("listed", O_RDONLY | O_DIRECTORY, None));
    s.err(open("missing", O_RDONLY, None), Errno::ENOENT);
    s.err(open("missing/f", O_RDONLY, None), Errno::ENOENT);
    s.err(open("missing/f", O_CREAT | O_RDWR, Some(0o644)), Errno::ENOENT);
    s.err(open("plain/f", O_RDONLY, None), Errno::ENOTDIR);
    s.err(open("plain/f", O_CREAT | O_RDWR, Some(0o644)), Errno::ENOTDIR);
    // A trailing slash names a directory.
    s.err(open("plain/", O_RDONLY, None), Errno::ENOTDIR);
    s.err(open("gone/", O_RDONLY, None), Errno::ENOENT);
    s.err(open("gone/", O_CREAT | O_RDWR, Some(0o644)), Errno::EISDIR);
    s.err(open("through/", O_RDONLY, None), Errno::EACCES);
    s.ok(open("listed/", O_RDONLY, None));
    let _ = std::fs::remove_dir_all(&top);
}

#[test]
fn env_unsearchable_dirs() {
    run_as_nobody("unsearchable_dirs", unsearchable_dirs);
}

/// `RLIMIT_FSIZE` 16 KiB: `ftruncate` may not grow a file past it
/// (`EFBIG`; the helper ignores the `SIGXFSZ` that comes with it), but may
/// shrink one that is larger, and a file system's `s_maxbytes` bounds
/// every file (ext4's 16 TiB − 4 KiB where the temporary directory is on
/// ext4; tmpfs's and others' far above).
fn fsize(s: &mut Sc) {
    let (_, fd) = s.file("f", 2);
    let trunc = |length| Call::Ftruncate { fd, length };
    s.ok(trunc(16 << 10));
    s.err(trunc((16 << 10) + 1), Errno::EFBIG);
    s.err(trunc(1 << 20), Errno::EFBIG);
    s.ok(trunc(4096));
    s.ok(trunc(0));
    // Mapping it afterwards sees the size it has.
    s.ok(harness::mmap(0, 4 * P, PROT_READ, MAP_SHARED, fd, 0));
}

#[test]
fn env_rlimit_fsize() {
    run_with("rlimit_fsize", &with_limit(libc::RLIMIT_FSIZE, 16 << 10), fsize);
}

/// Without a limit, the file system's `s_maxbytes` (whatever the
/// temporary directory's file system is: the host answers).
fn max_file_size(s: &mut Sc) {
    let (_, fd) = s.file("big", 1);
    for length in [(1u64 << 44) - 4096, 1 << 44, (1 << 44) + 4096, 1 << 62] {
        s.step(Call::Ftruncate { fd, length });
    }
    s.ok(Call::Ftruncate { fd, length: 0 });
}

#[test]
fn env_max_file_size() {
    run_with("max_file_size", &HostOptions::default(), max_file_size);
}

/// Address-space randomization on (no `ADDR_NO_RANDOMIZE`): the helper's
/// stack, heap and mmap area sit where the kernel chose; the twin takes
/// the heap and stack from `/proc/PID/stat` and the mmap area's base from
/// the helper's vDSO block, and then places kernel-chosen mappings as the
/// host does. (`MAP_32BIT` is left out: with randomization its window's
/// start moves at every call.)
fn randomized(s: &mut Sc) {
    let mut placed = vec![];
    for len in [4 * P, 64 * P, 4 << 20, 3 * P] {
        placed.push(s.ok(harness::mmap(0, len, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)));
    }
    s.ok(Call::Munmap {
        addr: placed[1],
        len: 64 * P,
    });
    s.ok(harness::mmap(0, 8 * P, RW, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    let brk = s.ok(Call::Brk { addr: 0 });
    s.ok(Call::Brk { addr: brk + 5 * P });
    s.ok(harness::mmap(0, 2 * P, RW, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
}

#[test]
fn env_aslr() {
    let opts = HostOptions {
        aslr: true,
        ..HostOptions::default()
    };
    // Twice: two random layouts.
    run_with("aslr", &opts, randomized);
    run_with("aslr_again", &opts, randomized);
    let legacy = HostOptions {
        personality: ADDR_COMPAT_LAYOUT,
        ..opts
    };
    run_with("aslr_legacy", &legacy, randomized);
}

/// `RLIMIT_NOFILE` 1024: `dup2` onto 1024 or above is `EBADF`, below it
/// fine. (Running out of descriptors is `Task`'s unit test: the helper
/// needs one to show its maps.)
fn nofile(s: &mut Sc) {
    let (_, fd) = s.file("f", 1);
    s.err(Call::Dup2 { oldfd: fd, newfd: 1024 }, Errno::EBADF);
    s.err(Call::Dup2 { oldfd: fd, newfd: 5000 }, Errno::EBADF);
    s.expect(Call::Dup2 { oldfd: fd, newfd: 1021 }, Outcome::Val(1021));
    // dup2 onto itself answers before the limit is looked at.
    s.expect(
        Call::Dup2 {
            oldfd: 1021,
            newfd: 1021,
        },
        Outcome::Val(1021),
    );
}

#[test]
fn env_nofile() {
    run_with("nofile", &with_limit(libc::RLIMIT_NOFILE, 1024), nofile);
}

#[test]
fn env_legacy_layout() {
    let opts = HostOptions {
        personality: ADDR_COMPAT_LAYOUT,
        ..HostOptions::default()
    };
    run_with("legacy_layout", &opts, legacy_layout);
}

#[test]
fn env_big_stack_limit() {
    let opts = HostOptions {
        stack_limit: Some(1 << 30),
        ..HostOptions::default()
    };
    run_with("big_stack_limit", &opts, big_stack_limit);
}

#[test]
fn env_read_implies_exec() {
    let opts = HostOptions {
        personality: READ_IMPLIES_EXEC,
        ..HostOptions::default()
    };
    run_with("read_implies_exec", &opts, read_implies_exec);
}

#[test]
fn env_overcommit_guess() {
    let mode = std::fs::read_to_string("/proc/sys/vm/overcommit_memory").unwrap();
    if mode.trim() != "0" {
        eprintln!("vm.overcommit_memory is {}, not 0; skipping", mode.trim());
        return;
    }
    run_with("overcommit_guess", &HostOptions::default(), overcommit_guess);
}

/// The THP mode, `[always]`, `[madvise]` or `[never]`.
fn thp_mode() -> String {
    let t = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").unwrap_or_default();
    t.split('[')
        .nth(1)
        .and_then(|r| r.split(']').next())
        .unwrap_or("never")
        .to_string()
}

fn thp_read_fault(s: &mut Sc) {
    let mode = thp_mode();
    // 8 MiB at a 2 MiB-aligned address, MADV_HUGEPAGE: a read fault there
    // takes the huge-page path, which prepares an anon_vma (the huge zero
    // page is mapped), so the read-only half no longer merges with the
    // written half once their protections agree.
    s.anon(0, 2048, RW);
    s.madvise(0, 2048, madv::HUGEPAGE);
    s.mprotect(0, 1024, PROT_READ);
    s.read(0);
    s.write(1024);
    s.mprotect(0, 1024, RW);
    if mode != "never" {
        s.expect_window(
            "read-faulted THP half keeps its anon_vma",
            0,
            2048,
            &[(0, 1024, "rw-p"), (1024, 2048, "rw-p")],
        );
    }
    // Without MADV_HUGEPAGE (mode madvise) the read maps the small zero
    // page: no anon_vma, and the halves merge.
    s.anon(4096, 2048, RW);
    s.mprotect(4096, 1024, PROT_READ);
    s.read(4096);
    s.write(5120);
    s.mprotect(4096, 1024, RW);
    if mode == "madvise" {
        s.expect_window("small read fault: no anon_vma", 4096, 6144, &[(4096, 6144, "rw-p")]);
    }
    // A VMA that does not cover a whole aligned 2 MiB range never takes
    // the huge path, MADV_HUGEPAGE or not.
    s.anon(8193, 511, RW);
    s.madvise(8193, 511, madv::HUGEPAGE);
    s.mprotect(8193, 255, PROT_READ);
    s.read(8193);
    s.write(8448);
    s.mprotect(8193, 255, RW);
    if mode != "never" {
        s.expect_window("no whole PMD: no anon_vma", 8193, 8704, &[(8193, 8704, "rw-p")]);
    }
    // MADV_NOHUGEPAGE wins in every mode.
    s.anon(12288, 2048, RW);
    s.madvise(12288, 2048, madv::NOHUGEPAGE);
    s.mprotect(12288, 1024, PROT_READ);
    s.read(12288);
    s.write(13312);
    s.mprotect(12288, 1024, RW);
    s.expect_window("MADV_NOHUGEPAGE: no anon_vma", 12288, 14336, &[(12288, 14336, "rw-p")]);
    // A private /dev/zero mapping is anonymous memory: the huge-page path
    // takes it too, whatever file offset it was mapped at (anonymous VMAs'
    // offsets are not checked).
    let zero = s.open("/dev/zero", oflags::O_RDWR);
    s.map(16384, 2048, RW, MAP_PRIVATE, zero, 3);
    s.madvise(16384, 2048, madv::HUGEPAGE);
    s.mprotect(16384, 1024, PROT_READ);
    s.read(16384);
    s.write(17408);
    s.mprotect(16384, 1024, RW);
    if mode != "never" {
        s.expect_window(
            "private /dev/zero: THP read fault, anon_vma",
            16384,
            18432,
            &[(16384, 17408, "rw-p"), (17408, 18432, "rw-p")],
        );
    }
    // Prefaulting reads take the same path: mlock (populate), and
    // MADV_POPULATE_READ; the read-only half gets an anon_vma and stays
    // apart from the written half.
    for (base, how) in [(20480, "mlock"), (24576, "populate_read"), (28672, "mlock_onfault")] {
        s.anon(base, 2048, RW);
        s.madvise(base, 2048, madv::HUGEPAGE);
        s.mprotect(base, 1024, PROT_READ);
        s.write(base + 1024);
        match how {
            "mlock" => {
                s.ok(Call::Mlock {
                    addr: at(base),
                    len: 1024 * P,
                });
                s.ok(Call::Munlock {
                    addr: at(base),
                    len: 1024 * P,
                });
            }
            "mlock_onfault" => {
                // MLOCK_ONFAULT prefaults nothing: no anon_vma.
                s.ok(Call::Mlock2 {
                    addr: at(base),
                    len: 1024 * P,
                    flags: MLOCK_ONFAULT,
                });
                s.ok(Call::Munlock {
                    addr: at(base),
                    len: 1024 * P,
                });
            }
            _ => s.madvise(base, 1024, madv::POPULATE_READ),
        }
        s.mprotect(base, 1024, RW);
        let want: &[(u64, u64, &str)] = if mode == "never" || how == "mlock_onfault" {
            &[(base, base + 2048, "rw-p")]
        } else {
            &[(base, base + 1024, "rw-p"), (base + 1024, base + 2048, "rw-p")]
        };
        s.expect_window(how, base, base + 2048, want);
    }
}

#[test]
fn env_thp_read_fault() {
    run_with("thp_read_fault", &HostOptions::default(), thp_read_fault);
}
