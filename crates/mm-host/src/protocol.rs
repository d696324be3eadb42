//! The wire format between [`crate::HostProcess`] and the C helper.
//!
//! Mirrors `helper/mm-host-helper.c`: fixed 64-byte requests followed by a
//! string, 16-byte reply headers followed by data, all little-endian.

use mm_ops::call::{Access, Call};

/// The value of the helper's first reply: `"mm-host"` as a little-endian word.
pub(crate) const HELLO_MAGIC: i64 = 0x74_736f_682d_6d6d;

/// Longest string the helper accepts (longer than `PATH_MAX`, so that the
/// kernel, not the helper, rejects over-long paths).
pub(crate) const STR_MAX: usize = 8192;

/// Size of a reply header: `i64 value, u64 len`.
pub(crate) const REPLY_LEN: usize = 16;

/// Operation codes (`enum op` in the C file).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub(crate) enum Op {
    Mmap = 1,
    Munmap = 2,
    Mprotect = 3,
    Brk = 4,
    Mremap = 5,
    Madvise = 6,
    Open = 7,
    Openat = 8,
    Close = 9,
    Dup = 10,
    Dup2 = 11,
    Dup3 = 12,
    MemfdCreate = 13,
    Ftruncate = 14,
    Fault = 15,
    Maps = 16,
    Stat = 17,
    Exit = 18,
    Chdir = 19,
    Smaps = 20,
    Fork = 21,
    Mlock = 22,
    Mlock2 = 23,
    Munlock = 24,
    Mlockall = 25,
    Munlockall = 26,
    Mseal = 27,
    Shmget = 28,
    Shmat = 29,
    Shmdt = 30,
    ShmctlRmid = 31,
    MemfdSecret = 32,
    Setrlimit = 33,
    RemapFilePages = 34,
    PkeyMprotect = 35,
    PkeyAlloc = 36,
    PkeyFree = 37,
}

/// The bit of an op that sends the request to the helper's fork child
/// (`ROUTE_CHILD` in the C file).
pub(crate) const ROUTE_CHILD: u64 = 0x1000;

/// One encoded request: operation, six argument words and a string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Request<'a> {
    pub op: Op,
    pub args: [u64; 6],
    pub string: &'a [u8],
}

impl<'a> Request<'a> {
    /// A request without arguments.
    pub fn bare(op: Op) -> Self {
        Request {
            op,
            args: [0; 6],
            string: &[],
        }
    }

    /// The request that performs `call`.
    pub fn from_call(call: &'a Call) -> Self {
        // Descriptors are sign-extended, as a C `int` passed in a register.
        let fd = |fd: i64| fd as u64;
        let (op, args, string): (Op, [u64; 6], &[u8]) = match call {
            Call::Mmap {
                addr,
                len,
                prot,
                flags,
                fd: f,
                off,
            } => (Op::Mmap, [*addr, *len, *prot, *flags, fd(*f), *off], &[]),
            Call::Munmap { addr, len } => (Op::Munmap, [*addr, *len, 0, 0, 0, 0], &[]),
            Call::Mprotect { addr, len, prot } => (Op::Mprotect, [*addr, *len, *prot, 0, 0, 0], &[]),
            Call::Brk { addr } => (Op::Brk, [*addr, 0, 0, 0, 0, 0], &[]),
            Call::Mremap {
                old_addr,
                old_len,
                new_len,
                flags,
                new_addr,
            } => (Op::Mremap, [*old_addr, *old_len, *new_len, *flags, *new_addr, 0], &[]),
            Call::Madvise { addr, len, advice } => (Op::Madvise, [*addr, *len, *advice, 0, 0, 0], &[]),
            Call::Mlock { addr, len } => (Op::Mlock, [*addr, *len, 0, 0, 0, 0], &[]),
            Call::Mlock2 { addr, len, flags } => (Op::Mlock2, [*addr, *len, *flags, 0, 0, 0], &[]),
            Call::Munlock { addr, len } => (Op::Munlock, [*addr, *len, 0, 0, 0, 0], &[]),
            Call::Mlockall { flags } => (Op::Mlockall, [*flags, 0, 0, 0, 0, 0], &[]),
            Call::Munlockall => (Op::Munlockall, [0; 6], &[]),
            Call::Mseal { addr, len, flags } => (Op::Mseal, [*addr, *len, *flags, 0, 0, 0], &[]),
            Call::Shmget { key, size, flags } => (Op::Shmget, [*key as u64, *size, *flags, 0, 0, 0], &[]),
            Call::Shmat { id, addr, flags } => (Op::Shmat, [*id as u64, *addr, *flags, 0, 0, 0], &[]),
            Call::Shmdt { addr } => (Op::Shmdt, [*addr, 0, 0, 0, 0, 0], &[]),
            Call::MemfdSecret { flags } => (Op::MemfdSecret, [*flags, 0, 0, 0, 0, 0], &[]),
            Call::Setrlimit { resource, cur, max } => (Op::Setrlimit, [*resource, *cur, *max, 0, 0, 0], &[]),
            Call::RemapFilePages {
                start,
                size,
                prot,
                pgoff,
                flags,
            } => (Op::RemapFilePages, [*start, *size, *prot, *pgoff, *flags, 0], &[]),
            Call::PkeyMprotect { addr, len, prot, pkey } => {
                (Op::PkeyMprotect, [*addr, *len, *prot, *pkey as u64, 0, 0], &[])
            }
            Call::PkeyAlloc { flags, init_val } => (Op::PkeyAlloc, [*flags, *init_val, 0, 0, 0, 0], &[]),
            Call::PkeyFree { pkey } => (Op::PkeyFree, [*pkey as u64, 0, 0, 0, 0, 0], &[]),
            Call::ShmctlRmid { id } => (Op::ShmctlRmid, [*id as u64, 0, 0, 0, 0, 0], &[]),
            Call::Fault { addr, access } => (Op::Fault, [*addr, access_code(*access), 0, 0, 0, 0], &[]),
            Call::Open { path, flags, mode } => (Op::Open, [*flags, mode.unwrap_or(0), 0, 0, 0, 0], path.as_bytes()),
            Call::Openat {
                dirfd,
                path,
                flags,
                mode,
            } => (
                Op::Openat,
                [fd(*dirfd), *flags, mode.unwrap_or(0), 0, 0, 0],
                path.as_bytes(),
            ),
            Call::Close { fd: f } => (Op::Close, [fd(*f), 0, 0, 0, 0, 0], &[]),
            Call::Dup { fd: f } => (Op::Dup, [fd(*f), 0, 0, 0, 0, 0], &[]),
            Call::Dup2 { oldfd, newfd } => (Op::Dup2, [fd(*oldfd), fd(*newfd), 0, 0, 0, 0], &[]),
            Call::Dup3 { oldfd, newfd, flags } => (Op::Dup3, [fd(*oldfd), fd(*newfd), *flags, 0, 0, 0], &[]),
            Call::MemfdCreate { name, flags } => (Op::MemfdCreate, [*flags, 0, 0, 0, 0, 0], name.as_bytes()),
            Call::Ftruncate { fd: f, length } => (Op::Ftruncate, [fd(*f), *length, 0, 0, 0, 0], &[]),
        };
        Request { op, args, string }
    }

    /// The bytes sent to the helper.
    pub fn encode(&self) -> Vec<u8> {
        let mut buf = Vec::with_capacity(64 + self.string.len());
        buf.extend_from_slice(&(self.op as u64).to_le_bytes());
        for a in self.args {
            buf.extend_from_slice(&a.to_le_bytes());
        }
        buf.extend_from_slice(&(self.string.len() as u64).to_le_bytes());
        buf.extend_from_slice(self.string);
        buf
    }
}

/// The helper's code for an access kind.
fn access_code(access: Access) -> u64 {
    match access {
        Access::Read => 0,
        Access::Write => 1,
        Access::Exec => 2,
    }
}

/// Splits a reply header into `(value, data length)`.
pub(crate) fn decode_header(buf: &[u8; REPLY_LEN]) -> (i64, u64) {
    let (v, l) = buf.split_at(8);
    let word = |b: &[u8]| -> [u8; 8] { b.try_into().expect("8 bytes") };
    (i64::from_le_bytes(word(v)), u64::from_le_bytes(word(l)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_mmap_with_negative_fd() {
        let call = Call::Mmap {
            addr: 0,
            len: 4096,
            prot: 3,
            flags: 0x22,
            fd: -1,
            off: 0,
        };
        let bytes = Request::from_call(&call).encode();
        assert_eq!(bytes.len(), 64);
        assert_eq!(&bytes[0..8], &1u64.to_le_bytes());
        assert_eq!(&bytes[16..24], &4096u64.to_le_bytes());
        assert_eq!(&bytes[40..48], &u64::MAX.to_le_bytes());
    }

    #[test]
    fn encodes_open_path_after_header() {
        let call = Call::Open {
            path: "/tmp/x".into(),
            flags: 2,
            mode: Some(0o600),
        };
        let bytes = Request::from_call(&call).encode();
        assert_eq!(&bytes[56..64], &6u64.to_le_bytes());
        assert_eq!(&bytes[64..], b"/tmp/x");
        assert_eq!(&bytes[16..24], &0o600u64.to_le_bytes());
    }

    #[test]
    fn decodes_negative_values() {
        let mut buf = [0u8; REPLY_LEN];
        buf[..8].copy_from_slice(&(-12i64).to_le_bytes());
        buf[8..].copy_from_slice(&5u64.to_le_bytes());
        assert_eq!(decode_header(&buf), (-12, 5));
    }
}
