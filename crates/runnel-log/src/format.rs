//! Byte layouts of segment files and frames (see the crate header for the
//! prose description). Everything is little-endian.

use crate::{LogError, ShardKey};
use bytes::Bytes;

/// Version 2 (compaction): a segment header may name the segments it
/// replaces (bytes 12..16) and a sidecar summary entry records the shard's
/// frame bytes (bytes 60..64). Version 1 files read as before (both zero).
pub const FORMAT_VERSION: u32 = 2;
/// Oldest version still read.
pub const FORMAT_VERSION_MIN: u32 = 1;
pub const SEGMENT_MAGIC: &[u8; 8] = b"RNLSEG\0\x01";
pub const SEGMENT_HEADER_BYTES: usize = 32;
pub const FRAME_HEADER_BYTES: usize = 56;
pub const RECORD_HEADER_BYTES: usize = 8;
pub const SHARD_TABLE_ENTRY_BYTES: usize = 28;
/// A frame never exceeds this; guards against a corrupt length field
/// making recovery allocate gigabytes.
pub const FRAME_BYTES_MAX: usize = 256 * 1024 * 1024;

pub const KIND_RECORDS: u8 = 1;
pub const KIND_SHARD_TABLE: u8 = 2;
pub const FLAG_COMMIT_END: u8 = 1;

const _: () = assert!(FRAME_HEADER_BYTES & 7 == 0);
const _: () = assert!(SEGMENT_HEADER_BYTES & 7 == 0);

pub fn segment_header(segment_id: u64) -> [u8; SEGMENT_HEADER_BYTES] {
    compacted_segment_header(segment_id, 0)
}

/// The header of a segment written by compaction: it holds the live frames
/// of segments `segment_id - replaces ..= segment_id`, and once it exists
/// (under its final name) the older ones in that range are obsolete.
pub fn compacted_segment_header(segment_id: u64, replaces: u32) -> [u8; SEGMENT_HEADER_BYTES] {
    let mut h = [0u8; SEGMENT_HEADER_BYTES];
    h[0..8].copy_from_slice(SEGMENT_MAGIC);
    h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h[12..16].copy_from_slice(&replaces.to_le_bytes());
    h[16..24].copy_from_slice(&segment_id.to_le_bytes());
    let crc = crc32c::crc32c(&h[0..28]);
    h[28..32].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Returns the segment id stored in a header, or `None` if it is not a valid header.
pub fn parse_segment_header(h: &[u8]) -> Option<u64> {
    parse_segment_header_replaces(h).map(|(id, _)| id)
}

/// The segment id and how many older ids it replaces (0 unless compacted).
pub fn parse_segment_header_replaces(h: &[u8]) -> Option<(u64, u32)> {
    if h.len() < SEGMENT_HEADER_BYTES || &h[0..8] != SEGMENT_MAGIC {
        return None;
    }
    let version = le_u32(&h[8..12]);
    if crc32c::crc32c(&h[0..28]) != le_u32(&h[28..32])
        || !(FORMAT_VERSION_MIN..=FORMAT_VERSION).contains(&version)
    {
        return None;
    }
    Some((le_u64(&h[16..24]), le_u32(&h[12..16])))
}

/// The fixed part of every frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    pub frame_bytes: u32,
    pub kind: u8,
    pub flags: u8,
    pub shard: ShardKey,
    pub commit_seq: u64,
    pub first_position: u64,
    pub timestamp_ms: u64,
    pub record_count: u32,
}

impl FrameHeader {
    pub fn commit_end(&self) -> bool {
        self.flags & FLAG_COMMIT_END != 0
    }
}

/// Appends one records frame to `buf`; returns its length in bytes.
pub fn encode_records_frame(
    buf: &mut Vec<u8>,
    header: &FrameHeader,
    records: &[crate::RecordIn],
) -> u32 {
    let start = buf.len();
    let payload: usize = records
        .iter()
        .map(|r| RECORD_HEADER_BYTES + r.partition_key.len() + r.data.len())
        .sum();
    let total = FRAME_HEADER_BYTES + payload;
    assert!(
        total <= FRAME_BYTES_MAX,
        "frame of {total} bytes exceeds the limit"
    );
    buf.reserve(total);
    write_header(buf, header, total as u32);
    for r in records {
        buf.extend_from_slice(&(r.partition_key.len() as u32).to_le_bytes());
        buf.extend_from_slice(&(r.data.len() as u32).to_le_bytes());
        buf.extend_from_slice(r.partition_key.as_bytes());
        buf.extend_from_slice(&r.data);
    }
    seal_crc(&mut buf[start..]);
    total as u32
}

/// Appends a shard-table frame (per-shard next position and last timestamp).
pub fn encode_shard_table(buf: &mut Vec<u8>, commit_seq: u64, entries: &[(ShardKey, u64, u64)]) {
    let start = buf.len();
    let total = FRAME_HEADER_BYTES + entries.len() * SHARD_TABLE_ENTRY_BYTES;
    let header = FrameHeader {
        frame_bytes: total as u32,
        kind: KIND_SHARD_TABLE,
        flags: FLAG_COMMIT_END,
        shard: ShardKey {
            stream_uid: 0,
            shard_index: 0,
        },
        commit_seq,
        first_position: 0,
        timestamp_ms: 0,
        record_count: entries.len() as u32,
    };
    write_header(buf, &header, total as u32);
    for (key, next, ts) in entries {
        buf.extend_from_slice(&key.stream_uid.to_le_bytes());
        buf.extend_from_slice(&key.shard_index.to_le_bytes());
        buf.extend_from_slice(&next.to_le_bytes());
        buf.extend_from_slice(&ts.to_le_bytes());
    }
    seal_crc(&mut buf[start..]);
}

fn write_header(buf: &mut Vec<u8>, h: &FrameHeader, total: u32) {
    buf.extend_from_slice(&0u32.to_le_bytes()); // crc, filled by seal_crc
    buf.extend_from_slice(&total.to_le_bytes());
    buf.push(h.kind);
    buf.push(h.flags);
    buf.extend_from_slice(&[0u8; 2]);
    buf.extend_from_slice(&h.record_count.to_le_bytes());
    buf.extend_from_slice(&h.shard.stream_uid.to_le_bytes());
    buf.extend_from_slice(&h.shard.shard_index.to_le_bytes());
    buf.extend_from_slice(&[0u8; 4]);
    buf.extend_from_slice(&h.commit_seq.to_le_bytes());
    buf.extend_from_slice(&h.first_position.to_le_bytes());
    buf.extend_from_slice(&h.timestamp_ms.to_le_bytes());
}

/// Marks a checked frame as the end of its own commit and recomputes its
/// checksum (compaction copies frames one by one, dropping their neighbours).
pub fn mark_commit_end(frame: &mut [u8]) {
    frame[9] |= FLAG_COMMIT_END;
    seal_crc(frame);
}

fn seal_crc(frame: &mut [u8]) {
    let crc = crc32c::crc32c(&frame[4..]);
    frame[0..4].copy_from_slice(&crc.to_le_bytes());
}

/// Reads the length field of a frame header prefix (first 8 bytes).
pub fn peek_frame_len(prefix: &[u8]) -> usize {
    le_u32(&prefix[4..8]) as usize
}

/// Verifies the checksum of a complete frame and decodes its header.
pub fn check_frame(frame: &[u8]) -> Result<FrameHeader, LogError> {
    if frame.len() < FRAME_HEADER_BYTES {
        return Err(LogError::Corrupt("frame shorter than its header".into()));
    }
    let total = peek_frame_len(frame);
    if total != frame.len() {
        return Err(LogError::Corrupt(format!(
            "frame length field {total} does not match {} bytes read",
            frame.len()
        )));
    }
    if crc32c::crc32c(&frame[4..]) != le_u32(&frame[0..4]) {
        return Err(LogError::Corrupt("frame checksum mismatch".into()));
    }
    Ok(FrameHeader {
        frame_bytes: total as u32,
        kind: frame[8],
        flags: frame[9],
        record_count: le_u32(&frame[12..16]),
        shard: ShardKey {
            stream_uid: le_u64(&frame[16..24]),
            shard_index: le_u32(&frame[24..28]),
        },
        commit_seq: le_u64(&frame[32..40]),
        first_position: le_u64(&frame[40..48]),
        timestamp_ms: le_u64(&frame[48..56]),
    })
}

/// One decoded record of a frame that already passed `check_frame`.
pub struct DecodedRecord {
    pub partition_key: String,
    pub data: Bytes,
}

/// Decodes the records of a checked records frame. `frame` is shared so
/// record data can be sliced without copying.
pub fn decode_records(frame: &Bytes, header: &FrameHeader) -> Result<Vec<DecodedRecord>, LogError> {
    let mut out = Vec::with_capacity(header.record_count as usize);
    let mut at = FRAME_HEADER_BYTES;
    for _ in 0..header.record_count {
        if at + RECORD_HEADER_BYTES > frame.len() {
            return Err(LogError::Corrupt("record header past end of frame".into()));
        }
        let key_len = le_u32(&frame[at..at + 4]) as usize;
        let data_len = le_u32(&frame[at + 4..at + 8]) as usize;
        at += RECORD_HEADER_BYTES;
        if at + key_len + data_len > frame.len() {
            return Err(LogError::Corrupt("record body past end of frame".into()));
        }
        let partition_key = std::str::from_utf8(&frame[at..at + key_len])
            .map_err(|_| LogError::Corrupt("partition key is not utf-8".into()))?
            .to_owned();
        at += key_len;
        let data = frame.slice(at..at + data_len);
        at += data_len;
        out.push(DecodedRecord {
            partition_key,
            data,
        });
    }
    if at != frame.len() {
        return Err(LogError::Corrupt("trailing bytes in frame".into()));
    }
    Ok(out)
}

/// Decodes a checked shard-table frame.
pub fn decode_shard_table(
    frame: &[u8],
    header: &FrameHeader,
) -> Result<Vec<(ShardKey, u64, u64)>, LogError> {
    let n = header.record_count as usize;
    if frame.len() != FRAME_HEADER_BYTES + n * SHARD_TABLE_ENTRY_BYTES {
        return Err(LogError::Corrupt("shard table size mismatch".into()));
    }
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let e = &frame[FRAME_HEADER_BYTES + i * SHARD_TABLE_ENTRY_BYTES..];
        out.push((
            ShardKey {
                stream_uid: le_u64(&e[0..8]),
                shard_index: le_u32(&e[8..12]),
            },
            le_u64(&e[12..20]),
            le_u64(&e[20..28]),
        ));
    }
    Ok(out)
}

pub fn le_u32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_le_bytes(a)
}

pub fn le_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}
