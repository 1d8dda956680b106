//! Compaction: bounds disk use by what is still retained. A sealed segment
//! whose live frames are a small part of it (or a run of small neighbours)
//! is rewritten: its live frames, and those of the consecutive sealed
//! segments merged with it, are copied byte for byte into one new file that
//! takes the id of the newest segment of the run, and the old files go.
//! Positions, timestamps and the order of segment ids (and so of positions)
//! stay as they were.
//!
//! Crash safety, step by step (every step is followed by a directory sync):
//! 1. the new segment is written as `<b>.seg.compact.tmp` (header naming the
//!    ids it replaces) and its sidecar as `<b>.idx.compact.tmp`, both synced;
//!    a crash here leaves `*.tmp` files that recovery removes;
//! 2. the old sidecar `<b>.idx` is renamed to `<b>.idx.old.tmp`; a crash
//!    here leaves the old segment without a sidecar, rebuilt by a scan;
//! 3. `<b>.seg.compact.tmp` is renamed over `<b>.seg`: the commit point. A
//!    crash from here on leaves the compacted segment, whose header tells
//!    recovery to remove the older segments it replaces;
//! 4. the new sidecar is renamed to `<b>.idx`;
//! 5. the index is switched to the new file and spans;
//! 6. the replaced segments and their sidecars are removed.
//!
//! Frames are copied verbatim except for the COMMIT_END flag (each copied
//! frame becomes its own commit, since its companions may be gone), so their
//! checksums are recomputed after verifying the originals.

use crate::format::{self, KIND_RECORDS};
use crate::fs::{read_exact_at, Fs, FsFile};
use crate::index::{FrameLoc, SealedSpan, SegmentMeta, StreamAgg};
use crate::retention::Liveness;
use crate::segment::{segment_path, sidecar_path};
use crate::{sidecar, LogError, RetentionReport, ShardKey, Shared};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// A sealed segment is compacted once this share of it (or more) is dead...
const DEAD_FRACTION_NUM: u64 = 1;
const DEAD_FRACTION_DEN: u64 = 5;
/// ...and merged with its neighbours while smaller than this share of a full segment.
const SMALL_FRACTION_DEN: u64 = 2;
/// Reads and writes of compaction move at most this much at a time.
const COPY_CHUNK_BYTES: usize = 1024 * 1024;
/// Reads racing a layout change are retried this often (1 ms apart at most).
const READ_RETRIES_MAX: u32 = 200;

struct SegmentPlan {
    id: u64,
    live: u64,
    candidate: bool,
    has_dead: bool,
}

impl Shared {
    /// Runs `f`, running it again if it failed while compaction or retention
    /// was changing which files back the sealed segments.
    pub(crate) fn retry_across_layout_changes<T>(
        &self,
        f: impl Fn() -> Result<T, LogError>,
    ) -> Result<T, LogError> {
        let mut attempts = 0;
        loop {
            let generation = self.layout_generation.load(Ordering::Acquire);
            match f() {
                Err(e) if attempts < READ_RETRIES_MAX => {
                    let now = self.layout_generation.load(Ordering::Acquire);
                    if now == generation && generation.is_multiple_of(2) {
                        return Err(e);
                    }
                    attempts += 1;
                    if !now.is_multiple_of(2) {
                        std::thread::sleep(std::time::Duration::from_millis(1));
                    }
                }
                r => return r,
            }
        }
    }

    /// Compacts mostly dead or small sealed segments, within the per-pass
    /// byte budget. Failures are logged and leave the old files in place.
    pub(crate) fn compact(&self, live: &Liveness, report: &mut RetentionReport) {
        let plan = match self.plan(live) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "compaction planning failed");
                return;
            }
        };
        let full = self.config.segment_bytes_max.max(1);
        let mut budget = self.config.compact_bytes_per_pass_max;
        let mut groups: Vec<Vec<&SegmentPlan>> = Vec::new();
        let mut current: Vec<&SegmentPlan> = Vec::new();
        for p in &plan {
            let fits = current.iter().map(|c| c.live).sum::<u64>() + p.live <= full;
            if !p.candidate || !fits {
                groups.push(std::mem::take(&mut current));
            }
            if p.candidate {
                current.push(p);
            }
        }
        groups.push(current);
        for group in groups {
            let worth = group.len() >= 2 || group.iter().any(|p| p.has_dead);
            if !worth {
                continue;
            }
            let live_bytes: u64 = group.iter().map(|p| p.live).sum();
            if live_bytes > budget {
                break;
            }
            let ids: Vec<u64> = group.iter().map(|p| p.id).collect();
            match self.compact_group(&ids, live) {
                Ok(Some((old, new, copied))) => {
                    budget = budget.saturating_sub(copied);
                    report.segments_compacted += 1;
                    report.segments_deleted += ids.len() as u64;
                    report.bytes_reclaimed += old.saturating_sub(new);
                    report.bytes_copied += copied;
                    tracing::info!(
                        segments = ?ids,
                        old_bytes = old,
                        new_bytes = new,
                        "segments compacted"
                    );
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(segments = ?ids, error = %e, "compaction failed; old segments kept");
                    if e.is_no_space() {
                        break;
                    }
                }
            }
        }
    }

    /// Live bytes of every sealed segment, in id order. Reads a frame list
    /// only where a span is partly expired (at most one per shard, since a
    /// shard's timestamps never decrease) or its size is unknown.
    fn plan(&self, live: &Liveness) -> Result<Vec<SegmentPlan>, LogError> {
        #[allow(clippy::type_complexity)]
        let segments: Vec<(u64, u64, Vec<(u64, StreamAgg)>)> = {
            let index = self.index.read();
            index
                .segments
                .iter()
                .filter(|(id, _)| **id != index.active_id)
                .map(|(id, m)| {
                    (
                        *id,
                        m.bytes,
                        m.streams.iter().map(|(u, a)| (*u, *a)).collect(),
                    )
                })
                .collect()
        };
        let full = self.config.segment_bytes_max.max(1);
        let mut out = Vec::with_capacity(segments.len());
        for (id, size, streams) in segments {
            let mut live_bytes = 0u64;
            let mut unsure = Vec::new();
            for (uid, a) in streams {
                let first_live = live.live(uid, a.first_ts);
                let last_live = live.live(uid, a.last_ts);
                if first_live && a.bytes > 0 {
                    live_bytes += a.bytes;
                } else if last_live {
                    unsure.push(uid);
                }
            }
            let small = size * SMALL_FRACTION_DEN < full;
            let dead_enough = |live_bytes: u64| {
                size.saturating_sub(live_bytes) * DEAD_FRACTION_DEN >= size * DEAD_FRACTION_NUM
            };
            if !unsure.is_empty() {
                if small || dead_enough(live_bytes) {
                    let detail = self.detail(id)?;
                    let path = sidecar_path(&self.config.dir, id);
                    for (k, s) in detail
                        .spans
                        .iter()
                        .filter(|(k, _)| unsure.contains(&k.stream_uid))
                    {
                        if live.live(k.stream_uid, s.first_timestamp_ms) && s.bytes > 0 {
                            live_bytes += u64::from(s.bytes);
                        } else if live.live(k.stream_uid, s.last_timestamp_ms) {
                            let frames = sidecar::read_frames(&*self.fs, &path, s)?;
                            live_bytes += frames
                                .iter()
                                .filter(|f| live.live(k.stream_uid, f.timestamp_ms))
                                .map(|f| u64::from(f.len))
                                .sum::<u64>();
                        }
                    }
                } else {
                    // Not a candidate whatever they hold: count them as live.
                    live_bytes = size;
                }
            }
            // The header and shard table are not reclaimable (a segment of
            // many shards has a large table): count them as live.
            let mut has_dead = dead_enough(live_bytes);
            if has_dead && live_bytes > 0 {
                let mut prefix = [0u8; 8];
                let file = self.segment_file(id)?;
                read_exact_at(&*file, &mut prefix, format::SEGMENT_HEADER_BYTES as u64)?;
                live_bytes +=
                    (format::SEGMENT_HEADER_BYTES + format::peek_frame_len(&prefix)) as u64;
                has_dead = dead_enough(live_bytes);
            }
            let candidate = live_bytes > 0 && (small || has_dead);
            out.push(SegmentPlan {
                id,
                live: live_bytes,
                candidate,
                has_dead,
            });
        }
        Ok(out)
    }

    /// Replaces the consecutive sealed segments `ids` by one holding their
    /// live frames. Returns (old bytes, new bytes, bytes copied), or `None`
    /// if there was nothing to do.
    fn compact_group(
        &self,
        ids: &[u64],
        live: &Liveness,
    ) -> Result<Option<(u64, u64, u64)>, LogError> {
        let (Some(&first), Some(&last)) = (ids.first(), ids.last()) else {
            return Ok(None);
        };
        let Ok(replaces) = u32::try_from(last - first) else {
            return Ok(None);
        };
        let dir = &self.config.dir;
        let old_bytes: u64 = {
            let index = self.index.read();
            // Only consecutive sealed segments: no other id may lie between.
            let present: Vec<u64> = index
                .segments
                .range(first..=last)
                .map(|(id, _)| *id)
                .collect();
            if present != ids || last >= index.active_id {
                return Ok(None);
            }
            ids.iter()
                .filter_map(|id| index.segments.get(id).map(|m| m.bytes))
                .sum()
        };
        let mut files: HashMap<u64, Arc<dyn FsFile>> = HashMap::new();
        let mut spans: Vec<(ShardKey, SealedSpan)> = Vec::new();
        let mut ends = Vec::new();
        for id in ids {
            files.insert(*id, self.segment_file(*id)?);
            let detail = self.detail(*id)?;
            spans.extend(detail.spans.iter().copied());
            if *id == last {
                // The compacted segment takes the place (and id) of the
                // newest one, so it ends where that one ended.
                ends = detail.ends.clone();
            }
        }

        // Live frames, in (segment, offset) order.
        let mut kept: Vec<(u64, ShardKey, FrameLoc)> = Vec::new();
        for (k, s) in &spans {
            let frames = sidecar::read_frames(&*self.fs, &sidecar_path(dir, s.segment_id), s)?;
            kept.extend(
                frames
                    .iter()
                    .filter(|f| live.live(k.stream_uid, f.timestamp_ms))
                    .map(|f| (s.segment_id, *k, *f)),
            );
        }
        if kept.is_empty() {
            return Ok(None);
        }
        kept.sort_unstable_by_key(|(seg, _, f)| (*seg, f.offset));
        // Recovery's scan expects each shard's positions to be dense; live
        // frames are a suffix of each shard, so a gap means a bug: keep all.
        let mut next: HashMap<ShardKey, u64> = HashMap::new();
        for (_, k, f) in &kept {
            if let Some(n) = next.insert(*k, f.end_position()) {
                if n != f.first_position {
                    tracing::warn!(segments = ?ids, shard = ?k, "live frames are not dense; not compacting");
                    return Ok(None);
                }
            }
        }

        let seg_tmp = tmp_path(dir, last, "seg.compact.tmp");
        let idx_tmp = tmp_path(dir, last, "idx.compact.tmp");
        let written =
            self.write_compacted(&files, &kept, last, replaces, &ends, (&seg_tmp, &idx_tmp));
        let (new_len, copied, new_streams) = match written {
            Ok(w) => w,
            Err(e) => {
                let _ = self.fs.remove_file(&seg_tmp);
                let _ = self.fs.remove_file(&idx_tmp);
                return Err(e);
            }
        };
        self.switch(ids, new_len, new_streams, (&seg_tmp, &idx_tmp), old_bytes)?;
        Ok(Some((old_bytes, new_len, copied)))
    }

    /// Step 1: writes and syncs the compacted segment and its sidecar under
    /// temporary names.
    #[allow(clippy::type_complexity)]
    fn write_compacted(
        &self,
        files: &HashMap<u64, Arc<dyn FsFile>>,
        kept: &[(u64, ShardKey, FrameLoc)],
        id: u64,
        replaces: u32,
        ends: &[(ShardKey, u64, u64)],
        (seg_tmp, idx_tmp): (&Path, &Path),
    ) -> Result<(u64, u64, Vec<(u64, StreamAgg)>), LogError> {
        let out = self.fs.create(seg_tmp)?;
        let mut buf = Vec::with_capacity(COPY_CHUNK_BYTES);
        buf.extend_from_slice(&format::compacted_segment_header(id, replaces));
        format::encode_shard_table(&mut buf, 0, &[]);
        let mut flushed = 0u64;
        let mut copied = 0u64;
        let mut per_shard: BTreeMap<ShardKey, Vec<FrameLoc>> = BTreeMap::new();
        let mut i = 0;
        while i < kept.len() {
            // A run of frames adjacent in one old file, read with one call.
            let (seg, _, start) = kept[i];
            let mut j = i + 1;
            let mut end = start.offset + u64::from(start.len);
            while j < kept.len()
                && kept[j].0 == seg
                && kept[j].2.offset == end
                && (end - start.offset) as usize + kept[j].2.len as usize <= COPY_CHUNK_BYTES
            {
                end += u64::from(kept[j].2.len);
                j += 1;
            }
            let file = files
                .get(&seg)
                .ok_or_else(|| LogError::Corrupt(format!("segment {seg} vanished")))?;
            let mut run = vec![0u8; (end - start.offset) as usize];
            read_exact_at(&**file, &mut run, start.offset)?;
            let mut at = 0usize;
            for (_, k, loc) in &kept[i..j] {
                let frame = &mut run[at..at + loc.len as usize];
                at += loc.len as usize;
                let h = format::check_frame(frame)?;
                if h.kind != KIND_RECORDS
                    || h.shard != *k
                    || h.first_position != loc.first_position
                    || h.record_count != loc.record_count
                {
                    return Err(LogError::Corrupt(format!(
                        "segment {seg} offset {} is not the frame indexed for {k:?}",
                        loc.offset
                    )));
                }
                format::mark_commit_end(frame);
                per_shard.entry(*k).or_default().push(FrameLoc {
                    offset: flushed + buf.len() as u64,
                    ..*loc
                });
                buf.extend_from_slice(frame);
                copied += u64::from(loc.len);
                if buf.len() >= COPY_CHUNK_BYTES {
                    out.write_all_at(&buf, flushed)?;
                    flushed += buf.len() as u64;
                    buf.clear();
                }
            }
            i = j;
        }
        out.write_all_at(&buf, flushed)?;
        flushed += buf.len() as u64;
        out.sync_data()?;
        let per_shard: Vec<(ShardKey, Vec<FrameLoc>)> = per_shard.into_iter().collect();
        let enc = sidecar::encode(id, &per_shard, ends);
        let idx = self.fs.create(idx_tmp)?;
        idx.write_all_at(&enc.bytes, 0)?;
        idx.sync_data()?;
        self.fs.sync_dir(&self.config.dir)?;
        Ok((flushed, copied, enc.streams))
    }

    /// Steps 2 to 6: puts the compacted segment in place of the old ones.
    fn switch(
        &self,
        ids: &[u64],
        new_len: u64,
        new_streams: Vec<(u64, StreamAgg)>,
        (seg_tmp, idx_tmp): (&Path, &Path),
        old_bytes: u64,
    ) -> Result<(), LogError> {
        let fs = &*self.fs;
        let dir = &self.config.dir;
        let Some(&id) = ids.last() else {
            return Ok(());
        };
        let idx = sidecar_path(dir, id);
        let idx_old = tmp_path(dir, id, "idx.old.tmp");
        // Odd while reads of these segments may fail; they wait and retry.
        self.layout_generation.fetch_add(1, Ordering::AcqRel);
        let _even = EvenOnDrop(&self.layout_generation);
        let step2 = match fs.rename(&idx, &idx_old) {
            Ok(()) => fs.sync_dir(dir).map(|_| true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        };
        let had_idx = match step2 {
            Ok(h) => h,
            Err(e) => {
                let _ = fs.remove_file(seg_tmp);
                let _ = fs.remove_file(idx_tmp);
                return Err(e.into());
            }
        };
        if let Err(e) = fs.rename(seg_tmp, &segment_path(dir, id)) {
            if had_idx {
                let _ = fs.rename(&idx_old, &idx);
            }
            let _ = fs.remove_file(seg_tmp);
            let _ = fs.remove_file(idx_tmp);
            let _ = fs.sync_dir(dir);
            return Err(e.into());
        }
        // Committed: from here on the compacted segment is the truth.
        if let Err(e) = fs.sync_dir(dir) {
            tracing::warn!(segment = id, error = %e, "directory sync after compaction failed");
        }
        if let Err(e) = fs.rename(idx_tmp, &idx).and_then(|_| fs.sync_dir(dir)) {
            // Reads of this segment fail until a restart rebuilds its sidecar.
            tracing::error!(segment = id, error = %e, "cannot install the compacted sidecar");
        }
        {
            let mut index = self.index.write();
            for old in ids {
                index.segments.remove(old);
            }
            index.segments.insert(
                id,
                SegmentMeta {
                    bytes: new_len,
                    streams: new_streams.into_iter().collect(),
                },
            );
            index.sealed_changed();
            // Under the index lock: a reader that sees the new segment ids
            // must not find a detail or file of the replaced ones cached
            // (the compacted segment keeps the newest one's id).
            let mut caches = self.caches.lock();
            for old in ids {
                caches.remove_segment(*old);
            }
        }
        let mut cleanup = Vec::new();
        if had_idx {
            cleanup.push(idx_old);
        }
        self.retire(ids.iter().copied().filter(|o| *o != id));
        for old in ids.iter().filter(|o| **o != id) {
            cleanup.push(segment_path(dir, *old));
            cleanup.push(sidecar_path(dir, *old));
        }
        for p in cleanup {
            match fs.remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                // Recovery removes what is left (replaced ids, `*.tmp`).
                Err(e) => {
                    tracing::warn!(path = %p.display(), error = %e, "cleanup after compaction")
                }
            }
        }
        let _ = fs.sync_dir(dir);
        tracing::debug!(segment = id, old_bytes, new_len, "compaction switched");
        Ok(())
    }
}

/// Makes the layout generation even again when a switch ends, however it ends.
struct EvenOnDrop<'a>(&'a std::sync::atomic::AtomicU64);

impl Drop for EvenOnDrop<'_> {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::AcqRel);
    }
}

fn tmp_path(dir: &Path, id: u64, ext: &str) -> PathBuf {
    dir.join(format!("{id:020}.{ext}"))
}

/// Recovery step: a compacted segment makes every older segment in the id
/// range it replaces obsolete (a crash may have left them behind). Removes
/// those files and their ids from `seg_ids` (sorted ascending).
/// Returns the id ranges compacted segments replaced (all of them, not only
/// those whose files were still there).
pub fn drop_superseded(
    dir: &Path,
    fs: &dyn Fs,
    seg_ids: &mut Vec<u64>,
) -> Result<Vec<(u64, u64)>, LogError> {
    let mut replaced = Vec::new();
    let mut i = seg_ids.len();
    while i > 0 {
        i -= 1;
        let id = seg_ids[i];
        let file = fs.open(&segment_path(dir, id))?;
        let mut h = [0u8; format::SEGMENT_HEADER_BYTES];
        if read_exact_at(&*file, &mut h, 0).is_err() {
            continue;
        }
        let Some((hid, replaces)) = format::parse_segment_header_replaces(&h) else {
            continue;
        };
        if hid != id || replaces == 0 {
            continue;
        }
        let from = id.saturating_sub(u64::from(replaces));
        replaced.push((from, id));
        let start = seg_ids.partition_point(|x| *x < from);
        if start >= i {
            continue;
        }
        for old in seg_ids.drain(start..i) {
            tracing::info!(
                segment = old,
                by = id,
                "removing a segment replaced by compaction"
            );
            // Its sidecar goes with the other sidecars without a segment.
            fs.remove_file(&segment_path(dir, old))?;
        }
        fs.sync_dir(dir)?;
        i = start;
    }
    Ok(replaced)
}
