//! A CloudWatch-compatible subset (GetMetricStatistics, GetMetricData,
//! ListMetrics, PutMetricData) over the protocols botocore's `cloudwatch`
//! model lists: Smithy RPC v2 CBOR (what current boto3 and the aws CLI send:
//! `POST /service/GraniteServiceVersion20100801/operation/<Op>`) and AWS
//! JSON 1.0 (`X-Amz-Target: GraniteServiceVersion20100801.<Op>`).
//!
//! Requests are decoded into a JSON value tree (CBOR timestamps, tag 1,
//! become epoch-second numbers); responses are built as JSON values in which
//! timestamps are `{"$ts": seconds}` and rendered per protocol.

use std::sync::Arc;

use runnel_metrics::{Registry, SeriesKey, Stat};
use serde_json::{json, Map, Value};

pub const TARGET_PREFIX: &str = "GraniteServiceVersion20100801";
pub const RPC_PATH_PREFIX: &str = "/service/GraniteServiceVersion20100801/operation/";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wire {
    RpcV2Cbor,
    Json10,
}

#[derive(Debug)]
pub struct CwError {
    pub error_type: &'static str,
    pub message: String,
}

fn invalid(message: impl Into<String>) -> CwError {
    CwError {
        error_type: "InvalidParameterValueException",
        message: message.into(),
    }
}

fn missing(field: &str) -> CwError {
    CwError {
        error_type: "MissingRequiredParameterException",
        message: format!("The parameter {field} is required."),
    }
}

/// CBOR → JSON tree; tag 1 (epoch time) becomes its number.
pub fn cbor_to_json(v: ciborium::Value) -> Value {
    use ciborium::Value as C;
    match v {
        C::Integer(i) => i128::from(i)
            .try_into()
            .map(|n: i64| json!(n))
            .unwrap_or(Value::Null),
        C::Float(f) => json!(f),
        C::Text(t) => Value::String(t),
        C::Bool(b) => Value::Bool(b),
        C::Null => Value::Null,
        C::Tag(_, inner) => cbor_to_json(*inner),
        C::Array(a) => Value::Array(a.into_iter().map(cbor_to_json).collect()),
        C::Map(m) => Value::Object(
            m.into_iter()
                .filter_map(|(k, v)| match k {
                    C::Text(k) => Some((k, cbor_to_json(v))),
                    _ => None,
                })
                .collect(),
        ),
        C::Bytes(b) => Value::String(String::from_utf8_lossy(&b).into_owned()),
        _ => Value::Null,
    }
}

fn json_to_cbor(v: Value) -> ciborium::Value {
    use ciborium::Value as C;
    match v {
        Value::Null => C::Null,
        Value::Bool(b) => C::Bool(b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => C::Integer(i.into()),
            None => C::Float(n.as_f64().unwrap_or(0.0)),
        },
        Value::String(s) => C::Text(s),
        Value::Array(a) => C::Array(a.into_iter().map(json_to_cbor).collect()),
        Value::Object(o) => {
            if let (1, Some(ts)) = (o.len(), o.get("$ts").and_then(Value::as_f64)) {
                return C::Tag(1, Box::new(C::Float(ts)));
            }
            C::Map(
                o.into_iter()
                    .map(|(k, v)| (C::Text(k), json_to_cbor(v)))
                    .collect(),
            )
        }
    }
}

fn json_timestamps(v: Value) -> Value {
    match v {
        Value::Array(a) => Value::Array(a.into_iter().map(json_timestamps).collect()),
        Value::Object(o) => {
            if let (1, Some(ts)) = (o.len(), o.get("$ts").cloned()) {
                return ts;
            }
            Value::Object(
                o.into_iter()
                    .map(|(k, v)| (k, json_timestamps(v)))
                    .collect(),
            )
        }
        other => other,
    }
}

pub fn render(wire: Wire, v: Value) -> Vec<u8> {
    match wire {
        Wire::Json10 => serde_json::to_vec(&json_timestamps(v)).unwrap_or_default(),
        Wire::RpcV2Cbor => {
            let mut out = Vec::new();
            if ciborium::into_writer(&json_to_cbor(v), &mut out).is_err() {
                out = vec![0xa0];
            }
            out
        }
    }
}

pub fn decode(wire: Wire, body: &[u8]) -> Result<Value, CwError> {
    if body.is_empty() {
        return Ok(json!({}));
    }
    match wire {
        Wire::Json10 => {
            serde_json::from_slice(body).map_err(|e| invalid(format!("malformed JSON: {e}")))
        }
        Wire::RpcV2Cbor => ciborium::from_reader::<ciborium::Value, _>(body)
            .map(cbor_to_json)
            .map_err(|e| invalid(format!("malformed CBOR: {e}"))),
    }
}

fn ts(ms: u64) -> Value {
    json!({ "$ts": ms as f64 / 1000.0 })
}

fn secs_to_ms(v: &Value) -> Option<u64> {
    v.as_f64()
        .filter(|f| *f >= 0.0)
        .map(|f| (f * 1000.0).round() as u64)
}

fn dims_of(v: Option<&Value>) -> Vec<(String, Option<String>)> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|d| {
                    let name = d.get("Name")?.as_str()?.to_string();
                    Some((
                        name,
                        d.get("Value").and_then(Value::as_str).map(str::to_string),
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn key_of(namespace: &str, name: &str, dims: &[(String, Option<String>)]) -> SeriesKey {
    let pairs: Vec<(&str, &str)> = dims
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_deref().unwrap_or("")))
        .collect();
    SeriesKey::new(namespace, name, &pairs)
}

fn stat_value(stat: &Stat, which: &str) -> Option<f64> {
    match which {
        "SampleCount" => Some(stat.count),
        "Sum" => Some(stat.sum),
        "Minimum" => Some(stat.min),
        "Maximum" => Some(stat.max),
        "Average" => Some(if stat.count > 0.0 {
            stat.sum / stat.count
        } else {
            0.0
        }),
        _ => None,
    }
}

fn str_field<'a>(v: &'a Value, name: &str) -> Result<&'a str, CwError> {
    v.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| missing(name))
}

fn range(v: &Value) -> Result<(u64, u64), CwError> {
    let start = v
        .get("StartTime")
        .and_then(secs_to_ms)
        .ok_or_else(|| missing("StartTime"))?;
    let end = v
        .get("EndTime")
        .and_then(secs_to_ms)
        .ok_or_else(|| missing("EndTime"))?;
    if end <= start {
        return Err(invalid(
            "The parameter StartTime must be less than the parameter EndTime.",
        ));
    }
    Ok((start, end))
}

pub fn handle(registry: &Arc<Registry>, op: &str, input: Value) -> Result<Value, CwError> {
    match op {
        "GetMetricStatistics" => {
            let namespace = str_field(&input, "Namespace")?;
            let name = str_field(&input, "MetricName")?;
            let (start, end) = range(&input)?;
            let period = input
                .get("Period")
                .and_then(Value::as_u64)
                .ok_or_else(|| missing("Period"))?;
            if period == 0 || (period >= 60 && period % 60 != 0) {
                return Err(invalid("The parameter Period must be a multiple of 60."));
            }
            let stats: Vec<String> = input
                .get("Statistics")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            if stats.is_empty() {
                return Err(missing("Statistics"));
            }
            let key = key_of(namespace, name, &dims_of(input.get("Dimensions")));
            let points = registry.query(&key, start, end, period * 1000);
            let datapoints: Vec<Value> = points
                .iter()
                .map(|p| {
                    let mut m = Map::new();
                    m.insert("Timestamp".into(), ts(p.timestamp_ms));
                    for s in &stats {
                        if let Some(v) = stat_value(&p.stat, s) {
                            m.insert(s.clone(), json!(v));
                        }
                    }
                    m.insert("Unit".into(), json!(p.unit));
                    Value::Object(m)
                })
                .collect();
            Ok(json!({ "Label": name, "Datapoints": datapoints }))
        }
        "GetMetricData" => {
            let (start, end) = range(&input)?;
            let queries = input
                .get("MetricDataQueries")
                .and_then(Value::as_array)
                .ok_or_else(|| missing("MetricDataQueries"))?;
            let mut results = Vec::new();
            for q in queries {
                let id = str_field(q, "Id")?;
                let Some(stat) = q.get("MetricStat") else {
                    return Err(invalid(format!(
                        "Query {id}: only MetricStat queries are supported, not Expression."
                    )));
                };
                let metric = stat
                    .get("Metric")
                    .ok_or_else(|| missing("MetricStat.Metric"))?;
                let namespace = str_field(metric, "Namespace")?;
                let name = str_field(metric, "MetricName")?;
                let period = stat
                    .get("Period")
                    .and_then(Value::as_u64)
                    .ok_or_else(|| missing("MetricStat.Period"))?;
                let which = str_field(stat, "Stat")?;
                let key = key_of(namespace, name, &dims_of(metric.get("Dimensions")));
                let mut points = registry.query(&key, start, end, period.max(1) * 1000);
                points.reverse(); // TimestampDescending, the default ScanBy
                let values: Vec<Value> = points
                    .iter()
                    .filter_map(|p| stat_value(&p.stat, which))
                    .map(|v| json!(v))
                    .collect();
                let stamps: Vec<Value> = points.iter().map(|p| ts(p.timestamp_ms)).collect();
                results.push(json!({
                    "Id": id,
                    "Label": q.get("Label").and_then(Value::as_str).unwrap_or(name),
                    "Timestamps": stamps,
                    "Values": values,
                    "StatusCode": "Complete",
                }));
            }
            Ok(json!({ "MetricDataResults": results, "Messages": [] }))
        }
        "ListMetrics" => {
            let dims = dims_of(input.get("Dimensions"));
            let keys = registry.list(
                input.get("Namespace").and_then(Value::as_str),
                input.get("MetricName").and_then(Value::as_str),
                &dims,
            );
            let metrics: Vec<Value> = keys
                .into_iter()
                .map(|k| {
                    let dims: Vec<Value> = k
                        .dims
                        .iter()
                        .map(|(n, v)| json!({ "Name": n, "Value": v }))
                        .collect();
                    json!({ "Namespace": k.namespace, "MetricName": k.name, "Dimensions": dims })
                })
                .collect();
            Ok(json!({ "Metrics": metrics }))
        }
        "PutMetricData" => {
            let namespace = str_field(&input, "Namespace")?;
            if namespace.starts_with("AWS/") {
                return Err(invalid(
                    "The value AWS/ for parameter Namespace is invalid: AWS/ is reserved.",
                ));
            }
            let data = input
                .get("MetricData")
                .and_then(Value::as_array)
                .ok_or_else(|| missing("MetricData"))?;
            for d in data {
                let name = str_field(d, "MetricName")?;
                let key = key_of(namespace, name, &dims_of(d.get("Dimensions")));
                let unit = d.get("Unit").and_then(Value::as_str).unwrap_or("None");
                let at = d.get("Timestamp").and_then(secs_to_ms);
                if let Some(v) = d.get("Value").and_then(Value::as_f64) {
                    registry.record_stat(key.clone(), Stat::one(v), unit, at);
                }
                if let Some(vals) = d.get("Values").and_then(Value::as_array) {
                    let counts = d.get("Counts").and_then(Value::as_array);
                    for (i, v) in vals.iter().filter_map(Value::as_f64).enumerate() {
                        let n = counts
                            .and_then(|c| c.get(i))
                            .and_then(Value::as_f64)
                            .unwrap_or(1.0);
                        registry.record_stat(
                            key.clone(),
                            Stat {
                                count: n,
                                sum: v * n,
                                min: v,
                                max: v,
                            },
                            unit,
                            at,
                        );
                    }
                }
                if let Some(sv) = d.get("StatisticValues") {
                    let f = |n: &str| {
                        sv.get(n)
                            .and_then(Value::as_f64)
                            .ok_or_else(|| missing(&format!("StatisticValues.{n}")))
                    };
                    let stat = Stat {
                        count: f("SampleCount")?,
                        sum: f("Sum")?,
                        min: f("Minimum")?,
                        max: f("Maximum")?,
                    };
                    registry.record_stat(key.clone(), stat, unit, at);
                }
            }
            Ok(json!({}))
        }
        other => Err(CwError {
            error_type: "UnknownOperationException",
            message: format!("Operation {other} is not supported."),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use runnel_types::ManualClock;

    #[test]
    fn put_then_get_statistics() {
        let reg = Arc::new(Registry::new(Arc::new(ManualClock::frozen(120_000))));
        handle(
            &reg,
            "PutMetricData",
            json!({"Namespace": "App", "MetricData": [
                {"MetricName": "Lag", "Value": 3.0, "Unit": "Count"},
                {"MetricName": "Lag", "Values": [1.0, 5.0], "Counts": [1.0, 2.0]}
            ]}),
        )
        .unwrap();
        let out = handle(&reg, "GetMetricStatistics", json!({
            "Namespace": "App", "MetricName": "Lag", "StartTime": 60, "EndTime": 240, "Period": 60,
            "Statistics": ["Sum", "SampleCount", "Maximum"]
        }))
        .unwrap();
        let dp = &out["Datapoints"][0];
        assert_eq!(dp["Sum"], json!(14.0));
        assert_eq!(dp["SampleCount"], json!(4.0));
        assert_eq!(dp["Maximum"], json!(5.0));
        assert!(handle(
            &reg,
            "PutMetricData",
            json!({"Namespace": "AWS/Kinesis", "MetricData": []})
        )
        .is_err());
    }

    #[test]
    fn cbor_timestamps_render_as_tag_one() {
        let bytes = render(Wire::RpcV2Cbor, json!({"T": ts(1500)}));
        let v: ciborium::Value = ciborium::from_reader(&bytes[..]).unwrap();
        let ciborium::Value::Map(m) = v else {
            panic!("map")
        };
        assert!(matches!(&m[0].1, ciborium::Value::Tag(1, _)));
        assert_eq!(
            render(Wire::Json10, json!({"T": ts(1500)})),
            b"{\"T\":1.5}".to_vec()
        );
    }
}
