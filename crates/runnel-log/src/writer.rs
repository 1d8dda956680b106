//! The single writer thread: group commit. It drains every pending append,
//! encodes one frame per (shard, append), writes them with one positional
//! write, syncs once, publishes them to the index, then acks them all.

use crate::format::{self, FrameHeader, FLAG_COMMIT_END, KIND_RECORDS};
use crate::fs::FsFile;
use crate::index::FrameLoc;
use crate::recovery::create_segment;
use crate::segment::sidecar_path;
use crate::{sidecar, AppendAck, Durability, LogError, RecordIn, ShardKey, Shared};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
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
}

impl Writer {
    pub fn run(mut self) {
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
    }

    fn commit(&mut self, batch: Vec<AppendRequest>) {
        if let Some(reason) = &self.poisoned {
            let reason = reason.clone();
            for r in batch {
                let _ = r.reply.send(Err(LogError::Poisoned(reason.clone())));
            }
            return;
        }
        // Retention may ask for an early roll (`retention.rs`, mostly dead active segment).
        let roll_asked = self.shared.roll_requested.swap(false, Ordering::Relaxed);
        if self.offset >= self.shared.config.segment_bytes_max || roll_asked {
            if let Err(e) = self.roll() {
                tracing::error!(error = %e, segment = self.segment_id, "segment roll failed");
                for r in batch {
                    let _ = r.reply.send(Err(e.duplicate()));
                }
                return;
            }
        }
        let now = self.shared.clock.now_ms();
        self.buf.clear();
        let commit_seq = self.next_commit_seq;
        // Per shard: (next position, last timestamp) as this batch advances them.
        let mut staged: HashMap<ShardKey, (u64, u64)> = HashMap::new();
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
                    let st = staged.entry(*key).or_insert_with(|| {
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
                replies.push((req.reply, acks, req.permit));
            }
        }
        if !self.buf.is_empty() {
            if let Err(e) = self.write_and_sync() {
                tracing::error!(error = %e, segment = self.segment_id, "commit failed");
                for (reply, _, _) in replies {
                    let _ = reply.send(Err(e.duplicate()));
                }
                return;
            }
            self.publish(&frames, records_total);
        }
        for (reply, acks, _permit) in replies {
            let _ = reply.send(Ok(acks));
        }
    }

    fn write_and_sync(&mut self) -> Result<(), LogError> {
        let start = self.offset;
        let mut result = self.file.write_all_at(&self.buf, start);
        if result.is_ok() && self.shared.config.durability == Durability::Fsync {
            result = self.file.sync_data();
            self.shared.counters.syncs.fetch_add(1, Ordering::Relaxed);
        }
        if let Err(e) = result {
            // Cut whatever part of the commit reached the file, so no
            // unacknowledged frame can be found by a later recovery.
            if let Err(undo) = self.file.set_len(start).and_then(|_| self.file.sync_data()) {
                let reason = format!("write failed ({e}) and could not be undone ({undo})");
                tracing::error!(%reason, "log poisoned; restart to recover");
                self.poisoned = Some(reason);
            }
            return Err(LogError::Io(e));
        }
        self.offset += self.buf.len() as u64;
        self.next_commit_seq += 1;
        Ok(())
    }

    fn publish(&mut self, frames: &[(ShardKey, FrameLoc)], records_total: u64) {
        let mut guard = self.shared.index.write();
        let index = &mut *guard;
        for (key, loc) in frames {
            if index.dropped.contains(&key.stream_uid) {
                continue;
            }
            let st = index.shards.entry(*key).or_default();
            st.next_position = loc.end_position();
            st.last_timestamp_ms = loc.timestamp_ms;
            st.active.push(*loc);
            if let Some(meta) = index.segments.get_mut(&self.segment_id) {
                let t = meta.stream_last_ts.entry(key.stream_uid).or_insert(0);
                *t = (*t).max(loc.timestamp_ms);
            }
        }
        if let Some(meta) = index.segments.get_mut(&self.segment_id) {
            meta.bytes = self.offset;
        }
        drop(guard);
        let c = &self.shared.counters;
        c.commits.fetch_add(1, Ordering::Relaxed);
        c.records.fetch_add(records_total, Ordering::Relaxed);
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
            let mut table: Vec<(ShardKey, u64, u64)> = index
                .shards
                .iter()
                .map(|(k, s)| (*k, s.next_position, s.last_timestamp_ms))
                .collect();
            table.sort_unstable_by_key(|(k, _, _)| *k);
            (per_shard, table)
        };
        let (bytes, spans) = sidecar::encode(old_id, &per_shard);
        drop(per_shard);
        sidecar::write(&*shared.fs, dir, &sidecar_path(dir, old_id), &bytes)?;
        let (file, len) = create_segment(dir, &*shared.fs, new_id, self.next_commit_seq, &table)?;
        self.next_commit_seq += 1;
        let mut index = shared.index.write();
        for (key, span) in spans {
            if let Some(st) = index.shards.get_mut(&key) {
                st.sealed.push(span);
                st.active = Vec::new();
            }
        }
        index.segments.insert(
            new_id,
            crate::index::SegmentMeta {
                file: file.clone(),
                bytes: len,
                stream_last_ts: HashMap::new(),
            },
        );
        index.active_id = new_id;
        drop(index);
        self.file = file;
        self.segment_id = new_id;
        self.offset = len;
        tracing::debug!(sealed = old_id, active = new_id, "segment rolled");
        Ok(())
    }
}
