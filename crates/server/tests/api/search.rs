//! Search semantics, table-driven from the specification's rules, on both stores.

use serde_json::{Value, json};

use helse_test_support::{Backend, TestServer, on_both_stores};

on_both_stores!(
    search_semantics,
    includes_chains_sorting_and_paging,
    compartments_and_everything,
    pages_stay_put_while_writes_happen,
    sorted_pages_stay_put_while_writes_happen,
    composite_parameters_match_within_one_element,
    chains_reach_into_contained_resources,
    locations_near_a_point,
    token_terminology_modifiers,
);

/// `:in`/`:not-in` against a ValueSet stored on the server, `:below`/`:above` against a
/// CodeSystem's hierarchy stored on the server.
async fn token_terminology_modifiers(backend: Backend) {
    let s = TestServer::start(backend).await;
    let sys = "http://example.org/cs/findings";
    let finding = |id: &str, code: &str| {
        json!({"resourceType": "Observation", "id": id, "status": "final",
               "code": {"coding": [{"system": sys, "code": code}]}})
    };
    load(
        &s,
        &[
            json!({"resourceType": "CodeSystem", "id": "findings", "url": sys, "status": "active", "content": "complete",
                   "concept": [{"code": "heart", "concept": [{"code": "rhythm", "concept": [{"code": "af"}]}, {"code": "failure"}]},
                               {"code": "lung"}]}),
            json!({"resourceType": "ValueSet", "id": "cardiac", "url": "http://example.org/vs/cardiac", "status": "active",
                   "compose": {"include": [{"system": sys, "concept": [{"code": "af"}, {"code": "failure"}]}]}}),
            json!({"resourceType": "ValueSet", "id": "all-findings", "url": "http://example.org/vs/all", "status": "active",
                   "compose": {"include": [{"system": sys}]}}),
            json!({"resourceType": "ValueSet", "id": "by-filter", "url": "http://example.org/vs/filter", "status": "active",
                   "compose": {"include": [{"system": sys, "filter": [{"property": "concept", "op": "is-a", "value": "heart"}]}]}}),
            finding("o-af", "af"),
            finding("o-failure", "failure"),
            finding("o-rhythm", "rhythm"),
            finding("o-lung", "lung"),
            json!({"resourceType": "Observation", "id": "o-other", "status": "final",
                   "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]}}),
        ],
    )
    .await;
    let cases: &[(&str, &[&str])] = &[
        ("code:in=http://example.org/vs/cardiac", &["o-af", "o-failure"]),
        ("code:in=ValueSet/cardiac", &["o-af", "o-failure"]),
        ("code:not-in=http://example.org/vs/cardiac", &["o-lung", "o-other", "o-rhythm"]),
        ("code:in=http://example.org/vs/all", &["o-af", "o-failure", "o-lung", "o-rhythm"]),
        (
            "code:in=http://example.org/vs/cardiac,http://example.org/vs/all",
            &["o-af", "o-failure", "o-lung", "o-rhythm"],
        ),
        ("code:below=http://example.org/cs/findings|rhythm", &["o-af", "o-rhythm"]),
        ("code:below=http://example.org/cs/findings|heart", &["o-af", "o-failure", "o-rhythm"]),
        ("code:above=http://example.org/cs/findings|af", &["o-af", "o-rhythm"]),
        (
            "code:below=http://example.org/cs/findings|lung&code:not-in=http://example.org/vs/cardiac",
            &["o-lung"],
        ),
    ];
    for (query, expected) in cases {
        assert_eq!(ids(&s, &format!("Observation?{query}")).await, *expected, "{query}");
    }
    // What cannot be answered is refused, never answered wider than asked.
    assert_eq!(s.get("Observation?code:in=http://example.org/vs/missing").await.status, 400);
    assert_eq!(s.get("Observation?code:below=http://unknown|x").await.status, 400);
    assert_eq!(s.get("Observation?code:below=af").await.status, 400);
    let r = s.get("Observation?code:in=http://example.org/vs/filter").await;
    assert_eq!((r.status, r.issue_code()), (400, "not-supported".to_owned()), "{}", r.text);
    s.stop().await;
}

/// Location `near`: a box of ±distance around the point (km by default; m and miles too).
async fn locations_near_a_point(backend: Backend) {
    let s = TestServer::start(backend).await;
    let at = |id: &str, lat: f64, long: f64| json!({"resourceType": "Location", "id": id, "position": {"latitude": lat, "longitude": long}});
    load(
        &s,
        &[
            at("haukeland", 60.3737, 5.3571),       // Bergen
            at("bergen-sentrum", 60.3913, 5.3221),  // 2.7 km from Haukeland
            at("voss", 60.6283, 6.4140),            // about 65 km
            at("rikshospitalet", 59.9493, 10.7134), // Oslo, about 300 km
            json!({"resourceType": "Location", "id": "nowhere", "name": "no position"}),
        ],
    )
    .await;
    let cases: &[(&str, &[&str])] = &[
        ("near=60.3737|5.3571|5|km", &["bergen-sentrum", "haukeland"]),
        ("near=60.3737|5.3571|1000|m", &["haukeland"]),
        ("near=60.3737|5.3571|100", &["bergen-sentrum", "haukeland", "voss"]),
        ("near=60.3737|5.3571|50|[mi_i]", &["bergen-sentrum", "haukeland", "voss"]),
        ("near=60.3737|5.3571|400|km", &["bergen-sentrum", "haukeland", "rikshospitalet", "voss"]),
        ("near=60.3737|5.3571", &["bergen-sentrum", "haukeland"]),
        ("near=59.95|10.71|2|km", &["rikshospitalet"]),
    ];
    for (query, expected) in cases {
        assert_eq!(ids(&s, &format!("Location?{query}")).await, *expected, "{query}");
    }
    for bad in ["near=91|5|1|km", "near=60|x|1", "near=60|5|1|parsec", "near=60"] {
        assert_eq!(s.get(&format!("Location?{bad}")).await.status, 400, "{bad}");
    }
    s.stop().await;
}

async fn load(s: &TestServer, resources: &[Value]) {
    for r in resources {
        let path = format!("{}/{}", r["resourceType"].as_str().unwrap(), r["id"].as_str().unwrap());
        let put = s.put(&path, r).await;
        assert!(put.status == 201 || put.status == 200, "{path}: {}", put.text);
    }
}

/// The ids a search returns (matches only), sorted unless the query sorts.
async fn ids(s: &TestServer, query: &str) -> Vec<String> {
    let r = s.get(query).await;
    assert_eq!(r.status, 200, "{query}: {}", r.text);
    let bundle = r.json();
    let mut ids: Vec<String> = bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["search"]["mode"] == "match")
        .map(|e| e["resource"]["id"].as_str().unwrap().to_owned())
        .collect();
    if !query.contains("_sort") {
        ids.sort();
    }
    ids
}

fn population() -> Vec<Value> {
    vec![
        json!({"resourceType": "Organization", "id": "legekontor", "name": "Bergen Legekontor"}),
        json!({"resourceType": "Practitioner", "id": "gp", "name": [{"family": "Lege"}]}),
        json!({"resourceType": "Patient", "id": "kari", "active": true, "gender": "female", "birthDate": "1980-05-17",
               "identifier": [{"system": "urn:oid:2.16.578.1.12.4.1.4.1", "value": "17058012345",
                               "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "NI"}]}}],
               "name": [{"family": "Ødegård", "given": ["Kari"]}], "managingOrganization": {"reference": "Organization/legekontor"},
               "generalPractitioner": [{"reference": "Practitioner/gp"}], "address": [{"city": "Bergen"}]}),
        json!({"resourceType": "Patient", "id": "ola", "active": false, "gender": "male", "birthDate": "1975",
               "identifier": [{"system": "urn:oid:2.16.578.1.12.4.1.4.2", "value": "41017512345"}],
               "name": [{"family": "Odegaard", "given": ["Ola", "Nils"]}], "address": [{"city": "Tromsø"}],
               "generalPractitioner": [{"identifier": {"system": "urn:oid:2.16.578.1.12.4.1.4.4", "value": "9144889"}}]}),
        json!({"resourceType": "Patient", "id": "per", "gender": "male", "name": [{"family": "Hansen"}],
               "deceasedDateTime": "2020-02-01T10:00:00+01:00"}),
        json!({"resourceType": "Observation", "id": "hr1", "status": "final",
               "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}], "text": "Puls"},
               "subject": {"reference": "Patient/kari"}, "effectiveDateTime": "2024-03-01T10:00:00Z",
               "valueQuantity": {"value": 72, "system": "http://unitsofmeasure.org", "code": "/min"}}),
        json!({"resourceType": "Observation", "id": "hr2", "status": "final",
               "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
               "subject": {"reference": "Patient/ola"}, "effectiveDateTime": "2024-03-02T23:30:00-02:00",
               "valueQuantity": {"value": 101.5, "system": "http://unitsofmeasure.org", "code": "/min"}}),
        json!({"resourceType": "Observation", "id": "bw", "status": "amended",
               "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
               "subject": {"reference": "Patient/kari"}, "effectivePeriod": {"start": "2023-01-01", "end": "2023-06-30"},
               "valueQuantity": {"value": 64.0, "system": "http://unitsofmeasure.org", "code": "kg"}}),
        json!({"resourceType": "Observation", "id": "note", "status": "preliminary", "code": {"text": "Notat"},
               "subject": {"reference": "Patient/per"}}),
    ]
}

/// (query, expected ids) — each written from the specification's description.
const CASES: &[(&str, &[&str])] = &[
    // string: case- and accent-insensitive prefix; :exact; :contains
    ("Patient?family=odeg", &["kari", "ola"]),
    ("Patient?family=ØDEG", &["kari", "ola"]),
    ("Patient?family:exact=Ødegård", &["kari"]),
    ("Patient?family:exact=ødegård", &[]),
    ("Patient?family:contains=gaar", &["ola"]),
    ("Patient?name=nils", &["ola"]),
    ("Patient?address-city=tromso", &["ola"]),
    // token: code, system|code, |code, system|, :not, :text, booleans
    ("Patient?gender=male", &["ola", "per"]),
    ("Patient?gender=male,female", &["kari", "ola", "per"]),
    ("Patient?gender:not=male", &["kari"]),
    ("Patient?identifier=urn:oid:2.16.578.1.12.4.1.4.1|17058012345", &["kari"]),
    ("Patient?identifier=urn:oid:2.16.578.1.12.4.1.4.2|", &["ola"]),
    ("Patient?identifier=|17058012345", &[]),
    ("Patient?identifier=17058012345", &["kari"]),
    ("Patient?active=true", &["kari"]),
    ("Patient?identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|NI|17058012345", &["kari"]),
    ("Patient?identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|MR|17058012345", &[]),
    ("Patient?general-practitioner:identifier=urn:oid:2.16.578.1.12.4.1.4.4|9144889", &["ola"]),
    ("Observation?code=http://loinc.org|8867-4", &["hr1", "hr2"]),
    ("Observation?code:text=puls", &["hr1"]),
    ("Observation?code:text=notat", &["note"]),
    ("Observation?status=final,amended&code=8867-4", &["hr1", "hr2"]),
    // date: precision-aware ranges and every prefix
    ("Patient?birthdate=1980", &["kari"]),
    ("Patient?birthdate=1980-05", &["kari"]),
    ("Patient?birthdate=1980-05-17", &["kari"]),
    ("Patient?birthdate=1975-06-01", &[]),
    ("Patient?birthdate=lt1980", &["ola"]),
    ("Patient?birthdate=ge1976", &["kari"]),
    ("Patient?birthdate=le1975-12-31", &["ola"]),
    ("Patient?birthdate=ne1980", &["ola"]),
    ("Patient?birthdate=sa1975", &["kari"]),
    ("Patient?birthdate=eb1980", &["ola"]),
    ("Patient?birthdate=ap1975-06", &["ola"]),
    // timezone: 23:30 at -02:00 is 01:30Z on the 3rd
    ("Observation?date=2024-03-03", &["hr2"]),
    ("Observation?date=2024-03-02", &[]),
    ("Observation?date=2023-03", &[]),
    ("Observation?date=ge2023-03-01&date=le2023-04-01", &["bw"]),
    ("Observation?date=gt2024-03-01T10:00:00Z", &["hr2"]),
    ("Patient?death-date=2020-02-01T09:00:00Z", &["per"]),
    // quantity and number: prefixes and implicit precision
    ("Observation?value-quantity=72", &["hr1"]),
    ("Observation?value-quantity=gt100|http://unitsofmeasure.org|/min", &["hr2"]),
    ("Observation?value-quantity=le72|http://unitsofmeasure.org|/min", &["hr1"]),
    ("Observation?value-quantity=64|http://unitsofmeasure.org|kg", &["bw"]),
    ("Observation?value-quantity=101", &[]),
    ("Observation?value-quantity=1e2", &["hr2"]),
    // reference: Type/id, bare id, :Type, absolute URL of ours is not required here
    ("Observation?subject=Patient/kari", &["bw", "hr1"]),
    ("Observation?patient=kari", &["bw", "hr1"]),
    ("Observation?subject:Patient=ola", &["hr2"]),
    ("Patient?general-practitioner=Practitioner/gp", &["kari"]),
    // :missing on every type
    ("Patient?birthdate:missing=true", &["per"]),
    ("Patient?birthdate:missing=false", &["kari", "ola"]),
    ("Patient?general-practitioner:missing=false", &["kari"]),
    ("Observation?value-quantity:missing=true", &["note"]),
    // chains and reverse chains
    ("Observation?subject:Patient.gender=female", &["bw", "hr1"]),
    ("Observation?patient.organization.name=bergen", &["bw", "hr1"]),
    ("Patient?_has:Observation:patient:code=29463-7", &["kari"]),
    ("Patient?_has:Observation:subject:status=preliminary", &["per"]),
    // _id and _lastUpdated
    ("Patient?_id=kari,per", &["kari", "per"]),
    ("Patient?_id:not=kari", &["ola", "per"]),
    ("Patient?_id:missing=true", &[]),
    ("Patient?_id:missing=false", &["kari", "ola", "per"]),
    ("Observation?subject:Patient._id=ola", &["hr2"]),
    ("Patient?_has:Observation:subject:_id=hr2", &["ola"]),
    ("Patient?_lastUpdated=gt2000-01-01", &["kari", "ola", "per"]),
    ("Patient?_lastUpdated=lt2000-01-01", &[]),
];

async fn search_semantics(backend: Backend) {
    let s = TestServer::start(backend).await;
    load(&s, &population()).await;
    let mut failures = Vec::new();
    for (query, expected) in CASES {
        let got = ids(&s, query).await;
        if got != *expected {
            failures.push(format!("{query}: got {got:?}, want {expected:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
    println!("{backend:?}: {} search cases pass", CASES.len());

    // Unknown parameters: a warning, or 400 under strict handling.
    let lenient = s.get("Patient?shoe-size=42").await.json();
    assert_eq!(lenient["total"], 3);
    let outcome =
        lenient["entry"].as_array().unwrap().iter().find(|e| e["search"]["mode"] == "outcome").unwrap();
    assert_eq!(outcome["resource"]["issue"][0]["severity"], "warning");
    let strict = s.send("GET", "Patient?shoe-size=42", None, &[("prefer", "handling=strict")]).await;
    assert_eq!(strict.status, 400);
    assert_eq!(s.get("Patient?birthdate=nonsense").await.status, 400);
    // POST _search reads form parameters like GET.
    let post = s
        .client
        .post(s.url("Patient/_search"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("gender=female")
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 200);
    let post: Value = post.json().await.unwrap();
    assert_eq!(post["total"], 1);
    s.stop().await;
}

async fn includes_chains_sorting_and_paging(backend: Backend) {
    let s = TestServer::start(backend).await;
    load(&s, &population()).await;
    let bundle = s.get("Observation?code=8867-4&_include=Observation:subject").await.json();
    let modes: Vec<(String, String)> = bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["search"]["mode"].as_str().unwrap().to_owned(),
                e["resource"]["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(modes.iter().filter(|(m, _)| m == "include").count(), 2, "{modes:?}");
    assert_eq!(bundle["total"], 2, "included resources do not count");

    let iterate = s
        .get("Observation?_id=hr1&_include=Observation:subject&_include:iterate=Patient:organization")
        .await
        .json();
    let included: Vec<&str> =
        iterate["entry"].as_array().unwrap().iter().map(|e| e["resource"]["id"].as_str().unwrap()).collect();
    assert!(included.contains(&"legekontor"), "{included:?}");

    let rev = s.get("Patient?_id=kari&_revinclude=Observation:subject").await.json();
    assert_eq!(rev["entry"].as_array().unwrap().len(), 3);

    assert_eq!(ids(&s, "Patient?_sort=birthdate").await, ["ola", "kari", "per"].map(String::from));
    assert_eq!(ids(&s, "Patient?_sort=-birthdate").await[0], "kari");
    assert_eq!(ids(&s, "Observation?_sort=-date,status").await[0], "hr2");

    // Paging: next links walk every match once.
    let mut seen = Vec::new();
    let mut url = "Observation?_count=2&_sort=status".to_owned();
    loop {
        let page = s.get(&url).await.json();
        assert_eq!(page["total"], 4);
        seen.extend(
            page["entry"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["resource"]["id"].as_str().unwrap().to_owned()),
        );
        match page["link"].as_array().unwrap().iter().find(|l| l["relation"] == "next") {
            Some(next) => url = next["url"].as_str().unwrap().split("/fhir/").nth(1).unwrap().to_owned(),
            None => break,
        }
    }
    seen.sort();
    assert_eq!(seen, ["bw", "hr1", "hr2", "note"]);

    let count_only = s.get("Observation?_summary=count").await.json();
    assert_eq!(count_only["total"], 4);
    assert!(count_only.get("entry").is_none());
    assert!(s.get("Observation?_total=none").await.json().get("total").is_none());
    s.stop().await;
}

async fn compartments_and_everything(backend: Backend) {
    let s = TestServer::start(backend).await;
    load(&s, &population()).await;
    // Compartment search uses the official CompartmentDefinition's parameters.
    assert_eq!(ids(&s, "Patient/kari/Observation").await, ["bw", "hr1"]);
    assert_eq!(ids(&s, "Patient/kari/Observation?code=8867-4").await, ["hr1"]);
    assert_eq!(ids(&s, "Patient/per/Observation").await, ["note"]);
    assert_eq!(ids(&s, "Patient/nobody/Observation").await, Vec::<String>::new());
    assert_eq!(
        s.get("Patient/kari/Organization").await.status,
        400,
        "Organization is not in the Patient compartment"
    );
    assert_eq!(ids(&s, "Practitioner/gp/Patient").await, ["kari"]);

    let all = s.get("Patient/kari/$everything").await.json();
    let mut got: Vec<&str> =
        all["entry"].as_array().unwrap().iter().map(|e| e["resource"]["id"].as_str().unwrap()).collect();
    got.sort();
    assert_eq!(got, ["bw", "hr1", "kari"]);
    assert_eq!(all["total"], 3);
    let only_obs = s.get("Patient/kari/$everything?_type=Observation").await.json();
    assert_eq!(only_obs["total"], 2);
    let paged = s.get("Patient/kari/$everything?_count=2").await.json();
    assert_eq!(paged["entry"].as_array().unwrap().len(), 2);
    assert!(paged["link"].as_array().unwrap().iter().any(|l| l["relation"] == "next"));
    assert_eq!(s.get("Patient/nobody/$everything").await.status, 404);
    s.stop().await;
}

/// Every page of a sorted search, following `next`.
async fn walk(s: &TestServer, first: &str) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut url = first.to_owned();
    loop {
        let page = s.get(&url).await.json();
        pages.push(page_ids(&page));
        match link(&page, "next") {
            Some(next) => url = next,
            None => return pages,
        }
    }
}

async fn sorted_pages_stay_put_while_writes_happen(backend: Backend) {
    let s = TestServer::start(backend).await;
    // Families with ties, and two patients without one (they sort last either way).
    let families = ["Berg", "Aas", "Dahl", "Berg", "Eide", "Carlsen", "Aas", "Berg", "", ""];
    let patients: Vec<Value> = families
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let mut p = json!({"resourceType": "Patient", "id": format!("p{i}"), "birthDate": format!("19{:02}-01-01", 50 + (i * 7) % 10)});
            if !f.is_empty() {
                p["name"] = json!([{"family": f}]);
            }
            p
        })
        .collect();
    load(&s, &patients).await;
    for order in ["family", "-family", "birthdate,-family", "-birthdate,family"] {
        let whole = ids(&s, &format!("Patient?_sort={order}&_count=100")).await;
        assert_eq!(whole.len(), 10);
        let paged: Vec<String> = walk(&s, &format!("Patient?_sort={order}&_count=3")).await.concat();
        assert_eq!(paged, whole, "_sort={order}: pages in order, each patient once");
    }
    let whole = ids(&s, "Patient?_sort=family&_count=100").await;
    assert_eq!(&whole[..3], ["p1", "p6", "p0"], "ties broken by creation order");
    assert_eq!(&whole[8..], ["p8", "p9"], "no family: last");
    let descending = ids(&s, "Patient?_sort=-family&_count=100").await;
    assert_eq!(&descending[..2], ["p4", "p2"]);
    assert_eq!(&descending[8..], ["p8", "p9"], "no family: last in descending order too");

    // Page 1, then writes: the page's last patient deleted, a new patient sorting before it
    // created, one on a later page renamed to sort first. Page 2 is still what followed page 1.
    let first = s.get("Patient?_sort=family&_count=3").await.json();
    assert_eq!(page_ids(&first), ["p1", "p6", "p0"]);
    let next = link(&first, "next").unwrap();
    assert!(matches!(s.send("DELETE", "Patient/p0", None, &[]).await.status, 200 | 204));
    s.put("Patient/new", &json!({"resourceType": "Patient", "id": "new", "name": [{"family": "Aaberg"}]}))
        .await;
    s.put("Patient/p4", &json!({"resourceType": "Patient", "id": "p4", "name": [{"family": "Aa"}]})).await;
    let second = s.get(&next).await.json();
    assert_eq!(page_ids(&second), ["p3", "p7", "p5"], "the Bergs after p0, then Carlsen");
    // Walking back from page 2 gives the three now just before it.
    let previous = s.get(&link(&second, "previous").unwrap()).await.json();
    assert_eq!(page_ids(&previous), ["new", "p1", "p6"]);
    // A cursor is the server's own; anything else is a clear error.
    assert_eq!(s.get("Patient?_sort=family&_after=not-a-cursor").await.status, 400);
    s.stop().await;
}

fn link(bundle: &Value, relation: &str) -> Option<String> {
    bundle["link"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["relation"] == relation)
        .map(|l| l["url"].as_str().unwrap().split("/fhir/").nth(1).unwrap().to_owned())
}

fn page_ids(bundle: &Value) -> Vec<String> {
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e["resource"]["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn pages_stay_put_while_writes_happen(backend: Backend) {
    let s = TestServer::start(backend).await;
    let basics: Vec<Value> = (0..7)
        .map(|i| json!({"resourceType": "Basic", "id": format!("b{i}"), "code": {"text": "paging"}}))
        .collect();
    load(&s, &basics).await;
    let mut seen = Vec::new();
    let mut url = "Basic?code:text=paging&_count=2".to_owned();
    let mut pages = Vec::new();
    loop {
        let page = s.get(&url).await.json();
        seen.extend(page_ids(&page));
        pages.push(url.clone());
        // Between pages: update a resource already seen, create a new one, delete an unseen one.
        s.put("Basic/b0", &json!({"resourceType": "Basic", "id": "b0", "code": {"text": "paging"}})).await;
        s.post("Basic", &json!({"resourceType": "Basic", "code": {"text": "other"}})).await;
        match link(&page, "next") {
            Some(next) => url = next,
            None => break,
        }
    }
    assert_eq!(seen, ["b0", "b1", "b2", "b3", "b4", "b5", "b6"], "every resource once, in creation order");
    // Walking back from the last page with `previous` gives the pages before it.
    let last = s.get(&pages[pages.len() - 1]).await.json();
    let previous = s.get(&link(&last, "previous").unwrap()).await.json();
    assert_eq!(page_ids(&previous), ["b4", "b5"]);
    assert!(link(&s.get(&pages[0]).await.json(), "previous").is_none(), "the first page has no previous");
    s.stop().await;
}

async fn composite_parameters_match_within_one_element(backend: Backend) {
    let s = TestServer::start(backend).await;
    let quantity = |v: u32| json!({"value": v, "system": "http://unitsofmeasure.org", "code": "mm[Hg]"});
    let bp = |id: &str, systolic: u32, diastolic: u32| {
        json!({"resourceType": "Observation", "id": id, "status": "final",
               "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
               "component": [
                   {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]}, "valueQuantity": quantity(systolic)},
                   {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]}, "valueQuantity": quantity(diastolic)}]})
    };
    load(&s, &[bp("high", 160, 95), bp("normal", 118, 76)]).await;
    let cases: &[(&str, &[&str])] = &[
        ("Observation?component-code-value-quantity=http://loinc.org|8480-6$gt140", &["high"]),
        ("Observation?component-code-value-quantity=8480-6$lt140", &["normal"]),
        ("Observation?component-code-value-quantity=8462-4$ge90", &["high"]),
        // 160 belongs to the systolic component: paired with the diastolic code it must not match.
        ("Observation?component-code-value-quantity=8462-4$gt140", &[]),
        ("Observation?component-code-value-quantity=8480-6$gt140,8480-6$lt120", &["high", "normal"]),
        ("Observation?combo-code-value-quantity=8462-4$76", &["normal"]),
    ];
    for (query, expected) in cases {
        assert_eq!(ids(&s, query).await, *expected, "{query}");
    }
    assert_eq!(
        s.get("Observation?component-code-value-quantity=8480-6").await.status,
        400,
        "both parts are required"
    );
    s.stop().await;
}

async fn chains_reach_into_contained_resources(backend: Backend) {
    let s = TestServer::start(backend).await;
    let obs = json!({"resourceType": "Observation", "id": "with-contained", "status": "final", "code": {"text": "x"},
        "contained": [{"resourceType": "Patient", "id": "p1", "name": [{"family": "Innebygd"}], "gender": "other"}],
        "subject": {"reference": "#p1"}});
    load(&s, &[obs, json!({"resourceType": "Patient", "id": "outside", "name": [{"family": "Innebygd"}]}),
        json!({"resourceType": "Observation", "id": "with-reference", "status": "final", "code": {"text": "x"},
               "subject": {"reference": "Patient/outside"}})]).await;
    assert_eq!(
        ids(&s, "Observation?subject:Patient.family=innebygd").await,
        ["with-contained", "with-reference"]
    );
    assert_eq!(ids(&s, "Observation?subject.gender=other").await, ["with-contained"]);
    assert_eq!(ids(&s, "Observation?patient.family=innebygd").await, ["with-contained", "with-reference"]);
    assert_eq!(ids(&s, "Observation?subject:Patient.family=nobody").await, Vec::<String>::new());
    s.stop().await;
}
