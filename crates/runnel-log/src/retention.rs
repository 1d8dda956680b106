//! Retention: delete whole sealed segments whose every frame is expired or
//! belongs to a stream that no longer exists. Live data is never rewritten.

use crate::segment::{segment_path, sidecar_path};
use crate::{LogError, RetentionReport, Shared};
use std::collections::HashMap;

impl Shared {
    pub(crate) fn enforce_retention(
        &self,
        retention_ms_of: &dyn Fn(u64) -> Option<u64>,
    ) -> Result<RetentionReport, LogError> {
        let now = self.clock.now_ms();
        // Ask the caller about each stream without holding the index lock.
        let streams: Vec<u64> = {
            let index = self.index.read();
            let mut s: Vec<u64> = index
                .segments
                .values()
                .flat_map(|m| m.stream_last_ts.keys().copied())
                .collect();
            s.sort_unstable();
            s.dedup();
            s
        };
        let retention: HashMap<u64, Option<u64>> = streams
            .into_iter()
            .map(|u| (u, retention_ms_of(u)))
            .collect();
        let expired = |uid: &u64, last_ts: &u64| match retention.get(uid).copied().flatten() {
            None => true,
            Some(r) => now.saturating_sub(*last_ts) > r,
        };
        let victims: Vec<u64> = {
            let index = self.index.read();
            index
                .segments
                .iter()
                .filter(|(id, m)| {
                    **id != index.active_id && m.stream_last_ts.iter().all(|(u, t)| expired(u, t))
                })
                .map(|(id, _)| *id)
                .collect()
        };
        let mut report = RetentionReport {
            segments_deleted: 0,
            bytes_reclaimed: 0,
        };
        if victims.is_empty() {
            return Ok(report);
        }
        let dir = &self.config.dir;
        for id in victims {
            let bytes = {
                let mut index = self.index.write();
                let Some(meta) = index.segments.remove(&id) else {
                    continue;
                };
                for st in index.shards.values_mut() {
                    st.sealed.retain(|s| s.segment_id != id);
                }
                meta.bytes
            };
            self.cache.lock().remove_segment(id);
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
        Ok(report)
    }
}
