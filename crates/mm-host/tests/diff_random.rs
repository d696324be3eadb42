//! Random differential testing against the host kernel: every result and
//! the whole /proc/PID/maps (but dev and inode) must be identical.
//!
//! Knobs: `MM_DIFF_SEED` (first seed, default 1), `MM_DIFF_OPS` (total
//! calls, default 10000), `MM_DIFF_SESSION` (calls per fresh helper, 200).

use std::path::{Path, PathBuf};
use std::process::Command;

use mm_host::callgen::{run_session, temp_dir};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[test]
fn random_calls_match_the_host_kernel() {
    let seed0 = env("MM_DIFF_SEED", 1);
    let total = env("MM_DIFF_OPS", 10000) as usize;
    let per = env("MM_DIFF_SESSION", 200).max(1) as usize;
    let dir = temp_dir("diff").unwrap();
    let mut all = mm_host::callgen::SessionStats::default();
    let (mut calls, mut maps, mut sessions) = (0, 0, 0);
    let mut seed = seed0;
    while calls < total {
        let n = per.min(total - calls);
        match run_session(seed, n, &dir).unwrap_or_else(|e| panic!("host helper, session with seed {seed}: {e}")) {
            Ok(s) => {
                all.merge(&s);
                calls += s.calls;
                maps += s.maps;
                sessions += 1;
            }
            Err(d) => panic!("{d}"),
        }
        seed += 1;
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(all.procmap_queries > 0, "PROCMAP_QUERY was compared");
    mm_host::summary::report(
        "diff_random",
        &format!(
            "differential: {calls} random calls in {sessions} sessions (seeds {seed0}..{seed}), {maps} maps snapshots (also read under per-VMA locks), {} PROCMAP_QUERY rounds, all identical to the host kernel",
            all.procmap_queries
        ),
    );
    if std::env::var_os("MM_DIFF_VERBOSE").is_some() {
        println!("max VMAs {}; outcomes:", all.max_vmas);
        for (k, v) in &all.outcomes {
            println!("  {v:6} {k}");
        }
    }
    assert!(calls >= total);
}

/// `sessions` sessions of `per` calls from `seed`, with the files in `dir`.
fn sessions_in(dir: &Path, seed: u64, sessions: u64, per: usize) -> usize {
    let mut calls = 0;
    for seed in seed..seed + sessions {
        match run_session(seed, per, dir).unwrap_or_else(|e| panic!("host helper, session with seed {seed}: {e}")) {
            Ok(s) => calls += s.calls,
            Err(d) => panic!("files in {}: {d}", dir.display()),
        }
    }
    calls
}

/// A private mount, unmounted (and its directory removed) on drop.
struct Mount(PathBuf);

impl Mount {
    fn new(args: &[&str], dir: PathBuf) -> Mount {
        std::fs::create_dir_all(&dir).unwrap();
        let ok = Command::new("mount").args(args).arg(&dir).status().unwrap().success();
        assert!(ok, "mount {args:?} {}", dir.display());
        Mount(dir)
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// The same random calls with the files on a private tmpfs (shmem files:
/// no THP placement), then on a read-only bind mount of it (`EROFS` for
/// opens that ask to write, after the permission bits), then on the tmpfs
/// remounted read-only (`EROFS` before them), on ramfs and on overlayfs.
/// Root only: it mounts.
#[test]
fn random_calls_match_on_tmpfs_and_read_only_mounts() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("not root: cannot mount; skipping");
        return;
    }
    let base = std::env::temp_dir().join(format!("mm-sim-diff-mnt-{}", std::process::id()));
    let tmpfs = Mount::new(
        &["-t", "tmpfs", "-o", "size=64m,huge=never", "none"],
        base.join("tmpfs"),
    );
    let per = env("MM_DIFF_SESSION", 200).max(1) as usize;
    let mut calls = sessions_in(&tmpfs.0, 7000, 10, per);
    let ro = Mount::new(&["--bind", "-o", "ro", tmpfs.0.to_str().unwrap()], base.join("ro"));
    // A bind mount takes ro only on a remount on some util-linux versions.
    let _ = Command::new("mount")
        .args(["-o", "remount,bind,ro"])
        .arg(&ro.0)
        .status();
    assert!(
        std::fs::File::create(ro.0.join("probe")).is_err(),
        "the bind mount is read-only"
    );
    calls += sessions_in(&ro.0, 7100, 10, per);
    drop(ro);
    // The file system itself read-only: EROFS before the mode bits.
    let ok = Command::new("mount")
        .args(["-o", "remount,ro"])
        .arg(&tmpfs.0)
        .status()
        .unwrap()
        .success();
    assert!(ok, "remount {} read-only", tmpfs.0.display());
    calls += sessions_in(&tmpfs.0, 7200, 10, per);
    // ramfs: no shmem, and its files place their own mappings.
    let ramfs = Mount::new(&["-t", "ramfs", "none"], base.join("ramfs"));
    calls += sessions_in(&ramfs.0, 7300, 10, per);
    drop(ramfs);
    // overlayfs, as containers mount their images: no get_unmapped_area
    // (plain placement), no MAP_SYNC; upper and work directories on a
    // tmpfs of their own.
    let upper = Mount::new(&["-t", "tmpfs", "-o", "size=64m", "none"], base.join("upper"));
    for d in ["u", "w"] {
        std::fs::create_dir_all(upper.0.join(d)).unwrap();
    }
    std::fs::create_dir_all(base.join("lower")).unwrap();
    let opts = format!(
        "lowerdir={},upperdir={}/u,workdir={}/w",
        base.join("lower").display(),
        upper.0.display(),
        upper.0.display()
    );
    let overlay = Mount::new(&["-t", "overlay", "-o", &opts, "overlay"], base.join("overlay"));
    calls += sessions_in(&overlay.0, 7400, 10, per);
    drop(overlay);
    drop(upper);
    let _ = std::fs::remove_dir(base.join("lower"));
    drop(tmpfs);
    let _ = std::fs::remove_dir(&base);
    mm_host::summary::report(
        "diff_random_mounts",
        &format!(
            "differential: {calls} random calls with the files on tmpfs, a read-only bind mount of it, the tmpfs read-only, ramfs and overlayfs, all identical to the host kernel"
        ),
    );
}
