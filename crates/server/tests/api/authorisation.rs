//! SMART on FHIR authorisation over real HTTP: the token endpoint (client secret and signed
//! assertion), tokens refused for every way they can be wrong, and a matrix of scopes ×
//! interactions, including the indirect paths (`_include`, chains, `_has`, `$everything`,
//! history, batch, transaction, `$export`) through which data outside a grant could leak.

use helse_auth::clients::hash_secret;
use helse_auth::{AccessClaims, Client};
use helse_fhir_r4::Instant;
use helse_test_support::{Backend, Reply, TestServer, on_both_stores};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

/// Test keys (P-384), made for these tests and used nowhere else.
const CLIENT_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIG2AgEAMBAGByqGSM49AgEGBSuBBAAiBIGeMIGbAgEBBDCZcYK79PYGB148mNaU
sb+NtuLVL3QMg2qhjj+eFzhgDGFq4ykX6wv1sAyiYJuMJs6hZANiAASsktHigd8u
mtHsk2GuIfkkhVzLS3+ndDB1AOXj7e4fXKDoqGMLhd+RxB8D3/TTzFODtPSA9fG1
F3zCD8qp35tn6LGWYY9JeoXRztVY5FDAmzBzsYrIj6DS50MAp1yH52M=
-----END PRIVATE KEY-----
";
const CLIENT_KEY_X: &str = "rJLR4oHfLprR7JNhriH5JIVcy0t_p3QwdQDl4-3uH1yg6KhjC4XfkcQfA9_008xT";
const CLIENT_KEY_Y: &str = "g7T0gPXxtRd8wg_Kqd-bZ-ixlmGPSXqF0c7VWORQwJswc7GKyI-g0udDAKdch-dj";
const OTHER_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIG2AgEAMBAGByqGSM49AgEGBSuBBAAiBIGeMIGbAgEBBDBl/4s5CNoESc9nYQzA
ZDPmY5scp6uDpP4MihyQV0UBVLEPfXIpxpNcuL/TfHFrqdqhZANiAASSn1c9Low6
JLoy6qNayGLjT+Bhco2G60pmnNPGomttEPI15vNm2fFyx6Y6s5zH6/EeCH6k5lxT
aftRTLjIlrSHP5GkPi5PL4ExY3K7CCli/X1PAr6l2J0kFGnGroiiytg=
-----END PRIVATE KEY-----
";

fn now_seconds() -> i64 {
    Instant::now().millis() / 1000
}

/// Registers a client behind the API, as `helse client add` does.
async fn register(server: &TestServer, id: &str, scope: &str, secret: Option<&str>, jwks: Option<Value>) {
    let client = Client {
        id: id.into(),
        name: id.into(),
        secret_sha256: secret.map(hash_secret),
        jwks,
        scope: scope.into(),
        redirect_uris: Vec::new(),
    };
    server
        .store
        .kv_put(&Client::store_key(id), &serde_json::to_string(&client).unwrap(), None)
        .await
        .unwrap();
}

fn origin(server: &TestServer) -> String {
    format!("http://{}", server.addr)
}

async fn token_request(server: &TestServer, form: &[(&str, &str)], basic: Option<(&str, &str)>) -> Reply {
    let mut req = server
        .client
        .post(format!("{}/auth/token", origin(server)))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string(form).unwrap());
    if let Some((id, secret)) = basic {
        use base64::Engine;
        let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
        req = req.header("authorization", format!("Basic {encoded}"));
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    Reply { status, headers, text: r.text().await.unwrap() }
}

/// A token for a client registered with a secret.
async fn token(server: &TestServer, id: &str, secret: &str, scope: &str) -> String {
    let r =
        token_request(server, &[("grant_type", "client_credentials"), ("scope", scope)], Some((id, secret)))
            .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    r.json()["access_token"].as_str().unwrap().to_owned()
}

async fn call(server: &TestServer, token: &str, method: &str, path: &str, body: Option<&Value>) -> Reply {
    let bearer = format!("Bearer {token}");
    server.send(method, path, body, &[("authorization", &bearer)]).await
}

/// An admin and the data the matrix reads: a patient, an observation and a condition about them.
async fn admin_with_data(server: &TestServer) -> String {
    register(server, "admin", "system/*.cruds", Some("admin-secret"), None).await;
    let admin = token(server, "admin", "admin-secret", "system/*.cruds").await;
    for (path, body) in [
        ("Patient/p1", json!({"resourceType": "Patient", "id": "p1", "name": [{"family": "Nordmann"}]})),
        (
            "Observation/o1",
            json!({"resourceType": "Observation", "id": "o1", "status": "final",
                   "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                   "subject": {"reference": "Patient/p1"}}),
        ),
        (
            "Condition/c1",
            json!({"resourceType": "Condition", "id": "c1",
                   "code": {"coding": [{"system": "http://snomed.info/sct", "code": "38341003"}]},
                   "subject": {"reference": "Patient/p1"}}),
        ),
    ] {
        let r = call(server, &admin, "PUT", path, Some(&body)).await;
        assert_eq!(r.status, 201, "{path}: {}", r.text);
    }
    admin
}

fn entry_types(bundle: &Value) -> Vec<String> {
    let mut t: Vec<String> = bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["resource"]["resourceType"].as_str())
        .map(str::to_owned)
        .collect();
    t.sort();
    t
}

async fn anonymous_requests_are_refused(backend: Backend) {
    let server = TestServer::start_secured(backend).await;
    admin_with_data(&server).await;
    // Public: what the server can do, and how to get a token.
    assert_eq!(server.get("metadata").await.status, 200);
    let config = server.get(".well-known/smart-configuration").await;
    assert_eq!(config.status, 200, "{}", config.text);
    assert_eq!(config.json()["token_endpoint"], format!("{}/auth/token", origin(&server)));
    assert!(
        config.json()["capabilities"].as_array().unwrap().contains(&json!("client-confidential-asymmetric"))
    );
    // Patient data: 401, saying how to authenticate, as an OperationOutcome.
    for (method, path) in [
        ("GET", "Patient/p1"),
        ("GET", "Patient?name=nordmann"),
        ("GET", "Patient/p1/_history"),
        ("GET", "Patient/p1/$everything"),
        ("GET", "_history"),
        ("DELETE", "Patient/p1"),
    ] {
        let r = server.send(method, path, None, &[]).await;
        assert_eq!(r.status, 401, "{method} {path}: {}", r.text);
        assert_eq!(r.header("www-authenticate"), Some("Bearer realm=\"helse\""));
        assert_eq!(r.json()["resourceType"], "OperationOutcome");
    }
    let r = server.post("Patient", &json!({"resourceType": "Patient"})).await;
    assert_eq!(r.status, 401);
    let r = server
        .post(
            "",
            &json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": "Patient/p1"}}]}),
        )
        .await;
    assert_eq!(r.status, 401, "{}", r.text);
    server.stop().await;
}

async fn clients_authenticate_with_a_secret(backend: Backend) {
    let server = TestServer::start_secured(backend).await;
    register(&server, "lab", "system/Observation.rs system/Patient.r", Some("lab-secret"), None).await;
    let form =
        [("grant_type", "client_credentials"), ("scope", "system/Observation.cruds system/Condition.rs")];
    // Asked for more than registered: narrowed to what is registered.
    let r = token_request(&server, &form, Some(("lab", "lab-secret"))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["scope"], "system/Observation.rs");
    assert_eq!(r.json()["token_type"], "bearer");
    assert_eq!(r.json()["expires_in"], 300);
    // The secret in the form instead of HTTP Basic.
    let with_form = [
        ("grant_type", "client_credentials"),
        ("client_id", "lab"),
        ("client_secret", "lab-secret"),
        ("scope", "system/Patient.r"),
    ];
    assert_eq!(token_request(&server, &with_form, None).await.json()["scope"], "system/Patient.r");
    // No scope asked: what is registered.
    let r =
        token_request(&server, &[("grant_type", "client_credentials")], Some(("lab", "lab-secret"))).await;
    assert_eq!(r.json()["scope"], "system/Observation.rs system/Patient.r");

    let refused = |r: Reply, status: u16, code: &str| {
        assert_eq!(r.status, status, "{}", r.text);
        assert_eq!(r.json()["error"], code, "{}", r.text);
        assert!(!r.text.contains("lab-secret"));
    };
    refused(token_request(&server, &form, Some(("lab", "wrong"))).await, 401, "invalid_client");
    refused(token_request(&server, &form, Some(("nobody", "lab-secret"))).await, 401, "invalid_client");
    refused(
        token_request(&server, &[("grant_type", "client_credentials")], None).await,
        401,
        "invalid_client",
    );
    let password = [("grant_type", "password"), ("username", "x"), ("password", "y")];
    refused(
        token_request(&server, &password, Some(("lab", "lab-secret"))).await,
        400,
        "unsupported_grant_type",
    );
    let other = [("grant_type", "client_credentials"), ("scope", "system/Condition.rs")];
    refused(token_request(&server, &other, Some(("lab", "lab-secret"))).await, 400, "invalid_scope");
    // Backend clients act for nobody: patient and user scopes are not granted to them.
    let patient = [("grant_type", "client_credentials"), ("scope", "patient/*.rs")];
    register(&server, "wide", "patient/*.rs user/*.rs", Some("wide-secret"), None).await;
    refused(token_request(&server, &patient, Some(("wide", "wide-secret"))).await, 400, "invalid_scope");
    server.stop().await;
}

fn assertion(key_pem: &str, claims: &Value) -> String {
    let key = EncodingKey::from_ec_pem(key_pem.as_bytes()).unwrap();
    let mut header = Header::new(Algorithm::ES384);
    header.kid = Some("k1".into());
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

async fn clients_authenticate_with_a_signed_assertion(backend: Backend) {
    let server = TestServer::start_secured(backend).await;
    let jwks = json!({"keys": [{"kty": "EC", "crv": "P-384", "kid": "k1", "alg": "ES384", "use": "sig",
                               "x": CLIENT_KEY_X, "y": CLIENT_KEY_Y}]});
    register(&server, "registry", "system/*.rs", None, Some(jwks)).await;
    let token_url = format!("{}/auth/token", origin(&server));
    let claims = |jti: &str, aud: &str, lifetime: i64| json!({"iss": "registry", "sub": "registry", "aud": aud, "exp": now_seconds() + lifetime, "jti": jti});
    let form = |a: &str| {
        vec![
            ("grant_type".to_owned(), "client_credentials".to_owned()),
            ("scope".to_owned(), "system/Patient.rs".to_owned()),
            (
                "client_assertion_type".to_owned(),
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_owned(),
            ),
            ("client_assertion".to_owned(), a.to_owned()),
        ]
    };
    let send = |a: String| {
        let server = &server;
        async move {
            let f = form(&a);
            let pairs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            token_request(server, &pairs, None).await
        }
    };
    let good = assertion(CLIENT_KEY, &claims("a1", &token_url, 60));
    let r = send(good.clone()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let access = r.json()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(call(&server, &access, "GET", "Patient", None).await.status, 200);
    // Replayed: refused, even though it still verifies.
    let r = send(good).await;
    assert_eq!((r.status, r.json()["error"].clone()), (400, json!("invalid_grant")), "{}", r.text);
    // Signed with a key the client did not register.
    let r = send(assertion(OTHER_KEY, &claims("a2", &token_url, 60))).await;
    assert_eq!((r.status, r.json()["error"].clone()), (401, json!("invalid_client")), "{}", r.text);
    // Meant for another token endpoint.
    let r = send(assertion(CLIENT_KEY, &claims("a3", "https://other.example/auth/token", 60))).await;
    assert_eq!(r.status, 401, "{}", r.text);
    // Valid for an hour: longer than the five minutes allowed.
    let r = send(assertion(CLIENT_KEY, &claims("a4", &token_url, 3600))).await;
    assert_eq!(r.status, 401, "{}", r.text);
    // Expired.
    let r = send(assertion(CLIENT_KEY, &claims("a5", &token_url, -120))).await;
    assert_eq!(r.status, 401, "{}", r.text);
    // A symmetric signature: no key to check it with, never accepted.
    let hs = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims("a6", &token_url, 60),
        &EncodingKey::from_secret(b"guess"),
    )
    .unwrap();
    assert_eq!(send(hs).await.status, 401);
    server.stop().await;
}

async fn tokens_are_refused_when_wrong(backend: Backend) {
    let server = TestServer::start_secured(backend).await;
    let admin = admin_with_data(&server).await;
    assert_eq!(call(&server, &admin, "GET", "Patient/p1", None).await.status, 200);
    // Minted with the server's own secret, to vary one claim at a time.
    let secret = server.store.kv_get("auth/token-signing-secret", Instant::now()).await.unwrap().unwrap();
    let keys = helse_auth::TokenKeys::from_secret(&secret);
    let claims = |aud: String, exp: i64| AccessClaims {
        iss: origin(&server),
        sub: "admin".into(),
        aud,
        iat: now_seconds(),
        exp,
        jti: "t".into(),
        scope: "system/*.cruds".into(),
        ..AccessClaims::default()
    };
    let base = server.base.clone();
    let minted = keys.issue(&claims(base.clone(), now_seconds() + 60));
    assert_eq!(call(&server, &minted, "GET", "Patient/p1", None).await.status, 200, "the control case");
    let cases = [
        ("expired", keys.issue(&claims(base.clone(), now_seconds() - 60))),
        ("another audience", keys.issue(&claims("https://other.example/fhir".into(), now_seconds() + 60))),
        (
            "another secret",
            helse_auth::TokenKeys::from_secret("not the secret")
                .issue(&claims(base.clone(), now_seconds() + 60)),
        ),
        ("garbage", "abc.def.ghi".to_owned()),
    ];
    for (what, token) in cases {
        let r = call(&server, &token, "GET", "Patient/p1", None).await;
        assert_eq!(r.status, 401, "{what}: {}", r.text);
        assert!(r.header("www-authenticate").unwrap().contains("invalid_token"), "{what}");
    }
    // Payload edited to widen the scope: the signature no longer matches.
    let limited = {
        register(&server, "reader", "system/Patient.r", Some("reader-secret"), None).await;
        token(&server, "reader", "reader-secret", "system/Patient.r").await
    };
    let mut parts: Vec<String> = limited.split('.').map(str::to_owned).collect();
    let mut payload: Value = {
        use base64::Engine;
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&parts[1]).unwrap())
            .unwrap()
    };
    payload["scope"] = json!("system/*.cruds");
    parts[1] = {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(&payload).unwrap())
    };
    let r = call(&server, &parts.join("."), "DELETE", "Patient/p1", None).await;
    assert_eq!(r.status, 401, "{}", r.text);
    let r = server.send("GET", "Patient/p1", None, &[("authorization", "Basic YTpi")]).await;
    assert_eq!(r.status, 401);
    server.stop().await;
}

async fn scopes_bound_every_interaction(backend: Backend) {
    let server = TestServer::start_secured(backend).await;
    let admin = admin_with_data(&server).await;
    register(&server, "lab", "system/Patient.rs system/Observation.cruds", Some("lab-secret"), None).await;
    let lab = token(&server, "lab", "lab-secret", "system/Patient.rs system/Observation.cruds").await;
    register(&server, "obs", "system/Observation.rs", Some("obs-secret"), None).await;
    let obs = token(&server, "obs", "obs-secret", "system/Observation.rs").await;
    let new_obs = json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                         "subject": {"reference": "Patient/p1"}});
    let new_condition = json!({"resourceType": "Condition", "subject": {"reference": "Patient/p1"}});
    let bundle =
        |kind: &str, entries: Value| json!({"resourceType": "Bundle", "type": kind, "entry": entries});

    // (who, method, path, body, expected status)
    let matrix: Vec<(&str, &str, &str, Option<Value>, u16)> = vec![
        ("lab", "GET", "Patient/p1", None, 200),
        ("lab", "GET", "Patient/p1/_history/1", None, 200),
        ("lab", "GET", "Patient/p1/_history", None, 200),
        ("lab", "GET", "Patient?name=nordmann", None, 200),
        ("lab", "GET", "Patient/_history", None, 200),
        ("lab", "PUT", "Patient/p1", Some(json!({"resourceType": "Patient", "id": "p1"})), 403),
        ("lab", "DELETE", "Patient/p1", None, 403),
        ("lab", "POST", "Observation", Some(new_obs.clone()), 201),
        ("lab", "GET", "Observation/o1", None, 200),
        ("lab", "GET", "Condition/c1", None, 403),
        ("lab", "GET", "Condition?subject=Patient/p1", None, 403),
        ("lab", "POST", "Condition", Some(new_condition.clone()), 403),
        ("lab", "GET", "Patient/p1/Condition", None, 403),
        ("lab", "GET", "Patient/p1/Observation", None, 200),
        ("lab", "GET", "_history", None, 403),
        // Chains and _has into a type outside the grant would reveal it.
        ("lab", "GET", "Observation?subject:Patient.name=nordmann", None, 200),
        ("lab", "GET", "Patient?_has:Condition:subject:code=38341003", None, 403),
        ("lab", "GET", "Patient?_has:Observation:subject:code=8867-4", None, 200),
        ("obs", "GET", "Observation?subject:Patient.name=nordmann", None, 403),
        ("obs", "GET", "Observation?subject.name=nordmann", None, 403),
        ("obs", "POST", "Observation", Some(new_obs.clone()), 403),
        ("obs", "GET", "Patient/p1", None, 403),
        ("obs", "GET", "Patient/p1/$everything", None, 403),
        // A conditional create answers with what it finds: it needs search and read.
        ("obs", "DELETE", "Observation?code=8867-4", None, 403),
        // A transaction with one entry outside the grant does nothing at all.
        (
            "lab",
            "POST",
            "",
            Some(bundle(
                "transaction",
                json!([
                    {"request": {"method": "POST", "url": "Observation"}, "resource": new_obs},
                    {"request": {"method": "POST", "url": "Condition"}, "resource": new_condition},
                ]),
            )),
            403,
        ),
    ];
    for (who, method, path, body, expected) in &matrix {
        let token = if *who == "lab" { &lab } else { &obs };
        let r = call(&server, token, method, path, body.as_ref()).await;
        assert_eq!(r.status, *expected, "{who} {method} {path}: {}", r.text);
        if *expected == 403 {
            assert_eq!(r.json()["issue"][0]["code"], "forbidden", "{}", r.text);
        }
    }
    // The transaction above left nothing behind: still the one Condition, and the one
    // Observation the lab created directly (plus o1).
    let count = |t: &'static str| {
        let (server, admin) = (&server, &admin);
        async move {
            call(server, admin, "GET", &format!("{t}?_summary=count"), None).await.json()["total"].clone()
        }
    };
    assert_eq!(count("Condition").await, 1);
    assert_eq!(count("Observation").await, 2);

    // _include and _revinclude leave out what the grant cannot read, rather than fail.
    let r = call(&server, &obs, "GET", "Observation?_id=o1&_include=Observation:subject", None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(entry_types(&r.json()), ["Observation"]);
    let r = call(&server, &lab, "GET", "Observation?_id=o1&_include=Observation:subject", None).await;
    assert_eq!(entry_types(&r.json()), ["Observation", "Patient"]);
    let r = call(
        &server,
        &lab,
        "GET",
        "Patient?_id=p1&_revinclude=Condition:subject&_revinclude=Observation:subject",
        None,
    )
    .await;
    assert_eq!(entry_types(&r.json()), ["Observation", "Observation", "Patient"]);
    // $everything: only the readable members of the compartment.
    let r = call(&server, &lab, "GET", "Patient/p1/$everything", None).await;
    assert_eq!(entry_types(&r.json()), ["Observation", "Observation", "Patient"]);
    let r = call(&server, &admin, "GET", "Patient/p1/$everything", None).await;
    assert_eq!(entry_types(&r.json()), ["Condition", "Observation", "Observation", "Patient"]);

    // A batch answers each entry on its own: the Condition read is refused, the rest served.
    let r = call(
        &server,
        &lab,
        "POST",
        "",
        Some(&bundle(
            "batch",
            json!([
                {"request": {"method": "GET", "url": "Patient/p1"}},
                {"request": {"method": "GET", "url": "Condition/c1"}},
                {"request": {"method": "GET", "url": "Observation/o1"}},
            ]),
        )),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let statuses = r.entry_statuses();
    assert_eq!(statuses.iter().map(|s| &s[..3]).collect::<Vec<_>>(), ["200", "403", "200"]);
    server.stop().await;
}

async fn exports_hold_to_the_grant_and_their_owner(backend: Backend) {
    let server = TestServer::start_secured(backend).await;
    admin_with_data(&server).await;
    register(&server, "lab", "system/Patient.rs system/Observation.rs", Some("lab-secret"), None).await;
    let lab = token(&server, "lab", "lab-secret", "system/Patient.rs system/Observation.rs").await;
    register(&server, "other", "system/*.rs", Some("other-secret"), None).await;
    let other = token(&server, "other", "other-secret", "system/*.rs").await;
    let export = |token: &str, path: &str| {
        let bearer = format!("Bearer {token}");
        let (server, path) = (&server, path.to_owned());
        async move {
            server.send("GET", &path, None, &[("authorization", &bearer), ("prefer", "respond-async")]).await
        }
    };
    assert_eq!(export(&lab, "$export?_type=Condition").await.status, 403);
    let r = export(&lab, "$export").await;
    assert_eq!(r.status, 202, "{}", r.text);
    let status_url = r.header("content-location").unwrap().to_owned();
    let status_path = status_url.split("/fhir/").nth(1).unwrap().to_owned();
    // Another client cannot see, fetch or cancel it.
    assert_eq!(call(&server, &other, "GET", &status_path, None).await.status, 404);
    assert_eq!(call(&server, &other, "DELETE", &status_path, None).await.status, 404);
    let manifest = loop {
        let r = call(&server, &lab, "GET", &status_path, None).await;
        if r.status == 200 {
            break r.json();
        }
        assert_eq!(r.status, 202, "{}", r.text);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let mut types: Vec<&str> =
        manifest["output"].as_array().unwrap().iter().map(|o| o["type"].as_str().unwrap()).collect();
    types.sort();
    assert_eq!(types, ["Observation", "Patient"], "only what the grant reads: no Condition");
    let file_path = manifest["output"][0]["url"].as_str().unwrap().split("/fhir/").nth(1).unwrap().to_owned();
    assert_eq!(call(&server, &other, "GET", &file_path, None).await.status, 404);
    assert_eq!(call(&server, &lab, "GET", &file_path, None).await.status, 200);
    assert_eq!(server.send("GET", &file_path, None, &[]).await.status, 401);
    server.stop().await;
}

async fn tokens_from_a_trusted_issuer_are_accepted(backend: Backend) {
    let jwks =
        json!({"keys": [{"kty": "EC", "crv": "P-384", "kid": "k1", "x": CLIENT_KEY_X, "y": CLIENT_KEY_Y}]});
    let trusted = helse_auth::TrustedIssuer { issuer: "https://idp.example".into(), jwks };
    let server = TestServer::start_adjusted(backend, |c| {
        c.auth = helse_server::AuthMode::Enforced;
        c.trusted_issuers = vec![trusted];
    })
    .await;
    let admin = admin_with_data(&server).await;
    let minted = |key: &str, iss: &str, aud: &str, scopes: Value| {
        let mut claims = json!({"iss": iss, "sub": "integration", "aud": aud, "exp": now_seconds() + 60});
        match scopes {
            Value::String(s) => claims["scope"] = json!(s),
            list => claims["scp"] = list,
        }
        assertion(key, &claims)
    };
    let base = server.base.clone();
    let good = minted(CLIENT_KEY, "https://idp.example", &base, json!("openid system/Patient.rs"));
    assert_eq!(call(&server, &good, "GET", "Patient/p1", None).await.status, 200);
    let r = call(&server, &good, "GET", "Observation/o1", None).await;
    assert_eq!(r.status, 403, "held to the scopes it carries: {}", r.text);
    // Scopes as a list (`scp`), as some issuers write them.
    let listed = minted(CLIENT_KEY, "https://idp.example", &base, json!(["system/Observation.rs"]));
    assert_eq!(call(&server, &listed, "GET", "Observation/o1", None).await.status, 200);
    // People, as Norway's identity providers name them: ID-porten's `pid` (a patient, found
    // by national identity number) and HelseID's HPR number (health personnel).
    for (path, body) in [
        (
            "Patient/p1",
            json!({"resourceType": "Patient", "id": "p1", "name": [{"family": "Nordmann"}],
            "identifier": [{"system": "urn:oid:2.16.578.1.12.4.1.4.1", "value": "05058012345"}]}),
        ),
        ("Patient/p2", json!({"resourceType": "Patient", "id": "p2"})),
        (
            "Practitioner/d1",
            json!({"resourceType": "Practitioner", "id": "d1",
            "identifier": [{"system": "urn:oid:2.16.578.1.12.4.1.4.4", "value": "9144889"}]}),
        ),
    ] {
        assert!(call(&server, &admin, "PUT", path, Some(&body)).await.status < 300, "{path}");
    }
    let person = |extra: Value, scope: &str| {
        let mut claims = json!({"iss": "https://idp.example", "sub": "person", "aud": base, "exp": now_seconds() + 60, "scope": scope});
        for (k, v) in extra.as_object().unwrap() {
            claims[k] = v.clone();
        }
        assertion(CLIENT_KEY, &claims)
    };
    let kari = person(json!({"pid": "05058012345"}), "openid patient/*.rs system/*.rs");
    assert_eq!(call(&server, &kari, "GET", "Patient/p1", None).await.status, 200);
    assert_eq!(call(&server, &kari, "GET", "Observation/o1", None).await.status, 200, "her own");
    assert_eq!(
        call(&server, &kari, "GET", "Patient/p2", None).await.status,
        404,
        "not hers; system/ dropped"
    );
    let doctor = person(json!({"helseid://claims/hpr/hpr_number": "9144889"}), "user/*.rs");
    let r = call(&server, &doctor, "GET", "Patient/p1", None).await;
    assert_eq!(r.status, 403, "no care relationship: {}", r.text);
    let stranger = person(json!({"pid": "01010112345"}), "patient/*.rs");
    assert_eq!(call(&server, &stranger, "GET", "Patient/p1", None).await.status, 403, "not in the record");
    for (what, token) in [
        ("signed with another key", minted(OTHER_KEY, "https://idp.example", &base, json!("system/*.rs"))),
        (
            "for another server",
            minted(CLIENT_KEY, "https://idp.example", "https://other.example/fhir", json!("system/*.rs")),
        ),
        (
            "from an issuer not trusted",
            minted(CLIENT_KEY, "https://evil.example", &base, json!("system/*.rs")),
        ),
    ] {
        let r = call(&server, &token, "GET", "Patient/p1", None).await;
        assert_eq!(r.status, 401, "{what}: {}", r.text);
    }
    server.stop().await;
}

/// The access log once it holds `n` entries (reads' entries are stored moments after the
/// answer), checked to hold no more.
async fn access_log_of(server: &TestServer, n: usize) -> Vec<helse_store::AuditRow> {
    for _ in 0..500 {
        let log = access_log(server).await;
        if log.len() >= n {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            let settled = access_log(server).await;
            assert_eq!(settled.len(), n, "exactly {n} entries");
            return settled;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("the access log never reached {n} entries");
}

/// Every entry of the access log, oldest first, with the chain checked on the way.
async fn access_log(server: &TestServer) -> Vec<helse_store::AuditRow> {
    let rows = server.store.audit_entries(0, 100_000).await.unwrap();
    let mut previous = helse_store::AUDIT_GENESIS.to_owned();
    for row in &rows {
        assert_eq!(
            row.hash,
            helse_store::audit_hash(&previous, &row.record),
            "entry {} breaks the chain",
            row.seq
        );
        previous = row.hash.clone();
    }
    rows
}

async fn every_request_leaves_exactly_one_access_log_entry(backend: Backend) {
    let server = TestServer::start_secured(backend).await;
    let admin = admin_with_data(&server).await;
    register(&server, "obs", "system/Observation.rs", Some("obs-secret"), None).await;
    let obs = token(&server, "obs", "obs-secret", "system/Observation.rs").await;
    let before = access_log_of(&server, 3).await.len();
    // (who, method, path, status, whose record, action, outcome)
    type Case<'a> = (Option<&'a str>, &'a str, &'a str, u16, Option<&'a str>, &'a str, &'a str);
    let cases: Vec<Case> = vec![
        (Some(&admin), "GET", "Patient/p1", 200, Some("p1"), "R", "0"),
        (Some(&admin), "GET", "Observation?subject=Patient/p1", 200, Some("p1"), "R", "0"),
        (Some(&admin), "GET", "Patient/p1/$everything", 200, Some("p1"), "R", "0"),
        (Some(&admin), "GET", "Patient/p1/Observation", 200, Some("p1"), "R", "0"),
        (Some(&admin), "DELETE", "Condition/c1", 200, None, "D", "0"),
        (Some(&obs), "GET", "Patient/p1", 403, Some("p1"), "R", "4"),
        (None, "GET", "Patient/p1", 401, Some("p1"), "R", "4"),
        (Some("forged.token.value"), "GET", "Observation/o1", 401, None, "R", "4"),
    ];
    for (i, (who, method, path, status, patient, action, outcome)) in cases.iter().enumerate() {
        let r = match who {
            Some(t) => call(&server, t, method, path, None).await,
            None => server.send(method, path, None, &[]).await,
        };
        assert!(r.status == *status || (*status == 200 && r.status == 204), "{method} {path}: {}", r.text);
        let log = access_log_of(&server, before + i + 1).await;
        let last = &log[log.len() - 1];
        assert_eq!(last.record.patient.as_deref(), *patient, "{method} {path}");
        let event: Value = serde_json::from_str(&last.record.event).unwrap();
        assert_eq!(event["resourceType"], "AuditEvent");
        assert_eq!(event["action"], *action, "{method} {path}");
        assert_eq!(event["outcome"], *outcome, "{method} {path}");
        assert_eq!(event["agent"][0]["network"]["address"], "127.0.0.1");
        let expected_who = match *who {
            Some(t) if t == admin => "admin",
            Some(t) if t == obs => "obs",
            _ => "anonymous",
        };
        assert_eq!(event["agent"][0]["who"]["identifier"]["value"], expected_who, "{method} {path}");
    }
    // The CapabilityStatement touches no data: not logged.
    server.get("metadata").await;
    access_log_of(&server, before + cases.len()).await;
    // A stated purpose of use is kept.
    let bearer = format!("Bearer {admin}");
    server
        .send("GET", "Patient/p1", None, &[("authorization", &bearer), ("x-purpose-of-use", "ETREAT")])
        .await;
    let log = access_log_of(&server, before + cases.len() + 1).await;
    let event: Value = serde_json::from_str(&log[log.len() - 1].record.event).unwrap();
    assert_eq!(event["agent"][0]["purposeOfUse"][0]["coding"][0]["code"], "ETREAT");
    // The patient's own view: every entry about p1, newest first.
    let mine = server.store.audit_for_patient("p1", 100).await.unwrap();
    assert_eq!(mine.len(), 8, "{mine:?}");
    assert!(mine.windows(2).all(|w| w[0].seq > w[1].seq));
    server.stop().await;
}

on_both_stores!(
    every_request_leaves_exactly_one_access_log_entry,
    tokens_from_a_trusted_issuer_are_accepted,
    anonymous_requests_are_refused,
    clients_authenticate_with_a_secret,
    clients_authenticate_with_a_signed_assertion,
    tokens_are_refused_when_wrong,
    scopes_bound_every_interaction,
    exports_hold_to_the_grant_and_their_owner,
);

#[tokio::test]
async fn open_mode_listens_on_loopback_only() {
    let dir = tempfile::tempdir().unwrap();
    let config = helse_server::ServerConfig {
        listen: "0.0.0.0:0".parse().unwrap(),
        base_url: None,
        store: helse_store::StoreLocation::Sqlite(dir.path().join("h.db")),
        sqlite_durability: helse_server::SqliteDurability::Normal,
        postgres_pool_size: 1,
        limits: Default::default(),
        auth: helse_server::AuthMode::Disabled,
        trusted_issuers: Vec::new(),
    };
    match helse_server::Server::bind(&config).await {
        Err(helse_server::StartupError::OpenOffLoopback(_)) => {}
        Err(e) => panic!("refused for another reason: {e}"),
        Ok(_) => panic!("--no-auth listened on every interface"),
    }
}
