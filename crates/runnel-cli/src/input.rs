//! Where `runnel put` gets its records: arguments, stdin or a file, as plain
//! lines, JSON lines or CSV, and how each record gets its partition key.

use std::collections::VecDeque;

use bytes::Bytes;
use clap::ValueEnum;
use serde_json::{Map, Value};
use tokio::io::{AsyncBufRead, AsyncBufReadExt};

use crate::CliError;

/// How input lines become records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Each line is one record, sent as-is.
    Lines,
    /// Each line is a JSON value, sent as-is (validated).
    Jsonl,
    /// RFC 4180 CSV with a header row; each row is sent as a JSON object.
    Csv,
}

/// One record ready to send.
#[derive(Debug, Clone, PartialEq)]
pub struct InputRecord {
    pub data: Bytes,
    pub partition_key: String,
}

/// How partition keys are chosen.
#[derive(Debug, Clone)]
pub enum KeyChoice {
    /// The same key for every record.
    Fixed(String),
    /// A JSON member (jsonl) or column (csv).
    Field(String),
    /// A random key per record, spreading records over all shards.
    Random,
}

enum Lines {
    Args(VecDeque<String>),
    Reader(Box<dyn AsyncBufRead + Unpin + Send>),
}

pub struct Source {
    what: String,
    lines: Lines,
    format: Format,
    key: KeyChoice,
    line_no: u64,
    csv_header: Option<Vec<String>>,
    /// Input bytes consumed so far (for a progress bar over a file).
    pub bytes_read: u64,
}

impl Source {
    pub fn from_args(args: Vec<String>, format: Format, key: KeyChoice) -> Self {
        Self::new("argument", Lines::Args(args.into()), format, key)
    }

    pub fn from_reader(
        what: impl Into<String>,
        reader: Box<dyn AsyncBufRead + Unpin + Send>,
        format: Format,
        key: KeyChoice,
    ) -> Self {
        Self::new(what.into(), Lines::Reader(reader), format, key)
    }

    fn new(what: impl Into<String>, lines: Lines, format: Format, key: KeyChoice) -> Self {
        Self {
            what: what.into(),
            lines,
            format,
            key,
            line_no: 0,
            csv_header: None,
            bytes_read: 0,
        }
    }

    async fn next_line(&mut self) -> Result<Option<Vec<u8>>, CliError> {
        match &mut self.lines {
            Lines::Args(args) => Ok(args.pop_front().map(String::into_bytes)),
            Lines::Reader(reader) => {
                let mut buf = Vec::new();
                let n =
                    reader
                        .read_until(b'\n', &mut buf)
                        .await
                        .map_err(|source| CliError::Input {
                            what: self.what.clone(),
                            source,
                        })?;
                if n == 0 {
                    return Ok(None);
                }
                self.bytes_read += n as u64;
                if buf.ends_with(b"\n") {
                    buf.pop();
                    if buf.ends_with(b"\r") {
                        buf.pop();
                    }
                }
                Ok(Some(buf))
            }
        }
    }

    fn parse_error(&self, reason: impl Into<String>) -> CliError {
        CliError::Parse {
            what: self.what.clone(),
            line: self.line_no,
            reason: reason.into(),
        }
    }

    fn key_for(&self, value: Option<&Map<String, Value>>) -> Result<String, CliError> {
        match &self.key {
            KeyChoice::Fixed(k) => Ok(k.clone()),
            KeyChoice::Random => Ok(format!("{:032x}", rand::random::<u128>())),
            KeyChoice::Field(field) => {
                let v = value.and_then(|m| m.get(field)).ok_or_else(|| {
                    self.parse_error(format!("no field {field:?} for the partition key"))
                })?;
                let key = match v {
                    Value::String(s) => s.clone(),
                    Value::Null => String::new(),
                    other => other.to_string(),
                };
                if key.is_empty() {
                    return Err(self.parse_error(format!(
                        "field {field:?} is empty; partition keys need 1–256 characters"
                    )));
                }
                Ok(key)
            }
        }
    }

    /// The next record, or `None` at the end of the input. Blank lines are skipped.
    pub async fn next(&mut self) -> Result<Option<InputRecord>, CliError> {
        loop {
            let Some(mut line) = self.next_line().await? else {
                return Ok(None);
            };
            self.line_no += 1;
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match self.format {
                Format::Lines => {
                    let partition_key = self.key_for(None)?;
                    return Ok(Some(InputRecord {
                        data: Bytes::from(line),
                        partition_key,
                    }));
                }
                Format::Jsonl => {
                    let value: Value = serde_json::from_slice(&line)
                        .map_err(|e| self.parse_error(format!("not JSON: {e}")))?;
                    let partition_key = self.key_for(value.as_object())?;
                    return Ok(Some(InputRecord {
                        data: Bytes::from(line),
                        partition_key,
                    }));
                }
                Format::Csv => {
                    // A quoted field may span lines: read on until quotes balance.
                    while line.iter().filter(|b| **b == b'"').count() % 2 == 1 {
                        match self.next_line().await? {
                            Some(more) => {
                                self.line_no += 1;
                                line.push(b'\n');
                                line.extend_from_slice(&more);
                            }
                            None => return Err(self.parse_error("unterminated quoted field")),
                        }
                    }
                    let text = String::from_utf8(line)
                        .map_err(|_| self.parse_error("CSV input must be UTF-8"))?;
                    let fields = csv_fields(&text);
                    let Some(header) = &self.csv_header else {
                        self.csv_header = Some(fields);
                        continue;
                    };
                    if fields.len() != header.len() {
                        return Err(self.parse_error(format!(
                            "{} fields, but the header has {}",
                            fields.len(),
                            header.len()
                        )));
                    }
                    let row: Map<String, Value> = header
                        .iter()
                        .cloned()
                        .zip(fields.into_iter().map(Value::String))
                        .collect();
                    let partition_key = self.key_for(Some(&row))?;
                    let data =
                        serde_json::to_vec(&row).map_err(|e| self.parse_error(e.to_string()))?;
                    return Ok(Some(InputRecord {
                        data: Bytes::from(data),
                        partition_key,
                    }));
                }
            }
        }
    }
}

/// Splits one CSV record (RFC 4180: `"` quotes, `""` inside quotes is a quote).
fn csv_fields(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(std::mem::take(&mut field)),
            (c, _) => field.push(c),
        }
    }
    fields.push(field);
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(text: &'static str) -> Box<dyn AsyncBufRead + Unpin + Send> {
        Box::new(tokio::io::BufReader::new(text.as_bytes()))
    }

    async fn all(mut s: Source) -> Result<Vec<InputRecord>, CliError> {
        let mut out = Vec::new();
        while let Some(r) = s.next().await? {
            out.push(r);
        }
        Ok(out)
    }

    #[test]
    fn csv_quoting() {
        assert_eq!(
            csv_fields(r#"a,"b,c","say ""hi""",""#),
            vec!["a", "b,c", r#"say "hi""#, ""]
        );
    }

    #[tokio::test]
    async fn csv_rows_become_objects_keyed_by_column() {
        let s = Source::from_reader(
            "f.csv",
            reader("id,name\n1,\"multi\nline\"\n\n2,bob\r\n"),
            Format::Csv,
            KeyChoice::Field("id".into()),
        );
        let recs = all(s).await.unwrap();
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].partition_key, "1");
        assert_eq!(&recs[0].data[..], br#"{"id":"1","name":"multi\nline"}"#);
        assert_eq!(&recs[1].data[..], br#"{"id":"2","name":"bob"}"#);
    }

    #[tokio::test]
    async fn jsonl_keys_and_errors() {
        let s = Source::from_reader(
            "f.jsonl",
            reader("{\"user\":7,\"x\":1}\n{\"user\":\"ann\"}\n"),
            Format::Jsonl,
            KeyChoice::Field("user".into()),
        );
        let recs = all(s).await.unwrap();
        assert_eq!(recs[0].partition_key, "7");
        assert_eq!(recs[1].partition_key, "ann");
        let bad = Source::from_reader(
            "f.jsonl",
            reader("{}\nnope\n"),
            Format::Jsonl,
            KeyChoice::Random,
        );
        let e = all(bad).await.unwrap_err().to_string();
        assert!(e.starts_with("f.jsonl line 2: not JSON"), "{e}");
    }

    #[tokio::test]
    async fn lines_skip_blanks() {
        let s = Source::from_args(
            vec!["a".into(), "".into(), "b".into()],
            Format::Lines,
            KeyChoice::Fixed("k".into()),
        );
        let recs = all(s).await.unwrap();
        assert_eq!(
            recs.iter().map(|r| &r.data[..]).collect::<Vec<_>>(),
            vec![b"a", b"b"]
        );
    }
}
