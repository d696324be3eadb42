//! Where a file lives decides where its mappings go: ext4-like file
//! systems place large mappings with `thp_get_unmapped_area` (2 MiB
//! aligned to the file offset), tmpfs mounted `huge=never` and ramfs do
//! not, nor does overlayfs. Each scenario mounts a private tmpfs, ramfs or
//! overlayfs (root only), maps
//! files there on the host and in the model, and compares every result and
//! the maps; it unmounts after.
#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

#[path = "scenarios/harness.rs"]
#[allow(dead_code)]
mod harness;

use std::path::PathBuf;
use std::process::Command;

use harness::{P, Sc, at, hugetlb_pool, mmap, run};
use mm_ops::call::Call;
use mm_ops::uapi::Errno;
use mm_ops::uapi::*;

/// Root may mount; otherwise the test says it skips.
fn can_mount() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() == 0 };
    if !root {
        eprintln!("not root: cannot mount; skipping");
    }
    root
}

fn mount_dir(fs: &str) -> PathBuf {
    std::env::temp_dir().join(format!("mm-fs-{}-{fs}", std::process::id()))
}

/// A mount of `fs` that is unmounted (and its directory removed) on drop.
struct Mount(PathBuf);

impl Mount {
    fn new(fs: &str, opts: &str) -> Mount {
        Self::named(fs, opts, fs)
    }

    /// A mount of `fs` at `mount_dir(name)` (tests run in parallel: each
    /// mount needs its own directory).
    fn named(fs: &str, opts: &str, name: &str) -> Mount {
        let dir = mount_dir(name);
        std::fs::create_dir_all(&dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", fs, "-o", opts, "none", dir.to_str().unwrap()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "mount -t {fs} {}", dir.display());
        Mount(dir)
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// Large shared and private mappings of an 8 MiB file, at offsets 0 and
/// 1 MiB, placed by the kernel (no hint).
fn large_mappings(s: &mut Sc, dir: PathBuf) {
    let path = dir.join("data");
    std::fs::write(&path, vec![0u8; 8 << 20]).unwrap();
    let fd = s.open(path.to_str().unwrap(), oflags::O_RDWR);
    for (flags, off) in [
        (MAP_SHARED, 0),
        (MAP_PRIVATE, 0),
        (MAP_SHARED, 1 << 20),
        (MAP_PRIVATE, 1 << 20),
    ] {
        s.ok(mmap(0, 4 << 20, PROT_READ, flags, fd, off));
    }
    s.ok(Call::Close { fd });
}

/// What else the file system decides: `MAP_SYNC` (ext4 and xfs take it
/// through `MAP_SHARED_VALIDATE` and refuse it after a `MAP_FIXED` mapping
/// has cleared its range; the others refuse it first, the old mapping
/// stays), `MADV_REMOVE` (`fallocate`: ramfs has none), and whether a
/// `mremap` moves a file VMA together with its neighbours (ramfs's own
/// `get_unmapped_area`: alone).
fn file_semantics(s: &mut Sc, dir: PathBuf) {
    let path = dir.join("sem");
    std::fs::write(&path, vec![0u8; 1 << 20]).unwrap();
    let fd = s.open(path.to_str().unwrap(), oflags::O_RDWR);
    s.anon(0, 4, PROT_READ);
    s.err(
        mmap(at(0), P, PROT_READ, MAP_SHARED_VALIDATE | MAP_SYNC | MAP_FIXED, fd, 0),
        Errno::EOPNOTSUPP,
    );
    s.map(8, 4, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    s.step(Call::Madvise {
        addr: at(8),
        len: P,
        advice: madv::REMOVE,
    });
    s.anon(12, 2, PROT_READ | PROT_WRITE);
    s.step(Call::Mremap {
        old_addr: at(8),
        old_len: 6 * P,
        new_len: 6 * P,
        flags: MREMAP_MAYMOVE | MREMAP_FIXED,
        new_addr: at(32),
    });
    s.ok(Call::Close { fd });
}

fn all_of(s: &mut Sc, dir: PathBuf) {
    large_mappings(s, dir.clone());
    file_semantics(s, dir);
}

fn on_ramfs(s: &mut Sc) {
    all_of(s, mount_dir("ramfs"));
}

fn on_tmpfs(s: &mut Sc) {
    all_of(s, mount_dir("tmpfs"));
}

fn on_overlay(s: &mut Sc) {
    all_of(s, mount_dir("overlay").join("merged"));
}

fn on_disk(s: &mut Sc) {
    // The temporary directory of this machine (ext4 here).
    let dir = std::env::temp_dir().join(format!("mm-fs-{}-disk", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    all_of(s, dir.clone());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// An overlayfs (upper and work directories on a private tmpfs) at
/// `mount_dir("overlay")/merged`, the way container images are mounted:
/// overlayfs has no `get_unmapped_area`, whatever file system is below.
fn overlay_mount() -> (Mount, Mount) {
    let base = Mount::named("tmpfs", "size=64m", "overlay-base");
    let top = mount_dir("overlay");
    for d in ["lower", "upper", "work", "merged"] {
        std::fs::create_dir_all(top.join(d)).unwrap();
    }
    let b = base.0.display().to_string();
    std::fs::create_dir_all(base.0.join("upper")).unwrap();
    std::fs::create_dir_all(base.0.join("work")).unwrap();
    let opts = format!(
        "lowerdir={},upperdir={b}/upper,workdir={b}/work",
        top.join("lower").display()
    );
    let merged = top.join("merged");
    let ok = Command::new("mount")
        .args(["-t", "overlay", "-o", &opts, "overlay", merged.to_str().unwrap()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "mount -t overlay {}", merged.display());
    (Mount(merged), base)
}

#[test]
fn fs_overlay() {
    if !can_mount() {
        return;
    }
    let (merged, base) = overlay_mount();
    run("overlay", on_overlay);
    drop(merged);
    drop(base);
    let _ = std::fs::remove_dir_all(mount_dir("overlay"));
}

#[test]
fn fs_ramfs() {
    if !can_mount() {
        return;
    }
    let _m = Mount::new("ramfs", "mode=0755");
    run("ramfs", on_ramfs);
}

#[test]
fn fs_tmpfs_huge_never() {
    if !can_mount() {
        return;
    }
    let _m = Mount::new("tmpfs", "size=64m,huge=never");
    run("tmpfs", on_tmpfs);
}

#[test]
fn fs_disk() {
    run("disk", on_disk);
}

fn on_hugetlbfs(s: &mut Sc) {
    let path = mount_dir("hugetlbfs").join("data");
    let fd = s.open(path.to_str().unwrap(), oflags::O_RDWR | oflags::O_CREAT);
    s.err(Call::Ftruncate { fd, length: 4096 }, Errno::EINVAL);
    s.ok(Call::Ftruncate { fd, length: 8 << 20 });
    for (len, flags, off) in [
        (4 << 20, MAP_SHARED | MAP_NORESERVE, 0),
        (4096, MAP_SHARED | MAP_NORESERVE, 2 << 20),
        (4 << 20, MAP_PRIVATE | MAP_NORESERVE, 0),
    ] {
        s.ok(mmap(0, len, PROT_READ, flags, fd, off));
    }
    s.err(mmap(0, 2 << 20, PROT_READ, MAP_SHARED, fd, 0), Errno::ENOMEM);
    s.ok(Call::Close { fd });
}

#[test]
fn fs_hugetlbfs() {
    if !can_mount() {
        return;
    }
    if hugetlb_pool() != 0 {
        eprintln!("a huge page pool is configured; this scenario expects none; skipping");
        return;
    }
    let _m = Mount::new("hugetlbfs", "mode=0755");
    run("hugetlbfs", on_hugetlbfs);
}
