//! Reads search URL parameters into a storage-neutral `SearchQuery`.

use helse_fhir_r4::{ResourceType, parse_date_range};
use helse_store::{Clause, Condition, IndexTable, Prefix, SortKey, StringMatch, TokenSystem, UriMatch};

use crate::normalize::normalize;
use crate::parameters::{ParamType, SearchParam, search_parameters};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SearchError {
    #[error("'{value}' is not a valid value for {param}: {why}")]
    InvalidValue { param: String, value: String, why: String },
    #[error("unknown search parameter '{0}'")]
    UnknownParameter(String),
    #[error("{0}")]
    Unsupported(String),
}

/// `_include` / `_revinclude`: `source_type:param[:target_type]`, or `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Include {
    pub source_type: String,
    /// `None` for `*` (every reference parameter).
    pub param: Option<String>,
    pub target_type: Option<String>,
    pub iterate: bool,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ParsedSearch {
    pub clauses: Vec<Clause>,
    pub sort: Vec<SortKey>,
    pub includes: Vec<Include>,
    pub revincludes: Vec<Include>,
    /// Parameters that were not understood and were ignored (lenient handling).
    pub ignored: Vec<(String, SearchError)>,
}

/// Result-shaping parameters the server handles; everything else selects.
pub const RESULT_PARAMETERS: &[&str] = &[
    "_count",
    "_after",
    "_before",
    "_offset",
    "_total",
    "_summary",
    "_elements",
    "_format",
    "_pretty",
    "_contained",
    "_containedType",
];

/// Parses every parameter. In strict mode the first problem is an error; otherwise unknown or
/// unsupported parameters are collected in `ignored` and invalid values are still errors.
pub fn parse_search(
    resource_type: &str,
    params: &[(String, String)],
    strict: bool,
) -> Result<ParsedSearch, SearchError> {
    let mut out = ParsedSearch::default();
    for (name, value) in params {
        if RESULT_PARAMETERS.contains(&name.as_str()) {
            continue;
        }
        let result = match name.as_str() {
            "_sort" => parse_sort(resource_type, value).map(|s| out.sort = s),
            "_include" | "_include:iterate" => {
                parse_include(value, name.ends_with(":iterate")).map(|i| out.includes.push(i))
            }
            "_revinclude" | "_revinclude:iterate" => {
                parse_include(value, name.ends_with(":iterate")).map(|i| out.revincludes.push(i))
            }
            _ => parse_clause(resource_type, name, value).map(|c| out.clauses.push(c)),
        };
        match result {
            Ok(()) => {}
            Err(e @ SearchError::InvalidValue { .. }) => return Err(e),
            Err(e) if strict => return Err(e),
            Err(e) => out.ignored.push((name.clone(), e)),
        }
    }
    Ok(out)
}

fn param<'a>(resource_type: &str, code: &str) -> Result<&'a SearchParam, SearchError> {
    search_parameters()
        .get(resource_type, code)
        .ok_or_else(|| SearchError::UnknownParameter(format!("{resource_type}:{code}")))
}

/// Splits on commas not escaped with a backslash, and unescapes `\,`, `\|`, `\$`, `\\`.
fn split_or(value: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    if next != ',' && next != '|' && next != '$' && next != '\\' {
                        parts.last_mut().expect("one").push('\\');
                    }
                    parts.last_mut().expect("one").push(next);
                }
            }
            ',' => parts.push(String::new()),
            c => parts.last_mut().expect("one").push(c),
        }
    }
    parts
}

/// One URL parameter (`name[:modifier][.chain]=v1,v2`) as a clause of OR-ed conditions.
fn parse_clause(resource_type: &str, name: &str, value: &str) -> Result<Clause, SearchError> {
    if let Some(rest) = name.strip_prefix("_has:") {
        return parse_has(resource_type, rest, value);
    }
    // Chain: `subject:Patient.name` or `subject.name`.
    if let Some((head, tail)) = name.split_once('.') {
        let (code, type_modifier) = head.split_once(':').map_or((head, None), |(c, m)| (c, Some(m)));
        let p = param(resource_type, code)?;
        if p.ty != ParamType::Reference {
            return Err(SearchError::Unsupported(format!(
                "'{code}' is not a reference and cannot be chained"
            )));
        }
        let targets: Vec<String> = match type_modifier {
            Some(t) => vec![t.to_owned()],
            None => p.targets.clone(),
        };
        let mut conditions = Vec::new();
        for target in targets {
            if search_parameters().get(&target, tail.split(['.', ':']).next().unwrap_or("")).is_none() {
                continue;
            }
            let inner = parse_clause(&target, tail, value)?;
            // A contained target is indexed on the container as `code:Type.param`.
            let contained: Option<Vec<Condition>> =
                inner.0.iter().map(|c| contained_condition(c, &format!("{code}:{target}."))).collect();
            conditions.push(Condition::Chain {
                param: code.to_owned(),
                target_type: target,
                inner: vec![inner],
            });
            conditions.extend(contained.into_iter().flatten());
        }
        if conditions.is_empty() {
            return Err(SearchError::UnknownParameter(format!("chain {name}")));
        }
        return Ok(Clause(conditions));
    }
    let (code, modifier) = name.split_once(':').map_or((name, None), |(c, m)| (c, Some(m)));
    let p = param(resource_type, code)?;
    // `_id` is the resource row's own id, never an index row (see `extract::index_entries`).
    if code == "_id" {
        let values = split_or(value);
        return match modifier {
            None => Ok(Clause(vec![Condition::Id(values)])),
            Some("not") => Ok(Clause(vec![Condition::Not(Box::new(Condition::Id(values)))])),
            // Every resource has an id.
            Some("missing") => match value {
                "true" => Ok(Clause(vec![Condition::Id(Vec::new())])),
                "false" => Ok(Clause(vec![Condition::Not(Box::new(Condition::Id(Vec::new())))])),
                _ => Err(invalid(code, value, "expected true or false")),
            },
            Some(other) => Err(SearchError::Unsupported(format!("_id:{other}"))),
        };
    }
    if modifier == Some("missing") {
        let table = p.ty.table().ok_or_else(|| SearchError::Unsupported(format!("{code}:missing")))?;
        let missing = match value {
            "true" => true,
            "false" => false,
            _ => return Err(invalid(code, value, "expected true or false")),
        };
        return Ok(Clause(vec![Condition::Missing { param: code.to_owned(), table, missing }]));
    }
    let values = split_or(value);
    // `_lastUpdated` reads the resource rows directly.
    if code == "_lastUpdated" && modifier.is_none() {
        let conditions = values
            .iter()
            .map(|v| {
                let (prefix, date) = Prefix::split(v);
                let r = parse_date_range(date).ok_or_else(|| invalid(code, v, "not a date"))?;
                Ok(Condition::LastUpdated { prefix, start: r.start, end: r.end })
            })
            .collect::<Result<_, _>>()?;
        return Ok(Clause(conditions));
    }
    if modifier == Some("not") && p.ty == ParamType::Token {
        // `:not=a,b`: no value of the parameter is a or b.
        let any = values.iter().map(|v| token_condition(code, v)).collect::<Result<Vec<_>, _>>()?;
        return Ok(Clause(vec![Condition::Not(Box::new(Condition::AnyOf(any)))]));
    }
    let conditions = values.iter().map(|v| condition(p, code, modifier, v)).collect::<Result<Vec<_>, _>>()?;
    Ok(Clause(conditions))
}

fn invalid(param: &str, value: &str, why: &str) -> SearchError {
    SearchError::InvalidValue { param: param.to_owned(), value: value.to_owned(), why: why.to_owned() }
}

fn token_condition(code: &str, v: &str) -> Result<Condition, SearchError> {
    let (system, code_value) = match v.split_once('|') {
        None => (TokenSystem::Any, Some(v.to_owned())),
        Some(("", c)) => (TokenSystem::Absent, Some(c.to_owned())),
        Some((s, "")) => (TokenSystem::Is(s.to_owned()), None),
        Some((s, c)) => (TokenSystem::Is(s.to_owned()), Some(c.to_owned())),
    };
    Ok(Condition::Token { param: code.to_owned(), system, code: code_value })
}

/// Precision-aware bounds of a number, as the specification's examples give them: `100`
/// covers `[99.5, 100.5)`, `100.00` covers `[99.995, 100.005)`, and `1e2` covers `[95, 105)`.
fn number_bounds(code: &str, v: &str) -> Result<(f64, f64), SearchError> {
    let n: f64 = v.parse().map_err(|_| invalid(code, v, "not a number"))?;
    let mut parts = v.split(['e', 'E']);
    let mantissa = parts.next().unwrap_or(v);
    let decimals = mantissa.split_once('.').map_or(0, |(_, f)| f.len() as i32);
    let half = match parts.next() {
        None => 0.5 * 10f64.powi(-decimals),
        Some(e) => {
            let exponent: i32 = e.parse().map_err(|_| invalid(code, v, "not a number"))?;
            0.5 * 10f64.powi(exponent - decimals - 1)
        }
    };
    Ok((n - half, n + half))
}

fn condition(p: &SearchParam, code: &str, modifier: Option<&str>, v: &str) -> Result<Condition, SearchError> {
    if p.ty == ParamType::Composite {
        return composite_condition(p, code, modifier, v);
    }
    typed_condition(p.ty, &p.targets, code, modifier, v)
}

/// `code$value`: each `$`-separated part is a condition on one component, all on the same
/// element.
fn composite_condition(
    p: &SearchParam,
    code: &str,
    modifier: Option<&str>,
    v: &str,
) -> Result<Condition, SearchError> {
    if modifier.is_some() {
        return Err(SearchError::Unsupported(format!("modifiers on the composite {code} are not supported")));
    }
    let parts: Vec<&str> = v.split('$').collect();
    if parts.len() != p.components.len() {
        return Err(invalid(code, v, &format!("expected {} parts separated by $", p.components.len())));
    }
    let parts = p
        .components
        .iter()
        .zip(parts)
        .enumerate()
        .map(|(k, (c, part))| typed_condition(c.ty, &[], &format!("{code}${k}"), None, part))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Condition::Composite { param: code.to_owned(), parts })
}

fn typed_condition(
    ty: ParamType,
    targets: &[String],
    code: &str,
    modifier: Option<&str>,
    v: &str,
) -> Result<Condition, SearchError> {
    let unsupported = || {
        SearchError::Unsupported(format!("modifier :{} on {code} is not supported", modifier.unwrap_or("")))
    };
    let param = code.to_owned();
    Ok(match ty {
        ParamType::Token => match modifier {
            None => token_condition(code, v)?,
            Some("text") => Condition::TokenText { param, text: normalize(v) },
            // `type-system|type-code|value`, indexed as system = type system, code = `type|value`.
            Some("of-type") => {
                let mut parts = v.splitn(3, '|');
                let (Some(system), Some(ty), Some(value)) = (parts.next(), parts.next(), parts.next()) else {
                    return Err(invalid(code, v, "expected system|type|value"));
                };
                Condition::Token {
                    param: format!("{code}:of-type"),
                    system: if system.is_empty() {
                        TokenSystem::Any
                    } else {
                        TokenSystem::Is(system.to_owned())
                    },
                    code: Some(format!("{ty}|{value}")),
                }
            }
            _ => return Err(unsupported()),
        },
        ParamType::String => match modifier {
            None => Condition::String { param, value: normalize(v), mode: StringMatch::Prefix },
            Some("contains") => Condition::String { param, value: normalize(v), mode: StringMatch::Contains },
            Some("exact") => Condition::String { param, value: v.to_owned(), mode: StringMatch::Exact },
            _ => return Err(unsupported()),
        },
        ParamType::Date => {
            if modifier.is_some() {
                return Err(unsupported());
            }
            let (prefix, date) = Prefix::split(v);
            let r = parse_date_range(date).ok_or_else(|| invalid(code, v, "not a date"))?;
            Condition::Date { param, prefix, start: r.start, end: r.end }
        }
        ParamType::Number => {
            if modifier.is_some() {
                return Err(unsupported());
            }
            let (prefix, n) = Prefix::split(v);
            let (low, high) = number_bounds(code, n)?;
            Condition::Number { param, prefix, low, high }
        }
        ParamType::Quantity => {
            if modifier.is_some() {
                return Err(unsupported());
            }
            let (prefix, rest) = Prefix::split(v);
            let mut parts = rest.splitn(3, '|');
            let n = parts.next().unwrap_or("");
            let (low, high) = number_bounds(code, n)?;
            let system = parts.next().filter(|s| !s.is_empty()).map(str::to_owned);
            let unit = parts.next().filter(|s| !s.is_empty()).map(str::to_owned);
            Condition::Quantity { param, prefix, low, high, system, code: unit }
        }
        ParamType::Uri => match modifier {
            None => Condition::Uri { param, value: v.to_owned(), mode: UriMatch::Exact },
            Some("below") => Condition::Uri { param, value: v.to_owned(), mode: UriMatch::Below },
            Some("above") => Condition::Uri { param, value: v.to_owned(), mode: UriMatch::Above },
            _ => return Err(unsupported()),
        },
        ParamType::Reference => reference_condition(targets, code, modifier, v)?,
        ParamType::Special if code == "near" && modifier.is_none() => near_condition(v)?,
        ParamType::Composite | ParamType::Special => {
            return Err(SearchError::Unsupported(format!("{code} ({ty:?} parameters) is not supported")));
        }
    })
}

/// Distance when `near` names none.
const NEAR_DEFAULT_KM: f64 = 10.0;

/// `near=latitude|longitude|distance|unit` (unit `km` by default, or `m`, `[mi_i]`): the
/// positions within a box of ±distance around the point. A box, like other servers use,
/// not a circle: its corners reach √2 × distance.
fn near_condition(v: &str) -> Result<Condition, SearchError> {
    let invalid =
        |why: &str| SearchError::InvalidValue { param: "near".into(), value: v.into(), why: why.into() };
    let mut parts = v.split('|');
    let mut number = |what: &str| -> Result<Option<f64>, SearchError> {
        match parts.next().filter(|s| !s.is_empty()) {
            None => Ok(None),
            Some(s) => {
                s.parse::<f64>().map(Some).map_err(|_| invalid(&format!("the {what} is not a number")))
            }
        }
    };
    let lat = number("latitude")?.ok_or_else(|| invalid("no latitude"))?;
    let long = number("longitude")?.ok_or_else(|| invalid("no longitude"))?;
    let distance = number("distance")?.unwrap_or(NEAR_DEFAULT_KM);
    let km = match parts.next().filter(|s| !s.is_empty()) {
        None | Some("km") => distance,
        Some("m") => distance / 1000.0,
        Some("[mi_i]") | Some("mi") => distance * 1.609_344,
        Some(u) => return Err(invalid(&format!("unit '{u}' is not km, m or [mi_i]"))),
    };
    if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&long) || km < 0.0 {
        return Err(invalid("not a position on Earth"));
    }
    // A degree of latitude is about 111.32 km; a degree of longitude shrinks with cos(latitude).
    let dlat = km / 111.32;
    let dlong = km / (111.32 * lat.to_radians().cos().max(1e-6));
    let range = |param: &str, centre: f64, d: f64| Condition::Number {
        param: param.into(),
        prefix: Prefix::Eq,
        low: centre - d,
        high: centre + d,
    };
    Ok(Condition::Composite {
        param: "near".into(),
        parts: vec![range("near$0", lat, dlat), range("near$1", long, dlong)],
    })
}

fn reference_condition(
    targets: &[String],
    code: &str,
    modifier: Option<&str>,
    v: &str,
) -> Result<Condition, SearchError> {
    let param = code.to_owned();
    if modifier == Some("identifier") {
        return token_condition(&format!("{code}:identifier"), v);
    }
    let type_modifier = match modifier {
        None => None,
        Some(t) if ResourceType::parse(t).is_ok() => Some(t.to_owned()),
        Some(m) => {
            return Err(SearchError::Unsupported(format!("modifier :{m} on {code} is not supported")));
        }
    };
    if v.contains("://") || v.starts_with("urn:") {
        // An absolute URL matches the same URL, or a local reference with its Type/id when
        // the URL is one of ours (base-relative matching is the server's job).
        return Ok(match helse_fhir_r4::reference_target(v) {
            Some((t, i)) if !v.starts_with("urn:") => Condition::Reference {
                param,
                target_type: Some(t.to_string()),
                target_id: Some(i.to_owned()),
                url: None,
            },
            _ => Condition::Reference { param, target_type: None, target_id: None, url: Some(v.to_owned()) },
        });
    }
    if let Some((t, i)) = v.split_once('/') {
        ResourceType::parse(t).map_err(|_| invalid(code, v, "unknown resource type"))?;
        return Ok(Condition::Reference {
            param,
            target_type: Some(t.to_owned()),
            target_id: Some(i.to_owned()),
            url: None,
        });
    }
    // A bare id: any target type, unless the modifier or a single target narrows it.
    let target_type = type_modifier.or_else(|| (targets.len() == 1).then(|| targets[0].clone()));
    Ok(Condition::Reference { param, target_type, target_id: Some(v.to_owned()), url: None })
}

/// The condition on a contained target's rows, which sit on the container under
/// `prefix` + the parameter's code. Only one level: a chain inside a contained resource is not.
fn contained_condition(c: &Condition, prefix: &str) -> Option<Condition> {
    let renamed = |param: &str| format!("{prefix}{param}");
    Some(match c.clone() {
        Condition::Token { param, system, code } => Condition::Token { param: renamed(&param), system, code },
        Condition::TokenText { param, text } => Condition::TokenText { param: renamed(&param), text },
        Condition::String { param, value, mode } => Condition::String { param: renamed(&param), value, mode },
        Condition::Date { param, prefix: p, start, end } => {
            Condition::Date { param: renamed(&param), prefix: p, start, end }
        }
        Condition::Number { param, prefix: p, low, high } => {
            Condition::Number { param: renamed(&param), prefix: p, low, high }
        }
        Condition::Quantity { param, prefix: p, low, high, system, code } => {
            Condition::Quantity { param: renamed(&param), prefix: p, low, high, system, code }
        }
        Condition::Uri { param, value, mode } => Condition::Uri { param: renamed(&param), value, mode },
        Condition::Reference { param, target_type, target_id, url } => {
            Condition::Reference { param: renamed(&param), target_type, target_id, url }
        }
        _ => return None,
    })
}

/// `_has:Observation:patient:code=x` (and nested `_has:…:_has:…`).
fn parse_has(resource_type: &str, rest: &str, value: &str) -> Result<Clause, SearchError> {
    let mut parts = rest.splitn(3, ':');
    let (Some(source), Some(reference), Some(inner_name)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(SearchError::Unsupported(format!("_has:{rest} needs Type:reference:parameter")));
    };
    ResourceType::parse(source).map_err(|_| SearchError::UnknownParameter(format!("_has type {source}")))?;
    let p = param(source, reference)?;
    if p.ty != ParamType::Reference {
        return Err(SearchError::Unsupported(format!("{source}:{reference} is not a reference")));
    }
    if !p.targets.is_empty() && !p.targets.iter().any(|t| t == resource_type) {
        return Err(SearchError::Unsupported(format!(
            "{source}:{reference} does not refer to {resource_type}"
        )));
    }
    let inner = parse_clause(source, inner_name, value)?;
    Ok(Clause(vec![Condition::Has {
        source_type: source.to_owned(),
        param: reference.to_owned(),
        inner: vec![inner],
    }]))
}

fn parse_sort(resource_type: &str, value: &str) -> Result<Vec<SortKey>, SearchError> {
    value
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|key| {
            let (descending, code) = key.strip_prefix('-').map_or((false, key), |c| (true, c));
            let p = param(resource_type, code)?;
            let table: IndexTable =
                p.ty.table().ok_or_else(|| SearchError::Unsupported(format!("cannot sort by {code}")))?;
            Ok(SortKey { param: code.to_owned(), table, descending })
        })
        .collect()
}

fn parse_include(value: &str, iterate: bool) -> Result<Include, SearchError> {
    if value == "*" {
        return Ok(Include { source_type: "*".into(), param: None, target_type: None, iterate });
    }
    let mut parts = value.split(':');
    let source_type = parts.next().unwrap_or("").to_owned();
    ResourceType::parse(&source_type)
        .map_err(|_| SearchError::Unsupported(format!("_include {value}: unknown type")))?;
    let param = parts.next().map(str::to_owned).filter(|p| p != "*");
    if let Some(p) = &param {
        let sp = search_parameters()
            .get(&source_type, p)
            .ok_or_else(|| SearchError::UnknownParameter(format!("{source_type}:{p}")))?;
        if sp.ty != ParamType::Reference {
            return Err(SearchError::Unsupported(format!("{source_type}:{p} is not a reference")));
        }
    }
    let target_type = parts.next().map(str::to_owned);
    Ok(Include { source_type, param, target_type, iterate })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(ty: &str, q: &str) -> Result<ParsedSearch, SearchError> {
        let params: Vec<(String, String)> = q
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        parse_search(ty, &params, true)
    }

    fn check(ty: &str, q: &str, expected: &str) {
        let got = match parse(ty, q) {
            Ok(p) => format!("{:?}", p.clauses),
            Err(e) => e.to_string(),
        };
        assert!(got.contains(expected), "{q}\n got: {got}\nwant: {expected}");
    }

    #[test]
    fn tokens() {
        check("Patient", "gender=female", r#"Token { param: "gender", system: Any, code: Some("female") }"#);
        check("Patient", "identifier=urn:oid:1|123", r#"system: Is("urn:oid:1"), code: Some("123")"#);
        check("Patient", "identifier=|123", "system: Absent");
        check("Patient", "identifier=urn:oid:1|", r#"system: Is("urn:oid:1"), code: None"#);
        check("Observation", "code:text=heart", r#"TokenText { param: "code", text: "heart" }"#);
        check("Patient", "gender:not=male", "Not(");
        check(
            "Patient",
            "identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|MR|446053",
            r#"Token { param: "identifier:of-type", system: Is("http://terminology.hl7.org/CodeSystem/v2-0203"), code: Some("MR|446053") }"#,
        );
        check(
            "Patient",
            "general-practitioner:identifier=urn:oid:2.16.578.1.12.4.1.4.4|9144889",
            r#"Token { param: "general-practitioner:identifier""#,
        );
    }

    #[test]
    fn strings_dates_numbers() {
        check("Patient", "family=Ødegård", r#"value: "odegard", mode: Prefix"#);
        check("Patient", "family:exact=Ødegård", r#"value: "Ødegård", mode: Exact"#);
        check("Patient", "birthdate=ge1980", "prefix: Ge");
        check("Patient", "birthdate=1980-13", "not a valid value for birthdate");
        check("RiskAssessment", "probability=0.8", "low: 0.75, high: 0.8500000000000001");
        check(
            "Observation",
            "value-quantity=lt100|http://unitsofmeasure.org|mg",
            r#"prefix: Lt, low: 99.5, high: 100.5, system: Some("http://unitsofmeasure.org"), code: Some("mg")"#,
        );
    }

    #[test]
    fn references_chains_and_has() {
        check("Observation", "subject=Patient/1", r#"target_type: Some("Patient"), target_id: Some("1")"#);
        check("Observation", "patient=1", r#"target_type: Some("Patient"), target_id: Some("1")"#);
        check("Observation", "subject:Patient=1", r#"target_type: Some("Patient")"#);
        check(
            "Observation",
            "subject:Patient.name=ola",
            r#"Chain { param: "subject", target_type: "Patient""#,
        );
        check(
            "Observation",
            "patient.organization.name=x",
            r#"Chain { param: "organization", target_type: "Organization""#,
        );
        check(
            "Patient",
            "_has:Observation:patient:code=1234",
            r#"Has { source_type: "Observation", param: "patient""#,
        );
        check("Observation", "subject.nonsense=1", "unknown search parameter");
    }

    #[test]
    fn or_missing_and_unknown() {
        check(
            "Patient",
            "gender=male,female",
            r#"code: Some("male") }, Token { param: "gender", system: Any, code: Some("female")"#,
        );
        check("Patient", "family=a\\,b", r#"value: "a,b""#);
        check(
            "Patient",
            "birthdate:missing=true",
            "Missing { param: \"birthdate\", table: Date, missing: true }",
        );
        check("Patient", "shoe-size=42", "unknown search parameter 'Patient:shoe-size'");
        let lenient = parse_search("Patient", &[("shoe-size".into(), "42".into())], false).unwrap();
        assert_eq!(lenient.ignored.len(), 1);
    }

    #[test]
    fn sort_and_includes() {
        let p = parse(
            "Observation",
            "_sort=-date,code&_include=Observation:subject&_revinclude=Provenance:target",
        )
        .unwrap();
        assert_eq!(p.sort.len(), 2);
        assert!(p.sort[0].descending);
        assert_eq!(p.includes[0].param.as_deref(), Some("subject"));
        assert_eq!(p.revincludes[0].source_type, "Provenance");
    }
}
