//! Request body → typed, validated input, with AWS's error for each way it fails.

use serde::de::DeserializeOwned;

use crate::enums::EnumViolation;
use crate::validate::{validation_message, ConstraintViolation, Shown, Validate};

/// Why a request body is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestError {
    /// Not JSON, or a member of the wrong JSON type: `SerializationException`.
    Serialization(String),
    /// A model constraint is broken: `ValidationException`.
    Validation(String),
}

/// Decodes an AWS JSON 1.1 body (empty means `{}`) and checks the model's
/// constraints.
///
/// An enum value outside the model's set is reported as AWS does, as a
/// validation error at the member's path; serde stops at it, so other
/// violations of the same request are not reported with it.
pub fn parse_json<T: DeserializeOwned + Validate>(body: &[u8]) -> Result<T, RequestError> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    match serde_json::from_slice::<T>(body) {
        Ok(value) => match value.validation_error() {
            None => Ok(value),
            Some(message) => Err(RequestError::Validation(message)),
        },
        // Failing requests are rare: only they pay for tracking the path.
        Err(_) => Err(diagnose::<T>(body)),
    }
}

fn diagnose<T: DeserializeOwned>(body: &[u8]) -> RequestError {
    let mut de = serde_json::Deserializer::from_slice(body);
    let err = match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Ok(_) => return RequestError::Serialization("malformed JSON".into()),
        Err(e) => e,
    };
    let inner = err.inner();
    if inner.is_syntax() || inner.is_eof() {
        return RequestError::Serialization(format!("malformed JSON: {inner}"));
    }
    let path = aws_path(err.path());
    let text = inner.to_string();
    if let Some(v) = EnumViolation::decode(&text) {
        let violation = ConstraintViolation {
            path,
            constraint: v.constraint(),
            value: Shown::Value(v.value),
        };
        return RequestError::Validation(validation_message(&[violation]).unwrap_or_default());
    }
    if text.starts_with(runnel_types::wire::BASE64_ERROR) {
        return RequestError::Serialization(format!(
            "Base64 encoded value at '{path}' could not be decoded"
        ));
    }
    if path.is_empty() {
        RequestError::Serialization(text)
    } else {
        RequestError::Serialization(format!("{text} (at '{path}')"))
    }
}

/// `Records[0].Data` → `records.1.member.data`.
fn aws_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out: Vec<String> = Vec::new();
    for segment in path.iter() {
        match segment {
            Segment::Map { key } => out.push(lower_first(key)),
            Segment::Seq { index } => out.push(format!("{}.member", index + 1)),
            Segment::Enum { variant } => out.push(lower_first(variant)),
            Segment::Unknown => out.push("?".into()),
        }
    }
    out.join(".")
}

fn lower_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::{check, Path};

    crate::aws_enum!(Kind {
        DirectPut = "DirectPut",
        Other = "Other",
    });

    #[derive(Debug, serde::Deserialize)]
    struct Item {
        #[serde(rename = "Kind")]
        kind: Option<Kind>,
    }

    #[derive(Debug, serde::Deserialize)]
    struct Input {
        #[serde(rename = "Name")]
        name: Option<String>,
        #[serde(rename = "Items")]
        items: Option<Vec<Item>>,
    }

    impl Validate for Input {
        fn validate(&self, path: &Path<'_>, errors: &mut Vec<ConstraintViolation>) {
            let p = path.field("name");
            check::required(&self.name, &p, errors);
        }
    }

    #[test]
    fn enum_errors_carry_the_aws_path() {
        let err = parse_json::<Input>(br#"{"Name":"a","Items":[{"Kind":"Other"},{"Kind":"x"}]}"#)
            .unwrap_err();
        assert_eq!(
            err,
            RequestError::Validation(
                "1 validation error detected: Value 'x' at 'items.2.member.kind' failed to \
                 satisfy constraint: Member must satisfy enum value set: [DirectPut, Other]"
                    .into()
            )
        );
    }

    #[test]
    fn empty_body_is_an_empty_object() {
        let err = parse_json::<Input>(b"").unwrap_err();
        assert_eq!(
            err,
            RequestError::Validation(
                "1 validation error detected: Value null at 'name' failed to satisfy \
                 constraint: Member must not be null"
                    .into()
            )
        );
        let ok = parse_json::<Input>(br#"{"Name":"n","Items":[{"Kind":"DirectPut"}]}"#).unwrap();
        assert_eq!(ok.items.unwrap()[0].kind, Some(Kind::DirectPut));
    }

    #[test]
    fn type_errors_are_serialization_errors() {
        assert!(matches!(
            parse_json::<Input>(br#"{"Name":5}"#),
            Err(RequestError::Serialization(m)) if m.ends_with("(at 'name')")
        ));
        assert!(matches!(
            parse_json::<Input>(b"{"),
            Err(RequestError::Serialization(m)) if m.starts_with("malformed JSON")
        ));
    }
}
