//! People signing in through an app (SMART App Launch: authorization code + PKCE) and what
//! their tokens reach, over real HTTP on both stores: patients their own compartment (and
//! whom they are proxy for), health personnel the patients they have a care relationship
//! with (GP list, episode of care, care team, referral) or open through emergency access,
//! never what a patient blocked; administrators no patient data. Each path data could leak
//! through is tried: read, search, `_include`/`_revinclude`, chains, `_has`, history,
//! `$everything`, batch, transaction, `$export`, writes.

use helse_auth::users::hash_password;
use helse_auth::{Client, Role, User};
use helse_fhir_r4::Instant;
use helse_test_support::{Backend, Reply, TestServer, on_both_stores};
use serde_json::{Value, json};

const APP: &str = "portal-app";
const REDIRECT: &str = "http://127.0.0.1:9/callback";
const PASSWORD: &str = "correct horse battery staple";
const VERIFIER: &str = "a-pkce-verifier-that-is-long-enough-for-rfc-7636-0123456789";
const FNR_SYSTEM: &str = "urn:oid:2.16.578.1.12.4.1.4.1";
const KIND: &str = "https://fhir.helse.example/CodeSystem/consent-kind";

/// A browser that does not follow redirects (the app's redirect URI is not served).
fn browser() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

async fn reply(r: reqwest::Response) -> Reply {
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    Reply { status, headers, text: r.text().await.unwrap() }
}

fn origin(server: &TestServer) -> String {
    format!("http://{}", server.addr)
}

async fn put_kv(server: &TestServer, key: &str, value: &impl serde::Serialize) {
    server.store.kv_put(key, &serde_json::to_string(value).unwrap(), None).await.unwrap();
}

/// Registers the app, a backend admin client, and the people, as `helse client add` and
/// `helse user add` do; returns the admin's token.
pub(crate) async fn set_up_accounts(server: &TestServer) -> String {
    let app = Client {
        id: APP.into(),
        name: "Pasientportalen".into(),
        secret_sha256: None,
        jwks: None,
        scope: "patient/*.cruds user/*.cruds".into(),
        redirect_uris: vec![REDIRECT.into()],
    };
    put_kv(server, &Client::store_key(APP), &app).await;
    let admin = Client {
        id: "admin".into(),
        name: "admin".into(),
        secret_sha256: Some(helse_auth::clients::hash_secret("admin-secret")),
        jwks: None,
        scope: "system/*.cruds".into(),
        redirect_uris: Vec::new(),
    };
    put_kv(server, &Client::store_key("admin"), &admin).await;
    for (username, role, fhir_user) in [
        ("kari", Role::Patient, Some("Patient/kari")),
        ("gp", Role::Practitioner, Some("Practitioner/gp")),
        ("doc", Role::Practitioner, Some("Practitioner/doc")),
        ("stranger", Role::Practitioner, Some("Practitioner/stranger")),
        ("boss", Role::Admin, None),
    ] {
        let user = User {
            username: username.into(),
            role,
            fhir_user: fhir_user.map(str::to_owned),
            password_hash: hash_password(PASSWORD, 1_000),
        };
        put_kv(server, &User::store_key(username), &user).await;
    }
    let r = reply(
        server
            .client
            .post(format!("{}/auth/token", origin(server)))
            .basic_auth("admin", Some("admin-secret"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials&scope=system/*.cruds")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json()["access_token"].as_str().unwrap().to_owned()
}

fn condition(id: &str, patient: &str, snomed: &str) -> Value {
    json!({"resourceType": "Condition", "id": id,
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": snomed}]},
        "subject": {"reference": format!("Patient/{patient}")}})
}

fn observation(id: &str, patient: &str) -> Value {
    json!({"resourceType": "Observation", "id": id, "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": format!("Patient/{patient}")},
        "performer": [{"reference": "Practitioner/gp"}]})
}

pub(crate) fn patient(id: &str, family: &str, born: &str, fnr: &str, gp: Option<&str>) -> Value {
    let mut p = json!({"resourceType": "Patient", "id": id, "name": [{"family": family, "given": [id]}],
        "birthDate": born, "identifier": [{"system": FNR_SYSTEM, "value": fnr}]});
    if let Some(gp) = gp {
        p["generalPractitioner"] = json!([{"reference": gp}]);
    }
    p
}

fn consent(id: &str, patient: &str, kind: &str, provision: Value) -> Value {
    json!({"resourceType": "Consent", "id": id, "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": KIND, "code": kind}]}],
        "patient": {"reference": format!("Patient/{patient}")},
        "policyRule": {"text": "the patient's own decision"},
        "provision": provision})
}

/// The record: Kari (on Dr GP's list; one psychiatric diagnosis she blocked from everyone,
/// Observations she blocked from "stranger"), her children (one under 16, one not), her
/// mother (who made Kari her proxy), and Ola, Per and Liv, whom Dr Doc cares for through a
/// referral, an episode of care and a care team.
pub(crate) async fn set_up_record(server: &TestServer, admin: &str) {
    let today = Instant::now().to_string();
    let year: i32 = today[..4].parse().unwrap();
    let under_16 = format!("{}-01-01", year - 10);
    let over_16 = format!("{}-01-01", year - 17);
    let resources = vec![
        json!({"resourceType": "Organization", "id": "hospital", "name": "Sykehuset"}),
        json!({"resourceType": "Practitioner", "id": "gp"}),
        json!({"resourceType": "Practitioner", "id": "doc"}),
        json!({"resourceType": "Practitioner", "id": "stranger"}),
        json!({"resourceType": "PractitionerRole", "id": "doc-at-hospital", "active": true,
            "practitioner": {"reference": "Practitioner/doc"}, "organization": {"reference": "Organization/hospital"}}),
        patient("kari", "Nordmann", "1980-05-05", "05058012345", Some("Practitioner/gp")),
        patient("child", "Nordmann", &under_16, "01011612345", None),
        patient("teen", "Nordmann", &over_16, "01010912345", None),
        patient("mother", "Nordmann", "1950-02-02", "02025012345", None),
        patient("ola", "Hansen", "1970-03-03", "03037012345", None),
        patient("per", "Olsen", "1960-04-04", "04046012345", None),
        patient("liv", "Berg", "1990-06-06", "06069012345", None),
        json!({"resourceType": "RelatedPerson", "id": "kari-mother-of-child", "active": true,
            "patient": {"reference": "Patient/child"},
            "identifier": [{"system": FNR_SYSTEM, "value": "05058012345"}],
            "relationship": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": "MTH"}]}]}),
        json!({"resourceType": "RelatedPerson", "id": "kari-mother-of-teen", "active": true,
            "patient": {"reference": "Patient/teen"},
            "identifier": [{"system": FNR_SYSTEM, "value": "05058012345"}],
            "relationship": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": "MTH"}]}]}),
        consent(
            "mother-proxy",
            "mother",
            "proxy",
            json!({"type": "permit",
            "actor": [{"role": {"text": "proxy"}, "reference": {"reference": "Patient/kari"}}]}),
        ),
        observation("kari-obs", "kari"),
        condition("kari-flu", "kari", "6142004"),
        condition("kari-psych", "kari", "35489007"),
        consent(
            "kari-blocks-psych",
            "kari",
            "block",
            json!({"type": "deny",
            "code": [{"coding": [{"system": "http://snomed.info/sct", "code": "35489007"}]}]}),
        ),
        consent(
            "kari-blocks-stranger",
            "kari",
            "block",
            json!({"type": "deny",
            "actor": [{"role": {"text": "blocked"}, "reference": {"reference": "Practitioner/stranger"}}],
            "class": [{"system": "http://hl7.org/fhir/resource-types", "code": "Observation"}]}),
        ),
        observation("child-obs", "child"),
        observation("ola-obs", "ola"),
        json!({"resourceType": "ServiceRequest", "id": "ola-referral", "status": "active", "intent": "order",
            "subject": {"reference": "Patient/ola"}, "performer": [{"reference": "Organization/hospital"}]}),
        json!({"resourceType": "EpisodeOfCare", "id": "per-episode", "status": "active",
            "patient": {"reference": "Patient/per"}, "careManager": {"reference": "Practitioner/doc"}}),
        json!({"resourceType": "CareTeam", "id": "liv-team", "status": "active",
            "subject": {"reference": "Patient/liv"}, "participant": [{"member": {"reference": "PractitionerRole/doc-at-hospital"}}]}),
    ];
    for r in resources {
        let path = format!("{}/{}", r["resourceType"].as_str().unwrap(), r["id"].as_str().unwrap());
        let put = call(server, admin, "PUT", &path, Some(&r), &[]).await;
        assert_eq!(put.status, 201, "{path}: {}", put.text);
    }
}

pub(crate) async fn call(
    server: &TestServer,
    token: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
    extra: &[(&str, &str)],
) -> Reply {
    let bearer = format!("Bearer {token}");
    let mut headers = vec![("authorization", bearer.as_str())];
    headers.extend_from_slice(extra);
    server.send(method, path, body, &headers).await
}

fn authorize_params(server: &TestServer, scope: &str) -> Vec<(String, String)> {
    [
        ("response_type", "code"),
        ("client_id", APP),
        ("redirect_uri", REDIRECT),
        ("scope", scope),
        ("state", "s-123"),
        ("aud", &server.base),
        ("code_challenge", &helse_auth::codes::s256_challenge(VERIFIER)),
        ("code_challenge_method", "S256"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect()
}

async fn post_form(server: &TestServer, path: &str, form: &[(String, String)]) -> Reply {
    reply(
        browser()
            .post(format!("{}{path}", origin(server)))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(form).unwrap())
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// The query parameters of the redirect back to the app.
fn redirected(r: &Reply) -> Vec<(String, String)> {
    assert_eq!(r.status, 303, "{}", r.text);
    let location = r.header("location").unwrap();
    assert!(location.starts_with(REDIRECT), "{location}");
    serde_urlencoded::from_str(location.split_once('?').unwrap().1).unwrap()
}

fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// Signs in through the sign-in page (picking `patient` when asked) and returns the code.
async fn sign_in_code(server: &TestServer, username: &str, scope: &str, patient: Option<&str>) -> String {
    let mut form = authorize_params(server, scope);
    let page = reply(
        browser()
            .get(format!("{}/auth/authorize?{}", origin(server), serde_urlencoded::to_string(&form).unwrap()))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page.text.contains("name=\"password\""), "a sign-in form");
    form.push(("username".into(), username.into()));
    form.push(("password".into(), PASSWORD.into()));
    let mut r = post_form(server, "/auth/authorize", &form).await;
    if r.status == 200 {
        // Whose record: the picker carries a ticket instead of the password.
        let ticket =
            r.text.split("name=\"ticket\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
        let mut pick = authorize_params(server, scope);
        pick.push(("ticket".into(), ticket));
        // Without a choice, their own record (the patients' usernames are their ids here).
        pick.push(("patient".into(), patient.unwrap_or(username).into()));
        r = post_form(server, "/auth/authorize", &pick).await;
    }
    let back = redirected(&r);
    assert_eq!(param(&back, "state"), Some("s-123"));
    param(&back, "code").unwrap_or_else(|| panic!("a code: {back:?}")).to_owned()
}

async fn trade(server: &TestServer, code: &str, verifier: &str, redirect: &str) -> Reply {
    let form: Vec<(String, String)> = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect),
        ("code_verifier", verifier),
        ("client_id", APP),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    post_form(server, "/auth/token", &form).await
}

pub(crate) async fn sign_in(
    server: &TestServer,
    username: &str,
    scope: &str,
    patient: Option<&str>,
) -> String {
    let code = sign_in_code(server, username, scope, patient).await;
    let r = trade(server, &code, VERIFIER, REDIRECT).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json()["access_token"].as_str().unwrap().to_owned()
}

pub(crate) fn ids(bundle: &Value) -> Vec<String> {
    let mut out: Vec<String> = bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["search"]["mode"] != "outcome")
        .map(|e| {
            format!(
                "{}/{}",
                e["resource"]["resourceType"].as_str().unwrap(),
                e["resource"]["id"].as_str().unwrap()
            )
        })
        .collect();
    out.sort();
    out
}

fn outcome_texts(bundle: &Value) -> String {
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["search"]["mode"] == "outcome")
        .map(|e| e["resource"].to_string())
        .collect()
}

/// A patient's access log once it shows what `done` looks for: a read's entry is stored
/// moments after the answer.
pub(crate) async fn access_log_until(
    server: &TestServer,
    token: &str,
    patient: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let path = format!("Patient/{patient}/$access-log");
    for _ in 0..200 {
        let r = call(server, token, "GET", &path, None, &[]).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let log = r.json();
        if done(&log) {
            return log;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("{path} never showed the expected entries");
}

pub(crate) async fn start(backend: Backend) -> (TestServer, String) {
    let server = TestServer::start_secured(backend).await;
    let admin = set_up_accounts(&server).await;
    set_up_record(&server, &admin).await;
    (server, admin)
}

on_both_stores!(
    authorization_codes_are_single_use_and_bound_to_pkce_client_and_redirect,
    patients_reach_only_their_own_record,
    parents_act_for_children_under_16_and_named_proxies,
    health_personnel_need_a_care_relationship_or_emergency_access,
    blocks_hide_what_the_patient_blocked_on_every_path,
    administrators_see_no_patient_data,
);

async fn authorization_codes_are_single_use_and_bound_to_pkce_client_and_redirect(backend: Backend) {
    let (server, _) = start(backend).await;
    // Discovery names the endpoints and PKCE.
    let config = server.get(".well-known/smart-configuration").await.json();
    assert_eq!(config["authorization_endpoint"], format!("{}/auth/authorize", origin(&server)));
    assert_eq!(config["code_challenge_methods_supported"], json!(["S256"]));

    let code = sign_in_code(&server, "kari", "launch/patient patient/*.rs openid fhirUser", None).await;
    // A wrong verifier uses the code up: the right one afterwards is a replay.
    let wrong = trade(&server, &code, &VERIFIER.replace('a', "b"), REDIRECT).await;
    assert_eq!(
        (wrong.status, wrong.json()["error"].as_str()),
        (400, Some("invalid_grant")),
        "{}",
        wrong.text
    );
    let replay = trade(&server, &code, VERIFIER, REDIRECT).await;
    assert_eq!(replay.json()["error"], "invalid_grant");
    assert!(replay.text.contains("used before"), "{}", replay.text);

    let code = sign_in_code(&server, "kari", "patient/*.rs", None).await;
    let elsewhere = trade(&server, &code, VERIFIER, "http://127.0.0.1:9/other").await;
    assert_eq!(elsewhere.json()["error"], "invalid_grant", "redirect_uri must match");

    let code = sign_in_code(&server, "kari", "patient/*.rs user/*.rs system/*.rs", None).await;
    let ok = trade(&server, &code, VERIFIER, REDIRECT).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    let body = ok.json();
    // A patient's token carries patient/ scopes only, and the patient it is for.
    assert_eq!(body["scope"], "patient/*.rs");
    assert_eq!(body["patient"], "kari");
    assert_eq!(body["fhirUser"], format!("{}/Patient/kari", server.base));
    assert_eq!(trade(&server, &code, VERIFIER, REDIRECT).await.json()["error"], "invalid_grant", "replayed");

    // Wrong password: the page again, no code.
    let mut form = authorize_params(&server, "patient/*.rs");
    form.push(("username".into(), "kari".into()));
    form.push(("password".into(), "guess".into()));
    let refused = post_form(&server, "/auth/authorize", &form).await;
    assert_eq!(refused.status, 401);
    assert!(refused.header("location").is_none());
    // A redirect URI the app did not register is never redirected to.
    let mut evil = authorize_params(&server, "patient/*.rs");
    evil[2].1 = "https://evil.example/steal".into();
    let r = reply(
        browser()
            .get(format!(
                "{}/auth/authorize?{}",
                origin(&server),
                serde_urlencoded::to_string(&evil).unwrap()
            ))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((r.status, r.header("location")), (400, None));
    // Without PKCE (or with the plain method), back to the app with an error.
    let mut plain = authorize_params(&server, "patient/*.rs");
    plain[7].1 = "plain".into();
    let r = reply(
        browser()
            .get(format!(
                "{}/auth/authorize?{}",
                origin(&server),
                serde_urlencoded::to_string(&plain).unwrap()
            ))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(param(&redirected(&r), "error"), Some("invalid_request"));
    // The token is for this server only.
    let mut other = authorize_params(&server, "patient/*.rs");
    other[5].1 = "https://other.example/fhir".into();
    let r = reply(
        browser()
            .get(format!(
                "{}/auth/authorize?{}",
                origin(&server),
                serde_urlencoded::to_string(&other).unwrap()
            ))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(param(&redirected(&r), "error"), Some("invalid_request"));
    server.stop().await;
}

async fn patients_reach_only_their_own_record(backend: Backend) {
    let (server, _) = start(backend).await;
    let kari = sign_in(&server, "kari", "patient/*.cruds", None).await;
    let status = |r: Reply| r.status;
    // (path, status): their own data yes — including what they blocked from others — and
    // nobody else's, whose existence does not leak.
    for (path, expected) in [
        ("Patient/kari", 200),
        ("Condition/kari-psych", 200),
        ("Observation/kari-obs/_history", 200),
        ("Patient/ola", 404),
        ("Observation/ola-obs", 404),
        ("Observation/ola-obs/_history/1", 404),
        ("Observation/ola-obs/_history", 404),
        ("Patient/ola/$everything", 404),
        ("Organization/hospital", 200),
        ("Observation/_history", 403),
        ("_history", 403),
        ("$export", 403),
    ] {
        assert_eq!(status(call(&server, &kari, "GET", path, None, &[]).await), expected, "{path}");
    }
    // Searches return their own only, whatever they ask for, and through every indirection.
    for (query, expected) in [
        ("Observation", vec!["Observation/kari-obs"]),
        ("Observation?subject=Patient/ola", vec![]),
        ("Patient", vec!["Patient/kari"]),
        ("Patient?family=Hansen", vec![]),
        ("Observation?subject:Patient.family=Hansen", vec![]),
        ("Patient?_has:Observation:subject:code=8867-4", vec!["Patient/kari"]),
        ("Patient/ola/Observation", vec![]),
        (
            "Observation?_include=Observation:subject&_include=Observation:performer",
            vec!["Observation/kari-obs", "Patient/kari", "Practitioner/gp"],
        ),
        (
            "Patient?_id=kari,ola&_revinclude=Observation:subject",
            vec!["Observation/kari-obs", "Patient/kari"],
        ),
        ("Consent?_id=mother-proxy", vec![]),
    ] {
        let r = call(&server, &kari, "GET", query, None, &[]).await;
        assert_eq!(r.status, 200, "{query}: {}", r.text);
        assert_eq!(ids(&r.json()), expected, "{query}");
    }
    let everything = call(&server, &kari, "GET", "Patient/kari/$everything", None, &[]).await.json();
    assert!(ids(&everything).contains(&"Condition/kari-psych".to_owned()));
    assert!(!ids(&everything).iter().any(|i| i.contains("ola")));
    // Writes: into their own record only.
    let mine = json!({"resourceType": "Observation", "status": "final", "code": {"text": "blodtrykk"}, "subject": {"reference": "Patient/kari"}});
    assert_eq!(call(&server, &kari, "POST", "Observation", Some(&mine), &[]).await.status, 201);
    let theirs = json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "subject": {"reference": "Patient/ola"}});
    assert_eq!(call(&server, &kari, "POST", "Observation", Some(&theirs), &[]).await.status, 403);
    let mut moved = observation("kari-obs", "ola");
    moved["status"] = json!("amended");
    assert_eq!(
        call(&server, &kari, "PUT", "Observation/kari-obs", Some(&moved), &[]).await.status,
        403,
        "moving data out"
    );
    assert_eq!(call(&server, &kari, "DELETE", "Observation/ola-obs", None, &[]).await.status, 404);
    assert_eq!(
        call(&server, &kari, "POST", "Patient", Some(&json!({"resourceType": "Patient"})), &[]).await.status,
        403
    );
    // A batch judges each entry; a transaction is refused.
    let batch = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": "Observation/kari-obs"}},
        {"request": {"method": "GET", "url": "Observation/ola-obs"}},
        {"request": {"method": "GET", "url": "Observation?patient=ola"}}]});
    let r = call(&server, &kari, "POST", "", Some(&batch), &[]).await;
    assert_eq!(r.entry_statuses(), ["200 OK", "404 Not Found", "200 OK"]);
    assert!(
        r.json()["entry"][2]["resource"].get("entry").is_none(),
        "no other patient's data in a batch search"
    );
    let transaction = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"request": {"method": "GET", "url": "Observation/kari-obs"}}]});
    assert_eq!(call(&server, &kari, "POST", "", Some(&transaction), &[]).await.status, 403);
    // Who looked at my record: the access log, their own only.
    let events = access_log_until(&server, &kari, "kari", |log| {
        log["total"].as_u64().unwrap() >= 5
            && log["entry"][0]["resource"]["agent"][0]["who"]["reference"] == "Patient/kari"
    })
    .await;
    assert_eq!(events["entry"][0]["resource"]["resourceType"], "AuditEvent");
    assert_eq!(call(&server, &kari, "GET", "Patient/ola/$access-log", None, &[]).await.status, 403);
    server.stop().await;
}

async fn parents_act_for_children_under_16_and_named_proxies(backend: Backend) {
    let (server, _) = start(backend).await;
    // Signing in, Kari is asked whose record: hers, her child's (under 16) and her
    // mother's (who named her proxy) — not her 17-year-old's.
    let mut form = authorize_params(&server, "patient/*.rs");
    form.push(("username".into(), "kari".into()));
    form.push(("password".into(), PASSWORD.into()));
    let picker = post_form(&server, "/auth/authorize", &form).await;
    assert_eq!(picker.status, 200, "{}", picker.text);
    for (id, offered) in [("kari", true), ("child", true), ("mother", true), ("teen", false), ("ola", false)]
    {
        assert_eq!(picker.text.contains(&format!("value=\"{id}\"")), offered, "{id}");
    }
    let ticket =
        picker.text.split("name=\"ticket\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    // The ticket is good for this authorization request only (same app, redirect, PKCE).
    let mut elsewhere = authorize_params(&server, "patient/*.rs");
    elsewhere[6].1 = helse_auth::codes::s256_challenge(&VERIFIER.replace('a', "c"));
    elsewhere.push(("ticket".into(), ticket.clone()));
    elsewhere.push(("patient".into(), "kari".into()));
    assert_eq!(
        post_form(&server, "/auth/authorize", &elsewhere).await.status,
        401,
        "a ticket carried to another request"
    );
    let mut forged = authorize_params(&server, "patient/*.rs");
    forged.push(("ticket".into(), ticket));
    forged.push(("patient".into(), "teen".into()));
    assert_eq!(post_form(&server, "/auth/authorize", &forged).await.status, 403, "a patient not offered");

    let for_child = sign_in(&server, "kari", "patient/*.rs", Some("child")).await;
    assert_eq!(call(&server, &for_child, "GET", "Observation/child-obs", None, &[]).await.status, 200);
    // The token is for the child: Kari's own record needs her own token.
    assert_eq!(call(&server, &for_child, "GET", "Observation/kari-obs", None, &[]).await.status, 404);
    let r = call(&server, &for_child, "GET", "Observation", None, &[]).await;
    assert_eq!(ids(&r.json()), ["Observation/child-obs"]);
    let for_mother = sign_in(&server, "kari", "patient/*.rs", Some("mother")).await;
    assert_eq!(call(&server, &for_mother, "GET", "Patient/mother", None, &[]).await.status, 200);
    // The access log names Kari as the one who looked, for the child's record.
    let admin = set_up_accounts(&server).await;
    access_log_until(&server, &admin, "child", |log| {
        log["entry"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|e| e["resource"]["agent"][0]["who"]["reference"] == "Patient/kari")
    })
    .await;
    server.stop().await;
}

async fn health_personnel_need_a_care_relationship_or_emergency_access(backend: Backend) {
    let (server, admin) = start(backend).await;
    let gp = sign_in(&server, "gp", "user/*.rs", None).await;
    let doc = sign_in(&server, "doc", "user/*.cruds", None).await;
    let stranger = sign_in(&server, "stranger", "user/*.rs", None).await;
    // (who, path, status): the GP list, a referral to the doctor's hospital, an episode
    // the doctor manages, a care team the doctor's role is in.
    for (token, who, path, expected) in [
        (&gp, "gp", "Patient/kari", 200),
        (&gp, "gp", "Observation/kari-obs", 200),
        (&gp, "gp", "Patient/ola", 403),
        (&gp, "gp", "Observation/ola-obs", 404),
        (&doc, "doc", "Patient/ola", 200),
        (&doc, "doc", "Observation/ola-obs", 200),
        (&doc, "doc", "Patient/per", 200),
        (&doc, "doc", "Patient/liv", 200),
        (&doc, "doc", "Patient/kari", 403),
        (&stranger, "stranger", "Patient/kari", 403),
        (&stranger, "stranger", "Patient/ola/$everything", 403),
        (&gp, "gp", "Observation/_history", 403),
        (&gp, "gp", "$export", 403),
    ] {
        let r = call(&server, token, "GET", path, None, &[]).await;
        assert_eq!(r.status, expected, "{who} {path}: {}", r.text);
    }
    let refused = call(&server, &stranger, "GET", "Patient/kari", None, &[]).await;
    assert!(refused.text.contains("X-Emergency-Access"), "the refusal names emergency access");
    // Searches of patient data name the patient; the patient list is whom they care for.
    for (token, query, expected) in [
        (&gp, "Observation?patient=kari", Some(vec!["Observation/kari-obs"])),
        (&gp, "Patient/kari/Observation", Some(vec!["Observation/kari-obs"])),
        (&gp, "Observation", None),
        (&gp, "Observation?code=8867-4", None),
        (&gp, "Patient", Some(vec!["Patient/kari"])),
        (&doc, "Patient", Some(vec!["Patient/liv", "Patient/ola", "Patient/per"])),
        (&doc, "Patient?family=Nordmann", Some(vec![])),
        (&gp, "Observation?patient=kari&subject:Patient.family=Hansen", Some(vec![])),
        (&gp, "Practitioner?_has:Observation:performer:code=8867-4", Some(vec![])),
        (
            &gp,
            "Observation?patient=kari&_include=Observation:subject",
            Some(vec!["Observation/kari-obs", "Patient/kari"]),
        ),
    ] {
        let r = call(&server, token, "GET", query, None, &[]).await;
        match expected {
            Some(list) => {
                assert_eq!(r.status, 200, "{query}: {}", r.text);
                assert_eq!(ids(&r.json()), list, "{query}");
            }
            None => assert_eq!(r.status, 403, "{query}: {}", r.text),
        }
    }
    assert_eq!(call(&server, &gp, "GET", "Observation?patient=ola", None, &[]).await.status, 403);
    // Writes need the relationship too.
    let note = json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "subject": {"reference": "Patient/ola"}});
    assert_eq!(call(&server, &doc, "POST", "Observation", Some(&note), &[]).await.status, 201);
    let other = json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "subject": {"reference": "Patient/kari"}});
    assert_eq!(call(&server, &doc, "POST", "Observation", Some(&other), &[]).await.status, 403);

    // A relationship ends with the referral: access ends with it.
    let mut done = call(&server, &admin, "GET", "ServiceRequest/ola-referral", None, &[]).await.json();
    done["status"] = json!("completed");
    assert_eq!(
        call(&server, &admin, "PUT", "ServiceRequest/ola-referral", Some(&done), &[]).await.status,
        200
    );
    assert_eq!(call(&server, &doc, "GET", "Patient/ola", None, &[]).await.status, 403);

    // Emergency access: granted with a reason, marked in the log, queued for review.
    let reason = [("x-emergency-access", "Bevisstløs%20i%20akuttmottaket")];
    assert_eq!(call(&server, &stranger, "GET", "Patient/ola", None, &reason).await.status, 200);
    let r = call(&server, &stranger, "GET", "Condition?patient=ola", None, &reason).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let no_reason = [("x-emergency-access", " ")];
    assert_eq!(call(&server, &stranger, "GET", "Patient/ola", None, &no_reason).await.status, 400);
    let kari = sign_in(&server, "kari", "patient/*.rs", None).await;
    assert_eq!(
        call(&server, &kari, "GET", "Patient/ola", None, &[("x-emergency-access", "because")]).await.status,
        403,
        "emergency access is for health personnel"
    );
    let queue = helse_server::emergency::list(server.store.as_ref(), false).await.unwrap();
    assert_eq!(queue.len(), 2, "{queue:?}");
    assert!(queue.iter().all(|(_, e)| e.patient == "ola"
        && e.username == "stranger"
        && e.reason == "Bevisstløs i akuttmottaket"));
    let (key, _) = &queue[0];
    let verdict = helse_server::emergency::Review {
        by: "boss".into(),
        at: "now".into(),
        justified: true,
        note: "ok".into(),
    };
    helse_server::emergency::review(server.store.as_ref(), key, verdict).await.unwrap();
    assert_eq!(helse_server::emergency::list(server.store.as_ref(), false).await.unwrap().len(), 1);
    // The patient sees it in their access log, with the reason.
    let log = call(&server, &admin, "GET", "Patient/ola/$access-log", None, &[]).await.json();
    let emergencies: Vec<&Value> = log["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["resource"]["agent"][0]["purposeOfUse"][0]["coding"][0]["code"] == "ETREAT")
        .collect();
    assert_eq!(emergencies.len(), 2, "{log}");
    assert_eq!(
        emergencies[0]["resource"]["agent"][0]["purposeOfUse"][0]["text"],
        "Bevisstløs i akuttmottaket"
    );
    assert_eq!(emergencies[0]["resource"]["agent"][0]["who"]["reference"], "Practitioner/stranger");
    server.stop().await;
}

async fn blocks_hide_what_the_patient_blocked_on_every_path(backend: Backend) {
    let (server, _) = start(backend).await;
    let gp = sign_in(&server, "gp", "user/*.rs", None).await;
    // Kari blocked her psychiatric diagnosis from everyone: it is not there for her GP, in
    // a search (nor its total), a read, a history, `$everything` or a `_revinclude`.
    let r = call(&server, &gp, "GET", "Condition?patient=kari", None, &[]).await.json();
    assert_eq!(ids(&r), ["Condition/kari-flu"]);
    assert_eq!(r["total"], 1);
    assert_eq!(outcome_texts(&r), "", "outside an emergency a block is not announced");
    for path in ["Condition/kari-psych", "Condition/kari-psych/_history", "Condition/kari-psych/_history/1"] {
        assert_eq!(call(&server, &gp, "GET", path, None, &[]).await.status, 404, "{path}");
    }
    let everything = call(&server, &gp, "GET", "Patient/kari/$everything", None, &[]).await.json();
    assert!(ids(&everything).contains(&"Condition/kari-flu".to_owned()));
    assert!(!ids(&everything).contains(&"Condition/kari-psych".to_owned()));
    let rev =
        call(&server, &gp, "GET", "Patient?_id=kari&_revinclude=Condition:subject", None, &[]).await.json();
    assert_eq!(ids(&rev), ["Condition/kari-flu", "Patient/kari"]);
    let code = call(&server, &gp, "GET", "Condition?patient=kari&code=35489007", None, &[]).await.json();
    assert_eq!(code["total"], 0);
    let summary = call(&server, &gp, "GET", "Patient/kari/$summary", None, &[]).await;
    assert_eq!(summary.status, 200, "{}", summary.text);
    assert!(
        summary.text.contains("Condition/kari-flu") && !summary.text.contains("kari-psych"),
        "the summary leaves it out"
    );
    // Her block on Observations names only the stranger: the GP still sees them.
    assert_eq!(
        ids(&call(&server, &gp, "GET", "Observation?patient=kari", None, &[]).await.json()),
        ["Observation/kari-obs"]
    );

    // In an emergency the stranger is told that a block exists, never what it hides.
    let stranger = sign_in(&server, "stranger", "user/*.rs", None).await;
    let reason = [("x-emergency-access", "akutt")];
    let r = call(&server, &stranger, "GET", "Condition?patient=kari", None, &reason).await.json();
    assert_eq!(ids(&r), ["Condition/kari-flu"]);
    assert!(outcome_texts(&r).contains("blocked"), "{r}");
    assert!(!outcome_texts(&r).contains("psych") && !outcome_texts(&r).contains("35489007"));
    let obs = call(&server, &stranger, "GET", "Observation?patient=kari", None, &reason).await.json();
    assert_eq!(ids(&obs), Vec::<String>::new(), "Observations are blocked from the stranger");
    let read = call(&server, &stranger, "GET", "Condition/kari-psych", None, &reason).await;
    assert_eq!(read.status, 403);
    assert!(read.text.contains("blocked"));
    let everything = call(&server, &stranger, "GET", "Patient/kari/$everything", None, &reason).await.json();
    assert!(!ids(&everything).iter().any(|i| i == "Condition/kari-psych" || i == "Observation/kari-obs"));
    assert!(outcome_texts(&everything).contains("blocked"));
    let summary = call(&server, &stranger, "GET", "Patient/kari/$summary", None, &reason).await;
    assert_eq!(summary.status, 200, "{}", summary.text);
    assert!(
        summary.text.contains("Sperret informasjon") && !summary.text.contains("kari-psych"),
        "{}",
        summary.text
    );
    assert_eq!(
        call(&server, &stranger, "GET", "Patient/kari/$summary", None, &[]).await.status,
        403,
        "not without a reason"
    );
    server.stop().await;
}

async fn administrators_see_no_patient_data(backend: Backend) {
    let (server, _) = start(backend).await;
    let boss = sign_in(&server, "boss", "user/*.cruds", None).await;
    for (path, expected) in [
        ("Organization/hospital", 200),
        ("Patient/kari", 404),
        ("Observation/kari-obs", 404),
        ("Observation", 403),
        ("Organization?_has:Patient:organization:family=Nordmann", 200),
        ("Patient/kari/$access-log", 200),
    ] {
        let r = call(&server, &boss, "GET", path, None, &[]).await;
        assert_eq!(r.status, expected, "{path}: {}", r.text);
    }
    let created = call(
        &server,
        &boss,
        "POST",
        "Organization",
        Some(&json!({"resourceType": "Organization", "name": "Legekontoret"})),
        &[],
    )
    .await;
    assert_eq!(created.status, 201);
    server.stop().await;
}
