//! `-o FILE`, `--format json` (schema in docs/json.md) and the exit codes
//! in `--help`, for replay and simulate.

mod common;

use common::{TempDir, mmsim, replay};
use serde_json::Value;

const TRACE: &str = "\
mmap(NULL, 8192, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7ffff7ffd000
munmap(0x7ffff7ffd000, 4096) = 0
open(\"/nonexistent\", O_RDONLY) = -1 ENOENT (No such file or directory)
mprotect(0x1000, 4096, PROT_READ) = -1 ENOMEM (Cannot allocate memory)
";

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {e}: {l:?}")))
        .collect()
}

#[test]
fn replay_json_is_one_object_per_call_then_a_summary() {
    let run = replay(&["--format", "json", "--check", "--maps"], TRACE);
    assert_eq!(run.code, Some(0), "{run:?}");
    let objs = json_lines(&run.stdout);
    assert_eq!(objs.len(), 5, "{}", run.stdout);
    for o in &objs {
        assert_eq!(o["schema"], "mmsim-replay/1");
    }
    let calls: Vec<&Value> = objs.iter().filter(|o| o["type"] == "call").collect();
    assert_eq!(calls.len(), 4);
    assert_eq!(calls[0]["line"], 1);
    assert_eq!(calls[0]["result"], "0x7ffff7ffd000");
    assert_eq!(calls[1]["call"], "munmap(0x7ffff7ffd000, 4096)");
    // The failed open was taken as recorded, not applied.
    assert_eq!(calls[2]["applied"], false);
    assert_eq!(calls[3]["result"], "-1 ENOMEM (Cannot allocate memory)");
    let s = &objs[4];
    assert_eq!(s["type"], "summary");
    assert_eq!(s["calls"], 4);
    assert_eq!(s["checked"], 4);
    assert_eq!(s["pass"], true);
    assert_eq!(s["divergences"].as_array().map(Vec::len), Some(0));
    // With JSON, the maps are in the summary, not printed as text.
    let maps: Vec<&str> = s["final_maps"]
        .as_array()
        .expect("final_maps")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(maps[0], "7ffff7ffe000-7ffff7fff000 rw-p 00000000 00:00 0 ");
    assert!(maps[1].ends_with("[vsyscall]"));
}

#[test]
fn replay_json_reports_a_divergence_and_exits_1() {
    let run = replay(
        &["--format", "json", "--check"],
        "mmap(NULL, 4096, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x1000\n",
    );
    assert_eq!(run.code, Some(1), "{run:?}");
    let objs = json_lines(&run.stdout);
    let s = objs.last().expect("summary");
    assert_eq!(s["pass"], false);
    assert_eq!(s["divergences"][0]["line"], 1);
    assert_eq!(s["divergences"][0]["recorded"], "0x1000");
    assert_eq!(s["divergences"][0]["model"], "0x7ffff7ffe000");
    // The model's VMAs around both addresses, after the call.
    let around = s["divergences"][0]["model_maps_around"].as_array().expect("around");
    assert!(
        around.iter().any(|l| l
            .as_str()
            .is_some_and(|l| l.starts_with("7ffff7ffe000-7ffff7fff000 r--p"))),
        "{around:?}"
    );
}

#[test]
fn a_divergence_shows_the_model_vmas_around_it_on_stderr() {
    let script = "\
mmap(NULL, 8192, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7ffff7ffd000
mprotect(0x7ffff7ffe000, 4096, PROT_READ) = 0
munmap(0x7ffff7ffd000, 4096) = -1 EINVAL (Invalid argument)
";
    let run = replay(&["--check"], script);
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.stderr.contains(
            "divergence: line 3: model = 0, recorded = -1 EINVAL (Invalid argument): munmap(0x7ffff7ffd000, 4096)"
        ),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("the model's VMAs there after the call:\n    7ffff7ffe000-7ffff7fff000 r--p 00000000 00:00 0"),
        "{}",
        run.stderr
    );
}

#[test]
fn output_goes_to_the_file_and_a_bad_path_is_exit_2() {
    let dir = TempDir::new("output");
    let file = dir.path().join("out.txt");
    let f = file.to_str().expect("utf-8 path");
    let run = replay(&["-o", f, "--maps"], TRACE);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(run.stdout, "", "nothing on stdout with -o");
    let text = std::fs::read_to_string(&file).expect("output file");
    assert!(text.starts_with("mmap(NULL, 8192, "), "{text}");
    assert!(text.ends_with("[vsyscall]\n"), "{text}");
    let bad = dir.path().join("no/such/dir/out");
    let run = replay(&["-o", bad.to_str().expect("utf-8")], TRACE);
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(run.stderr.contains("cannot create"), "{}", run.stderr);
}

#[test]
fn simulate_json_carries_the_rounds_and_the_verdict() {
    let dir = TempDir::new("simjson");
    let file = dir.path().join("sim.json");
    let run = mmsim(
        &[
            "simulate",
            "--duration",
            "0.2",
            "--rounds",
            "2",
            "--vmas",
            "32",
            "--policy",
            "upstream",
            "--quiet",
            "--format",
            "json",
            "-o",
            file.to_str().expect("utf-8"),
        ],
        "",
    );
    assert_eq!(run.code, Some(0), "{run:?}");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&file).expect("report")).expect("JSON");
    assert_eq!(v["schema"], "mmsim-simulate/1");
    assert_eq!(v["policies"][0]["policy"], "upstream");
    assert_eq!(v["policies"][0]["rounds"].as_array().map(Vec::len), Some(2));
    assert!(v["checked"].as_u64().is_some_and(|c| c > 0), "{v:#}");
    // The verdict follows the data: checked > 0 and nothing wrong.
    let wrong: u64 = v["policies"][0]["rounds"]
        .as_array()
        .expect("rounds")
        .iter()
        .map(|r| r["wrong"].as_u64().expect("wrong"))
        .sum();
    assert_eq!(v["pass"], wrong == 0);
    assert_eq!(v["options"]["vmas"], 32);
}

#[test]
fn help_lists_the_exit_codes() {
    for args in [&["--help"][..], &["replay", "--help"], &["simulate", "--help"]] {
        let run = mmsim(args, "");
        assert_eq!(run.code, Some(0));
        assert!(run.stdout.contains("Exit status:"), "{args:?}: {}", run.stdout);
        assert!(run.stdout.contains("3  the model panicked"), "{}", run.stdout);
    }
}

#[test]
fn man_page_and_completions_come_from_the_command_line() {
    let man = mmsim(&["man"], "");
    assert_eq!(man.code, Some(0), "{man:?}");
    assert!(
        man.stdout.starts_with(".ie") || man.stdout.contains(".TH mmsim 1"),
        "{}",
        man.stdout
    );
    for word in ["replay", "simulate", "record", "Exit status"] {
        assert!(man.stdout.contains(word), "no {word} in the man page");
    }
    for shell in ["bash", "zsh", "fish"] {
        let c = mmsim(&["completions", shell], "");
        assert_eq!(c.code, Some(0), "{c:?}");
        for word in ["replay", "format", "initial-maps"] {
            assert!(c.stdout.contains(word), "no {word} in the {shell} completions");
        }
    }
    let bad = mmsim(&["completions", "tcsh"], "");
    assert_eq!(bad.code, Some(2), "{bad:?}");
}
