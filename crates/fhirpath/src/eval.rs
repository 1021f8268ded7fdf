//! Evaluates a parsed expression over FHIR JSON. Every item carries its FHIR type when the
//! definitions know it, which is what `ofType`, `as`, `is` and choice elements need.

use std::borrow::Cow;

use helse_fhir_r4::{TypeDef, definitions};
use serde_json::Value;

use crate::parser::Expr;

/// The FHIR type of an item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemType {
    /// A named FHIR type: a resource, a complex type or a primitive (`Patient`, `Quantity`,
    /// `string`).
    Named(String),
    /// A backbone element: its children are defined inline in `owner` at `path`.
    Backbone { owner: String, path: String },
    /// A literal or something the definitions do not describe.
    Unknown,
}

/// One value in a FHIRPath collection.
#[derive(Debug, Clone, PartialEq)]
pub struct Item<'a> {
    pub value: Cow<'a, Value>,
    pub ty: ItemType,
}

impl<'a> Item<'a> {
    fn borrowed(value: &'a Value, ty: ItemType) -> Self {
        Item { value: Cow::Borrowed(value), ty }
    }
    fn owned(value: Value) -> Self {
        Item { value: Cow::Owned(value), ty: ItemType::Unknown }
    }
    /// The FHIR type name (`Quantity`, `code`, `Patient`), if known.
    pub fn type_name(&self) -> Option<&str> {
        match &self.ty {
            ItemType::Named(n) => Some(n),
            ItemType::Backbone { .. } => Some("BackboneElement"),
            ItemType::Unknown => None,
        }
    }
}

struct Context<'a> {
    resource: &'a Value,
}

pub fn evaluate<'a>(expr: &Expr, resource: &'a Value) -> Vec<Item<'a>> {
    let ty = resource
        .get("resourceType")
        .and_then(Value::as_str)
        .map_or(ItemType::Unknown, |t| ItemType::Named(t.to_owned()));
    let root = vec![Item::borrowed(resource, ty)];
    let ctx = Context { resource };
    eval(&ctx, expr, &root, &root)
}

pub fn evaluate_on<'a>(expr: &Expr, resource: &'a Value, focus: &Item<'a>) -> Vec<Item<'a>> {
    let ctx = Context { resource };
    let input = vec![focus.clone()];
    eval(&ctx, expr, &input, &input)
}

fn boolean<'a>(b: bool) -> Vec<Item<'a>> {
    vec![Item { value: Cow::Owned(Value::Bool(b)), ty: ItemType::Named("boolean".into()) }]
}

/// The single boolean a collection stands for: `None` when empty (FHIRPath's empty).
fn truth(items: &[Item<'_>]) -> Option<bool> {
    match items {
        [] => None,
        [one] => Some(one.value.as_bool().unwrap_or(true)),
        _ => Some(true),
    }
}

fn eval<'a>(ctx: &Context<'a>, expr: &Expr, focus: &[Item<'a>], this: &[Item<'a>]) -> Vec<Item<'a>> {
    match expr {
        Expr::This => this.to_vec(),
        Expr::Variable(v) => match v.as_str() {
            "resource" | "context" | "rootResource" => {
                let ty = ctx.resource.get("resourceType").and_then(Value::as_str).unwrap_or("");
                vec![Item::borrowed(ctx.resource, ItemType::Named(ty.to_owned()))]
            }
            "ucum" => vec![Item::owned(Value::String("http://unitsofmeasure.org".into()))],
            "sct" => vec![Item::owned(Value::String("http://snomed.info/sct".into()))],
            "loinc" => vec![Item::owned(Value::String("http://loinc.org".into()))],
            _ => Vec::new(),
        },
        Expr::String(s) => {
            vec![Item { value: Cow::Owned(Value::String(s.clone())), ty: ItemType::Named("string".into()) }]
        }
        Expr::Number(n) => match serde_json::from_str::<Value>(n) {
            Ok(v) => vec![Item::owned(v)],
            Err(_) => Vec::new(),
        },
        Expr::Boolean(b) => boolean(*b),
        Expr::Empty => Vec::new(),
        Expr::Member(inner, name) => {
            let base = eval(ctx, inner, focus, this);
            let mut out = Vec::new();
            for item in &base {
                // A leading type name (`Patient.name`) filters the context by type.
                if matches!(**inner, Expr::This) && is_type_name(name) {
                    if is_subtype(item.type_name(), name) {
                        out.push(item.clone());
                    }
                    continue;
                }
                member(item, name, &mut out);
            }
            out
        }
        Expr::Index(inner, index) => {
            let base = eval(ctx, inner, focus, this);
            let i = eval(ctx, index, this, this);
            match i.first().and_then(|v| v.value.as_u64()) {
                Some(i) => base.into_iter().nth(i as usize).into_iter().collect(),
                None => Vec::new(),
            }
        }
        Expr::TypeOp(op, inner, ty) => {
            let base = eval(ctx, inner, focus, this);
            type_op(op, base, ty)
        }
        Expr::Binary(op, l, r) => binary(ctx, op, l, r, focus, this),
        Expr::Call(inner, name, args) => {
            let base = eval(ctx, inner, focus, this);
            call(ctx, name, args, base)
        }
    }
}

fn is_type_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_uppercase())
        && (definitions().get(name).is_some() || matches!(name, "Resource" | "DomainResource"))
}

/// Whether a value of type `ty` is a `target` (walking base types: Age is a Quantity, every
/// resource is a Resource).
fn is_subtype(ty: Option<&str>, target: &str) -> bool {
    let mut current = ty.map(str::to_owned);
    let mut guard = 0;
    while let Some(t) = current {
        if t.eq_ignore_ascii_case(target) {
            return true;
        }
        guard += 1;
        if guard > 10 {
            break;
        }
        current = definitions().get(&t).and_then(|d| d.base.clone());
    }
    false
}

fn node_of(ty: &ItemType) -> Option<(&'static TypeDef, String)> {
    match ty {
        ItemType::Named(n) => definitions().get(n).map(|d| (d, String::new())),
        ItemType::Backbone { owner, path } => definitions().get(owner).map(|d| (d, path.clone())),
        ItemType::Unknown => None,
    }
}

fn push_values<'a>(value: &'a Value, ty: ItemType, out: &mut Vec<Item<'a>>) {
    match value {
        Value::Array(items) => {
            out.extend(items.iter().filter(|v| !v.is_null()).map(|v| Item::borrowed(v, ty.clone())))
        }
        Value::Null => {}
        v => out.push(Item::borrowed(v, ty)),
    }
}

/// Navigates to child `name` of `item`.
fn member<'a>(item: &Item<'a>, name: &str, out: &mut Vec<Item<'a>>) {
    let Cow::Borrowed(value) = item.value else {
        return;
    };
    let Some(obj) = value.as_object() else { return };
    let Some((def, node)) = node_of(&item.ty) else {
        if let Some(v) = obj.get(name) {
            push_values(v, ItemType::Unknown, out);
        }
        return;
    };
    if let Some((element, ty)) = def.child(&node, name).filter(|(e, _)| !e.is_choice())
        && let Some(v) = obj.get(name)
    {
        let child_ty = if let Some(target) = &element.content_ref {
            ItemType::Backbone { owner: def.name.clone(), path: target.clone() }
        } else if def.is_node(&element.path) && (ty == "BackboneElement" || ty == "Element") {
            ItemType::Backbone { owner: def.name.clone(), path: element.path.clone() }
        } else {
            ItemType::Named(ty.to_owned())
        };
        push_values(v, child_ty, out);
        return;
    }
    // A choice element: `value` finds `valueQuantity`, `valueString`, ….
    if let Some(element) = def.elements_of(&node).find(|e| e.is_choice() && e.name() == name) {
        for ty in &element.types {
            let key = format!("{name}{}{}", ty[..1].to_uppercase(), &ty[1..]);
            if let Some(v) = obj.get(&key) {
                push_values(v, ItemType::Named(ty.clone()), out);
            }
        }
    }
}

fn type_op<'a>(op: &str, base: Vec<Item<'a>>, ty: &str) -> Vec<Item<'a>> {
    match op {
        "as" => base.into_iter().filter(|i| is_subtype(i.type_name(), ty)).collect(),
        _ => match base.as_slice() {
            [one] => boolean(is_subtype(one.type_name(), ty)),
            _ => Vec::new(),
        },
    }
}

/// FHIRPath `=` on values: numbers by value (`1.0 = 1.00`), structures element by element.
fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            x.to_string().parse::<f64>().ok() == y.to_string().parse::<f64>().ok()
        }
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| equal(a, b)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| equal(v, w)))
        }
        _ => a == b,
    }
}

fn compare(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            x.to_string().parse::<f64>().ok()?.partial_cmp(&y.to_string().parse::<f64>().ok()?)
        }
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

fn binary<'a>(
    ctx: &Context<'a>,
    op: &str,
    l: &Expr,
    r: &Expr,
    focus: &[Item<'a>],
    this: &[Item<'a>],
) -> Vec<Item<'a>> {
    let left = eval(ctx, l, focus, this);
    let right = eval(ctx, r, focus, this);
    match op {
        // Union removes every duplicate of the merged collection, judged by `=`.
        "|" => {
            let mut out: Vec<Item<'a>> = Vec::with_capacity(left.len() + right.len());
            for item in left.into_iter().chain(right) {
                if !out.iter().any(|o| equal(&o.value, &item.value)) {
                    out.push(item);
                }
            }
            out
        }
        "=" | "!=" => {
            if left.is_empty() || right.is_empty() {
                return Vec::new();
            }
            let same =
                left.len() == right.len() && left.iter().zip(&right).all(|(a, b)| equal(&a.value, &b.value));
            boolean(same == (op == "="))
        }
        "<" | "<=" | ">" | ">=" => match (left.as_slice(), right.as_slice()) {
            ([a], [b]) => match compare(&a.value, &b.value) {
                Some(o) => boolean(match op {
                    "<" => o.is_lt(),
                    "<=" => o.is_le(),
                    ">" => o.is_gt(),
                    _ => o.is_ge(),
                }),
                None => Vec::new(),
            },
            _ => Vec::new(),
        },
        "and" => match (truth(&left), truth(&right)) {
            (Some(false), _) | (_, Some(false)) => boolean(false),
            (Some(true), Some(true)) => boolean(true),
            _ => Vec::new(),
        },
        "or" => match (truth(&left), truth(&right)) {
            (Some(true), _) | (_, Some(true)) => boolean(true),
            (Some(false), Some(false)) => boolean(false),
            _ => Vec::new(),
        },
        "xor" => match (truth(&left), truth(&right)) {
            (Some(a), Some(b)) => boolean(a != b),
            _ => Vec::new(),
        },
        "implies" => match (truth(&left), truth(&right)) {
            (Some(false), _) => boolean(true),
            (Some(true), r) => r.map(boolean).unwrap_or_default(),
            (None, Some(true)) => boolean(true),
            _ => Vec::new(),
        },
        // Arithmetic, string concatenation, `~`, `in` and `contains` are parsed but not yet
        // evaluated; the empty collection is FHIRPath's "unknown".
        _ => Vec::new(),
    }
}

fn call<'a>(ctx: &Context<'a>, name: &str, args: &[Expr], base: Vec<Item<'a>>) -> Vec<Item<'a>> {
    let arg_type = || match args.first() {
        Some(Expr::String(t)) => t.clone(),
        _ => String::new(),
    };
    match name {
        "where" => base
            .into_iter()
            .filter(|item| {
                let one = std::slice::from_ref(item);
                args.first().is_some_and(|a| truth(&eval(ctx, a, one, one)) == Some(true))
            })
            .collect(),
        "select" => base
            .iter()
            .flat_map(|item| {
                let one = std::slice::from_ref(item);
                args.first().map(|a| eval(ctx, a, one, one)).unwrap_or_default()
            })
            .collect(),
        "ofType" | "as" => type_op("as", base, &arg_type()),
        "is" => type_op("is", base, &arg_type()),
        "exists" => match args.first() {
            None => boolean(!base.is_empty()),
            Some(criteria) => boolean(base.iter().any(|item| {
                let one = std::slice::from_ref(item);
                truth(&eval(ctx, criteria, one, one)) == Some(true)
            })),
        },
        "empty" => boolean(base.is_empty()),
        "not" => truth(&base).map(|b| boolean(!b)).unwrap_or_default(),
        "first" => base.into_iter().take(1).collect(),
        "last" => base.into_iter().last().into_iter().collect(),
        "tail" => base.into_iter().skip(1).collect(),
        "count" => vec![Item::owned(Value::from(base.len()))],
        "hasValue" => boolean(matches!(base.as_slice(), [one] if !one.value.is_object())),
        "resolve" => base.iter().filter_map(|item| resolve(ctx, item)).collect(),
        "extension" => {
            let url = match args.first() {
                Some(Expr::String(u)) => u.clone(),
                _ => return Vec::new(),
            };
            let mut out = Vec::new();
            for item in &base {
                let mut exts = Vec::new();
                member(item, "extension", &mut exts);
                out.extend(
                    exts.into_iter()
                        .filter(|e| e.value.get("url").and_then(Value::as_str) == Some(url.as_str())),
                );
            }
            out
        }
        "iif" => {
            let one = base.as_slice();
            let cond = args.first().map(|c| eval(ctx, c, one, one)).unwrap_or_default();
            let pick = if truth(&cond) == Some(true) { args.get(1) } else { args.get(2) };
            pick.map(|e| eval(ctx, e, one, one)).unwrap_or_default()
        }
        _ => Vec::new(),
    }
}

/// `resolve()`: a contained reference resolves to the contained resource; any other
/// `Type/id` reference resolves to a placeholder of that type, which is all that
/// `resolve() is Patient` in search expressions needs.
fn resolve<'a>(ctx: &Context<'a>, item: &Item<'a>) -> Option<Item<'a>> {
    let reference = match &*item.value {
        Value::String(s) => s.as_str(),
        Value::Object(o) => o.get("reference")?.as_str()?,
        _ => return None,
    };
    if let Some(local) = reference.strip_prefix('#') {
        let contained = ctx.resource.get("contained")?.as_array()?;
        let found = contained.iter().find(|c| c.get("id").and_then(Value::as_str) == Some(local))?;
        let ty = found.get("resourceType")?.as_str()?.to_owned();
        return Some(Item::borrowed(found, ItemType::Named(ty)));
    }
    let (ty, _) = helse_fhir_r4::reference_target(reference)?;
    Some(Item { value: Cow::Owned(Value::Object(Default::default())), ty: ItemType::Named(ty.to_string()) })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::Expression;

    /// Evaluates `expr` on `resource`; `expected` is the JSON of each result item.
    fn check(resource: &serde_json::Value, expr: &str, expected: &[&str]) {
        let e = Expression::parse(expr).unwrap();
        let got: Vec<String> = e.evaluate(resource).iter().map(|i| i.value.to_string()).collect();
        assert_eq!(got, expected, "{expr}");
    }

    /// Built from text: the `json!` macro would turn `72.50` into a float.
    fn observation() -> serde_json::Value {
        serde_json::from_str(
            r##"{
            "resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "subject": {"reference": "Patient/p1"},
            "performer": [{"reference": "Practitioner/d1"}, {"reference": "#org"}],
            "contained": [{"resourceType": "Organization", "id": "org", "name": "Lab"}],
            "valueQuantity": {"value": 72.50, "unit": "/min"},
            "component": [{"code": {"text": "a"}, "valueString": "x"}, {"code": {"text": "b"}, "valueQuantity": {"value": 1}}],
            "extension": [{"url": "http://e/1", "valueBoolean": true}]
        }"##,
        )
        .unwrap()
    }

    #[test]
    fn navigation_and_choice_types() {
        let o = observation();
        check(&o, "Observation.status", &[r#""final""#]);
        check(&o, "Observation.code.coding.code", &[r#""8867-4""#]);
        check(&o, "Observation.value", &[r#"{"value":72.50,"unit":"/min"}"#]);
        check(&o, "(Observation.value as Quantity).value", &["72.50"]);
        check(&o, "Observation.value.as(String)", &[]);
        check(&o, "Observation.component.value.ofType(string)", &[r#""x""#]);
        check(&o, "Observation.component.value.as(Quantity).value", &["1"]);
        check(&o, "Patient.name", &[]);
        check(&o, "Resource.id", &[]);
        check(&o, "Observation.component[1].code.text", &[r#""b""#]);
    }

    #[test]
    fn where_resolve_and_extensions() {
        let o = observation();
        check(&o, "Observation.subject.where(resolve() is Patient)", &[r#"{"reference":"Patient/p1"}"#]);
        check(&o, "Observation.performer.where(resolve() is Patient)", &[]);
        check(&o, "Observation.performer.where(resolve() is Organization)", &[r##"{"reference":"#org"}"##]);
        check(&o, "Observation.component.where(code.text = 'b').value", &[r#"{"value":1}"#]);
        check(&o, "Observation.extension('http://e/1').value", &["true"]);
        check(&o, "Observation.subject | Observation.subject", &[r#"{"reference":"Patient/p1"}"#]);
        check(&o, "Observation.status.exists() and Observation.status != 'final'", &["false"]);
        check(&o, "Observation.component.count()", &["2"]);
    }

    #[test]
    fn deceased_pattern_from_the_spec() {
        let expr = "Patient.deceased.exists() and Patient.deceased != false";
        check(&json!({"resourceType": "Patient", "deceasedBoolean": true}), expr, &["true"]);
        check(&json!({"resourceType": "Patient", "deceasedBoolean": false}), expr, &["false"]);
        check(&json!({"resourceType": "Patient", "deceasedDateTime": "2020-01-01"}), expr, &["true"]);
        check(&json!({"resourceType": "Patient"}), expr, &["false"]);
    }

    #[test]
    fn backbone_and_content_reference() {
        let q = json!({"resourceType": "Questionnaire", "status": "draft", "item": [{"linkId": "1", "type": "group", "item": [{"linkId": "1.1", "type": "string"}]}]});
        check(&q, "Questionnaire.item.item.linkId", &[r#""1.1""#]);
    }
}
