//! Turning a read item into a write: the resource must be valid R4 (the same validator the
//! API uses), get an id, and — for a store — its search index rows.

use helse_fhir_r4::{IssueSeverity, ResourceId, ResourceType, validate_resource};
use helse_search::index_entries;
use helse_store::IndexEntry;
use serde_json::Value;

use crate::source::Item;

#[derive(Debug, Clone)]
pub struct Ready {
    pub origin: String,
    pub resource_type: ResourceType,
    pub id: ResourceId,
    pub resource: Value,
    /// Empty when the destination indexes for itself (a server).
    pub index: Vec<IndexEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub origin: String,
    pub reason: String,
}

pub fn prepare(item: Item, with_index: bool) -> Result<Ready, Rejected> {
    let Item { origin, resource, id } = item;
    let reject = |reason: String| Rejected { origin: origin.clone(), reason };
    let mut resource = resource.map_err(reject)?;
    let ty = resource
        .get("resourceType")
        .and_then(Value::as_str)
        .ok_or_else(|| reject("no resourceType".into()))
        .and_then(|t| ResourceType::parse(t).map_err(|e| reject(e.to_string())))?;
    let id = match id.as_deref().or_else(|| resource.get("id").and_then(Value::as_str)) {
        Some(id) => id.to_owned(),
        None => content_id(&resource),
    };
    let id = ResourceId::parse(&id).map_err(|e| reject(format!("id '{id}': {e}")))?;
    resource["id"] = Value::from(id.as_str());
    let errors: Vec<String> = validate_resource(&resource, Some(ty.as_str()))
        .into_iter()
        .filter(|i| matches!(i.severity, IssueSeverity::Error | IssueSeverity::Fatal))
        .map(|i| match i.expression {
            Some(at) => format!("{at}: {}", i.diagnostics),
            None => i.diagnostics,
        })
        .collect();
    if !errors.is_empty() {
        return Err(reject(format!("invalid {ty}: {}", errors.join("; "))));
    }
    let index = if with_index { index_entries(&resource) } else { Vec::new() };
    Ok(Ready { origin, resource_type: ty, id, resource, index })
}

/// An id for a resource that arrived without one, derived from its content so that importing
/// the same file again finds the same id (and skips it).
fn content_id(resource: &Value) -> String {
    let text = resource.to_string();
    let fnv =
        |offset: u64| text.bytes().fold(offset, |h, b| (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01B3));
    format!("imp-{:016x}{:016x}", fnv(0xcbf2_9ce4_8422_2325), fnv(0x6c62_272e_07bb_0142))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn item(resource: Value) -> Item {
        Item { origin: "f:1".into(), resource: Ok(resource), id: None }
    }

    #[test]
    fn valid_resources_get_ids_and_index_rows() {
        let r =
            prepare(item(json!({"resourceType": "Patient", "id": "p1", "gender": "female"})), true).unwrap();
        assert_eq!(r.id.as_str(), "p1");
        assert!(r.index.iter().any(|e| e.param == "gender"));
        let a = prepare(item(json!({"resourceType": "Patient", "gender": "male"})), false).unwrap();
        let b = prepare(item(json!({"resourceType": "Patient", "gender": "male"})), false).unwrap();
        assert_eq!(a.id, b.id, "the same content gets the same id");
        assert!(a.index.is_empty());
    }

    #[test]
    fn invalid_input_is_rejected_with_a_reason() {
        let bad = prepare(item(json!({"resourceType": "Patient", "gender": 7})), true).unwrap_err();
        assert!(bad.reason.contains("Patient.gender"), "{}", bad.reason);
        assert_eq!(bad.origin, "f:1");
        assert!(prepare(item(json!({"resourceType": "Nonsense"})), true).is_err());
        assert!(prepare(item(json!({"resourceType": "Patient", "id": "a b"})), true).is_err());
    }
}
