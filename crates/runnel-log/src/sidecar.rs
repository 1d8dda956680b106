//! Sidecar index files (`<id>.idx`), written once when a segment is sealed.
//! The summary part is read at start; a shard's frame list is read on demand.

use crate::format::{le_u32, le_u64, FORMAT_VERSION, FORMAT_VERSION_MIN};
use crate::fs::{read_exact_at, Fs};
use crate::index::{FrameLoc, SealedSpan};
use crate::{LogError, ShardKey};
use std::path::Path;

pub const SIDECAR_MAGIC: &[u8; 8] = b"RNLIDX\0\x01";
pub const SIDECAR_HEADER_BYTES: usize = 32;
pub const SUMMARY_ENTRY_BYTES: usize = 64;
pub const FRAME_ENTRY_BYTES: usize = 32;

/// Encodes a sidecar for `segment_id` from each shard's frames (sorted by
/// position); returns the file bytes and the spans it describes.
pub fn encode(
    segment_id: u64,
    shards: &[(ShardKey, Vec<FrameLoc>)],
) -> (Vec<u8>, Vec<(ShardKey, SealedSpan)>) {
    let shards: Vec<&(ShardKey, Vec<FrameLoc>)> =
        shards.iter().filter(|(_, f)| !f.is_empty()).collect();
    let frames_total: usize = shards.iter().map(|(_, f)| f.len()).sum();
    let summary_bytes = shards.len() * SUMMARY_ENTRY_BYTES;
    let mut out = vec![0u8; SIDECAR_HEADER_BYTES + summary_bytes];
    out.reserve(frames_total * FRAME_ENTRY_BYTES);
    let mut spans = Vec::with_capacity(shards.len());
    for (i, (key, frames)) in shards.iter().enumerate() {
        let frames_offset = out.len() as u64;
        let start = out.len();
        for f in frames {
            out.extend_from_slice(&f.first_position.to_le_bytes());
            out.extend_from_slice(&f.record_count.to_le_bytes());
            out.extend_from_slice(&f.len.to_le_bytes());
            out.extend_from_slice(&f.offset.to_le_bytes());
            out.extend_from_slice(&f.timestamp_ms.to_le_bytes());
        }
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
        let e = &mut out[SIDECAR_HEADER_BYTES + i * SUMMARY_ENTRY_BYTES..][..SUMMARY_ENTRY_BYTES];
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
        spans.push((*key, span));
    }
    let summary_crc =
        crc32c::crc32c(&out[SIDECAR_HEADER_BYTES..SIDECAR_HEADER_BYTES + summary_bytes]);
    out[0..8].copy_from_slice(SIDECAR_MAGIC);
    out[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    out[12..16].copy_from_slice(&(shards.len() as u32).to_le_bytes());
    out[16..24].copy_from_slice(&segment_id.to_le_bytes());
    out[24..28].copy_from_slice(&summary_crc.to_le_bytes());
    let header_crc = crc32c::crc32c(&out[0..28]);
    out[28..32].copy_from_slice(&header_crc.to_le_bytes());
    (out, spans)
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

/// Reads and checks the header and summary of a sidecar.
pub fn read_summary(
    fs: &dyn Fs,
    path: &Path,
    segment_id: u64,
) -> Result<Vec<(ShardKey, SealedSpan)>, LogError> {
    let f = fs.open(path)?;
    let mut h = [0u8; SIDECAR_HEADER_BYTES];
    read_exact_at(&*f, &mut h, 0)?;
    if &h[0..8] != SIDECAR_MAGIC || crc32c::crc32c(&h[0..28]) != le_u32(&h[28..32]) {
        return Err(LogError::Corrupt(format!(
            "sidecar {} has a bad header",
            path.display()
        )));
    }
    let version = le_u32(&h[8..12]);
    if !(FORMAT_VERSION_MIN..=FORMAT_VERSION).contains(&version) || le_u64(&h[16..24]) != segment_id
    {
        return Err(LogError::Corrupt(format!(
            "sidecar {} has the wrong version or id",
            path.display()
        )));
    }
    let n = le_u32(&h[12..16]) as usize;
    let len = f.len()?;
    if (SIDECAR_HEADER_BYTES + n * SUMMARY_ENTRY_BYTES) as u64 > len {
        return Err(LogError::Corrupt(format!(
            "sidecar {} is truncated",
            path.display()
        )));
    }
    let mut body = vec![0u8; n * SUMMARY_ENTRY_BYTES];
    read_exact_at(&*f, &mut body, SIDECAR_HEADER_BYTES as u64)?;
    if crc32c::crc32c(&body) != le_u32(&h[24..28]) {
        return Err(LogError::Corrupt(format!(
            "sidecar {} summary checksum mismatch",
            path.display()
        )));
    }
    let mut out = Vec::with_capacity(n);
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
        if span.frame_count == 0 || frames_end > len || span.end_position < span.first_position {
            return Err(LogError::Corrupt(format!(
                "sidecar {} has an impossible entry",
                path.display()
            )));
        }
        out.push((key, span));
    }
    Ok(out)
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
