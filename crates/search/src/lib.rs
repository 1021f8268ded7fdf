//! FHIR search over the store's index tables.
//!
//! - [`parameters`]: the official R4 SearchParameters (generated table), compiled once.
//! - [`extract`]: evaluates each parameter's FHIRPath on a resource at write time and turns
//!   the results into index rows.
//! - [`query`]: reads search URL parameters into a storage-neutral `SearchQuery`.
//!
//! This crate knows FHIR and the query model; it knows nothing of HTTP or SQL.

pub mod extract;
pub mod normalize;
pub mod parameters;
pub mod query;
pub mod terminology;

pub use extract::{compartment_owners, index_entries, param_values};
pub use parameters::{ParamType, SearchParam, search_parameters};
pub use query::{ParsedSearch, SearchError, parse_search};
