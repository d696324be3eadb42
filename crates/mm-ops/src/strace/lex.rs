//! The shape of one strace line: leading columns (pid, timestamps,
//! instruction pointer), the call name, the argument list split at top-level
//! commas, and what follows the closing parenthesis.

use super::ParseError;

/// Largest pid Linux hands out (`PID_MAX_LIMIT` on 64-bit).
const PID_MAX_LIMIT: u64 = 4_194_304;

/// What a line holds once its leading columns are removed.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Body<'a> {
    /// Nothing, or a `#` comment.
    Blank,
    /// Not a system call: `+++ exited with 0 +++`, `--- SIGSEGV {…} ---`,
    /// `strace: Process 123 attached`, a continuation line…
    Other,
    /// `NAME(` followed by `rest`.
    Call {
        /// The system call name.
        name: &'a str,
        /// Everything after the opening parenthesis.
        rest: &'a str,
    },
    /// `<... NAME resumed>` followed by `rest`.
    Resumed {
        /// The system call name.
        name: &'a str,
        /// Everything after `resumed>`.
        rest: &'a str,
    },
}

/// Splits off the leading columns strace adds: `[pid  N]` or a bare pid
/// (`-f` with `-o`), timestamps (`-t`, `-tt`, `-ttt`, `-r`), the instruction
/// pointer (`-i`) and the syscall number (`-n`).  Returns the pid, if any.
pub(super) fn split_prefix(line: &str) -> (Option<u32>, &str) {
    let mut pid = None;
    let mut s = line.trim_start();
    let mut first = true;
    loop {
        if let Some(after) = s.strip_prefix("[pid") {
            if let Some(end) = after.find(']')
                && let Ok(p) = after[..end].trim().parse::<u32>()
            {
                pid = Some(p);
                s = after[end + 1..].trim_start();
                first = false;
                continue;
            }
            break;
        }
        if let Some(after) = s.strip_prefix('[') {
            // -i: [00007f…] or [????????????????]; -n: [  9]
            if let Some(end) = after.find(']') {
                let inner = after[..end].trim();
                if !inner.is_empty() && inner.bytes().all(|b| b.is_ascii_hexdigit() || b == b'?') {
                    s = after[end + 1..].trim_start();
                    first = false;
                    continue;
                }
            }
            break;
        }
        let tok_end = s.find(|c: char| c.is_ascii_whitespace()).unwrap_or(s.len());
        let tok = &s[..tok_end];
        if tok_end == s.len() || tok.is_empty() {
            break;
        }
        let digits_only = tok.bytes().all(|b| b.is_ascii_digit());
        let timestamp = tok.bytes().all(|b| b.is_ascii_digit() || b == b'.' || b == b':')
            && tok.bytes().next().is_some_and(|b| b.is_ascii_digit());
        if digits_only && first && pid.is_none() {
            match tok.parse::<u64>() {
                Ok(p) if p <= PID_MAX_LIMIT => pid = u32::try_from(p).ok(),
                _ => {} // a -ttt timestamp at whole-second precision
            }
        } else if !timestamp {
            break;
        }
        s = s[tok_end..].trim_start();
        first = false;
    }
    (pid, s)
}

/// Classifies the text after the leading columns.
pub(super) fn body(s: &str) -> Body<'_> {
    let t = s.trim();
    if t.is_empty() || t.starts_with('#') {
        return Body::Blank;
    }
    if let Some(after) = s.strip_prefix("<... ") {
        if let Some(end) = after.find(" resumed>") {
            let name = &after[..end];
            if is_ident(name) {
                return Body::Resumed {
                    name,
                    rest: &after[end + " resumed>".len()..],
                };
            }
        }
        return Body::Other;
    }
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    let name = &s[..end];
    if is_ident(name) && s[end..].starts_with('(') {
        Body::Call {
            name,
            rest: &s[end + 1..],
        }
    } else {
        Body::Other
    }
}

fn is_ident(s: &str) -> bool {
    let mut b = s.bytes();
    b.next().is_some_and(|c| c.is_ascii_alphabetic() || c == b'_') && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// The argument list of a call.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Args<'a> {
    /// The arguments, trimmed.
    pub args: Vec<&'a str>,
    /// What follows the closing parenthesis; `None` when the list is not
    /// closed on this line.
    pub tail: Option<&'a str>,
}

/// Marker strace prints when another process's line interrupts a call.
pub(super) const UNFINISHED: &str = "<unfinished ...>";

/// Splits `rest` (the text after `NAME(`) at top-level commas up to the
/// closing parenthesis.  Strings (`"…"`, optionally followed by `...`),
/// comments (`/* … */`, nested as `-X verbose` prints them), brackets and
/// `-y` annotations (`3</path>`, nested as `-yy` prints them) are opaque.
pub(super) fn split_args(rest: &str) -> Result<Args<'_>, ParseError> {
    let b = rest.as_bytes();
    let mut args = Vec::new();
    let mut closers: Vec<u8> = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => i = skip_string(b, i)?,
            b'/' if b.get(i + 1) == Some(&b'*') => i = skip_comment(b, i)?,
            b'<' if b.get(i + 1) == Some(&b'<') => i += 2,
            b'<' => i = skip_angle(b, i)?,
            b'(' => {
                closers.push(b')');
                i += 1;
            }
            b'[' => {
                closers.push(b']');
                i += 1;
            }
            b'{' => {
                closers.push(b'}');
                i += 1;
            }
            c @ (b')' | b']' | b'}') => {
                if closers.is_empty() {
                    if c != b')' {
                        return Err(ParseError::new(format!("unbalanced `{}`", c as char)));
                    }
                    push_arg(&mut args, &rest[start..i]);
                    return Ok(Args {
                        args,
                        tail: Some(&rest[i + 1..]),
                    });
                }
                if closers.pop() != Some(c) {
                    return Err(ParseError::new(format!("unbalanced `{}`", c as char)));
                }
                i += 1;
            }
            b',' if closers.is_empty() => {
                args.push(rest[start..i].trim());
                i += 1;
                start = i;
            }
            _ => i += 1,
        }
    }
    if !closers.is_empty() {
        return Err(ParseError::new("unbalanced brackets in the argument list"));
    }
    push_arg(&mut args, &rest[start..]);
    Ok(Args { args, tail: None })
}

/// Adds the last argument, unless the list is empty (`brk()`), in which case
/// there is no argument at all.
fn push_arg<'a>(args: &mut Vec<&'a str>, last: &'a str) {
    let last = last.trim();
    if !(args.is_empty() && last.is_empty()) {
        args.push(last);
    }
}

/// Index just past the string starting at `b[i] == '"'` (and past a `...`
/// truncation mark).
pub(super) fn skip_string(b: &[u8], i: usize) -> Result<usize, ParseError> {
    let mut j = i + 1;
    while j < b.len() {
        match b[j] {
            b'\\' => j += 2,
            b'"' => {
                j += 1;
                if b[j..].starts_with(b"...") {
                    j += 3;
                }
                return Ok(j);
            }
            _ => j += 1,
        }
    }
    Err(ParseError::new("unterminated string"))
}

/// Index just past the (possibly nested) comment starting at `b[i..]` = `/*`.
pub(super) fn skip_comment(b: &[u8], i: usize) -> Result<usize, ParseError> {
    let mut depth = 0usize;
    let mut j = i;
    while j + 1 < b.len() {
        if b[j] == b'/' && b[j + 1] == b'*' {
            depth += 1;
            j += 2;
        } else if b[j] == b'*' && b[j + 1] == b'/' {
            depth -= 1;
            j += 2;
            if depth == 0 {
                return Ok(j);
            }
        } else {
            j += 1;
        }
    }
    Err(ParseError::new("unterminated comment"))
}

/// Index just past the `<…>` group starting at `b[i] == '<'`; nested groups
/// and backslash escapes are honored.
pub(super) fn skip_angle(b: &[u8], i: usize) -> Result<usize, ParseError> {
    let mut depth = 0usize;
    let mut j = i;
    while j < b.len() {
        match b[j] {
            b'\\' => j += 2,
            b'<' => {
                depth += 1;
                j += 1;
            }
            b'>' => {
                depth -= 1;
                j += 1;
                if depth == 0 {
                    return Ok(j);
                }
            }
            _ => j += 1,
        }
    }
    Err(ParseError::new("unterminated `<`"))
}
