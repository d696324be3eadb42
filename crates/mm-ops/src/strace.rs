//! strace syntax (placeholder; filled in by the strace reader/writer work).
