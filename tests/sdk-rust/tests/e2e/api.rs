//! Every core Data Streams operation through the AWS SDK for Rust.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_kinesis::primitives::{Blob, DateTime};
use aws_sdk_kinesis::types::{
    PutRecordsRequestEntry, ShardFilter, ShardFilterType, ShardIteratorType, StreamMode,
    StreamModeDetails, StreamStatus, Tag,
};

use crate::common::*;

const HASH_KEY_MAX: u128 = u128::MAX;

fn tags_map(tags: &[Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .map(|t| {
            (
                t.key().to_string(),
                t.value().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn date_time_ms(t: &DateTime) -> i64 {
    t.to_millis().expect("timestamp in range")
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_provisioned_and_describe_with_paging() {
    let server = start_server();
    let client = sdk_client(&server.endpoint()).await;
    let name = unique_name("describe");
    create_active(&client, &name, 3).await.unwrap();

    let out = client
        .describe_stream()
        .stream_name(&name)
        .send()
        .await
        .unwrap();
    let desc = out.stream_description().expect("StreamDescription");
    assert_eq!(desc.stream_name(), name);
    assert_eq!(desc.stream_arn(), stream_arn(&name));
    assert_eq!(desc.stream_status(), &StreamStatus::Active);
    assert_eq!(desc.retention_period_hours(), 24);
    assert!(!desc.has_more_shards());
    assert_eq!(
        desc.stream_mode_details().map(|m| m.stream_mode().clone()),
        Some(StreamMode::Provisioned)
    );
    let created_ms = date_time_ms(desc.stream_creation_timestamp());
    assert!(
        (created_ms - now_ms()).abs() < 10 * 60 * 1000,
        "creation timestamp {created_ms} far from now"
    );
    let shards = desc.shards();
    let ids: Vec<&str> = shards.iter().map(|s| s.shard_id()).collect();
    assert_eq!(
        ids,
        [
            "shardId-000000000000",
            "shardId-000000000001",
            "shardId-000000000002"
        ]
    );
    // The hash key ranges tile [0, 2^128 - 1] without gaps or overlaps.
    let mut next_start: u128 = 0;
    for (i, shard) in shards.iter().enumerate() {
        let range = shard.hash_key_range().expect("HashKeyRange");
        let start: u128 = range.starting_hash_key().parse().unwrap();
        let end: u128 = range.ending_hash_key().parse().unwrap();
        assert_eq!(start, next_start, "shard {i} start");
        assert!(end >= start);
        let seq = shard.sequence_number_range().expect("SequenceNumberRange");
        assert!(seq.starting_sequence_number().len() >= 21, "{seq:?}");
        assert!(
            seq.ending_sequence_number().is_none(),
            "open shard has no end"
        );
        assert!(shard.parent_shard_id().is_none());
        if i + 1 < shards.len() {
            next_start = end + 1;
        } else {
            assert_eq!(end, HASH_KEY_MAX);
        }
    }

    // Paging: Limit 1, then ExclusiveStartShardId.
    let page1 = client
        .describe_stream()
        .stream_name(&name)
        .limit(1)
        .send()
        .await
        .unwrap();
    let d1 = page1.stream_description().unwrap();
    assert_eq!(d1.shards().len(), 1);
    assert_eq!(d1.shards()[0].shard_id(), "shardId-000000000000");
    assert!(d1.has_more_shards());
    let page2 = client
        .describe_stream()
        .stream_name(&name)
        .exclusive_start_shard_id("shardId-000000000000")
        .limit(5)
        .send()
        .await
        .unwrap();
    let d2 = page2.stream_description().unwrap();
    let ids2: Vec<&str> = d2.shards().iter().map(|s| s.shard_id()).collect();
    assert_eq!(ids2, ["shardId-000000000001", "shardId-000000000002"]);
    assert!(!d2.has_more_shards());

    // DescribeStreamSummary.
    let summary = client
        .describe_stream_summary()
        .stream_name(&name)
        .send()
        .await
        .unwrap();
    let s = summary.stream_description_summary().unwrap();
    assert_eq!(s.stream_name(), name);
    assert_eq!(s.stream_arn(), stream_arn(&name));
    assert_eq!(s.open_shard_count(), 3);
    assert_eq!(s.retention_period_hours(), 24);
    assert_eq!(s.stream_status(), &StreamStatus::Active);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_on_demand_has_four_shards() {
    let server = start_server();
    let client = sdk_client(&server.endpoint()).await;
    let name = unique_name("ondemand");
    client
        .create_stream()
        .stream_name(&name)
        .stream_mode_details(
            StreamModeDetails::builder()
                .stream_mode(StreamMode::OnDemand)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    wait_active(&client, &name).await.unwrap();
    let summary = client
        .describe_stream_summary()
        .stream_name(&name)
        .send()
        .await
        .unwrap();
    let s = summary.stream_description_summary().unwrap();
    assert_eq!(s.open_shard_count(), 4);
    assert_eq!(
        s.stream_mode_details().map(|m| m.stream_mode().clone()),
        Some(StreamMode::OnDemand)
    );
    assert_eq!(list_all_shards(&client, &name).await.unwrap().len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_streams_with_paging() {
    let server = start_server();
    let client = sdk_client(&server.endpoint()).await;
    let mut names = BTreeSet::new();
    for i in 0..5 {
        let name = format!("list-{i}");
        create_active(&client, &name, 1).await.unwrap();
        names.insert(name);
    }

    let all = client.list_streams().send().await.unwrap();
    assert_eq!(
        all.stream_names().iter().cloned().collect::<BTreeSet<_>>(),
        names
    );
    assert!(!all.has_more_streams());
    assert_eq!(all.stream_summaries().len(), 5);
    for summary in all.stream_summaries() {
        assert_eq!(summary.stream_arn(), stream_arn(summary.stream_name()));
        assert_eq!(summary.stream_status(), &StreamStatus::Active);
        assert!(summary.stream_creation_timestamp().is_some());
    }

    // Limit + NextToken.
    let mut seen = Vec::new();
    let mut out = client.list_streams().limit(2).send().await.unwrap();
    let mut pages = 0;
    loop {
        pages += 1;
        assert!(out.stream_names().len() <= 2);
        assert_eq!(out.stream_names().len(), out.stream_summaries().len());
        seen.extend(out.stream_names().iter().cloned());
        if !out.has_more_streams() {
            break;
        }
        let token = out
            .next_token()
            .expect("NextToken when HasMoreStreams")
            .to_string();
        assert!(pages < 10, "too many pages");
        out = client
            .list_streams()
            .next_token(token)
            .limit(2)
            .send()
            .await
            .unwrap();
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.iter().cloned().collect::<BTreeSet<_>>(), names);
    assert_eq!(seen.len(), 5, "no stream listed twice: {seen:?}");

    // ExclusiveStartStreamName (names are returned in lexicographic order).
    let after = client
        .list_streams()
        .exclusive_start_stream_name("list-2")
        .send()
        .await
        .unwrap();
    assert_eq!(after.stream_names(), ["list-3", "list-4"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_shards_paging_and_filters() {
    let server = start_server();
    let client = sdk_client(&server.endpoint()).await;
    let name = unique_name("listshards");
    create_active(&client, &name, 4).await.unwrap();

    let first = client
        .list_shards()
        .stream_name(&name)
        .max_results(1)
        .send()
        .await
        .unwrap();
    assert_eq!(first.shards().len(), 1);
    let mut ids = vec![first.shards()[0].shard_id().to_string()];
    let mut token = first.next_token().map(str::to_string);
    let mut pages = 1;
    while let Some(t) = token {
        let page = client
            .list_shards()
            .next_token(t)
            .max_results(1)
            .send()
            .await
            .unwrap();
        ids.extend(page.shards().iter().map(|s| s.shard_id().to_string()));
        token = page.next_token().map(str::to_string);
        pages += 1;
        assert!(pages <= 10, "too many pages");
    }
    assert_eq!(
        ids,
        [
            "shardId-000000000000",
            "shardId-000000000001",
            "shardId-000000000002",
            "shardId-000000000003"
        ]
    );

    let after = client
        .list_shards()
        .stream_name(&name)
        .shard_filter(
            ShardFilter::builder()
                .r#type(ShardFilterType::AfterShardId)
                .shard_id("shardId-000000000001")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let after_ids: Vec<&str> = after.shards().iter().map(|s| s.shard_id()).collect();
    assert_eq!(after_ids, ["shardId-000000000002", "shardId-000000000003"]);

    let latest = client
        .list_shards()
        .stream_name(&name)
        .shard_filter(
            ShardFilter::builder()
                .r#type(ShardFilterType::AtLatest)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(latest.shards().len(), 4, "all shards are open");

    let exclusive = client
        .list_shards()
        .stream_name(&name)
        .exclusive_start_shard_id("shardId-000000000002")
        .send()
        .await
        .unwrap();
    let ex_ids: Vec<&str> = exclusive.shards().iter().map(|s| s.shard_id()).collect();
    assert_eq!(ex_ids, ["shardId-000000000003"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_record_routes_by_md5_and_explicit_hash_key() {
    let server = start_server();
    let client = sdk_client(&server.endpoint()).await;
    let name = unique_name("route");
    create_active(&client, &name, 4).await.unwrap();
    let shards = list_all_shards(&client, &name).await.unwrap();

    let mut last_seq: HashMap<String, String> = HashMap::new();
    for i in 0..60 {
        let key = format!("partition-{i}");
        let expected = shard_for_hash(&shards, hash_key_of(&key)).unwrap();
        let out = client
            .put_record()
            .stream_name(&name)
            .partition_key(&key)
            .data(Blob::new(format!("payload-{i}")))
            .send()
            .await
            .unwrap();
        assert_eq!(out.shard_id(), expected, "partition key {key}");
        let seq = out.sequence_number().to_string();
        assert!(seq.chars().all(|c| c.is_ascii_digit()), "{seq}");
        if let Some(prev) = last_seq.get(&expected) {
            assert_eq!(
                seq_cmp(prev, &seq),
                std::cmp::Ordering::Less,
                "{prev} < {seq}"
            );
        }
        last_seq.insert(expected, seq);
    }
    assert_eq!(last_seq.len(), 4, "60 keys should hit all 4 shards");

    // ExplicitHashKey overrides the partition key's hash.
    for (hash, expected) in [
        (0u128, "shardId-000000000000"),
        (HASH_KEY_MAX, "shardId-000000000003"),
    ] {
        // A partition key that would route elsewhere.
        let key = (0..1000)
            .map(|i| format!("k{i}"))
            .find(|k| shard_for_hash(&shards, hash_key_of(k)).unwrap() != expected)
            .unwrap();
        let out = client
            .put_record()
            .stream_name(&name)
            .partition_key(key)
            .explicit_hash_key(hash.to_string())
            .data(Blob::new("explicit"))
            .send()
            .await
            .unwrap();
        assert_eq!(out.shard_id(), expected);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_records_500_and_read_back_byte_exact() {
    let server = start_server();
    let client = sdk_client(&server.endpoint()).await;
    let name = unique_name("batch");
    create_active(&client, &name, 2).await.unwrap();
    let shards = list_all_shards(&client, &name).await.unwrap();

    // Binary payloads covering every byte value, including invalid UTF-8.
    let payloads: Vec<Vec<u8>> = (0..500u32)
        .map(|i| {
            let mut p = i.to_be_bytes().to_vec();
            p.extend((0..(i % 300)).map(|j| ((i * 7 + j) % 256) as u8));
            p
        })
        .collect();
    let entries: Vec<PutRecordsRequestEntry> = payloads
        .iter()
        .enumerate()
        .map(|(i, p)| {
            PutRecordsRequestEntry::builder()
                .partition_key(format!("pk-{i}"))
                .data(Blob::new(p.clone()))
                .build()
                .unwrap()
        })
        .collect();
    let out = client
        .put_records()
        .stream_name(&name)
        .set_records(Some(entries))
        .send()
        .await
        .unwrap();
    assert_eq!(out.failed_record_count(), Some(0));
    assert_eq!(out.records().len(), 500);
    let mut expected_by_seq: HashMap<String, (String, Vec<u8>, String)> = HashMap::new();
    let mut last_in_shard: HashMap<String, String> = HashMap::new();
    for (i, result) in out.records().iter().enumerate() {
        assert!(result.error_code().is_none(), "record {i}: {result:?}");
        let key = format!("pk-{i}");
        let shard = result.shard_id().expect("ShardId");
        let seq = result.sequence_number().expect("SequenceNumber");
        assert_eq!(shard, shard_for_hash(&shards, hash_key_of(&key)).unwrap());
        // Records of one request keep their order within a shard.
        if let Some(prev) = last_in_shard.get(shard) {
            assert_eq!(seq_cmp(prev, seq), std::cmp::Ordering::Less);
        }
        last_in_shard.insert(shard.to_string(), seq.to_string());
        expected_by_seq.insert(
            seq.to_string(),
            (shard.to_string(), payloads[i].clone(), key),
        );
    }

    let mut read = 0;
    for shard in &shards {
        let records = read_shard(&client, &name, shard.shard_id()).await.unwrap();
        for r in &records {
            let (exp_shard, exp_data, exp_key) = expected_by_seq
                .get(r.sequence_number())
                .unwrap_or_else(|| panic!("unexpected sequence number {}", r.sequence_number()));
            assert_eq!(exp_shard, shard.shard_id());
            assert_eq!(r.data().as_ref(), exp_data.as_slice());
            assert_eq!(r.partition_key(), Some(exp_key.as_str()));
        }
        read += records.len();
    }
    assert_eq!(read, 500);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shard_iterator_types_and_get_records_chaining() {
    let server = start_server();
    let client = sdk_client(&server.endpoint()).await;
    let name = unique_name("iter");
    create_active(&client, &name, 1).await.unwrap();
    let shard = "shardId-000000000000";

    let before_ms = now_ms();
    let mut seqs = Vec::new();
    for i in 0..10 {
        let out = client
            .put_record()
            .stream_name(&name)
            .partition_key("a")
            .data(Blob::new(format!("a-{i}")))
            .send()
            .await
            .unwrap();
        seqs.push(out.sequence_number().to_string());
    }
    let after_ms = now_ms();

    // TRIM_HORIZON, chained with Limit 3: 3 + 3 + 3 + 1.
    let mut iterator = shard_iterator(&client, &name, shard, ShardIteratorType::TrimHorizon)
        .await
        .unwrap();
    let mut got = Vec::new();
    let mut batch_sizes = Vec::new();
    for _ in 0..10 {
        let out = client
            .get_records()
            .shard_iterator(&iterator)
            .limit(3)
            .send()
            .await
            .unwrap();
        batch_sizes.push(out.records().len());
        got.extend_from_slice(out.records());
        iterator = out
            .next_shard_iterator()
            .expect("open shard has a next iterator")
            .to_string();
        if got.len() == 10 {
            assert_eq!(out.millis_behind_latest(), Some(0));
            break;
        }
    }
    assert_eq!(batch_sizes, [3, 3, 3, 1]);
    let got_seqs: Vec<&str> = got.iter().map(|r| r.sequence_number()).collect();
    assert_eq!(got_seqs, seqs);
    let mut last_arrival = i64::MIN;
    for (i, r) in got.iter().enumerate() {
        assert_eq!(r.data().as_ref(), format!("a-{i}").as_bytes());
        let arrival = date_time_ms(r.approximate_arrival_timestamp().expect("arrival"));
        // Second precision on the wire is allowed; allow a generous slack.
        assert!(
            arrival >= before_ms - 2_000 && arrival <= after_ms + 2_000,
            "arrival {arrival} outside [{before_ms}, {after_ms}]"
        );
        assert!(arrival >= last_arrival, "arrival timestamps go back");
        last_arrival = arrival;
    }
    // At the tip: nothing more, still behind by 0.
    let tip = client
        .get_records()
        .shard_iterator(&iterator)
        .send()
        .await
        .unwrap();
    assert!(tip.records().is_empty());
    assert_eq!(tip.millis_behind_latest(), Some(0));

    // AT_SEQUENCE_NUMBER / AFTER_SEQUENCE_NUMBER.
    let at = client
        .get_shard_iterator()
        .stream_name(&name)
        .shard_id(shard)
        .shard_iterator_type(ShardIteratorType::AtSequenceNumber)
        .starting_sequence_number(&seqs[3])
        .send()
        .await
        .unwrap();
    let records = read_from_iterator(&client, at.shard_iterator().unwrap().to_string())
        .await
        .unwrap();
    assert_eq!(
        records
            .iter()
            .map(|r| r.sequence_number())
            .collect::<Vec<_>>(),
        seqs[3..]
    );
    let after = client
        .get_shard_iterator()
        .stream_name(&name)
        .shard_id(shard)
        .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
        .starting_sequence_number(&seqs[3])
        .send()
        .await
        .unwrap();
    let records = read_from_iterator(&client, after.shard_iterator().unwrap().to_string())
        .await
        .unwrap();
    assert_eq!(
        records
            .iter()
            .map(|r| r.sequence_number())
            .collect::<Vec<_>>(),
        seqs[4..]
    );

    // LATEST sees only what comes after it.
    let latest = shard_iterator(&client, &name, shard, ShardIteratorType::Latest)
        .await
        .unwrap();
    let empty = client
        .get_records()
        .shard_iterator(&latest)
        .send()
        .await
        .unwrap();
    assert!(empty.records().is_empty());
    let next = empty.next_shard_iterator().unwrap().to_string();
    client
        .put_record()
        .stream_name(&name)
        .partition_key("a")
        .data(Blob::new("after-latest"))
        .send()
        .await
        .unwrap();
    let fresh = read_from_iterator(&client, next).await.unwrap();
    assert_eq!(fresh.len(), 1);
    assert_eq!(fresh[0].data().as_ref(), b"after-latest");

    // AT_TIMESTAMP: move the server clock 10 minutes ahead, write batch B,
    // and start from a timestamp between the batches.
    server.advance_clock(10 * 60 * 1000).unwrap();
    let mut b_seqs = Vec::new();
    for i in 0..3 {
        let out = client
            .put_record()
            .stream_name(&name)
            .partition_key("a")
            .data(Blob::new(format!("b-{i}")))
            .send()
            .await
            .unwrap();
        b_seqs.push(out.sequence_number().to_string());
    }
    let between = DateTime::from_millis(after_ms + 5 * 60 * 1000);
    let at_ts = client
        .get_shard_iterator()
        .stream_name(&name)
        .shard_id(shard)
        .shard_iterator_type(ShardIteratorType::AtTimestamp)
        .timestamp(between)
        .send()
        .await
        .unwrap();
    let records = read_from_iterator(&client, at_ts.shard_iterator().unwrap().to_string())
        .await
        .unwrap();
    assert_eq!(
        records
            .iter()
            .map(|r| r.sequence_number())
            .collect::<Vec<_>>(),
        b_seqs
    );
    // A timestamp before everything starts at the first record.
    let early = client
        .get_shard_iterator()
        .stream_name(&name)
        .shard_id(shard)
        .shard_iterator_type(ShardIteratorType::AtTimestamp)
        .timestamp(DateTime::from_millis(before_ms - 60 * 60 * 1000))
        .send()
        .await
        .unwrap();
    let records = read_from_iterator(&client, early.shard_iterator().unwrap().to_string())
        .await
        .unwrap();
    assert_eq!(records.len(), 14);
    assert_eq!(records[0].sequence_number(), seqs[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn millis_behind_latest_reflects_unread_data() {
    let server = start_server();
    let client = sdk_client(&server.endpoint()).await;
    let name = unique_name("behind");
    create_active(&client, &name, 1).await.unwrap();
    let shard = "shardId-000000000000";
    for i in 0..2 {
        client
            .put_record()
            .stream_name(&name)
            .partition_key("k")
            .data(Blob::new(format!("old-{i}")))
            .send()
            .await
            .unwrap();
    }
    server.advance_clock(60_000).unwrap();
    client
        .put_record()
        .stream_name(&name)
        .partition_key("k")
        .data(Blob::new("new"))
        .send()
        .await
        .unwrap();
    let it = shard_iterator(&client, &name, shard, ShardIteratorType::TrimHorizon)
        .await
        .unwrap();
    let out = client
        .get_records()
        .shard_iterator(it)
        .limit(1)
        .send()
        .await
        .unwrap();
    assert_eq!(out.records().len(), 1);
    let behind = out.millis_behind_latest().expect("MillisBehindLatest");
    assert!(
        behind >= 50_000,
        "one minute of unread data, got {behind} ms"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_limits_counts_open_shards() {
    let server = start_server();
    let client = sdk_client(&server.endpoint()).await;
    create_active(&client, &unique_name("limits"), 3)
        .await
        .unwrap();
    let out = client.describe_limits().send().await.unwrap();
    assert!(out.shard_limit() > 0);
    assert_eq!(out.open_shard_count(), 3);
    assert_eq!(out.on_demand_stream_count(), 0);
    assert!(out.on_demand_stream_count_limit() > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_period_increase_and_decrease() {
    let server = start_server();
    let client = sdk_client(&server.endpoint()).await;
    let name = unique_name("retention");
    create_active(&client, &name, 1).await.unwrap();
    let retention = |client: aws_sdk_kinesis::Client, name: String| async move {
        client
            .describe_stream_summary()
            .stream_name(name)
            .send()
            .await
            .unwrap()
            .stream_description_summary()
            .unwrap()
            .retention_period_hours()
    };

    client
        .increase_stream_retention_period()
        .stream_name(&name)
        .retention_period_hours(168)
        .send()
        .await
        .unwrap();
    wait_active(&client, &name).await.unwrap();
    assert_eq!(retention(client.clone(), name.clone()).await, 168);

    client
        .decrease_stream_retention_period()
        .stream_name(&name)
        .retention_period_hours(48)
        .send()
        .await
        .unwrap();
    wait_active(&client, &name).await.unwrap();
    assert_eq!(retention(client.clone(), name.clone()).await, 48);

    // Increase to a smaller value, decrease to a larger one, below 24 h and
    // above 8760 h are all rejected with InvalidArgumentException.
    let err = client
        .increase_stream_retention_period()
        .stream_name(&name)
        .retention_period_hours(36)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_invalid_argument_exception(), "{err:?}");
    let err = client
        .decrease_stream_retention_period()
        .stream_name(&name)
        .retention_period_hours(72)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_invalid_argument_exception(), "{err:?}");
    let err = client
        .decrease_stream_retention_period()
        .stream_name(&name)
        .retention_period_hours(12)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_invalid_argument_exception(), "{err:?}");
    let err = client
        .increase_stream_retention_period()
        .stream_name(&name)
        .retention_period_hours(8761)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(
        err.is_invalid_argument_exception() || err.meta().code() == Some("ValidationException"),
        "{err:?}"
    );
    assert_eq!(retention(client.clone(), name.clone()).await, 48);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_by_stream_name_and_by_arn() {
    let server = start_server();
    let client = sdk_client(&server.endpoint()).await;
    let name = unique_name("tags");
    client
        .create_stream()
        .stream_name(&name)
        .shard_count(1)
        .tags("created", "yes")
        .send()
        .await
        .unwrap();
    wait_active(&client, &name).await.unwrap();
    let arn = stream_arn(&name);

    client
        .add_tags_to_stream()
        .stream_name(&name)
        .tags("team", "data")
        .tags("env", "test")
        .send()
        .await
        .unwrap();
    let out = client
        .list_tags_for_stream()
        .stream_name(&name)
        .send()
        .await
        .unwrap();
    assert_eq!(
        tags_map(out.tags()),
        BTreeMap::from([
            ("created".to_string(), "yes".to_string()),
            ("env".to_string(), "test".to_string()),
            ("team".to_string(), "data".to_string()),
        ])
    );
    assert!(!out.has_more_tags());

    // Paging: Limit 1, then ExclusiveStartTagKey.
    let page = client
        .list_tags_for_stream()
        .stream_name(&name)
        .limit(1)
        .send()
        .await
        .unwrap();
    assert_eq!(page.tags().len(), 1);
    assert!(page.has_more_tags());
    let rest = client
        .list_tags_for_stream()
        .stream_name(&name)
        .exclusive_start_tag_key(page.tags()[0].key())
        .send()
        .await
        .unwrap();
    assert_eq!(rest.tags().len(), 2);

    // Overwrite a value, remove a key.
    client
        .add_tags_to_stream()
        .stream_name(&name)
        .tags("env", "prod")
        .send()
        .await
        .unwrap();
    client
        .remove_tags_from_stream()
        .stream_name(&name)
        .tag_keys("team")
        .send()
        .await
        .unwrap();
    let out = client
        .list_tags_for_stream()
        .stream_arn(&arn)
        .send()
        .await
        .unwrap();
    assert_eq!(
        tags_map(out.tags()),
        BTreeMap::from([
            ("created".to_string(), "yes".to_string()),
            ("env".to_string(), "prod".to_string()),
        ])
    );

    // The resource-ARN flavour.
    client
        .tag_resource()
        .resource_arn(&arn)
        .tags("cost-center", "42")
        .send()
        .await
        .unwrap();
    let out = client
        .list_tags_for_resource()
        .resource_arn(&arn)
        .send()
        .await
        .unwrap();
    assert_eq!(
        tags_map(out.tags()).get("cost-center").map(String::as_str),
        Some("42")
    );
    assert_eq!(out.tags().len(), 3);
    client
        .untag_resource()
        .resource_arn(&arn)
        .tag_keys("cost-center")
        .tag_keys("created")
        .send()
        .await
        .unwrap();
    let out = client
        .list_tags_for_resource()
        .resource_arn(&arn)
        .send()
        .await
        .unwrap();
    assert_eq!(
        tags_map(out.tags()),
        BTreeMap::from([("env".to_string(), "prod".to_string())])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_arn_works_in_place_of_stream_name() {
    let server = start_server();
    let client = sdk_client(&server.endpoint()).await;
    let name = unique_name("byarn");
    create_active(&client, &name, 1).await.unwrap();
    let arn = stream_arn(&name);

    let summary = client
        .describe_stream_summary()
        .stream_arn(&arn)
        .send()
        .await
        .unwrap();
    assert_eq!(
        summary.stream_description_summary().unwrap().stream_name(),
        name
    );
    let desc = client
        .describe_stream()
        .stream_arn(&arn)
        .send()
        .await
        .unwrap();
    assert_eq!(desc.stream_description().unwrap().shards().len(), 1);
    let shards = client.list_shards().stream_arn(&arn).send().await.unwrap();
    assert_eq!(shards.shards().len(), 1);

    let put = client
        .put_record()
        .stream_arn(&arn)
        .partition_key("x")
        .data(Blob::new("by-arn"))
        .send()
        .await
        .unwrap();
    let batch = client
        .put_records()
        .stream_arn(&arn)
        .records(
            PutRecordsRequestEntry::builder()
                .partition_key("y")
                .data(Blob::new("by-arn-batch"))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(batch.failed_record_count(), Some(0));
    let it = client
        .get_shard_iterator()
        .stream_arn(&arn)
        .shard_id(put.shard_id())
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .unwrap();
    let out = client
        .get_records()
        .stream_arn(&arn)
        .shard_iterator(it.shard_iterator().unwrap())
        .send()
        .await
        .unwrap();
    let data: Vec<&[u8]> = out.records().iter().map(|r| r.data().as_ref()).collect();
    assert_eq!(data, [b"by-arn".as_slice(), b"by-arn-batch".as_slice()]);

    client
        .increase_stream_retention_period()
        .stream_arn(&arn)
        .retention_period_hours(25)
        .send()
        .await
        .unwrap();
    client
        .delete_stream()
        .stream_arn(&arn)
        .send()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_stream_removes_it() {
    let server = start_server();
    let client = sdk_client(&server.endpoint()).await;
    let name = unique_name("delete");
    let keep = unique_name("keep");
    create_active(&client, &name, 2).await.unwrap();
    create_active(&client, &keep, 1).await.unwrap();
    client
        .delete_stream()
        .stream_name(&name)
        .send()
        .await
        .unwrap();

    // DELETING for a while, then gone.
    let deadline = Instant::now() + Duration::from_millis(STREAM_ACTIVE_TIMEOUT_MS);
    loop {
        match client
            .describe_stream_summary()
            .stream_name(&name)
            .send()
            .await
        {
            Ok(out) => {
                let status = out
                    .stream_description_summary()
                    .unwrap()
                    .stream_status()
                    .clone();
                assert_eq!(status, StreamStatus::Deleting);
            }
            Err(e) => {
                let e = e.into_service_error();
                assert!(e.is_resource_not_found_exception(), "{e:?}");
                break;
            }
        }
        assert!(Instant::now() < deadline, "stream never went away");
        tokio::time::sleep(Duration::from_millis(POLL_INTERVAL_MS)).await;
    }
    let list = client.list_streams().send().await.unwrap();
    assert_eq!(list.stream_names(), std::slice::from_ref(&keep));
    let limits = client.describe_limits().send().await.unwrap();
    assert_eq!(limits.open_shard_count(), 1);
    // The name can be used again.
    create_active(&client, &name, 1).await.unwrap();
}
