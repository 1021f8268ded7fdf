//! The official R4 search parameters, compiled once from `data/r4-search-parameters.json`.

use std::collections::HashMap;
use std::sync::LazyLock;

use helse_fhirpath::Expression;
use helse_store::IndexTable;
use serde::Deserialize;

static TABLE: &str = include_str!("../data/r4-search-parameters.json");
static PARAMETERS: LazyLock<SearchParameters> = LazyLock::new(|| SearchParameters::load(TABLE));

pub fn search_parameters() -> &'static SearchParameters {
    &PARAMETERS
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamType {
    Number,
    Date,
    String,
    Token,
    Reference,
    Composite,
    Quantity,
    Uri,
    Special,
}

impl ParamType {
    pub fn table(self) -> Option<IndexTable> {
        Some(match self {
            ParamType::Number => IndexTable::Number,
            ParamType::Date => IndexTable::Date,
            ParamType::String => IndexTable::String,
            ParamType::Token => IndexTable::Token,
            ParamType::Reference => IndexTable::Reference,
            ParamType::Quantity => IndexTable::Quantity,
            ParamType::Uri => IndexTable::Uri,
            ParamType::Composite | ParamType::Special => return None,
        })
    }
}

#[derive(Debug, Deserialize)]
struct Raw {
    code: String,
    base: Vec<String>,
    #[serde(rename = "type")]
    ty: ParamType,
    expression: String,
    target: Option<Vec<String>>,
    components: Option<Vec<RawComponent>>,
}

#[derive(Debug, Deserialize)]
struct RawComponent {
    code: String,
    expression: String,
}

/// One part of a composite parameter: evaluated on each element the composite's expression
/// selects, and typed like the parameter it names.
#[derive(Debug)]
pub struct Component {
    pub code: String,
    pub ty: ParamType,
    pub expression: Expression,
}

#[derive(Debug)]
pub struct SearchParam {
    pub code: String,
    pub ty: ParamType,
    pub expression: Expression,
    pub targets: Vec<String>,
    /// For composite parameters, in order; empty otherwise.
    pub components: Vec<Component>,
}

#[derive(Debug)]
pub struct SearchParameters {
    /// Resource type → code → parameter. `Resource`/`DomainResource` parameters are copied
    /// into every type.
    by_type: HashMap<String, HashMap<String, std::sync::Arc<SearchParam>>>,
    /// Compartment type -> member resource type -> the parameters linking a member to it.
    compartments: HashMap<String, HashMap<String, Vec<String>>>,
    pub total: usize,
}

/// Types each component from the parameter of the same code on the composite's base type.
fn resolve_components(
    types: &HashMap<(String, String), ParamType>,
    bases: &[String],
    raw: &[RawComponent],
) -> Option<Vec<Component>> {
    raw.iter()
        .map(|c| {
            let ty = bases.iter().find_map(|b| types.get(&(b.clone(), c.code.clone())))?;
            Some(Component {
                code: c.code.clone(),
                ty: *ty,
                expression: Expression::parse(&c.expression).ok()?,
            })
        })
        .collect()
}

#[derive(Deserialize)]
struct File {
    parameters: Vec<Raw>,
    compartments: HashMap<String, HashMap<String, Vec<String>>>,
}

impl SearchParameters {
    fn load(text: &str) -> Self {
        let file: File = serde_json::from_str(text).expect("embedded search parameters are valid");
        let total = file.parameters.len();
        // (base type, code) -> type, for typing composite components.
        let file_types: HashMap<(String, String), ParamType> = file
            .parameters
            .iter()
            .flat_map(|p| p.base.iter().map(move |b| ((b.clone(), p.code.clone()), p.ty)))
            .collect();
        let mut by_type: HashMap<String, HashMap<String, std::sync::Arc<SearchParam>>> = HashMap::new();
        let mut common = Vec::new();
        for raw in file.parameters {
            let Ok(expression) = Expression::parse(&raw.expression) else {
                continue;
            };
            let components = match &raw.components {
                None => Vec::new(),
                Some(list) => match resolve_components(&file_types, &raw.base, list) {
                    Some(c) => c,
                    None => continue,
                },
            };
            let param = std::sync::Arc::new(SearchParam {
                code: raw.code,
                ty: raw.ty,
                expression,
                targets: raw.target.unwrap_or_default(),
                components,
            });
            for base in raw.base {
                if base == "Resource" || base == "DomainResource" {
                    common.push(param.clone());
                } else {
                    by_type.entry(base).or_default().insert(param.code.clone(), param.clone());
                }
            }
        }
        for ty in helse_fhir_r4::definitions().resource_types() {
            let entry = by_type.entry((*ty).to_owned()).or_default();
            for p in &common {
                entry.entry(p.code.clone()).or_insert_with(|| p.clone());
            }
        }
        SearchParameters { by_type, compartments: file.compartments, total }
    }

    pub fn get(&self, resource_type: &str, code: &str) -> Option<&SearchParam> {
        self.by_type.get(resource_type)?.get(code).map(|p| &**p)
    }

    /// The parameters that put a `resource_type` resource in a `compartment` (e.g. Patient):
    /// a resource is in `Patient/123`'s compartment when one of them refers to it.
    pub fn compartment_params(&self, compartment: &str, resource_type: &str) -> Option<&[String]> {
        self.compartments.get(compartment)?.get(resource_type).map(Vec::as_slice)
    }

    /// The resource types that can be in a compartment, sorted.
    pub fn compartment_members(&self, compartment: &str) -> Vec<&str> {
        let mut types: Vec<&str> = self
            .compartments
            .get(compartment)
            .into_iter()
            .flat_map(|m| m.keys().map(String::as_str))
            .collect();
        types.sort_unstable();
        types
    }

    pub fn is_compartment(&self, name: &str) -> bool {
        self.compartments.contains_key(name)
    }

    pub fn for_type(&self, resource_type: &str) -> impl Iterator<Item = &SearchParam> {
        self.by_type.get(resource_type).into_iter().flat_map(|m| m.values().map(|p| &**p))
    }
}
