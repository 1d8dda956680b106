//! Media corruption (not torn tails): what survives, what is reported, and
//! that no acknowledged position is ever handed out again.

use super::recovery::{build_base, data_of, expected, try_open_damaged, Base, SHARDS};
use super::*;
use crate::segment::{segment_path, sidecar_path};
use crate::{LogError, OnCorruption};

/// Start of the first frame of commit `c` in segment 0.
fn commit_start(base: &Base, c: usize) -> usize {
    base.boundaries[c] as usize
}

fn assert_survivors(base: &Base, log: &Log, lost: &[(usize, usize)]) {
    for k in SHARDS {
        let want = expected(base, k, lost);
        let got: Vec<(u64, String)> = read_all(log, k)
            .iter()
            .map(|r| (r.position, data_of(r)))
            .collect();
        assert_eq!(got, want, "shard {k:?}");
        // New records get positions above everything ever acknowledged.
        let old_end = expected(base, k, &[]).len() as u64;
        let ack = block_on(log.append(vec![(k, vec![rec("after")])])).unwrap();
        assert!(
            ack[0].first_position >= old_end,
            "{k:?}: {} reissued (old end {old_end})",
            ack[0].first_position
        );
        let back = log.read(k, ack[0].first_position, 10, 1 << 20, 0).unwrap();
        assert_eq!(data_of(&back.records[0]), "after");
    }
}

fn check_flip(c: usize, within: usize) {
    let base = build_base();
    let at = commit_start(&base, c) + within;
    let (_d, refused) = try_open_damaged(&base, OnCorruption::Refuse, |b| b[at] ^= 0x5a);
    let msg = match refused {
        Err(LogError::Corrupt(m)) => m,
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("a damaged frame with intact frames after it was accepted"),
    };
    assert!(msg.contains("00000000000000000000.seg"), "{msg}");
    assert!(
        msg.contains(&format!("bytes {}..", commit_start(&base, c))),
        "{msg}"
    );
    assert!(msg.contains("--on-corruption skip"), "{msg}");

    let (dir, opened) = try_open_damaged(&base, OnCorruption::Skip, |b| b[at] ^= 0x5a);
    let log = opened.unwrap();
    assert_eq!(log.damage_report().len(), 1, "{:?}", log.damage_report());
    assert!(log.damage_report()[0].contains("00000000000000000000.seg"));
    // Only the damaged frame (the first group of commit c) is lost.
    assert_survivors(&base, &log, &[(c, 0)]);
    assert!(dir.path().join("00000000000000000000.seg.damaged").exists());
    drop(log);
    // Reopening is clean: the damaged segment is sealed, never rescanned.
    let (_, cl) = clock(1_000);
    let log = Log::open(cfg(dir.path()), cl).unwrap();
    assert!(log.damage_report().is_empty());
    for k in SHARDS {
        let want = expected(&base, k, &[(c, 0)]);
        let got: Vec<(u64, String)> = read_all(&log, k)
            .iter()
            .filter(|r| data_of(r) != "after")
            .map(|r| (r.position, data_of(r)))
            .collect();
        assert_eq!(got, want);
    }
}

#[test]
fn flipped_byte_in_first_frame_keeps_every_later_frame() {
    check_flip(0, 60);
}

#[test]
fn flipped_length_field_in_first_frame_keeps_every_later_frame() {
    check_flip(0, 5);
}

#[test]
fn flipped_byte_in_a_middle_frame_keeps_every_other_frame() {
    check_flip(12, 70);
}

#[test]
fn damaged_active_header_is_refused_and_positions_stay_above_old_data() {
    let base = build_base();
    let (_d, refused) = try_open_damaged(&base, OnCorruption::Refuse, |b| b[3] ^= 1);
    match refused {
        Err(LogError::Corrupt(m)) => {
            assert!(m.contains("damaged header or shard table"), "{m}")
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("damaged header accepted"),
    }
    let (dir, opened) = try_open_damaged(&base, OnCorruption::Skip, |b| b[3] ^= 1);
    let log = opened.unwrap();
    assert_eq!(log.damage_report().len(), 1);
    assert!(dir.path().join("00000000000000000000.seg.corrupt").exists());
    for k in SHARDS {
        let old_end = expected(&base, k, &[]).len() as u64;
        let ack = block_on(log.append(vec![(k, vec![rec("after")])])).unwrap();
        assert!(ack[0].first_position >= old_end, "{k:?} reissued");
    }
}

/// A log of single-record appends to `k` spread over several sealed segments.
fn sealed_log(n: usize) -> (tempfile::TempDir, LogConfig, ShardKey) {
    let dir = tempfile::tempdir().unwrap();
    let (_, c) = clock(1_000);
    let config = LogConfig {
        segment_bytes_max: 400,
        ..cfg(dir.path())
    };
    let k = key(1, 0);
    let log = open(config.clone(), &c);
    for i in 0..n {
        block_on(log.append(vec![(k, vec![rec(&format!("r{i}"))])])).unwrap();
    }
    assert!(log.stats().segments >= 3);
    (dir, config, k)
}

#[test]
fn sealed_segment_without_sidecar_and_a_bad_frame_keeps_later_frames() {
    let (dir, config, k) = sealed_log(20);
    let seg0 = segment_path(dir.path(), 0);
    std::fs::remove_file(sidecar_path(dir.path(), 0)).unwrap();
    let mut bytes = std::fs::read(&seg0).unwrap();
    // Header (32) + empty shard table (56) + 60 bytes into the first frame.
    bytes[32 + 56 + 60] ^= 0xff;
    std::fs::write(&seg0, bytes).unwrap();
    let (_, c) = clock(1_000);
    match Log::open(config.clone(), c.clone()) {
        Err(LogError::Corrupt(m)) => assert!(m.contains("00000000000000000000.seg"), "{m}"),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("damaged sealed segment accepted"),
    }
    let log = Log::open(
        LogConfig {
            on_corruption: OnCorruption::Skip,
            ..config
        },
        c,
    )
    .unwrap();
    assert_eq!(log.damage_report().len(), 1);
    let got: Vec<String> = read_all(&log, k).iter().map(data_of).collect();
    let want: Vec<String> = (1..20).map(|i| format!("r{i}")).collect();
    assert_eq!(got, want);
    assert_eq!(read_all(&log, k)[0].position, 1);
}

#[test]
fn damaged_sidecar_frame_list_is_rebuilt_from_the_segment() {
    let (dir, config, k) = sealed_log(20);
    let idx0 = sidecar_path(dir.path(), 0);
    let mut bytes = std::fs::read(&idx0).unwrap();
    // The last byte belongs to the frame list, which the summary does not cover.
    *bytes.last_mut().unwrap() ^= 0xff;
    std::fs::write(&idx0, bytes).unwrap();
    let (_, c) = clock(1_000);
    let log = Log::open(config, c).unwrap();
    let got: Vec<String> = read_all(&log, k).iter().map(data_of).collect();
    let want: Vec<String> = (0..20).map(|i| format!("r{i}")).collect();
    assert_eq!(got, want);
    assert_eq!(log.position_at_timestamp(k, 1_000).unwrap(), 0);
}

#[test]
fn a_sealed_segment_removed_behind_the_logs_back_is_reported() {
    let (dir, config, k) = sealed_log(30);
    let all: Vec<String> = (0..30).map(|i| format!("r{i}")).collect();
    // Segment 1's records, read before it goes.
    let log = Log::open(config.clone(), clock(1_000).1).unwrap();
    assert_eq!(
        read_all(&log, k).iter().map(data_of).collect::<Vec<_>>(),
        all
    );
    drop(log);
    std::fs::remove_file(segment_path(dir.path(), 1)).unwrap();
    std::fs::remove_file(sidecar_path(dir.path(), 1)).unwrap();
    match Log::open(config.clone(), clock(1_000).1) {
        Err(LogError::Corrupt(m)) => {
            assert!(m.contains("segment files with ids 1 are missing"), "{m}")
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("missing segment not reported"),
    }
    let skip = LogConfig {
        on_corruption: OnCorruption::Skip,
        ..config.clone()
    };
    let log = Log::open(skip, clock(1_000).1).unwrap();
    assert_eq!(log.damage_report().len(), 1, "{:?}", log.damage_report());
    let got: Vec<String> = read_all(&log, k).iter().map(data_of).collect();
    assert!(got.len() < 30 && got[0] == "r0" && got.last() == all.last());
    drop(log);
    // Reported once: the choice to go on is remembered.
    let log = Log::open(config, clock(1_000).1).unwrap();
    assert!(log.damage_report().is_empty());
}

#[test]
fn segments_retention_deleted_are_not_reported_missing() {
    let dir = tempfile::tempdir().unwrap();
    let (m, c) = clock(1_000);
    let config = LogConfig {
        segment_bytes_max: 400,
        ..cfg(dir.path())
    };
    let (short, long) = (key(1, 0), key(2, 0));
    let log = open(config.clone(), &c);
    for i in 0..30 {
        block_on(log.append(vec![(short, vec![rec(&format!("s{i}"))])])).unwrap();
    }
    // One long-lived record after them keeps a later segment alive.
    block_on(log.append(vec![(long, vec![rec("l")])])).unwrap();
    m.advance_ms(10_000);
    let r = log
        .enforce_retention(&|u| Some(if u == 1 { 1_000 } else { 1_000_000 }))
        .unwrap();
    assert!(r.segments_deleted >= 2, "{r:?}");
    drop(log);
    let log = open(config.clone(), &c);
    assert!(log.damage_report().is_empty());
    assert_eq!(read_all(&log, long).len(), 1);
    drop(log);
    // A log directory from before the record of retired ids: gaps count as intended.
    std::fs::remove_file(dir.path().join("retired")).unwrap();
    let log = open(config, &c);
    assert!(log.damage_report().is_empty());
}
