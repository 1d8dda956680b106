//! The record of segment ids the log gave up on purpose (retention deleted
//! them, or compaction merged them into a newer segment), so that recovery
//! can tell a gap in the ids that the log made from a segment file that went
//! missing behind its back (`retired` in the log directory).
//!
//! ```text
//! magic "RNLRET\0\x01" | range count u32 | per range: first id u64 | end id u64 (exclusive)
//! | crc32c(everything before) u32
//! ```
//! Rewritten in place (the file is preallocated, so this needs no new disk
//! blocks even when the disk is full) and synced before the segment files
//! it names are removed: a crash in between leaves a retired id whose file
//! still exists, which recovery simply loads again. The file only explains
//! gaps; if it is torn or damaged, recovery rebuilds it from the segments
//! present (counting every gap as intended) and says so. It never costs data.

use crate::format::{le_u32, le_u64};
use crate::fs::{read_exact_at, Fs};
use crate::LogError;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"RNLRET\0\x01";

pub fn path(dir: &Path) -> PathBuf {
    dir.join("retired")
}

/// Sorted, non-overlapping, non-adjacent ranges of ids.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Retired {
    ranges: Vec<(u64, u64)>,
}

impl Retired {
    #[cfg(test)]
    pub fn contains(&self, id: u64) -> bool {
        let i = self.ranges.partition_point(|(_, end)| *end <= id);
        self.ranges.get(i).is_some_and(|(first, _)| *first <= id)
    }

    pub fn insert_range(&mut self, first: u64, end: u64) {
        if first >= end {
            return;
        }
        self.ranges.push((first, end));
        self.ranges.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(self.ranges.len());
        for (a, b) in self.ranges.drain(..) {
            match merged.last_mut() {
                Some(last) if a <= last.1 => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        self.ranges = merged;
    }

    /// The parts of `first..end` not retired.
    pub fn uncovered(&self, first: u64, end: u64) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        let mut at = first;
        for (a, b) in &self.ranges {
            if *b <= at {
                continue;
            }
            if *a >= end {
                break;
            }
            if *a > at {
                out.push((at, *a));
            }
            at = at.max(*b);
            if at >= end {
                break;
            }
        }
        if at < end {
            out.push((at, end));
        }
        out
    }

    pub fn insert(&mut self, id: u64) {
        self.insert_range(id, id + 1);
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.ranges.len() * 16);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(self.ranges.len() as u32).to_le_bytes());
        for (a, b) in &self.ranges {
            out.extend_from_slice(&a.to_le_bytes());
            out.extend_from_slice(&b.to_le_bytes());
        }
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// `Ok(None)` if the file does not exist (a log written before it did)
    /// or does not verify (a torn rewrite, damage): the caller rebuilds it.
    pub fn load(fs: &dyn Fs, dir: &Path) -> Result<Option<Retired>, LogError> {
        let p = path(dir);
        let f = match fs.open(&p) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let len = f.len()? as usize;
        let mut head = [0u8; 12];
        if len < 16 || read_exact_at(&*f, &mut head, 0).is_err() || &head[0..8] != MAGIC {
            tracing::warn!(path = %p.display(), "damaged; rebuilding it from the segments present");
            return Ok(None);
        }
        let n = le_u32(&head[8..12]) as usize;
        let body = 12 + n.saturating_mul(16);
        if body.saturating_add(4) > len {
            tracing::warn!(path = %p.display(), "damaged; rebuilding it from the segments present");
            return Ok(None);
        }
        let mut buf = vec![0u8; body + 4];
        read_exact_at(&*f, &mut buf, 0)?;
        if crc32c::crc32c(&buf[..body]) != le_u32(&buf[body..]) {
            tracing::warn!(path = %p.display(), "damaged; rebuilding it from the segments present");
            return Ok(None);
        }
        let mut r = Retired::default();
        for e in buf[12..body].chunks_exact(16) {
            r.insert_range(le_u64(&e[0..8]), le_u64(&e[8..16]));
        }
        Ok(Some(r))
    }

    /// Rewrites the file in place and syncs it.
    pub fn store(&self, fs: &dyn Fs, dir: &Path) -> Result<(), LogError> {
        let p = path(dir);
        let bytes = self.encode();
        let f = match fs.open(&p) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let f = fs.create(&p)?;
                f.preallocate(PREALLOCATED_BYTES)?;
                f.sync_data()?;
                fs.sync_dir(dir)?;
                f
            }
            Err(e) => return Err(e.into()),
        };
        f.write_all_at(&bytes, 0)?;
        f.sync_data()?;
        Ok(())
    }
}

/// One block: room for 250 ranges without new blocks (ids retire mostly in
/// order, so the ranges merge and there are few; more just grow the file).
const PREALLOCATED_BYTES: u64 = 4096;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_merge_and_answer() {
        let mut r = Retired::default();
        r.insert(5);
        r.insert_range(0, 3);
        r.insert(3);
        r.insert_range(7, 9);
        assert_eq!(r.ranges, vec![(0, 4), (5, 6), (7, 9)]);
        r.insert(4);
        r.insert(6);
        assert_eq!(r.ranges, vec![(0, 9)]);
        assert!(r.contains(0) && r.contains(8) && !r.contains(9));
        r.insert_range(12, 14);
        assert_eq!(r.uncovered(5, 20), vec![(9, 12), (14, 20)]);
        assert_eq!(r.uncovered(0, 9), vec![]);
        assert_eq!(r.uncovered(9, 12), vec![(9, 12)]);
    }

    #[test]
    fn stored_and_loaded_and_damage_means_rebuild() {
        let dir = tempfile::tempdir().unwrap();
        let fs = crate::fs::RealFs;
        assert_eq!(Retired::load(&fs, dir.path()).unwrap(), None);
        let mut r = Retired::default();
        r.insert_range(2, 10);
        r.insert(12);
        r.store(&fs, dir.path()).unwrap();
        assert_eq!(Retired::load(&fs, dir.path()).unwrap(), Some(r));
        let p = path(dir.path());
        let mut b = std::fs::read(&p).unwrap();
        b[13] ^= 1;
        std::fs::write(&p, b).unwrap();
        assert_eq!(Retired::load(&fs, dir.path()).unwrap(), None);
    }
}
