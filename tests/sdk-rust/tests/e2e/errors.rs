//! Error cases surface as the SDK's typed errors, as they do against AWS.

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{PutRecordsRequestEntry, ShardIteratorType};

use crate::common::*;

/// `err.meta().code()` of a failed call, for errors that only need a code check.
macro_rules! error_code {
    ($call:expr) => {{
        let err = $call
            .await
            .expect_err("call should fail")
            .into_service_error();
        aws_sdk_kinesis::error::ProvideErrorMetadata::code(&err).map(str::to_string)
    }};
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_stream_is_resource_not_found() {
    let server = start_server();
    let client = sdk_client(&server.endpoint()).await;
    let err = client
        .describe_stream_summary()
        .stream_name("nope")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_resource_not_found_exception(), "{err:?}");
    let err = client
        .describe_stream()
        .stream_name("nope")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_resource_not_found_exception(), "{err:?}");
    let err = client
        .put_record()
        .stream_name("nope")
        .partition_key("k")
        .data(Blob::new("x"))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_resource_not_found_exception(), "{err:?}");
    let err = client
        .delete_stream()
        .stream_name("nope")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_resource_not_found_exception(), "{err:?}");
    let err = client
        .list_tags_for_resource()
        .resource_arn(stream_arn("nope"))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_resource_not_found_exception(), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_create_is_resource_in_use() {
    let server = start_server();
    let client = sdk_client(&server.endpoint()).await;
    let name = unique_name("dup");
    create_active(&client, &name, 1).await.unwrap();
    let err = client
        .create_stream()
        .stream_name(&name)
        .shard_count(1)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_resource_in_use_exception(), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_shard_is_resource_not_found() {
    let server = start_server();
    let client = sdk_client(&server.endpoint()).await;
    let name = unique_name("noshard");
    create_active(&client, &name, 2).await.unwrap();
    let err = client
        .get_shard_iterator()
        .stream_name(&name)
        .shard_id("shardId-000000000007")
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_resource_not_found_exception(), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequence_number_from_another_shard_is_invalid_argument() {
    let server = start_server();
    let client = sdk_client(&server.endpoint()).await;
    let name = unique_name("othershard");
    create_active(&client, &name, 2).await.unwrap();
    let on_last = client
        .put_record()
        .stream_name(&name)
        .partition_key("k")
        .explicit_hash_key(u128::MAX.to_string())
        .data(Blob::new("x"))
        .send()
        .await
        .unwrap();
    assert_eq!(on_last.shard_id(), "shardId-000000000001");
    for kind in [
        ShardIteratorType::AtSequenceNumber,
        ShardIteratorType::AfterSequenceNumber,
    ] {
        let err = client
            .get_shard_iterator()
            .stream_name(&name)
            .shard_id("shardId-000000000000")
            .shard_iterator_type(kind.clone())
            .starting_sequence_number(on_last.sequence_number())
            .send()
            .await
            .unwrap_err()
            .into_service_error();
        assert!(err.is_invalid_argument_exception(), "{kind:?}: {err:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iterator_expires_after_five_minutes() {
    let server = start_server();
    let client = sdk_client(&server.endpoint()).await;
    let name = unique_name("expire");
    create_active(&client, &name, 1).await.unwrap();
    client
        .put_record()
        .stream_name(&name)
        .partition_key("k")
        .data(Blob::new("x"))
        .send()
        .await
        .unwrap();
    let it = shard_iterator(
        &client,
        &name,
        "shardId-000000000000",
        ShardIteratorType::TrimHorizon,
    )
    .await
    .unwrap();
    // Still valid before the clock moves.
    let fresh = client
        .get_records()
        .shard_iterator(&it)
        .send()
        .await
        .unwrap();
    assert_eq!(fresh.records().len(), 1);
    let next = fresh.next_shard_iterator().unwrap().to_string();

    server.advance_clock(6 * 60 * 1000).unwrap();
    for iterator in [it, next] {
        let err = client
            .get_records()
            .shard_iterator(iterator)
            .send()
            .await
            .unwrap_err()
            .into_service_error();
        assert!(err.is_expired_iterator_exception(), "{err:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_iterator_is_invalid_argument() {
    let server = start_server();
    let client = sdk_client(&server.endpoint()).await;
    let err = client
        .get_records()
        .shard_iterator("AAAAAAAAAAFnotavaliditerator==")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_invalid_argument_exception(), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_shards_rejects_next_token_with_stream_name() {
    let server = start_server();
    let client = sdk_client(&server.endpoint()).await;
    let name = unique_name("tokenname");
    create_active(&client, &name, 3).await.unwrap();
    let page = client
        .list_shards()
        .stream_name(&name)
        .max_results(1)
        .send()
        .await
        .unwrap();
    let token = page.next_token().expect("NextToken").to_string();
    let err = client
        .list_shards()
        .stream_name(&name)
        .next_token(token)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_invalid_argument_exception(), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_constraints_are_validated() {
    let server = start_server();
    let client = sdk_client(&server.endpoint()).await;
    let name = unique_name("validate");
    create_active(&client, &name, 1).await.unwrap();

    // PartitionKey longer than 256 characters.
    let code = error_code!(client
        .put_record()
        .stream_name(&name)
        .partition_key("p".repeat(257))
        .data(Blob::new("x"))
        .send());
    assert_eq!(code.as_deref(), Some("ValidationException"));

    // More than 500 records in one PutRecords.
    let entries: Vec<PutRecordsRequestEntry> = (0..501)
        .map(|i| {
            PutRecordsRequestEntry::builder()
                .partition_key(format!("k{i}"))
                .data(Blob::new("x"))
                .build()
                .unwrap()
        })
        .collect();
    let code = error_code!(client
        .put_records()
        .stream_name(&name)
        .set_records(Some(entries))
        .send());
    assert_eq!(code.as_deref(), Some("ValidationException"));

    // ShardCount 0.
    let code = error_code!(client
        .create_stream()
        .stream_name(unique_name("zero"))
        .shard_count(0)
        .send());
    assert_eq!(code.as_deref(), Some("ValidationException"));

    // An ExplicitHashKey outside [0, 2^128 - 1].
    let code = error_code!(client
        .put_record()
        .stream_name(&name)
        .partition_key("k")
        .explicit_hash_key("340282366920938463463374607431768211456")
        .data(Blob::new("x"))
        .send());
    assert_eq!(code.as_deref(), Some("InvalidArgumentException"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shard_limit_is_limit_exceeded() {
    let server = start_server();
    let client = sdk_client(&server.endpoint()).await;
    let limits = client.describe_limits().send().await.unwrap();
    let too_many = limits.shard_limit() + 1;
    let err = client
        .create_stream()
        .stream_name(unique_name("toomany"))
        .shard_count(too_many)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(
        err.is_limit_exceeded_exception(),
        "{too_many} shards: {err:?}"
    );
}
