//! Structural validation of a resource against the R4 StructureDefinitions: known elements,
//! cardinality, choice types, JSON shape and primitive formats, required bindings, reference
//! syntax and targets, `contained` and nested resources (Bundle entries, Parameters).

use serde_json::{Map, Value};

use crate::definitions::{Definitions, ElementDef, JsonKind, Kind, TypeDef, definitions};
use crate::outcome::{Issue, IssueType};

/// Bound on how deep resources may nest inside each other (contained, Bundle entries).
const MAX_RESOURCE_NESTING: usize = 8;

/// Validates a resource; returns every problem found (empty means valid).
/// `expected_type`, when given, is the type the URL names.
pub fn validate_resource(resource: &Value, expected_type: Option<&str>) -> Vec<Issue> {
    let mut v = Validator { defs: definitions(), issues: Vec::new() };
    match resource {
        Value::Object(map) => {
            let name = map.get("resourceType").and_then(Value::as_str).unwrap_or("");
            if let Some(expected) = expected_type
                && !name.is_empty()
                && name != expected
            {
                v.issues.push(
                    Issue::error(
                        IssueType::Invalid,
                        format!("resourceType '{name}' does not match the URL's type '{expected}'"),
                    )
                    .at("resourceType"),
                );
                return v.issues;
            }
            v.resource(map, "", 0);
        }
        _ => v.issues.push(Issue::error(IssueType::Structure, "a resource must be a JSON object")),
    }
    v.issues
}

struct Validator {
    defs: &'static Definitions,
    issues: Vec<Issue>,
}

impl Validator {
    fn err(&mut self, code: IssueType, expr: &str, msg: String) {
        self.issues.push(Issue::error(code, msg).at(expr));
    }

    fn resource(&mut self, map: &Map<String, Value>, expr: &str, nesting: usize) {
        if nesting > MAX_RESOURCE_NESTING {
            self.err(IssueType::TooCostly, expr, "resources are nested too deeply".into());
            return;
        }
        let Some(name) = map.get("resourceType").and_then(Value::as_str) else {
            self.err(IssueType::Required, expr, "missing 'resourceType'".into());
            return;
        };
        let Some(def) = self.defs.get(name).filter(|t| t.kind == Kind::Resource && !t.is_abstract) else {
            self.err(
                IssueType::NotSupported,
                &join(expr, "resourceType"),
                format!("'{name}' is not a known FHIR R4 resource type"),
            );
            return;
        };
        let expr = if expr.is_empty() { name.to_owned() } else { expr.to_owned() };
        self.node(def, "", map, &expr, nesting);
    }

    /// Validates the object `map` as the node `node_path` of type `def`.
    fn node(
        &mut self,
        def: &'static TypeDef,
        node_path: &str,
        map: &Map<String, Value>,
        expr: &str,
        nesting: usize,
    ) {
        for (key, value) in map {
            if node_path.is_empty() && def.kind == Kind::Resource && key == "resourceType" {
                continue;
            }
            let (name, is_primitive_extension) = match key.strip_prefix('_') {
                Some(rest) => (rest, true),
                None => (key.as_str(), false),
            };
            let child_expr = join(expr, name);
            let Some((element, ty)) = def.child(node_path, name) else {
                self.err(
                    IssueType::Structure,
                    &child_expr,
                    format!("unknown element '{key}' in {}", type_label(def, node_path)),
                );
                continue;
            };
            if is_primitive_extension {
                if !self.defs.is_primitive(ty) {
                    self.err(
                        IssueType::Structure,
                        &child_expr,
                        format!("'{key}' is only allowed on primitive elements"),
                    );
                    continue;
                }
                self.items(element, value, &child_expr, |v, item, e| match item {
                    Value::Object(m) => {
                        let elem = v.defs.get("Element").expect("Element is defined");
                        v.node(elem, "", m, e, nesting);
                    }
                    Value::Null => {}
                    _ => v.err(IssueType::Structure, e, format!("'{key}' must be an object")),
                });
                continue;
            }
            let (node_def, child_node) = match element.content_ref.as_deref() {
                Some(target) => (def, Some(target.to_owned())),
                None if def.is_node(&element.path) && (ty == "BackboneElement" || ty == "Element") => {
                    (def, Some(element.path.clone()))
                }
                None => (def, None),
            };
            let ty = ty.to_owned();
            self.items(element, value, &child_expr, |v, item, e| {
                if let Some(node) = &child_node {
                    match item {
                        Value::Object(m) => v.node(node_def, node, m, e, nesting),
                        _ => v.err(IssueType::Structure, e, "must be a JSON object".into()),
                    }
                } else {
                    v.value(element, &ty, item, e, nesting);
                }
            });
        }
        self.required(def, node_path, map, expr);
    }

    /// Checks array-ness against cardinality and calls `each` on every item.
    fn items(
        &mut self,
        element: &ElementDef,
        value: &Value,
        expr: &str,
        mut each: impl FnMut(&mut Self, &Value, &str),
    ) {
        match (element.is_repeating(), value) {
            (true, Value::Array(items)) => {
                if items.is_empty() {
                    self.err(IssueType::Structure, expr, "arrays must not be empty".into());
                }
                if let Some(max) = element.max
                    && items.len() > max as usize
                {
                    self.err(
                        IssueType::Structure,
                        expr,
                        format!("at most {max} values allowed, found {}", items.len()),
                    );
                }
                for (i, item) in items.iter().enumerate() {
                    each(self, item, &format!("{expr}[{i}]"));
                }
            }
            (true, _) => {
                self.err(IssueType::Structure, expr, "must be an array (the element repeats)".into())
            }
            (false, Value::Array(_)) => {
                self.err(IssueType::Structure, expr, "must be a single value, not an array".into())
            }
            (false, Value::Null) => self.err(IssueType::Structure, expr, "null is not a valid value".into()),
            (false, item) => each(self, item, expr),
        }
    }

    fn required(&mut self, def: &TypeDef, node_path: &str, map: &Map<String, Value>, expr: &str) {
        let mut missing = Vec::new();
        for element in def.elements_of(node_path).filter(|e| e.min > 0) {
            let name = element.name();
            let present = if element.is_choice() {
                element.types.iter().any(|t| {
                    let key = format!("{name}{}{}", t[..1].to_uppercase(), &t[1..]);
                    map.contains_key(&key) || map.contains_key(&format!("_{key}"))
                })
            } else {
                map.contains_key(name) || map.contains_key(&format!("_{name}"))
            };
            if !present {
                missing.push(name.to_owned());
            }
        }
        for name in missing {
            self.err(IssueType::Required, &join(expr, &name), format!("missing required element '{name}'"));
        }
    }

    fn value(&mut self, element: &ElementDef, ty: &str, item: &Value, expr: &str, nesting: usize) {
        if let Some(primitive) = self.defs.primitive(ty) {
            if item.is_null() {
                return; // a null aligns a repeating primitive with its `_element` extensions
            }
            self.primitive(ty, primitive.json, item, expr);
            if let (Some(vs), Some(code)) = (&element.binding, item.as_str()) {
                self.code_in_value_set(vs, None, code, expr);
            }
            return;
        }
        let Value::Object(map) = item else {
            self.err(IssueType::Structure, expr, format!("a {ty} must be a JSON object"));
            return;
        };
        match ty {
            "Resource" => self.resource(map, expr, nesting + 1),
            _ => {
                let Some(def) = self.defs.get(ty) else {
                    self.err(IssueType::NotSupported, expr, format!("type '{ty}' is not supported"));
                    return;
                };
                self.node(def, "", map, expr, nesting);
                match ty {
                    "Reference" => self.reference(element, map, expr),
                    "Coding" => self.coding(element, map, expr),
                    "CodeableConcept" => {
                        if let Some(Value::Array(codings)) = map.get("coding") {
                            for (i, c) in codings.iter().enumerate() {
                                if let Value::Object(c) = c {
                                    self.coding(element, c, &format!("{expr}.coding[{i}]"));
                                }
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    fn primitive(&mut self, ty: &str, json: JsonKind, item: &Value, expr: &str) {
        let text = match (json, item) {
            (JsonKind::Boolean, Value::Bool(_)) => return,
            (JsonKind::Integer, Value::Number(n)) => {
                let t = n.to_string();
                if t.parse::<i32>().is_err() {
                    self.err(IssueType::Value, expr, format!("'{t}' is not a valid {ty} (32-bit integer)"));
                    return;
                }
                t
            }
            (JsonKind::Decimal, Value::Number(n)) => n.to_string(),
            (JsonKind::String, Value::String(s)) => s.clone(),
            (_, other) => {
                let want = match json {
                    JsonKind::Boolean => "a JSON boolean",
                    JsonKind::Integer | JsonKind::Decimal => "a JSON number",
                    JsonKind::String => "a JSON string",
                };
                self.err(IssueType::Value, expr, format!("{ty} must be {want}, found {}", json_type(other)));
                return;
            }
        };
        let primitive = self.defs.primitive(ty).expect("checked by caller");
        if matches!(ty, "string" | "markdown") {
            // The spec's prose rule; its regex `[ \r\n\t\S]+` was written for JavaScript, where
            // `\s` matches no-break spaces that Rust's Unicode `\S` would reject.
            if text.is_empty() || text.chars().any(|c| c < ' ' && !matches!(c, '\t' | '\r' | '\n')) {
                self.err(
                    IssueType::Value,
                    expr,
                    format!("'{}' is not a valid {ty} (empty or control characters)", truncate(&text)),
                );
            }
            return;
        }
        if let Some(re) = &primitive.regex
            && !re.is_match(&text)
        {
            self.err(IssueType::Value, expr, format!("'{}' is not a valid {ty}", truncate(&text)));
            return;
        }
        if matches!(ty, "date" | "dateTime" | "instant") && crate::datetime::parse_date_range(&text).is_none()
        {
            self.err(IssueType::Value, expr, format!("'{}' is not a valid {ty}", truncate(&text)));
        }
        if ty == "xhtml" && !text.trim_start().starts_with("<div") {
            self.err(IssueType::Value, expr, "narrative xhtml must be a <div> element".into());
        }
    }

    fn coding(&mut self, element: &ElementDef, map: &Map<String, Value>, expr: &str) {
        let (Some(vs), Some(system), Some(code)) = (
            &element.binding,
            map.get("system").and_then(Value::as_str),
            map.get("code").and_then(Value::as_str),
        ) else {
            return;
        };
        self.code_in_value_set(vs, Some(system), code, &join(expr, "code"));
    }

    /// Required bindings: the code must be in the value set. A coding from a system the value
    /// set does not draw on is accepted when the set cannot be expanded offline.
    fn code_in_value_set(&mut self, url: &str, system: Option<&str>, code: &str, expr: &str) {
        let Some(systems) = self.defs.value_sets.get(url).and_then(|v| v.systems.as_ref()) else {
            return;
        };
        let ok = match system {
            Some(s) => match systems.get(s) {
                Some(codes) => codes.contains(code),
                None => {
                    self.err(
                        IssueType::CodeInvalid,
                        expr,
                        format!("system '{s}' is not allowed by the required binding to {url}"),
                    );
                    return;
                }
            },
            None => systems.values().any(|codes| codes.contains(code)),
        };
        if !ok {
            self.err(
                IssueType::CodeInvalid,
                expr,
                format!("'{code}' is not in the required value set {url}"),
            );
        }
    }

    fn reference(&mut self, element: &ElementDef, map: &Map<String, Value>, expr: &str) {
        let Some(reference) = map.get("reference").and_then(Value::as_str) else {
            return;
        };
        let expr = join(expr, "reference");
        if reference.starts_with('#')
            || reference.starts_with("urn:uuid:")
            || reference.starts_with("urn:oid:")
        {
            return;
        }
        let absolute = reference.contains("://");
        let Some((ty, _)) = crate::ids::reference_target(reference) else {
            if absolute {
                return; // an external URL need not follow the REST pattern
            }
            self.err(
                IssueType::Value,
                &expr,
                format!("'{}' is not a valid reference (expected Type/id)", truncate(reference)),
            );
            return;
        };
        let ty = ty.as_str();
        if let Some(targets) = &element.targets
            && !targets.iter().any(|t| t == ty)
        {
            self.err(
                IssueType::Value,
                &expr,
                format!("a reference to {ty} is not allowed here (allowed: {})", targets.join(", ")),
            );
        }
    }
}

fn join(expr: &str, name: &str) -> String {
    if expr.is_empty() { name.to_owned() } else { format!("{expr}.{name}") }
}

fn type_label(def: &TypeDef, node: &str) -> String {
    if node.is_empty() { def.name.clone() } else { format!("{}.{node}", def.name) }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn truncate(s: &str) -> String {
    if s.chars().count() > 60 {
        format!("{}…", s.chars().take(60).collect::<String>())
    } else {
        s.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Validates `json`; `expected` lists `(expression, code)` of every issue, in order.
    fn check(json: &str, expected: &[(&str, &str)]) {
        let value: Value = serde_json::from_str(json).unwrap();
        let issues = validate_resource(&value, None);
        let got: Vec<(String, String)> = issues
            .iter()
            .map(|i| (i.expression.clone().unwrap_or_default(), i.code.as_str().to_owned()))
            .collect();
        let want: Vec<(String, String)> =
            expected.iter().map(|(e, c)| (e.to_string(), c.to_string())).collect();
        assert_eq!(got, want, "{json}\n{issues:#?}");
    }

    #[test]
    fn valid_resources_pass() {
        check(
            r#"{"resourceType":"Patient","id":"a","active":true,"name":[{"family":"Nordmann","given":["Ola"]}],"birthDate":"1980-02-29","gender":"male"}"#,
            &[],
        );
        check(
            r#"{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueQuantity":{"value":1.50,"unit":"mg"}}"#,
            &[],
        );
        check(
            r#"{"resourceType":"Patient","_birthDate":{"extension":[{"url":"http://x","valueDateTime":"1980-01-01T10:00:00+01:00"}]}}"#,
            &[],
        );
        check(
            r#"{"resourceType":"Questionnaire","status":"draft","item":[{"linkId":"1","type":"group","item":[{"linkId":"1.1","type":"string"}]}]}"#,
            &[],
        );
    }

    #[test]
    fn structure_errors() {
        check(r#"{"resourceType":"Patient","foo":1}"#, &[("Patient.foo", "structure")]);
        check(r#"{"resourceType":"Patient","name":{"family":"x"}}"#, &[("Patient.name", "structure")]);
        check(r#"{"resourceType":"Patient","gender":["male"]}"#, &[("Patient.gender", "structure")]);
        check(r#"{"resourceType":"Patient","name":[]}"#, &[("Patient.name", "structure")]);
        check(
            r#"{"resourceType":"Observation","status":"final","code":{},"valueFoo":1}"#,
            &[("Observation.valueFoo", "structure")],
        );
        check(r#"{"resourceType":"Nope"}"#, &[("resourceType", "not-supported")]);
        check(r#"{"id":"x"}"#, &[("", "required")]);
    }

    #[test]
    fn cardinality_and_required() {
        check(r#"{"resourceType":"Observation","code":{"text":"x"}}"#, &[("Observation.status", "required")]);
        check(
            r#"{"resourceType":"Questionnaire","status":"draft","item":[{"linkId":"1"}]}"#,
            &[("Questionnaire.item[0].type", "required")],
        );
    }

    #[test]
    fn primitive_formats() {
        check(r#"{"resourceType":"Patient","birthDate":"1980-13-01"}"#, &[("Patient.birthDate", "value")]);
        check(r#"{"resourceType":"Patient","birthDate":"2023-02-30"}"#, &[("Patient.birthDate", "value")]);
        check(r#"{"resourceType":"Patient","active":"true"}"#, &[("Patient.active", "value")]);
        check(
            r#"{"resourceType":"Patient","multipleBirthInteger":1.5}"#,
            &[("Patient.multipleBirthInteger", "value")],
        );
        check(
            r#"{"resourceType":"Patient","multipleBirthInteger":3000000000}"#,
            &[("Patient.multipleBirthInteger", "value")],
        );
        check(r#"{"resourceType":"Patient","id":"bad id"}"#, &[("Patient.id", "value")]);
        check(r#"{"resourceType":"Patient","name":[{"family":""}]}"#, &[("Patient.name[0].family", "value")]);
        check(
            r#"{"resourceType":"Patient","name":[{"family":"a\u0001b"}]}"#,
            &[("Patient.name[0].family", "value")],
        );
        check(r#"{"resourceType":"Patient","name":[{"family":"Ås\u00a0Ødegård\n"}]}"#, &[]);
        check(
            r#"{"resourceType":"Observation","status":"final","code":{},"valueQuantity":{"value":"1.5"}}"#,
            &[("Observation.valueQuantity.value", "value")],
        );
        check(
            r#"{"resourceType":"Observation","status":"final","code":{},"issued":"2020-01-01"}"#,
            &[("Observation.issued", "value")],
        );
        check(
            r#"{"resourceType":"Binary","contentType":"text/plain","data":"not base64!"}"#,
            &[("Binary.data", "value")],
        );
    }

    #[test]
    fn required_bindings() {
        check(r#"{"resourceType":"Patient","gender":"boy"}"#, &[("Patient.gender", "code-invalid")]);
        check(
            r#"{"resourceType":"Observation","status":"done","code":{}}"#,
            &[("Observation.status", "code-invalid")],
        );
    }

    #[test]
    fn references() {
        check(
            r#"{"resourceType":"Observation","status":"final","code":{},"subject":{"reference":"Patient/123"}}"#,
            &[],
        );
        check(
            r#"{"resourceType":"Observation","status":"final","code":{},"subject":{"reference":"http://example.org/fhir/Patient/1/_history/2"}}"#,
            &[],
        );
        check(
            r#"{"resourceType":"Observation","status":"final","code":{},"subject":{"reference":"not a ref"}}"#,
            &[("Observation.subject.reference", "value")],
        );
        check(
            r#"{"resourceType":"Observation","status":"final","code":{},"subject":{"reference":"Medication/1"}}"#,
            &[("Observation.subject.reference", "value")],
        );
    }

    #[test]
    fn contained_and_bundle_entries_are_validated() {
        check(
            r#"{"resourceType":"Patient","contained":[{"resourceType":"Organization","id":"o","bogus":1}]}"#,
            &[("Patient.contained[0].bogus", "structure")],
        );
        check(
            r#"{"resourceType":"Bundle","type":"collection","entry":[{"resource":{"resourceType":"Patient","gender":"x"}}]}"#,
            &[("Bundle.entry[0].resource.gender", "code-invalid")],
        );
    }

    #[test]
    fn type_must_match_url() {
        let v: Value = serde_json::from_str(r#"{"resourceType":"Patient"}"#).unwrap();
        assert_eq!(validate_resource(&v, Some("Observation"))[0].code, IssueType::Invalid);
    }
}
