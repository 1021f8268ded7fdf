//! Write-time indexing: evaluate every search parameter of the resource's type and turn the
//! values into index rows.

use helse_fhir_r4::parse_date_range;
use helse_fhirpath::Item;
use helse_store::{IndexEntry, IndexValue};
use serde_json::Value;

use crate::normalize::normalize;
use crate::parameters::{ParamType, search_parameters};

/// Location `near`: each position's latitude and longitude as number rows `near$0` and
/// `near$1` sharing a group, searched as a box (see `query::near_condition`).
fn near_entries(resource: &Value, param: &crate::parameters::SearchParam, out: &mut Vec<IndexEntry>) {
    for (g, position) in param.expression.evaluate(resource).iter().enumerate() {
        let (Some(lat), Some(long)) =
            (number(&position.value["latitude"]), number(&position.value["longitude"]))
        else {
            continue;
        };
        for (k, v) in [lat, long].into_iter().enumerate() {
            out.push(IndexEntry {
                param: format!("{}${k}", param.code),
                value: IndexValue::Number(v),
                group: Some(g as i64 + 1),
            });
        }
    }
}

/// Every index row for the resource's current version.
pub fn index_entries(resource: &Value) -> Vec<IndexEntry> {
    let Some(ty) = resource.get("resourceType").and_then(Value::as_str) else {
        return Vec::new();
    };
    let mut out: Vec<IndexEntry> = Vec::new();
    for param in search_parameters().for_type(ty) {
        // A search by `_id` reads the resource row itself: an index row per resource would
        // be written and never read (a fifteenth of an import's rows).
        if param.code == "_id" {
            continue;
        }
        match param.ty {
            ParamType::Special if param.code == "near" => near_entries(resource, param, &mut out),
            ParamType::Special => {}
            ParamType::Composite => composite_entries(resource, param, &mut out),
            _ => {
                for item in param.expression.evaluate(resource) {
                    if param.ty == ParamType::Reference {
                        contained_entries(resource, &param.code, &item, &mut out);
                    }
                    let modifier_rows = modifier_values(param.ty, &item);
                    let rows = values(param.ty, &item).into_iter().map(|v| (param.code.clone(), v));
                    let modifier_rows = modifier_rows
                        .into_iter()
                        .map(|(modifier, v)| (format!("{}:{modifier}", param.code), v));
                    for (code, value) in rows.chain(modifier_rows) {
                        let entry = IndexEntry { param: code, value, group: None };
                        if !out.contains(&entry) {
                            out.push(entry);
                        }
                    }
                }
            }
        }
    }
    out
}

/// A reference to a contained resource (`#p1`) is not a row of its own: the contained
/// resource's values are indexed on the container as `code:Type.param`, so that chains such
/// as `subject.name=…` reach into it.
fn contained_entries(resource: &Value, code: &str, item: &Item<'_>, out: &mut Vec<IndexEntry>) {
    let Some(local) = item.value.get("reference").and_then(Value::as_str).and_then(|r| r.strip_prefix('#'))
    else {
        return;
    };
    let Some(contained) = resource
        .get("contained")
        .and_then(Value::as_array)
        .and_then(|c| c.iter().find(|r| r.get("id").and_then(Value::as_str) == Some(local)))
    else {
        return;
    };
    let Some(ty) = contained.get("resourceType").and_then(Value::as_str) else { return };
    for entry in index_entries(contained) {
        // One level only, and no composite or modifier rows.
        if entry.param.contains([':', '$', '.']) {
            continue;
        }
        let entry =
            IndexEntry { param: format!("{code}:{ty}.{}", entry.param), value: entry.value, group: None };
        if !out.contains(&entry) {
            out.push(entry);
        }
    }
}

/// A composite parameter's rows: for each element its expression selects (group 1, 2, …),
/// each component's values under `code$k`.
fn composite_entries(resource: &Value, param: &crate::SearchParam, out: &mut Vec<IndexEntry>) {
    for (g, item) in param.expression.evaluate(resource).iter().enumerate() {
        let rows: Vec<Vec<IndexValue>> = param
            .components
            .iter()
            .map(|c| c.expression.evaluate_on(resource, item).iter().flat_map(|v| values(c.ty, v)).collect())
            .collect();
        // An element missing a component cannot match a composite search.
        if rows.iter().any(Vec::is_empty) {
            continue;
        }
        for (k, values) in rows.into_iter().enumerate() {
            for value in values {
                out.push(IndexEntry {
                    param: format!("{}${k}", param.code),
                    value,
                    group: Some(g as i64 + 1),
                });
            }
        }
    }
}

/// Rows that serve modifiers, stored under `code:modifier`:
/// - `:identifier` on references: the token of `Reference.identifier`;
/// - `:of-type` on identifiers: system = the type's system, code = `typecode|value`.
fn modifier_values(param_type: ParamType, item: &Item<'_>) -> Vec<(&'static str, IndexValue)> {
    let v: &Value = &item.value;
    match (param_type, type_of(item)) {
        (ParamType::Reference, "Reference") => v
            .get("identifier")
            .map(|i| token_values("Identifier", i).into_iter().map(|t| ("identifier", t)).collect())
            .unwrap_or_default(),
        (ParamType::Token, "Identifier") => {
            let Some(value) = str_of(v, "value") else { return Vec::new() };
            v.get("type")
                .and_then(|t| t.get("coding"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|c| {
                    let code = str_of(c, "code")?;
                    Some(("of-type", token(str_of(c, "system"), &format!("{code}|{value}"), None)))
                })
                .collect()
        }
        _ => Vec::new(),
    }
}

fn str_of<'v>(v: &'v Value, key: &str) -> Option<&'v str> {
    v.get(key).and_then(Value::as_str)
}

fn strings<'v>(v: &'v Value, key: &str) -> Vec<&'v str> {
    match v.get(key) {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.to_string().parse().ok(),
        _ => None,
    }
}

/// The item's type, from the definitions or, failing that, from the JSON shape.
fn type_of<'i>(item: &'i Item<'_>) -> &'i str {
    if let Some(t) = item.type_name() {
        return t;
    }
    match &*item.value {
        Value::String(_) => "string",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "decimal",
        Value::Object(o) if o.contains_key("coding") => "CodeableConcept",
        Value::Object(o) if o.contains_key("reference") => "Reference",
        Value::Object(o) if o.contains_key("value") && o.contains_key("system") => "Identifier",
        _ => "",
    }
}

fn values(param_type: ParamType, item: &Item<'_>) -> Vec<IndexValue> {
    let v: &Value = &item.value;
    let ty = type_of(item);
    match param_type {
        ParamType::Token => token_values(ty, v),
        ParamType::String => string_values(ty, v),
        ParamType::Date => date_values(ty, v).into_iter().collect(),
        ParamType::Reference => reference_value(ty, v).into_iter().collect(),
        ParamType::Number => number(v).map(IndexValue::Number).into_iter().collect(),
        ParamType::Quantity => quantity_value(ty, v).into_iter().collect(),
        ParamType::Uri => v.as_str().map(|s| IndexValue::Uri(s.to_owned())).into_iter().collect(),
        ParamType::Composite | ParamType::Special => Vec::new(),
    }
}

fn token(system: Option<&str>, code: &str, text: Option<&str>) -> IndexValue {
    IndexValue::Token { system: system.map(str::to_owned), code: code.to_owned(), text: text.map(normalize) }
}

fn token_values(ty: &str, v: &Value) -> Vec<IndexValue> {
    match ty {
        "Coding" => str_of(v, "code")
            .map(|c| token(str_of(v, "system"), c, str_of(v, "display")))
            .into_iter()
            .collect(),
        "CodeableConcept" => {
            let text = str_of(v, "text");
            let mut out: Vec<IndexValue> = v
                .get("coding")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|c| {
                    str_of(c, "code")
                        .map(|code| token(str_of(c, "system"), code, text.or(str_of(c, "display"))))
                })
                .collect();
            if out.is_empty()
                && let Some(t) = text
            {
                out.push(token(None, "", Some(t)));
            }
            out
        }
        "Identifier" => str_of(v, "value")
            .map(|value| token(str_of(v, "system"), value, v.get("type").and_then(|t| str_of(t, "text"))))
            .into_iter()
            .collect(),
        "ContactPoint" => {
            str_of(v, "value").map(|value| token(str_of(v, "system"), value, None)).into_iter().collect()
        }
        "boolean" => {
            v.as_bool().map(|b| token(None, if b { "true" } else { "false" }, None)).into_iter().collect()
        }
        _ => match v {
            Value::String(s) => vec![token(None, s, None)],
            _ => Vec::new(),
        },
    }
}

fn string_value(s: &str) -> IndexValue {
    IndexValue::String { normalized: normalize(s), exact: s.to_owned() }
}

fn string_values(ty: &str, v: &Value) -> Vec<IndexValue> {
    let keys: &[&str] = match ty {
        "HumanName" => &["family", "given", "prefix", "suffix", "text"],
        "Address" => &["line", "city", "district", "state", "postalCode", "country", "text"],
        _ => return v.as_str().map(string_value).into_iter().collect(),
    };
    keys.iter().flat_map(|k| strings(v, k)).map(string_value).collect()
}

fn date_values(ty: &str, v: &Value) -> Option<IndexValue> {
    match ty {
        "Period" => {
            let start = str_of(v, "start").and_then(parse_date_range).map_or(i64::MIN, |r| r.start);
            let end = str_of(v, "end").and_then(parse_date_range).map_or(i64::MAX, |r| r.end);
            Some(IndexValue::Date { start, end })
        }
        "Timing" => {
            let ranges: Vec<_> = strings(v, "event").into_iter().filter_map(parse_date_range).collect();
            let start = ranges.iter().map(|r| r.start).min()?;
            let end = ranges.iter().map(|r| r.end).max()?;
            Some(IndexValue::Date { start, end })
        }
        _ => v.as_str().and_then(parse_date_range).map(|r| IndexValue::Date { start: r.start, end: r.end }),
    }
}

fn reference_value(ty: &str, v: &Value) -> Option<IndexValue> {
    let reference = match ty {
        "Reference" => str_of(v, "reference")?,
        _ => v.as_str()?,
    };
    if reference.starts_with('#') {
        return None;
    }
    let absolute = reference.contains(':');
    let (target_type, target_id) = match helse_fhir_r4::reference_target(reference) {
        Some((t, i)) => (Some(t.to_string()), Some(i.to_owned())),
        None => (None, None),
    };
    Some(IndexValue::Reference { target_type, target_id, url: absolute.then(|| reference.to_owned()) })
}

fn quantity_value(ty: &str, v: &Value) -> Option<IndexValue> {
    let value = number(v.get("value")?)?;
    if ty == "Money" {
        return Some(IndexValue::Quantity {
            value,
            system: Some("urn:iso:std:iso:4217".into()),
            code: str_of(v, "currency").map(str::to_owned),
        });
    }
    Some(IndexValue::Quantity {
        value,
        system: str_of(v, "system").map(str::to_owned),
        code: str_of(v, "code").or(str_of(v, "unit")).map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find(entries: &[IndexEntry], param: &str) -> Vec<IndexValue> {
        entries.iter().filter(|e| e.param == param).map(|e| e.value.clone()).collect()
    }

    #[test]
    fn patient_values() {
        let p: Value = serde_json::from_str(r#"{"resourceType":"Patient","id":"p","identifier":[{"system":"urn:oid:2.16.578.1.12.4.1.4.1","value":"13031353453"}],
            "name":[{"family":"Ødegård","given":["Kari","Nora"]}],"gender":"female","birthDate":"1980-05",
            "generalPractitioner":[{"reference":"Practitioner/gp1"}],"active":true,"meta":{"lastUpdated":"2020-01-01T00:00:00Z"}}"#).unwrap();
        let e = index_entries(&p);
        assert_eq!(
            find(&e, "identifier"),
            [IndexValue::Token {
                system: Some("urn:oid:2.16.578.1.12.4.1.4.1".into()),
                code: "13031353453".into(),
                text: None
            }]
        );
        assert!(
            find(&e, "family")
                .contains(&IndexValue::String { normalized: "odegard".into(), exact: "Ødegård".into() })
        );
        assert_eq!(find(&e, "given").len(), 2);
        assert_eq!(find(&e, "name").len(), 3);
        assert_eq!(
            find(&e, "gender"),
            [IndexValue::Token { system: None, code: "female".into(), text: None }]
        );
        let IndexValue::Date { start, end } = find(&e, "birthdate")[0] else { panic!() };
        assert_eq!(end - start, 31 * 24 * 3600 * 1000);
        assert_eq!(
            find(&e, "general-practitioner"),
            [IndexValue::Reference {
                target_type: Some("Practitioner".into()),
                target_id: Some("gp1".into()),
                url: None
            }]
        );
        assert_eq!(find(&e, "active"), [IndexValue::Token { system: None, code: "true".into(), text: None }]);
        assert!(find(&e, "_id").is_empty(), "_id is the resource row's own");
    }

    #[test]
    fn modifier_rows() {
        let p: Value = serde_json::from_str(r#"{"resourceType":"Patient","identifier":[{"type":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0203","code":"MR"}]},"value":"446053"}],
            "generalPractitioner":[{"identifier":{"system":"urn:oid:2.16.578.1.12.4.1.4.4","value":"9144889"}}]}"#).unwrap();
        let e = index_entries(&p);
        assert_eq!(
            find(&e, "identifier:of-type"),
            [IndexValue::Token {
                system: Some("http://terminology.hl7.org/CodeSystem/v2-0203".into()),
                code: "MR|446053".into(),
                text: None
            }]
        );
        assert_eq!(
            find(&e, "general-practitioner:identifier"),
            [IndexValue::Token {
                system: Some("urn:oid:2.16.578.1.12.4.1.4.4".into()),
                code: "9144889".into(),
                text: None
            }]
        );
    }

    #[test]
    fn observation_values() {
        let o: Value = serde_json::from_str(r#"{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4","display":"Heart rate"}]},
            "subject":{"reference":"Patient/p"},"effectivePeriod":{"start":"2024-01-01T10:00:00Z"},"valueQuantity":{"value":72.5,"system":"http://unitsofmeasure.org","code":"/min"}}"#).unwrap();
        let e = index_entries(&o);
        assert_eq!(
            find(&e, "code"),
            [IndexValue::Token {
                system: Some("http://loinc.org".into()),
                code: "8867-4".into(),
                text: Some("heart rate".into())
            }]
        );
        assert_eq!(find(&e, "patient").len(), 1);
        assert_eq!(find(&e, "subject").len(), 1);
        assert_eq!(
            find(&e, "value-quantity"),
            [IndexValue::Quantity {
                value: 72.5,
                system: Some("http://unitsofmeasure.org".into()),
                code: Some("/min".into())
            }]
        );
        let IndexValue::Date { end, .. } = find(&e, "date")[0] else { panic!() };
        assert_eq!(end, i64::MAX);
    }
}

/// The values one search parameter takes on a resource, as its index rows hold them (no
/// composite or special parameters).
pub fn param_values(resource: &Value, code: &str) -> Vec<IndexValue> {
    let Some(ty) = resource.get("resourceType").and_then(Value::as_str) else {
        return Vec::new();
    };
    let Some(param) = search_parameters().get(ty, code) else { return Vec::new() };
    param.expression.evaluate(resource).iter().flat_map(|item| values(param.ty, item)).collect()
}

/// The ids of the `compartment` resources (e.g. Patients) whose compartment `resource` is
/// in: itself when it is one, else whatever its compartment parameters refer to.
pub fn compartment_owners(compartment: &str, resource: &Value) -> Vec<String> {
    let Some(ty) = resource.get("resourceType").and_then(Value::as_str) else {
        return Vec::new();
    };
    if ty == compartment {
        return resource.get("id").and_then(Value::as_str).map(str::to_owned).into_iter().collect();
    }
    let Some(params) = search_parameters().compartment_params(compartment, ty) else {
        return Vec::new();
    };
    let mut owners: Vec<String> = params
        .iter()
        .flat_map(|p| param_values(resource, p))
        .filter_map(|v| match v {
            IndexValue::Reference { target_type: Some(t), target_id: Some(id), .. } if t == compartment => {
                Some(id)
            }
            _ => None,
        })
        .collect();
    owners.sort();
    owners.dedup();
    owners
}

#[cfg(test)]
mod owner_tests {
    use serde_json::json;

    #[test]
    fn compartment_owners_follow_the_compartment_parameters() {
        let obs = json!({"resourceType": "Observation", "id": "o", "status": "final",
            "code": {"text": "x"}, "subject": {"reference": "Patient/p1"},
            "performer": [{"reference": "Patient/p2"}, {"reference": "Practitioner/d"}]});
        assert_eq!(super::compartment_owners("Patient", &obs), ["p1", "p2"]);
        let patient = json!({"resourceType": "Patient", "id": "p9"});
        assert_eq!(super::compartment_owners("Patient", &patient), ["p9"]);
        // A type outside the compartment, and a reference through a full URL.
        let org = json!({"resourceType": "Organization", "id": "o"});
        assert!(super::compartment_owners("Patient", &org).is_empty());
        let cond = json!({"resourceType": "Condition", "id": "c",
            "subject": {"reference": "https://helse.example/fhir/Patient/p3"}});
        assert_eq!(super::compartment_owners("Patient", &cond), ["p3"]);
    }
}
