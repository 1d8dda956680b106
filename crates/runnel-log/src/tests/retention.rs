//! Retention with a manual clock: no sleeping.

use super::*;
use crate::LogConfig;

const HOUR_MS: u64 = 3_600_000;

fn files_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum()
}

#[test]
fn retention_reclaims_whole_expired_segments_only() {
    let dir = tempfile::tempdir().unwrap();
    let (m, c) = clock(100 * HOUR_MS);
    let config = LogConfig {
        segment_bytes_max: 1024,
        ..cfg(dir.path())
    };
    let (short, long) = (key(1, 0), key(2, 0));
    let retention = |uid: u64| match uid {
        1 => Some(HOUR_MS),
        2 => Some(100 * HOUR_MS),
        _ => None,
    };
    let log = open(config.clone(), &c);
    for i in 0..10 {
        block_on(log.append(vec![
            (short, vec![rec(&format!("s{i}"))]),
            (long, vec![rec(&format!("l{i}"))]),
        ]))
        .unwrap();
    }
    for i in 10..60 {
        block_on(log.append(vec![(
            short,
            vec![rec(&format!("s{i}-{}", "y".repeat(40)))],
        )]))
        .unwrap();
    }
    let before = log.stats();
    assert!(before.segments >= 6, "{before:?}");
    // Nothing expired yet.
    assert_eq!(
        log.enforce_retention(&retention).unwrap().segments_deleted,
        0
    );

    m.advance_ms(2 * i64::try_from(HOUR_MS).unwrap());
    let disk_before = files_bytes(dir.path());
    let report = log.enforce_retention(&retention).unwrap();
    assert!(report.segments_deleted > 0);
    let after = log.stats();
    assert_eq!(
        after.segments,
        before.segments - report.segments_deleted + report.segments_compacted
    );
    assert_eq!(
        after.bytes_on_disk,
        before.bytes_on_disk - report.bytes_reclaimed
    );
    assert!(files_bytes(dir.path()) < disk_before);
    // The long-retention stream kept its segments, and so its records.
    assert_eq!(read_all(&log, long).len(), 10);
    // The short stream lost its sealed frames (whole segments, and its frames
    // compacted out of the segments the long stream keeps); reading from 0
    // skips to what is left, which is in the active segment.
    let left = read_all(&log, short);
    assert!(left.len() < 60 && !left.is_empty());
    assert!(left.windows(2).all(|w| w[1].position == w[0].position + 1));
    assert!(left[0].position > 0);
    assert_eq!(left.last().unwrap().position, 59);
    // Reads enforce retention themselves: nothing older than one hour comes back.
    let now = c.now_ms();
    let o = log.read(short, 0, 1000, 1 << 20, now - HOUR_MS).unwrap();
    assert!(o.records.is_empty());
    assert_eq!(o.next_position, 60);

    // A deleted stream's segments go too; the active segment always stays.
    log.drop_stream(2);
    let report = log
        .enforce_retention(&|uid| if uid == 1 { Some(HOUR_MS) } else { None })
        .unwrap();
    assert!(report.segments_deleted > 0);
    assert_eq!(log.stats().segments, 1);
    drop(log);

    // Positions are never reused, even with every record of the shard gone.
    let log = open(config, &c);
    assert_eq!(log.end_position(short), 60);
    assert!(read_all(&log, short).len() < 60);
    let ack = block_on(log.append(vec![(short, vec![rec("again")])])).unwrap();
    assert_eq!(ack[0].first_position, 60);
    assert!(ack[0].timestamp_ms >= now);
}

#[test]
fn positions_survive_deletion_of_all_data_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (m, c) = clock(1_000);
    let config = LogConfig {
        segment_bytes_max: 300,
        ..cfg(dir.path())
    };
    let k = key(9, 2);
    for round in 0..3u64 {
        let log = open(config.clone(), &c);
        assert_eq!(log.end_position(k), round * 10);
        for _ in 0..10 {
            block_on(log.append(vec![(k, vec![rec("zzzzzzzzzzzzzzzzzzzzzzzz")])])).unwrap();
        }
        // Roll once more with another stream so the shard's frames are all sealed.
        for _ in 0..10 {
            block_on(log.append(vec![(
                key(100 + round, 0),
                vec![rec("filler-filler-filler")],
            )]))
            .unwrap();
        }
        m.advance_ms(10_000);
        log.enforce_retention(&|_| Some(1)).unwrap();
        assert_eq!(log.stats().segments, 1);
    }
}
