//! Resource policies: Put/Get/DeleteResourcePolicy on a stream or consumer
//! ARN. The front door evaluates them together with the caller's identity
//! policies (explicit deny anywhere wins).

use std::sync::Arc;

use runnel_types::StreamArn;

use crate::api::*;
use crate::error::{Result, StreamsError};
use crate::service::{StreamEntry, StreamsService};
use crate::validate::Violations;

impl StreamsService {
    /// The stream an ARN belongs to (stream ARN or consumer ARN), if it exists.
    fn stream_of_arn(&self, arn: &str) -> Option<Arc<StreamEntry>> {
        let stream_part = arn.split("/consumer/").next().unwrap_or(arn);
        let parsed = StreamArn::parse(stream_part)?;
        if parsed.account != self.cfg.account_id || parsed.region != self.cfg.region {
            return None;
        }
        let entry = self.lookup(&parsed.stream_name).ok()?;
        if let Some((_, consumer)) = arn.split_once("/consumer/") {
            let name = consumer.rsplit_once(':').map_or(consumer, |(n, _)| n);
            entry.rec.consumers.iter().find(|c| c.name == name)?;
        }
        Some(entry)
    }

    fn policy_target(
        &self,
        arn: Option<&str>,
        mut v: Violations,
    ) -> Result<(Arc<StreamEntry>, String)> {
        v.required("resourceARN", &arn);
        v.resource_arn("resourceARN", arn);
        v.finish()?;
        let arn = arn.unwrap_or_default();
        let entry = self
            .stream_of_arn(arn)
            .ok_or_else(|| StreamsError::ResourceNotFound(format!("Resource {arn} not found.")))?;
        Ok((entry, arn.to_string()))
    }

    pub fn put_resource_policy(&self, input: PutResourcePolicyInput) -> Result<Empty> {
        let mut v = Violations::new();
        v.required("policy", &input.policy);
        let (entry, arn) = self.policy_target(input.resource_arn.as_deref(), v)?;
        let text = input.policy.unwrap_or_default();
        let doc: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| StreamsError::InvalidArgument(format!("Policy is not valid JSON: {e}")))?;
        runnel_auth::policy::validate(&doc)
            .map_err(|e| StreamsError::InvalidArgument(e.to_string()))?;
        let _guard = self.control.lock();
        let entry = self.lookup(&entry.rec.name)?;
        let mut rec = entry.rec.clone();
        rec.resource_policies.insert(arn, text);
        self.commit(rec)?;
        Ok(Empty {})
    }

    pub fn get_resource_policy(
        &self,
        input: ResourcePolicyRefInput,
    ) -> Result<GetResourcePolicyOutput> {
        let (entry, arn) = self.policy_target(input.resource_arn.as_deref(), Violations::new())?;
        Ok(GetResourcePolicyOutput {
            policy: entry
                .rec
                .resource_policies
                .get(&arn)
                .cloned()
                .unwrap_or_else(|| "{}".into()),
        })
    }

    pub fn delete_resource_policy(&self, input: ResourcePolicyRefInput) -> Result<Empty> {
        let (entry, arn) = self.policy_target(input.resource_arn.as_deref(), Violations::new())?;
        let _guard = self.control.lock();
        let entry = self.lookup(&entry.rec.name)?;
        if !entry.rec.resource_policies.contains_key(&arn) {
            return Err(StreamsError::ResourceNotFound(format!(
                "No resource policy is attached to {arn}."
            )));
        }
        let mut rec = entry.rec.clone();
        rec.resource_policies.remove(&arn);
        self.commit(rec)?;
        Ok(Empty {})
    }

    /// The resource policy attached to `arn` (for authorization), if any.
    pub fn resource_policy_for(&self, arn: &str) -> Option<serde_json::Value> {
        let entry = self.stream_of_arn(arn)?;
        let text = entry.rec.resource_policies.get(arn)?;
        serde_json::from_str(text).ok()
    }
}
