//! The strace-line parser on arbitrary bytes: no panic, and every modeled
//! call it reads survives a round trip through the canonical writer
//! (`format_call` + `format_result`, read again: the same result, and the
//! call as strace shows it, `visible`: a memfd name over 32 bytes is cut).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mm_ops::strace::{Line, Parser, Recorded, format_call, format_result, parse_line, visible};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // Line by line, as `mmsim replay` reads.
    for line in text.lines() {
        let Ok(Line::Call(t)) = parse_line(line) else {
            continue;
        };
        let canonical = format_call(&t.call);
        let outcome = t.recorded.as_ref().and_then(Recorded::outcome);
        let written = match &outcome {
            Some(o) => format!("{canonical} = {}", format_result(&t.call, o)),
            None => format!("{canonical} = ?"),
        };
        match parse_line(&written) {
            Ok(Line::Call(again)) => {
                assert_eq!(again.call, visible(&t.call), "call changed: {line:?} -> {written:?}");
                let back = again.recorded.as_ref().and_then(Recorded::outcome);
                assert_eq!(back, outcome, "result changed: {line:?} -> {written:?}");
            }
            other => panic!("canonical output not read back: {line:?} -> {written:?}: {other:?}"),
        }
    }
    // The joining parser (`<unfinished ...>` / `resumed>` halves).
    let mut p = Parser::new();
    for line in text.lines() {
        let _ = p.feed(line);
    }
    let _ = p.finish();
});
