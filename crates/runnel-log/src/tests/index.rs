//! The two-level index: reads and timestamp lookups over many sealed
//! segments with shards missing from most of them, with caches far too
//! small to hold anything (every lookup goes to disk), across a reopen,
//! and from sidecars of the older format that recovery rewrites.

use super::{block_on, cfg, clock, key, open, read_all, rec};
use crate::index::{FrameLoc, SealedSpan};
use crate::segment::sidecar_path;
use crate::sidecar::{self, SIDECAR_HEADER_BYTES, SIDECAR_MAGIC, SUMMARY_ENTRY_BYTES};
use crate::{fs::RealFs, LogConfig, ShardKey};
use std::collections::BTreeMap;
use std::path::Path;

/// Caches of one entry, two open segments, tiny segments.
fn tight(dir: &Path) -> LogConfig {
    LogConfig {
        segment_bytes_max: 1_000,
        frames_cache_bytes_max: 1,
        details_cache_bytes_max: 1,
        open_segments_max: 2,
        ..cfg(dir)
    }
}

/// Appends rounds touching a varying subset of 12 shards (some shards sit
/// out dozens of segments); returns, per shard, each record's (data, ts).
fn fill(log: &crate::Log, m: &runnel_types::ManualClock) -> BTreeMap<ShardKey, Vec<(String, u64)>> {
    let mut expect: BTreeMap<ShardKey, Vec<(String, u64)>> = BTreeMap::new();
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for round in 0..300u64 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let mut groups = Vec::new();
        for s in 0..12u32 {
            // Shard s writes in about one round in (s + 1), shard 11 only late.
            if !(x >> s).is_multiple_of(u64::from(s + 1)) || (s == 11 && round < 200) {
                continue;
            }
            let k = key(1 + u64::from(s % 3), s);
            let n = 1 + (x >> (s + 20)) as usize % 3;
            let recs: Vec<_> = (0..n).map(|i| rec(&format!("{s}-{round}-{i}"))).collect();
            let now = 10_000 + round * 10;
            let e = expect.entry(k).or_default();
            e.extend((0..n).map(|i| (format!("{s}-{round}-{i}"), now)));
            groups.push((k, recs));
        }
        if !groups.is_empty() {
            block_on(log.append(groups)).unwrap();
        }
        m.advance_ms(10);
    }
    expect
}

fn check(log: &crate::Log, expect: &BTreeMap<ShardKey, Vec<(String, u64)>>) {
    for (k, want) in expect {
        let got: Vec<(String, u64)> = read_all(log, *k)
            .into_iter()
            .map(|r| (String::from_utf8(r.data.to_vec()).unwrap(), r.timestamp_ms))
            .collect();
        assert_eq!(&got, want, "{k:?}");
        // Reads from every position start at that record.
        for (p, (data, _)) in want.iter().enumerate().step_by(3) {
            let o = log.read(*k, p as u64, 1, 1 << 20, 0).unwrap();
            assert_eq!(o.records[0].data, data.as_bytes(), "{k:?} at {p}");
            assert_eq!(o.records[0].position, p as u64);
        }
        // Timestamp lookups agree with a linear search.
        for ts in (9_990..13_020).step_by(13) {
            let expect_pos = want
                .iter()
                .position(|(_, t)| *t >= ts)
                .unwrap_or(want.len());
            assert_eq!(
                log.position_at_timestamp(*k, ts).unwrap(),
                expect_pos as u64,
                "{k:?} ts {ts}"
            );
        }
    }
    let stats = log.stats();
    assert!(stats.open_segments <= 2, "{stats:?}");
    assert!(stats.sidecar_cache_entries <= 1, "{stats:?}");
}

#[test]
fn sparse_shards_over_many_segments_read_back_exactly_with_tiny_caches() {
    let dir = tempfile::tempdir().unwrap();
    let (m, c) = clock(10_000);
    let log = open(tight(dir.path()), &c);
    let expect = fill(&log, &m);
    assert!(log.stats().segments > 60, "{:?}", log.stats());
    check(&log, &expect);
    drop(log);
    let log = open(tight(dir.path()), &c);
    check(&log, &expect);
}

/// Writes `id`'s sidecar in the version 2 layout (no stream aggregates, no
/// end table), as runnel wrote it before the two-level index.
fn rewrite_as_version_2(dir: &Path, id: u64) {
    let path = sidecar_path(dir, id);
    let (detail, version) = sidecar::read_detail(&RealFs, &path, id).unwrap();
    assert_eq!(version, 3);
    let lists: Vec<(ShardKey, SealedSpan, Vec<FrameLoc>)> = detail
        .spans
        .iter()
        .map(|(k, s)| (*k, *s, sidecar::read_frames(&RealFs, &path, s).unwrap()))
        .collect();
    let summary = lists.len() * SUMMARY_ENTRY_BYTES;
    let mut out = vec![0u8; SIDECAR_HEADER_BYTES + summary];
    for (i, (k, s, frames)) in lists.iter().enumerate() {
        let at = out.len() as u64;
        sidecar::encode_frames(&mut out, frames);
        let span = SealedSpan {
            frames_offset: at,
            frames_crc: crc32c::crc32c(&out[at as usize..]),
            ..*s
        };
        let e = &mut out[SIDECAR_HEADER_BYTES + i * SUMMARY_ENTRY_BYTES..][..SUMMARY_ENTRY_BYTES];
        sidecar::encode_span(e, k, &span);
    }
    let crc = crc32c::crc32c(&out[SIDECAR_HEADER_BYTES..SIDECAR_HEADER_BYTES + summary]);
    out[0..8].copy_from_slice(SIDECAR_MAGIC);
    out[8..12].copy_from_slice(&2u32.to_le_bytes());
    out[12..16].copy_from_slice(&(lists.len() as u32).to_le_bytes());
    out[16..24].copy_from_slice(&id.to_le_bytes());
    out[24..28].copy_from_slice(&crc.to_le_bytes());
    let h = crc32c::crc32c(&out[0..28]);
    out[28..32].copy_from_slice(&h.to_le_bytes());
    std::fs::write(&path, out).unwrap();
}

fn sidecar_version(dir: &Path, id: u64) -> u32 {
    let b = std::fs::read(sidecar_path(dir, id)).unwrap();
    u32::from_le_bytes(b[8..12].try_into().unwrap())
}

#[test]
fn version_2_sidecars_are_rewritten_and_read_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let (m, c) = clock(10_000);
    let log = open(tight(dir.path()), &c);
    let expect = fill(&log, &m);
    let active = log.stats().active_segment_id;
    drop(log);
    let sealed: Vec<u64> = (0..active)
        .filter(|id| sidecar_path(dir.path(), *id).exists())
        .collect();
    assert!(sealed.len() > 60);
    for id in &sealed {
        rewrite_as_version_2(dir.path(), *id);
        assert_eq!(sidecar_version(dir.path(), *id), 2);
    }
    let log = open(tight(dir.path()), &c);
    for id in &sealed {
        assert_eq!(sidecar_version(dir.path(), *id), 3, "segment {id}");
    }
    check(&log, &expect);
    drop(log);
    let log = open(tight(dir.path()), &c);
    check(&log, &expect);
}

/// A short-retention stream beside a long one: compaction removes the
/// expired head of the short one from segments the long one keeps, so a
/// read from position 0 must walk past segments that hold none of it.
#[test]
fn reads_skip_segments_compaction_emptied_of_a_shard() {
    let dir = tempfile::tempdir().unwrap();
    let (m, c) = clock(1_000_000);
    let config = LogConfig {
        segment_bytes_max: 4_000,
        ..tight(dir.path())
    };
    let log = open(config.clone(), &c);
    let (short, long) = (key(1, 0), key(2, 0));
    for i in 0..400u32 {
        block_on(log.append(vec![
            (short, vec![rec(&format!("s{i:04}"))]),
            (long, vec![rec(&format!("l{i:04}"))]),
        ]))
        .unwrap();
        m.advance_ms(1_000);
    }
    // The short stream keeps its last 100 s (100 records), the long one all.
    let retention = |u: u64| Some(if u == 1 { 100_000 } else { 10_000_000 });
    for _ in 0..4 {
        log.enforce_retention(&retention).unwrap();
        block_on(log.append(vec![])).unwrap();
    }
    let check = |log: &crate::Log| {
        let got = read_all(log, short);
        assert!(!got.is_empty());
        let first = got[0].position;
        // What is left of the short stream is a dense suffix with every live record.
        for (i, r) in got.iter().enumerate() {
            assert_eq!(r.position, first + i as u64);
            assert_eq!(r.data, format!("s{:04}", r.position).as_bytes());
        }
        assert!(first <= 300, "first kept {first}");
        assert_eq!(got.last().map(|r| r.position), Some(399));
        // Twice: the second read starts from what the first walk learned.
        for _ in 0..2 {
            let o = log.read(short, 0, 1, 1 << 20, 0).unwrap();
            assert_eq!(o.records[0].position, first);
        }
        assert_eq!(read_all(log, long).len(), 400);
        first
    };
    let first = check(&log);
    assert!(first > 0, "compaction removed nothing of the short stream");
    drop(log);
    let log = open(config, &c);
    assert_eq!(check(&log), first);
}
