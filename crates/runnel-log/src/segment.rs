//! Segment files: naming, and the sequential scan used by recovery (for the
//! active segment) and by sidecar rebuilds (for a sealed one).

use crate::format::{
    self, FrameHeader, FRAME_BYTES_MAX, FRAME_HEADER_BYTES, KIND_RECORDS, KIND_SHARD_TABLE,
};
use crate::fs::FsFile;
use crate::index::FrameLoc;
use crate::{LogError, ShardKey};
use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

const SCAN_BUFFER_BYTES: usize = 8 * 1024 * 1024;
/// Verified frames in a row that make a resynchronisation point credible
/// when they do not reach the end of the data.
const RESYNC_CHAIN_MIN: u32 = 4;

pub fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:020}.seg"))
}

pub fn sidecar_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:020}.idx"))
}

/// The result of scanning a segment: only frames of complete commits.
pub struct Scan {
    pub segment_id: u64,
    /// Shard table at the start of the segment: (shard, next position, last timestamp).
    pub table: Vec<(ShardKey, u64, u64)>,
    /// Records frames of complete commits, in file order.
    pub frames: Vec<(ShardKey, FrameLoc)>,
    /// Byte length of the valid prefix (ends after the last complete commit).
    pub valid_len: u64,
    pub file_len: u64,
    pub last_commit_seq: u64,
    /// Why the scan stopped before the end of the file, if it did.
    pub stop_reason: Option<String>,
    /// Damaged byte ranges with verified frames after them (media
    /// corruption, not a torn tail): the scan resumed after each one.
    pub damage: Vec<Damage>,
}

/// A run of bytes that did not verify, followed by a frame that did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Damage {
    /// Where the first bad frame starts.
    pub offset: u64,
    /// Where the next verified frame starts.
    pub resume_at: u64,
    pub reason: String,
}

impl Damage {
    pub fn bytes(&self) -> u64 {
        self.resume_at - self.offset
    }
}

/// A window over a file for sequential scanning with few syscalls.
struct Window<'a> {
    file: &'a dyn FsFile,
    file_len: u64,
    buf: Vec<u8>,
    start: u64,
}

impl<'a> Window<'a> {
    fn new(file: &'a dyn FsFile) -> Result<Self, LogError> {
        Ok(Window {
            file_len: file.len()?,
            file,
            buf: Vec::new(),
            start: 0,
        })
    }
}

impl<'a> Window<'a> {
    /// Bytes `[offset, offset + len)`, or `None` if the file ends first.
    fn get(&mut self, offset: u64, len: usize) -> io::Result<Option<&[u8]>> {
        if offset + len as u64 > self.file_len {
            return Ok(None);
        }
        let have =
            offset >= self.start && offset + len as u64 <= self.start + self.buf.len() as u64;
        if !have {
            let want = len
                .max(SCAN_BUFFER_BYTES)
                .min((self.file_len - offset) as usize);
            self.buf.resize(want, 0);
            let n = self.file.read_at(&mut self.buf, offset)?;
            self.buf.truncate(n);
            self.start = offset;
            if n < len {
                return Ok(None);
            }
        }
        let at = (offset - self.start) as usize;
        Ok(Some(&self.buf[at..at + len]))
    }
}

/// Scans a segment. `Ok(None)` means it has no valid header and shard table
/// (a segment whose creation was cut short, or garbage).
pub fn scan(file: &dyn FsFile) -> Result<Option<Scan>, LogError> {
    let mut w = Window::new(file)?;
    let file_len = w.file_len;
    let segment_id = match w.get(0, format::SEGMENT_HEADER_BYTES)? {
        Some(h) => match format::parse_segment_header(h) {
            Some(id) => id,
            None => return Ok(None),
        },
        None => return Ok(None),
    };
    let mut offset = format::SEGMENT_HEADER_BYTES as u64;
    let mut scan = Scan {
        segment_id,
        table: Vec::new(),
        frames: Vec::new(),
        valid_len: 0,
        file_len,
        last_commit_seq: 0,
        stop_reason: None,
        damage: Vec::new(),
    };
    let mut next: HashMap<ShardKey, u64> = HashMap::new();
    let mut pending: Vec<(ShardKey, FrameLoc)> = Vec::new();
    let mut pending_next: HashMap<ShardKey, u64> = HashMap::new();
    let mut have_table = false;
    let mut commit_seq: Option<u64> = None;
    // Set after a resynchronisation: the commit sequence may jump past
    // what was lost, and so may every shard's positions from then on.
    let mut after_damage = false;
    let mut damaged = false;
    loop {
        let header = match read_frame(&mut w, offset)? {
            Ok(Some((h, table))) => {
                if let Some(t) = table {
                    if have_table || offset != format::SEGMENT_HEADER_BYTES as u64 {
                        scan.stop_reason = Some("unexpected shard table".into());
                        break;
                    }
                    for (k, n, _) in &t {
                        next.insert(*k, *n);
                    }
                    scan.table = t;
                    have_table = true;
                }
                h
            }
            Ok(None) => break,
            Err(reason) => {
                if !have_table {
                    return Ok(None);
                }
                match resync(&mut w, offset + 1)? {
                    Some(resume_at) => {
                        // Verified frames follow: this is damage, not a torn
                        // tail. The frames already read belong to a commit
                        // that completed (later commits exist), keep them.
                        scan.damage.push(Damage {
                            offset,
                            resume_at,
                            reason,
                        });
                        if let Some((_, last)) = pending.last() {
                            scan.valid_len = last.offset + u64::from(last.len);
                        }
                        scan.frames.append(&mut pending);
                        next.extend(pending_next.drain());
                        offset = resume_at;
                        after_damage = true;
                        damaged = true;
                        continue;
                    }
                    None => {
                        scan.stop_reason = Some(reason);
                        break;
                    }
                }
            }
        };
        if !have_table {
            return Ok(None);
        }
        // Frames of one append (ended by FLAG_COMMIT_END) share a sequence
        // number; a group commit holds many appends with the same number, and
        // across group commits it grows.
        let seq_ok = match commit_seq {
            None => true,
            Some(s) if after_damage => header.commit_seq >= s,
            Some(s) if pending.is_empty() => header.commit_seq >= s,
            Some(s) => header.commit_seq == s,
        };
        if !seq_ok {
            scan.stop_reason = Some(format!(
                "commit sequence {} out of order",
                header.commit_seq
            ));
            break;
        }
        commit_seq = Some(header.commit_seq);
        if header.kind == KIND_RECORDS {
            let expect = pending_next
                .get(&header.shard)
                .or_else(|| next.get(&header.shard))
                .copied();
            let bad = match expect {
                Some(e) if damaged => header.first_position < e,
                Some(e) => header.first_position != e,
                None => false,
            };
            if bad {
                scan.stop_reason = Some(format!(
                    "frame for {:?} starts at position {} but {:?} was expected",
                    header.shard, header.first_position, expect
                ));
                break;
            }
            let loc = FrameLoc {
                first_position: header.first_position,
                record_count: header.record_count,
                len: header.frame_bytes,
                offset,
                timestamp_ms: header.timestamp_ms,
            };
            pending_next.insert(header.shard, loc.end_position());
            pending.push((header.shard, loc));
        }
        offset += u64::from(header.frame_bytes);
        after_damage = false;
        if header.commit_end() {
            scan.frames.append(&mut pending);
            next.extend(pending_next.drain());
            scan.valid_len = offset;
            scan.last_commit_seq = header.commit_seq;
        }
    }
    if !have_table {
        return Ok(None);
    }
    if scan.stop_reason.is_none() && scan.valid_len < file_len {
        scan.stop_reason = Some("incomplete commit at end of segment".into());
    }
    Ok(Some(scan))
}

/// Finds the first offset at or after `from` where a records frame
/// verifies and from which verified frames chain to the end of the data
/// (end of file or the zero tail). `None` if there is none: what failed was
/// a torn tail. Frames are not aligned, so every offset is a candidate; the
/// reserved zero header fields and the checksum reject the others, and the
/// chain rule rejects a frame image that merely sits inside record data.
fn resync(w: &mut Window<'_>, from: u64) -> Result<Option<u64>, LogError> {
    let mut at = from;
    while at + FRAME_HEADER_BYTES as u64 <= w.file_len {
        if plausible_header(w, at)? && chains_to_end(w, at)? {
            return Ok(Some(at));
        }
        at += 1;
    }
    Ok(None)
}

fn plausible_header(w: &mut Window<'_>, at: u64) -> Result<bool, LogError> {
    let Some(h) = w.get(at, FRAME_HEADER_BYTES)? else {
        return Ok(false);
    };
    let len = format::peek_frame_len(h);
    Ok(h[8] == KIND_RECORDS
        && h[9] & !format::FLAG_COMMIT_END == 0
        && h[10..12] == [0, 0]
        && h[28..32] == [0, 0, 0, 0]
        && (FRAME_HEADER_BYTES..=FRAME_BYTES_MAX).contains(&len)
        && at + len as u64 <= w.file_len)
}

fn chains_to_end(w: &mut Window<'_>, mut at: u64) -> Result<bool, LogError> {
    let mut frames = 0u32;
    loop {
        if at == w.file_len {
            return Ok(frames > 0);
        }
        match read_frame(w, at)? {
            Ok(Some((h, None))) => {
                at += u64::from(h.frame_bytes);
                frames += 1;
            }
            Ok(Some((_, Some(_)))) => return Ok(false),
            Ok(None) => return Ok(frames > 0),
            Err(_) => {
                // The preallocated zero tail ends the data; a few verified
                // frames before a second damaged run are enough, too.
                return Ok(frames >= RESYNC_CHAIN_MIN || (frames > 0 && is_zero_from(w, at)?));
            }
        }
    }
}

fn is_zero_from(w: &mut Window<'_>, mut at: u64) -> Result<bool, LogError> {
    while at < w.file_len {
        let n = ((w.file_len - at) as usize).min(1 << 20);
        match w.get(at, n)? {
            Some(b) if b.iter().all(|&x| x == 0) => at += n as u64,
            _ => return Ok(false),
        }
    }
    Ok(true)
}

type FrameRead = Result<Option<(FrameHeader, Option<Vec<(ShardKey, u64, u64)>>)>, String>;

/// Reads and checks one frame at `offset`. `Ok(Ok(None))` is a clean end of file.
fn read_frame(w: &mut Window<'_>, offset: u64) -> Result<FrameRead, LogError> {
    if offset == w.file_len {
        return Ok(Ok(None));
    }
    let len = match w.get(offset, 8)? {
        Some(prefix) => format::peek_frame_len(prefix),
        None => return Ok(Err("torn frame header".into())),
    };
    if !(FRAME_HEADER_BYTES..=FRAME_BYTES_MAX).contains(&len) {
        return Ok(Err(format!("impossible frame length {len}")));
    }
    let frame = match w.get(offset, len)? {
        Some(f) => f,
        None => return Ok(Err("torn frame".into())),
    };
    let header = match format::check_frame(frame) {
        Ok(h) => h,
        Err(e) => return Ok(Err(e.to_string())),
    };
    match header.kind {
        KIND_RECORDS => Ok(Ok(Some((header, None)))),
        KIND_SHARD_TABLE => match format::decode_shard_table(frame, &header) {
            Ok(t) => Ok(Ok(Some((header, Some(t))))),
            Err(e) => Ok(Err(e.to_string())),
        },
        k => Ok(Err(format!("unknown frame kind {k}"))),
    }
}

/// What could be read from a segment whose header or shard table is bad:
/// the verified records frames after the damage (their shard, end position
/// and timestamp). Empty when the segment holds no verified frame, as when
/// its creation was cut short.
pub fn salvage(file: &dyn FsFile) -> Result<Vec<(ShardKey, u64, u64)>, LogError> {
    let mut w = Window::new(file)?;
    let mut out = Vec::new();
    let mut at = format::SEGMENT_HEADER_BYTES as u64;
    while let Some(resume) = resync(&mut w, at)? {
        at = resume;
        while let Ok(Some((h, None))) = read_frame(&mut w, at)? {
            out.push((
                h.shard,
                h.first_position + u64::from(h.record_count),
                h.timestamp_ms,
            ));
            at += u64::from(h.frame_bytes);
        }
        at += 1;
    }
    Ok(out)
}
