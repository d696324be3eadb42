//! Random differential testing against the host kernel: every result and
//! the whole /proc/PID/maps (but dev and inode) must be identical.
//!
//! Knobs: `MM_DIFF_SEED` (first seed, default 1), `MM_DIFF_OPS` (total
//! calls, default 10000), `MM_DIFF_SESSION` (calls per fresh helper, 200).

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
        match run_session(seed, n, &dir).expect("host helper") {
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
