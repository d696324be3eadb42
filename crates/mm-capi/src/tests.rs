//! The C API called from Rust: results, errors, misuse.

use std::ffi::{CStr, CString, c_char};
use std::ptr::{null, null_mut};

use mm_ops::uapi::oflags::O_RDONLY;
use mm_ops::uapi::*;

use super::*;

const PAGE: u64 = 4096;
const RW: u64 = PROT_READ | PROT_WRITE;
const ANON: u64 = MAP_PRIVATE | MAP_ANONYMOUS;

/// A handle freed at the end of the test.
struct Sim(*mut MmSim);

impl Sim {
    fn new() -> Sim {
        let p = mm_sim_new();
        assert!(!p.is_null());
        Sim(p)
    }

    fn error(&self) -> Option<String> {
        // SAFETY: a live handle; the message is copied before the next call.
        let p = unsafe { mm_sim_last_error(self.0) };
        // SAFETY: a non-NULL message is a NUL-terminated string the handle owns.
        (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
    }

    fn mmap(&self, addr: u64, len: u64, prot: u64, flags: u64) -> Result<u64, i32> {
        let mut a = 0;
        // SAFETY: a live handle and a valid out-pointer.
        match unsafe { mm_sim_mmap(self.0, addr, len, prot, flags, -1, 0, &mut a) } {
            0 => Ok(a),
            e => Err(e),
        }
    }

    fn maps(&self) -> String {
        // SAFETY: a live handle.
        let p = unsafe { mm_sim_maps(self.0) };
        assert!(!p.is_null(), "{:?}", self.error());
        // SAFETY: a string from mm_sim_maps, read then freed once.
        let s = unsafe { CStr::from_ptr(p) }.to_str().unwrap().to_string();
        // SAFETY: as above.
        unsafe { mm_sim_string_free(p) };
        s
    }

    fn lookup(&self, addr: u64) -> (i32, MmSimVma) {
        let mut v = MmSimVma::default();
        // SAFETY: a live handle and a valid out-pointer.
        let r = unsafe { mm_sim_lookup(self.0, addr, &mut v) };
        let mut s = MmSimVma::default();
        // SAFETY: as above.
        let rs = unsafe { mm_sim_lookup_speculative(self.0, addr, &mut s) };
        assert_eq!((r, v), (rs, s), "locked and speculative lookups differ");
        (r, v)
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        // SAFETY: the handle is freed once, here.
        unsafe { mm_sim_free(self.0) };
    }
}

#[test]
fn calls_and_results() {
    let s = Sim::new();
    let a = s.mmap(0, 4 * PAGE, RW, ANON).unwrap();
    assert_eq!(s.error(), None);
    // SAFETY: a live handle, valid pointers (and so for the next blocks).
    assert_eq!(unsafe { mm_sim_mprotect(s.0, a + PAGE, PAGE, PROT_READ) }, 0);
    assert_eq!(s.maps().lines().filter(|l| !l.contains("vsyscall")).count(), 3);
    let (found, v) = s.lookup(a + PAGE);
    assert_eq!(found, 1);
    assert_eq!(
        (v.start, v.end, v.prot, v.inode, v.file_backed),
        (a + PAGE, a + 2 * PAGE, 1, 0, 0)
    );
    assert_eq!(v.vm_flags & 0x3, 0x1);
    assert_eq!(s.lookup(a + 4 * PAGE).0, 0);
    // SAFETY: as above.
    assert_eq!(unsafe { mm_sim_mprotect(s.0, a + 1, PAGE, PROT_READ) }, EINVAL_);
    assert!(s.error().unwrap().contains("EINVAL"), "{:?}", s.error());
    // SAFETY: as above.
    assert_eq!(unsafe { mm_sim_madvise(s.0, a, PAGE, madv::DONTNEED) }, 0);
    assert_eq!(s.error(), None, "a success clears the message");
    let mut b = 0;
    // SAFETY: as above.
    let r = unsafe { mm_sim_mremap(s.0, a, PAGE, 2 * PAGE, MREMAP_MAYMOVE, 0, &mut b) };
    assert_eq!(r, 0);
    assert_ne!(b, 0);
    // SAFETY: as above.
    assert_eq!(unsafe { mm_sim_munmap(s.0, a, 4 * PAGE) }, 0);
    // SAFETY: as above.
    assert_eq!(unsafe { mm_sim_mprotect(s.0, a, PAGE, PROT_READ) }, ENOMEM_);
    let mut sig = -1;
    // SAFETY: as above.
    assert_eq!(unsafe { mm_sim_fault(s.0, a, MM_SIM_ACCESS_READ, &mut sig) }, 0);
    assert_eq!(sig, 11);
    // SAFETY: as above.
    assert_eq!(unsafe { mm_sim_fault(s.0, b, MM_SIM_ACCESS_WRITE, &mut sig) }, 0);
    assert_eq!(sig, 0);
    // SAFETY: as above.
    assert_eq!(unsafe { mm_sim_fault(s.0, b, 7, &mut sig) }, MM_SIM_EINVAL);
}

const EINVAL_: i32 = Errno::EINVAL.0;
const ENOMEM_: i32 = Errno::ENOMEM.0;

#[test]
fn files_and_brk() {
    let s = Sim::new();
    let path = CString::new("/data/file").unwrap();
    let mut fd = -1;
    // SAFETY: a live handle, valid pointers (and so for the next blocks).
    assert_eq!(unsafe { mm_sim_open(s.0, path.as_ptr(), O_RDONLY, &mut fd) }, 0);
    assert_eq!(fd, 3);
    let mut a = 0;
    // A shared writable mapping of a read-only descriptor.
    // SAFETY: as above.
    let r = unsafe { mm_sim_mmap(s.0, 0, PAGE, RW, MAP_SHARED, fd, 0, &mut a) };
    assert_eq!(r, Errno::EACCES.0);
    // SAFETY: as above.
    let r = unsafe { mm_sim_mmap(s.0, 0, PAGE, PROT_READ, MAP_PRIVATE, fd, 0, &mut a) };
    assert_eq!(r, 0);
    let (found, v) = s.lookup(a);
    assert_eq!((found, v.file_backed), (1, 1));
    assert_ne!(v.inode, 0);
    assert!(s.maps().contains("/data/file"));
    // SAFETY: as above.
    assert_eq!(unsafe { mm_sim_close(s.0, fd) }, 0);
    // SAFETY: as above.
    assert_eq!(unsafe { mm_sim_close(s.0, fd) }, Errno::EBADF.0);
    // SAFETY: as above.
    let r = unsafe { mm_sim_mmap(s.0, 0, PAGE, PROT_READ, MAP_PRIVATE, fd, 0, &mut a) };
    assert_eq!(r, Errno::EBADF.0);

    let (mut start, mut brk) = (0, 0);
    // SAFETY: as above.
    assert_eq!(unsafe { mm_sim_set_brk(s.0, 0x5555_5555_9000, 0x5555_5555_9000) }, 0);
    // SAFETY: as above.
    assert_eq!(unsafe { mm_sim_brk(s.0, 0) }, 0x5555_5555_9000);
    // SAFETY: as above.
    assert_eq!(unsafe { mm_sim_brk(s.0, 0x5555_5555_c000) }, 0x5555_5555_c000);
    // SAFETY: as above.
    assert_eq!(unsafe { mm_sim_brk_range(s.0, &mut start, &mut brk) }, 0);
    assert_eq!((start, brk), (0x5555_5555_9000, 0x5555_5555_c000));
    assert!(s.maps().contains("[heap]"));
    // SAFETY: as above.
    assert_eq!(unsafe { mm_sim_set_start_stack(s.0, 0x7fff_0000_0000) }, 0);
}

const SNAPSHOT: &str = "\
555555554000-555555556000 r--p 00000000 fd:01 1234                       /usr/bin/prog
555555556000-555555557000 r-xp 00002000 fd:01 1234                       /usr/bin/prog
555555559000-55555557a000 rw-p 00000000 00:00 0                          [heap]
7ffff7fc3000-7ffff7fc5000 r--p 00000000 fd:01 99                         /usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2
7ffff7fc5000-7ffff7fef000 r-xp 00002000 fd:01 99                         /usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2
7ffffffde000-7ffffffff000 rw-p 00000000 00:00 0                          [stack]
ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]
";

#[test]
fn import_round_trip() {
    let s = Sim::new();
    let text = CString::new(SNAPSHOT).unwrap();
    // SAFETY: a live handle and a NUL-terminated string.
    assert_eq!(unsafe { mm_sim_import_maps(s.0, text.as_ptr()) }, 0, "{:?}", s.error());
    assert_eq!(s.maps(), SNAPSHOT);
    // SAFETY: a live handle.
    assert_eq!(unsafe { mm_sim_brk(s.0, 0) }, 0x5555_5557_a000);
    // The mmap base is the interpreter's top: a new mapping goes below it.
    let a = s.mmap(0, PAGE, RW, ANON).unwrap();
    assert_eq!(a, 0x7fff_f7fc_2000);
}

#[test]
fn bad_snapshot_is_einval_with_the_line() {
    let s = Sim::new();
    for (text, want) in [
        ("1000-2000 rw-p 00000000 00:00 0\nzzz\n", "line 2"),
        ("2000-1000 rw-p 00000000 00:00 0\n", "bad range"),
        ("1000-3000 rw-p 0 00:00 0\n2000-4000 rw-p 0 00:00 0\n", "overlaps"),
        ("1000-2000 rw-p 00000000 00:00 0 \u{e9}\n3000-2000 x\n", "line 2"),
    ] {
        let c = CString::new(text).unwrap();
        let fresh = Sim::new();
        // SAFETY: a live handle and a NUL-terminated string.
        assert_eq!(unsafe { mm_sim_import_maps(fresh.0, c.as_ptr()) }, MM_SIM_EINVAL);
        let e = fresh.error().unwrap();
        assert!(e.contains(want), "{text:?}: {e}");
    }
    let _ = s;
}

#[test]
fn null_pointers_and_bad_utf8() {
    // SAFETY: NULL handles and pointers are what the functions must
    // reject.
    unsafe {
        assert_eq!(mm_sim_munmap(null_mut(), 0, PAGE), MM_SIM_EINVAL);
        assert_eq!(mm_sim_import_maps(null_mut(), null()), MM_SIM_EINVAL);
        assert_eq!(mm_sim_brk(null_mut(), 0), 0);
        assert!(mm_sim_maps(null_mut()).is_null());
        assert!(mm_sim_last_error(null()).is_null());
        assert_eq!(mm_sim_lookup(null_mut(), 0, null_mut()), -MM_SIM_EINVAL);
        mm_sim_free(null_mut());
        mm_sim_string_free(null_mut());
    }
    let s = Sim::new();
    // SAFETY: a live handle; NULL strings and out-pointers.
    unsafe {
        assert_eq!(mm_sim_import_maps(s.0, null()), MM_SIM_EFAULT);
        assert!(s.error().unwrap().contains("NULL"));
        assert_eq!(mm_sim_open(s.0, null(), 0, &mut 0), MM_SIM_EFAULT);
        assert_eq!(mm_sim_mmap(s.0, 0, PAGE, RW, ANON, -1, 0, null_mut()), MM_SIM_EFAULT);
        assert_eq!(mm_sim_mremap(s.0, 0, PAGE, PAGE, 0, 0, null_mut()), MM_SIM_EFAULT);
        assert_eq!(mm_sim_fault(s.0, 0, 0, null_mut()), MM_SIM_EFAULT);
        assert_eq!(mm_sim_brk_range(s.0, null_mut(), &mut 0), MM_SIM_EFAULT);
        assert_eq!(mm_sim_lookup(s.0, 0, null_mut()), -MM_SIM_EFAULT);
        assert_eq!(mm_sim_lookup_speculative(s.0, 0, null_mut()), -MM_SIM_EFAULT);
    }
    // A NULL out-pointer is refused before the call has an effect.
    assert_eq!(s.maps().lines().count(), 1, "only [vsyscall]");
    let bad: &[u8] = b"/tmp/\xff\xfe\0";
    let mut fd = -1;
    // SAFETY: a live handle and a NUL-terminated (non-UTF-8) string.
    let r = unsafe { mm_sim_open(s.0, bad.as_ptr() as *const c_char, 0, &mut fd) };
    assert_eq!((r, fd), (MM_SIM_EINVAL, -1));
    assert!(s.error().unwrap().contains("UTF-8"));
    let bad: &[u8] = b"1000-2000 rw-p 00000000 00:00 0 \xff\0";
    // SAFETY: as above.
    let r = unsafe { mm_sim_import_maps(s.0, bad.as_ptr() as *const c_char) };
    assert_eq!(r, MM_SIM_EINVAL);
}

/// The crate docs say a handle may move between threads.
#[test]
fn a_handle_is_send() {
    fn send<T: Send>() {}
    send::<MmSim>();
}

#[test]
fn a_panic_poisons_the_handle() {
    let s = Sim::new();
    // SAFETY: a live handle used by this thread only.
    let h = unsafe { handle(s.0) };
    let r: Result<(), i32> = run(h, "test", |_| panic!("boom"));
    assert_eq!(r, Err(MM_SIM_EPANIC));
    let e = s.error().unwrap();
    assert!(e.contains("panic") && e.contains("boom"), "{e}");
    // SAFETY: a live handle.
    assert_eq!(unsafe { mm_sim_munmap(s.0, 0, PAGE) }, MM_SIM_EPANIC);
    assert!(s.error().unwrap().contains("poisoned"));
    assert_eq!(s.mmap(0, PAGE, RW, ANON), Err(MM_SIM_EPANIC));
}

#[test]
fn host_handle_opens_host_files() {
    let p = mm_sim_new_host();
    assert!(!p.is_null());
    let s = Sim(p);
    let path = CString::new(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")).unwrap();
    let mut fd = -1;
    // SAFETY: a live handle, a NUL-terminated string, a valid out-pointer.
    assert_eq!(unsafe { mm_sim_open(s.0, path.as_ptr(), O_RDONLY, &mut fd) }, 0);
    let mut a = 0;
    // SAFETY: as above.
    let r = unsafe { mm_sim_mmap(s.0, 0, PAGE, PROT_READ, MAP_PRIVATE, fd, 0, &mut a) };
    assert_eq!(r, 0);
    let ino = {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
            .unwrap()
            .ino()
    };
    assert_eq!(s.lookup(a).1.inode, ino);
}

#[test]
fn mseal_seals_one_page_and_refuses_its_unmap() {
    let s = Sim::new();
    let a = s.mmap(0, 3 * PAGE, RW, ANON).unwrap();
    // SAFETY: a live handle (and so for the next blocks).
    assert_eq!(unsafe { mm_sim_mseal(s.0, a + PAGE, PAGE, 0) }, 0);
    assert!(
        s.maps().contains(&format!("{:x}-{:x} rw-p", a + PAGE, a + 2 * PAGE)),
        "{}",
        s.maps()
    );
    // SAFETY: as above.
    assert_eq!(unsafe { mm_sim_munmap(s.0, a, 3 * PAGE) }, Errno::EPERM.0);
    // SAFETY: as above.
    assert_eq!(unsafe { mm_sim_mseal(s.0, a, PAGE, 1) }, EINVAL_);
    // SAFETY: as above.
    assert_eq!(unsafe { mm_sim_mseal(s.0, a, 4 * PAGE, 0) }, ENOMEM_);
}

#[test]
fn sysv_shm_attaches_detaches_and_removes() {
    let s = Sim::new();
    let (mut id, mut a) = (-1i64, 0u64);
    // SAFETY: a live handle and valid out pointers (and so for the next
    // blocks).
    assert_eq!(unsafe { mm_sim_shmget(s.0, 0, 5000, 0o1600, &mut id) }, 0);
    assert_eq!(id, 0);
    // SAFETY: as above.
    assert_eq!(unsafe { mm_sim_shmat(s.0, id, 0, 0o10000, &mut a) }, 0);
    assert!(
        s.maps()
            .contains(&format!("{:x}-{:x} r--s 00000000 00:01 0", a, a + 2 * PAGE)),
        "{}",
        s.maps()
    );
    // SAFETY: as above.
    assert_eq!(unsafe { mm_sim_shmdt(s.0, a + 1) }, EINVAL_);
    // SAFETY: as above.
    assert_eq!(unsafe { mm_sim_shmctl_rmid(s.0, id) }, 0);
    // SAFETY: as above.
    assert_eq!(unsafe { mm_sim_shmdt(s.0, a) }, 0);
    // SAFETY: as above: destroyed at the last detach.
    assert_eq!(unsafe { mm_sim_shmat(s.0, id, 0, 0, &mut a) }, EINVAL_);
    // SAFETY: as above.
    assert_eq!(unsafe { mm_sim_shmget(s.0, 0, 0, 0o1000, &mut id) }, EINVAL_);
}

#[test]
fn mlock_splits_and_munlock_merges() {
    let s = Sim::new();
    let a = s.mmap(0, 4 * PAGE, RW, ANON).unwrap();
    let vmas = |s: &Sim| s.maps().lines().filter(|l| !l.contains("vsyscall")).count();
    // SAFETY: a live handle (and so for the next blocks).
    assert_eq!(unsafe { mm_sim_mlock(s.0, a + PAGE, PAGE, 0) }, 0);
    assert_eq!(vmas(&s), 3, "{}", s.maps());
    // SAFETY: as above.
    assert_eq!(unsafe { mm_sim_munlock(s.0, a + PAGE, PAGE) }, 0);
    assert_eq!(vmas(&s), 1, "{}", s.maps());
    // A hole: ENOMEM. Bad mlock2 flags: EINVAL.
    // SAFETY: as above.
    assert_eq!(unsafe { mm_sim_mlock(s.0, a + 4 * PAGE, PAGE, 0) }, ENOMEM_);
    // SAFETY: as above.
    assert_eq!(unsafe { mm_sim_mlock(s.0, a, PAGE, 2) }, EINVAL_);
    // mlockall(MCL_CURRENT | MCL_ONFAULT), then munlockall (flags 0).
    // SAFETY: as above.
    assert_eq!(unsafe { mm_sim_mlockall(s.0, 1 | 4) }, 0);
    // SAFETY: as above.
    assert_eq!(unsafe { mm_sim_mlockall(s.0, 0) }, 0);
    assert_eq!(vmas(&s), 1, "{}", s.maps());
    // SAFETY: NULL is allowed.
    assert_eq!(unsafe { mm_sim_mlock(std::ptr::null_mut(), a, PAGE, 0) }, MM_SIM_EINVAL);
}
