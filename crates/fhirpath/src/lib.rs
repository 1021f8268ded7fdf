//! FHIRPath over FHIR JSON. Parse once ([`Expression::parse`]), evaluate many times
//! ([`Expression::evaluate`]). Navigation is typed by the R4 definitions, so choice elements
//! (`Observation.value`), `ofType`, `as` and `is` behave as the specification says.
//!
//! Implemented: path navigation with indexers, `|`, `=`, `!=`, `<`, `<=`, `>`, `>=`, `and`,
//! `or`, `xor`, `implies`, `is`, `as`, string/number/boolean literals, `{}`, `$this`,
//! `%resource`, `%context`, and the functions `where`, `select`, `ofType`, `as`, `is`,
//! `exists`, `empty`, `not`, `first`, `last`, `tail`, `count`, `hasValue`, `resolve`,
//! `extension`, `iif`. Unknown functions are parse errors, never silently empty.

mod eval;
mod lexer;
mod parser;

pub use eval::{Item, ItemType};
pub use parser::{Expr, ParseError};

use serde_json::Value;

/// A parsed FHIRPath expression.
#[derive(Debug, Clone, PartialEq)]
pub struct Expression {
    root: Expr,
}

impl Expression {
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        Ok(Expression { root: parser::parse(text)? })
    }

    /// Evaluates against a resource (which is also `%resource` and `%context`).
    pub fn evaluate<'a>(&self, resource: &'a Value) -> Vec<Item<'a>> {
        eval::evaluate(&self.root, resource)
    }

    /// Evaluates with `focus` (an element of `resource`) as the input collection, as the
    /// components of a composite search parameter are.
    pub fn evaluate_on<'a>(&self, resource: &'a Value, focus: &Item<'a>) -> Vec<Item<'a>> {
        eval::evaluate_on(&self.root, resource, focus)
    }
}
