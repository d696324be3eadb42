//! Reading a process's environment from `/proc` and `/sys`
//! ([`ProcEnv::of_process`]).

use super::*;

impl ProcEnv {
    /// The environment of process `pid` (`None`: this process), read from
    /// `/proc` and `/sys`. Values that cannot be read keep their defaults
    /// and are named in the second part of the result.
    pub fn of_process(pid: Option<u32>) -> (ProcEnv, Vec<String>) {
        let mut env = ProcEnv::default();
        let mut missing = Vec::new();
        let proc_dir = pid.map_or("/proc/self".to_string(), |p| format!("/proc/{p}"));
        let read = |path: &str, missing: &mut Vec<String>| -> Option<String> {
            let r = std::fs::read_to_string(path).ok();
            if r.is_none() {
                missing.push(path.to_string());
            }
            r
        };
        if let Some(mi) = read("/proc/meminfo", &mut missing) {
            let field = |name: &str| {
                mi.lines()
                    .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                    .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            };
            env.mem_total_kb = field("MemTotal").unwrap_or(env.mem_total_kb);
            env.swap_total_kb = field("SwapTotal").unwrap_or(0);
            env.hugetlb_total_kb = field("HugePages_Total").unwrap_or(0) * field("Hugepagesize").unwrap_or(0);
        }
        for (i, size) in ["2048kB", "1048576kB"].into_iter().enumerate() {
            let pool = |name: &str| {
                std::fs::read_to_string(format!("/sys/kernel/mm/hugepages/hugepages-{size}/{name}"))
                    .ok()
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .unwrap_or(0)
            };
            env.hugetlb_free[i] = pool("free_hugepages");
            env.hugetlb_resv[i] = pool("resv_hugepages");
        }
        for (key, path) in [
            ("overcommit_memory", "/proc/sys/vm/overcommit_memory"),
            ("overcommit_ratio", "/proc/sys/vm/overcommit_ratio"),
            ("overcommit_kbytes", "/proc/sys/vm/overcommit_kbytes"),
            ("max_map_count", "/proc/sys/vm/max_map_count"),
            ("hugetlb_shm_group", "/proc/sys/vm/hugetlb_shm_group"),
            ("mmap_min_addr", "/proc/sys/vm/mmap_min_addr"),
            ("legacy_va_layout", "/proc/sys/vm/legacy_va_layout"),
            ("thp_enabled", "/sys/kernel/mm/transparent_hugepage/enabled"),
            ("shmem_enabled", "/sys/kernel/mm/transparent_hugepage/shmem_enabled"),
            (
                "shmem_pmd",
                "/sys/kernel/mm/transparent_hugepage/hugepages-2048kB/shmem_enabled",
            ),
            ("personality", &format!("{proc_dir}/personality")),
        ] {
            if let Some(v) = read(path, &mut missing)
                && env.set(key, v.trim()).is_err()
            {
                missing.push(path.to_string());
            }
        }
        // Protection keys: the CPU has them and the kernel turned them on.
        if let Some(cpuinfo) = read("/proc/cpuinfo", &mut missing) {
            let flags = cpuinfo.lines().find_map(|l| l.strip_prefix("flags")).unwrap_or("");
            env.pkeys = flags.split_whitespace().any(|w| w == "ospke");
            // The kernel clears la57 when it runs with 4-level tables.
            env.la57 = flags.split_whitespace().any(|w| w == "la57");
        }
        if let Some(maps) = read(&format!("{proc_dir}/maps"), &mut missing) {
            env.vsyscall = match maps.lines().find(|l| l.ends_with("[vsyscall]")) {
                Some(l) if l.split_whitespace().nth(1).is_some_and(|p| p.starts_with('r')) => Vsyscall::Emulate,
                Some(_) => Vsyscall::XOnly,
                None => Vsyscall::None,
            };
        }
        if let Some(limits) = read(&format!("{proc_dir}/limits"), &mut missing) {
            for (key, name) in [
                ("rlimit_as", "Max address space"),
                ("rlimit_data", "Max data size"),
                ("rlimit_stack", "Max stack size"),
                ("rlimit_memlock", "Max locked memory"),
                ("rlimit_nofile", "Max open files"),
                ("rlimit_fsize", "Max file size"),
            ] {
                let soft = limits
                    .lines()
                    .find_map(|l| l.strip_prefix(name))
                    .and_then(|rest| rest.split_whitespace().next());
                if soft.is_none_or(|s| env.set(key, s).is_err()) {
                    missing.push(format!("{proc_dir}/limits: {name}"));
                }
            }
            // The hard limits: the third column of every line after the
            // heading, in `RLIMIT_*` order (a name has one to three words).
            let hard: Vec<&str> = limits
                .lines()
                .skip(1)
                .filter_map(|l| l.get(26..).and_then(|rest| rest.split_whitespace().nth(1)))
                .collect();
            if env.set("rlimit_max", &hard.join(" ")).is_err() {
                missing.push(format!("{proc_dir}/limits: Hard Limit"));
            }
        }
        if let Some(status) = read(&format!("{proc_dir}/status"), &mut missing) {
            let field = |name: &str| status.lines().find_map(|l| l.strip_prefix(name)).map(str::trim);
            if field("CapEff:").is_none_or(|v| env.set("cap_eff", v).is_err()) {
                missing.push(format!("{proc_dir}/status: CapEff"));
            }
            match field("Uid:").and_then(|v| v.split_whitespace().next()) {
                Some(u) if env.set("uid", u).is_ok() => {}
                _ => missing.push(format!("{proc_dir}/status: Uid")),
            }
            // Real, effective, saved and file-system ids: the last decides.
            for (name, key) in [("Uid:", "fsuid"), ("Gid:", "fsgid")] {
                match field(name).and_then(|v| v.split_whitespace().nth(3)) {
                    Some(u) if env.set(key, u).is_ok() => {}
                    _ => missing.push(format!("{proc_dir}/status: {name}")),
                }
            }
            if field("Groups:").is_none_or(|v| env.set("groups", v).is_err()) {
                missing.push(format!("{proc_dir}/status: Groups"));
            }
        }
        (env, missing)
    }
}
