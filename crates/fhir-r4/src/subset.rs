//! `_summary` and `_elements`: returning part of a resource, marked SUBSETTED.

use serde_json::{Map, Value, json};

use crate::definitions::{TypeDef, definitions};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SummaryMode {
    /// Elements marked as summary in the definitions.
    True,
    /// `text`, `id`, `meta` and the mandatory top-level elements.
    Text,
    /// Everything except `text`.
    Data,
    /// Everything.
    False,
}

impl SummaryMode {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "true" => SummaryMode::True,
            "text" => SummaryMode::Text,
            "data" => SummaryMode::Data,
            "false" => SummaryMode::False,
            _ => return None,
        })
    }
}

const ALWAYS: [&str; 3] = ["resourceType", "id", "meta"];

pub fn subset_summary(resource: &mut Value, mode: SummaryMode) {
    let Some(def) = resource_def(resource) else {
        return;
    };
    let Value::Object(map) = resource else { return };
    match mode {
        SummaryMode::False => return,
        SummaryMode::Data => {
            map.shift_remove("text");
        }
        SummaryMode::Text => map.retain(|k, _| {
            ALWAYS.contains(&k.as_str()) || k == "text" || top_level(def, k).is_some_and(|e| e.min > 0)
        }),
        SummaryMode::True => summary_node(def, "", map),
    }
    mark_subsetted(map);
}

fn summary_node(def: &TypeDef, node: &str, map: &mut Map<String, Value>) {
    map.retain(|k, _| {
        (node.is_empty() && ALWAYS.contains(&k.as_str()))
            || def.child(node, k.trim_start_matches('_')).is_some_and(|(e, _)| e.summary)
    });
    for (k, v) in map.iter_mut() {
        let Some((e, _)) = def.child(node, k.trim_start_matches('_')) else {
            continue;
        };
        if def.is_node(&e.path) {
            let path = e.path.clone();
            for_each_object(v, |m| summary_node(def, &path, m));
        }
    }
}

/// Keeps the named top-level elements plus `id`, `meta` and mandatory elements.
pub fn subset_elements(resource: &mut Value, elements: &[&str]) {
    let Some(def) = resource_def(resource) else {
        return;
    };
    let Value::Object(map) = resource else { return };
    map.retain(|k, _| {
        let name = k.trim_start_matches('_');
        ALWAYS.contains(&name) || elements.contains(&name) || top_level(def, name).is_some_and(|e| e.min > 0)
    });
    mark_subsetted(map);
}

fn resource_def(resource: &Value) -> Option<&'static TypeDef> {
    definitions().get(resource.get("resourceType")?.as_str()?)
}

fn top_level<'a>(def: &'a TypeDef, key: &str) -> Option<&'a crate::ElementDef> {
    def.child("", key).map(|(e, _)| e)
}

fn for_each_object(v: &mut Value, mut f: impl FnMut(&mut Map<String, Value>)) {
    match v {
        Value::Object(m) => f(m),
        Value::Array(items) => items.iter_mut().filter_map(Value::as_object_mut).for_each(f),
        _ => {}
    }
}

fn mark_subsetted(map: &mut Map<String, Value>) {
    let tag =
        json!({"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED"});
    let meta = map.entry("meta").or_insert_with(|| json!({}));
    if let Value::Object(meta) = meta {
        match meta.get_mut("tag") {
            Some(Value::Array(tags)) => tags.push(tag),
            _ => {
                meta.insert("tag".into(), json!([tag]));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(v: &Value) -> Vec<&str> {
        v.as_object().unwrap().keys().map(String::as_str).collect()
    }

    #[test]
    fn summary_true_keeps_summary_elements() {
        let mut p = json!({"resourceType":"Patient","id":"1","text":{"status":"generated","div":"<div/>"},"name":[{"family":"x"}],"photo":[{"url":"http://x"}],"contact":[{"name":{"family":"y"}}]});
        subset_summary(&mut p, SummaryMode::True);
        assert_eq!(keys(&p), ["resourceType", "id", "name", "meta"]);
        assert_eq!(p["meta"]["tag"][0]["code"], "SUBSETTED");
    }

    #[test]
    fn summary_text_and_data() {
        let base = json!({"resourceType":"Observation","id":"1","text":{"status":"generated","div":"<div/>"},"status":"final","code":{"text":"x"},"note":[{"text":"n"}]});
        let mut t = base.clone();
        subset_summary(&mut t, SummaryMode::Text);
        assert_eq!(keys(&t), ["resourceType", "id", "text", "status", "code", "meta"]);
        let mut d = base.clone();
        subset_summary(&mut d, SummaryMode::Data);
        assert_eq!(keys(&d), ["resourceType", "id", "status", "code", "note", "meta"]);
    }

    #[test]
    fn elements_keeps_named_and_mandatory() {
        let mut o = json!({"resourceType":"Observation","id":"1","status":"final","code":{"text":"x"},"note":[{"text":"n"}],"issued":"2020-01-01T00:00:00Z"});
        subset_elements(&mut o, &["issued"]);
        assert_eq!(keys(&o), ["resourceType", "id", "status", "code", "issued", "meta"]);
    }
}
