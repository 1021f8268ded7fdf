//! Newtypes for the two names every interaction carries: the resource type and the logical id.

use std::fmt;

use crate::definitions::definitions;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("'{0}' is not a known FHIR R4 resource type")]
    UnknownType(String),
    #[error("'{0}' is not a valid resource id (1-64 characters of A-Z, a-z, 0-9, '-', '.')")]
    InvalidId(String),
}

/// A concrete (non-abstract) R4 resource type such as `Patient`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceType(&'static str);

impl ResourceType {
    pub fn parse(name: &str) -> Result<Self, IdError> {
        let types = definitions().resource_types();
        types
            .binary_search(&name)
            .map(|i| ResourceType(types[i]))
            .map_err(|_| IdError::UnknownType(name.to_owned()))
    }
    pub fn as_str(&self) -> &'static str {
        self.0
    }
}

impl fmt::Display for ResourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// A logical resource id: `[A-Za-z0-9\-\.]{1,64}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceId(String);

impl ResourceId {
    pub fn parse(id: &str) -> Result<Self, IdError> {
        let valid = (1..=64).contains(&id.len())
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
        if valid { Ok(ResourceId(id.to_owned())) } else { Err(IdError::InvalidId(id.to_owned())) }
    }
    /// A fresh server-assigned id (a UUID, which satisfies the id grammar).
    pub fn new_random(uuid: impl fmt::Display) -> Self {
        ResourceId(uuid.to_string())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The `Type` and `id` a RESTful reference names: `Type/id`, `Type/id/_history/v`, or an
/// absolute URL ending so. `None` when the last segments are not a known type and an id.
pub fn reference_target(reference: &str) -> Option<(ResourceType, &str)> {
    let path = match reference.split_once("://") {
        Some((_, rest)) => rest.split_once('/').map_or("", |(_, p)| p),
        None => reference,
    };
    let segments: Vec<&str> = path.split('/').collect();
    let n = segments.len();
    let (ty, id) = if n >= 4 && segments[n - 2] == "_history" {
        (segments[n - 4], segments[n - 3])
    } else if n >= 2 {
        (segments[n - 2], segments[n - 1])
    } else {
        return None;
    };
    ResourceId::parse(id).ok()?;
    Some((ResourceType::parse(ty).ok()?, id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_id(input: &str, ok: bool) {
        assert_eq!(ResourceId::parse(input).is_ok(), ok, "{input}");
    }

    #[test]
    fn id_grammar() {
        check_id("example", true);
        check_id("a.b-C9", true);
        check_id(&"x".repeat(64), true);
        check_id(&"x".repeat(65), false);
        check_id("", false);
        check_id("has space", false);
        check_id("under_score", false);
        check_id("ø", false);
    }

    #[test]
    fn reference_targets() {
        let check = |r: &str| reference_target(r).map(|(t, i)| format!("{t}/{i}"));
        assert_eq!(check("Patient/1"), Some("Patient/1".into()));
        assert_eq!(check("Patient/1/_history/2"), Some("Patient/1".into()));
        assert_eq!(check("https://fhir.example.no/fhir/Patient/1"), Some("Patient/1".into()));
        assert_eq!(check("Pasient/1"), None);
        assert_eq!(check("Patient/"), None);
        assert_eq!(check("#contained"), None);
    }

    #[test]
    fn resource_types() {
        assert_eq!(ResourceType::parse("Patient").unwrap().as_str(), "Patient");
        assert!(ResourceType::parse("patient").is_err());
        assert!(ResourceType::parse("Resource").is_err());
        assert!(ResourceType::parse("HumanName").is_err());
    }
}
