//! Opening a log directory: find the active segment, scan it, cut any torn
//! tail, and load the summaries of sealed segments from their sidecars.

use crate::format::{self, SEGMENT_HEADER_BYTES};
use crate::fs::{Fs, FsFile};
use crate::index::{Index, SegmentMeta, StreamAgg};
use crate::retired::Retired;
use crate::segment::{self, segment_path, sidecar_path, Scan};
use crate::{sidecar, LogError, OnCorruption, ShardKey};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

pub struct Recovered {
    pub index: Index,
    pub active_file: Arc<dyn FsFile>,
    pub active_len: u64,
    pub next_commit_seq: u64,
    /// Damage found and skipped (only with `OnCorruption::Skip`).
    pub damage: Vec<String>,
    pub retired: Retired,
}

/// Describes damaged ranges of one segment for a report or an error.
fn describe(path: &Path, damage: &[segment::Damage]) -> String {
    let ranges: Vec<String> = damage
        .iter()
        .map(|d| {
            format!(
                "bytes {}..{} ({} bytes: {})",
                d.offset,
                d.resume_at,
                d.bytes(),
                d.reason
            )
        })
        .collect();
    format!(
        "{} is damaged at {}; the frames after it verify",
        path.display(),
        ranges.join(", ")
    )
}

fn refuse(what: String) -> LogError {
    LogError::Corrupt(format!(
        "{what}. Nothing was changed. Restore the file from a backup, or start with \
         --on-corruption skip to keep every frame that verifies and give up the damaged \
         bytes (a copy of the segment is kept as *.seg.damaged)"
    ))
}

/// Keeps a byte-for-byte copy of a damaged segment next to it.
fn keep_copy(fs: &dyn Fs, dir: &Path, path: &Path, file: &dyn FsFile) -> Result<(), LogError> {
    let copy = path.with_extension("seg.damaged");
    let out = fs.create(&copy)?;
    let len = file.len()?;
    let mut buf = vec![0u8; 1 << 20];
    let mut at = 0u64;
    while at < len {
        let want = ((len - at) as usize).min(buf.len());
        let n = file.read_at(&mut buf[..want], at)?;
        if n == 0 {
            break;
        }
        out.write_all_at(&buf[..n], at)?;
        at += n as u64;
    }
    out.sync_data()?;
    fs.sync_dir(dir)?;
    Ok(())
}

pub fn recover(dir: &Path, fs: &dyn Fs, policy: OnCorruption) -> Result<Recovered, LogError> {
    let mut damage_report = Vec::new();
    fs.create_dir_all(dir)?;
    let mut seg_ids = Vec::new();
    let mut idx_ids = Vec::new();
    let mut set_aside = Vec::new();
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
            "seg.corrupt" => set_aside.push(id),
            _ => {}
        }
    }
    seg_ids.sort_unstable();
    // Compaction: a compacted segment replaces older ones a crash left behind.
    let replaced = crate::compact::drop_superseded(dir, fs, &mut seg_ids)?;
    let retired = check_gaps(
        dir,
        fs,
        &seg_ids,
        &set_aside,
        &replaced,
        policy,
        &mut damage_report,
    )?;
    let segs: HashSet<u64> = seg_ids.iter().copied().collect();
    for id in idx_ids.iter().filter(|id| !segs.contains(id)) {
        fs.remove_file(&sidecar_path(dir, *id))?;
    }

    // The newest segment with a valid header and shard table is the active one.
    let mut active: Option<(u64, Arc<dyn FsFile>, Scan)> = None;
    // (shard, end position, timestamp) of frames in set-aside segments.
    let mut salvaged: Vec<(ShardKey, u64, u64)> = Vec::new();
    while let Some(&id) = seg_ids.last() {
        let path = segment_path(dir, id);
        let file = fs.open(&path)?;
        match segment::scan(&*file)? {
            Some(scan) if scan.segment_id == id => {
                active = Some((id, file, scan));
                break;
            }
            _ => {
                // A segment becomes writable only after its header and table
                // are synced, so one cut short while being created holds no
                // frame. If verified frames are found, they were acknowledged
                // and the header was damaged later.
                let found = segment::salvage(&*file)?;
                if !found.is_empty() {
                    let what = format!(
                        "{} has a damaged header or shard table and {} verified frames after it",
                        path.display(),
                        found.len()
                    );
                    if policy == OnCorruption::Refuse {
                        return Err(refuse(what));
                    }
                    tracing::error!(%what, "segment set aside; its records are lost");
                    damage_report.push(what);
                    salvaged.extend(found);
                } else {
                    tracing::warn!(
                        segment = id,
                        "segment without a valid header or shard table, set aside"
                    );
                }
                fs.rename(&path, &path.with_extension("seg.corrupt"))?;
                seg_ids.pop();
            }
        }
    }

    let mut index = Index {
        shards: HashMap::new(),
        segments: BTreeMap::new(),
        active_id: 0,
        active_file: None,
        sealed_ids: Arc::new(Vec::new()),
        sealed_epoch: 0,
        dropped: HashSet::new(),
    };

    let (mut active_id, mut active_file, mut scan, fresh) = match active {
        Some((id, file, scan)) => (id, file, scan, false),
        None => {
            let id = max_seen.map_or(0, |m| m + 1);
            let (file, _) = create_segment(dir, fs, id, 1, &[])?;
            let scan = segment::scan(&*file)?
                .ok_or_else(|| LogError::Corrupt("freshly written segment does not scan".into()))?;
            (id, file, scan, true)
        }
    };
    let mut lost_bytes = 0u64;
    if !scan.damage.is_empty() {
        let path = segment_path(dir, active_id);
        let what = describe(&path, &scan.damage);
        if policy == OnCorruption::Refuse {
            return Err(refuse(what));
        }
        tracing::error!(%what, "skipping damaged bytes of the active segment");
        keep_copy(fs, dir, &path, &*active_file)?;
        lost_bytes = scan.damage.iter().map(|d| d.bytes()).sum();
        damage_report.push(what);
    }
    // After damage (in the active segment or a set-aside one) the active
    // segment is sealed with the frames that verify and a new one starts
    // whose shard table puts every position above anything that may have
    // been acknowledged; later recoveries never rescan the damaged bytes.
    let restart = !scan.damage.is_empty() || !salvaged.is_empty();
    let mut old_table = Vec::new();
    if restart && !fresh {
        active_file.set_len(scan.valid_len)?;
        active_file.sync_data()?;
        let mut per_shard: BTreeMap<ShardKey, Vec<_>> = BTreeMap::new();
        for (k, loc) in &scan.frames {
            per_shard.entry(*k).or_default().push(*loc);
        }
        let per_shard: Vec<_> = per_shard.into_iter().collect();
        // Its shard table holds every shard's position when it was started.
        let enc = sidecar::encode(active_id, &per_shard, &scan.table);
        sidecar::write(fs, dir, &sidecar_path(dir, active_id), &enc.bytes)?;
        old_table = std::mem::take(&mut scan.table);
        active_id += 1;
    } else if scan.valid_len < scan.file_len
        && zeros_from(&*active_file, scan.valid_len, scan.file_len)?
    {
        // The preallocated, never written rest of the active segment.
        tracing::debug!(
            segment = active_id,
            valid_len = scan.valid_len,
            "active segment ends in its preallocated tail"
        );
    } else if scan.valid_len < scan.file_len {
        // Nothing verifies after this point: a write cut short, never
        // acknowledged.
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
    if idx_ids.contains(&active_id) && !restart {
        fs.remove_file(&active_sidecar)?;
    }

    let mut newest_sealed = None;
    for &id in seg_ids.iter().filter(|&&id| id < active_id) {
        if load_sealed(
            dir,
            fs,
            id,
            newest_sealed,
            &mut index,
            policy,
            &mut damage_report,
        )? {
            newest_sealed = Some(id);
        }
    }
    // The active segment's shard table holds every shard's position; the
    // newest sealed segment's end table is the same, read for safety.
    if let Some(id) = newest_sealed {
        let (detail, _) = sidecar::read_detail(fs, &sidecar_path(dir, id), id)?;
        for (key, end, ts) in detail.ends {
            let st = index.shards.entry(key).or_default();
            st.next_position = st.next_position.max(end);
            st.last_timestamp_ms = st.last_timestamp_ms.max(ts);
        }
    }

    if restart {
        for (key, end, ts) in salvaged.iter().chain(old_table.iter()) {
            let st = index.shards.entry(*key).or_default();
            st.next_position = st.next_position.max(*end);
            st.last_timestamp_ms = st.last_timestamp_ms.max(*ts);
        }
        // Damaged bytes may have held records of any shard past its last
        // intact frame; no shard can have had more records there than this,
        // so skipping this far never reissues a position.
        let bump = lost_bytes / format::RECORD_HEADER_BYTES as u64 + 1;
        for st in index.shards.values_mut() {
            st.next_position += bump;
        }
        let table = index.shard_table();
        let (file, _) = create_segment(dir, fs, active_id, scan.last_commit_seq + 1, &table)?;
        active_file = file;
        scan = segment::scan(&*active_file)?
            .ok_or_else(|| LogError::Corrupt("freshly written segment does not scan".into()))?;
    }
    for (key, next, ts) in &scan.table {
        let st = index.shards.entry(*key).or_default();
        st.next_position = st.next_position.max(*next);
        st.last_timestamp_ms = st.last_timestamp_ms.max(*ts);
    }
    let mut streams: HashMap<u64, StreamAgg> = HashMap::new();
    for (key, loc) in &scan.frames {
        let st = index.shards.entry(*key).or_default();
        st.next_position = loc.end_position();
        st.last_timestamp_ms = st.last_timestamp_ms.max(loc.timestamp_ms);
        st.active.push(*loc);
        streams.entry(key.stream_uid).or_default().add(
            u64::from(loc.len),
            loc.timestamp_ms,
            loc.timestamp_ms,
        );
    }
    index.segments.insert(
        active_id,
        SegmentMeta {
            bytes: scan.valid_len,
            streams,
        },
    );
    index.active_id = active_id;
    index.active_file = Some(active_file.clone());
    index.sealed_changed();
    Ok(Recovered {
        index,
        active_file,
        active_len: scan.valid_len,
        next_commit_seq: scan.last_commit_seq + 1,
        damage: damage_report,
        retired,
    })
}

/// Loads a sealed segment's first level (per-stream aggregates) from its
/// sidecar, rewriting an older sidecar as version 3, and rebuilding it by
/// scanning the segment if it is missing or damaged. `prev` is the sealed
/// segment loaded before it, whose end table an older or rebuilt sidecar
/// starts from. Returns false if the segment was set aside. Keeps no file open.
fn load_sealed(
    dir: &Path,
    fs: &dyn Fs,
    id: u64,
    prev: Option<u64>,
    index: &mut Index,
    policy: OnCorruption,
    report: &mut Vec<String>,
) -> Result<bool, LogError> {
    let path = segment_path(dir, id);
    let idx_path = sidecar_path(dir, id);
    let prev_ends = || -> Result<Vec<(ShardKey, u64, u64)>, LogError> {
        match prev {
            Some(p) => Ok(sidecar::read_detail(fs, &sidecar_path(dir, p), p)?.0.ends),
            None => Ok(Vec::new()),
        }
    };
    let streams = match sidecar::read_streams(fs, &idx_path, id) {
        Ok(Some(s)) => s,
        Ok(None) => {
            // An older sidecar: the same spans and frame lists, rewritten
            // with the stream aggregates and end table of version 3.
            let (detail, version) = sidecar::read_detail(fs, &idx_path, id)?;
            let mut per_shard = Vec::with_capacity(detail.spans.len());
            for (k, span) in &detail.spans {
                per_shard.push((*k, sidecar::read_frames(fs, &idx_path, span)?));
            }
            let enc = sidecar::encode(id, &per_shard, &prev_ends()?);
            sidecar::write(fs, dir, &idx_path, &enc.bytes)?;
            tracing::info!(
                segment = id,
                from = version,
                "sidecar rewritten as version 3"
            );
            enc.streams
        }
        Err(e) => {
            tracing::warn!(segment = id, error = %e, "rebuilding sidecar");
            let file = fs.open(&path)?;
            let Some(scan) = segment::scan(&*file)? else {
                let what = format!(
                    "sealed segment {} has no valid header or shard table",
                    path.display()
                );
                if policy == OnCorruption::Refuse {
                    return Err(refuse(what));
                }
                tracing::error!(%what, "sealed segment set aside, its records are lost");
                fs.rename(&path, &path.with_extension("seg.corrupt"))?;
                report.push(what);
                return Ok(false);
            };
            // A sealed segment ends at its last frame: anything short of
            // that is damage, whether or not frames follow it.
            if !scan.damage.is_empty() || scan.valid_len < scan.file_len {
                let mut what = if scan.damage.is_empty() {
                    format!("{} is damaged", path.display())
                } else {
                    describe(&path, &scan.damage)
                };
                if scan.valid_len < scan.file_len {
                    what.push_str(&format!(
                        "; bytes {}..{} at its end do not verify ({})",
                        scan.valid_len,
                        scan.file_len,
                        scan.stop_reason.as_deref().unwrap_or("")
                    ));
                }
                if policy == OnCorruption::Refuse {
                    return Err(refuse(what));
                }
                tracing::error!(%what, "rebuilding the sidecar from the frames that verify");
                keep_copy(fs, dir, &path, &*file)?;
                report.push(what);
            }
            let mut per_shard: BTreeMap<ShardKey, Vec<_>> = BTreeMap::new();
            for (k, loc) in scan.frames {
                per_shard.entry(k).or_default().push(loc);
            }
            let per_shard: Vec<_> = per_shard.into_iter().collect();
            let ends = sidecar::merge_ends([&prev_ends()?[..], &scan.table[..]]);
            let enc = sidecar::encode(id, &per_shard, &ends);
            sidecar::write(fs, dir, &idx_path, &enc.bytes)?;
            enc.streams
        }
    };
    let bytes = fs.open(&path)?.len()?;
    index.segments.insert(
        id,
        SegmentMeta {
            bytes,
            streams: streams.into_iter().collect(),
        },
    );
    Ok(true)
}

/// Finds segment ids below the newest segment that are neither present nor
/// retired on purpose (by retention or compaction): segment files removed
/// behind the log's back. Returns the record of retired ids, updated.
fn check_gaps(
    dir: &Path,
    fs: &dyn Fs,
    seg_ids: &[u64],
    set_aside: &[u64],
    replaced: &[(u64, u64)],
    policy: OnCorruption,
    report: &mut Vec<String>,
) -> Result<Retired, LogError> {
    let mut present: Vec<u64> = seg_ids.iter().chain(set_aside).copied().collect();
    present.sort_unstable();
    present.dedup();
    // Gaps between present ids (and below the first), as ranges.
    let mut gaps = Vec::new();
    let mut next = 0u64;
    for id in &present {
        if *id > next {
            gaps.push((next, *id));
        }
        next = id + 1;
    }
    let mut retired = match Retired::load(fs, dir)? {
        Some(r) => r,
        None => {
            // A log from before the record existed (or a damaged record):
            // every gap counts as intended from now on.
            let mut r = Retired::default();
            for (a, b) in &gaps {
                r.insert_range(*a, *b);
            }
            r
        }
    };
    for (a, b) in replaced {
        retired.insert_range(*a, *b);
    }
    let missing: Vec<(u64, u64)> = gaps
        .iter()
        .flat_map(|(a, b)| retired.uncovered(*a, *b))
        .collect();
    if !missing.is_empty() {
        let ids: Vec<String> = missing
            .iter()
            .map(|(a, b)| {
                if b - a == 1 {
                    format!("{a}")
                } else {
                    format!("{a}..{}", b - 1)
                }
            })
            .collect();
        let what = format!(
            "segment files with ids {} are missing from {} (retention and compaction did not \
             remove them); the records they held are lost",
            ids.join(", "),
            dir.display()
        );
        if policy == OnCorruption::Refuse {
            return Err(refuse(what));
        }
        tracing::error!(%what, "going on without them");
        report.push(what);
        for (a, b) in &missing {
            retired.insert_range(*a, *b);
        }
    }
    retired.store(fs, dir)?;
    Ok(retired)
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
