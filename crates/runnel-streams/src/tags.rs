//! Stream tags: AddTagsToStream / RemoveTagsFromStream / ListTagsForStream and
//! the ARN-addressed TagResource / UntagResource / ListTagsForResource.

use std::collections::BTreeMap;

use runnel_types::limits::{TAGS_PER_STREAM_MAX, TAG_KEY_CHARS_MAX, TAG_VALUE_CHARS_MAX};
use runnel_types::StreamArn;

use crate::api::*;
use crate::error::{Result, StreamsError};
use crate::service::{StreamEntry, StreamsService};
use crate::validate::{show_list, show_map, Violations};

/// AWS's tag pattern `[\p{L}\p{Z}\p{N}_.:/=+\-@%]`: letters, digits, the
/// Unicode space separators (a tab or a newline is not one) and `_.:/=+-@%`.
fn tag_char_ok(c: char) -> bool {
    c.is_alphanumeric() || is_space_separator(c) || "_./=+-%@:".contains(c)
}

/// Unicode general categories Zs, Zl and Zp (`\p{Z}`).
fn is_space_separator(c: char) -> bool {
    matches!(
        c,
        ' ' | '\u{a0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200a}' | '\u{2028}' | '\u{2029}' | '\u{202f}' | '\u{205f}' | '\u{3000}'
    )
}

/// Checks tag keys/values and the per-stream tag limit.
/// `resulting_count` is how many tags the stream would have afterwards.
pub(crate) fn check_tags(
    tags: &BTreeMap<String, String>,
    stream: &str,
    account: &str,
    resulting_count: usize,
) -> Result<()> {
    // Lengths are model constraints, checked before (`check_tag_map`).
    for (k, val) in tags {
        if !k.chars().all(tag_char_ok) || !val.chars().all(tag_char_ok) {
            return Err(StreamsError::InvalidArgument(
                "Some tags contain invalid characters. Valid characters: Unicode letters, digits, white space, _ . / = + - % @.".into(),
            ));
        }
        if k == crate::quota::QUOTA_TAG {
            crate::quota::parse_setting(val)
                .map_err(|e| StreamsError::InvalidArgument(format!("Tag {k}: {e}.")))?;
        }
        if k.starts_with("aws:") {
            return Err(StreamsError::InvalidArgument(format!(
                "Tag key '{k}' uses the reserved prefix 'aws:'."
            )));
        }
    }
    if resulting_count > TAGS_PER_STREAM_MAX {
        return Err(StreamsError::InvalidArgument(format!(
            "Failed to add tags to stream {stream} under account {account} because a given stream cannot have more than {TAGS_PER_STREAM_MAX} tags associated with it."
        )));
    }
    Ok(())
}

/// Model constraints of a `TagMap` member (`Tags`: 1–200 entries, keys of
/// 1–128 and values of 0–256 characters), checked before the stream is
/// looked up, as AWS does.
pub(crate) fn check_tag_map(v: &mut Violations, tags: Option<&BTreeMap<String, String>>) {
    let Some(tags) = tags else { return };
    v.list_len("tags", Some(tags.len()), 1, 200, &show_map(tags));
    v.map_entries(
        "tags",
        Some(tags),
        (1, TAG_KEY_CHARS_MAX),
        (0, TAG_VALUE_CHARS_MAX),
    );
}

/// Model constraints of a `TagKeyList` member (`TagKeys`: 1–50 keys of
/// 1–128 characters).
fn check_tag_keys(v: &mut Violations, keys: &Option<Vec<String>>) {
    v.required("tagKeys", keys);
    let Some(keys) = keys else { return };
    v.list_len("tagKeys", Some(keys.len()), 1, 50, &show_list(keys));
    v.members("tagKeys", Some(keys), 1, TAG_KEY_CHARS_MAX);
}

impl StreamsService {
    fn add_tags(&self, entry: &StreamEntry, tags: BTreeMap<String, String>) -> Result<()> {
        let _guard = self.control.lock();
        let entry = self.lookup(&entry.rec.name)?;
        if self.is_gone(&entry.rec)
            || self.state_of(&entry.rec) == runnel_catalog::StreamState::Deleting
        {
            return Err(self.not_active(&entry.rec));
        }
        let new_keys = tags
            .keys()
            .filter(|k| !entry.rec.tags.contains_key(*k))
            .count();
        check_tags(
            &tags,
            &entry.rec.name,
            &self.cfg.account_id,
            entry.rec.tags.len() + new_keys,
        )?;
        let mut rec = entry.rec.clone();
        rec.tags.extend(tags);
        self.commit(rec)?;
        Ok(())
    }

    fn remove_tags(&self, entry: &StreamEntry, keys: &[String]) -> Result<()> {
        let _guard = self.control.lock();
        let entry = self.lookup(&entry.rec.name)?;
        let mut rec = entry.rec.clone();
        for k in keys {
            rec.tags.remove(k);
        }
        self.commit(rec)?;
        Ok(())
    }

    pub fn add_tags_to_stream(&self, input: AddTagsToStreamInput) -> Result<Empty> {
        let mut v = Violations::new();
        v.required("tags", &input.tags);
        check_tag_map(&mut v, input.tags.as_ref());
        let entry = self.resolve(&input, v)?;
        self.add_tags(&entry, input.tags.unwrap_or_default())?;
        Ok(Empty {})
    }

    pub fn remove_tags_from_stream(&self, input: RemoveTagsFromStreamInput) -> Result<Empty> {
        let mut v = Violations::new();
        check_tag_keys(&mut v, &input.tag_keys);
        let entry = self.resolve(&input, v)?;
        self.remove_tags(&entry, &input.tag_keys.unwrap_or_default())?;
        Ok(Empty {})
    }

    pub fn list_tags_for_stream(
        &self,
        input: ListTagsForStreamInput,
    ) -> Result<ListTagsForStreamOutput> {
        let mut v = Violations::new();
        v.int("limit", input.limit, 1, Some(50));
        v.string(
            "exclusiveStartTagKey",
            input.exclusive_start_tag_key.as_deref(),
            1,
            TAG_KEY_CHARS_MAX,
        );
        let entry = self.resolve(&input, v)?;
        let limit = input
            .limit
            .map(|l| l as usize)
            .unwrap_or(TAGS_PER_STREAM_MAX);
        let after = input.exclusive_start_tag_key.as_deref();
        let mut tags: Vec<TagOut> = entry
            .rec
            .tags
            .iter()
            .filter(|(k, _)| after.is_none_or(|a| k.as_str() > a))
            .take(limit + 1)
            .map(|(k, v)| TagOut {
                key: k.clone(),
                value: v.clone(),
            })
            .collect();
        let has_more = tags.len() > limit;
        tags.truncate(limit);
        Ok(ListTagsForStreamOutput {
            tags,
            has_more_tags: has_more,
        })
    }

    /// Resolves a `ResourceARN` (only stream ARNs exist so far).
    fn resolve_resource(
        &self,
        arn: Option<&str>,
        mut v: Violations,
    ) -> Result<std::sync::Arc<StreamEntry>> {
        v.required("resourceARN", &arn);
        v.resource_arn("resourceARN", arn);
        v.finish()?;
        let arn = arn.unwrap_or_default();
        let parsed = StreamArn::parse(arn)
            .ok_or_else(|| StreamsError::ResourceNotFound(format!("Resource {arn} not found.")))?;
        if parsed.account != self.cfg.account_id || parsed.region != self.cfg.region {
            return Err(self.not_found(&parsed.stream_name));
        }
        self.lookup(&parsed.stream_name)
    }

    pub fn tag_resource(&self, input: TagResourceInput) -> Result<Empty> {
        let mut v = Violations::new();
        v.required("tags", &input.tags);
        check_tag_map(&mut v, input.tags.as_ref());
        let entry = self.resolve_resource(input.resource_arn.as_deref(), v)?;
        self.add_tags(&entry, input.tags.unwrap_or_default())?;
        Ok(Empty {})
    }

    pub fn untag_resource(&self, input: UntagResourceInput) -> Result<Empty> {
        let mut v = Violations::new();
        check_tag_keys(&mut v, &input.tag_keys);
        let entry = self.resolve_resource(input.resource_arn.as_deref(), v)?;
        self.remove_tags(&entry, &input.tag_keys.unwrap_or_default())?;
        Ok(Empty {})
    }

    pub fn list_tags_for_resource(
        &self,
        input: ListTagsForResourceInput,
    ) -> Result<ListTagsForResourceOutput> {
        let entry = self.resolve_resource(input.resource_arn.as_deref(), Violations::new())?;
        Ok(ListTagsForResourceOutput {
            tags: entry
                .rec
                .tags
                .iter()
                .map(|(k, v)| TagOut {
                    key: k.clone(),
                    value: v.clone(),
                })
                .collect(),
        })
    }
}
