//! Organ-donor statements over real HTTP on both stores: the patient registers, changes and
//! withdraws their own (history kept, one current), nobody registers one on their behalf,
//! the current one is in the summary's advance directives, a transplant coordinator finds
//! it without a care relationship (and nothing else of the record), and the patient sees
//! that in their access log.

use helse_auth::users::hash_password;
use helse_auth::{Role, User};
use helse_test_support::{Backend, on_both_stores};
use serde_json::{Value, json};

use super::people::{access_log_until, call, ids, sign_in, start};

const KIND: &str = "https://fhir.helse.example/CodeSystem/consent-kind";
const STATEMENT: &str = "https://fhir.helse.example/CodeSystem/organ-donor-statement";
const POLICY: &str = "https://lovdata.no/lov/2015-05-07-25";

fn statement(patient: &str, kind: &str, kind_type: &str, next_of_kin: &[&str]) -> Value {
    let actors: Vec<Value> = next_of_kin
        .iter()
        .map(|n| {
            json!({"role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": "NOK"}]},
                   "reference": {"display": n}})
        })
        .collect();
    let mut provision =
        json!({"type": kind_type, "code": [{"coding": [{"system": STATEMENT, "code": kind}]}]});
    if !actors.is_empty() {
        provision["actor"] = json!(actors);
    }
    if kind == "willing-with-restrictions" {
        provision["provision"] = json!([{"type": "deny", "code": [{"coding": [{"system": "http://snomed.info/sct", "code": "181414000", "display": "Kidney"}]}]}]);
    }
    json!({"resourceType": "Consent", "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "adr"}]},
        "category": [{"coding": [{"system": KIND, "code": "organ-donation"}]}],
        "patient": {"reference": format!("Patient/{patient}")},
        "performer": [{"reference": format!("Patient/{patient}")}],
        "dateTime": "2026-11-23",
        "policy": [{"uri": POLICY}],
        "provision": provision})
}

on_both_stores!(donor_statements_are_the_patients_own_and_coordinators_find_them);

async fn donor_statements_are_the_patients_own_and_coordinators_find_them(backend: Backend) {
    let (server, admin) = start(backend).await;
    // A transplant coordinator at the hospital, with no care relationship to Kari.
    let role = json!({"resourceType": "PractitionerRole", "id": "coordinator-role", "active": true,
        "practitioner": {"reference": "Practitioner/coordinator"}, "organization": {"reference": "Organization/hospital"},
        "code": [{"coding": [{"system": "https://fhir.helse.example/CodeSystem/practitioner-role", "code": "transplant-coordinator"}]}]});
    for (path, body) in [
        ("Practitioner/coordinator", json!({"resourceType": "Practitioner", "id": "coordinator"})),
        ("PractitionerRole/coordinator-role", role),
    ] {
        assert_eq!(call(&server, &admin, "PUT", path, Some(&body), &[]).await.status, 201, "{path}");
    }
    let user = User {
        username: "coordinator".into(),
        role: Role::Practitioner,
        fhir_user: Some("Practitioner/coordinator".into()),
        password_hash: hash_password("correct horse battery staple", 1_000),
    };
    server
        .store
        .kv_put(&User::store_key("coordinator"), &serde_json::to_string(&user).unwrap(), None)
        .await
        .unwrap();

    let kari = sign_in(&server, "kari", "patient/*.cruds", None).await;
    // Registering: a statement that says something it may not is refused.
    let mut unsaid = statement("kari", "willing", "permit", &[]);
    unsaid["provision"]["code"] = json!([{"coding": [{"system": STATEMENT, "code": "maybe"}]}]);
    assert_eq!(call(&server, &kari, "POST", "Consent", Some(&unsaid), &[]).await.status, 422);
    let three = statement("kari", "willing", "permit", &["Ola", "Eva", "Per"]);
    assert_eq!(
        call(&server, &kari, "POST", "Consent", Some(&three), &[]).await.status,
        422,
        "at most two next of kin"
    );
    let first = statement("kari", "willing-with-restrictions", "permit", &["Ola Nordmann"]);
    let r = call(&server, &kari, "POST", "Consent", Some(&first), &[]).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.json()["id"].as_str().unwrap().to_owned();
    let again =
        call(&server, &kari, "POST", "Consent", Some(&statement("kari", "willing", "permit", &[])), &[])
            .await;
    assert_eq!(again.status, 409, "one current statement: {}", again.text);
    assert!(again.text.contains(&id));

    // Nobody registers on her behalf: not her as proxy for her mother, not her GP.
    let for_mother = sign_in(&server, "kari", "patient/*.cruds", Some("mother")).await;
    let r = call(
        &server,
        &for_mother,
        "POST",
        "Consent",
        Some(&statement("mother", "not-willing", "deny", &[])),
        &[],
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.text);
    let gp = sign_in(&server, "gp", "user/*.cruds", None).await;
    let mut by_gp = statement("kari", "not-willing", "deny", &[]);
    by_gp["id"] = json!(id);
    assert_eq!(call(&server, &gp, "PUT", &format!("Consent/{id}"), Some(&by_gp), &[]).await.status, 403);
    assert_eq!(
        call(&server, &gp, "POST", "Consent", Some(&statement("kari", "willing", "permit", &[])), &[])
            .await
            .status,
        403
    );

    // She changes it; the current one is in her summary's advance directives.
    let mut changed = statement("kari", "willing", "permit", &["Ola Nordmann", "Eva Nordmann"]);
    changed["id"] = json!(id);
    assert_eq!(call(&server, &kari, "PUT", &format!("Consent/{id}"), Some(&changed), &[]).await.status, 200);
    let summary = call(&server, &gp, "GET", "Patient/kari/$summary", None, &[]).await.json();
    let directives = summary["entry"][0]["resource"]["section"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["code"]["coding"][0]["code"] == "42348-3")
        .expect("an advance-directives section")
        .clone();
    assert_eq!(directives["entry"], json!([{"reference": format!("Consent/{id}")}]));

    // A transplant coordinator finds current statements by patient — nothing else of the
    // record, and no other patient's by accident.
    let coordinator = sign_in(&server, "coordinator", "user/*.rs", None).await;
    let found = call(&server, &coordinator, "GET", "Consent?patient=kari&status=active", None, &[]).await;
    assert_eq!(found.status, 200, "{}", found.text);
    assert_eq!(ids(&found.json()), [format!("Consent/{id}")], "her donor statement, not her blocks");
    assert_eq!(call(&server, &coordinator, "GET", &format!("Consent/{id}"), None, &[]).await.status, 200);
    assert_eq!(call(&server, &coordinator, "GET", "Consent/kari-blocks-psych", None, &[]).await.status, 404);
    assert_eq!(call(&server, &coordinator, "GET", "Condition?patient=kari", None, &[]).await.status, 403);
    assert_eq!(call(&server, &coordinator, "GET", "Patient/kari", None, &[]).await.status, 403);
    // …and the doctor without that role does not.
    let stranger = sign_in(&server, "stranger", "user/*.rs", None).await;
    assert_eq!(call(&server, &stranger, "GET", "Consent?patient=kari", None, &[]).await.status, 403);

    // She sees that the coordinator looked.
    access_log_until(&server, &kari, "kari", |log| {
        log["entry"].as_array().into_iter().flatten().any(|e| {
            e["resource"]["agent"][0]["who"]["reference"] == "Practitioner/coordinator"
                && e["resource"]["entity"][0]["what"]["reference"] == format!("Consent/{id}")
        })
    })
    .await;

    // She withdraws it: no longer current, no longer in the summary; every statement kept.
    let mut withdrawn = changed.clone();
    withdrawn["status"] = json!("inactive");
    assert_eq!(
        call(&server, &kari, "PUT", &format!("Consent/{id}"), Some(&withdrawn), &[]).await.status,
        200
    );
    let history = call(&server, &kari, "GET", &format!("Consent/{id}/_history"), None, &[]).await.json();
    let kinds: Vec<String> = history["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["resource"]["status"].as_str().unwrap(),
                e["resource"]["provision"]["code"][0]["coding"][0]["code"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(kinds, ["inactive willing", "active willing", "active willing-with-restrictions"]);
    let summary = call(&server, &kari, "GET", "Patient/kari/$summary", None, &[]).await.text;
    assert!(!summary.contains(&format!("Consent/{id}")), "a withdrawn statement is not in the summary");
    // With none current, she may register a new one.
    let r = call(
        &server,
        &kari,
        "POST",
        "Consent",
        Some(&statement("kari", "next-of-kin-decides", "permit", &[])),
        &[],
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    server.stop().await;
}
