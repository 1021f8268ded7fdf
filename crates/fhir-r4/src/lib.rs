//! The FHIR R4 model as data. Nothing here knows about HTTP or storage.
//!
//! The official StructureDefinitions are compiled by `tools/fhir-definitions/generate.mjs` into
//! `data/r4-definitions.json`, embedded in the binary and loaded once ([`definitions()`]).
//! Validation, subsetting (`_summary`, `_elements`) and type lookups all read that table, so
//! there is no generated code per resource type.

mod datetime;
mod definitions;
mod ids;
mod meta;
mod outcome;
mod subset;
mod validation;

pub use datetime::{DateRange, Instant, parse_date_range};
pub use definitions::{Definitions, ElementDef, Kind, TypeDef, definitions};
pub use ids::{IdError, ResourceId, ResourceType, reference_target};
pub use meta::stamp_meta;
pub use outcome::{Issue, IssueSeverity, IssueType, operation_outcome};
pub use subset::{SummaryMode, subset_elements, subset_summary};
pub use validation::validate_resource;
