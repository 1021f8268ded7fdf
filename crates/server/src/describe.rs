//! FHIR data in a few words, for people: what a CodeableConcept says, a person's name, the
//! identifier of a system. Shared by the summary's narrative, the sign-in page and the
//! portal.

use serde_json::Value;

/// The first words of a CodeableConcept: its text, else its first coding's display or code.
pub fn concept(c: &Value) -> Option<&str> {
    let c = if c.is_array() { c.get(0)? } else { c };
    c.get("text")
        .and_then(Value::as_str)
        .or_else(|| c.pointer("/coding/0/display").and_then(Value::as_str))
        .or_else(|| c.pointer("/coding/0/code").and_then(Value::as_str))
}

/// A person's name (`given family`) from a Patient or Practitioner.
pub fn person_name(r: &Value) -> Option<String> {
    let name = r.get("name")?.get(0)?;
    if let Some(text) = name.get("text").and_then(Value::as_str) {
        return Some(text.to_owned());
    }
    let given: Vec<&str> =
        name.get("given").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
    let full = format!("{} {}", given.join(" "), name.get("family").and_then(Value::as_str).unwrap_or(""));
    let full = full.trim();
    (!full.is_empty()).then(|| full.to_owned())
}

/// The identifier of a system (a fødselsnummer, say).
pub fn identifier<'a>(r: &'a Value, system: &str) -> Option<&'a str> {
    r.get("identifier")?.as_array()?.iter().find(|i| i["system"] == system)?.get("value")?.as_str()
}
