//! The patient's own rules about their record, kept as FHIR `Consent` resources:
//! **blocks** (sperre: health personnel may not see all or part of the record) and
//! **proxies** (someone else may see it). This module reads them and decides what a block
//! covers; `reach` applies them to requests.
//!
//! A block is a `Consent` with category `consent-kind#block` and `provision.type = deny`.
//! Its provision narrows what it covers — all of them must hold (FHIR's provision
//! semantics):
//! - `actor`: whom it blocks (a Practitioner, PractitionerRole or Organization); none means
//!   all health personnel;
//! - `class`: resource types (`http://hl7.org/fhir/resource-types`);
//! - `code`: codes matched against a resource's `code` and `category`;
//! - `data`: particular resources.
//!
//! A block never hides the Patient resource itself: health personnel must be able to tell
//! who the patient is, and that a block exists.
//!
//! A proxy is a `Consent` with category `consent-kind#proxy`, `provision.type = permit`
//! and an actor naming the proxy's own Patient resource. Parents are proxies for their
//! children under 16 without one (see `reach::proxied_patients`).

use helse_fhir_r4::ResourceType;
use helse_search::param_values;
use helse_store::{Clause, Condition, IndexValue, TokenSystem};
use serde_json::Value;

/// The code system of the two kinds of consent this server acts on.
pub const CONSENT_KIND_SYSTEM: &str = "https://fhir.helse.example/CodeSystem/consent-kind";
pub const BLOCK: &str = "block";
pub const PROXY: &str = "proxy";

/// What one block covers.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Block {
    /// `Type/id` references of whom it blocks; empty: everyone.
    pub actors: Vec<String>,
    /// Resource types; empty: every type.
    pub types: Vec<String>,
    /// `(system, code)` pairs; empty: every code.
    pub codes: Vec<(Option<String>, String)>,
    /// `Type/id` of resources; empty: every resource.
    pub resources: Vec<String>,
}

fn strings<'a>(v: &'a Value, path: &[&str]) -> Vec<&'a Value> {
    let mut items = vec![v];
    for key in path {
        items = items
            .into_iter()
            .filter_map(|i| i.get(key))
            .flat_map(|i| match i {
                Value::Array(a) => a.iter().collect::<Vec<_>>(),
                other => vec![other],
            })
            .collect();
    }
    items
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// Whether a Consent is active and of a kind (`BLOCK` or `PROXY`).
pub fn is_kind(consent: &Value, kind: &str) -> bool {
    consent.get("status").and_then(Value::as_str) == Some("active")
        && strings(consent, &["category", "coding"]).iter().any(|c| {
            c.get("system").and_then(Value::as_str) == Some(CONSENT_KIND_SYSTEM)
                && c.get("code").and_then(Value::as_str) == Some(kind)
        })
}

impl Block {
    /// The block a Consent states, if it is an active block.
    pub fn from_consent(consent: &Value) -> Option<Block> {
        if !is_kind(consent, BLOCK)
            || consent.pointer("/provision/type").and_then(Value::as_str) != Some("deny")
        {
            return None;
        }
        let provision = &consent["provision"];
        Some(Block {
            actors: strings(provision, &["actor", "reference"])
                .iter()
                .filter_map(|r| text(r, "reference"))
                .collect(),
            types: strings(provision, &["class"]).iter().filter_map(|c| text(c, "code")).collect(),
            codes: strings(provision, &["code", "coding"])
                .iter()
                .filter_map(|c| Some((text(c, "system"), text(c, "code")?)))
                .collect(),
            resources: strings(provision, &["data", "reference"])
                .iter()
                .filter_map(|r| text(r, "reference"))
                .collect(),
        })
    }

    /// Whether it blocks someone who is any of `who` (a practitioner, their roles and their
    /// organisations, as `Type/id`).
    pub fn applies_to(&self, who: &[String]) -> bool {
        self.actors.is_empty() || self.actors.iter().any(|a| who.contains(a))
    }

    /// Whether it covers this resource.
    pub fn covers(&self, resource: &Value) -> bool {
        let ty = resource.get("resourceType").and_then(Value::as_str).unwrap_or_default();
        if ty == "Patient" || (!self.types.is_empty() && !self.types.iter().any(|t| t == ty)) {
            return false;
        }
        if !self.resources.is_empty() {
            let id = resource.get("id").and_then(Value::as_str).unwrap_or_default();
            if !self.resources.contains(&format!("{ty}/{id}")) {
                return false;
            }
        }
        self.codes.is_empty()
            || ["code", "category"].iter().flat_map(|p| param_values(resource, p)).any(|v| match v {
                IndexValue::Token { system, code, .. } => {
                    self.codes.iter().any(|(s, c)| *c == code && (s.is_none() || *s == system))
                }
                _ => false,
            })
    }

    /// A search clause that leaves out of a `ty` search what this block covers, or `None`
    /// when it covers no `ty` resource. A block on a whole type makes the clause match
    /// nothing.
    pub fn exclusion(&self, ty: ResourceType) -> Option<Clause> {
        let ty = ty.as_str();
        if ty == "Patient" || (!self.types.is_empty() && !self.types.iter().any(|t| t == ty)) {
            return None;
        }
        // The block covers a resource when all its parts match; the clause says one fails.
        let mut fails = Vec::new();
        if !self.resources.is_empty() {
            let ids: Vec<String> = self
                .resources
                .iter()
                .filter_map(|r| r.strip_prefix(ty)?.strip_prefix('/').map(str::to_owned))
                .collect();
            if ids.is_empty() {
                return None;
            }
            fails.push(Condition::Not(Box::new(Condition::Id(ids))));
        }
        if !self.codes.is_empty() {
            let params = helse_search::search_parameters();
            let matches: Vec<Condition> = ["code", "category"]
                .into_iter()
                .filter(|p| params.get(ty, p).is_some_and(|sp| sp.ty == helse_search::ParamType::Token))
                .flat_map(|p| {
                    self.codes.iter().map(move |(system, code)| Condition::Token {
                        param: p.to_owned(),
                        system: system.clone().map_or(TokenSystem::Any, TokenSystem::Is),
                        code: Some(code.clone()),
                    })
                })
                .collect();
            if matches.is_empty() {
                return None;
            }
            fails.push(Condition::Not(Box::new(Condition::AnyOf(matches))));
        }
        if fails.is_empty() {
            // The whole type: no id is empty, so this matches nothing.
            fails.push(Condition::Id(Vec::new()));
        }
        Some(Clause(fails))
    }
}

/// The patient a proxy Consent lets `proxy` (a Patient id) act for, if it does.
pub fn proxy_for(consent: &Value, proxy: &str) -> Option<String> {
    if !is_kind(consent, PROXY)
        || consent.pointer("/provision/type").and_then(Value::as_str) != Some("permit")
    {
        return None;
    }
    let names_proxy = strings(&consent["provision"], &["actor", "reference"])
        .iter()
        .any(|r| text(r, "reference").as_deref() == Some(&format!("Patient/{proxy}")));
    let patient = consent.pointer("/patient/reference").and_then(Value::as_str)?.strip_prefix("Patient/")?;
    names_proxy.then(|| patient.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn consent(kind: &str, provision: Value) -> Value {
        json!({"resourceType": "Consent", "status": "active",
            "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
            "category": [{"coding": [{"system": CONSENT_KIND_SYSTEM, "code": kind}]}],
            "patient": {"reference": "Patient/p1"},
            "policyRule": {"text": "the patient's own decision"},
            "provision": provision})
    }

    #[test]
    fn consents_are_valid_r4() {
        let c = consent(
            BLOCK,
            json!({"type": "deny", "class": [{"system": "http://hl7.org/fhir/resource-types", "code": "Condition"}]}),
        );
        assert!(helse_fhir_r4::validate_resource(&c, Some("Consent")).is_empty());
    }

    #[test]
    fn blocks_cover_what_all_their_parts_name() {
        let psych = json!({"resourceType": "Condition", "id": "c1",
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "35489007"}]},
            "subject": {"reference": "Patient/p1"}});
        let flu = json!({"resourceType": "Condition", "id": "c2",
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "6142004"}]},
            "subject": {"reference": "Patient/p1"}});
        let obs = json!({"resourceType": "Observation", "id": "o1", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "subject": {"reference": "Patient/p1"}});
        let patient = json!({"resourceType": "Patient", "id": "p1"});
        let types = |ts: &[&str]| -> Vec<Value> {
            ts.iter().map(|t| json!({"system": "http://hl7.org/fhir/resource-types", "code": t})).collect()
        };
        // (provision, covers psych, flu, obs)
        let cases = [
            (json!({"type": "deny"}), [true, true, true]),
            (json!({"type": "deny", "class": types(&["Condition"])}), [true, true, false]),
            (
                json!({"type": "deny", "code": [{"coding": [{"system": "http://snomed.info/sct", "code": "35489007"}]}]}),
                [true, false, false],
            ),
            (
                json!({"type": "deny", "class": types(&["Observation"]),
                       "code": [{"coding": [{"system": "http://snomed.info/sct", "code": "35489007"}]}]}),
                [false, false, false],
            ),
            (
                json!({"type": "deny", "data": [{"meaning": "instance", "reference": {"reference": "Condition/c2"}}]}),
                [false, true, false],
            ),
        ];
        for (provision, expected) in cases {
            let block = Block::from_consent(&consent(BLOCK, provision.clone())).unwrap();
            let got = [block.covers(&psych), block.covers(&flu), block.covers(&obs)];
            assert_eq!(got, expected, "{provision}");
            assert!(!block.covers(&patient), "the Patient resource is never blocked");
        }
        // Not a block: a permit, a proxy, an inactive one.
        assert!(Block::from_consent(&consent(BLOCK, json!({"type": "permit"}))).is_none());
        assert!(Block::from_consent(&consent(PROXY, json!({"type": "deny"}))).is_none());
        let mut inactive = consent(BLOCK, json!({"type": "deny"}));
        inactive["status"] = json!("inactive");
        assert!(Block::from_consent(&inactive).is_none());
    }

    #[test]
    fn blocks_name_whom_they_block() {
        let block = Block::from_consent(&consent(
            BLOCK,
            json!({"type": "deny", "actor": [{"role": {"text": "blocked"}, "reference": {"reference": "Practitioner/d2"}}]}),
        ))
        .unwrap();
        assert!(block.applies_to(&["Practitioner/d2".into()]));
        assert!(!block.applies_to(&["Practitioner/d1".into(), "Organization/o1".into()]));
        assert!(Block::default().applies_to(&["Practitioner/d1".into()]), "no actor: everyone");
    }

    #[test]
    fn exclusions_leave_out_what_a_block_covers() {
        let ty = |t: &str| ResourceType::parse(t).unwrap();
        let whole = Block::default();
        assert_eq!(whole.exclusion(ty("Condition")), Some(Clause(vec![Condition::Id(vec![])])));
        assert_eq!(whole.exclusion(ty("Patient")), None);
        let one = Block { resources: vec!["Condition/c2".into()], ..Block::default() };
        assert_eq!(one.exclusion(ty("Observation")), None);
        assert_eq!(
            one.exclusion(ty("Condition")),
            Some(Clause(vec![Condition::Not(Box::new(Condition::Id(vec!["c2".into()])))]))
        );
        let coded = Block { codes: vec![(None, "x".into())], ..Block::default() };
        let Some(Clause(parts)) = coded.exclusion(ty("Observation")) else { panic!() };
        assert!(
            matches!(&parts[..], [Condition::Not(inner)] if matches!(**inner, Condition::AnyOf(ref m) if m.len() == 2))
        );
    }

    #[test]
    fn proxies_are_named_by_their_patient_resource() {
        let c = consent(
            PROXY,
            json!({"type": "permit", "actor": [{"role": {"text": "proxy"}, "reference": {"reference": "Patient/daughter"}}]}),
        );
        assert_eq!(proxy_for(&c, "daughter").as_deref(), Some("p1"));
        assert_eq!(proxy_for(&c, "stranger"), None);
    }
}
