//! Loads the compact definitions table and answers "what may appear here" questions.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use regex::Regex;
use serde::Deserialize;

static TABLE: &str = include_str!("../data/r4-definitions.json");
static DEFINITIONS: LazyLock<Definitions> =
    LazyLock::new(|| Definitions::from_json(TABLE).expect("embedded R4 definitions are valid"));

/// The official R4 definitions, parsed on first use.
pub fn definitions() -> &'static Definitions {
    &DEFINITIONS
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    PrimitiveType,
    ComplexType,
    Resource,
}

#[derive(Debug, Deserialize)]
struct RawTable {
    #[serde(rename = "fhirVersion")]
    fhir_version: String,
    primitives: HashMap<String, RawPrimitive>,
    types: HashMap<String, RawType>,
    #[serde(rename = "valueSets")]
    value_sets: HashMap<String, RawValueSet>,
}

#[derive(Debug, Deserialize)]
struct RawPrimitive {
    json: JsonKind,
    regex: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RawType {
    kind: Kind,
    #[serde(default, rename = "abstract")]
    is_abstract: bool,
    base: Option<String>,
    elements: Vec<RawElement>,
}

#[derive(Debug, Deserialize)]
struct RawElement {
    path: String,
    min: u32,
    max: String,
    #[serde(default)]
    types: Vec<String>,
    #[serde(rename = "ref")]
    content_ref: Option<String>,
    targets: Option<Vec<String>>,
    binding: Option<String>,
    #[serde(default)]
    summary: bool,
}

#[derive(Debug, Deserialize)]
struct RawValueSet {
    systems: Option<HashMap<String, Vec<String>>>,
    unchecked: Option<String>,
}

/// How a primitive is written in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JsonKind {
    String,
    Boolean,
    Integer,
    Decimal,
}

#[derive(Debug)]
pub(crate) struct Primitive {
    pub json: JsonKind,
    pub regex: Option<Regex>,
}

/// One element of a type, e.g. `Patient.contact.name`.
#[derive(Debug)]
pub struct ElementDef {
    /// Path below the type, e.g. `contact.name` or `value[x]`.
    pub path: String,
    pub min: u32,
    /// `None` means unbounded (`*`).
    pub max: Option<u32>,
    pub types: Vec<String>,
    /// For `contentReference` elements: the path whose definition is reused.
    pub content_ref: Option<String>,
    pub targets: Option<Vec<String>>,
    pub binding: Option<String>,
    pub summary: bool,
}

impl ElementDef {
    pub fn is_choice(&self) -> bool {
        self.path.ends_with("[x]")
    }
    pub fn is_repeating(&self) -> bool {
        self.max != Some(1) && self.max != Some(0)
    }
    /// Last path segment without `[x]`.
    pub fn name(&self) -> &str {
        let last = self.path.rsplit('.').next().unwrap_or(&self.path);
        last.strip_suffix("[x]").unwrap_or(last)
    }
}

/// A JSON property name resolved against a node: which element and which concrete type.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Child {
    pub element: usize,
    pub type_index: usize,
}

#[derive(Debug)]
pub struct TypeDef {
    pub name: String,
    pub kind: Kind,
    pub is_abstract: bool,
    pub base: Option<String>,
    pub elements: Vec<ElementDef>,
    /// Node path ("" for the root, else a backbone element path) -> JSON key -> child.
    pub(crate) children: HashMap<String, HashMap<String, Child>>,
    /// Node path -> indexes of its elements (for required-element checks).
    pub(crate) node_elements: HashMap<String, Vec<usize>>,
}

impl TypeDef {
    /// Resolves a JSON property name at a node: the element and the concrete type (choice
    /// names such as `valueQuantity` resolve to `value[x]` with `Quantity`).
    pub fn child(&self, node: &str, key: &str) -> Option<(&ElementDef, &str)> {
        let child = self.children.get(node)?.get(key)?;
        let element = &self.elements[child.element];
        // contentReference elements carry no type of their own: they reuse a backbone node.
        let ty = element.types.get(child.type_index).map_or("BackboneElement", String::as_str);
        Some((element, ty))
    }

    /// Whether `path` is a backbone element whose children are defined inline in this type.
    pub fn is_node(&self, path: &str) -> bool {
        self.children.contains_key(path)
    }

    /// The elements directly under a node ("" for the type itself).
    pub fn elements_of(&self, node: &str) -> impl Iterator<Item = &ElementDef> {
        self.node_elements.get(node).into_iter().flatten().map(|&i| &self.elements[i])
    }

    /// Element by its path below the type.
    pub fn element(&self, path: &str) -> Option<&ElementDef> {
        self.elements.iter().find(|e| e.path == path)
    }
}

/// Codes allowed by a required binding, per code system; `None` when the value set draws on a
/// terminology that is not part of the core definitions (checked elsewhere or not at all).
#[derive(Debug)]
pub(crate) struct ValueSetCodes {
    pub systems: Option<HashMap<String, HashSet<String>>>,
}

#[derive(Debug)]
pub struct Definitions {
    pub fhir_version: String,
    types: HashMap<String, TypeDef>,
    pub(crate) primitives: HashMap<String, Primitive>,
    pub(crate) value_sets: HashMap<String, ValueSetCodes>,
    resource_types: Vec<&'static str>,
}

#[derive(Debug, thiserror::Error)]
pub enum DefinitionsError {
    #[error("definitions table is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("primitive {name} has an invalid regex: {source}")]
    Regex { name: String, source: regex::Error },
}

impl Definitions {
    pub fn from_json(text: &str) -> Result<Self, DefinitionsError> {
        let raw: RawTable = serde_json::from_str(text)?;
        let mut primitives = HashMap::new();
        for (name, p) in raw.primitives {
            let regex = match p.regex {
                Some(r) => Some(
                    Regex::new(&format!("^(?:{r})$"))
                        .map_err(|source| DefinitionsError::Regex { name: name.clone(), source })?,
                ),
                None => None,
            };
            primitives.insert(name, Primitive { json: p.json, regex });
        }
        let types: HashMap<String, TypeDef> = raw
            .types
            .into_iter()
            .map(|(name, t)| {
                let def = build_type(&name, t);
                (name, def)
            })
            .collect();
        let value_sets = raw
            .value_sets
            .into_iter()
            .map(|(url, vs)| {
                let systems = match (vs.systems, vs.unchecked) {
                    (Some(s), None) => {
                        Some(s.into_iter().map(|(sys, codes)| (sys, codes.into_iter().collect())).collect())
                    }
                    _ => None,
                };
                (url, ValueSetCodes { systems })
            })
            .collect();
        let mut resource_types: Vec<&'static str> = types
            .values()
            .filter(|t| t.kind == Kind::Resource && !t.is_abstract)
            .map(|t| &*Box::leak(t.name.clone().into_boxed_str()))
            .collect();
        resource_types.sort_unstable();
        Ok(Definitions { fhir_version: raw.fhir_version, types, primitives, value_sets, resource_types })
    }

    pub fn get(&self, name: &str) -> Option<&TypeDef> {
        self.types.get(name)
    }

    /// Every concrete resource type, sorted by name.
    pub fn resource_types(&self) -> &[&'static str] {
        &self.resource_types
    }

    pub(crate) fn primitive(&self, name: &str) -> Option<&Primitive> {
        self.primitives.get(name)
    }

    pub fn is_primitive(&self, name: &str) -> bool {
        self.primitives.contains_key(name)
    }
}

fn build_type(name: &str, raw: RawType) -> TypeDef {
    let elements: Vec<ElementDef> = raw
        .elements
        .into_iter()
        .map(|e| ElementDef {
            path: e.path,
            min: e.min,
            max: if e.max == "*" { None } else { e.max.parse().ok() },
            types: e.types,
            content_ref: e.content_ref,
            targets: e.targets,
            binding: e.binding,
            summary: e.summary,
        })
        .collect();
    let mut children: HashMap<String, HashMap<String, Child>> = HashMap::new();
    let mut node_elements: HashMap<String, Vec<usize>> = HashMap::new();
    children.insert(String::new(), HashMap::new());
    for (i, e) in elements.iter().enumerate() {
        let parent = e.path.rsplit_once('.').map(|(p, _)| p).unwrap_or("").to_owned();
        node_elements.entry(parent.clone()).or_default().push(i);
        let keys = children.entry(parent).or_default();
        if e.content_ref.is_some() {
            keys.insert(e.name().to_owned(), Child { element: i, type_index: 0 });
        } else if e.is_choice() {
            for (t, ty) in e.types.iter().enumerate() {
                let key = format!("{}{}{}", e.name(), ty[..1].to_uppercase(), &ty[1..]);
                keys.insert(key, Child { element: i, type_index: t });
            }
        } else {
            keys.insert(e.name().to_owned(), Child { element: i, type_index: 0 });
        }
    }
    // A backbone element is a node even when all its children are inherited (id, extension).
    for e in &elements {
        if e.types.iter().any(|t| t == "BackboneElement" || t == "Element") {
            children.entry(e.path.clone()).or_default();
        }
    }
    TypeDef {
        name: name.to_owned(),
        kind: raw.kind,
        is_abstract: raw.is_abstract,
        base: raw.base,
        elements,
        children,
        node_elements,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_every_r4_resource_type() {
        let defs = definitions();
        assert_eq!(defs.fhir_version, "4.0.1");
        assert_eq!(defs.resource_types().len(), 146);
        assert!(defs.resource_types().contains(&"Patient"));
        assert!(!defs.resource_types().contains(&"DomainResource"));
    }

    #[test]
    fn resolves_choice_and_backbone_children() {
        let obs = definitions().get("Observation").unwrap();
        let (e, ty) = obs.child("", "valueQuantity").unwrap();
        assert_eq!((e.path.as_str(), ty), ("value[x]", "Quantity"));
        let (e, ty) = obs.child("component", "code").unwrap();
        assert_eq!((e.path.as_str(), ty), ("component.code", "CodeableConcept"));
        assert!(obs.child("", "valueFoo").is_none());
        let q = definitions().get("Questionnaire").unwrap();
        let (e, _) = q.child("item", "item").unwrap();
        assert_eq!(e.content_ref.as_deref(), Some("item"));
    }
}
