//! What the terminology modifiers of token search mean, given the ValueSet or CodeSystem
//! they name: `:in`/`:not-in` (membership of a ValueSet) and `:below`/`:above` (a code's
//! descendants or ancestors in its CodeSystem's hierarchy). The caller finds the resources
//! (the server looks them up in the store); this module reads them.

use serde_json::Value;

/// One member of a value set: a code in a system, or every code of a system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub system: Option<String>,
    /// `None`: the whole system.
    pub code: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TerminologyError {
    #[error("the ValueSet has neither an expansion nor an enumerated compose")]
    NoMembers,
    #[error("the ValueSet's compose uses {0}, which this server cannot evaluate; give it an expansion")]
    Unsupported(&'static str),
}

/// The members of a ValueSet: its `expansion.contains` (nested), or else its
/// `compose.include` (listed concepts, or whole systems) minus listed `compose.exclude`s.
pub fn value_set_members(vs: &Value) -> Result<Vec<Member>, TerminologyError> {
    if let Some(contains) = vs["expansion"]["contains"].as_array() {
        let mut out = Vec::new();
        fn walk(items: &[Value], out: &mut Vec<Member>) {
            for c in items {
                if let Some(code) = c["code"].as_str() {
                    out.push(Member {
                        system: c["system"].as_str().map(str::to_owned),
                        code: Some(code.to_owned()),
                    });
                }
                if let Some(nested) = c["contains"].as_array() {
                    walk(nested, out);
                }
            }
        }
        walk(contains, &mut out);
        return Ok(out);
    }
    let includes = vs["compose"]["include"].as_array().ok_or(TerminologyError::NoMembers)?;
    let listed = |part: &Value| -> Result<Vec<Member>, TerminologyError> {
        if part.get("filter").is_some() {
            return Err(TerminologyError::Unsupported("filters"));
        }
        if part.get("valueSet").is_some() {
            return Err(TerminologyError::Unsupported("other value sets"));
        }
        let system = part["system"].as_str().map(str::to_owned);
        Ok(match part["concept"].as_array() {
            Some(concepts) => concepts
                .iter()
                .filter_map(|c| c["code"].as_str())
                .map(|code| Member { system: system.clone(), code: Some(code.to_owned()) })
                .collect(),
            None => vec![Member { system, code: None }],
        })
    };
    let mut members = Vec::new();
    for include in includes {
        members.extend(listed(include)?);
    }
    for exclude in vs["compose"]["exclude"].as_array().into_iter().flatten() {
        let excluded = listed(exclude)?;
        if excluded.iter().any(|m| m.code.is_none()) {
            return Err(TerminologyError::Unsupported("excluding whole systems"));
        }
        members.retain(|m| !excluded.contains(m));
    }
    Ok(members)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// The code and everything it subsumes (`:below`).
    Below,
    /// The code and everything that subsumes it (`:above`).
    Above,
}

/// `code` and its descendants or ancestors in a CodeSystem's concept hierarchy (nested
/// `concept`s, or `parent`/`child` properties); empty when the code is not in it.
pub fn related_codes(cs: &Value, code: &str, direction: Direction) -> Vec<String> {
    // Edges (parent, child) from nesting and from properties.
    let mut edges: Vec<(String, String)> = Vec::new();
    let mut known: Vec<String> = Vec::new();
    fn walk(
        concepts: &[Value],
        parent: Option<&str>,
        edges: &mut Vec<(String, String)>,
        known: &mut Vec<String>,
    ) {
        for c in concepts {
            let Some(code) = c["code"].as_str() else { continue };
            known.push(code.to_owned());
            if let Some(p) = parent {
                edges.push((p.to_owned(), code.to_owned()));
            }
            for prop in c["property"].as_array().into_iter().flatten() {
                match (prop["code"].as_str(), prop["valueCode"].as_str()) {
                    (Some("parent"), Some(p)) => edges.push((p.to_owned(), code.to_owned())),
                    (Some("child"), Some(ch)) => edges.push((code.to_owned(), ch.to_owned())),
                    _ => {}
                }
            }
            if let Some(nested) = c["concept"].as_array() {
                walk(nested, Some(code), edges, known);
            }
        }
    }
    walk(cs["concept"].as_array().map_or(&[][..], |v| v.as_slice()), None, &mut edges, &mut known);
    if !known.iter().any(|k| k == code) {
        return Vec::new();
    }
    let mut out = vec![code.to_owned()];
    let mut i = 0;
    while i < out.len() {
        let current = out[i].clone();
        for (p, c) in &edges {
            let next = match direction {
                Direction::Below if *p == current => c,
                Direction::Above if *c == current => p,
                _ => continue,
            };
            if !out.contains(next) {
                out.push(next.clone());
            }
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn members_from_expansion_or_compose() {
        let expanded = json!({"expansion": {"contains": [
            {"system": "http://loinc.org", "code": "8867-4"},
            {"abstract": true, "contains": [{"system": "http://loinc.org", "code": "9279-1"}]}
        ]}});
        let codes: Vec<_> =
            value_set_members(&expanded).unwrap().into_iter().filter_map(|m| m.code).collect();
        assert_eq!(codes, ["8867-4", "9279-1"]);
        let composed = json!({"compose": {
            "include": [{"system": "s", "concept": [{"code": "a"}, {"code": "b"}]}, {"system": "whole"}],
            "exclude": [{"system": "s", "concept": [{"code": "b"}]}]
        }});
        assert_eq!(
            value_set_members(&composed).unwrap(),
            [
                Member { system: Some("s".into()), code: Some("a".into()) },
                Member { system: Some("whole".into()), code: None }
            ]
        );
        let filtered = json!({"compose": {"include": [{"system": "s", "filter": [{"property": "concept", "op": "is-a", "value": "x"}]}]}});
        assert_eq!(value_set_members(&filtered), Err(TerminologyError::Unsupported("filters")));
        assert_eq!(value_set_members(&json!({})), Err(TerminologyError::NoMembers));
    }

    #[test]
    fn hierarchy_both_ways() {
        let cs = json!({"concept": [
            {"code": "animal", "concept": [
                {"code": "mammal", "concept": [{"code": "dog"}, {"code": "cat"}]},
                {"code": "bird"}
            ]},
            {"code": "puppy", "property": [{"code": "parent", "valueCode": "dog"}]}
        ]});
        let mut below = related_codes(&cs, "mammal", Direction::Below);
        below.sort();
        assert_eq!(below, ["cat", "dog", "mammal", "puppy"]);
        assert_eq!(related_codes(&cs, "puppy", Direction::Above), ["puppy", "dog", "mammal", "animal"]);
        assert!(related_codes(&cs, "fish", Direction::Below).is_empty());
    }
}
