//! Sidecar index files (`<id>.idx`), written once when a segment is sealed.
//! The per-stream aggregates are read at start; spans, the shard end table
//! and frame lists are read on demand (`index.rs`).

use crate::format::{le_u32, le_u64, FORMAT_VERSION_MIN};
use crate::fs::{read_exact_at, Fs};
use crate::index::{FrameLoc, SealedSpan, SegmentDetail, StreamAgg};
use crate::{LogError, ShardKey};
use std::collections::BTreeMap;
use std::path::Path;

pub const SIDECAR_MAGIC: &[u8; 8] = b"RNLIDX\0\x01";
/// Version 3 added the stream aggregates and the shard end table; versions
/// 1 and 2 are read and rewritten as version 3 by recovery.
pub const SIDECAR_VERSION: u32 = 3;
pub const SIDECAR_HEADER_BYTES: usize = 32;
pub const V3_HEADER_BYTES: usize = 64;
pub const STREAM_ENTRY_BYTES: usize = 32;
pub const SUMMARY_ENTRY_BYTES: usize = 64;
pub const END_ENTRY_BYTES: usize = 32;
pub const FRAME_ENTRY_BYTES: usize = 32;

/// What a sidecar holds besides the frame lists.
pub struct Encoded {
    pub bytes: Vec<u8>,
    pub spans: Vec<(ShardKey, SealedSpan)>,
    pub ends: Vec<(ShardKey, u64, u64)>,
    pub streams: Vec<(u64, StreamAgg)>,
}

/// Merges shard end tables (and span ends) taking the larger of each:
/// the end table of a segment from the one before it, its start table and
/// its own spans.
pub fn merge_ends<'a>(
    parts: impl IntoIterator<Item = &'a [(ShardKey, u64, u64)]>,
) -> Vec<(ShardKey, u64, u64)> {
    let mut m: BTreeMap<ShardKey, (u64, u64)> = BTreeMap::new();
    for part in parts {
        for (k, n, t) in part {
            let e = m.entry(*k).or_default();
            e.0 = e.0.max(*n);
            e.1 = e.1.max(*t);
        }
    }
    m.into_iter().map(|(k, (n, t))| (k, n, t)).collect()
}

/// Encodes a version 3 sidecar for `segment_id` from each shard's frames
/// (sorted by shard, each sorted by position) and the shard end table it
/// was sealed with (the spans' own ends are merged in).
pub fn encode(
    segment_id: u64,
    shards: &[(ShardKey, Vec<FrameLoc>)],
    ends: &[(ShardKey, u64, u64)],
) -> Encoded {
    let shards: Vec<&(ShardKey, Vec<FrameLoc>)> =
        shards.iter().filter(|(_, f)| !f.is_empty()).collect();
    let span_ends: Vec<(ShardKey, u64, u64)> = shards
        .iter()
        .map(|(k, f)| {
            (
                *k,
                f[f.len() - 1].end_position(),
                f[f.len() - 1].timestamp_ms,
            )
        })
        .collect();
    let ends = merge_ends([ends, &span_ends[..]]);
    // Stream aggregates need the spans; their count is known up front.
    let mut streams: BTreeMap<u64, StreamAgg> = BTreeMap::new();
    for (k, f) in &shards {
        streams.entry(k.stream_uid).or_default().add(
            f.iter().map(|x| u64::from(x.len)).sum(),
            f[0].timestamp_ms,
            f[f.len() - 1].timestamp_ms,
        );
    }
    let streams: Vec<(u64, StreamAgg)> = streams.into_iter().collect();
    let streams_at = V3_HEADER_BYTES;
    let spans_at = streams_at + streams.len() * STREAM_ENTRY_BYTES;
    let ends_at = spans_at + shards.len() * SUMMARY_ENTRY_BYTES;
    let frames_at = ends_at + ends.len() * END_ENTRY_BYTES;
    let frames_total: usize = shards.iter().map(|(_, f)| f.len()).sum();
    let mut out = vec![0u8; frames_at];
    out.reserve(frames_total * FRAME_ENTRY_BYTES);
    for (i, (uid, a)) in streams.iter().enumerate() {
        let e = &mut out[streams_at + i * STREAM_ENTRY_BYTES..][..STREAM_ENTRY_BYTES];
        e[0..8].copy_from_slice(&uid.to_le_bytes());
        e[8..16].copy_from_slice(&a.bytes.to_le_bytes());
        e[16..24].copy_from_slice(&a.first_ts.to_le_bytes());
        e[24..32].copy_from_slice(&a.last_ts.to_le_bytes());
    }
    for (i, (k, n, t)) in ends.iter().enumerate() {
        let e = &mut out[ends_at + i * END_ENTRY_BYTES..][..END_ENTRY_BYTES];
        e[0..8].copy_from_slice(&k.stream_uid.to_le_bytes());
        e[8..12].copy_from_slice(&k.shard_index.to_le_bytes());
        e[16..24].copy_from_slice(&n.to_le_bytes());
        e[24..32].copy_from_slice(&t.to_le_bytes());
    }
    let mut spans = Vec::with_capacity(shards.len());
    for (i, (key, frames)) in shards.iter().enumerate() {
        let frames_offset = out.len() as u64;
        let start = out.len();
        encode_frames(&mut out, frames);
        let frames_crc = crc32c::crc32c(&out[start..]);
        let (first, last) = (frames[0], frames[frames.len() - 1]);
        let span = SealedSpan {
            segment_id,
            first_position: first.first_position,
            end_position: last.end_position(),
            first_timestamp_ms: first.timestamp_ms,
            last_timestamp_ms: last.timestamp_ms,
            frames_offset,
            frame_count: frames.len() as u32,
            frames_crc,
            bytes: u32::try_from(frames.iter().map(|f| u64::from(f.len)).sum::<u64>()).unwrap_or(0),
        };
        let e = &mut out[spans_at + i * SUMMARY_ENTRY_BYTES..][..SUMMARY_ENTRY_BYTES];
        encode_span(e, key, &span);
        spans.push((*key, span));
    }
    let crc = |r: std::ops::Range<usize>| crc32c::crc32c(&out[r]);
    let (streams_crc, spans_crc, ends_crc) = (
        crc(streams_at..spans_at),
        crc(spans_at..ends_at),
        crc(ends_at..frames_at),
    );
    out[0..8].copy_from_slice(SIDECAR_MAGIC);
    out[8..12].copy_from_slice(&SIDECAR_VERSION.to_le_bytes());
    out[12..16].copy_from_slice(&(shards.len() as u32).to_le_bytes());
    out[16..24].copy_from_slice(&segment_id.to_le_bytes());
    out[24..28].copy_from_slice(&spans_crc.to_le_bytes());
    let header_crc = crc32c::crc32c(&out[0..28]);
    out[28..32].copy_from_slice(&header_crc.to_le_bytes());
    out[32..36].copy_from_slice(&(streams.len() as u32).to_le_bytes());
    out[36..40].copy_from_slice(&(ends.len() as u32).to_le_bytes());
    out[40..44].copy_from_slice(&streams_crc.to_le_bytes());
    out[44..48].copy_from_slice(&ends_crc.to_le_bytes());
    let ext_crc = crc32c::crc32c(&out[32..60]);
    out[60..64].copy_from_slice(&ext_crc.to_le_bytes());
    Encoded {
        bytes: out,
        spans,
        ends,
        streams,
    }
}

/// Appends a frame list (32 B per frame).
pub(crate) fn encode_frames(out: &mut Vec<u8>, frames: &[FrameLoc]) {
    for f in frames {
        out.extend_from_slice(&f.first_position.to_le_bytes());
        out.extend_from_slice(&f.record_count.to_le_bytes());
        out.extend_from_slice(&f.len.to_le_bytes());
        out.extend_from_slice(&f.offset.to_le_bytes());
        out.extend_from_slice(&f.timestamp_ms.to_le_bytes());
    }
}

pub(crate) fn encode_span(e: &mut [u8], key: &ShardKey, span: &SealedSpan) {
    e[0..8].copy_from_slice(&key.stream_uid.to_le_bytes());
    e[8..12].copy_from_slice(&key.shard_index.to_le_bytes());
    e[12..16].copy_from_slice(&span.frame_count.to_le_bytes());
    e[16..24].copy_from_slice(&span.first_position.to_le_bytes());
    e[24..32].copy_from_slice(&span.end_position.to_le_bytes());
    e[32..40].copy_from_slice(&span.first_timestamp_ms.to_le_bytes());
    e[40..48].copy_from_slice(&span.last_timestamp_ms.to_le_bytes());
    e[48..56].copy_from_slice(&span.frames_offset.to_le_bytes());
    e[56..60].copy_from_slice(&span.frames_crc.to_le_bytes());
    e[60..64].copy_from_slice(&span.bytes.to_le_bytes());
}

/// Writes a sidecar durably: temp file, fsync, rename, fsync directory.
pub fn write(fs: &dyn Fs, dir: &Path, path: &Path, bytes: &[u8]) -> Result<(), LogError> {
    let tmp = path.with_extension("idx.tmp");
    let f = fs.create(&tmp)?;
    f.write_all_at(bytes, 0)?;
    f.sync_data()?;
    drop(f);
    fs.rename(&tmp, path)?;
    fs.sync_dir(dir)?;
    Ok(())
}

fn corrupt(path: &Path, what: &str) -> LogError {
    LogError::Corrupt(format!("sidecar {} {what}", path.display()))
}

/// A sidecar's checked header.
struct Header {
    version: u32,
    spans: usize,
    spans_crc: u32,
    /// Version 3 only: (stream count, end count, streams crc, ends crc).
    v3: Option<(usize, usize, u32, u32)>,
    len: u64,
}

fn read_header(
    f: &dyn crate::fs::FsFile,
    path: &Path,
    segment_id: u64,
) -> Result<Header, LogError> {
    let mut h = [0u8; V3_HEADER_BYTES];
    let len = f.len()?;
    let n = if len >= V3_HEADER_BYTES as u64 {
        V3_HEADER_BYTES
    } else {
        SIDECAR_HEADER_BYTES
    };
    read_exact_at(f, &mut h[..n], 0)?;
    if &h[0..8] != SIDECAR_MAGIC || crc32c::crc32c(&h[0..28]) != le_u32(&h[28..32]) {
        return Err(corrupt(path, "has a bad header"));
    }
    let version = le_u32(&h[8..12]);
    if !(FORMAT_VERSION_MIN..=SIDECAR_VERSION).contains(&version)
        || le_u64(&h[16..24]) != segment_id
    {
        return Err(corrupt(path, "has the wrong version or id"));
    }
    let v3 = if version >= 3 {
        if n < V3_HEADER_BYTES || crc32c::crc32c(&h[32..60]) != le_u32(&h[60..64]) {
            return Err(corrupt(path, "has a bad header"));
        }
        Some((
            le_u32(&h[32..36]) as usize,
            le_u32(&h[36..40]) as usize,
            le_u32(&h[40..44]),
            le_u32(&h[44..48]),
        ))
    } else {
        None
    };
    Ok(Header {
        version,
        spans: le_u32(&h[12..16]) as usize,
        spans_crc: le_u32(&h[24..28]),
        v3,
        len,
    })
}

impl Header {
    fn streams_at(&self) -> usize {
        V3_HEADER_BYTES
    }
    fn spans_at(&self) -> usize {
        match self.v3 {
            Some((streams, ..)) => V3_HEADER_BYTES + streams * STREAM_ENTRY_BYTES,
            None => SIDECAR_HEADER_BYTES,
        }
    }
    fn ends_at(&self) -> usize {
        self.spans_at() + self.spans * SUMMARY_ENTRY_BYTES
    }
}

fn read_section(
    f: &dyn crate::fs::FsFile,
    path: &Path,
    h: &Header,
    at: usize,
    len: usize,
    crc: u32,
) -> Result<Vec<u8>, LogError> {
    if (at + len) as u64 > h.len {
        return Err(corrupt(path, "is truncated"));
    }
    let mut body = vec![0u8; len];
    read_exact_at(f, &mut body, at as u64)?;
    if crc32c::crc32c(&body) != crc {
        return Err(corrupt(path, "summary checksum mismatch"));
    }
    Ok(body)
}

/// The first level of a version 3 sidecar: per stream, bytes and first and
/// last timestamps. `None` for an older sidecar (see `read_detail`).
pub fn read_streams(
    fs: &dyn Fs,
    path: &Path,
    segment_id: u64,
) -> Result<Option<Vec<(u64, StreamAgg)>>, LogError> {
    let f = fs.open(path)?;
    let h = read_header(&*f, path, segment_id)?;
    let Some((streams, _, crc, _)) = h.v3 else {
        return Ok(None);
    };
    let body = read_section(
        &*f,
        path,
        &h,
        h.streams_at(),
        streams * STREAM_ENTRY_BYTES,
        crc,
    )?;
    Ok(Some(
        body.chunks_exact(STREAM_ENTRY_BYTES)
            .map(|e| {
                (
                    le_u64(&e[0..8]),
                    StreamAgg {
                        bytes: le_u64(&e[8..16]),
                        first_ts: le_u64(&e[16..24]),
                        last_ts: le_u64(&e[24..32]),
                    },
                )
            })
            .collect(),
    ))
}

/// The second level: spans and shard end table. For a sidecar older than
/// version 3 the end table holds only the spans' own ends, and the version
/// is returned so that recovery can rewrite it.
pub fn read_detail(
    fs: &dyn Fs,
    path: &Path,
    segment_id: u64,
) -> Result<(SegmentDetail, u32), LogError> {
    let f = fs.open(path)?;
    let h = read_header(&*f, path, segment_id)?;
    let body = read_section(
        &*f,
        path,
        &h,
        h.spans_at(),
        h.spans * SUMMARY_ENTRY_BYTES,
        h.spans_crc,
    )?;
    let mut spans = Vec::with_capacity(h.spans);
    for e in body.chunks_exact(SUMMARY_ENTRY_BYTES) {
        let key = ShardKey {
            stream_uid: le_u64(&e[0..8]),
            shard_index: le_u32(&e[8..12]),
        };
        let span = SealedSpan {
            segment_id,
            frame_count: le_u32(&e[12..16]),
            first_position: le_u64(&e[16..24]),
            end_position: le_u64(&e[24..32]),
            first_timestamp_ms: le_u64(&e[32..40]),
            last_timestamp_ms: le_u64(&e[40..48]),
            frames_offset: le_u64(&e[48..56]),
            frames_crc: le_u32(&e[56..60]),
            bytes: le_u32(&e[60..64]),
        };
        let frames_end =
            span.frames_offset + u64::from(span.frame_count) * FRAME_ENTRY_BYTES as u64;
        if span.frame_count == 0 || frames_end > h.len || span.end_position < span.first_position {
            return Err(corrupt(path, "has an impossible entry"));
        }
        spans.push((key, span));
    }
    spans.sort_unstable_by_key(|(k, _)| *k);
    let ends = match h.v3 {
        Some((_, n, _, crc)) => {
            let body = read_section(&*f, path, &h, h.ends_at(), n * END_ENTRY_BYTES, crc)?;
            body.chunks_exact(END_ENTRY_BYTES)
                .map(|e| {
                    (
                        ShardKey {
                            stream_uid: le_u64(&e[0..8]),
                            shard_index: le_u32(&e[8..12]),
                        },
                        le_u64(&e[16..24]),
                        le_u64(&e[24..32]),
                    )
                })
                .collect()
        }
        None => spans
            .iter()
            .map(|(k, s)| (*k, s.end_position, s.last_timestamp_ms))
            .collect(),
    };
    Ok((SegmentDetail { spans, ends }, h.version))
}

/// Reads one shard's frame list from a sidecar, verifying its checksum.
pub fn read_frames(fs: &dyn Fs, path: &Path, span: &SealedSpan) -> Result<Vec<FrameLoc>, LogError> {
    let f = fs.open(path)?;
    let mut buf = vec![0u8; span.frame_count as usize * FRAME_ENTRY_BYTES];
    read_exact_at(&*f, &mut buf, span.frames_offset)?;
    if crc32c::crc32c(&buf) != span.frames_crc {
        return Err(LogError::Corrupt(format!(
            "sidecar {} frame list checksum mismatch",
            path.display()
        )));
    }
    Ok(buf
        .chunks_exact(FRAME_ENTRY_BYTES)
        .map(|e| FrameLoc {
            first_position: le_u64(&e[0..8]),
            record_count: le_u32(&e[8..12]),
            len: le_u32(&e[12..16]),
            offset: le_u64(&e[16..24]),
            timestamp_ms: le_u64(&e[24..32]),
        })
        .collect())
}
