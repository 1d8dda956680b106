//! IAM-style policy evaluation.
//!
//! A request is allowed when some applicable statement allows it and none
//! denies it: an explicit `Deny` (in an identity or a resource policy) wins,
//! then any `Allow`, else the default is deny. Supported: `Effect`,
//! `Action`/`NotAction` (case-insensitive `*`/`?` wildcards, e.g.
//! `kinesis:Get*`), `Resource`/`NotResource` (case-sensitive wildcards),
//! `Principal` in resource policies (`"*"` or `{"AWS": arn | [arn]}`), and the
//! `Condition` operators `IpAddress`/`NotIpAddress` on `aws:SourceIp` and
//! `Bool` on `aws:SecureTransport`. A condition on an unsupported key or with
//! an unsupported operator never matches, so it cannot widen access.

use std::net::IpAddr;

use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    ExplicitDeny,
    ImplicitDeny,
}

/// Facts about the request that conditions can test.
#[derive(Debug, Clone)]
pub struct Context {
    pub source_ip: Option<IpAddr>,
    pub secure_transport: bool,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid policy document: {0}")]
pub struct PolicyError(pub String);

/// Checks that a document has the shape IAM requires.
pub fn validate(doc: &Value) -> Result<(), PolicyError> {
    let statements = statements(doc).ok_or_else(|| PolicyError("missing Statement".into()))?;
    for s in statements {
        match s.get("Effect").and_then(Value::as_str) {
            Some("Allow" | "Deny") => {}
            _ => {
                return Err(PolicyError(
                    "each statement needs Effect Allow or Deny".into(),
                ))
            }
        }
        if s.get("Action").is_none() && s.get("NotAction").is_none() {
            return Err(PolicyError(
                "each statement needs Action or NotAction".into(),
            ));
        }
        if s.get("Resource").is_none() && s.get("NotResource").is_none() {
            return Err(PolicyError(
                "each statement needs Resource or NotResource".into(),
            ));
        }
    }
    Ok(())
}

fn statements(doc: &Value) -> Option<Vec<&Value>> {
    match doc.get("Statement")? {
        Value::Array(a) => Some(a.iter().collect()),
        v @ Value::Object(_) => Some(vec![v]),
        _ => None,
    }
}

fn strings(v: Option<&Value>) -> Vec<&str> {
    match v {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// `*` any run, `?` one character.
pub fn wildcard(pattern: &str, text: &str, case_insensitive: bool) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = if case_insensitive {
        (
            pattern.to_lowercase().chars().collect(),
            text.to_lowercase().chars().collect(),
        )
    } else {
        (pattern.chars().collect(), text.chars().collect())
    };
    let (mut pi, mut ti, mut star, mut mark) = (0usize, 0usize, None::<usize>, 0usize);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

fn matches_any(patterns: &[&str], text: &str, ci: bool) -> bool {
    patterns.iter().any(|p| wildcard(p, text, ci))
}

fn cidr_contains(cidr: &str, ip: IpAddr) -> bool {
    let (net, bits) = match cidr.split_once('/') {
        Some((n, b)) => (n, b.parse::<u32>().ok()),
        None => (cidr, None),
    };
    let Ok(net) = net.parse::<IpAddr>() else {
        return false;
    };
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => {
            let bits = bits.unwrap_or(32).min(32);
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            (u32::from(n) & mask) == (u32::from(i) & mask)
        }
        (IpAddr::V6(n), IpAddr::V6(i)) => {
            let bits = bits.unwrap_or(128).min(128);
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            (u128::from(n) & mask) == (u128::from(i) & mask)
        }
        _ => false,
    }
}

fn conditions_hold(cond: Option<&Value>, ctx: &Context) -> bool {
    let Some(Value::Object(ops)) = cond else {
        return true;
    };
    ops.iter().all(|(op, keys)| {
        let Value::Object(keys) = keys else {
            return false;
        };
        keys.iter().all(|(key, want)| {
            let want = strings(Some(want));
            match (op.as_str(), key.to_ascii_lowercase().as_str()) {
                ("IpAddress", "aws:sourceip") => ctx
                    .source_ip
                    .is_some_and(|ip| want.iter().any(|c| cidr_contains(c, ip))),
                ("NotIpAddress", "aws:sourceip") => ctx
                    .source_ip
                    .is_some_and(|ip| !want.iter().any(|c| cidr_contains(c, ip))),
                ("Bool", "aws:securetransport") => want
                    .iter()
                    .any(|w| w.eq_ignore_ascii_case(&ctx.secure_transport.to_string())),
                _ => false,
            }
        })
    })
}

fn principal_matches(stmt: &Value, principal_arn: &str) -> bool {
    match stmt.get("Principal") {
        Some(Value::String(s)) => s == "*",
        Some(Value::Object(o)) => strings(o.get("AWS"))
            .iter()
            .any(|p| *p == "*" || wildcard(p, principal_arn, false)),
        _ => false,
    }
}

/// Evaluates one policy. `principal_arn` is `Some` for resource policies
/// (statements then apply only to the principals they name).
fn evaluate_one(
    doc: &Value,
    action: &str,
    resource: &str,
    ctx: &Context,
    principal_arn: Option<&str>,
) -> Decision {
    let mut allowed = false;
    for s in statements(doc).unwrap_or_default() {
        if let Some(p) = principal_arn {
            if !principal_matches(s, p) {
                continue;
            }
        }
        let action_ok = match (s.get("Action"), s.get("NotAction")) {
            (Some(a), _) => matches_any(&strings(Some(a)), action, true),
            (None, Some(na)) => !matches_any(&strings(Some(na)), action, true),
            _ => false,
        };
        let resource_ok = match (s.get("Resource"), s.get("NotResource")) {
            (Some(r), _) => matches_any(&strings(Some(r)), resource, false),
            (None, Some(nr)) => !matches_any(&strings(Some(nr)), resource, false),
            _ => false,
        };
        if !(action_ok && resource_ok && conditions_hold(s.get("Condition"), ctx)) {
            continue;
        }
        match s.get("Effect").and_then(Value::as_str) {
            Some("Deny") => return Decision::ExplicitDeny,
            Some("Allow") => allowed = true,
            _ => {}
        }
    }
    if allowed {
        Decision::Allow
    } else {
        Decision::ImplicitDeny
    }
}

/// Identity policies plus an optional resource policy, as IAM combines them
/// within one account: any explicit deny wins; an allow from either suffices.
pub fn evaluate(
    identity: &[Value],
    resource_policy: Option<&Value>,
    principal_arn: &str,
    action: &str,
    resource: &str,
    ctx: &Context,
) -> Decision {
    let mut decisions: Vec<Decision> = identity
        .iter()
        .map(|d| evaluate_one(d, action, resource, ctx, None))
        .collect();
    if let Some(rp) = resource_policy {
        decisions.push(evaluate_one(rp, action, resource, ctx, Some(principal_arn)));
    }
    if decisions.contains(&Decision::ExplicitDeny) {
        Decision::ExplicitDeny
    } else if decisions.contains(&Decision::Allow) {
        Decision::Allow
    } else {
        Decision::ImplicitDeny
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx() -> Context {
        Context {
            source_ip: "10.1.2.3".parse().ok(),
            secure_transport: false,
        }
    }

    const S1: &str = "arn:aws:kinesis:us-east-1:000000000000:stream/s1";
    const S2: &str = "arn:aws:kinesis:us-east-1:000000000000:stream/s2";

    #[test]
    fn allow_deny_default() {
        let read_s1 = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["kinesis:GetRecords", "kinesis:GetShardIterator"], "Resource": S1}]});
        let p = [read_s1];
        assert_eq!(
            evaluate(&p, None, "u", "kinesis:GetRecords", S1, &ctx()),
            Decision::Allow
        );
        assert_eq!(
            evaluate(&p, None, "u", "kinesis:PutRecord", S1, &ctx()),
            Decision::ImplicitDeny
        );
        assert_eq!(
            evaluate(&p, None, "u", "kinesis:GetRecords", S2, &ctx()),
            Decision::ImplicitDeny
        );
        let all = json!({"Statement": {"Effect": "Allow", "Action": "kinesis:*", "Resource": "*"}});
        let deny = json!({"Statement": [{"Effect": "Deny", "Action": "kinesis:Delete*", "Resource": "arn:aws:kinesis:*:*:stream/s?"}]});
        let p = [all, deny];
        assert_eq!(
            evaluate(&p, None, "u", "kinesis:DeleteStream", S1, &ctx()),
            Decision::ExplicitDeny
        );
        assert_eq!(
            evaluate(&p, None, "u", "kinesis:putrecord", S1, &ctx()),
            Decision::Allow
        );
    }

    #[test]
    fn resource_policy_deny_wins_and_principals() {
        let all =
            [json!({"Statement": {"Effect": "Allow", "Action": "kinesis:*", "Resource": "*"}})];
        let rp = json!({"Statement": [{"Effect": "Deny", "Principal": {"AWS": "arn:aws:iam::000000000000:user/bob"}, "Action": "kinesis:PutRecord*", "Resource": S1}]});
        let bob = "arn:aws:iam::000000000000:user/bob";
        assert_eq!(
            evaluate(&all, Some(&rp), bob, "kinesis:PutRecords", S1, &ctx()),
            Decision::ExplicitDeny
        );
        assert_eq!(
            evaluate(
                &all,
                Some(&rp),
                "arn:aws:iam::000000000000:user/amy",
                "kinesis:PutRecords",
                S1,
                &ctx()
            ),
            Decision::Allow
        );
        let grant = json!({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "kinesis:GetRecords", "Resource": S1}]});
        assert_eq!(
            evaluate(&[], Some(&grant), bob, "kinesis:GetRecords", S1, &ctx()),
            Decision::Allow
        );
    }

    #[test]
    fn not_action_and_conditions() {
        let p = [
            json!({"Statement": [{"Effect": "Allow", "NotAction": "kinesis:Delete*", "Resource": "*",
            "Condition": {"IpAddress": {"aws:SourceIp": ["10.0.0.0/8"]}}}]}),
        ];
        assert_eq!(
            evaluate(&p, None, "u", "kinesis:PutRecord", S1, &ctx()),
            Decision::Allow
        );
        assert_eq!(
            evaluate(&p, None, "u", "kinesis:DeleteStream", S1, &ctx()),
            Decision::ImplicitDeny
        );
        let outside = Context {
            source_ip: "192.168.0.1".parse().ok(),
            secure_transport: false,
        };
        assert_eq!(
            evaluate(&p, None, "u", "kinesis:PutRecord", S1, &outside),
            Decision::ImplicitDeny
        );
        let tls = [
            json!({"Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}),
        ];
        assert_eq!(
            evaluate(&tls, None, "u", "kinesis:PutRecord", S1, &ctx()),
            Decision::ExplicitDeny
        );
        let unknown = [
            json!({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"StringEquals": {"aws:Foo": "x"}}}]}),
        ];
        assert_eq!(
            evaluate(&unknown, None, "u", "kinesis:PutRecord", S1, &ctx()),
            Decision::ImplicitDeny
        );
    }

    #[test]
    fn wildcards() {
        assert!(wildcard("kinesis:Get*", "kinesis:GetRecords", true));
        assert!(wildcard("a?c", "abc", false));
        assert!(!wildcard("a?c", "abbc", false));
        assert!(wildcard("*", "", false));
        assert!(!wildcard("Stream", "stream", false));
        assert!(validate(
            &json!({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})
        )
        .is_ok());
        assert!(validate(
            &json!({"Statement": [{"Effect": "Maybe", "Action": "*", "Resource": "*"}]})
        )
        .is_err());
    }
}
