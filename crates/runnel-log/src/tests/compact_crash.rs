//! A simulated crash at every step of reclaiming: after the N-th change to
//! the disk, every further change fails (the disk is frozen as a crash
//! would leave it); the log is then reopened on the real filesystem and
//! must hold every live record exactly once, and reclaim on the next pass.

use super::compact::{data_of, dir_bytes, small_cfg, HOUR_MS};
use super::*;
use crate::fs::{Fs, FsFile, RealFs};
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};

/// Counts changes (create, write, sync, truncate, remove, rename, directory
/// sync); once `left` reaches zero every change fails.
struct CrashFs {
    left: Arc<AtomicI64>,
}

struct CrashFile {
    inner: Arc<dyn FsFile>,
    left: Arc<AtomicI64>,
}

fn step(left: &AtomicI64) -> io::Result<()> {
    if left.fetch_sub(1, Ordering::SeqCst) <= 0 {
        return Err(io::Error::other("simulated crash"));
    }
    Ok(())
}

impl FsFile for CrashFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.inner.read_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        step(&self.left)?;
        self.inner.write_all_at(buf, offset)
    }
    fn sync_data(&self) -> io::Result<()> {
        step(&self.left)?;
        self.inner.sync_data()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        step(&self.left)?;
        self.inner.set_len(len)
    }
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
}

impl Fs for CrashFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        RealFs.create_dir_all(dir)
    }
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        RealFs.list_dir(dir)
    }
    fn open(&self, path: &Path) -> io::Result<Arc<dyn FsFile>> {
        Ok(Arc::new(CrashFile {
            inner: RealFs.open(path)?,
            left: self.left.clone(),
        }))
    }
    fn create(&self, path: &Path) -> io::Result<Arc<dyn FsFile>> {
        step(&self.left)?;
        Ok(Arc::new(CrashFile {
            inner: RealFs.create(path)?,
            left: self.left.clone(),
        }))
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        step(&self.left)?;
        RealFs.remove_file(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        step(&self.left)?;
        RealFs.rename(from, to)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        step(&self.left)?;
        RealFs.sync_dir(dir)
    }
}

fn retention(uid: u64) -> Option<u64> {
    (uid == 1).then_some(8760 * HOUR_MS)
}

#[test]
fn crash_at_every_step_of_reclaiming_loses_and_duplicates_nothing() {
    let mut crashed_runs = 0;
    for n in 0.. {
        let dir = tempfile::tempdir().unwrap();
        let (m, c) = clock(1000 * HOUR_MS);
        let left = Arc::new(AtomicI64::new(i64::MAX));
        let fs = Arc::new(CrashFs { left: left.clone() });
        let log = Log::open_with_fs(small_cfg(dir.path()), c.clone(), fs).unwrap();
        let filler = "f".repeat(1500);
        let mut want = Vec::new();
        for round in 0..200u64 {
            let a = format!("audit-{round}-{}", "a".repeat(300));
            block_on(log.append(vec![
                (key(2, 0), vec![rec(&filler)]),
                (key(1, 0), vec![rec(&a)]),
                (key(3, 0), vec![rec(&filler)]),
            ]))
            .unwrap();
            want.push((round, a));
        }
        m.advance_ms(1);
        log.drop_stream(2);
        log.drop_stream(3);
        // Two passes: one compacts the sealed segments, and seals the active
        // one; the second compacts that as well.
        left.store(n, Ordering::SeqCst);
        let mut finished = true;
        for _ in 0..2 {
            if log.enforce_retention(&retention).is_err() {
                finished = false;
            }
            let _ = block_on(log.append(vec![]));
        }
        let crashed = left.load(Ordering::SeqCst) <= 0;
        drop(log);

        let log = open(small_cfg(dir.path()), &c);
        assert_eq!(data_of(&log, key(1, 0)), want, "crash after {n} changes");
        assert_eq!(log.end_position(key(1, 0)), 200);
        for _ in 0..3 {
            log.enforce_retention(&retention).unwrap();
            block_on(log.append(vec![])).unwrap();
        }
        assert_eq!(data_of(&log, key(1, 0)), want, "crash after {n}, compacted");
        let live: u64 = want
            .iter()
            .map(|(_, a)| super::compact::frame_bytes(a))
            .sum();
        let disk = dir_bytes(dir.path());
        assert!(
            disk as f64 <= 1.5 * live as f64,
            "crash after {n}: {disk} B on disk for {live} B live"
        );
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            // A crash while the writer creates a new active segment leaves a
            // headerless file that recovery sets aside (`*.seg.corrupt`):
            // not from compaction, and nothing in it was acknowledged.
            .filter(|f| {
                !f.ends_with(".seg")
                    && !f.ends_with(".idx")
                    && !f.ends_with(".seg.corrupt")
                    && f != "retired"
            })
            .collect();
        assert!(leftovers.is_empty(), "crash after {n}: {leftovers:?}");
        drop(log);
        let log = open(small_cfg(dir.path()), &c);
        assert_eq!(data_of(&log, key(1, 0)), want, "crash after {n}, reopened");
        if !crashed {
            assert!(finished);
            break;
        }
        crashed_runs += 1;
    }
    // Enough steps to cover several segments' worth of compaction.
    assert!(crashed_runs > 20, "{crashed_runs}");
}
