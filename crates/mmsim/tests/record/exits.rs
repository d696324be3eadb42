//! Exit statuses, signals, the program's output kept apart from
//! `mmsim`'s, a missing program and the default fixture directory.

use std::process::Command;

use mm_ops::call::Call;

use super::common::TempDir;
use super::{check_final_maps, check_round_trip, mmsim_record, python, record};

#[test]
fn exit_status_signals_and_output() {
    let rec = record("exit3", &["sh", "-c", "echo out; echo err >&2; exit 3"]);
    assert_eq!(rec.code, Some(3));
    assert_eq!(rec.meta("exit"), "3");
    assert_eq!(rec.stdout, "out\n");
    assert!(rec.stderr.starts_with("err\n"), "{}", rec.stderr);
    assert_eq!(rec.stderr.lines().count(), 2, "{}", rec.stderr);
    check_round_trip(&rec);

    let rec = record("segv", &["sh", "-c", "kill -SEGV $$"]);
    assert_eq!(rec.code, Some(128 + 11));
    assert_eq!(rec.meta("exit"), "signal 11");
    assert_eq!(rec.meta("final_maps"), "exit");
    check_final_maps(&rec);

    // A multi-threaded process killed by a signal: the final maps come
    // from a thread's exit stop and still hold what the trace mapped.
    let rec = record(
        "kill-threads",
        &[
            python(),
            "-c",
            "import threading, os, time, signal, mmap\n\
             threading.Thread(target=time.sleep, args=(5,), daemon=True).start()\n\
             m = mmap.mmap(-1, 5 << 20)\n\
             os.kill(os.getpid(), signal.SIGKILL)",
        ],
    );
    assert_eq!(rec.code, Some(128 + 9));
    assert_eq!(rec.meta("exit"), "signal 9");
    assert_eq!(rec.meta("threads"), "2");
    assert_eq!(rec.meta("final_maps"), "exit");
    check_round_trip(&rec);
    check_final_maps(&rec);
    assert!(
        rec.calls()
            .iter()
            .any(|t| matches!(t.call, Call::Mmap { len, .. } if len == 5 << 20))
    );

    // Stopped and continued: the program is not left stopped.
    let rec = record("stop", &["sh", "-c", "kill -STOP $$; kill -TSTP $$; echo resumed"]);
    assert_eq!(rec.code, Some(0));
    assert_eq!(rec.stdout, "resumed\n");

    // A real-time signal with a handler is delivered (nix's Signal has no
    // name for it).
    let rec = record(
        "rtsig",
        &[
            python(),
            "-c",
            "import signal, os\n\
             got = []\n\
             signal.signal(signal.SIGRTMIN + 3, lambda s, f: got.append(s))\n\
             os.kill(os.getpid(), signal.SIGRTMIN + 3)\n\
             print(got == [signal.SIGRTMIN + 3])",
        ],
    );
    assert_eq!(rec.code, Some(0), "{}", rec.stderr);
    assert_eq!(rec.stdout, "True\n");
}

#[test]
fn missing_program_and_default_directory() {
    let tmp = TempDir::new("rec-default");
    let out = Command::new(env!("CARGO_BIN_EXE_mmsim"))
        .args(["record", "--", "/bin/true"])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    for f in [
        "initial-maps.txt",
        "trace.txt",
        "final-maps.txt",
        "meta.txt",
        "mm/0.initial-maps.txt",
        "mm/0.meta.txt",
        "mm/0.final-maps.txt",
    ] {
        assert!(tmp.path().join("mmsim-record-true").join(f).is_file(), "{f}");
    }
    let out = mmsim_record(&tmp.path().join("x"), &["/nonexistent/program"]);
    assert_eq!(out.status.code(), Some(127));
    assert!(String::from_utf8_lossy(&out.stderr).contains("mmsim record: cannot run /nonexistent/program"));
}
