//! Argument values: numbers, addresses, flag expressions, descriptors with
//! `-y` annotations, and C strings with strace's escapes.

use super::ParseError;
use super::lex::{skip_angle, skip_comment};
use super::xlat::{Xlat, huge_size};

/// Removes `/* … */` comments (nested ones too) from `s`.
fn strip_comments(s: &str) -> Result<String, ParseError> {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    let mut start = 0;
    while i < b.len() {
        if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
            out.push_str(&s[start..i]);
            i = skip_comment(b, i)?;
            start = i;
        } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
            return Err(ParseError::new("`*/` without `/*`"));
        } else {
            i += 1;
        }
    }
    out.push_str(&s[start..]);
    Ok(out)
}

/// A C integer literal as strace prints it: decimal, `0x` hex, `0` octal,
/// optionally negative (two's complement).
pub(super) fn int(s: &str) -> Result<u64, ParseError> {
    let bad = || ParseError::new(format!("invalid number `{s}`"));
    let (neg, digits) = match s.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, s),
    };
    let (radix, body) = if let Some(h) = digits.strip_prefix("0x").or_else(|| digits.strip_prefix("0X")) {
        (16, h)
    } else if digits.len() > 1 && digits.starts_with('0') {
        (8, &digits[1..])
    } else {
        (10, digits)
    };
    if body.is_empty() || !body.chars().all(|c| c.is_digit(radix)) {
        return Err(bad());
    }
    let v = u64::from_str_radix(body, radix).map_err(|_| bad())?;
    if neg {
        if v > 1 << 63 {
            return Err(bad());
        }
        Ok(v.wrapping_neg())
    } else {
        Ok(v)
    }
}

/// A number argument (a comment after it is ignored).
pub(super) fn number(arg: &str) -> Result<u64, ParseError> {
    int(strip_comments(arg)?.trim())
}

/// An address: `NULL` or a number.
pub(super) fn addr(arg: &str) -> Result<u64, ParseError> {
    let s = strip_comments(arg)?;
    match s.trim() {
        "NULL" => Ok(0),
        t => int(t),
    }
}

/// A `|`-joined flag expression over table `x`: names, numbers, `N<<SHIFT`
/// and (for tables with a shift) `PREFIX_HUGE_2MB` names.
pub(super) fn flags(arg: &str, x: &Xlat) -> Result<u64, ParseError> {
    let s = strip_comments(arg)?;
    let mut v = 0u64;
    for term in s.split('|') {
        v |= flag_term(term.trim(), x)?;
    }
    Ok(v)
}

fn flag_term(t: &str, x: &Xlat) -> Result<u64, ParseError> {
    if t.is_empty() {
        return Err(ParseError::new(format!("empty term in {}_* flags", x.kind)));
    }
    if t.starts_with(|c: char| c.is_ascii_digit() || c == '-') {
        if let Some((n, name)) = t.split_once("<<") {
            let n = int(n.trim())?;
            return match x.shift {
                // The field is 6 bits (MAP_HUGE_MASK, MFD_HUGE_MASK): strace
                // never prints more.
                Some((shift_name, shift)) if name.trim() == shift_name => (n <= 0x3f)
                    .then(|| n << shift)
                    .ok_or_else(|| ParseError::new(format!("`{t}`: the huge page size field has 6 bits"))),
                _ => Err(ParseError::new(format!(
                    "unknown shift `{}` in {}_* flags",
                    name.trim(),
                    x.kind
                ))),
            };
        }
        return int(t);
    }
    if let Some(v) = x.lookup(t) {
        return Ok(v);
    }
    if x.shift.is_some()
        && let Some(v) = huge_size(&format!("{}_HUGE_", x.kind), t)
    {
        return Ok(v);
    }
    Err(ParseError::new(format!("unknown {}_* flag `{t}`", x.kind)))
}

/// A file descriptor: `-1`, `3`, `AT_FDCWD` (with `at_fdcwd`), then
/// optionally a `-y` annotation `<path>` and `(deleted)`.  Returns the
/// descriptor and the decoded path, as `readlink` of `/proc/PID/fd/N`
/// gives it: with ` (deleted)` at its end when the file has no name any
/// more (an unlinked file, a `memfd`).
pub(super) fn fd(arg: &str, at_fdcwd: bool) -> Result<(i64, Option<String>), ParseError> {
    let b = arg.as_bytes();
    let num_end = arg
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .unwrap_or(arg.len());
    let num = &arg[..num_end];
    let v = if at_fdcwd && num == "AT_FDCWD" {
        crate::uapi::AT_FDCWD
    } else {
        let n = int(num)?;
        if !num.starts_with('-') && n > i64::MAX as u64 {
            return Err(ParseError::new(format!("descriptor `{num}` out of range")));
        }
        // A descriptor is an `int` to the kernel (and strace prints it so).
        i64::from(n as i32)
    };
    // Comments (-X verbose: `-100 /* AT_FDCWD */`) may precede the path.
    let mut i = num_end;
    loop {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if b[i..].starts_with(b"/*") {
            i = skip_comment(b, i)?;
        } else {
            break;
        }
    }
    let mut path = None;
    if i < b.len() && b[i] == b'<' {
        let end = skip_angle(b, i)?;
        let mut p = annotation(&arg[i + 1..end - 1])?;
        i = end;
        if arg[i..].starts_with("(deleted)") {
            i += "(deleted)".len();
            p.push_str(" (deleted)");
        }
        path = Some(p);
    }
    if !arg[i..].trim().is_empty() {
        return Err(ParseError::new(format!("invalid descriptor `{arg}`")));
    }
    Ok((v, path))
}

/// Decodes the inside of a `-y` annotation; a nested `-yy` group
/// (`/dev/null<char 1:3>`) is dropped.
pub(super) fn annotation(inner: &str) -> Result<String, ParseError> {
    let b = inner.as_bytes();
    let mut end = b.len();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'<' => {
                end = i;
                break;
            }
            _ => i += 1,
        }
    }
    let bytes = unescape(&inner[..end.min(inner.len())])?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// A string argument `"…"`; strace's truncation mark `...` after the closing
/// quote is kept as a literal `...` suffix (see the module documentation).
pub(super) fn string(arg: &str) -> Result<String, ParseError> {
    let s = arg.trim();
    let (body, truncated) = match s.strip_suffix("...") {
        Some(b) if b.ends_with('"') && b.len() >= 2 => (b, true),
        _ => (s, false),
    };
    if body.len() < 2 || !body.starts_with('"') || !body.ends_with('"') {
        return Err(ParseError::new(format!("expected a quoted string, found `{s}`")));
    }
    let inner = &body[1..body.len() - 1];
    // An unescaped quote inside would mean two strings.
    let ib = inner.as_bytes();
    let mut i = 0;
    while i < ib.len() {
        match ib[i] {
            b'\\' => i += 2,
            b'"' => return Err(ParseError::new(format!("malformed string `{s}`"))),
            _ => i += 1,
        }
    }
    let mut text = String::from_utf8_lossy(&unescape(inner)?).into_owned();
    if truncated {
        text.push_str("...");
    }
    Ok(text)
}

/// Resolves C escapes: `\" \\ \n \t \r \f \v \a \b \e`, octal `\ooo` and `\xHH`.
pub(super) fn unescape(s: &str) -> Result<Vec<u8>, ParseError> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        let Some(&c) = b.get(i + 1) else {
            return Err(ParseError::new("string ends with a lone `\\`"));
        };
        i += 2;
        let simple = match c {
            b'"' | b'\\' | b'\'' | b'?' => Some(c),
            b'n' => Some(b'\n'),
            b't' => Some(b'\t'),
            b'r' => Some(b'\r'),
            b'f' => Some(0x0c),
            b'v' => Some(0x0b),
            b'a' => Some(0x07),
            b'b' => Some(0x08),
            b'e' => Some(0x1b),
            _ => None,
        };
        if let Some(v) = simple {
            out.push(v);
        } else if (b'0'..=b'7').contains(&c) {
            let mut v = u32::from(c - b'0');
            let mut n = 1;
            while n < 3 && i < b.len() && (b'0'..=b'7').contains(&b[i]) {
                v = v * 8 + u32::from(b[i] - b'0');
                i += 1;
                n += 1;
            }
            out.push(u8::try_from(v).map_err(|_| ParseError::new("octal escape above \\377"))?);
        } else if c == b'x' {
            let mut v = 0u8;
            let mut n = 0;
            while n < 2 && i < b.len() && b[i].is_ascii_hexdigit() {
                v = v * 16 + (b[i] as char).to_digit(16).unwrap_or(0) as u8;
                i += 1;
                n += 1;
            }
            if n == 0 {
                return Err(ParseError::new("`\\x` without hex digits"));
            }
            out.push(v);
        } else {
            return Err(ParseError::new(format!("unknown escape `\\{}`", c as char)));
        }
    }
    Ok(out)
}
