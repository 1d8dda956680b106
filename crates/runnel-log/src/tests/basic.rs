use super::*;
use crate::LogConfig;

#[test]
fn append_read_roundtrip() {
    let dir = tempfile::tempdir().unwrap();
    let (_, c) = clock(1_000);
    let log = open(cfg(dir.path()), &c);
    let (a, b) = (key(1, 0), key(1, 1));
    let acks = block_on(log.append(vec![
        (a, vec![rec("a0"), rec("a1")]),
        (b, vec![rec("b0")]),
        (a, vec![rec("a2")]),
    ]))
    .unwrap();
    assert_eq!(acks.len(), 3);
    assert_eq!(
        (
            acks[0].first_position,
            acks[1].first_position,
            acks[2].first_position
        ),
        (0, 0, 2)
    );
    assert!(acks.iter().all(|x| x.timestamp_ms == 1_000));
    let got = read_all(&log, a);
    let data: Vec<_> = got
        .iter()
        .map(|r| (r.position, r.data.clone(), r.partition_key.clone()))
        .collect();
    assert_eq!(
        data[0],
        (0, bytes::Bytes::from_static(b"a0"), "pk-a0".to_string())
    );
    assert_eq!(data.len(), 3);
    assert_eq!(data[2].1, bytes::Bytes::from_static(b"a2"));
    assert_eq!(read_all(&log, b).len(), 1);
    assert_eq!(log.end_position(a), 3);
    assert_eq!(log.end_position(key(9, 9)), 0);
    assert_eq!(log.last_timestamp_ms(a), Some(1_000));
    assert_eq!(log.last_timestamp_ms(key(9, 9)), None);
    let empty = log.read(a, 3, 10, 1000, 0).unwrap();
    assert!(empty.records.is_empty());
    assert_eq!(empty.next_position, 3);
}

#[test]
fn positions_dense_across_restart_and_rolls() {
    let dir = tempfile::tempdir().unwrap();
    let (_, c) = clock(5);
    let config = LogConfig {
        segment_bytes_max: 600,
        ..cfg(dir.path())
    };
    let k = key(7, 3);
    for round in 0..3u64 {
        let log = open(config.clone(), &c);
        assert_eq!(log.end_position(k), round * 20);
        for i in 0..20u64 {
            let ack = block_on(log.append(vec![(k, vec![rec(&format!("r{round}-{i}"))])])).unwrap();
            assert_eq!(ack[0].first_position, round * 20 + i);
        }
        assert!(log.stats().segments > 1);
    }
    let log = open(config, &c);
    let all = read_all(&log, k);
    assert_eq!(all.len(), 60);
    for (i, r) in all.iter().enumerate() {
        assert_eq!(r.position, i as u64);
        assert_eq!(r.data, format!("r{}-{}", i / 20, i % 20).into_bytes());
    }
}

#[test]
fn timestamps_never_decrease() {
    let dir = tempfile::tempdir().unwrap();
    let (m, c) = clock(10_000);
    let log = open(cfg(dir.path()), &c);
    let k = key(1, 0);
    let t1 = block_on(log.append(vec![(k, vec![rec("x")])])).unwrap()[0].timestamp_ms;
    m.advance_ms(-5_000);
    let t2 = block_on(log.append(vec![(k, vec![rec("y"), rec("z")])])).unwrap()[0].timestamp_ms;
    assert_eq!((t1, t2), (10_000, 10_000));
    m.advance_ms(6_000);
    let t3 = block_on(log.append(vec![(k, vec![rec("w")])])).unwrap()[0].timestamp_ms;
    assert_eq!(t3, 11_000);
    drop(log);
    // After restart the clamp still holds.
    m.advance_ms(-9_000);
    let log = open(cfg(dir.path()), &c);
    assert_eq!(log.last_timestamp_ms(k), Some(11_000));
    let t4 = block_on(log.append(vec![(k, vec![rec("v")])])).unwrap()[0].timestamp_ms;
    assert_eq!(t4, 11_000);
    let ts: Vec<u64> = read_all(&log, k).iter().map(|r| r.timestamp_ms).collect();
    assert_eq!(ts, vec![10_000, 10_000, 10_000, 11_000, 11_000]);
}

#[test]
fn position_at_timestamp_in_sealed_and_active() {
    let dir = tempfile::tempdir().unwrap();
    let (m, c) = clock(1_000);
    let config = LogConfig {
        segment_bytes_max: 500,
        ..cfg(dir.path())
    };
    let log = open(config, &c);
    let k = key(2, 0);
    for i in 0..40u64 {
        block_on(log.append(vec![(k, vec![rec("a"), rec("b")])])).unwrap();
        assert_eq!(log.end_position(k), 2 * (i + 1));
        m.advance_ms(10);
    }
    assert!(log.stats().segments > 3);
    // Append i has timestamp 1000 + 10 i and positions 2i, 2i + 1.
    assert_eq!(log.position_at_timestamp(k, 0).unwrap(), 0);
    assert_eq!(log.position_at_timestamp(k, 1_000).unwrap(), 0);
    assert_eq!(log.position_at_timestamp(k, 1_001).unwrap(), 2);
    assert_eq!(log.position_at_timestamp(k, 1_150).unwrap(), 30);
    assert_eq!(log.position_at_timestamp(k, 1_390).unwrap(), 78);
    assert_eq!(log.position_at_timestamp(k, 1_391).unwrap(), 80);
    assert_eq!(log.position_at_timestamp(key(5, 5), 1).unwrap(), 0);
    for t in (1_000..1_400).step_by(7) {
        let p = log.position_at_timestamp(k, t).unwrap();
        let expect = 2 * (t - 1_000).div_ceil(10);
        assert_eq!(p, expect, "ts {t}");
    }
}

#[test]
fn read_limits_and_not_before() {
    let dir = tempfile::tempdir().unwrap();
    let (m, c) = clock(100);
    let log = open(cfg(dir.path()), &c);
    let k = key(3, 1);
    let big = RecordIn {
        partition_key: "k".into(),
        data: bytes::Bytes::from(vec![7u8; 5000]),
    };
    block_on(log.append(vec![(k, vec![rec("0"), rec("1"), rec("2")])])).unwrap();
    m.advance_ms(100);
    block_on(log.append(vec![(k, vec![big.clone(), rec("4"), rec("5")])])).unwrap();
    let o = log.read(k, 0, 2, 1 << 20, 0).unwrap();
    assert_eq!((o.records.len(), o.next_position), (2, 2));
    // max_bytes: the big record does not fit after others...
    let o = log.read(k, 1, 100, 1000, 0).unwrap();
    assert_eq!(
        o.records.iter().map(|r| r.position).collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert_eq!(o.next_position, 3);
    // ...but is returned alone when it comes first.
    let o = log.read(k, 3, 100, 1000, 0).unwrap();
    assert_eq!(o.records.len(), 1);
    assert_eq!(o.records[0].data.len(), 5000);
    assert_eq!(o.next_position, 4);
    // not_before skips the first append (ts 100); next_position covers the skip.
    let o = log.read(k, 0, 1, 1 << 20, 150).unwrap();
    assert_eq!(o.records[0].position, 3);
    assert_eq!(o.next_position, 4);
    let o = log.read(k, 0, 100, 1 << 20, 1_000).unwrap();
    assert!(o.records.is_empty());
    assert_eq!(o.next_position, 6);
    // max_records 0 still makes progress.
    assert_eq!(log.read(k, 0, 0, 1 << 20, 0).unwrap().records.len(), 1);
}

#[test]
fn five_thousand_shards_one_commit_one_sync() {
    let dir = tempfile::tempdir().unwrap();
    let (_, c) = clock(1);
    let log = open(cfg(dir.path()), &c);
    let before = log.stats();
    let groups: Vec<_> = (0..5000u32)
        .map(|i| (key(u64::from(i % 50), i), vec![rec(&i.to_string())]))
        .collect();
    let acks = block_on(log.append(groups)).unwrap();
    assert_eq!(acks.len(), 5000);
    let after = log.stats();
    assert_eq!(after.syncs - before.syncs, 1);
    assert_eq!(after.commits - before.commits, 1);
    assert_eq!(after.shards_tracked, 5000);
    assert_eq!(
        log.read(key(7, 4007), 0, 10, 100, 0).unwrap().records[0].data,
        "4007".as_bytes()
    );
    drop(log);
    let log = open(cfg(dir.path()), &c);
    assert_eq!(log.stats().shards_tracked, 5000);
    assert_eq!(log.end_position(key(49, 4999)), 1);
}

#[test]
fn concurrent_appends_share_syncs() {
    let dir = tempfile::tempdir().unwrap();
    let (_, c) = clock(1);
    let log = Arc::new(open(cfg(dir.path()), &c));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    rt.block_on(async {
        let mut tasks = Vec::new();
        for t in 0..64u32 {
            let log = log.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..10 {
                    log.append(vec![(key(1, t % 4), vec![rec(&format!("{t}-{i}"))])])
                        .await
                        .unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
    let s = log.stats();
    assert_eq!(s.records, 640);
    assert!(s.syncs < 640, "group commit shared no syncs: {s:?}");
    for shard in 0..4 {
        let all = read_all(&log, key(1, shard));
        assert_eq!(all.len(), 160);
        assert!(all.iter().enumerate().all(|(i, r)| r.position == i as u64));
    }
    // Group commits that held many appends recover whole after a restart.
    drop(rt);
    let log = Arc::try_unwrap(log).unwrap_or_else(|_| panic!("log still shared"));
    drop(log);
    let log = open(cfg(dir.path()), &c);
    for shard in 0..4 {
        assert_eq!(
            read_all(&log, key(1, shard)).len(),
            160,
            "shard {shard} after restart"
        );
        assert_eq!(log.end_position(key(1, shard)), 160);
    }
}

#[test]
fn drop_stream_forgets_and_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let (_, c) = clock(1);
    let log = open(cfg(dir.path()), &c);
    block_on(log.append(vec![(key(4, 0), vec![rec("a")])])).unwrap();
    log.drop_stream(4);
    assert_eq!(log.end_position(key(4, 0)), 0);
    assert!(matches!(
        block_on(log.append(vec![(key(4, 0), vec![rec("b")])])),
        Err(crate::LogError::StreamDropped(4))
    ));
    block_on(log.append(vec![(key(5, 0), vec![rec("c")])])).unwrap();
}
