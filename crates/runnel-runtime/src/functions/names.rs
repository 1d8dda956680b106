//! How a Lambda function is named, as AWS accepts it: a full ARN
//! (`arn:aws:lambda:REGION:ACCOUNT:function:NAME`), a partial ARN
//! (`ACCOUNT:function:NAME`) or a bare `NAME`, each optionally followed by
//! `:QUALIFIER` (a version such as `1`, `$LATEST`, or an alias).

use std::fmt;

/// Lambda's limits on a function name and a qualifier.
pub const FUNCTION_NAME_CHARS_MAX: usize = 64;
pub const QUALIFIER_CHARS_MAX: usize = 128;

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FunctionName {
    pub partition: String,
    pub region: String,
    pub account: String,
    pub name: String,
    /// `None` for an unqualified name; `$LATEST` is kept as given.
    pub qualifier: Option<String>,
}

impl FunctionName {
    /// Parses any accepted form; a partial ARN or a bare name takes
    /// `region` and `account` (the server's).
    pub fn parse(text: &str, region: &str, account: &str) -> Result<Self, String> {
        let parts: Vec<&str> = text.split(':').collect();
        let (partition, region, account, name, qualifier) = match parts.as_slice() {
            ["arn", partition, service, region, account, "function", name, rest @ ..]
                if rest.len() <= 1 =>
            {
                if !partition.starts_with("aws") {
                    return Err(format!("partition '{partition}' is not an AWS partition"));
                }
                if *service != "lambda" {
                    return Err(format!("service '{service}' is not lambda"));
                }
                if region.is_empty()
                    || !region
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                {
                    return Err(format!("region '{region}' is not a region name"));
                }
                (*partition, *region, *account, *name, rest.first().copied())
            }
            ["arn", ..] => {
                return Err(
                    "a function ARN has the form arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]"
                        .into(),
                )
            }
            [account, "function", name, rest @ ..] if rest.len() <= 1 => {
                ("aws", region, *account, *name, rest.first().copied())
            }
            [name] => ("aws", region, account, *name, None),
            [name, qualifier] => ("aws", region, account, *name, Some(*qualifier)),
            _ => return Err("not a function name, partial ARN or ARN".into()),
        };
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("account '{account}' is not 12 digits"));
        }
        let name_chars_ok = name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if name.is_empty() || name.len() > FUNCTION_NAME_CHARS_MAX || !name_chars_ok {
            return Err(format!(
                "function name '{name}' must be 1 to {FUNCTION_NAME_CHARS_MAX} letters, digits, hyphens or underscores"
            ));
        }
        if let Some(q) = qualifier {
            let q_chars_ok = q == "$LATEST"
                || q.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if q.is_empty() || q.len() > QUALIFIER_CHARS_MAX || !q_chars_ok {
                return Err(format!(
                    "qualifier '{q}' must be $LATEST, a version number or an alias of 1 to {QUALIFIER_CHARS_MAX} letters, digits, hyphens or underscores"
                ));
            }
        }
        Ok(FunctionName {
            partition: partition.into(),
            region: region.into(),
            account: account.into(),
            name: name.into(),
            qualifier: qualifier.map(str::to_owned),
        })
    }

    /// The same function without a qualifier.
    pub fn unqualified(&self) -> FunctionName {
        FunctionName {
            qualifier: None,
            ..self.clone()
        }
    }
}

/// The full ARN, with the qualifier if there is one.
impl fmt::Display for FunctionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "arn:{}:lambda:{}:{}:function:{}",
            self.partition, self.region, self.account, self.name
        )?;
        if let Some(q) = &self.qualifier {
            write!(f, ":{q}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: &str = "us-east-1";
    const A: &str = "123456789012";

    fn parse(text: &str) -> Result<String, String> {
        FunctionName::parse(text, R, A).map(|f| f.to_string())
    }

    #[test]
    fn accepted_forms() {
        let full = "arn:aws:lambda:eu-west-2:210987654321:function:my-fn_1";
        assert_eq!(parse(full).unwrap(), full);
        assert_eq!(
            parse(&format!("{full}:$LATEST")).unwrap(),
            format!("{full}:$LATEST")
        );
        assert_eq!(parse(&format!("{full}:7")).unwrap(), format!("{full}:7"));
        assert_eq!(
            parse(&format!("{full}:live")).unwrap(),
            format!("{full}:live")
        );
        assert_eq!(
            parse("my-fn").unwrap(),
            "arn:aws:lambda:us-east-1:123456789012:function:my-fn"
        );
        assert_eq!(
            parse("my-fn:prod").unwrap(),
            "arn:aws:lambda:us-east-1:123456789012:function:my-fn:prod"
        );
        assert_eq!(
            parse("210987654321:function:f:3").unwrap(),
            "arn:aws:lambda:us-east-1:210987654321:function:f:3"
        );
        assert_eq!(
            parse("arn:aws-cn:lambda:cn-north-1:123456789012:function:f").unwrap(),
            "arn:aws-cn:lambda:cn-north-1:123456789012:function:f"
        );
    }

    #[test]
    fn rejected_forms_say_why() {
        let cases = [
            ("", "function name '' must be 1 to 64"),
            ("a b", "function name 'a b' must be"),
            (&"x".repeat(65), "must be 1 to 64"),
            ("f:", "qualifier '' must be"),
            ("f:a.b", "qualifier 'a.b' must be"),
            (
                "arn:aws:s3:us-east-1:123456789012:function:f",
                "service 's3' is not lambda",
            ),
            (
                "arn:aws:lambda:us-east-1:123:function:f",
                "account '123' is not 12 digits",
            ),
            (
                "arn:aws:lambda:us-east-1:123456789012:layer:f",
                "a function ARN has the form",
            ),
            (
                "arn:gcp:lambda:us-east-1:123456789012:function:f",
                "not an AWS partition",
            ),
            ("arn:aws:lambda:US:123456789012:function:f", "region 'US'"),
            ("a:b:c:d:e", "not a function name"),
        ];
        for (text, want) in cases {
            let err = parse(text).unwrap_err();
            assert!(err.contains(want), "{text}: {err}");
        }
    }
}
