//! Files that are not regular files, mapped on the host and in the model:
//! devices of `drivers/char/mem.c`, `/proc` and sysfs files, directories,
//! FIFOs, `O_PATH` descriptors, and `/dev/zero`, whose shared mappings are
//! shmem objects and whose private ones are anonymous memory. Every result
//! and, after every call, the maps and `VmFlags` must be identical; each
//! scenario also asserts the kernel's answer.
#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

#[path = "scenarios/harness.rs"]
#[allow(dead_code)]
mod harness;

use harness::{P, Sc, at, hugetlb_pool, mmap, run};
use mm_ops::call::{Access, Call, Outcome, Signal};
use mm_ops::uapi::*;

const RW: u64 = PROT_READ | PROT_WRITE;

/// The checks every unmappable file goes through: private and shared
/// mappings fail with `want`; a fixed mapping over anonymous memory fails
/// too (the harness compares whether the old mapping survived); asking
/// for write access to a read-only description is `EACCES` first.
fn refused(s: &mut Sc, path: &str, oflags: u64, want: Errno) {
    let fd = s.open(path, oflags);
    s.err(mmap(0, P, PROT_READ, MAP_PRIVATE, fd, 0), want);
    s.err(mmap(0, P, PROT_READ, MAP_SHARED, fd, 0), want);
    s.err(mmap(0, P, RW, MAP_SHARED, fd, 0), Errno::EACCES);
    s.anon(0, 4, RW);
    s.err(mmap(at(1), 2 * P, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd, 0), want);
    s.munmap(0, 4);
    s.ok(Call::Close { fd });
}

fn dev_null(s: &mut Sc) {
    refused(s, "/dev/null", oflags::O_RDONLY, Errno::ENODEV);
    refused(s, "/dev/urandom", oflags::O_RDONLY, Errno::ENODEV);
    refused(s, "/dev/full", oflags::O_RDONLY, Errno::ENODEV);
}

fn proc_files(s: &mut Sc) {
    // Per-process files: no mmap at all; proc_create files: mmap says EIO
    // after the range was cleared.
    refused(s, "/proc/self/status", oflags::O_RDONLY, Errno::ENODEV);
    refused(s, "/proc/self/maps", oflags::O_RDONLY, Errno::ENODEV);
    refused(s, "/proc/sys/vm/max_map_count", oflags::O_RDONLY, Errno::ENODEV);
    refused(s, "/proc/meminfo", oflags::O_RDONLY, Errno::EIO);
}

fn sysfs_file(s: &mut Sc) {
    refused(
        s,
        "/sys/kernel/mm/transparent_hugepage/enabled",
        oflags::O_RDONLY,
        Errno::ENODEV,
    );
}

fn directory(s: &mut Sc) {
    refused(s, "/usr", oflags::O_RDONLY | oflags::O_DIRECTORY, Errno::ENODEV);
}

fn fifo(s: &mut Sc) {
    let dir = std::env::temp_dir().join(format!("mm-fifo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("fifo");
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    refused(
        s,
        path.to_str().unwrap(),
        oflags::O_RDONLY | oflags::O_NONBLOCK,
        Errno::ENODEV,
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

fn o_path(s: &mut Sc) {
    let fd = s.open("/etc/passwd", oflags::O_PATH);
    for flags in [MAP_PRIVATE, MAP_SHARED] {
        s.err(mmap(0, P, PROT_READ, flags, fd, 0), Errno::EBADF);
        s.err(mmap(0, P, RW, flags, fd, 0), Errno::EBADF);
    }
    s.ok(Call::Close { fd });
}

fn dev_zero(s: &mut Sc) {
    let fd = s.open("/dev/zero", oflags::O_RDWR);
    // Shared: one new shmem object per mapping, the offset kept; two
    // neighbours never merge. Faults past the object's size (its length)
    // raise SIGBUS.
    s.map(0, 2, RW, MAP_SHARED, fd, 0);
    s.map(2, 2, RW, MAP_SHARED, fd, 2);
    s.write(0);
    s.write(1);
    s.expect(
        Call::Fault {
            addr: at(2),
            access: Access::Write,
        },
        Outcome::Signal(Signal::Bus),
    );
    s.expect_window("two shared /dev/zero mappings", 0, 4, &[(0, 2, "rw-s"), (2, 4, "rw-s")]);
    // Private: anonymous memory that keeps /dev/zero as its file; with
    // consecutive offsets two neighbours merge, with anonymous memory not.
    s.map(16, 2, RW, MAP_PRIVATE, fd, 0);
    s.map(18, 2, RW, MAP_PRIVATE, fd, 2);
    s.anon(20, 2, RW);
    s.read(16);
    s.write(17);
    s.write(19);
    s.expect_window("private /dev/zero", 16, 22, &[(16, 20, "rw-p"), (20, 22, "rw-p")]);
    // Read-only description, MAP_SHARED: not VM_SHARED, so anonymous too.
    let ro = s.open("/dev/zero", oflags::O_RDONLY);
    s.map(32, 2, PROT_READ, MAP_SHARED, ro, 0);
    s.read(32);
    // Unaligned placement: a private mapping is placed like an ext4
    // file's (thp_get_unmapped_area), a shared one like shmem's.
    s.ok(mmap(0, 4 << 20, PROT_READ, MAP_PRIVATE, fd, 0));
    s.ok(mmap(0, 4 << 20, PROT_READ, MAP_SHARED, fd, 0));
    s.ok(Call::Close { fd });
    s.ok(Call::Close { fd: ro });
}

/// The maps name of the host's mapping at `addr`.
fn host_name(s: &mut Sc, addr: u64) -> String {
    let maps = s.host_maps();
    match maps.into_iter().find(|l| l.start <= addr && addr < l.end) {
        Some(l) => l.name,
        None => s.fail(&format!("nothing mapped at {addr:#x} on the host")),
    }
}

fn proc_fd_links(s: &mut Sc) {
    use oflags::*;
    // Opening /proc/self/fd/N (or /dev/fd/N) opens the file behind N
    // again: the same memfd object, still shown deleted, of the same size.
    let m = s.ok(Call::MemfdCreate {
        name: "re".into(),
        flags: 0,
    }) as i64;
    s.ok(Call::Ftruncate { fd: m, length: 2 * P });
    let r = s.open(&format!("/proc/self/fd/{m}"), O_RDWR);
    s.map(0, 4, RW, MAP_SHARED, r, 0);
    s.write(1);
    s.expect(
        Call::Fault {
            addr: at(2),
            access: Access::Write,
        },
        Outcome::Signal(Signal::Bus),
    );
    let name = host_name(s, at(0));
    if name != "/memfd:re (deleted)" {
        s.fail(&format!("the reopened memfd maps as {name:?}"));
    }
    // O_TRUNC through the link empties the object: its first page is gone.
    let t = s.open(&format!("/dev/fd/{m}"), O_RDONLY | O_TRUNC);
    s.expect(
        Call::Fault {
            addr: at(0),
            access: Access::Read,
        },
        Outcome::Signal(Signal::Bus),
    );
    let open = |path: String, flags| Call::Openat {
        dirfd: AT_FDCWD,
        path,
        flags,
        mode: Some(0o644),
    };
    let link = format!("/proc/thread-self/fd/{m}");
    s.err(open(link.clone(), O_RDWR | O_CREAT | O_EXCL), Errno::EEXIST);
    s.err(open(link.clone(), O_RDWR | O_NOFOLLOW), Errno::ELOOP);
    s.err(open(link.clone(), O_RDONLY | O_DIRECTORY), Errno::ENOTDIR);
    s.err(open(format!("{link}/"), O_RDONLY), Errno::ENOTDIR);
    s.err(open(format!("/proc/self/fd/0{m}"), O_RDONLY), Errno::ENOENT);
    // O_CREAT through the link opens what is there.
    let c = s.ok(open(link.clone(), O_RDWR | O_CREAT)) as i64;
    // O_PATH with O_NOFOLLOW opens the link itself, which maps as nothing.
    let l = s.ok(open(link, O_PATH | O_NOFOLLOW)) as i64;
    s.err(mmap(0, P, PROT_READ, MAP_SHARED, l, 0), Errno::EBADF);
    // A descriptor that is not open has no entry, even for O_CREAT.
    s.ok(Call::Close { fd: t });
    s.err(open(format!("/proc/self/fd/{t}"), O_RDONLY), Errno::ENOENT);
    s.err(open(format!("/proc/self/fd/{t}"), O_RDWR | O_CREAT), Errno::ENOENT);
    // A directory behind the link: opened as one, or walked below.
    let d = s.open("/usr", O_RDONLY | O_DIRECTORY);
    let dl = format!("/proc/self/fd/{d}");
    let d2 = s.open(&dl, O_RDONLY | O_DIRECTORY);
    s.err(open(dl.clone(), O_RDWR), Errno::EISDIR);
    s.err(open(format!("{dl}/no-such-file"), O_RDONLY), Errno::ENOENT);
    let below = s.open(&format!("{dl}/lib/os-release"), O_RDONLY);
    s.err(mmap(0, P, RW, MAP_SHARED, below, 0), Errno::EACCES);
    s.ok(mmap(0, P, PROT_READ, MAP_PRIVATE, below, 0));
    // A secret memory object has no open operation.
    if let Outcome::Val(sec) = s.step(Call::MemfdSecret { flags: 0 }) {
        s.err(open(format!("/proc/self/fd/{sec}"), O_RDWR), Errno::ENXIO);
        s.ok(Call::Close { fd: sec as i64 });
    }
    for fd in [m, r, c, l, d, d2, below] {
        s.ok(Call::Close { fd });
    }
    s.munmap(0, 4);
}

#[test]
fn special_proc_fd_links() {
    run("proc_fd_links", proc_fd_links);
}

#[test]
fn special_dev_null_urandom_full() {
    run("dev_null", dev_null);
}

#[test]
fn special_proc_files() {
    run("proc_files", proc_files);
}

#[test]
fn special_sysfs_file() {
    run("sysfs_file", sysfs_file);
}

#[test]
fn special_directory() {
    run("directory", directory);
}

#[test]
fn special_fifo() {
    run("fifo", fifo);
}

#[test]
fn special_o_path() {
    run("o_path", o_path);
}

#[test]
fn special_dev_zero() {
    run("dev_zero", dev_zero);
}

fn memfd_hugetlb(s: &mut Sc) {
    // memfd_create(MFD_HUGETLB): a hugetlbfs object. Sizes in huge pages,
    // lengths rounded up to one, offsets aligned to one; with an empty
    // pool a mapping needs MAP_NORESERVE and every fault is SIGBUS.
    let fd = s.ok(Call::MemfdCreate {
        name: "hx".into(),
        flags: mfd::HUGETLB,
    }) as i64;
    s.err(Call::Ftruncate { fd, length: P }, Errno::EINVAL);
    s.ok(Call::Ftruncate { fd, length: 4 << 20 });
    s.err(mmap(0, 4 << 20, RW, MAP_SHARED, fd, 0), Errno::ENOMEM);
    s.err(mmap(0, 4 << 20, PROT_READ, MAP_PRIVATE, fd, 0), Errno::ENOMEM);
    let a = s.ok(mmap(0, 4 << 20, RW, MAP_SHARED | MAP_NORESERVE, fd, 0));
    s.ok(mmap(0, P, PROT_READ, MAP_SHARED | MAP_NORESERVE, fd, 0));
    s.ok(mmap(0, 4 << 20, PROT_READ, MAP_PRIVATE | MAP_NORESERVE, fd, 0));
    s.err(
        mmap(0, 4 << 20, PROT_READ, MAP_SHARED | MAP_NORESERVE, fd, P),
        Errno::EINVAL,
    );
    s.expect(
        Call::Fault {
            addr: a,
            access: Access::Read,
        },
        Outcome::Signal(Signal::Bus),
    );
    let big = s.ok(Call::MemfdCreate {
        name: "hy".into(),
        flags: mfd::HUGETLB | (30 << 26),
    }) as i64;
    s.err(
        Call::Ftruncate {
            fd: big,
            length: 2 << 20,
        },
        Errno::EINVAL,
    );
    // Size bits without MFD_HUGETLB.
    s.err(
        Call::MemfdCreate {
            name: "hz".into(),
            flags: 21 << 26,
        },
        Errno::EINVAL,
    );
    s.ok(Call::Close { fd });
    s.ok(Call::Close { fd: big });
}

#[test]
fn special_memfd_hugetlb() {
    if hugetlb_pool() != 0 {
        eprintln!("a huge page pool is configured; this scenario expects none; skipping");
        return;
    }
    run("memfd_hugetlb", memfd_hugetlb);
}
