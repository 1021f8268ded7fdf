//! The web portal over real HTTP on both stores, as a browser without scripts uses it
//! (forms, redirects, cookies): signing in and out, sessions and forms that cannot be
//! forged, the patient's summary, donor statement and access log, health personnel's
//! patients and emergency access — and that what the pages did is what the FHIR API holds
//! and logs. `browser.rs` drives the same pages in Chromium.

use helse_test_support::{Backend, Reply, TestServer, on_both_stores};
use serde_json::{Value, json};

use super::people::{access_log_until, call, start};

const PASSWORD: &str = "correct horse battery staple";

/// A browser: no redirects followed, its cookies kept.
pub(crate) struct Browser<'s> {
    server: &'s TestServer,
    http: reqwest::Client,
    cookies: Vec<(String, String)>,
}

impl<'s> Browser<'s> {
    pub(crate) fn new(server: &'s TestServer) -> Self {
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Browser { server, http, cookies: Vec::new() }
    }

    fn keep_cookies(&mut self, r: &reqwest::Response) {
        for v in r.headers().get_all("set-cookie") {
            let v = v.to_str().unwrap();
            let (pair, attributes) = v.split_once(';').unwrap_or((v, ""));
            let (name, value) = pair.split_once('=').unwrap();
            self.cookies.retain(|(n, _)| n != name);
            if !attributes.contains("Max-Age=0") {
                self.cookies.push((name.to_owned(), value.to_owned()));
            }
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>().join("; ")
    }

    async fn finish(&mut self, r: reqwest::Response) -> Reply {
        self.keep_cookies(&r);
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        Reply { status, headers, text: r.text().await.unwrap() }
    }

    pub(crate) async fn get(&mut self, path: &str) -> Reply {
        let r = self
            .http
            .get(format!("http://{}{path}", self.server.addr))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.finish(r).await
    }

    pub(crate) async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Reply {
        let r = self
            .http
            .post(format!("http://{}{path}", self.server.addr))
            .header("cookie", self.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(form).unwrap())
            .send()
            .await
            .unwrap();
        self.finish(r).await
    }

    pub(crate) async fn sign_in(&mut self, username: &str) -> Reply {
        self.post("/portal/login", &[("username", username), ("password", PASSWORD)]).await
    }

    fn has_session(&self) -> bool {
        self.cookies.iter().any(|(n, _)| n == "helse_portal")
    }
}

/// The value of a hidden form field on a page.
fn hidden(page: &Reply, name: &str) -> String {
    let marker = format!(r#"name="{name}" value=""#);
    let at =
        page.text.find(&marker).unwrap_or_else(|| panic!("no field {name}: {}", page.text)) + marker.len();
    page.text[at..].split('"').next().unwrap().to_owned()
}

fn location(r: &Reply) -> &str {
    assert_eq!(r.status, 303, "{}", r.text);
    r.header("location").unwrap()
}

/// Names the people and gives Kari something critical to know about.
pub(crate) async fn set_up_portal_record(server: &TestServer, admin: &str) {
    let resources = [
        json!({"resourceType": "Practitioner", "id": "gp", "name": [{"family": "Pedersen", "given": ["Greta"]}]}),
        json!({"resourceType": "Flag", "id": "kari-flag", "status": "active", "code": {"text": "Smittebærer MRSA"},
            "subject": {"reference": "Patient/kari"}}),
        json!({"resourceType": "AllergyIntolerance", "id": "kari-allergy", "criticality": "high",
            "code": {"text": "Penicillin"}, "patient": {"reference": "Patient/kari"},
            "recorder": {"reference": "PractitionerRole/doc-at-hospital"}}),
        json!({"resourceType": "Immunization", "id": "kari-vaccine", "status": "completed",
            "vaccineCode": {"text": "Influensavaksine"}, "patient": {"reference": "Patient/kari"},
            "occurrenceDateTime": "2025-10-01"}),
        json!({"resourceType": "Condition", "id": "ola-diabetes",
            "code": {"text": "Diabetes type 2"}, "subject": {"reference": "Patient/ola"}}),
    ];
    for r in resources {
        let path = format!("{}/{}", r["resourceType"].as_str().unwrap(), r["id"].as_str().unwrap());
        let put = call(server, admin, "PUT", &path, Some(&r), &[]).await;
        assert!(put.status == 200 || put.status == 201, "{path}: {}", put.text);
    }
}

on_both_stores!(
    patients_sign_in_see_their_summary_and_keep_their_donor_statement,
    health_personnel_see_their_patients_and_others_only_through_emergency_access,
);

async fn patients_sign_in_see_their_summary_and_keep_their_donor_statement(backend: Backend) {
    let (server, admin) = start(backend).await;
    set_up_portal_record(&server, &admin).await;
    let mut kari = Browser::new(&server);

    // Without a session every page sends to the sign-in page.
    for path in ["/portal", "/portal/summary", "/portal/donor", "/portal/access-log", "/portal/patients"] {
        assert_eq!(location(&kari.get(path).await), "/portal/login", "{path}");
    }
    let wrong = kari.post("/portal/login", &[("username", "kari"), ("password", "nope")]).await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.text.contains("Feil brukernavn eller passord"), "{}", wrong.text);
    assert!(!kari.has_session());
    let admin_page = Browser::new(&server).sign_in("boss").await;
    assert_eq!(admin_page.status, 403, "administrators have no patient pages");

    // Signing in: a session cookie that scripts cannot read and other sites do not send.
    let signed = kari.sign_in("kari").await;
    assert_eq!(location(&signed), "/portal");
    let cookie = signed.header("set-cookie").unwrap();
    assert!(
        cookie.starts_with("helse_portal=")
            && cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Strict")
    );
    // Kari acts for her mother and her young child too: she picks whose record.
    assert_eq!(location(&kari.get("/portal/summary").await), "/portal/choose");
    let chooser = kari.get("/portal/choose").await;
    for who in ["kari", "child", "mother"] {
        assert!(chooser.text.contains(&format!(r#"value="{who}""#)), "{who}: {}", chooser.text);
    }
    assert!(!chooser.text.contains(r#"value="teen""#), "not a child over 16");
    let csrf = hidden(&chooser, "csrf");
    assert_eq!(kari.post("/portal/choose", &[("patient", "kari"), ("csrf", "forged")]).await.status, 403);
    assert_eq!(kari.post("/portal/choose", &[("patient", "teen"), ("csrf", &csrf)]).await.status, 403);
    assert_eq!(
        location(&kari.post("/portal/choose", &[("patient", "kari"), ("csrf", &csrf)]).await),
        "/portal/summary"
    );

    // Her summary: critical information first, each entry with who recorded it.
    let summary = kari.get("/portal/summary").await;
    assert_eq!(summary.status, 200, "{}", summary.text);
    assert_eq!(summary.header("x-frame-options"), Some("DENY"));
    assert_eq!(summary.header("cache-control"), Some("no-store"));
    assert!(summary.header("content-security-policy").unwrap().contains("script-src 'none'"));
    assert!(!summary.text.contains("<script"), "no scripts");
    let text = &summary.text;
    let (alerts, allergies, vaccines) = (
        text.find("Smittebærer MRSA").unwrap(),
        text.find("Penicillin").unwrap(),
        text.find("Influensavaksine").unwrap(),
    );
    assert!(alerts < vaccines && allergies < vaccines, "critical first: {text}");
    assert!(text.contains("Registrert av Sykehuset"), "{text}");
    assert!(text.contains("05058012345"), "her national identity number");
    // In English, remembered.
    let english = kari.get("/portal/summary?lang=en").await;
    assert!(english.text.contains("<h1>My summary</h1>") && english.text.contains(r#"lang="en""#));
    assert!(english.header("set-cookie").unwrap().starts_with("helse_lang=en"));
    assert!(kari.get("/portal/donor").await.text.contains("You have no current statement"));

    // Registering a donor statement: a form from elsewhere is refused and stores nothing; a
    // form that says too little is explained.
    let donor_page = kari.get("/portal/donor").await;
    let (csrf, version) = (hidden(&donor_page, "csrf"), hidden(&donor_page, "version"));
    assert_eq!(version, "", "nothing registered yet");
    let forged = kari.post("/portal/donor", &[("action", "save"), ("statement", "not-willing")]).await;
    assert_eq!(forged.status, 403);
    let unclear = kari
        .post(
            "/portal/donor",
            &[("csrf", &csrf), ("action", "save"), ("statement", "willing-with-restrictions")],
        )
        .await;
    assert_eq!(unclear.status, 422);
    assert!(unclear.text.contains("Tick the organs"), "{}", unclear.text);
    let consents = |s: &'static str| {
        format!(
            "Consent?patient=kari&category=https://fhir.helse.example/CodeSystem/consent-kind|organ-donation&status={s}"
        )
    };
    assert_eq!(total(&call(&server, &admin, "GET", &consents("active,inactive"), None, &[]).await), 0);

    let saved = kari
        .post(
            "/portal/donor",
            &[
                ("csrf", &csrf),
                ("version", ""),
                ("action", "save"),
                ("statement", "willing-with-restrictions"),
                ("organ", "64033007"),
                ("organ", "28726007"),
                ("kin1", "Ola Nordmann"),
                ("kin2", ""),
            ],
        )
        .await;
    assert_eq!(location(&saved), "/portal/donor?saved=1");
    let page = kari.get("/portal/donor?saved=1").await;
    assert!(page.text.contains("Your statement is saved"), "{}", page.text);
    assert!(page.text.contains("I want to be an organ donor, with exceptions — Except: Kidneys, Corneas. Next of kin informed: Ola Nordmann."), "{}", page.text);
    // What the API holds is a proper donor statement, made by her.
    let stored = call(&server, &admin, "GET", &consents("active"), None, &[]).await.json();
    let statement = &stored["entry"][0]["resource"];
    assert_eq!(statement["performer"], json!([{"reference": "Patient/kari"}]));
    assert_eq!(statement["provision"]["code"][0]["coding"][0]["code"], "willing-with-restrictions");
    let id = statement["id"].as_str().unwrap().to_owned();

    // Changing it on a page older than the stored statement is caught, not overwritten.
    let change = |version: String, csrf: String| async move {
        vec![("csrf", csrf), ("version", version), ("action", "save".into()), ("statement", "willing".into())]
    };
    let form = change("0".into(), csrf.clone()).await;
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let stale = kari.post("/portal/donor", &pairs).await;
    assert_eq!(stale.status, 409, "{}", stale.text);
    assert!(stale.text.contains("changed elsewhere"));
    let version = hidden(&kari.get("/portal/donor").await, "version");
    let form = change(version, csrf.clone()).await;
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(location(&kari.post("/portal/donor", &pairs).await), "/portal/donor?saved=1");
    // Withdrawing it.
    let version = hidden(&kari.get("/portal/donor").await, "version");
    let withdrawn =
        kari.post("/portal/donor", &[("csrf", &csrf), ("version", &version), ("action", "withdraw")]).await;
    assert_eq!(location(&withdrawn), "/portal/donor?saved=1");
    let page = kari.get("/portal/donor").await;
    assert!(page.text.contains("You have no current statement"));
    let history_rows = page.text.matches("<tr><td>").count();
    assert_eq!(history_rows, 3, "every statement she made is listed: {}", page.text);
    assert!(page.text.contains("withdrawn"));
    let versions = call(&server, &admin, "GET", &format!("Consent/{id}/_history"), None, &[]).await.json();
    assert_eq!(versions["total"], 3, "one statement, changed twice: {versions}");
    assert_eq!(versions["entry"][0]["resource"]["status"], "inactive");

    // Her doctor looks at her summary; she sees that in her log, named.
    let mut gp = Browser::new(&server);
    assert_eq!(location(&gp.sign_in("gp").await), "/portal");
    assert_eq!(gp.get("/portal/patients/kari").await.status, 200);
    access_log_until(&server, &admin, "kari", |log| log.to_string().contains("Practitioner/gp")).await;
    let log = kari.get("/portal/access-log").await;
    assert_eq!(log.status, 200);
    assert!(log.text.contains("Greta Pedersen (health personnel)"), "{}", log.text);
    assert!(log.text.contains("Opened the summary"));
    assert!(log.text.contains("<td>You</td>"), "her own views are listed as hers");

    // Signing out ends the session in the store: the old cookie opens nothing.
    let old_cookie = kari.cookie_header();
    let csrf = hidden(&kari.get("/portal/summary").await, "csrf");
    assert_eq!(kari.post("/portal/logout", &[("csrf", "forged")]).await.status, 403);
    assert_eq!(location(&kari.post("/portal/logout", &[("csrf", &csrf)]).await), "/portal/login");
    assert!(!kari.has_session());
    let replay = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("http://{}/portal/summary", server.addr))
        .header("cookie", old_cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 303);
    assert_eq!(replay.headers()["location"], "/portal/login");
}

fn total(r: &Reply) -> usize {
    assert_eq!(r.status, 200, "{}", r.text);
    r.json()["entry"].as_array().map_or(0, Vec::len)
}

async fn health_personnel_see_their_patients_and_others_only_through_emergency_access(backend: Backend) {
    let (server, admin) = start(backend).await;
    set_up_portal_record(&server, &admin).await;
    let mut gp = Browser::new(&server);
    gp.sign_in("gp").await;
    assert_eq!(location(&gp.get("/portal").await), "/portal/patients");
    // The patients in my care: Kari (on my list), not Ola.
    let mine = gp.get("/portal/patients").await;
    assert!(mine.text.contains(r#"href="/portal/patients/kari""#), "{}", mine.text);
    assert!(!mine.text.contains("/portal/patients/ola"));
    let found = gp.get("/portal/patients?fnr=05058012345").await;
    assert!(found.text.contains(r#"href="/portal/patients/kari""#));
    // Her summary, critical information first and marked.
    let summary = gp.get("/portal/patients/kari?lang=en").await;
    assert_eq!(summary.status, 200);
    let first_section = summary.text.find("<section").unwrap();
    assert!(
        summary.text[first_section..].starts_with(r#"<section class="critical" id="s-104605-1""#),
        "{}",
        summary.text
    );
    assert!(summary.text.contains("Penicillin — high criticality"));
    // What she blocked from everyone is not there.
    assert!(!summary.text.contains("35489007"));
    // Patient pages are not for health personnel.
    assert_eq!(location(&gp.get("/portal/donor").await), "/portal");

    // Ola is not in my care: refused, with the way in an emergency.
    let refused = gp.get("/portal/patients/ola").await;
    assert_eq!(refused.status, 403);
    assert!(refused.text.contains(r#"action="/portal/emergency""#));
    assert!(!refused.text.contains("Diabetes"));
    let nobody = gp.get("/portal/patients?fnr=03037012345").await;
    assert!(nobody.text.contains("No patient with this number is in your care"), "{}", nobody.text);
    let csrf = hidden(&nobody, "csrf");
    let no_reason =
        gp.post("/portal/emergency", &[("csrf", &csrf), ("fnr", "03037012345"), ("reason", "  ")]).await;
    assert_eq!(no_reason.status, 422);
    assert!(!no_reason.text.contains("Diabetes"));
    let forged =
        gp.post("/portal/emergency", &[("fnr", "03037012345"), ("reason", "Bevisstløs i mottak")]).await;
    assert_eq!(forged.status, 403);
    let opened = gp
        .post(
            "/portal/emergency",
            &[("csrf", &csrf), ("fnr", "03037012345"), ("reason", "Bevisstløs i mottak")],
        )
        .await;
    assert_eq!(opened.status, 200, "{}", opened.text);
    assert!(opened.text.contains("Diabetes type 2"));
    assert!(opened.text.contains("Opened with emergency access"));
    assert!(opened.text.contains("Bevisstløs i mottak"));
    // …logged with the reason, for Ola to see, and queued for review.
    let log =
        access_log_until(&server, &admin, "ola", |log| log.to_string().contains("Bevisstløs i mottak")).await;
    let emergency_entries: Vec<&Value> = log["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["resource"]["agent"][0]["purposeOfUse"][0]["coding"][0]["code"] == "ETREAT")
        .collect();
    assert!(emergency_entries.len() >= 2, "the lookup and the summary: {log}");
    assert!(
        emergency_entries
            .iter()
            .all(|e| e["resource"]["agent"][1]["who"]["identifier"]["value"] == "helse-portal")
    );
    let queued = helse_server::emergency::list(server.store.as_ref(), false).await.unwrap();
    assert!(queued.iter().any(|(_, e)| e.reason == "Bevisstløs i mottak"), "{queued:?}");
}
