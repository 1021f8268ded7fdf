//! Organ-donor statements (donorkort): the patient's own statement, kept as a FHIR
//! `Consent` — category `consent-kind#organ-donation`, scope advance directive (`adr`),
//! policy the Transplantation Act — whose `provision.code` says which statement it is:
//! willing, willing with restrictions (nested `deny` provisions name the organs), not
//! willing, or leave it to the next of kin; `provision.actor`s with role `NOK` name at
//! most two people who know the wish. One current (`active`) statement per patient: a change
//! is an update (the history keeps every earlier statement), a withdrawal sets `inactive`.
//! Only the patient registers it — not a proxy, not health personnel (a backend system may,
//! to migrate the old register). Transplant coordinators read current statements without a
//! care relationship (`reach`); every read is in the patient's access log.

use helse_auth::Role;
use serde_json::{Value, json};

use crate::access::Access;
use crate::consent::CONSENT_KIND_SYSTEM;
use crate::error::FhirError;

/// `consent-kind` code of a donor statement.
pub const DONATION: &str = "organ-donation";
/// The statements a donor Consent can make.
pub const STATEMENT_SYSTEM: &str = "https://fhir.helse.example/CodeSystem/organ-donor-statement";
pub const STATEMENTS: [&str; 4] =
    ["willing", "willing-with-restrictions", "not-willing", "next-of-kin-decides"];
/// The law a statement is made under (lov om donasjon og transplantasjon av organ, celler
/// og vev).
pub const POLICY: &str = "https://lovdata.no/lov/2015-05-07-25";
/// The PractitionerRole code of transplant coordinators.
pub const ROLE_SYSTEM: &str = "https://fhir.helse.example/CodeSystem/practitioner-role";
pub const TRANSPLANT_COORDINATOR: &str = "transplant-coordinator";
/// Most next of kin a statement names.
const MAX_NEXT_OF_KIN: usize = 2;

/// Whether a resource is a donor statement (by its category, whatever its state).
pub fn is_statement(r: &Value) -> bool {
    r.get("resourceType").and_then(Value::as_str) == Some("Consent")
        && r["category"].as_array().into_iter().flatten().any(|c| {
            c["coding"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|x| x["system"] == CONSENT_KIND_SYSTEM && x["code"] == DONATION)
        })
}

/// The statement's code (`willing`, …).
pub fn statement(r: &Value) -> Option<&str> {
    r.pointer("/provision/code")?.as_array()?.iter().find_map(|c| {
        c["coding"]
            .as_array()?
            .iter()
            .find(|x| x["system"] == STATEMENT_SYSTEM)
            .and_then(|x| x["code"].as_str())
    })
}

/// A current statement of `kind` made by the patient `patient` (an id) now: `provision`
/// holds its type, restrictions and next of kin; its code, and the scope, category, policy
/// and performer every statement has, are set here.
pub fn new_statement(patient: &str, kind: &str, provision: Value) -> Value {
    let mut provision = provision;
    provision["code"] = json!([{"coding": [{"system": STATEMENT_SYSTEM, "code": kind}]}]);
    json!({
        "resourceType": "Consent",
        "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "adr"}]},
        "category": [{"coding": [{"system": CONSENT_KIND_SYSTEM, "code": DONATION, "display": "Organ donation"}]}],
        "patient": {"reference": format!("Patient/{patient}")},
        "performer": [{"reference": format!("Patient/{patient}")}],
        "dateTime": helse_fhir_r4::Instant::now().to_string(),
        "policy": [{"uri": POLICY}],
        "provision": provision,
    })
}

/// What a donor statement must say, beyond R4 itself.
pub fn check_shape(r: &Value) -> Result<(), String> {
    let scope = r.pointer("/scope/coding/0/code").and_then(Value::as_str);
    if scope != Some("adr") {
        return Err("a donor statement's scope is an advance directive (consentscope#adr)".into());
    }
    let patient = r
        .pointer("/patient/reference")
        .and_then(Value::as_str)
        .ok_or("a donor statement names its patient")?;
    let performers: Vec<&str> =
        r["performer"].as_array().into_iter().flatten().filter_map(|p| p["reference"].as_str()).collect();
    if performers != [patient] {
        return Err("a donor statement is made by the patient themselves (performer = patient)".into());
    }
    if !r["policy"].as_array().into_iter().flatten().any(|p| p["uri"] == POLICY) {
        return Err(format!("a donor statement is made under the Transplantation Act (policy.uri {POLICY})"));
    }
    let kind = statement(r)
        .ok_or_else(|| format!("provision.code says which statement it is ({STATEMENT_SYSTEM})"))?;
    if !STATEMENTS.contains(&kind) {
        return Err(format!("'{kind}' is not a donor statement ({})", STATEMENTS.join(", ")));
    }
    let expected = if kind == "not-willing" { "deny" } else { "permit" };
    if r.pointer("/provision/type").and_then(Value::as_str) != Some(expected) {
        return Err(format!("a '{kind}' statement has provision.type '{expected}'"));
    }
    let restrictions = r.pointer("/provision/provision").and_then(Value::as_array).map_or(0, Vec::len);
    match (kind, restrictions) {
        ("willing-with-restrictions", 0) => {
            return Err(
                "'willing-with-restrictions' names the organs it leaves out (provision.provision, type deny)"
                    .into(),
            );
        }
        ("willing-with-restrictions", _) => {
            let all_deny = r
                .pointer("/provision/provision")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .all(|p| p["type"] == "deny" && p["code"].as_array().is_some_and(|c| !c.is_empty()));
            if !all_deny {
                return Err("each restriction is a 'deny' provision with the organs' codes".into());
            }
        }
        (_, 0) => {}
        _ => return Err(format!("only 'willing-with-restrictions' has nested provisions, not '{kind}'")),
    }
    let next_of_kin = r.pointer("/provision/actor").and_then(Value::as_array).map_or(0, |a| {
        a.iter().filter(|x| x.pointer("/role/coding/0/code").and_then(Value::as_str) == Some("NOK")).count()
    });
    if next_of_kin > MAX_NEXT_OF_KIN {
        return Err(format!("a donor statement names at most {MAX_NEXT_OF_KIN} next of kin"));
    }
    Ok(())
}

/// Only the patient themselves (or a backend system) registers, changes or withdraws a
/// statement.
pub fn check_writer(access: &Access, r: &Value) -> Result<(), FhirError> {
    let Some(person) = access.person() else { return Ok(()) };
    // Signed in as themselves (their own Patient), working on their own record (no proxy).
    let patient =
        r.pointer("/patient/reference").and_then(Value::as_str).and_then(|p| p.strip_prefix("Patient/"));
    let me = person.fhir_user.as_deref().and_then(|u| u.strip_prefix("Patient/"));
    let own = person.role == Role::Patient
        && patient.is_some()
        && me == patient
        && person.patient.as_deref() == patient;
    if own {
        Ok(())
    } else {
        Err(FhirError::Forbidden(
            "a donor statement is registered by the patient themselves, not on their behalf".into(),
        ))
    }
}

/// One current statement per patient: registering another while one is active is a
/// conflict (change the current one instead). `id` is the statement being written, if it
/// exists already.
pub async fn check_single(state: &crate::AppState, id: Option<&str>, r: &Value) -> Result<(), FhirError> {
    if !is_statement(r) || r["status"] != "active" {
        return Ok(());
    }
    let Some(patient) = r.pointer("/patient/reference").and_then(Value::as_str) else { return Ok(()) };
    let others = crate::reach::find(
        state,
        "Consent",
        &[
            ("patient", patient.to_owned()),
            ("status", "active".into()),
            ("category", format!("{CONSENT_KIND_SYSTEM}|{DONATION}")),
        ],
    )
    .await?;
    match others.iter().find(|v| Some(v.id.as_str()) != id) {
        Some(other) => Err(FhirError::Conflict(format!(
            "the patient's current donor statement is Consent/{}; change or withdraw it instead",
            other.id
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A statement without a date (so what is said of it does not change by the day).
    pub fn statement_of(kind: &str, provision: Value) -> Value {
        let mut s = new_statement("p1", kind, provision);
        s.as_object_mut().expect("an object").remove("dateTime");
        s
    }

    #[test]
    fn donor_statements_say_one_of_four_things_properly() {
        let nok = |name: &str| json!({"role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": "NOK"}]}, "reference": {"display": name}});
        let kidney = json!({"type": "deny", "code": [{"coding": [{"system": "http://snomed.info/sct", "code": "64033007"}]}]});
        let ok = [
            statement_of("willing", json!({"type": "permit", "actor": [nok("Ola"), nok("Eva")]})),
            statement_of("willing-with-restrictions", json!({"type": "permit", "provision": [kidney]})),
            statement_of("not-willing", json!({"type": "deny"})),
            statement_of("next-of-kin-decides", json!({"type": "permit"})),
        ];
        for s in &ok {
            assert_eq!(check_shape(s), Ok(()), "{s}");
            assert!(is_statement(s));
            assert!(helse_fhir_r4::validate_resource(s, Some("Consent")).is_empty(), "valid R4: {s}");
        }
        let mut by_someone_else = ok[0].clone();
        by_someone_else["performer"] = json!([{"reference": "RelatedPerson/mother"}]);
        let mut no_policy = ok[0].clone();
        no_policy["policy"] = json!([{"uri": "https://example.org"}]);
        let bad = [
            by_someone_else,
            no_policy,
            statement_of("maybe", json!({"type": "permit"})),
            statement_of("not-willing", json!({"type": "permit"})),
            statement_of("willing-with-restrictions", json!({"type": "permit"})),
            statement_of("willing", json!({"type": "permit", "provision": [kidney]})),
            statement_of("willing", json!({"type": "permit", "actor": [nok("A"), nok("B"), nok("C")]})),
        ];
        for s in &bad {
            assert!(check_shape(s).is_err(), "refused: {s}");
        }
    }
}
