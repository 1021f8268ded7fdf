//! The server owns `id`, `meta.versionId` and `meta.lastUpdated`.

use serde_json::{Map, Value};

use crate::datetime::Instant;

/// Sets the server-assigned fields and puts `resourceType`, `id`, `meta` first so that stored
/// bodies read naturally. Other elements keep the order the client sent.
pub fn stamp_meta(resource: &mut Value, id: &str, version_id: u64, last_updated: Instant) {
    let Value::Object(map) = resource else { return };
    let mut meta = match map.shift_remove("meta") {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    meta.insert("versionId".into(), Value::String(version_id.to_string()));
    meta.insert("lastUpdated".into(), Value::String(last_updated.to_string()));
    let resource_type = map.shift_remove("resourceType");
    map.shift_remove("id");
    let rest = std::mem::take(map);
    if let Some(rt) = resource_type {
        map.insert("resourceType".into(), rt);
    }
    map.insert("id".into(), Value::String(id.to_owned()));
    map.insert("meta".into(), Value::Object(meta));
    map.extend(rest);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_and_orders() {
        let mut r: Value = serde_json::from_str(
            r#"{"active":true,"meta":{"versionId":"9","tag":[{"code":"x"}]},"resourceType":"Patient","id":"old"}"#,
        )
        .unwrap();
        stamp_meta(&mut r, "p1", 3, Instant::from_millis(0));
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"resourceType":"Patient","id":"p1","meta":{"versionId":"3","tag":[{"code":"x"}],"lastUpdated":"1970-01-01T00:00:00.000Z"},"active":true}"#
        );
    }
}
