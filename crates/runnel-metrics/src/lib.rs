//! Metrics the way CloudWatch keeps them: a series is (namespace, metric
//! name, dimensions); each holds per-minute statistic sets (SampleCount,
//! Sum, Minimum, Maximum) for a bounded window, plus running totals for the
//! Prometheus endpoint. Memory is bounded by `minutes_kept` per series and
//! `series_max` series. Hot paths resolve a series once into a [`Handle`]
//! and record through it: one uncontended per-series lock, no key built,
//! hashed or allocated per datapoint.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt::Write as _;
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use runnel_types::Clock;

const MINUTE_MS: u64 = 60_000;

#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct Stat {
    pub count: f64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
}

impl Stat {
    pub fn one(v: f64) -> Stat {
        Stat {
            count: 1.0,
            sum: v,
            min: v,
            max: v,
        }
    }

    pub fn merge(&mut self, o: &Stat) {
        if o.count <= 0.0 {
            return;
        }
        if self.count <= 0.0 {
            *self = *o;
            return;
        }
        self.count += o.count;
        self.sum += o.sum;
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesKey {
    pub namespace: String,
    pub name: String,
    /// Sorted by dimension name.
    pub dims: Vec<(String, String)>,
}

impl SeriesKey {
    pub fn new(namespace: &str, name: &str, dims: &[(&str, &str)]) -> Self {
        let mut dims: Vec<(String, String)> = dims
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        dims.sort();
        SeriesKey {
            namespace: namespace.into(),
            name: name.into(),
            dims,
        }
    }
}

struct Series {
    unit: String,
    data: Mutex<SeriesData>,
}

#[derive(Default)]
struct SeriesData {
    minutes: VecDeque<(u64, Stat)>,
    total: Stat,
    last: f64,
}

impl SeriesData {
    fn add(&mut self, stat: &Stat, minute: u64, minutes_kept: usize) {
        self.total.merge(stat);
        if stat.count > 0.0 {
            self.last = stat.sum / stat.count;
        }
        match self.minutes.iter_mut().rev().find(|(m, _)| *m == minute) {
            Some((_, st)) => st.merge(stat),
            None => {
                let pos = self.minutes.partition_point(|(m, _)| *m < minute);
                self.minutes.insert(pos, (minute, *stat));
                while self.minutes.len() > minutes_kept {
                    self.minutes.pop_front();
                }
            }
        }
    }
}

pub struct Registry {
    clock: Arc<dyn Clock>,
    series: RwLock<HashMap<SeriesKey, Arc<Series>>>,
    minutes_kept: usize,
    series_max: usize,
}

/// A series resolved once, for recording on a hot path.
#[derive(Clone)]
pub struct Handle {
    clock: Arc<dyn Clock>,
    series: Arc<Series>,
    minutes_kept: usize,
}

impl Handle {
    pub fn record(&self, value: f64) {
        let minute = self.clock.now_ms() / MINUTE_MS * MINUTE_MS;
        self.series
            .data
            .lock()
            .add(&Stat::one(value), minute, self.minutes_kept);
    }
}

/// A datapoint of a statistics query: period start and its statistics.
#[derive(Clone, Debug, PartialEq)]
pub struct Datapoint {
    pub timestamp_ms: u64,
    pub stat: Stat,
    pub unit: String,
}

impl Registry {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Registry {
            clock,
            series: RwLock::default(),
            minutes_kept: 24 * 60,
            series_max: 100_000,
        }
    }

    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    pub fn record(&self, key: SeriesKey, value: f64, unit: &str) {
        self.record_stat(key, Stat::one(value), unit, None);
    }

    /// The series of `key`, created if new; `None` once `series_max` series exist.
    fn series(&self, key: SeriesKey, unit: &str) -> Option<Arc<Series>> {
        if let Some(s) = self.series.read().get(&key) {
            return Some(s.clone());
        }
        let mut all = self.series.write();
        if !all.contains_key(&key) && all.len() >= self.series_max {
            return None;
        }
        Some(
            all.entry(key)
                .or_insert_with(|| {
                    Arc::new(Series {
                        unit: unit.to_string(),
                        data: Mutex::default(),
                    })
                })
                .clone(),
        )
    }

    /// Resolves a series for repeated recording; `None` when the registry is full.
    pub fn handle(&self, key: SeriesKey, unit: &str) -> Option<Handle> {
        Some(Handle {
            clock: self.clock.clone(),
            series: self.series(key, unit)?,
            minutes_kept: self.minutes_kept,
        })
    }

    /// Records a statistic set at `at_ms` (default: now).
    pub fn record_stat(&self, key: SeriesKey, stat: Stat, unit: &str, at_ms: Option<u64>) {
        let minute = at_ms.unwrap_or_else(|| self.clock.now_ms()) / MINUTE_MS * MINUTE_MS;
        if let Some(s) = self.series(key, unit) {
            s.data.lock().add(&stat, minute, self.minutes_kept);
        }
    }

    /// Statistics per `period_ms` from `start_ms` (inclusive) to `end_ms` (exclusive).
    pub fn query(
        &self,
        key: &SeriesKey,
        start_ms: u64,
        end_ms: u64,
        period_ms: u64,
    ) -> Vec<Datapoint> {
        let period_ms = period_ms.max(MINUTE_MS);
        let Some(s) = self.series.read().get(key).cloned() else {
            return Vec::new();
        };
        let data = s.data.lock();
        let mut buckets: BTreeMap<u64, Stat> = BTreeMap::new();
        for (minute, stat) in &data.minutes {
            if *minute + MINUTE_MS <= start_ms || *minute >= end_ms {
                continue;
            }
            let bucket = start_ms + (minute.saturating_sub(start_ms)) / period_ms * period_ms;
            buckets.entry(bucket).or_default().merge(stat);
        }
        buckets
            .into_iter()
            .map(|(t, stat)| Datapoint {
                timestamp_ms: t,
                stat,
                unit: s.unit.clone(),
            })
            .collect()
    }

    /// Series matching the filters (all optional), sorted.
    pub fn list(
        &self,
        namespace: Option<&str>,
        name: Option<&str>,
        dims: &[(String, Option<String>)],
    ) -> Vec<SeriesKey> {
        let all = self.series.read();
        let mut out: Vec<SeriesKey> = all
            .keys()
            .filter(|k| namespace.is_none_or(|n| k.namespace == n))
            .filter(|k| name.is_none_or(|n| k.name == n))
            .filter(|k| {
                dims.iter().all(|(dn, dv)| {
                    k.dims
                        .iter()
                        .any(|(kn, kv)| kn == dn && dv.as_ref().is_none_or(|v| v == kv))
                })
            })
            .cloned()
            .collect();
        out.sort();
        out
    }

    /// Prometheus text exposition of every series' running totals.
    pub fn prometheus(&self) -> String {
        // A snapshot of each series' totals, so no series lock is held
        // while the text is built.
        let all: Vec<(SeriesKey, String, SeriesTotals)> = self
            .series
            .read()
            .iter()
            .map(|(k, s)| {
                let d = s.data.lock();
                (
                    k.clone(),
                    s.unit.clone(),
                    SeriesTotals {
                        total: d.total,
                        last: d.last,
                    },
                )
            })
            .collect();
        let mut by_name: BTreeMap<String, Vec<(&SeriesKey, &str, &SeriesTotals)>> = BTreeMap::new();
        for (k, unit, t) in &all {
            by_name
                .entry(prom_name(&k.namespace, &k.name))
                .or_default()
                .push((k, unit, t));
        }
        let mut out = String::new();
        for (name, mut series) in by_name {
            series.sort_by(|a, b| a.0.cmp(b.0));
            let unit = series.first().map(|(_, u, _)| *u).unwrap_or("");
            let _ = writeln!(
                out,
                "# HELP {name} CloudWatch metric {} ({unit}).",
                series[0].0.name
            );
            let _ = writeln!(out, "# TYPE {name} summary");
            for (k, _, s) in &series {
                let labels = prom_labels(&k.dims);
                let _ = writeln!(out, "{name}_sum{labels} {}", fmt_f64(s.total.sum));
                let _ = writeln!(out, "{name}_count{labels} {}", fmt_f64(s.total.count));
            }
            let _ = writeln!(out, "# TYPE {name}_max gauge");
            for (k, _, s) in &series {
                let _ = writeln!(
                    out,
                    "{name}_max{} {}",
                    prom_labels(&k.dims),
                    fmt_f64(s.total.max)
                );
            }
            let _ = writeln!(out, "# TYPE {name}_last gauge");
            for (k, _, s) in &series {
                let _ = writeln!(
                    out,
                    "{name}_last{} {}",
                    prom_labels(&k.dims),
                    fmt_f64(s.last)
                );
            }
        }
        out
    }
}

struct SeriesTotals {
    total: Stat,
    last: f64,
}

fn fmt_f64(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// `AWS/Kinesis` + `GetRecords.IteratorAgeMilliseconds` → `aws_kinesis_get_records_iterator_age_milliseconds`.
pub fn prom_name(namespace: &str, name: &str) -> String {
    let mut out = String::new();
    let mut prev_lower = false;
    for c in namespace
        .chars()
        .chain(std::iter::once('_'))
        .chain(name.chars())
    {
        if c.is_ascii_uppercase() {
            if prev_lower {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
            prev_lower = false;
        } else if c.is_ascii_alphanumeric() {
            out.push(c);
            prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        } else {
            if !out.ends_with('_') {
                out.push('_');
            }
            prev_lower = false;
        }
    }
    out.trim_matches('_').to_string()
}

fn prom_labels(dims: &[(String, String)]) -> String {
    if dims.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = dims
        .iter()
        .map(|(k, v)| {
            let v = v
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            format!("{}=\"{v}\"", prom_name("", k))
        })
        .collect();
    format!("{{{}}}", parts.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use runnel_types::ManualClock;

    #[test]
    fn minute_statistics_and_periods() {
        let clock = ManualClock::frozen(10 * MINUTE_MS);
        let r = Registry::new(Arc::new(clock.clone()));
        let k = SeriesKey::new("AWS/Kinesis", "IncomingRecords", &[("StreamName", "s")]);
        r.record(k.clone(), 5.0, "Count");
        r.record(k.clone(), 7.0, "Count");
        clock.advance_ms(MINUTE_MS as i64);
        r.record(k.clone(), 1.0, "Count");
        let per_minute = r.query(&k, 10 * MINUTE_MS, 12 * MINUTE_MS, MINUTE_MS);
        assert_eq!(per_minute.len(), 2);
        assert_eq!(
            per_minute[0].stat,
            Stat {
                count: 2.0,
                sum: 12.0,
                min: 5.0,
                max: 7.0
            }
        );
        let five = r.query(&k, 10 * MINUTE_MS, 15 * MINUTE_MS, 5 * MINUTE_MS);
        assert_eq!(five.len(), 1);
        assert_eq!(five[0].stat.sum, 13.0);
        assert!(r.query(&k, 0, 10 * MINUTE_MS, MINUTE_MS).is_empty());
    }

    #[test]
    fn prometheus_names_and_labels() {
        assert_eq!(
            prom_name("AWS/Kinesis", "GetRecords.IteratorAgeMilliseconds"),
            "aws_kinesis_get_records_iterator_age_milliseconds"
        );
        assert_eq!(
            prom_name("AWS/Kinesis", "PutRecords.Bytes"),
            "aws_kinesis_put_records_bytes"
        );
        let r = Registry::new(Arc::new(ManualClock::frozen(0)));
        r.record(
            SeriesKey::new("AWS/Kinesis", "IncomingBytes", &[("StreamName", "a\"b")]),
            100.0,
            "Bytes",
        );
        let text = r.prometheus();
        assert!(
            text.contains("aws_kinesis_incoming_bytes_sum{stream_name=\"a\\\"b\"} 100"),
            "{text}"
        );
    }

    #[test]
    fn list_filters() {
        let r = Registry::new(Arc::new(ManualClock::frozen(0)));
        r.record(
            SeriesKey::new("AWS/Kinesis", "IncomingBytes", &[("StreamName", "a")]),
            1.0,
            "Bytes",
        );
        r.record(
            SeriesKey::new(
                "AWS/Kinesis",
                "IncomingBytes",
                &[("StreamName", "b"), ("ShardId", "x")],
            ),
            1.0,
            "Bytes",
        );
        r.record(SeriesKey::new("Custom", "X", &[]), 1.0, "None");
        assert_eq!(r.list(Some("AWS/Kinesis"), None, &[]).len(), 2);
        assert_eq!(r.list(None, None, &[("ShardId".into(), None)]).len(), 1);
        assert_eq!(r.list(None, Some("X"), &[]).len(), 1);
    }
}
