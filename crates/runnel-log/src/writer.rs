//! The writer thread: the first stage of the commit pipeline. It drains
//! every pending append, encodes one frame per (shard, append), writes them
//! with one positional write and hands the commit to the syncer thread
//! (`sync.rs`), which syncs, publishes and acknowledges. With
//! `Durability::None` there is no sync, and the writer publishes and
//! acknowledges itself.

use crate::format::{self, FrameHeader, FLAG_COMMIT_END, KIND_RECORDS};
use crate::fs::FsFile;
use crate::index::FrameLoc;
use crate::recovery::create_segment;
use crate::segment::sidecar_path;
use crate::sync::{publish, Pipeline, Written};
use crate::{sidecar, AppendAck, Durability, LogError, RecordIn, ShardKey, Shared};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit};

pub type Groups = Vec<(ShardKey, Vec<RecordIn>)>;

pub struct AppendRequest {
    pub groups: Groups,
    pub bytes: usize,
    pub reply: oneshot::Sender<Result<Vec<AppendAck>, LogError>>,
    /// Released when the request is done: bounds the bytes waiting for the writer.
    pub permit: Option<OwnedSemaphorePermit>,
}

/// The answer owed to one append once its commit is durable (or failed).
pub struct Reply {
    tx: oneshot::Sender<Result<Vec<AppendAck>, LogError>>,
    acks: Vec<AppendAck>,
    _permit: Option<OwnedSemaphorePermit>,
}

impl Reply {
    pub fn ok(self) {
        // The caller may have gone away; its records are durable all the same.
        let _ = self.tx.send(Ok(self.acks));
    }

    pub fn fail(self, e: LogError) {
        let _ = self.tx.send(Err(e));
    }
}

pub struct Writer {
    pub shared: Arc<Shared>,
    pub rx: mpsc::Receiver<AppendRequest>,
    pub file: Arc<dyn FsFile>,
    pub segment_id: u64,
    pub offset: u64,
    pub next_commit_seq: u64,
    /// Set when a failed write could not be undone; every later append fails.
    pub poisoned: Option<String>,
    pub buf: Vec<u8>,
    /// (next position, last timestamp) of shards whose newest commit may not
    /// be published yet; the index is the truth for every other shard.
    /// Emptied whenever the pipeline is idle, so it stays small.
    pub tails: HashMap<ShardKey, (u64, u64)>,
    pub pipeline: Arc<Pipeline>,
    pub syncer: Option<std::sync::mpsc::Sender<Written>>,
    /// Bumped when the file is cut back after a failed sync.
    pub epoch: u64,
}

impl Writer {
    pub fn run(mut self) {
        self.preallocate();
        while let Some(first) = self.rx.blocking_recv() {
            let mut bytes = first.bytes;
            let mut batch = vec![first];
            while bytes < self.shared.config.commit_bytes_max {
                match self.rx.try_recv() {
                    Ok(r) => {
                        bytes += r.bytes;
                        batch.push(r);
                    }
                    Err(_) => break,
                }
            }
            self.commit(batch);
        }
        // A sync that failed after the last append still has its commits
        // cut off the file before the log closes.
        self.pipeline.wait_idle();
        self.apply_rewind();
        // Closing the channel lets the syncer stop.
        self.syncer.take();
    }

    /// Allocates the rest of the active segment up front. An append then
    /// changes no file size, and fdatasync has no inode update to journal:
    /// measured on ext4 here, a small commit's sync drops from ~0.14 to
    /// ~0.09 ms (docs/storage.md). Recovery reads the zero tail as the end.
    fn preallocate(&self) {
        if !self.shared.config.preallocate_segments {
            return;
        }
        let len = self.shared.config.segment_bytes_max.max(self.offset);
        if let Err(e) = self.file.preallocate(len) {
            tracing::debug!(error = %e, segment = self.segment_id, "segment preallocation failed");
        }
    }

    /// Refuses every later append (and says why on `/health`) until reopened.
    fn poison(&mut self, reason: String) {
        tracing::error!(%reason, "log poisoned; restart to recover");
        *self.shared.poisoned.lock() = Some(reason.clone());
        self.poisoned = Some(reason);
    }

    fn fail_all(batch: Vec<AppendRequest>, e: &LogError) {
        for r in batch {
            let _ = r.reply.send(Err(e.duplicate()));
        }
    }

    /// After a failed sync: cut the file back to where the failed commits
    /// began, so none of them can be recovered later, and start a new epoch.
    fn apply_rewind(&mut self) {
        let Some(rw) = self.pipeline.take_rewind() else {
            return;
        };
        // Commits written after the failed one are failing in the syncer;
        // wait for them so that the index is the truth again.
        self.pipeline.wait_idle();
        self.tails.clear();
        self.epoch = self.epoch.max(rw.epoch) + 1;
        if rw.segment_id != self.segment_id {
            return;
        }
        match self
            .file
            .set_len(rw.to_offset)
            .and_then(|_| self.file.sync_data())
        {
            Ok(()) => self.offset = rw.to_offset,
            Err(undo) => {
                let reason = format!(
                    "sync failed ({}) and the commit could not be undone ({undo})",
                    rw.reason
                );
                self.poison(reason);
            }
        }
    }

    fn commit(&mut self, batch: Vec<AppendRequest>) {
        self.apply_rewind();
        if let Some(reason) = &self.poisoned {
            return Self::fail_all(batch, &LogError::Poisoned(reason.clone()));
        }
        // Retention may ask for an early roll (`retention.rs`, mostly dead active segment).
        let roll_asked = self
            .shared
            .roll_requested
            .swap(false, std::sync::atomic::Ordering::Relaxed);
        if self.offset >= self.shared.config.segment_bytes_max || roll_asked {
            // Sealing reads the published frame index: let every written
            // commit be synced and published first.
            self.pipeline.wait_idle();
            self.apply_rewind();
            if let Err(e) = self.roll() {
                tracing::error!(error = %e, segment = self.segment_id, "segment roll failed");
                return Self::fail_all(batch, &e);
            }
        }
        if self.pipeline.is_idle() {
            self.tails.clear();
        }
        let now = self.shared.clock.now_ms();
        self.buf.clear();
        let commit_seq = self.next_commit_seq;
        let mut frames: Vec<(ShardKey, FrameLoc)> = Vec::new();
        let mut replies = Vec::with_capacity(batch.len());
        let mut records_total = 0u64;
        {
            let index = self.shared.index.read();
            for req in batch {
                if let Some(g) = req
                    .groups
                    .iter()
                    .find(|g| index.dropped.contains(&g.0.stream_uid))
                {
                    let _ = req.reply.send(Err(LogError::StreamDropped(g.0.stream_uid)));
                    continue;
                }
                let last_nonempty = req.groups.iter().rposition(|g| !g.1.is_empty());
                let mut acks = Vec::with_capacity(req.groups.len());
                for (i, (key, records)) in req.groups.iter().enumerate() {
                    let st = self.tails.entry(*key).or_insert_with(|| {
                        index
                            .shards
                            .get(key)
                            .map_or((0, 0), |s| (s.next_position, s.last_timestamp_ms))
                    });
                    let ts = st.1.max(now);
                    acks.push(AppendAck {
                        first_position: st.0,
                        timestamp_ms: ts,
                    });
                    if records.is_empty() {
                        continue;
                    }
                    let header = FrameHeader {
                        frame_bytes: 0,
                        kind: KIND_RECORDS,
                        flags: if Some(i) == last_nonempty {
                            FLAG_COMMIT_END
                        } else {
                            0
                        },
                        shard: *key,
                        commit_seq,
                        first_position: st.0,
                        timestamp_ms: ts,
                        record_count: records.len() as u32,
                    };
                    let at = self.buf.len();
                    let len = format::encode_records_frame(&mut self.buf, &header, records);
                    frames.push((
                        *key,
                        FrameLoc {
                            first_position: st.0,
                            record_count: records.len() as u32,
                            len,
                            offset: self.offset + at as u64,
                            timestamp_ms: ts,
                        },
                    ));
                    st.0 += records.len() as u64;
                    st.1 = ts;
                    records_total += records.len() as u64;
                }
                replies.push(Reply {
                    tx: req.reply,
                    acks,
                    _permit: req.permit,
                });
            }
        }
        if self.buf.is_empty() {
            // Nothing to write (every group was empty): nothing to wait for.
            for r in replies {
                r.ok();
            }
            return;
        }
        let start = self.offset;
        if let Err(e) = self.write() {
            tracing::error!(error = %e, segment = self.segment_id, "commit failed");
            // Positions handed out for this commit are taken back.
            self.pipeline.wait_idle();
            self.tails.clear();
            let e = LogError::Io(e);
            for r in replies {
                r.fail(e.duplicate());
            }
            return;
        }
        let written = Written {
            file: self.file.clone(),
            segment_id: self.segment_id,
            start,
            end: self.offset,
            epoch: self.epoch,
            frames,
            records_total,
            replies,
        };
        match (&self.syncer, self.shared.config.durability) {
            (Some(tx), Durability::Fsync) => {
                self.pipeline.begin();
                if let Err(std::sync::mpsc::SendError(w)) = tx.send(written) {
                    // The syncer is gone (it never stops before the writer).
                    self.pipeline.end_one();
                    for r in w.replies {
                        r.fail(LogError::Closed);
                    }
                }
            }
            (None, Durability::Fsync) => {
                // Synced on this thread (the default, see `LogConfig::sync_thread`).
                self.shared
                    .counters
                    .syncs
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if let Err(e) = self.file.sync_data() {
                    tracing::error!(error = %e, segment = self.segment_id, "sync failed");
                    self.undo(start, &e);
                    let e = LogError::Io(e);
                    for r in written.replies {
                        r.fail(e.duplicate());
                    }
                    return;
                }
                publish(&self.shared, &written);
                for r in written.replies {
                    r.ok();
                }
            }
            (_, Durability::None) => {
                publish(&self.shared, &written);
                for r in written.replies {
                    r.ok();
                }
            }
        }
    }

    /// Cuts a failed commit (from `start`) off the file and takes its
    /// positions back; poisons the log if even that fails.
    fn undo(&mut self, start: u64, cause: &std::io::Error) {
        self.tails.clear();
        match self.file.set_len(start).and_then(|_| self.file.sync_data()) {
            Ok(()) => self.offset = start,
            Err(undo) => {
                let reason =
                    format!("sync failed ({cause}) and the commit could not be undone ({undo})");
                self.poison(reason);
            }
        }
    }

    /// Writes the encoded commit at the end of the active segment. On error
    /// it cuts whatever part of the commit reached the file, so no
    /// unacknowledged frame can be found by a later recovery.
    fn write(&mut self) -> std::io::Result<()> {
        let start = self.offset;
        if let Err(e) = self.file.write_all_at(&self.buf, start) {
            if let Err(undo) = self.file.set_len(start).and_then(|_| self.file.sync_data()) {
                let reason = format!("write failed ({e}) and could not be undone ({undo})");
                self.poison(reason);
            }
            return Err(e);
        }
        self.offset += self.buf.len() as u64;
        self.next_commit_seq += 1;
        Ok(())
    }

    /// Seals the active segment (writes its sidecar) and starts a new one
    /// that opens with the shard table.
    fn roll(&mut self) -> Result<(), LogError> {
        let shared = &self.shared;
        let dir = &shared.config.dir;
        let old_id = self.segment_id;
        let new_id = old_id + 1;
        let (per_shard, table) = {
            let index = shared.index.read();
            let mut per_shard: Vec<(ShardKey, Vec<FrameLoc>)> = index
                .shards
                .iter()
                .filter(|(_, s)| !s.active.is_empty())
                .map(|(k, s)| (*k, s.active.clone()))
                .collect();
            per_shard.sort_unstable_by_key(|(k, _)| *k);
            (per_shard, index.shard_table())
        };
        // A sealed segment ends at its last frame: cut the preallocated tail,
        // and make every frame durable before the sidecar that indexes them
        // (with `Durability::None` nothing else has synced them).
        self.file.set_len(self.offset)?;
        self.file.sync_data()?;
        let generation = shared
            .layout_generation
            .load(std::sync::atomic::Ordering::Acquire);
        let enc = sidecar::encode(old_id, &per_shard, &table);
        drop(per_shard);
        sidecar::write(&*shared.fs, dir, &sidecar_path(dir, old_id), &enc.bytes)?;
        let (file, len) = create_segment(dir, &*shared.fs, new_id, self.next_commit_seq, &table)?;
        self.next_commit_seq += 1;
        let detail = std::sync::Arc::new(crate::index::SegmentDetail {
            spans: enc.spans,
            ends: enc.ends,
        });
        let mut index = shared.index.write();
        for (key, _) in &detail.spans {
            if let Some(st) = index.shards.get_mut(key) {
                st.active = Vec::new();
            }
        }
        if let Some(meta) = index.segments.get_mut(&old_id) {
            meta.streams = enc.streams.into_iter().collect();
        }
        index.segments.insert(
            new_id,
            crate::index::SegmentMeta {
                bytes: len,
                streams: HashMap::new(),
            },
        );
        index.active_file = Some(file.clone());
        index.active_id = new_id;
        index.sealed_changed();
        drop(index);
        // Readers of what was just sealed find its detail at once.
        let weight = crate::index::Caches::detail_weight(&detail);
        shared.cache_insert(generation, |c| c.details.insert(old_id, 0, detail, weight));
        self.file = file;
        self.segment_id = new_id;
        self.offset = len;
        self.preallocate();
        tracing::debug!(sealed = old_id, active = new_id, "segment rolled");
        Ok(())
    }
}
