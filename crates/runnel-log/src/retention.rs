//! Retention: delete whole sealed segments whose every frame is expired or
//! belongs to a stream that no longer exists, then let compaction
//! (`compact.rs`) copy the few live frames out of mostly dead ones.

use crate::segment::{segment_path, sidecar_path};
use crate::{LogError, RetentionReport, Shared};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;

/// Which frames are still retained at one instant.
pub(crate) struct Liveness {
    pub now_ms: u64,
    /// `None`: the stream is gone. Streams not in the map are kept (they
    /// appeared after the pass asked, so nothing is known against them).
    pub retention: HashMap<u64, Option<u64>>,
    pub dropped: HashSet<u64>,
}

impl Liveness {
    /// Whether a frame of stream `uid` written at `ts_ms` is still retained.
    pub fn live(&self, uid: u64, ts_ms: u64) -> bool {
        if self.dropped.contains(&uid) {
            return false;
        }
        match self.retention.get(&uid) {
            None => true,
            Some(None) => false,
            Some(Some(r)) => self.now_ms.saturating_sub(ts_ms) <= *r,
        }
    }
}

/// The active segment is sealed early once this share of it is dead.
const ROLL_DEAD_FRACTION_NUM: u64 = 1;
const ROLL_DEAD_FRACTION_DEN: u64 = 4;
/// ... and at least this many bytes of it are dead (no churn of tiny segments).
const ROLL_DEAD_BYTES_MIN: u64 = 16 * 1024;

impl Shared {
    pub(crate) fn enforce_retention(
        &self,
        retention_ms_of: &dyn Fn(u64) -> Option<u64>,
    ) -> Result<RetentionReport, LogError> {
        let _pass = self.pass_lock.lock();
        let now = self.clock.now_ms();
        // Ask the caller about each stream without holding the index lock.
        let (streams, dropped): (Vec<u64>, HashSet<u64>) = {
            let index = self.index.read();
            let mut s: Vec<u64> = index
                .segments
                .values()
                .flat_map(|m| m.streams.keys().copied())
                .collect();
            s.sort_unstable();
            s.dedup();
            (s, index.dropped.clone())
        };
        let live = Liveness {
            now_ms: now,
            retention: streams
                .into_iter()
                .map(|u| (u, retention_ms_of(u)))
                .collect(),
            dropped,
        };
        let victims: Vec<u64> = {
            let index = self.index.read();
            index
                .segments
                .iter()
                .filter(|(id, m)| {
                    **id != index.active_id
                        && m.streams.iter().all(|(u, a)| !live.live(*u, a.last_ts))
                })
                .map(|(id, _)| *id)
                .collect()
        };
        let mut report = RetentionReport::default();
        if !victims.is_empty() {
            self.delete_segments(&victims, &mut report)?;
        }
        self.compact(&live, &mut report);
        self.decide_roll(&live);
        Ok(report)
    }

    /// Records segment ids as given up on purpose before their files go, so
    /// that recovery does not report them missing (`retired.rs`). A failure
    /// is logged, never allowed to stop space from being reclaimed.
    pub(crate) fn retire(&self, ids: impl IntoIterator<Item = u64>) {
        let mut retired = self.retired.lock();
        for id in ids {
            retired.insert(id);
        }
        if let Err(e) = retired.store(&*self.fs, &self.config.dir) {
            tracing::warn!(error = %e, "cannot record retired segment ids; a restart will report them missing");
        }
    }

    fn delete_segments(&self, ids: &[u64], report: &mut RetentionReport) -> Result<(), LogError> {
        let dir = &self.config.dir;
        self.retire(ids.iter().copied());
        for &id in ids {
            let bytes = {
                let mut index = self.index.write();
                let Some(meta) = index.segments.remove(&id) else {
                    continue;
                };
                index.sealed_changed();
                // Readers that already looked this segment up retry.
                self.layout_generation.fetch_add(2, Ordering::AcqRel);
                self.caches.lock().remove_segment(id);
                meta.bytes
            };
            // Readers holding the file handle keep reading an unlinked file safely.
            self.fs.remove_file(&segment_path(dir, id))?;
            match self.fs.remove_file(&sidecar_path(dir, id)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
            report.segments_deleted += 1;
            report.bytes_reclaimed += bytes;
            tracing::info!(segment = id, bytes, "segment reclaimed by retention");
        }
        self.fs.sync_dir(dir)?;
        Ok(())
    }

    /// Asks the writer to seal the active segment when much of it is dead
    /// (e.g. right after a busy stream was deleted), so that the next pass
    /// can compact it instead of waiting for it to fill up.
    fn decide_roll(&self, live: &Liveness) {
        let index = self.index.read();
        let Some(active) = index.segments.get(&index.active_id) else {
            return;
        };
        let listed_dead: u64 = index
            .shards
            .iter()
            .flat_map(|(k, st)| st.active.iter().map(move |f| (k, f)))
            .filter(|(k, f)| !live.live(k.stream_uid, f.timestamp_ms))
            .map(|(_, f)| u64::from(f.len))
            .sum();
        // Frames of streams dropped since start are no longer listed.
        let (seg, dropped_bytes) = *self.dropped_active.lock();
        let dead = listed_dead
            + if seg == index.active_id {
                dropped_bytes
            } else {
                0
            };
        if dead >= ROLL_DEAD_BYTES_MIN
            && dead * ROLL_DEAD_FRACTION_DEN >= active.bytes * ROLL_DEAD_FRACTION_NUM
        {
            self.roll_requested.store(true, Ordering::Relaxed);
        }
    }
}
