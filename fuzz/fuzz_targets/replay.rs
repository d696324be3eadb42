//! `mmsim replay` on arbitrary input, with and without `--initial-maps`:
//! it may refuse the input (an error naming the line), never panic or
//! hang. The first byte chooses the mode; with a snapshot, the input
//! before the first empty line is the `/proc/PID/maps` text, also the
//! snapshot of any exec on lines 1–8 and of its image's end (bit 16: a
//! format-2 trace); bit 8 prints and checks the process tree of pid 101.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mmsim::replay::{ImageFacts, ReplayError, ReplayOptions, replay};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut opts = ReplayOptions {
        cwd: "/".into(),
        check: mode & 1 != 0,
        maps: mode & 2 != 0,
        ..ReplayOptions::default()
    };
    // A small vm.max_map_count: the limit is reachable, and each run
    // allocates a small VMA slab.
    opts.env.max_map_count = 512;
    let mut trace = rest;
    if mode & 4 != 0 {
        let cut = rest.windows(2).position(|w| w == b"\n\n").unwrap_or(rest.len());
        opts.initial_maps = Some(String::from_utf8_lossy(&rest[..cut]).into_owned());
        trace = rest.get(cut + 2..).unwrap_or_default();
    }
    if mode & 8 != 0 {
        opts.pid = Some(101);
    }
    if mode & 16 != 0 {
        opts.whole_trace = true;
        let facts = ImageFacts {
            initial_maps: opts.initial_maps.clone(),
            final_maps: opts.initial_maps.clone(),
            ..ImageFacts::default()
        };
        opts.images = std::sync::Arc::new((1..=8).map(|n| (n, facts.clone())).collect());
    }
    let mut out = Vec::new();
    if let Err(ReplayError::ModelPanic { .. }) = replay(trace, &opts, &mut out) {
        // Unreachable under libFuzzer (its panic hook aborts first); kept
        // for the harness's other runners.
        panic!("the model panicked");
    }
});
