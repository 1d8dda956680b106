//! The read path: locate the frame holding a position in O(log n) (spans,
//! then the frame list), then read frames sequentially. Never takes the
//! index lock across disk I/O, so reads never wait for the writer's fsync.

use crate::format::{self, KIND_RECORDS};
use crate::fs::{read_exact_at, FsFile};
use crate::index::{FrameLoc, SealedSpan};
use crate::segment::sidecar_path;
use crate::{LogError, ReadOutcome, ShardKey, Shared, StoredRecord};
use bytes::Bytes;
use std::sync::Arc;

/// Frames fetched per index lookup while reading sequentially.
const FRAMES_PER_LOOKUP_MAX: usize = 64;

/// Looks again after retention removed a segment under a reader, at most this often.
const GONE_RETRIES_MAX: usize = 64;

impl Shared {
    /// The frame list of `span`, from the cache or its sidecar.
    fn sealed_frames(
        &self,
        span: &SealedSpan,
        shard: ShardKey,
    ) -> Result<Arc<Vec<FrameLoc>>, LogError> {
        if let Some(f) = self.cache.lock().get(span, shard) {
            return Ok(f);
        }
        let path = sidecar_path(&self.config.dir, span.segment_id);
        let frames = match crate::sidecar::read_frames(&*self.fs, &path, span) {
            Ok(f) => f,
            Err(e) if !self.index.read().segments.contains_key(&span.segment_id) => {
                // Retention deleted the segment after the caller let go of
                // the index lock; the caller looks again.
                return Err(LogError::Gone(e.to_string()));
            }
            Err(e) => {
                // A damaged or lost frame list: rebuild it from the segment,
                // whose frames carry their own checksums.
                tracing::error!(segment = span.segment_id, error = %e, "sidecar frame list unreadable, scanning the segment");
                self.frames_by_scan(span, shard)?
            }
        };
        let frames = Arc::new(frames);
        self.cache.lock().insert(span, shard, frames.clone());
        Ok(frames)
    }

    /// `shard`'s frames in a sealed segment, found by scanning it.
    fn frames_by_scan(
        &self,
        span: &SealedSpan,
        shard: ShardKey,
    ) -> Result<Vec<FrameLoc>, LogError> {
        let file = {
            let index = self.index.read();
            match index.segments.get(&span.segment_id) {
                Some(m) => m.file.clone(),
                None => return Err(LogError::Gone(format!("segment {}", span.segment_id))),
            }
        };
        let scan = crate::segment::scan(&*file)?.ok_or_else(|| {
            LogError::Corrupt(format!("segment {} has no valid header", span.segment_id))
        })?;
        Ok(scan
            .frames
            .into_iter()
            .filter(|(k, f)| {
                *k == shard
                    && f.first_position >= span.first_position
                    && f.end_position() <= span.end_position
            })
            .map(|(_, f)| f)
            .collect())
    }

    /// Frames from the one holding `pos` (or the first stored after it).
    /// Returns the position reading really starts from (later than `pos`
    /// when retention removed what was there) and the frames, if any.
    #[allow(clippy::type_complexity)]
    fn frames_from(
        &self,
        shard: ShardKey,
        pos: u64,
    ) -> Result<(u64, Option<(Arc<dyn FsFile>, Vec<FrameLoc>)>), LogError> {
        let index = self.index.read();
        let Some(st) = index.shards.get(&shard) else {
            return Ok((pos, None));
        };
        if pos >= st.next_position {
            return Ok((pos, None));
        }
        let i = st.sealed.partition_point(|s| s.end_position <= pos);
        if let Some(span) = st.sealed.get(i).copied() {
            let file = match index.segments.get(&span.segment_id) {
                Some(m) => m.file.clone(),
                None => {
                    return Err(LogError::Corrupt(format!(
                        "segment {} missing",
                        span.segment_id
                    )))
                }
            };
            drop(index);
            let pos = pos.max(span.first_position);
            let frames = self.sealed_frames(&span, shard)?;
            let j = frames.partition_point(|f| f.end_position() <= pos);
            let end = (j + FRAMES_PER_LOOKUP_MAX).min(frames.len());
            return Ok((pos, Some((file, frames[j.min(end)..end].to_vec()))));
        }
        let j = st.active.partition_point(|f| f.end_position() <= pos);
        if let Some(first) = st.active.get(j) {
            let pos = pos.max(first.first_position);
            let end = (j + FRAMES_PER_LOOKUP_MAX).min(st.active.len());
            let frames = st.active[j..end].to_vec();
            let file = index.active_file().ok_or(LogError::Closed)?;
            return Ok((pos, Some((file, frames))));
        }
        // Everything at or after `pos` is gone (retention); skip to the end.
        Ok((st.next_position, None))
    }

    pub(crate) fn read(
        &self,
        shard: ShardKey,
        from_position: u64,
        max_records: usize,
        max_bytes: usize,
        not_before_ms: u64,
    ) -> Result<ReadOutcome, LogError> {
        let max_records = max_records.max(1);
        let mut pos = from_position;
        if not_before_ms > 0 {
            // Timestamps never decrease within a shard, so expired records are a prefix.
            pos = pos.max(self.position_at_timestamp(shard, not_before_ms)?);
        }
        let mut records = Vec::new();
        let mut bytes = 0usize;
        let mut gone = 0usize;
        'outer: loop {
            let (start, chunk) = match self.frames_from(shard, pos) {
                // Retention removed what the index showed; look again (a
                // bounded number of times: the index moves on at once).
                Err(LogError::Gone(_)) if gone < GONE_RETRIES_MAX => {
                    gone += 1;
                    continue;
                }
                r => r?,
            };
            pos = start;
            let Some((file, frames)) = chunk else { break };
            if frames.is_empty() {
                break;
            }
            for loc in frames {
                let frame = read_frame(&*file, &loc, shard)?;
                let header = format::check_frame(&frame)?;
                let decoded = format::decode_records(&frame, &header)?;
                for (i, r) in decoded.into_iter().enumerate() {
                    let p = header.first_position + i as u64;
                    if p < pos {
                        continue;
                    }
                    if header.timestamp_ms < not_before_ms {
                        pos = p + 1;
                        continue;
                    }
                    let size = r.partition_key.len() + r.data.len();
                    if !records.is_empty() && bytes + size > max_bytes {
                        break 'outer;
                    }
                    records.push(StoredRecord {
                        position: p,
                        timestamp_ms: header.timestamp_ms,
                        partition_key: r.partition_key,
                        data: r.data,
                    });
                    bytes += size;
                    pos = p + 1;
                    if records.len() >= max_records || bytes >= max_bytes {
                        break 'outer;
                    }
                }
                pos = pos.max(loc.end_position());
            }
        }
        Ok(ReadOutcome {
            records,
            next_position: pos,
        })
    }

    pub(crate) fn position_at_timestamp(
        &self,
        shard: ShardKey,
        ts_ms: u64,
    ) -> Result<u64, LogError> {
        let mut gone = 0usize;
        loop {
            match self.position_at_timestamp_once(shard, ts_ms) {
                Err(LogError::Gone(_)) if gone < GONE_RETRIES_MAX => gone += 1,
                r => return r,
            }
        }
    }

    fn position_at_timestamp_once(&self, shard: ShardKey, ts_ms: u64) -> Result<u64, LogError> {
        let index = self.index.read();
        let Some(st) = index.shards.get(&shard) else {
            return Ok(0);
        };
        let i = st.sealed.partition_point(|s| s.last_timestamp_ms < ts_ms);
        if let Some(span) = st.sealed.get(i).copied() {
            drop(index);
            let frames = self.sealed_frames(&span, shard)?;
            let j = frames.partition_point(|f| f.timestamp_ms < ts_ms);
            return Ok(frames
                .get(j)
                .map_or(span.end_position, |f| f.first_position));
        }
        let j = st.active.partition_point(|f| f.timestamp_ms < ts_ms);
        Ok(st
            .active
            .get(j)
            .map_or(st.next_position, |f| f.first_position))
    }
}

/// Reads one frame and checks it is the frame the index promised.
fn read_frame(file: &dyn FsFile, loc: &FrameLoc, shard: ShardKey) -> Result<Bytes, LogError> {
    let mut buf = vec![0u8; loc.len as usize];
    read_exact_at(file, &mut buf, loc.offset)?;
    let header = format::check_frame(&buf)?;
    if header.kind != KIND_RECORDS
        || header.shard != shard
        || header.first_position != loc.first_position
        || header.record_count != loc.record_count
    {
        return Err(LogError::Corrupt(format!(
            "frame at offset {} is not the one indexed for {shard:?} position {}",
            loc.offset, loc.first_position
        )));
    }
    Ok(Bytes::from(buf))
}
