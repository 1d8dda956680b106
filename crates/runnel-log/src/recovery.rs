//! Opening a log directory: find the active segment, scan it, cut any torn
//! tail, and load the summaries of sealed segments from their sidecars.

use crate::format::{self, SEGMENT_HEADER_BYTES};
use crate::fs::{Fs, FsFile};
use crate::index::{Index, SegmentMeta, ShardState};
use crate::segment::{self, segment_path, sidecar_path, Scan};
use crate::{sidecar, LogError, ShardKey};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

pub struct Recovered {
    pub index: Index,
    pub active_file: Arc<dyn FsFile>,
    pub active_len: u64,
    pub next_commit_seq: u64,
}

pub fn recover(dir: &Path, fs: &dyn Fs) -> Result<Recovered, LogError> {
    fs.create_dir_all(dir)?;
    let mut seg_ids = Vec::new();
    let mut idx_ids = Vec::new();
    let mut max_seen: Option<u64> = None;
    for path in fs.list_dir(dir)? {
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if name.ends_with(".tmp") {
            fs.remove_file(&path)?;
            continue;
        }
        let (stem, ext) = match name.split_once('.') {
            Some(x) => x,
            None => continue,
        };
        let Ok(id) = stem.parse::<u64>() else {
            continue;
        };
        max_seen = Some(max_seen.map_or(id, |m| m.max(id)));
        match ext {
            "seg" => seg_ids.push(id),
            "idx" => idx_ids.push(id),
            _ => {}
        }
    }
    seg_ids.sort_unstable();
    // Compaction: a compacted segment replaces older ones a crash left behind.
    crate::compact::drop_superseded(dir, fs, &mut seg_ids)?;
    let segs: HashSet<u64> = seg_ids.iter().copied().collect();
    for id in idx_ids.iter().filter(|id| !segs.contains(id)) {
        fs.remove_file(&sidecar_path(dir, *id))?;
    }

    // The newest segment with a valid header and shard table is the active one.
    let mut active: Option<(u64, Arc<dyn FsFile>, Scan)> = None;
    while let Some(&id) = seg_ids.last() {
        let path = segment_path(dir, id);
        let file = fs.open(&path)?;
        match segment::scan(&*file)? {
            Some(scan) if scan.segment_id == id => {
                active = Some((id, file, scan));
                break;
            }
            _ => {
                // Nothing in it was ever acknowledged: a segment becomes
                // writable only after its header and table are synced.
                tracing::warn!(
                    segment = id,
                    "segment without a valid header or shard table, set aside"
                );
                fs.rename(&path, &path.with_extension("seg.corrupt"))?;
                seg_ids.pop();
            }
        }
    }

    let mut index = Index {
        shards: HashMap::new(),
        segments: BTreeMap::new(),
        active_id: 0,
        dropped: HashSet::new(),
    };

    let (active_id, active_file, scan) = match active {
        Some(a) => a,
        None => {
            let id = max_seen.map_or(0, |m| m + 1);
            let (file, _) = create_segment(dir, fs, id, 1, &[])?;
            let scan = segment::scan(&*file)?
                .ok_or_else(|| LogError::Corrupt("freshly written segment does not scan".into()))?;
            (id, file, scan)
        }
    };
    if scan.valid_len < scan.file_len && zeros_from(&*active_file, scan.valid_len, scan.file_len)? {
        // The preallocated, never written rest of the active segment.
        tracing::debug!(
            segment = active_id,
            valid_len = scan.valid_len,
            "active segment ends in its preallocated tail"
        );
    } else if scan.valid_len < scan.file_len {
        tracing::warn!(
            segment = active_id,
            valid_len = scan.valid_len,
            file_len = scan.file_len,
            reason = scan.stop_reason.as_deref().unwrap_or(""),
            "truncating torn tail of active segment"
        );
        active_file.set_len(scan.valid_len)?;
        active_file.sync_data()?;
    }
    let active_sidecar = sidecar_path(dir, active_id);
    if idx_ids.contains(&active_id) {
        fs.remove_file(&active_sidecar)?;
    }

    for &id in seg_ids.iter().filter(|&&id| id < active_id) {
        load_sealed(dir, fs, id, &mut index)?;
    }

    for (key, next, ts) in &scan.table {
        let st = index.shards.entry(*key).or_default();
        st.next_position = st.next_position.max(*next);
        st.last_timestamp_ms = st.last_timestamp_ms.max(*ts);
    }
    let mut stream_last_ts = HashMap::new();
    for (key, loc) in &scan.frames {
        let st = index.shards.entry(*key).or_default();
        st.next_position = loc.end_position();
        st.last_timestamp_ms = st.last_timestamp_ms.max(loc.timestamp_ms);
        st.active.push(*loc);
        let t = stream_last_ts.entry(key.stream_uid).or_insert(0u64);
        *t = (*t).max(loc.timestamp_ms);
    }
    index.segments.insert(
        active_id,
        SegmentMeta {
            file: active_file.clone(),
            bytes: scan.valid_len,
            stream_last_ts,
        },
    );
    index.active_id = active_id;
    Ok(Recovered {
        index,
        active_file,
        active_len: scan.valid_len,
        next_commit_seq: scan.last_commit_seq + 1,
    })
}

/// Loads a sealed segment's summary from its sidecar, rebuilding the sidecar
/// by scanning the segment if it is missing or damaged.
fn load_sealed(dir: &Path, fs: &dyn Fs, id: u64, index: &mut Index) -> Result<(), LogError> {
    let path = segment_path(dir, id);
    let file = fs.open(&path)?;
    let idx_path = sidecar_path(dir, id);
    let spans = match sidecar::read_summary(fs, &idx_path, id) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(segment = id, error = %e, "rebuilding sidecar");
            let Some(scan) = segment::scan(&*file)? else {
                tracing::error!(
                    segment = id,
                    "sealed segment has no valid header, set aside"
                );
                fs.rename(&path, &path.with_extension("seg.corrupt"))?;
                return Ok(());
            };
            let mut per_shard: BTreeMap<ShardKey, Vec<_>> = BTreeMap::new();
            for (k, loc) in scan.frames {
                per_shard.entry(k).or_default().push(loc);
            }
            let per_shard: Vec<_> = per_shard.into_iter().collect();
            let (bytes, spans) = sidecar::encode(id, &per_shard);
            sidecar::write(fs, dir, &idx_path, &bytes)?;
            spans
        }
    };
    let mut stream_last_ts = HashMap::new();
    for (key, span) in spans {
        let st: &mut ShardState = index.shards.entry(key).or_default();
        st.next_position = st.next_position.max(span.end_position);
        st.last_timestamp_ms = st.last_timestamp_ms.max(span.last_timestamp_ms);
        st.sealed.push(span);
        let t = stream_last_ts.entry(key.stream_uid).or_insert(0u64);
        *t = (*t).max(span.last_timestamp_ms);
    }
    let bytes = file.len()?;
    index.segments.insert(
        id,
        SegmentMeta {
            file,
            bytes,
            stream_last_ts,
        },
    );
    Ok(())
}

/// Whether every byte of `file` in `from..to` is zero.
fn zeros_from(file: &dyn FsFile, from: u64, to: u64) -> Result<bool, LogError> {
    let mut buf = vec![0u8; 1 << 20];
    let mut at = from;
    while at < to {
        let want = ((to - at) as usize).min(buf.len());
        let n = file.read_at(&mut buf[..want], at)?;
        if n == 0 {
            return Ok(true);
        }
        if buf[..n].iter().any(|&b| b != 0) {
            return Ok(false);
        }
        at += n as u64;
    }
    Ok(true)
}

/// Creates segment `id` holding its header and a shard table, synced, with
/// its directory entry synced. Returns the file and its length.
pub fn create_segment(
    dir: &Path,
    fs: &dyn Fs,
    id: u64,
    commit_seq: u64,
    table: &[(ShardKey, u64, u64)],
) -> Result<(Arc<dyn FsFile>, u64), LogError> {
    let path = segment_path(dir, id);
    let mut buf = Vec::with_capacity(SEGMENT_HEADER_BYTES + 64 + table.len() * 28);
    buf.extend_from_slice(&format::segment_header(id));
    format::encode_shard_table(&mut buf, commit_seq, table);
    let result = (|| {
        let file = fs.create(&path)?;
        file.write_all_at(&buf, 0)?;
        file.sync_data()?;
        fs.sync_dir(dir)?;
        Ok::<_, LogError>(file)
    })();
    match result {
        Ok(file) => Ok((file, buf.len() as u64)),
        Err(e) => {
            let _ = fs.remove_file(&path);
            Err(e)
        }
    }
}
