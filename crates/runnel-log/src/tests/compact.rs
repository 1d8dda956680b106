//! Compaction: space bound with mixed retention, deletion and retention
//! decrease; reads racing compaction; ENOSPC during appends and compaction.

use super::*;
use crate::fs::{Fs, FsFile, RealFs};
use crate::{LogConfig, LogError};
use std::collections::HashMap;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

pub const HOUR_MS: u64 = 3_600_000;

/// Apparent bytes of every file in the log directory (segments, sidecars, leftovers).
pub fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum()
}

/// Bytes one single-record frame of `s` takes in a segment.
pub fn frame_bytes(s: &str) -> u64 {
    (crate::format::FRAME_HEADER_BYTES + crate::format::RECORD_HEADER_BYTES + 3 + 2 * s.len())
        as u64
}

pub fn small_cfg(dir: &Path) -> LogConfig {
    LogConfig {
        segment_bytes_max: 64 * 1024,
        ..cfg(dir)
    }
}

pub fn data_of(log: &Log, k: ShardKey) -> Vec<(u64, String)> {
    read_all(log, k)
        .into_iter()
        .map(|r| (r.position, String::from_utf8(r.data.to_vec()).unwrap()))
        .collect()
}

/// What was written, to compute what must still be there.
#[derive(Default)]
struct Book {
    frames: Vec<(u64, u64, u64)>, // (stream, ts, bytes)
}

impl Book {
    fn live_bytes(&self, now: u64, retention: &HashMap<u64, Option<u64>>) -> u64 {
        self.frames
            .iter()
            .filter(|(u, ts, _)| {
                retention
                    .get(u)
                    .copied()
                    .flatten()
                    .is_some_and(|r| now.saturating_sub(*ts) <= r)
            })
            .map(|(_, _, b)| b)
            .sum()
    }
}

/// Runs retention until it has nothing left to do (at most a few passes:
/// the first may ask the writer to seal the active segment).
fn settle(log: &Log, retention: &HashMap<u64, Option<u64>>) {
    for _ in 0..4 {
        let r = log
            .enforce_retention(&|u| retention.get(&u).copied().flatten())
            .unwrap();
        // Let the writer act on a roll request.
        block_on(log.append(vec![])).unwrap();
        if r.segments_deleted == 0 && r.segments_compacted == 0 {
            continue;
        }
    }
}

#[test]
fn space_stays_bounded_with_mixed_retention_deletion_and_decrease() {
    let dir = tempfile::tempdir().unwrap();
    let (m, c) = clock(1000 * HOUR_MS);
    let log = open(small_cfg(dir.path()), &c);
    // 1 = audit (a year), 2 = bulk (24 h, deleted later), 3 = medium (48 h,
    // decreased to 1 h later), 4 = short (2 h).
    let mut retention: HashMap<u64, Option<u64>> = HashMap::from([
        (1, Some(8760 * HOUR_MS)),
        (2, Some(24 * HOUR_MS)),
        (3, Some(48 * HOUR_MS)),
        (4, Some(2 * HOUR_MS)),
    ]);
    let mut book = Book::default();
    let mut audit = Vec::new();
    let bulk_data = "b".repeat(900);
    for round in 0..600u64 {
        let a = format!("audit-{round:05}-{}", "a".repeat(200));
        let mut groups = vec![(key(1, 0), vec![rec(&a)])];
        book.frames.push((1, c.now_ms(), frame_bytes(&a)));
        audit.push(a);
        for (uid, shard) in [(2u64, 0u32), (2, 1), (3, 0), (4, 0)] {
            let d = format!("{uid}-{round:05}-{bulk_data}");
            book.frames.push((uid, c.now_ms(), frame_bytes(&d)));
            groups.push((key(uid, shard), vec![rec(&d)]));
        }
        block_on(log.append(groups)).unwrap();
        m.advance_ms(60_000); // a minute per round: 10 hours in all
    }
    let total_written: u64 = book.frames.iter().map(|f| f.2).sum();
    let check = |what: &str, log: &Log, retention: &HashMap<u64, Option<u64>>| {
        settle(log, retention);
        let live = book.live_bytes(c.now_ms(), retention);
        let disk = dir_bytes(dir.path());
        let factor = disk as f64 / live as f64;
        eprintln!("{what}: live {live} B, disk {disk} B, factor {factor:.3}");
        assert!(
            factor <= 1.5,
            "{what}: disk {disk} B for {live} B retained ({factor:.2}x)"
        );
        let want: Vec<(u64, String)> = audit
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, s)| (i as u64, s))
            .collect();
        assert_eq!(data_of(log, key(1, 0)), want, "{what}: audit intact");
    };
    // Short stream expires (2 h retention, 10 h of data).
    check("short expired", &log, &retention);
    // Medium retention decreased to 1 hour.
    retention.insert(3, Some(HOUR_MS));
    check("medium decreased", &log, &retention);
    // Bulk deleted.
    log.drop_stream(2);
    retention.insert(2, None);
    check("bulk deleted", &log, &retention);
    let live = book.live_bytes(c.now_ms(), &retention);
    assert!(
        live * 5 < total_written,
        "the test must have freed most data"
    );
    // Records of the medium stream newer than an hour are still readable, in order.
    let now = c.now_ms();
    let o = log
        .read(key(3, 0), 0, 10_000, 64 << 20, now - HOUR_MS)
        .unwrap();
    assert!(!o.records.is_empty());
    assert!(o
        .records
        .windows(2)
        .all(|w| w[1].position == w[0].position + 1));
    assert_eq!(o.records.last().unwrap().position, 599);
    // Timestamp lookups still work across compacted segments.
    let p = log
        .position_at_timestamp(key(1, 0), 1000 * HOUR_MS + 300 * 60_000)
        .unwrap();
    assert_eq!(p, 300);
    drop(log);
    // After a restart everything still reads the same and positions continue.
    let log = open(small_cfg(dir.path()), &c);
    check("after restart", &log, &retention);
    let ack = block_on(log.append(vec![(key(1, 0), vec![rec("after")])])).unwrap();
    assert_eq!(ack[0].first_position, 600);
    assert_eq!(log.end_position(key(4, 0)), 600);
}

#[test]
fn reads_racing_compaction_never_fail() {
    let dir = tempfile::tempdir().unwrap();
    let (m, c) = clock(1000 * HOUR_MS);
    let log = Arc::new(open(small_cfg(dir.path()), &c));
    let filler = "f".repeat(2000);
    for round in 0..300u64 {
        block_on(log.append(vec![
            (key(1, 0), vec![rec(&format!("a{round}"))]),
            (key(2, 0), vec![rec(&filler)]),
        ]))
        .unwrap();
    }
    m.advance_ms(1);
    log.drop_stream(2);
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (log, stop) = (log.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut passes = 0;
            while !stop.load(Ordering::Relaxed) || passes == 0 {
                let mut pos = 0;
                let mut n = 0;
                loop {
                    let o = log.read(key(1, 0), pos, 3, 1 << 20, 0).unwrap();
                    if o.records.is_empty() {
                        break;
                    }
                    for r in &o.records {
                        assert_eq!(r.position, n);
                        n += 1;
                    }
                    pos = o.next_position;
                }
                assert_eq!(n, 300);
                passes += 1;
            }
            passes
        })
    };
    let mut compacted = 0;
    for _ in 0..3 {
        let r = log
            .enforce_retention(&|u| (u == 1).then_some(HOUR_MS))
            .unwrap();
        compacted += r.segments_compacted;
        block_on(log.append(vec![])).unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    assert!(reader.join().unwrap() > 0);
    assert!(compacted > 0);
}

/// Fails every write, create and sync with ENOSPC while `full` is set.
#[derive(Default)]
pub struct FullFs {
    pub full: Arc<AtomicBool>,
}

struct FullFile {
    inner: Arc<dyn FsFile>,
    full: Arc<AtomicBool>,
}

fn enospc() -> io::Error {
    io::Error::from_raw_os_error(28)
}

impl FullFile {
    fn check(&self) -> io::Result<()> {
        if self.full.load(Ordering::Relaxed) {
            return Err(enospc());
        }
        Ok(())
    }
}

impl FsFile for FullFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.inner.read_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.check()?;
        self.inner.write_all_at(buf, offset)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.inner.sync_data()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
}

impl Fs for FullFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        RealFs.create_dir_all(dir)
    }
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        RealFs.list_dir(dir)
    }
    fn open(&self, path: &Path) -> io::Result<Arc<dyn FsFile>> {
        Ok(Arc::new(FullFile {
            inner: RealFs.open(path)?,
            full: self.full.clone(),
        }))
    }
    fn create(&self, path: &Path) -> io::Result<Arc<dyn FsFile>> {
        if self.full.load(Ordering::Relaxed) {
            return Err(enospc());
        }
        Ok(Arc::new(FullFile {
            inner: RealFs.create(path)?,
            full: self.full.clone(),
        }))
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

#[test]
fn full_disk_names_the_cause_and_the_log_resumes_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let (m, c) = clock(1000 * HOUR_MS);
    let fs = Arc::new(FullFs::default());
    let log = Log::open_with_fs(small_cfg(dir.path()), c.clone(), fs.clone()).unwrap();
    let filler = "f".repeat(3000);
    let mut audit = Vec::new();
    for round in 0..100u64 {
        let a = format!("a{round}");
        block_on(log.append(vec![
            (key(1, 0), vec![rec(&a)]),
            (key(2, 0), vec![rec(&filler)]),
        ]))
        .unwrap();
        audit.push(a);
    }
    fs.full.store(true, Ordering::Relaxed);
    // Appends fail while the disk is full (also when a roll is due), and say why.
    for _ in 0..30 {
        let e = block_on(log.append(vec![(key(2, 0), vec![rec(&filler)])])).unwrap_err();
        assert!(e.is_no_space(), "{e:?}");
        assert!(e.to_string().contains("No space left on device"), "{e}");
    }
    // Compaction cannot run either, and must leave everything readable.
    m.advance_ms(1);
    log.drop_stream(2);
    let r = log
        .enforce_retention(&|u| (u == 1).then_some(HOUR_MS))
        .unwrap();
    assert_eq!(r.segments_compacted, 0);
    let want: Vec<(u64, String)> = audit
        .iter()
        .cloned()
        .enumerate()
        .map(|(i, s)| (i as u64, s))
        .collect();
    assert_eq!(data_of(&log, key(1, 0)), want);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // Space comes back: appends and compaction work again without a reopen.
    fs.full.store(false, Ordering::Relaxed);
    let ack = block_on(log.append(vec![(key(1, 0), vec![rec("after")])])).unwrap();
    assert_eq!(ack[0].first_position, 100);
    audit.push("after".into());
    let before = dir_bytes(dir.path());
    let mut compacted = 0;
    for _ in 0..3 {
        compacted += log
            .enforce_retention(&|u| (u == 1).then_some(HOUR_MS))
            .unwrap()
            .segments_compacted;
        block_on(log.append(vec![])).unwrap();
    }
    assert!(compacted > 0);
    assert!(dir_bytes(dir.path()) * 4 < before, "space came back");
    let want: Vec<(u64, String)> = audit
        .iter()
        .cloned()
        .enumerate()
        .map(|(i, s)| (i as u64, s))
        .collect();
    assert_eq!(data_of(&log, key(1, 0)), want);
    assert!(matches!(
        block_on(log.append(vec![(key(2, 0), vec![rec("x")])])),
        Err(LogError::StreamDropped(2))
    ));
}
