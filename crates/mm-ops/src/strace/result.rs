//! The recorded result after ` = `.

use super::lex::skip_angle;
use super::value::{annotation, int};
use super::{ParseError, Recorded, errno};
use crate::call::{Outcome, Signal};
use crate::uapi::Errno;

/// Parses the text after `)`: empty (no recorded result) or `= RESULT`
/// followed by annotations strace may add (`(INJECTED)`, `(DELAYED)`, the
/// `-T` time `<0.000012>`).
pub(super) fn tail(t: &str) -> Result<Option<Recorded>, ParseError> {
    let t = t.trim();
    if t.is_empty() {
        return Ok(None);
    }
    let Some(r) = t.strip_prefix('=') else {
        return Err(ParseError::new(format!("unexpected `{t}` after `)`")));
    };
    let r = r.trim_start();
    let (rec, rest) = result(r)?;
    annotations(rest)?;
    Ok(Some(rec))
}

/// The first word and the text after it.
fn word(s: &str) -> (&str, &str) {
    let end = s.find(|c: char| c.is_ascii_whitespace()).unwrap_or(s.len());
    (&s[..end], &s[end..])
}

fn result(r: &str) -> Result<(Recorded, &str), ParseError> {
    if let Some(rest) = r.strip_prefix('?') {
        // `= ?` (unknown), or `= ? ERESTARTSYS (To be restarted …)`.
        let rest = rest.trim_start();
        let (name, after) = word(rest);
        if let Some(e) = errno::from_name(name).filter(|&e| errno::is_restart(e)) {
            return Ok((Recorded::Outcome(Outcome::Err(e)), skip_paren(after.trim_start())?));
        }
        return Ok((Recorded::Unknown, ""));
    }
    let (w, rest) = word(r);
    match w {
        "SIGSEGV" => return Ok((Recorded::Outcome(Outcome::Signal(Signal::Segv)), rest)),
        "SIGBUS" => return Ok((Recorded::Outcome(Outcome::Signal(Signal::Bus)), rest)),
        _ => {}
    }
    if w == "-1" {
        let rest = rest.trim_start();
        // `-1 (errno 200)`: an errno strace has no name for.
        if let Some(x) = rest.strip_prefix("(errno ") {
            let end = x.find(')').ok_or_else(|| ParseError::new("unterminated `(errno`"))?;
            let n = x[..end].trim();
            let e = n
                .parse::<i32>()
                .map_err(|_| ParseError::new(format!("invalid errno `{n}`")))?;
            return Ok((Recorded::Outcome(Outcome::Err(Errno(e))), &x[end + 1..]));
        }
        let (name, after) = word(rest);
        if name.starts_with('E') && name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_') {
            let e = errno::from_name(name).ok_or_else(|| ParseError::new(format!("unknown errno `{name}`")))?;
            return Ok((Recorded::Outcome(Outcome::Err(e)), skip_paren(after.trim_start())?));
        }
        // `-1` without an errno (an injected return value).
        return Ok((Recorded::Outcome(Outcome::Val(u64::MAX)), rest));
    }
    // A number, optionally with a -y annotation: `3</tmp/x>`, `3</memfd:x>(deleted)`.
    let b = r.as_bytes();
    let num_end = r
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .unwrap_or(r.len());
    let v = int(&r[..num_end]).map_err(|_| ParseError::new(format!("invalid result `{w}`")))?;
    if b.get(num_end) == Some(&b'<') {
        let end = skip_angle(b, num_end)?;
        let path = annotation(&r[num_end + 1..end - 1])?;
        let mut rest = &r[end..];
        if let Some(x) = rest.strip_prefix("(deleted)") {
            rest = x;
        }
        return Ok((Recorded::FdWithPath(v, path), rest));
    }
    Ok((Recorded::Outcome(Outcome::Val(v)), &r[num_end..]))
}

/// Skips the `(message)` after an errno name.
fn skip_paren(s: &str) -> Result<&str, ParseError> {
    if !s.starts_with('(') {
        return Ok(s);
    }
    let end = s
        .find(')')
        .ok_or_else(|| ParseError::new("unterminated errno message"))?;
    Ok(&s[end + 1..])
}

/// Accepts what strace may print after the result: `(INJECTED)`,
/// `(DELAYED)`, other parenthesized notes, and the `-T` time `<0.000012>`.
fn annotations(mut s: &str) -> Result<(), ParseError> {
    loop {
        s = s.trim_start();
        if s.is_empty() {
            return Ok(());
        }
        let close = match s.as_bytes()[0] {
            b'(' => ')',
            b'<' => '>',
            _ => {
                return Err(ParseError::new(format!("unexpected `{s}` after the result")));
            }
        };
        let end = s
            .find(close)
            .ok_or_else(|| ParseError::new(format!("unterminated `{s}` after the result")))?;
        s = &s[end + 1..];
    }
}
