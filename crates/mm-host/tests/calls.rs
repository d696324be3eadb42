//! System calls other than faults: results and their trace in maps.

mod common;

use std::io::Write;

use common::{anon, maps, ok, vma_at};
use mm_host::{HostOptions, HostProcess};
use mm_ops::call::{Call, Outcome};
use mm_ops::uapi::{
    AT_FDCWD, Errno, MAP_ANONYMOUS, MAP_FIXED, MAP_FIXED_NOREPLACE, MAP_PRIVATE, MAP_SHARED, MREMAP_MAYMOVE, PAGE_SIZE,
    PROT_EXEC, PROT_READ, PROT_WRITE, madv, mfd, oflags,
};

const P: u64 = PAGE_SIZE;

#[test]
fn anonymous_mmap_munmap_round_trip() {
    let mut h = HostProcess::spawn().unwrap();
    let before = h.maps().unwrap();
    let addr = anon(&mut h, 4, PROT_READ | PROT_WRITE);
    assert_eq!(addr % P, 0);
    let vma = vma_at(&mut h, addr).expect("new VMA");
    assert_eq!((vma.start, vma.end, vma.perms.as_str()), (addr, addr + 4 * P, "rw-p"));
    assert_eq!(maps(&mut h).len(), common::parse_maps(&before).len() + 1);

    // Punch a hole: two VMAs remain.
    let unmap = |addr, len| Call::Munmap { addr, len };
    assert_eq!(ok(&mut h, unmap(addr + P, P)), 0);
    assert_eq!(vma_at(&mut h, addr).unwrap().end, addr + P);
    assert!(vma_at(&mut h, addr + P).is_none());
    assert_eq!(vma_at(&mut h, addr + 2 * P).unwrap().end, addr + 4 * P);

    assert_eq!(ok(&mut h, unmap(addr, 4 * P)), 0);
    assert_eq!(h.maps().unwrap(), before, "back to the initial layout");
}

#[test]
fn errors_come_back_as_errno() {
    let mut h = HostProcess::spawn().unwrap();
    let mmap = |addr, len, flags| Call::Mmap {
        addr,
        len,
        prot: PROT_READ,
        flags,
        fd: -1,
        off: 0,
    };
    let e = |h: &mut HostProcess, c: Call| h.call(&c).unwrap();
    assert_eq!(
        e(&mut h, mmap(0, 0, MAP_PRIVATE | MAP_ANONYMOUS)),
        Outcome::Err(Errno::EINVAL)
    );
    assert_eq!(e(&mut h, mmap(0, P, MAP_ANONYMOUS)), Outcome::Err(Errno::EINVAL));
    assert_eq!(e(&mut h, Call::Munmap { addr: 1, len: P }), Outcome::Err(Errno::EINVAL));
    assert_eq!(e(&mut h, mmap(0, P, MAP_PRIVATE)), Outcome::Err(Errno::EBADF));
    // The helper's own text is there: NOREPLACE refuses it.
    let noreplace = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE;
    assert_eq!(e(&mut h, mmap(0x40_0000, P, noreplace)), Outcome::Err(Errno::EEXIST));
    let mprotect = Call::Mprotect {
        addr: 0x1000_0000,
        len: P,
        prot: PROT_READ,
    };
    assert_eq!(e(&mut h, mprotect), Outcome::Err(Errno::ENOMEM));
    let madvise = Call::Madvise {
        addr: 0x1000_0000,
        len: P,
        advice: madv::DONTNEED,
    };
    assert_eq!(e(&mut h, madvise), Outcome::Err(Errno::ENOMEM));
}

#[test]
fn mprotect_splits_and_mremap_moves() {
    let mut h = HostProcess::spawn().unwrap();
    let addr = anon(&mut h, 3, PROT_READ | PROT_WRITE);
    let mp = Call::Mprotect {
        addr: addr + P,
        len: P,
        prot: PROT_READ | PROT_EXEC,
    };
    assert_eq!(ok(&mut h, mp), 0);
    assert_eq!(vma_at(&mut h, addr + P).unwrap().perms, "r-xp");
    assert_eq!(vma_at(&mut h, addr).unwrap().end, addr + P);

    // new_len is page-rounded: 2 KiB is the same size, a no-op.
    let same = Call::Mremap {
        old_addr: addr,
        old_len: P,
        new_len: P / 2,
        flags: 0,
        new_addr: 0,
    };
    assert_eq!(ok(&mut h, same), addr);
    // The first mapping sits right below [vvar]: no room to grow in place.
    let grow = Call::Mremap {
        old_addr: addr + 2 * P,
        old_len: P,
        new_len: 8 * P,
        flags: 0,
        new_addr: 0,
    };
    assert_eq!(h.call(&grow).unwrap(), Outcome::Err(Errno::ENOMEM));
    let moved = Call::Mremap {
        old_addr: addr + 2 * P,
        old_len: P,
        new_len: 16 * P,
        flags: MREMAP_MAYMOVE,
        new_addr: 0,
    };
    let new = ok(&mut h, moved);
    // It lands right below the first mapping and merges with its rw- page.
    assert_eq!(new + 16 * P, addr);
    let vma = vma_at(&mut h, new).unwrap();
    assert_eq!((vma.start, vma.end, vma.perms.as_str()), (new, addr + P, "rw-p"));
    assert!(vma_at(&mut h, addr + 2 * P).is_none(), "the old range is gone");
}

#[test]
fn brk_grows_and_shrinks() {
    let mut h = HostProcess::spawn().unwrap();
    let st = h.stat().unwrap();
    let start = st.start_brk;
    assert_eq!(ok(&mut h, Call::Brk { addr: 0 }), start);

    assert_eq!(
        ok(
            &mut h,
            Call::Brk {
                addr: start + 3 * P + 5
            }
        ),
        start + 3 * P + 5
    );
    let heap = vma_at(&mut h, start).expect("heap VMA");
    assert_eq!(
        (heap.start, heap.end, heap.name.as_str()),
        (start, start + 4 * P, "[heap]")
    );
    assert_eq!(h.stat().unwrap().brk, start + 3 * P + 5);

    assert_eq!(ok(&mut h, Call::Brk { addr: start + P }), start + P);
    assert_eq!(vma_at(&mut h, start).unwrap().end, start + P);
    // Below start_brk: refused, the break is returned unchanged.
    assert_eq!(ok(&mut h, Call::Brk { addr: start - P }), start + P);
    assert_eq!(ok(&mut h, Call::Brk { addr: start }), start);
    assert!(vma_at(&mut h, start).is_none(), "heap gone");
}

#[test]
fn descriptors_memfd_and_shared_file_mappings() {
    let mut h = HostProcess::spawn().unwrap();
    let memfd = Call::MemfdCreate {
        name: "oracle".into(),
        flags: mfd::CLOEXEC,
    };
    assert_eq!(ok(&mut h, memfd), 3, "fds 0-2 are the only ones open");
    assert_eq!(ok(&mut h, Call::Ftruncate { fd: 3, length: 2 * P }), 0);
    let map = Call::Mmap {
        addr: 0,
        len: 2 * P,
        prot: PROT_READ | PROT_WRITE,
        flags: MAP_SHARED,
        fd: 3,
        off: 0,
    };
    let addr = ok(&mut h, map);
    let vma = vma_at(&mut h, addr).unwrap();
    assert_eq!(vma.perms, "rw-s");
    assert_eq!(vma.name, "/memfd:oracle (deleted)");

    assert_eq!(ok(&mut h, Call::Dup { fd: 3 }), 4);
    assert_eq!(ok(&mut h, Call::Dup2 { oldfd: 3, newfd: 10 }), 10);
    let dup3 = Call::Dup3 {
        oldfd: 10,
        newfd: 10,
        flags: 0,
    };
    assert_eq!(h.call(&dup3).unwrap(), Outcome::Err(Errno::EINVAL));
    assert_eq!(
        ok(
            &mut h,
            Call::Dup3 {
                oldfd: 3,
                newfd: 11,
                flags: oflags::O_CLOEXEC
            }
        ),
        11
    );
    for fd in [3, 4, 10, 11] {
        assert_eq!(ok(&mut h, Call::Close { fd }), 0);
    }
    assert_eq!(h.call(&Call::Close { fd: 10 }).unwrap(), Outcome::Err(Errno::EBADF));
    assert_eq!(h.call(&Call::Dup { fd: -1 }).unwrap(), Outcome::Err(Errno::EBADF));
    // The mapping outlives its descriptors.
    assert!(vma_at(&mut h, addr).is_some());
}

#[test]
fn open_and_openat_temp_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data");
    std::fs::File::create(&path).unwrap().write_all(&[7u8; 100]).unwrap();
    let path_s = path.to_str().unwrap().to_string();

    let mut h = HostProcess::spawn().unwrap();
    let open = Call::Open {
        path: path_s.clone(),
        flags: oflags::O_RDONLY,
        mode: None,
    };
    assert_eq!(ok(&mut h, open), 3);
    let openat = Call::Openat {
        dirfd: AT_FDCWD,
        path: path_s,
        flags: oflags::O_RDWR,
        mode: None,
    };
    assert_eq!(ok(&mut h, openat), 4);
    let missing = Call::Open {
        path: dir.path().join("missing").to_str().unwrap().into(),
        flags: oflags::O_RDONLY,
        mode: None,
    };
    assert_eq!(h.call(&missing).unwrap(), Outcome::Err(Errno::ENOENT));
    let create = Call::Openat {
        dirfd: AT_FDCWD,
        path: dir.path().join("new").to_str().unwrap().into(),
        flags: oflags::O_RDWR | oflags::O_CREAT | oflags::O_EXCL,
        mode: Some(0o600),
    };
    assert_eq!(ok(&mut h, create.clone()), 5);
    assert_eq!(h.call(&create).unwrap(), Outcome::Err(Errno::EEXIST));

    // A read-only descriptor cannot back a writable shared mapping.
    let shared_rw = |fd| Call::Mmap {
        addr: 0,
        len: P,
        prot: PROT_READ | PROT_WRITE,
        flags: MAP_SHARED,
        fd,
        off: 0,
    };
    assert_eq!(h.call(&shared_rw(3)).unwrap(), Outcome::Err(Errno::EACCES));
    let addr = ok(&mut h, shared_rw(4));
    let vma = vma_at(&mut h, addr).unwrap();
    assert_eq!(vma.name, path.to_str().unwrap());
}

#[test]
fn relative_paths_resolve_against_the_chosen_cwd() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rel"), b"x").unwrap();
    let opts = HostOptions {
        cwd: Some(dir.path().to_path_buf()),
        ..HostOptions::default()
    };
    let mut h = HostProcess::spawn_with(&opts).unwrap();
    let open = Call::Open {
        path: "rel".into(),
        flags: oflags::O_RDONLY,
        mode: None,
    };
    assert_eq!(ok(&mut h, open), 3);
}

#[test]
fn closing_stdio_does_not_cut_the_line() {
    let mut h = HostProcess::spawn().unwrap();
    assert_eq!(ok(&mut h, Call::Close { fd: 0 }), 0);
    assert_eq!(ok(&mut h, Call::Close { fd: 1 }), 0);
    let memfd = Call::MemfdCreate {
        name: "x".into(),
        flags: 0,
    };
    assert_eq!(ok(&mut h, memfd), 0, "lowest free descriptor");
    assert_eq!(ok(&mut h, Call::Dup2 { oldfd: 0, newfd: 1 }), 1);
    assert!(h.maps().unwrap().contains("[stack]"));
    let fixed = Call::Mmap {
        addr: 0x1000_0000,
        len: P,
        prot: PROT_READ,
        flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
        fd: -1,
        off: 0,
    };
    assert_eq!(ok(&mut h, fixed), 0x1000_0000);
    assert!(h.exit().unwrap().success());
}
