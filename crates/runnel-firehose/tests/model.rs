//! The generated Firehose model on real request bodies: AWS's validation
//! messages, strict enums, and serde round trips.

use runnel_aws::{parse_json, RequestError, Validate};
use runnel_firehose::model::{
    CompressionFormat, CreateDeliveryStreamInput, DeliveryStreamType, PutRecordBatchInput,
    UntagDeliveryStreamInput, PATTERNS,
};

fn validation(err: Result<impl std::fmt::Debug, RequestError>) -> String {
    match err {
        Err(RequestError::Validation(m)) => m,
        other => panic!("expected a validation error, got {other:?}"),
    }
}

#[test]
fn long_name_and_missing_required_member_give_two_errors() {
    let name = "a".repeat(65);
    let body = format!(
        r#"{{"DeliveryStreamName":"{name}","DeliveryStreamType":"DirectPut",
            "ExtendedS3DestinationConfiguration":{{"RoleARN":"arn:aws:iam::123456789012:role/firehose"}}}}"#
    );
    let msg = validation(parse_json::<CreateDeliveryStreamInput>(body.as_bytes()));
    assert_eq!(
        msg,
        format!(
            "2 validation errors detected: Value '{name}' at 'deliveryStreamName' failed to \
             satisfy constraint: Member must have length less than or equal to 64; Value null at \
             'extendedS3DestinationConfiguration.bucketARN' failed to satisfy constraint: Member \
             must not be null"
        )
    );
}

#[test]
fn bad_name_characters_break_the_pattern() {
    let msg = validation(parse_json::<CreateDeliveryStreamInput>(
        br#"{"DeliveryStreamName":"a b"}"#,
    ));
    assert_eq!(
        msg,
        "1 validation error detected: Value 'a b' at 'deliveryStreamName' failed to satisfy \
         constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+"
    );
}

#[test]
fn put_record_batch_needs_one_record() {
    let msg = validation(parse_json::<PutRecordBatchInput>(
        br#"{"DeliveryStreamName":"s","Records":[]}"#,
    ));
    assert_eq!(
        msg,
        "1 validation error detected: Value '[]' at 'records' failed to satisfy constraint: \
         Member must have length greater than or equal to 1"
    );
}

#[test]
fn put_record_batch_items_are_checked_with_aws_paths() {
    let msg = validation(parse_json::<PutRecordBatchInput>(
        br#"{"DeliveryStreamName":"s","Records":[{"Data":"aGk="},{}]}"#,
    ));
    assert_eq!(
        msg,
        "1 validation error detected: Value null at 'records.2.member.data' failed to satisfy \
         constraint: Member must not be null"
    );
    let ok = parse_json::<PutRecordBatchInput>(
        br#"{"DeliveryStreamName":"s","Records":[{"Data":"aGk="}]}"#,
    )
    .unwrap();
    assert_eq!(ok.records.unwrap()[0].data.as_ref().unwrap().0, b"hi");
}

#[test]
fn put_record_batch_missing_everything() {
    let msg = validation(parse_json::<PutRecordBatchInput>(b"{}"));
    assert_eq!(
        msg,
        "2 validation errors detected: Value null at 'deliveryStreamName' failed to satisfy \
         constraint: Member must not be null; Value null at 'records' failed to satisfy \
         constraint: Member must not be null"
    );
}

#[test]
fn delivery_stream_type_outside_the_enum() {
    let msg = validation(parse_json::<CreateDeliveryStreamInput>(
        br#"{"DeliveryStreamName":"s","DeliveryStreamType":"Bogus"}"#,
    ));
    assert_eq!(
        msg,
        "1 validation error detected: Value 'Bogus' at 'deliveryStreamType' failed to satisfy \
         constraint: Member must satisfy enum value set: [DirectPut, KinesisStreamAsSource, \
         MSKAsSource, DatabaseAsSource]"
    );
    assert_eq!(
        DeliveryStreamType::parse("KinesisStreamAsSource"),
        Some(DeliveryStreamType::KinesisStreamAsSource)
    );
    assert_eq!(DeliveryStreamType::parse("directput"), None);
}

#[test]
fn nested_enum_outside_the_set_has_the_nested_path() {
    let msg = validation(parse_json::<CreateDeliveryStreamInput>(
        br#"{"DeliveryStreamName":"s","ExtendedS3DestinationConfiguration":{
            "RoleARN":"arn:aws:iam::123456789012:role/r","BucketARN":"arn:aws:s3:::b",
            "CompressionFormat":"BZIP2"}}"#,
    ));
    assert_eq!(
        msg,
        "1 validation error detected: Value 'BZIP2' at \
         'extendedS3DestinationConfiguration.compressionFormat' failed to satisfy constraint: \
         Member must satisfy enum value set: [UNCOMPRESSED, GZIP, ZIP, Snappy, HADOOP_SNAPPY]"
    );
}

#[test]
fn numeric_ranges() {
    let msg = validation(parse_json::<CreateDeliveryStreamInput>(
        br#"{"DeliveryStreamName":"s","ExtendedS3DestinationConfiguration":{
            "RoleARN":"arn:aws:iam::123456789012:role/r","BucketARN":"arn:aws:s3:::b",
            "BufferingHints":{"SizeInMBs":0,"IntervalInSeconds":901}}}"#,
    ));
    assert_eq!(
        msg,
        "2 validation errors detected: Value '0' at \
         'extendedS3DestinationConfiguration.bufferingHints.sizeInMBs' failed to satisfy \
         constraint: Member must have value greater than or equal to 1; Value '901' at \
         'extendedS3DestinationConfiguration.bufferingHints.intervalInSeconds' failed to \
         satisfy constraint: Member must have value less than or equal to 900"
    );
}

#[test]
fn string_list_items_are_reported_for_the_whole_list() {
    let long = "k".repeat(129);
    let body = format!(r#"{{"DeliveryStreamName":"s","TagKeys":["", "ok", "{long}"]}}"#);
    let msg = validation(parse_json::<UntagDeliveryStreamInput>(body.as_bytes()));
    assert_eq!(
        msg,
        format!(
            "1 validation error detected: Value '[, ok, {long}]' at 'tagKeys' failed to satisfy \
             constraint: Member must satisfy constraint: [Member must have length less than or \
             equal to 128, Member must have length greater than or equal to 1]"
        )
    );
}

#[test]
fn sensitive_values_are_left_out_of_the_message() {
    let msg = validation(parse_json::<CreateDeliveryStreamInput>(
        br#"{"DeliveryStreamName":"s","HttpEndpointDestinationConfiguration":{
            "EndpointConfiguration":{"Url":"http://secret.example/token=abc"},
            "S3Configuration":{"RoleARN":"arn:aws:iam::123456789012:role/r","BucketARN":"arn:aws:s3:::b"}}}"#,
    ));
    assert_eq!(
        msg,
        "1 validation error detected: Value at \
         'httpEndpointDestinationConfiguration.endpointConfiguration.url' failed to satisfy \
         constraint: Member must satisfy regular expression pattern: https://.*"
    );
}

const FULL_EXTENDED_S3: &str = r#"{
  "DeliveryStreamName": "orders-to-s3",
  "DeliveryStreamType": "KinesisStreamAsSource",
  "KinesisStreamSourceConfiguration": {
    "KinesisStreamARN": "arn:aws:kinesis:us-east-1:123456789012:stream/orders",
    "RoleARN": "arn:aws:iam::123456789012:role/firehose-source"
  },
  "ExtendedS3DestinationConfiguration": {
    "RoleARN": "arn:aws:iam::123456789012:role/firehose-s3",
    "BucketARN": "arn:aws:s3:::orders-bucket",
    "Prefix": "orders/!{partitionKeyFromQuery:customer}/",
    "ErrorOutputPrefix": "errors/!{firehose:error-output-type}/",
    "BufferingHints": {"SizeInMBs": 64, "IntervalInSeconds": 60},
    "CompressionFormat": "UNCOMPRESSED",
    "EncryptionConfiguration": {
      "KMSEncryptionConfig": {"AWSKMSKeyARN": "arn:aws:kms:us-east-1:123456789012:key/abcd-1234"}
    },
    "CloudWatchLoggingOptions": {"Enabled": true, "LogGroupName": "/aws/firehose/orders", "LogStreamName": "S3Delivery"},
    "ProcessingConfiguration": {
      "Enabled": true,
      "Processors": [{
        "Type": "MetadataExtraction",
        "Parameters": [
          {"ParameterName": "MetadataExtractionQuery", "ParameterValue": "{customer:.customer_id}"},
          {"ParameterName": "JsonParsingEngine", "ParameterValue": "JQ-1.6"}
        ]
      }]
    },
    "S3BackupMode": "Enabled",
    "S3BackupConfiguration": {
      "RoleARN": "arn:aws:iam::123456789012:role/firehose-s3",
      "BucketARN": "arn:aws:s3:::orders-backup",
      "CompressionFormat": "GZIP"
    },
    "DataFormatConversionConfiguration": {
      "Enabled": true,
      "SchemaConfiguration": {
        "RoleARN": "arn:aws:iam::123456789012:role/firehose-glue",
        "DatabaseName": "sales", "TableName": "orders", "Region": "us-east-1", "VersionId": "LATEST"
      },
      "InputFormatConfiguration": {"Deserializer": {"OpenXJsonSerDe": {"CaseInsensitive": true, "ColumnToJsonKeyMappings": {"ts": "timestamp"}}}},
      "OutputFormatConfiguration": {"Serializer": {"ParquetSerDe": {"Compression": "SNAPPY", "WriterVersion": "V1"}}}
    },
    "DynamicPartitioningConfiguration": {"Enabled": true, "RetryOptions": {"DurationInSeconds": 300}},
    "FileExtension": ".parquet",
    "CustomTimeZone": "UTC"
  },
  "Tags": [{"Key": "team", "Value": "orders"}]
}"#;

#[test]
fn full_extended_s3_config_round_trips() {
    let input: CreateDeliveryStreamInput = parse_json(FULL_EXTENDED_S3.as_bytes()).unwrap();
    let s3 = input
        .extended_s3_destination_configuration
        .as_ref()
        .unwrap();
    assert_eq!(s3.compression_format, Some(CompressionFormat::Uncompressed));
    assert_eq!(
        s3.buffering_hints.as_ref().and_then(|b| b.size_in_mbs),
        Some(64)
    );
    let back = serde_json::to_value(&input).unwrap();
    let original: serde_json::Value = serde_json::from_str(FULL_EXTENDED_S3).unwrap();
    assert_eq!(back, original);
    let again: CreateDeliveryStreamInput = serde_json::from_value(back).unwrap();
    assert_eq!(again, input);
    assert_eq!(input.validation_error(), None);
}

#[test]
fn every_generated_pattern_compiles() {
    assert!(!PATTERNS.is_empty());
    for p in PATTERNS {
        assert!(p.compiles(), "pattern does not compile: {}", p.source());
    }
}
