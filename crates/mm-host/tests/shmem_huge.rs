//! Where shmem objects are placed when huge pages may back them
//! (`shmem_get_unmapped_area`, `mm/shmem.c`), against the host: tmpfs
//! mounted with `huge=always`, `within_size` and `advise` (private mounts,
//! as root), and the `shmem_enabled` knob for memfds, shared anonymous
//! memory, `/dev/zero` and System V segments.
//!
//! `shmem_knob` writes `/sys/kernel/mm/transparent_hugepage/shmem_enabled`
//! and `shmem_pmd_knob` the 2 MiB per-size knob (global settings), and
//! put the old values back; the tests of this binary take turns, and the
//! test binaries of `cargo test` run one after the other. Set
//! `MM_NO_GLOBAL_KNOBS=1` to skip those two.
#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

#[allow(dead_code)]
#[path = "scenarios/harness.rs"]
mod harness;

use std::path::PathBuf;
use std::process::Command;

use harness::{Sc, at, mmap, run};
use mm_ops::call::{Call, Outcome};
use mm_ops::kernel::shm::{IPC_CREAT, IPC_PRIVATE};
use mm_ops::uapi::*;

const M: u64 = 1 << 20;

/// The tests of this binary run one at a time: two write global knobs
/// that the others' placements depend on.
static KNOBS: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serialized() -> std::sync::MutexGuard<'static, ()> {
    KNOBS.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A private tmpfs mount, unmounted when dropped.
struct Mount(PathBuf);

impl Mount {
    fn tmpfs(huge: &str) -> Option<Mount> {
        let dir = std::env::temp_dir().join(format!("mm-shmem-{}-{huge}", std::process::id()));
        std::fs::create_dir_all(&dir).ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size=64m,huge={huge}"), "none"])
            .arg(&dir)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = std::fs::remove_dir(&dir);
            return None;
        }
        Some(Mount(dir))
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// The 2 MiB-aligned results among `addrs`.
fn aligned(addrs: &[u64]) -> usize {
    addrs.iter().filter(|&&a| a % (2 * M) == 0).count()
}

/// Mappings of an 8 MiB file placed by the kernel: lengths around 2 MiB,
/// offsets aligned and not, a free hint (kept) and `MAP_FIXED`. Returns
/// the addresses of the 4 MiB mappings at offset 0.
fn file_placements(s: &mut Sc, fd: i64) -> Vec<u64> {
    let mut big = vec![];
    for (len, flags, off) in [
        (4 * M, MAP_SHARED, 0),
        (4 * M, MAP_PRIVATE, 0),
        (4 * M, MAP_SHARED, M),
        (3 * M, MAP_SHARED, 2 * M),
        (2 * M, MAP_SHARED, 0),
        (M, MAP_SHARED, 0),
        (2 * M + 4096, MAP_SHARED, 4096),
    ] {
        let a = s.ok(mmap(0, len, PROT_READ, flags, fd, off));
        if len == 4 * M && off == 0 {
            big.push(a);
        }
    }
    // A free hint is kept; MAP_FIXED is kept.
    s.ok(mmap(at(1), 4 * M, PROT_READ, MAP_SHARED, fd, 0));
    s.ok(mmap(at(4096), 4 * M, PROT_READ, MAP_SHARED | MAP_FIXED, fd, 0));
    big
}

fn on_mount(s: &mut Sc, dir: &std::path::Path) -> Vec<u64> {
    let path = dir.join("data");
    std::fs::write(&path, vec![0u8; 8 << 20]).unwrap();
    let fd = s.open(path.to_str().unwrap(), oflags::O_RDWR);
    let big = file_placements(s, fd);
    // mremap of a 4 MiB mapping to a new place: the file's placement again.
    let a = big[0];
    s.ok(Call::Mremap {
        old_addr: a,
        old_len: 4 * M,
        new_len: 6 * M,
        flags: MREMAP_MAYMOVE,
        new_addr: 0,
    });
    s.ok(Call::Close { fd });
    big
}

#[test]
fn tmpfs_huge_mounts() {
    let _serial = serialized();
    if !is_root() {
        eprintln!("not root: cannot mount tmpfs; skipping");
        return;
    }
    for huge in ["always", "within_size", "advise", "never"] {
        let Some(m) = Mount::tmpfs(huge) else {
            eprintln!("cannot mount tmpfs with huge={huge}; skipping");
            continue;
        };
        let dir = m.0.clone();
        let mut big = vec![];
        let n = harness::run_with_state(huge, |s| big = on_mount(s, &dir));
        println!("tmpfs huge={huge}: {n} host-compared calls, 4 MiB mappings at {big:x?}");
        // The kernel's side: with huge pages allowed the 4 MiB mappings
        // at offset 0 are 2 MiB aligned; with huge=never, placement is
        // plain (the top-down search leaves them page aligned below the
        // previous mapping).
        if huge != "never" {
            assert_eq!(aligned(&big), big.len(), "huge={huge}: {big:x?}");
        }
        drop(m);
    }
}

/// memfd, shared anonymous memory, `/dev/zero` and a System V segment of
/// 4 MiB, and an mremap of shared anonymous memory; returns the
/// addresses of the first four.
fn internal_objects(s: &mut Sc) -> Vec<u64> {
    let fd = s.ok(Call::MemfdCreate {
        name: "big".into(),
        flags: 0,
    }) as i64;
    s.ok(Call::Ftruncate { fd, length: 8 * M });
    let mut got = vec![s.ok(mmap(0, 4 * M, PROT_READ, MAP_SHARED, fd, 0))];
    s.ok(mmap(0, 4 * M, PROT_READ, MAP_SHARED, fd, M));
    let anon = s.ok(mmap(0, 4 * M, PROT_READ, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
    got.push(anon);
    let z = s.open("/dev/zero", oflags::O_RDWR);
    got.push(s.ok(mmap(0, 4 * M, PROT_READ, MAP_SHARED, z, 0)));
    let id = s.ok(Call::Shmget {
        key: IPC_PRIVATE,
        size: 4 * M,
        flags: IPC_CREAT | 0o600,
    }) as i64;
    got.push(s.ok(Call::Shmat { id, addr: 0, flags: 0 }));
    s.ok(Call::Mremap {
        old_addr: anon,
        old_len: 4 * M,
        new_len: 6 * M,
        flags: MREMAP_MAYMOVE,
        new_addr: 0,
    });
    // Small ones stay plain.
    s.ok(mmap(0, M, PROT_READ, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
    s.expect(Call::ShmctlRmid { id }, Outcome::Val(0));
    got
}

const KNOB: &str = "/sys/kernel/mm/transparent_hugepage/shmem_enabled";
const PMD_KNOB: &str = "/sys/kernel/mm/transparent_hugepage/hugepages-2048kB/shmem_enabled";

/// Writes `value` to the sysfs `knob`; returns the old value.
fn set_knob(knob: &str, value: &str) -> Option<String> {
    let old = std::fs::read_to_string(knob).ok()?;
    let old = old.split('[').nth(1)?.split(']').next()?.to_string();
    std::fs::write(knob, value).ok()?;
    Some(old)
}

fn set_shmem_enabled(value: &str) -> Option<String> {
    set_knob(KNOB, value)
}

#[test]
fn shmem_knob() {
    let _serial = serialized();
    if std::env::var_os("MM_NO_GLOBAL_KNOBS").is_some() || !is_root() {
        eprintln!("MM_NO_GLOBAL_KNOBS set, or not root; skipping");
        return;
    }
    for value in ["always", "advise", "within_size", "deny", "force", "never"] {
        let Some(old) = set_shmem_enabled(value) else {
            eprintln!("cannot set shmem_enabled; skipping");
            return;
        };
        let mut got = vec![];
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            harness::run_with_state(value, |s| got = internal_objects(s))
        }));
        set_shmem_enabled(&old);
        let n = r.unwrap_or_else(|e| std::panic::resume_unwind(e));
        println!("shmem_enabled={value}: {n} host-compared calls, 4 MiB objects at {got:x?}");
        if matches!(value, "always" | "within_size" | "advise" | "force") {
            assert_eq!(aligned(&got), got.len(), "shmem_enabled={value}: {got:x?}");
        }
    }
}

#[test]
fn defaults_are_plain() {
    let _serial = serialized();
    // Whatever the knob says now, the scenario runs and matches.
    let n = run("defaults", |s| {
        internal_objects(s);
    });
    println!("shmem defaults: {n} host-compared calls");
}

#[test]
fn shmem_pmd_knob() {
    let _serial = serialized();
    if std::env::var_os("MM_NO_GLOBAL_KNOBS").is_some() || !is_root() {
        eprintln!("MM_NO_GLOBAL_KNOBS set, or not root; skipping");
        return;
    }
    // The PMD size on for anonymous shmem only, shmem_enabled never: shared
    // anonymous memory and /dev/zero are aligned, a memfd and a System V
    // segment (which have their file) are placed plainly.
    let Some(old_global) = set_knob(KNOB, "never") else {
        eprintln!("cannot set shmem_enabled; skipping");
        return;
    };
    let Some(old_pmd) = set_knob(PMD_KNOB, "always") else {
        set_knob(KNOB, &old_global);
        eprintln!("cannot set the 2048kB shmem_enabled; skipping");
        return;
    };
    let mut got = vec![];
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        harness::run_with_state("pmd_always", |s| got = internal_objects(s))
    }));
    set_knob(PMD_KNOB, &old_pmd);
    set_knob(KNOB, &old_global);
    let n = r.unwrap_or_else(|e| std::panic::resume_unwind(e));
    println!("hugepages-2048kB/shmem_enabled=always: {n} host-compared calls, 4 MiB objects at {got:x?}");
    // (The System V segment, placed right below an aligned 4 MiB mapping,
    // is aligned by the plain search too: nothing to tell from it.)
    let a: Vec<bool> = got[..3].iter().map(|&x| x % (2 * M) == 0).collect();
    assert_eq!(a, [false, true, true], "memfd, shared anon, /dev/zero: {got:x?}");
}
