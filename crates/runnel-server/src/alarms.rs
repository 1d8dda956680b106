//! Threshold alarms on any metric, configured in `runnel.toml`:
//!
//! ```toml
//! [[alarms]]
//! name = "orders-consumer-lag"
//! metric = "GetRecords.IteratorAgeMilliseconds"
//! dimensions = { StreamName = "orders" }
//! statistic = "Maximum"
//! threshold = 300000
//! comparison = "GreaterThanThreshold"
//! webhook = "http://127.0.0.1:9000/alarm"
//! ```
//!
//! Every check evaluates the statistic over the last `period_seconds`; a
//! change between OK and ALARM logs a line and POSTs a JSON notification
//! shaped like CloudWatch's (AlarmName, NewStateValue, OldStateValue,
//! NewStateReason, StateChangeTime, Trigger) to the webhook, if any.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use runnel_metrics::{Registry, SeriesKey};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlarmConfig {
    pub name: String,
    #[serde(default = "default_namespace")]
    pub namespace: String,
    pub metric: String,
    #[serde(default)]
    pub dimensions: BTreeMap<String, String>,
    #[serde(default = "default_statistic")]
    pub statistic: String,
    #[serde(default = "default_period")]
    pub period_seconds: u64,
    pub threshold: f64,
    #[serde(default = "default_comparison")]
    pub comparison: String,
    #[serde(default)]
    pub webhook: Option<String>,
}

fn default_namespace() -> String {
    "AWS/Kinesis".into()
}
fn default_statistic() -> String {
    "Maximum".into()
}
fn default_period() -> u64 {
    60
}
fn default_comparison() -> String {
    "GreaterThanThreshold".into()
}

impl AlarmConfig {
    pub fn validate(&self) -> Result<(), String> {
        if !["SampleCount", "Sum", "Average", "Minimum", "Maximum"]
            .contains(&self.statistic.as_str())
        {
            return Err(format!(
                "alarm {}: statistic must be SampleCount, Sum, Average, Minimum or Maximum",
                self.name
            ));
        }
        if compare(&self.comparison, 0.0, 0.0).is_none() {
            return Err(format!(
                "alarm {}: comparison must be GreaterThanThreshold, GreaterThanOrEqualToThreshold, LessThanThreshold or LessThanOrEqualToThreshold",
                self.name
            ));
        }
        if self.period_seconds == 0 {
            return Err(format!(
                "alarm {}: period_seconds must be positive",
                self.name
            ));
        }
        if let Some(w) = &self.webhook {
            if !w.starts_with("http://") {
                return Err(format!(
                    "alarm {}: webhook must be an http:// URL",
                    self.name
                ));
            }
        }
        Ok(())
    }
}

fn compare(op: &str, value: f64, threshold: f64) -> Option<bool> {
    Some(match op {
        "GreaterThanThreshold" => value > threshold,
        "GreaterThanOrEqualToThreshold" => value >= threshold,
        "LessThanThreshold" => value < threshold,
        "LessThanOrEqualToThreshold" => value <= threshold,
        _ => return None,
    })
}

/// Evaluates one alarm now: `Some((in_alarm, value))`, or `None` without data.
fn evaluate(registry: &Registry, a: &AlarmConfig) -> Option<(bool, f64)> {
    let dims: Vec<(&str, &str)> = a
        .dimensions
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let key = SeriesKey::new(&a.namespace, &a.metric, &dims);
    let end = registry.now_ms() + 1;
    let start = end.saturating_sub(a.period_seconds * 1000);
    let mut total = runnel_metrics::Stat::default();
    for p in registry.query(&key, start, end, a.period_seconds * 1000 + 60_000) {
        total.merge(&p.stat);
    }
    if total.count <= 0.0 {
        return None;
    }
    let value = match a.statistic.as_str() {
        "SampleCount" => total.count,
        "Sum" => total.sum,
        "Average" => total.sum / total.count,
        "Minimum" => total.min,
        _ => total.max,
    };
    compare(&a.comparison, value, a.threshold).map(|b| (b, value))
}

/// Runs forever, checking every alarm each `every`.
pub async fn run(registry: Arc<Registry>, alarms: Vec<AlarmConfig>, every: Duration) {
    if alarms.is_empty() {
        return;
    }
    let mut states: Vec<&'static str> = vec!["INSUFFICIENT_DATA"; alarms.len()];
    loop {
        tokio::time::sleep(every).await;
        for (a, state) in alarms.iter().zip(states.iter_mut()) {
            let (new_state, reason) = match evaluate(&registry, a) {
                Some((true, v)) => (
                    "ALARM",
                    format!(
                        "{} {} = {v} crossed the threshold {} ({})",
                        a.statistic, a.metric, a.threshold, a.comparison
                    ),
                ),
                Some((false, v)) => (
                    "OK",
                    format!(
                        "{} {} = {v} is within the threshold {} ({})",
                        a.statistic, a.metric, a.threshold, a.comparison
                    ),
                ),
                None => continue,
            };
            if new_state == *state {
                continue;
            }
            let old = std::mem::replace(state, new_state);
            if new_state == "ALARM" {
                tracing::warn!(alarm = %a.name, old_state = old, new_state, %reason, "alarm state changed");
            } else {
                tracing::info!(alarm = %a.name, old_state = old, new_state, %reason, "alarm state changed");
            }
            if let Some(url) = a.webhook.clone() {
                let body = serde_json::json!({
                    "AlarmName": a.name,
                    "NewStateValue": new_state,
                    "OldStateValue": old,
                    "NewStateReason": reason,
                    "StateChangeTime": runnel_streams_time(registry.now_ms()),
                    "Trigger": {
                        "MetricName": a.metric,
                        "Namespace": a.namespace,
                        "Statistic": a.statistic.to_uppercase(),
                        "Period": a.period_seconds,
                        "Threshold": a.threshold,
                        "ComparisonOperator": a.comparison,
                        "Dimensions": a.dimensions.iter().map(|(k, v)| serde_json::json!({"name": k, "value": v})).collect::<Vec<_>>(),
                    }
                });
                let name = a.name.clone();
                tokio::spawn(async move {
                    if let Err(e) = post(&url, body.to_string()).await {
                        tracing::warn!(alarm = %name, %url, error = %e, "alarm webhook failed");
                    }
                });
            }
        }
    }
}

fn runnel_streams_time(ms: u64) -> String {
    format!("{:.3}", ms as f64 / 1000.0)
}

async fn post(url: &str, body: String) -> anyhow::Result<()> {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let req = http::Request::post(url)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))?;
    let resp = tokio::time::timeout(Duration::from_secs(10), client.request(req)).await??;
    if !resp.status().is_success() {
        anyhow::bail!("webhook answered {}", resp.status());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use runnel_types::ManualClock;

    fn alarm() -> AlarmConfig {
        AlarmConfig {
            name: "lag".into(),
            namespace: default_namespace(),
            metric: "GetRecords.IteratorAgeMilliseconds".into(),
            dimensions: [("StreamName".to_string(), "s".to_string())].into(),
            statistic: "Maximum".into(),
            period_seconds: 60,
            threshold: 1000.0,
            comparison: "GreaterThanThreshold".into(),
            webhook: None,
        }
    }

    #[test]
    fn evaluates_thresholds() {
        let reg = Registry::new(Arc::new(ManualClock::frozen(1_000_000)));
        assert_eq!(evaluate(&reg, &alarm()), None);
        let key = SeriesKey::new(
            "AWS/Kinesis",
            "GetRecords.IteratorAgeMilliseconds",
            &[("StreamName", "s")],
        );
        reg.record(key.clone(), 10.0, "Milliseconds");
        assert_eq!(evaluate(&reg, &alarm()), Some((false, 10.0)));
        reg.record(key, 5000.0, "Milliseconds");
        assert_eq!(evaluate(&reg, &alarm()), Some((true, 5000.0)));
        assert!(alarm().validate().is_ok());
        assert!(AlarmConfig {
            comparison: "Bigger".into(),
            ..alarm()
        }
        .validate()
        .is_err());
    }
}
