//! The read path: locate the frame holding a position in O(log n) (spans,
//! then the frame list), then read frames sequentially. Never takes the
//! index lock across disk I/O, so reads never wait for the writer's fsync.

use crate::format::{self, KIND_RECORDS};
use crate::fs::{read_exact_at, FsFile};
use crate::index::{Caches, FrameLoc, Index, SealedSpan, SegmentDetail};
use crate::segment::{segment_path, sidecar_path};
use crate::{LogError, ReadOutcome, ShardKey, Shared, StoredRecord};
use bytes::Bytes;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Frames fetched per index lookup while reading sequentially.
const FRAMES_PER_LOOKUP_MAX: usize = 64;

/// Looks again after retention removed a segment under a reader, at most this often.
const GONE_RETRIES_MAX: usize = 64;

/// Where a shard's data at or after a position is.
enum Located {
    Sealed(SealedSpan),
    /// In the active segment, or nowhere yet, as of this sealed epoch (if
    /// a segment was sealed since, the caller looks again).
    Active(u64),
}

impl Shared {
    /// The detail of sealed segment `id`, from the cache or its sidecar.
    pub(crate) fn detail(&self, id: u64) -> Result<Arc<SegmentDetail>, LogError> {
        if let Some(d) = self.caches.lock().details.get(&id, 0) {
            return Ok(d);
        }
        let generation = self.layout_generation.load(Ordering::Acquire);
        let path = sidecar_path(&self.config.dir, id);
        let detail = match crate::sidecar::read_detail(&*self.fs, &path, id) {
            Ok((d, _)) => d,
            Err(e) if !self.index.read().segments.contains_key(&id) => {
                // Retention deleted the segment after the caller let go of
                // the index lock; the caller looks again.
                return Err(LogError::Gone(e.to_string()));
            }
            Err(e) => {
                tracing::error!(segment = id, error = %e, "sidecar summary unreadable, scanning the segment");
                self.detail_by_scan(id)?
            }
        };
        let detail = Arc::new(detail);
        let weight = Caches::detail_weight(&detail);
        self.cache_insert(generation, |c| {
            c.details.insert(id, 0, detail.clone(), weight)
        });
        Ok(detail)
    }

    /// Fills a cache only if no deletion or compaction ran while the value
    /// was loaded (those empty the caches of what they change).
    pub(crate) fn cache_insert(&self, generation: u64, f: impl FnOnce(&mut Caches)) {
        let mut caches = self.caches.lock();
        if generation.is_multiple_of(2)
            && self.layout_generation.load(Ordering::Acquire) == generation
        {
            f(&mut caches);
        }
    }

    /// A sealed segment's detail rebuilt from its frames (its sidecar is
    /// damaged): the end table from the segment before it, its own shard
    /// table and its frames. Its spans do not point into the sidecar, so
    /// frame lists come from scans too (`sealed_frames`).
    fn detail_by_scan(&self, id: u64) -> Result<SegmentDetail, LogError> {
        let file = self.segment_file(id)?;
        let scan = crate::segment::scan(&*file)?
            .ok_or_else(|| LogError::Corrupt(format!("segment {id} has no valid header")))?;
        let prev = {
            let ids = self.index.read().sealed_ids.clone();
            let i = ids.partition_point(|x| *x < id);
            i.checked_sub(1).map(|i| ids[i])
        };
        let prev_ends = match prev {
            Some(p) => self.detail(p)?.ends.clone(),
            None => Vec::new(),
        };
        let mut per_shard: BTreeMap<ShardKey, Vec<FrameLoc>> = BTreeMap::new();
        for (k, loc) in scan.frames {
            per_shard.entry(k).or_default().push(loc);
        }
        let per_shard: Vec<_> = per_shard.into_iter().collect();
        let ends = crate::sidecar::merge_ends([&prev_ends[..], &scan.table[..]]);
        let enc = crate::sidecar::encode(id, &per_shard, &ends);
        Ok(SegmentDetail {
            spans: enc
                .spans
                .into_iter()
                .map(|(k, s)| {
                    (
                        k,
                        SealedSpan {
                            frames_crc: !s.frames_crc,
                            ..s
                        },
                    )
                })
                .collect(),
            ends: enc.ends,
        })
    }

    /// An open handle on segment `id` (the active one or a sealed one, from
    /// the cache of open files).
    pub(crate) fn segment_file(&self, id: u64) -> Result<Arc<dyn FsFile>, LogError> {
        {
            let index = self.index.read();
            if id == index.active_id {
                return index.active_file().ok_or(LogError::Closed);
            }
        }
        if let Some(f) = self.caches.lock().files.get(&id, 0) {
            return Ok(f);
        }
        let generation = self.layout_generation.load(Ordering::Acquire);
        let file = match self.fs.open(&segment_path(&self.config.dir, id)) {
            Ok(f) => f,
            Err(e) if !self.index.read().segments.contains_key(&id) => {
                return Err(LogError::Gone(e.to_string()));
            }
            Err(e) => return Err(e.into()),
        };
        self.cache_insert(generation, |c| c.files.insert(id, 0, file.clone(), 1));
        Ok(file)
    }

    /// The frame list of `span`, from the cache or its sidecar.
    fn sealed_frames(
        &self,
        span: &SealedSpan,
        shard: ShardKey,
    ) -> Result<Arc<Vec<FrameLoc>>, LogError> {
        let check = u64::from(span.frames_crc);
        if let Some(f) = self
            .caches
            .lock()
            .frames
            .get(&(span.segment_id, shard), check)
        {
            return Ok(f);
        }
        let generation = self.layout_generation.load(Ordering::Acquire);
        let path = sidecar_path(&self.config.dir, span.segment_id);
        let frames = match crate::sidecar::read_frames(&*self.fs, &path, span) {
            Ok(f) => f,
            Err(e) if !self.index.read().segments.contains_key(&span.segment_id) => {
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
        let weight = Caches::frames_weight(&frames);
        self.cache_insert(generation, |c| {
            c.frames
                .insert((span.segment_id, shard), check, frames.clone(), weight)
        });
        Ok(frames)
    }

    /// `shard`'s frames in a sealed segment, found by scanning it.
    fn frames_by_scan(
        &self,
        span: &SealedSpan,
        shard: ShardKey,
    ) -> Result<Vec<FrameLoc>, LogError> {
        let file = self.segment_file(span.segment_id)?;
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

    /// The first sealed span of `shard` that holds what is sought: binary
    /// search over the sealed ids for the first segment whose end table
    /// satisfies `key` (a predicate that, along the sealed segments, turns
    /// true once and stays true), then the first span from there that
    /// satisfies `span_ok`. Where retention removed the shard's data from
    /// segments that remain, that walks forward; each walk is remembered.
    fn locate(
        &self,
        shard: ShardKey,
        after: Option<u64>,
        key: impl Fn(&SegmentDetail) -> bool,
        span_ok: impl Fn(&SealedSpan) -> bool,
    ) -> Result<Located, LogError> {
        let (ids, epoch) = {
            let index = self.index.read();
            (index.sealed_ids.clone(), index.sealed_epoch)
        };
        let (mut lo, mut hi) = (0usize, ids.len());
        if let Some(after) = after {
            // `key` is false up to `after`: gallop forward from there (a
            // reader moving on from one segment usually wants the next).
            lo = ids.partition_point(|id| *id <= after);
            let mut step = 1usize;
            while lo + step <= ids.len() && !key(&*self.detail(ids[lo + step - 1])?) {
                lo += step;
                step *= 2;
            }
            hi = (lo + step).min(ids.len());
        }
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if key(&*self.detail(ids[mid])?) {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        // Segments `lo..i` hold no span of the shard (retention removed it
        // from them): an earlier walk under the same segments found that.
        let from = match self.first_spans.lock().get(&shard) {
            Some(&(e, a, b)) if e == epoch && (a..b).contains(&lo) => b,
            _ => lo,
        };
        // Only segments without any span of the shard go into the record.
        let mut spanless = true;
        for (i, id) in ids.iter().enumerate().skip(from) {
            if let Some(span) = self.detail(*id)?.span(shard) {
                if i > from && spanless {
                    self.first_spans.lock().insert(shard, (epoch, from, i));
                }
                spanless = false;
                if span_ok(&span) {
                    return Ok(Located::Sealed(span));
                }
            }
        }
        Ok(Located::Active(epoch))
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
        {
            let index = self.index.read();
            let Some(st) = index.shards.get(&shard) else {
                return Ok((pos, None));
            };
            if pos >= st.next_position {
                return Ok((pos, None));
            }
            if let Some(first) = st.active.first() {
                if pos >= first.first_position {
                    return Ok(Self::active_frames(&index, shard, pos));
                }
            }
        }
        // A reader going through a shard stays in one span for many calls.
        let generation = self.layout_generation.load(Ordering::Acquire);
        let last = self
            .last_spans
            .lock()
            .get(&shard)
            .filter(|(g, s)| *g == generation && s.first_position <= pos)
            .map(|(_, s)| *s);
        let hint = last.filter(|s| pos < s.end_position);
        let located = match hint {
            Some(span) => Located::Sealed(span),
            // Past the last span read: what follows is after its segment.
            None => self.locate(
                shard,
                last.map(|s| s.segment_id),
                |d| d.end(shard).0 > pos,
                |s| s.end_position > pos,
            )?,
        };
        if let (Located::Sealed(span), None) = (&located, hint) {
            if generation.is_multiple_of(2) {
                self.last_spans.lock().insert(shard, (generation, *span));
            }
        }
        match located {
            Located::Sealed(span) => {
                let file = self.segment_file(span.segment_id)?;
                let pos = pos.max(span.first_position);
                let frames = self.sealed_frames(&span, shard)?;
                let j = frames.partition_point(|f| f.end_position() <= pos);
                let end = (j + FRAMES_PER_LOOKUP_MAX).min(frames.len());
                Ok((pos, Some((file, frames[j.min(end)..end].to_vec()))))
            }
            Located::Active(epoch) => {
                let index = self.index.read();
                if index.sealed_epoch != epoch {
                    return Err(LogError::Gone("a segment was sealed meanwhile".into()));
                }
                Ok(Self::active_frames(&index, shard, pos))
            }
        }
    }

    #[allow(clippy::type_complexity)]
    fn active_frames(
        index: &Index,
        shard: ShardKey,
        pos: u64,
    ) -> (u64, Option<(Arc<dyn FsFile>, Vec<FrameLoc>)>) {
        let Some(st) = index.shards.get(&shard) else {
            return (pos, None);
        };
        let j = st.active.partition_point(|f| f.end_position() <= pos);
        if let (Some(first), Some(file)) = (st.active.get(j), index.active_file()) {
            let pos = pos.max(first.first_position);
            let end = (j + FRAMES_PER_LOOKUP_MAX).min(st.active.len());
            return (pos, Some((file, st.active[j..end].to_vec())));
        }
        // Everything at or after `pos` is gone (retention); skip to the end.
        (st.next_position, None)
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
        if !self.index.read().shards.contains_key(&shard) {
            return Ok(0);
        }
        let located = self.locate(
            shard,
            None,
            |d| d.end(shard).1 >= ts_ms,
            |s| s.last_timestamp_ms >= ts_ms,
        )?;
        if let Located::Sealed(span) = located {
            let frames = self.sealed_frames(&span, shard)?;
            let j = frames.partition_point(|f| f.timestamp_ms < ts_ms);
            return Ok(frames
                .get(j)
                .map_or(span.end_position, |f| f.first_position));
        }
        let Located::Active(epoch) = located else {
            return Ok(0);
        };
        let index = self.index.read();
        if index.sealed_epoch != epoch {
            return Err(LogError::Gone("a segment was sealed meanwhile".into()));
        }
        let Some(st) = index.shards.get(&shard) else {
            return Ok(0);
        };
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
