//! The inode cache a file table shares with its fork copies (the role of
//! `fs/inode.c`'s hash of `(super block, inode number)`): a file that one
//! relative opens after the fork is the inode the other already has, so
//! that a truncation or an unlink by either reaches both.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use super::InodeShared;

/// An inode's identity: its device and its number.
type Key = ((u32, u32), u64);

/// A live inode's shared part, if some table still holds it, and the
/// name it was opened by.
type Entry = (Weak<InodeShared>, String);

/// The shared parts of the live inodes of a family of file tables, by
/// device and inode number, with the name each was opened by.
#[derive(Clone, Debug, Default)]
pub(super) struct Icache(Arc<Mutex<HashMap<Key, Entry>>>);

impl Icache {
    /// The shared part of inode `ino` on `dev`, opened by `path`, when a
    /// table of the family still holds it under that name and the name
    /// has not been removed (an unlinked file cannot be opened again by
    /// path: an open that finds its number found a new file the file
    /// system numbered the same). Another name of the same number, a hard
    /// link, is not shared: the unlinked state the shared part holds is
    /// the name's. Otherwise `None`, having recorded `mine` as the inode's.
    pub(super) fn find_or_insert(
        &self,
        dev: (u32, u32),
        ino: u64,
        path: &str,
        mine: &Arc<InodeShared>,
    ) -> Option<Arc<InodeShared>> {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((w, name)) = map.get(&(dev, ino))
            && name == path
            && let Some(s) = w.upgrade()
            && !s.is_deleted()
        {
            return Some(s);
        }
        // Entries of inodes every table has dropped go now and then, so
        // that the map stays as large as the live inodes.
        if map.len() >= 64 && map.len().is_power_of_two() {
            map.retain(|_, (w, _)| w.strong_count() > 0);
        }
        map.insert((dev, ino), (Arc::downgrade(mine), path.to_string()));
        None
    }
}
