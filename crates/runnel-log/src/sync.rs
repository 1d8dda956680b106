//! The syncer thread: the second stage of the commit pipeline.
//!
//! The writer thread encodes and writes commits and hands each one here; the
//! syncer takes every commit that is waiting, calls `fdatasync` once, then
//! publishes their frames to the index and acknowledges them. While it
//! syncs, the writer is already writing the next commits, so a request that
//! arrives during a sync is on the page cache when that sync returns and is
//! covered by the very next one: the disk is kept busy with back-to-back
//! syncs and no request waits behind encoding or writing.
//!
//! A failed sync fails its commits and every commit written after them (the
//! writer cuts the file back to where the failed group began before it
//! writes again; see [`Pipeline::take_rewind`]).

use crate::index::FrameLoc;
use crate::writer::Reply;
use crate::{FsFile, LogError, ShardKey, Shared};
use parking_lot::{Condvar, Mutex};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// One written commit, waiting for its sync.
pub struct Written {
    pub file: Arc<dyn FsFile>,
    pub segment_id: u64,
    /// Byte range of the commit in the segment.
    pub start: u64,
    pub end: u64,
    /// The writer's epoch when it wrote this commit (see [`Rewind`]).
    pub epoch: u64,
    pub frames: Vec<(ShardKey, FrameLoc)>,
    pub records_total: u64,
    pub replies: Vec<Reply>,
}

/// Asked of the writer after a failed sync: cut the segment back to
/// `to_offset` and bump the epoch, so commits of the old epoch (already
/// failed) are never published.
pub struct Rewind {
    pub epoch: u64,
    pub segment_id: u64,
    pub to_offset: u64,
    pub reason: String,
}

#[derive(Default)]
struct State {
    /// Commits handed to the syncer and not yet published or failed.
    inflight: u64,
    rewind: Option<Rewind>,
    /// Commits of epochs below this are failed on arrival.
    failed_below_epoch: u64,
}

/// What the writer and the syncer share.
#[derive(Default)]
pub struct Pipeline {
    state: Mutex<State>,
    idle: Condvar,
}

impl Pipeline {
    pub fn begin(&self) {
        self.state.lock().inflight += 1;
    }

    pub fn end_one(&self) {
        self.end(1);
    }

    fn end(&self, n: u64) {
        let mut st = self.state.lock();
        st.inflight -= n;
        if st.inflight == 0 {
            self.idle.notify_all();
        }
    }

    /// True when every handed-over commit has been published or failed.
    pub fn is_idle(&self) -> bool {
        self.state.lock().inflight == 0
    }

    /// Blocks until the syncer has nothing in flight (segment roll).
    pub fn wait_idle(&self) {
        let mut st = self.state.lock();
        while st.inflight > 0 {
            self.idle.wait(&mut st);
        }
    }

    pub fn take_rewind(&self) -> Option<Rewind> {
        self.state.lock().rewind.take()
    }
}

pub struct Syncer {
    pub shared: Arc<Shared>,
    pub pipeline: Arc<Pipeline>,
    pub rx: std::sync::mpsc::Receiver<Written>,
    /// Wakes the writer after a failed sync so that it cuts the failed
    /// commits off the file now, not at the next append (which may never
    /// come before a crash). Weak, so it does not keep the log open.
    pub wake_writer: tokio::sync::mpsc::WeakSender<crate::writer::AppendRequest>,
}

impl Syncer {
    pub fn run(self) {
        while let Ok(first) = self.rx.recv() {
            let mut group = vec![first];
            while let Ok(w) = self.rx.try_recv() {
                group.push(w);
            }
            self.sync_group(group);
        }
    }

    fn sync_group(&self, group: Vec<Written>) {
        let n = group.len() as u64;
        let failed_below = self.pipeline.state.lock().failed_below_epoch;
        let (stale, live): (Vec<Written>, Vec<Written>) =
            group.into_iter().partition(|w| w.epoch < failed_below);
        for w in stale {
            fail(
                w,
                &LogError::Io(std::io::Error::other(
                    "an earlier commit's sync failed; this commit was discarded",
                )),
            );
        }
        // Commits of one group share a file: the writer waits for an idle
        // pipeline before it rolls to a new segment.
        if let Some(last) = live.last() {
            let result = if self.shared.config.durability == crate::Durability::Fsync {
                self.shared.counters.syncs.fetch_add(1, Ordering::Relaxed);
                last.file.sync_data()
            } else {
                Ok(())
            };
            match result {
                Ok(()) => {
                    for w in live {
                        publish(&self.shared, &w);
                        for r in w.replies {
                            r.ok();
                        }
                    }
                }
                Err(e) => {
                    let first = &live[0];
                    tracing::error!(error = %e, segment = first.segment_id, "sync failed");
                    {
                        let mut st = self.pipeline.state.lock();
                        st.failed_below_epoch = st.failed_below_epoch.max(first.epoch + 1);
                        st.rewind = Some(Rewind {
                            epoch: first.epoch,
                            segment_id: first.segment_id,
                            to_offset: first.start,
                            reason: e.to_string(),
                        });
                    }
                    let err = LogError::Io(e);
                    for w in live {
                        fail(w, &err);
                    }
                    if let Some(tx) = self.wake_writer.upgrade() {
                        // An empty append: the writer applies the rewind
                        // first thing. If the queue is full it is busy anyway.
                        let (reply, _) = tokio::sync::oneshot::channel();
                        let _ = tx.try_send(crate::writer::AppendRequest {
                            groups: Vec::new(),
                            bytes: 0,
                            reply,
                            permit: None,
                        });
                    }
                }
            }
        }
        self.pipeline.end(n);
    }
}

fn fail(w: Written, e: &LogError) {
    for r in w.replies {
        r.fail(e.duplicate());
    }
}

/// Makes a synced commit's frames visible to readers.
pub fn publish(shared: &Shared, w: &Written) {
    let mut guard = shared.index.write();
    let index = &mut *guard;
    for (key, loc) in &w.frames {
        if index.dropped.contains(&key.stream_uid) {
            continue;
        }
        let st = index.shards.entry(*key).or_default();
        st.next_position = loc.end_position();
        st.last_timestamp_ms = loc.timestamp_ms;
        st.active.push(*loc);
        if let Some(meta) = index.segments.get_mut(&w.segment_id) {
            meta.streams.entry(key.stream_uid).or_default().add(
                u64::from(loc.len),
                loc.timestamp_ms,
                loc.timestamp_ms,
            );
        }
    }
    if let Some(meta) = index.segments.get_mut(&w.segment_id) {
        meta.bytes = meta.bytes.max(w.end);
    }
    drop(guard);
    let c = &shared.counters;
    c.commits.fetch_add(1, Ordering::Relaxed);
    c.records.fetch_add(w.records_total, Ordering::Relaxed);
}
