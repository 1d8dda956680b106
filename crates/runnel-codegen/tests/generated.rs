//! The checked-in generated files equal what the generator makes from the
//! vendored models, so neither can drift from the other.

use std::path::{Path, PathBuf};

use runnel_codegen::{config, generate, Request};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

#[test]
fn checked_in_output_matches_the_generator() {
    let targets = config::parse(&read("models/codegen.json")).unwrap();
    assert!(!targets.is_empty());
    for t in targets {
        let model = read(&t.model);
        let code = generate(&Request {
            model_path: &t.model,
            model: &model,
            ops: t.ops.as_deref(),
        })
        .unwrap();
        assert!(
            code == read(&t.out),
            "{} is out of date: run `cargo run -p runnel-codegen`",
            t.out
        );
    }
}

#[test]
fn only_shapes_of_the_listed_operations_are_generated() {
    let model = read("models/glue/2017-03-31/service-2.json");
    let ops = vec!["GetTable".to_string()];
    let code = generate(&Request {
        model_path: "models/glue/2017-03-31/service-2.json",
        model: &model,
        ops: Some(&ops),
    })
    .unwrap();
    assert!(code.contains("pub struct GetTableRequest {"));
    assert!(code.contains("pub struct StorageDescriptor {"));
    assert!(!code.contains("pub struct CreateJobRequest {"));
    let structs = code.matches("\npub struct ").count();
    assert!(structs < 60, "GetTable pulled {structs} structures");
    assert!(code.contains("name: \"GetTable\""));
}

#[test]
fn unknown_operations_are_refused() {
    let model = read("models/firehose/2015-08-04/service-2.json");
    let ops = vec!["PutRecords".to_string()];
    let err = generate(&Request {
        model_path: "m",
        model: &model,
        ops: Some(&ops),
    })
    .unwrap_err();
    assert_eq!(err, "the model has no operation PutRecords");
}

/// Every pattern of every vendored model that the generator would emit
/// compiles with the runtime's regex (Glue's and Kinesis's too, for the
/// services generated later).
#[test]
fn every_supported_model_pattern_compiles() {
    let mut checked = 0;
    for model in [
        "models/firehose/2015-08-04/service-2.json",
        "models/glue/2017-03-31/service-2.json",
        "models/kinesis/2013-12-02/service-2.json",
    ] {
        let root = runnel_codegen::json::Json::parse(&read(model)).unwrap();
        for (name, shape) in root.get("shapes").unwrap().members() {
            let Some(p) = shape.str("pattern") else {
                continue;
            };
            if !runnel_codegen::pattern_supported(p) {
                continue;
            }
            let pattern = runnel_aws::Pattern::new(Box::leak(p.to_string().into_boxed_str()));
            assert!(pattern.compiles(), "{model} {name}: {p}");
            checked += 1;
        }
    }
    assert!(checked > 100, "only {checked} patterns checked");
}
