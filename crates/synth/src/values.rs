//! Small builders for the FHIR datatypes the generator writes again and again.

use serde_json::{Map, Number, Value, json};
use time::{Date, OffsetDateTime, macros::format_description};

use helse_norway::registers::Municipality;
use helse_norway::systems;

use crate::catalogue::{Code, Measure, UCUM};

/// A Norwegian address in a municipality, its code carried as an extension. `kind` is
/// `Address.type` (`physical`, …), when given.
pub fn address(m: &Municipality, use_: &str, kind: Option<&str>, line: &str) -> Value {
    let mut a = Map::new();
    a.insert("use".into(), use_.into());
    if let Some(k) = kind {
        a.insert("type".into(), k.into());
    }
    let rest = json!({
        "line": [line],
        "city": m.post_place,
        "postalCode": m.postal_code,
        "district": m.name,
        "state": m.county,
        "country": "NO",
        "extension": [{"url": systems::MUNICIPALITY_EXTENSION, "valueCoding": {"system": systems::MUNICIPALITY_CODE, "code": m.code, "display": m.name}}]
    });
    a.extend(rest.as_object().expect("an object").clone());
    Value::Object(a)
}

pub fn coding(c: &Code) -> Value {
    json!({"system": c.system, "code": c.code, "display": c.display})
}

pub fn concept(codes: &[&Code]) -> Value {
    json!({"coding": codes.iter().map(|c| coding(c)).collect::<Vec<_>>(), "text": codes[0].display})
}

pub fn concept_of(system: &str, code: &str, display: &str) -> Value {
    json!({"coding": [{"system": system, "code": code, "display": display}], "text": display})
}

pub fn reference(resource_type: &str, id: &str) -> Value {
    json!({"reference": format!("{resource_type}/{id}")})
}

pub fn identifier(system: &str, value: &str) -> Value {
    json!({"system": system, "value": value})
}

/// A decimal with exactly `decimals` places, as FHIR wants measured values shown.
pub fn decimal(value: f64, decimals: usize) -> Value {
    let text = format!("{value:.decimals$}");
    Value::Number(text.parse::<Number>().unwrap_or_else(|_| Number::from(0)))
}

pub fn quantity(value: f64, unit: &str, decimals: usize) -> Value {
    json!({"value": decimal(value, decimals), "unit": unit, "system": UCUM, "code": unit})
}

pub fn measured(m: &Measure, value: f64) -> Value {
    quantity(value, m.unit, m.decimals)
}

pub fn date(d: Date) -> String {
    d.format(format_description!("[year]-[month]-[day]")).expect("date formats")
}

pub fn date_time(t: OffsetDateTime) -> String {
    t.format(format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z")).expect("instant formats")
}

/// Starts a resource object with its type and id, for the caller to fill in.
pub fn resource(resource_type: &str, id: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("resourceType".into(), Value::from(resource_type));
    m.insert("id".into(), Value::from(id));
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_keep_their_places() {
        assert_eq!(decimal(72.0, 0).to_string(), "72");
        assert_eq!(decimal(37.04, 1).to_string(), "37.0");
        assert_eq!(decimal(2.456, 2).to_string(), "2.46");
    }
}
