//! A filesystem that fails on command: ENOSPC, failing fsync, torn writes.

use super::*;
use crate::fs::{Fs, FsFile, RealFs};
use crate::LogError;
use parking_lot::Mutex;
use std::io;
use std::path::PathBuf;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The next segment write fails with ENOSPC, writing nothing.
    Enospc,
    /// The next segment write succeeds but the following sync fails.
    SyncFails,
    /// The next segment write writes half its bytes, then fails.
    Torn,
    /// Like `Torn`, and truncating afterwards fails too.
    TornNoUndo,
}

#[derive(Default)]
pub struct FaultyFs {
    pub next: Arc<Mutex<Option<Fault>>>,
    pending_sync_fail: Arc<Mutex<bool>>,
    pending_no_undo: Arc<Mutex<bool>>,
}

pub(super) struct FaultyFile {
    inner: Arc<dyn FsFile>,
    is_segment: bool,
    next: Arc<Mutex<Option<Fault>>>,
    pending_sync_fail: Arc<Mutex<bool>>,
    pending_no_undo: Arc<Mutex<bool>>,
}

fn enospc() -> io::Error {
    io::Error::from_raw_os_error(28)
}

impl FsFile for FaultyFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.inner.read_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        // Only commit writes (at a non-zero offset) are faulted, not segment creation.
        if !self.is_segment || offset == 0 {
            return self.inner.write_all_at(buf, offset);
        }
        match self.next.lock().take() {
            None => self.inner.write_all_at(buf, offset),
            Some(Fault::Enospc) => Err(enospc()),
            Some(Fault::SyncFails) => {
                *self.pending_sync_fail.lock() = true;
                self.inner.write_all_at(buf, offset)
            }
            Some(f @ (Fault::Torn | Fault::TornNoUndo)) => {
                self.inner.write_all_at(&buf[..buf.len() / 2], offset)?;
                if f == Fault::TornNoUndo {
                    *self.pending_no_undo.lock() = true;
                }
                Err(enospc())
            }
        }
    }
    fn sync_data(&self) -> io::Result<()> {
        if std::mem::take(&mut *self.pending_sync_fail.lock()) {
            return Err(io::Error::other("injected fsync failure"));
        }
        self.inner.sync_data()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        if std::mem::take(&mut *self.pending_no_undo.lock()) {
            return Err(io::Error::other("injected truncate failure"));
        }
        self.inner.set_len(len)
    }
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
}

impl FaultyFs {
    fn wrap(&self, path: &Path, inner: Arc<dyn FsFile>) -> Arc<dyn FsFile> {
        Arc::new(FaultyFile {
            inner,
            is_segment: path.extension().is_some_and(|e| e == "seg"),
            next: self.next.clone(),
            pending_sync_fail: self.pending_sync_fail.clone(),
            pending_no_undo: self.pending_no_undo.clone(),
        })
    }
}

impl Fs for FaultyFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        RealFs.create_dir_all(dir)
    }
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        RealFs.list_dir(dir)
    }
    fn open(&self, path: &Path) -> io::Result<Arc<dyn FsFile>> {
        Ok(self.wrap(path, RealFs.open(path)?))
    }
    fn create(&self, path: &Path) -> io::Result<Arc<dyn FsFile>> {
        Ok(self.wrap(path, RealFs.create(path)?))
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        RealFs.remove_file(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        RealFs.rename(from, to)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        RealFs.sync_dir(dir)
    }
}

type Acked = Vec<(ShardKey, String)>;

fn do_append(log: &Log, tag: &str, acked: &mut Acked) -> Result<(), LogError> {
    let (a, b) = (key(1, 0), key(1, 1));
    let groups = vec![
        (
            a,
            vec![rec(&format!("{tag}-a0")), rec(&format!("{tag}-a1"))],
        ),
        (b, vec![rec(&format!("{tag}-b"))]),
    ];
    block_on(log.append(groups))?;
    acked.extend([
        (a, format!("{tag}-a0")),
        (a, format!("{tag}-a1")),
        (b, format!("{tag}-b")),
    ]);
    Ok(())
}

fn check(log: &Log, acked: &Acked, fault: Fault) {
    for k in [key(1, 0), key(1, 1)] {
        let got: Vec<String> = read_all(log, k)
            .iter()
            .map(|r| String::from_utf8(r.data.to_vec()).unwrap())
            .collect();
        let want: Vec<String> = acked
            .iter()
            .filter(|(kk, _)| *kk == k)
            .map(|(_, s)| s.clone())
            .collect();
        assert_eq!(got, want, "{fault:?} {k:?}");
    }
}

fn run_fault(fault: Fault) {
    let dir = tempfile::tempdir().unwrap();
    let (_, c) = clock(1_000);
    let fs = Arc::new(FaultyFs::default());
    let log = Log::open_with_fs(cfg(dir.path()), c.clone(), fs.clone()).unwrap();
    let mut acked = Acked::new();
    do_append(&log, "ok1", &mut acked).unwrap();
    *fs.next.lock() = Some(fault);
    assert!(
        do_append(&log, "failed", &mut acked).is_err(),
        "{fault:?} must fail the append"
    );
    let after = do_append(&log, "ok2", &mut acked);
    if fault == Fault::TornNoUndo {
        assert!(matches!(after, Err(LogError::Poisoned(_))), "{after:?}");
    } else {
        after.unwrap();
        // The failed commit consumed no positions.
        assert_eq!(log.end_position(key(1, 0)), 4);
    }
    check(&log, &acked, fault);
    drop(log);
    let log = open(cfg(dir.path()), &c);
    check(&log, &acked, fault);
    do_append(&log, "ok3", &mut acked).unwrap();
    check(&log, &acked, fault);
}

#[test]
fn enospc_fails_append_and_loses_nothing_acked() {
    run_fault(Fault::Enospc);
}

#[test]
fn fsync_failure_fails_append_and_loses_nothing_acked() {
    run_fault(Fault::SyncFails);
}

#[test]
fn torn_write_fails_append_and_loses_nothing_acked() {
    run_fault(Fault::Torn);
}

#[test]
fn torn_write_that_cannot_be_undone_poisons_until_reopen() {
    run_fault(Fault::TornNoUndo);
}
