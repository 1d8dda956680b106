//! runnel-log: the shard log store. Append with group commit, read from a
//! position or a timestamp, per-stream retention, crash recovery.
//!
//! # Design
//! One shared, segmented, append-only log for every shard of the node. A
//! single writer thread drains all pending appends, writes one frame per
//! (shard, append) with one positional write, syncs once (`fdatasync`), then
//! acknowledges them all. Thousands of shards cost one fsync per commit and
//! one file descriptor per segment, not per shard. `docs/storage.md` says why
//! this won over an LSM and over per-shard files.
//!
//! # On-disk format, version 2 (`format::FORMAT_VERSION`)
//! All integers little-endian. A format change bumps the version. Version 1
//! files (written before compaction existed) are read unchanged: their zero
//! fields mean "replaces nothing" and "frame bytes unknown".
//!
//! ## Files in `LogConfig::dir`
//! - `<id:020>.seg`: segment `id` (ids grow by one). The newest is the
//!   *active* segment; all others are *sealed* (never written again).
//! - `<id:020>.idx`: sidecar index of a sealed segment, written when it was
//!   sealed (temp file, fsync, rename, fsync dir). The active segment has none.
//! - `*.tmp` are leftovers of an interrupted sidecar write and are removed at
//!   open; `*.seg.corrupt` are segments set aside by recovery (kept for forensics).
//!
//! ## Segment
//! ```text
//! header (32 B): magic "RNLSEG\0\x01" | version u32 | replaces u32 | segment id u64 | 0 u32 | crc32c(bytes 0..28) u32
//! frame*         the first frame is always a shard table
//! ```
//! ## Frame
//! ```text
//! 0  crc32c u32        over bytes 4..frame_bytes (everything after itself)
//! 4  frame_bytes u32   whole frame, header included
//! 8  kind u8           1 = records, 2 = shard table
//! 9  flags u8          bit 0 = COMMIT_END (last frame of one append call)
//! 10 0 u16
//! 12 record_count u32  (shard table: entry count)
//! 16 stream_uid u64
//! 24 shard_index u32
//! 28 0 u32
//! 32 commit_seq u64    same for all frames of one commit, grows across commits
//! 40 first_position u64
//! 48 timestamp_ms u64  one arrival timestamp for every record of the frame
//! 56 payload
//!    records:     per record: key_len u32 | data_len u32 | key (utf-8) | data
//!    shard table: per shard:  stream_uid u64 | shard_index u32 | next_position u64 | last_timestamp_ms u64
//! ```
//! The shard table at the start of every segment records each live shard's
//! next position and last timestamp, so positions are never reused even when
//! retention has deleted every segment that held a shard's records: the
//! active segment is never deleted and always starts with a complete table.
//!
//! ## Sidecar (`.idx`), version 3
//! ```text
//! header (64 B): magic "RNLIDX\0\x01" | version u32 | span count u32 | segment id u64
//!                | crc32c(spans) u32 | crc32c(bytes 0..28) u32
//!                | stream count u32 | end count u32 | crc32c(streams) u32 | crc32c(ends) u32
//!                | 12 zero bytes | crc32c(bytes 32..60) u32
//! streams: per stream (32 B): stream_uid u64 | frame_bytes u64 | first_ts u64 | last_ts u64
//! spans:   per shard (64 B): stream_uid u64 | shard_index u32 | frame_count u32 | first_position u64
//!          | end_position u64 | first_ts u64 | last_ts u64 | frames_offset u64 | crc32c(frames) u32
//!          | frame_bytes u32 (sum of the shard's frame lengths; 0 = unknown)
//! ends:    per shard known at sealing (32 B): stream_uid u64 | shard_index u32 | 0 u32
//!          | next_position u64 | last_timestamp_ms u64
//! frames:  per shard, at frames_offset, per frame (32 B):
//!          first_position u64 | record_count u32 | frame_bytes u32 | offset u64 | timestamp_ms u64
//! ```
//! Versions 1 and 2 had the first 32 header bytes and the spans only;
//! recovery rewrites them as version 3.
//!
//! ## Compacted segments (`compact.rs`)
//! A segment with `replaces = n > 0` was written by compaction: it holds,
//! byte for byte except that each carries COMMIT_END, the frames still live
//! of segments `id - n ..= id` at the time, after an empty shard table
//! (commit_seq 0). Once it exists under its final name, every older segment
//! with an id in `id - n .. id` is obsolete and recovery removes it.
//!
//! # Recovery (`recovery.rs`)
//! 1. Remove `*.tmp`, segments replaced by a compacted one, and sidecars
//!    without a segment.
//! 2. The newest segment whose header and shard table are valid is the
//!    active one (a newer one without them was cut short while being created,
//!    before anything in it could be acknowledged; it is set aside).
//! 3. Scan the active segment frame by frame, checking each crc32c, that
//!    frames of a commit share a `commit_seq` that grows across commits, and
//!    that each shard's positions are dense. Frames are accepted a whole
//!    commit at a time (up to a COMMIT_END frame); the file is truncated after
//!    the last complete commit, so a torn tail never shows up as data. A bad
//!    frame with verified frames after it is damage, not a torn tail: the
//!    scan resynchronises on the next verified frame, and `OnCorruption`
//!    decides between refusing to open and sealing the segment with what
//!    verifies (docs/storage.md, "Damage, recovery rules").
//! 4. For each sealed segment read only the sidecar's per-stream section
//!    (rebuilt by a scan if missing or damaged, rewritten if older than
//!    version 3). Start-up reads that plus at most one segment, and keeps no
//!    sealed segment open.
//!
//! # Memory
//! Per shard: counters and the frame index of the active segment only. Per
//! sealed segment: its size and per-stream aggregates. Spans, end tables,
//! frame lists and open files of sealed segments are loaded on demand into
//! caches bounded in bytes (`index.rs`, docs/storage.md "Bounded by design").
//!
//! # Failures
//! A write or sync error fails every append of that commit; the file is cut
//! back to where the commit began, so no unacknowledged frame survives. If
//! even that fails, the log refuses all further appends (`LogError::Poisoned`)
//! until it is reopened, and recovery decides from checksums.

mod compact;
mod format;
pub mod fs;
mod index;
mod read;
mod recovery;
mod retention;
mod retired;
mod segment;
mod sidecar;
mod sync;
mod writer;

#[cfg(test)]
mod tests;

pub use fs::{Fs, FsFile, RealFs};

use index::{Caches, Index};
use parking_lot::{Mutex, RwLock};
use runnel_types::Clock;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use tokio::sync::{mpsc, oneshot, Semaphore};

pub const SEGMENT_BYTES_MAX_DEFAULT: u64 = 64 * 1024 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Durability {
    /// Acknowledge only after `fdatasync` (the default).
    #[default]
    Fsync,
    /// Acknowledge after the write reaches the OS; a power cut may lose the last commits.
    None,
}

/// What recovery does when it finds damaged data (not a torn tail).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum OnCorruption {
    /// Refuse to open, naming the file and offset; nothing is changed.
    #[default]
    Refuse,
    /// Keep every frame that verifies, set the damaged segment aside as a
    /// sealed one (a copy of it is kept), report the loss and go on.
    Skip,
}

#[derive(Clone, Debug)]
pub struct LogConfig {
    pub on_corruption: OnCorruption,
    pub dir: PathBuf,
    pub durability: Durability,
    /// A segment is sealed once it reaches this size.
    pub segment_bytes_max: u64,
    /// Appends (in payload bytes) waiting for the writer; `append` waits when full.
    pub pending_bytes_max: usize,
    /// The writer stops draining the queue into one commit past this many payload bytes.
    pub commit_bytes_max: usize,
    /// Bytes of (segment, shard) frame lists of sealed segments kept in memory.
    pub frames_cache_bytes_max: usize,
    /// Bytes of sealed segments' details (spans and shard end tables) kept in memory.
    pub details_cache_bytes_max: usize,
    /// Sealed segment files kept open for reads (the active one is always open).
    pub open_segments_max: usize,
    /// Allocate each active segment's full size when it is created (see
    /// `writer.rs`); off only in tests that read commit boundaries off the file length.
    pub preallocate_segments: bool,
    /// Sync on a second thread while the writer writes the next commits (the
    /// two-stage pipeline of `sync.rs`). Off by default: measured here, the
    /// extra hand-off costs single-record requests ~13 % and gains nothing for
    /// large ones (docs/storage.md); kept to measure on other disks.
    pub sync_thread: bool,
    /// Bytes of live frames compaction copies in one retention pass at most
    /// (it reads and writes in chunks of at most 1 MiB).
    pub compact_bytes_per_pass_max: u64,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            dir: PathBuf::from("runnel-data/log"),
            durability: Durability::Fsync,
            segment_bytes_max: SEGMENT_BYTES_MAX_DEFAULT,
            pending_bytes_max: 64 * 1024 * 1024,
            commit_bytes_max: 8 * 1024 * 1024,
            frames_cache_bytes_max: 32 * 1024 * 1024,
            details_cache_bytes_max: 32 * 1024 * 1024,
            open_segments_max: 128,
            preallocate_segments: true,
            sync_thread: false,
            compact_bytes_per_pass_max: 256 * 1024 * 1024,
            on_corruption: OnCorruption::Refuse,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShardKey {
    pub stream_uid: u64,
    pub shard_index: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordIn {
    pub partition_key: String,
    pub data: bytes::Bytes,
}

/// Record `i` of the group got position `first_position + i`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppendAck {
    pub first_position: u64,
    pub timestamp_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredRecord {
    pub position: u64,
    pub timestamp_ms: u64,
    pub partition_key: String,
    pub data: bytes::Bytes,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadOutcome {
    pub records: Vec<StoredRecord>,
    /// The position after the last record returned or skipped.
    pub next_position: u64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RetentionReport {
    /// Whole segments removed, including those replaced by compaction.
    pub segments_deleted: u64,
    /// Disk bytes given back (compaction counts old size minus new size).
    pub bytes_reclaimed: u64,
    /// Segments written by compaction (each replaces one or more).
    pub segments_compacted: u64,
    /// Live frame bytes compaction copied.
    pub bytes_copied: u64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogStats {
    pub segments: u64,
    pub bytes_on_disk: u64,
    pub shards_tracked: u64,
    /// Commits (group writes) since open.
    pub commits: u64,
    /// Records appended since open.
    pub records: u64,
    /// Data syncs issued by the writer since open.
    pub syncs: u64,
    pub active_segment_id: u64,
    pub sidecar_cache_entries: u64,
    /// Bytes held by the caches of frame lists and segment details.
    pub cache_bytes: u64,
    /// Sealed segment files open in the cache.
    pub open_segments: u64,
}

#[derive(thiserror::Error, Debug)]
pub enum LogError {
    #[error("storage i/o error: {0}")]
    Io(#[from] std::io::Error),
    #[error("corrupt log data: {0}")]
    Corrupt(String),
    #[error("the log is closed")]
    Closed,
    #[error("the log refuses writes after a failure it could not undo; reopen it: {0}")]
    Poisoned(String),
    #[error("stream {0} was dropped")]
    StreamDropped(u64),
    /// Internal: a segment went away (retention) while it was being read;
    /// the read looks again. Never returned by the public API.
    #[error("segment removed while reading: {0}")]
    Gone(String),
}

impl LogError {
    /// Whether the failure is a full disk (ENOSPC or EDQUOT).
    pub fn is_no_space(&self) -> bool {
        match self {
            LogError::Io(e) => is_no_space(e),
            _ => false,
        }
    }

    /// A copy for each waiter of a failed commit (`io::Error` is not `Clone`).
    fn duplicate(&self) -> LogError {
        match self {
            LogError::Io(e) => LogError::Io(std::io::Error::new(e.kind(), e.to_string())),
            LogError::Corrupt(s) => LogError::Corrupt(s.clone()),
            LogError::Closed => LogError::Closed,
            LogError::Poisoned(s) => LogError::Poisoned(s.clone()),
            LogError::StreamDropped(u) => LogError::StreamDropped(*u),
            LogError::Gone(s) => LogError::Gone(s.clone()),
        }
    }
}

/// Whether an I/O error means the disk (or quota) is full.
pub fn is_no_space(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::StorageFull
        || e.kind() == std::io::ErrorKind::QuotaExceeded
        || matches!(e.raw_os_error(), Some(28) | Some(122))
}

#[derive(Default)]
struct Counters {
    commits: AtomicU64,
    records: AtomicU64,
    syncs: AtomicU64,
}

/// State shared by the API side and the writer thread.
struct Shared {
    config: LogConfig,
    clock: Arc<dyn Clock>,
    fs: Arc<dyn Fs>,
    index: RwLock<Index>,
    caches: Mutex<Caches>,
    /// Per shard, a run of sealed segments found to hold none of its data
    /// (sealed epoch, first, end): see `read.rs`, `locate`.
    first_spans: Mutex<HashMap<ShardKey, (u64, usize, usize)>>,
    /// Per shard, the sealed span its last read was in, under the layout
    /// generation it was found in (one span per shard, whatever the data).
    last_spans: Mutex<HashMap<ShardKey, (u64, index::SealedSpan)>>,
    counters: Counters,
    /// Retention passes (deletion and compaction) run one at a time.
    pass_lock: Mutex<()>,
    /// Bumped before and after retention or compaction changes which files
    /// back the sealed segments (odd while a change is under way); a read
    /// that fails while it moves is retried (`Log::read`).
    layout_generation: AtomicU64,
    /// Set by retention when the active segment is mostly dead; the writer
    /// then seals it at its next commit so compaction can reclaim it.
    roll_requested: std::sync::atomic::AtomicBool,
    /// (active segment id, bytes of its frames that belonged to streams
    /// dropped since): dropped shards leave the index, so this remembers them.
    dropped_active: Mutex<(u64, u64)>,
    /// Mirror of the writer's poisoned reason, for health reporting.
    poisoned: Mutex<Option<String>>,
    /// Segment ids given up on purpose (`retired.rs`).
    retired: Mutex<retired::Retired>,
}

/// The log. `Send + Sync`; share it with `Arc<Log>`. Dropping it stops the
/// writer thread after it has finished the appends already queued.
pub struct Log {
    shared: Arc<Shared>,
    tx: Option<mpsc::Sender<writer::AppendRequest>>,
    pending: Arc<Semaphore>,
    pending_kib_max: u32,
    writer: Option<JoinHandle<()>>,
    syncer: Option<JoinHandle<()>>,
    damage: Vec<String>,
}

impl Log {
    pub fn open(config: LogConfig, clock: Arc<dyn Clock>) -> Result<Log, LogError> {
        Log::open_with_fs(config, clock, Arc::new(RealFs))
    }

    pub fn open_with_fs(
        config: LogConfig,
        clock: Arc<dyn Clock>,
        fs: Arc<dyn Fs>,
    ) -> Result<Log, LogError> {
        let rec = recovery::recover(&config.dir, &*fs, config.on_corruption)?;
        let pending_kib_max = (config.pending_bytes_max / 1024).clamp(1, u32::MAX as usize) as u32;
        let segment_id = rec.index.active_id;
        let shared = Arc::new(Shared {
            caches: Mutex::new(Caches::new(
                config.frames_cache_bytes_max,
                config.details_cache_bytes_max,
                config.open_segments_max,
            )),
            first_spans: Mutex::new(HashMap::new()),
            last_spans: Mutex::new(HashMap::new()),
            config,
            clock,
            fs,
            index: RwLock::new(rec.index),
            counters: Counters::default(),
            pass_lock: Mutex::new(()),
            layout_generation: AtomicU64::new(0),
            roll_requested: std::sync::atomic::AtomicBool::new(false),
            dropped_active: Mutex::new((0, 0)),
            poisoned: Mutex::new(None),
            retired: Mutex::new(rec.retired),
        });
        let (tx, rx) = mpsc::channel(1024);
        let pipeline = Arc::new(sync::Pipeline::default());
        let mut syncer_thread = None;
        let mut syncer_tx = None;
        if shared.config.durability == Durability::Fsync && shared.config.sync_thread {
            let (stx, srx) = std::sync::mpsc::channel();
            let syncer = sync::Syncer {
                shared: shared.clone(),
                pipeline: pipeline.clone(),
                rx: srx,
                wake_writer: tx.downgrade(),
            };
            syncer_thread = Some(
                std::thread::Builder::new()
                    .name("runnel-log-sync".into())
                    .spawn(move || syncer.run())?,
            );
            syncer_tx = Some(stx);
        }
        let w = writer::Writer {
            shared: shared.clone(),
            rx,
            file: rec.active_file,
            segment_id,
            offset: rec.active_len,
            next_commit_seq: rec.next_commit_seq,
            poisoned: None,
            buf: Vec::new(),
            tails: std::collections::HashMap::new(),
            pipeline,
            syncer: syncer_tx,
            epoch: 0,
        };
        let handle = std::thread::Builder::new()
            .name("runnel-log-writer".into())
            .spawn(move || w.run())?;
        Ok(Log {
            shared,
            tx: Some(tx),
            pending: Arc::new(Semaphore::new(pending_kib_max as usize)),
            pending_kib_max,
            writer: Some(handle),
            syncer: syncer_thread,
            damage: rec.damage,
        })
    }

    /// One commit: all groups are written and synced together; returns one
    /// ack per group, in order. All or nothing.
    pub async fn append(
        &self,
        groups: Vec<(ShardKey, Vec<RecordIn>)>,
    ) -> Result<Vec<AppendAck>, LogError> {
        let bytes: usize = groups
            .iter()
            .flat_map(|g| g.1.iter())
            .map(|r| r.partition_key.len() + r.data.len() + format::RECORD_HEADER_BYTES)
            .sum::<usize>()
            + groups.len() * format::FRAME_HEADER_BYTES;
        let kib = ((bytes / 1024) as u32).clamp(1, self.pending_kib_max);
        let permit = self
            .pending
            .clone()
            .acquire_many_owned(kib)
            .await
            .map_err(|_| LogError::Closed)?;
        let (reply, rx) = oneshot::channel();
        let tx = self.tx.as_ref().ok_or(LogError::Closed)?;
        tx.send(writer::AppendRequest {
            groups,
            bytes,
            reply,
            permit: Some(permit),
        })
        .await
        .map_err(|_| LogError::Closed)?;
        rx.await.map_err(|_| LogError::Closed)?
    }

    /// Blocking read (fast when the data is in the page cache). Up to
    /// `max_records` records / about `max_bytes` of key+data (always at least
    /// one record if any is available) from `from_position`, skipping records
    /// older than `not_before_ms`.
    pub fn read(
        &self,
        shard: ShardKey,
        from_position: u64,
        max_records: usize,
        max_bytes: usize,
        not_before_ms: u64,
    ) -> Result<ReadOutcome, LogError> {
        self.shared.retry_across_layout_changes(|| {
            self.shared
                .read(shard, from_position, max_records, max_bytes, not_before_ms)
        })
    }

    /// The next position to be assigned; 0 if the shard is unknown.
    pub fn end_position(&self, shard: ShardKey) -> u64 {
        self.shared
            .index
            .read()
            .shards
            .get(&shard)
            .map_or(0, |s| s.next_position)
    }

    pub fn last_timestamp_ms(&self, shard: ShardKey) -> Option<u64> {
        let index = self.shared.index.read();
        index
            .shards
            .get(&shard)
            .filter(|s| s.next_position > 0)
            .map(|s| s.last_timestamp_ms)
    }

    /// First position whose timestamp is >= `ts_ms`; `end_position` if none.
    pub fn position_at_timestamp(&self, shard: ShardKey, ts_ms: u64) -> Result<u64, LogError> {
        self.shared
            .retry_across_layout_changes(|| self.shared.position_at_timestamp(shard, ts_ms))
    }

    /// Forgets the stream's in-memory state and refuses further appends to it
    /// (until restart); its disk space comes back through retention.
    pub fn drop_stream(&self, stream_uid: u64) {
        let mut index = self.shared.index.write();
        let bytes: u64 = index
            .shards
            .iter()
            .filter(|(k, _)| k.stream_uid == stream_uid)
            .flat_map(|(_, st)| st.active.iter())
            .map(|f| u64::from(f.len))
            .sum();
        {
            let mut d = self.shared.dropped_active.lock();
            if d.0 != index.active_id {
                *d = (index.active_id, 0);
            }
            d.1 += bytes;
        }
        index.shards.retain(|k, _| k.stream_uid != stream_uid);
        index.dropped.insert(stream_uid);
        drop(index);
        self.shared
            .first_spans
            .lock()
            .retain(|k, _| k.stream_uid != stream_uid);
        self.shared
            .last_spans
            .lock()
            .retain(|k, _| k.stream_uid != stream_uid);
    }

    /// Deletes whole sealed segments whose every frame is past its stream's
    /// retention (`None` from `retention_ms_of` means the stream is gone),
    /// then compacts mostly dead sealed segments (`compact.rs`). Blocking:
    /// call it off the async runtime.
    pub fn enforce_retention(
        &self,
        retention_ms_of: &dyn Fn(u64) -> Option<u64>,
    ) -> Result<RetentionReport, LogError> {
        let report = self.shared.enforce_retention(retention_ms_of)?;
        if self.shared.roll_requested.load(Ordering::Relaxed) {
            // Wake the writer with an empty append so it seals the segment
            // even when no client is writing; a full queue wakes it anyway.
            if let Some(tx) = &self.tx {
                let (reply, _) = oneshot::channel();
                let _ = tx.try_send(writer::AppendRequest {
                    groups: Vec::new(),
                    bytes: 0,
                    reply,
                    permit: None,
                });
            }
        }
        Ok(report)
    }

    /// What recovery found damaged and skipped at open (empty when the log
    /// was intact); each entry names the file, the byte range and the loss.
    pub fn damage_report(&self) -> &[String] {
        &self.damage
    }

    /// Every stream uid the log holds state or data for, sorted.
    pub fn stream_uids(&self) -> Vec<u64> {
        let index = self.shared.index.read();
        let mut out: Vec<u64> = index.shards.keys().map(|k| k.stream_uid).collect();
        out.extend(
            index
                .segments
                .values()
                .flat_map(|m| m.streams.keys().copied()),
        );
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Why the log cannot take writes, if it cannot.
    pub fn poisoned(&self) -> Option<String> {
        self.shared.poisoned.lock().clone()
    }

    pub fn stats(&self) -> LogStats {
        let index = self.shared.index.read();
        let caches = self.shared.caches.lock();
        let c = &self.shared.counters;
        LogStats {
            segments: index.segments.len() as u64,
            bytes_on_disk: index.segments.values().map(|m| m.bytes).sum(),
            shards_tracked: index.shards.len() as u64,
            commits: c.commits.load(Ordering::Relaxed),
            records: c.records.load(Ordering::Relaxed),
            syncs: c.syncs.load(Ordering::Relaxed),
            active_segment_id: index.active_id,
            sidecar_cache_entries: caches.frames.len() as u64,
            cache_bytes: (caches.frames.weight() + caches.details.weight()) as u64,
            open_segments: caches.files.len() as u64,
        }
    }
}

impl Drop for Log {
    fn drop(&mut self) {
        self.tx.take();
        self.pending.close();
        // The writer finishes the queued appends, then closes the syncer's
        // channel; the syncer finishes what it was handed, then stops.
        for (h, name) in [
            (self.writer.take(), "writer"),
            (self.syncer.take(), "syncer"),
        ] {
            if let Some(h) = h {
                if h.join().is_err() {
                    tracing::error!(thread = name, "log thread panicked");
                }
            }
        }
    }
}
