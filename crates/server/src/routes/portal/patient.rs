//! Signing in and out, and the patient's pages: my summary, my organ-donor statement
//! (register, change, withdraw; every earlier statement listed), and who has looked at my
//! record. A patient who is proxy for others (a child under 16, a parent who named them)
//! picks whose record they work on; only their own donor statement is theirs to change.

use axum::body::Bytes;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use helse_auth::Role;
use helse_fhir_r4::Instant;
use serde_json::{Value, json};

use super::render::{self, ORGANS, moment, statement_words};
use super::session::set_cookie;
use super::{Session, Visit, encode, field, foreign_form, form, redirect};
use crate::consent::CONSENT_KIND_SYSTEM;
use crate::describe::person_name;
use crate::donor::{self, DONATION, STATEMENTS};
use crate::html::{Lang, escape};

pub async fn login_page(visit: Visit) -> Response {
    if visit.session.is_some() {
        return redirect("/portal");
    }
    login_form(&visit, StatusCode::OK, None)
}

fn login_form(visit: &Visit, status: StatusCode, problem: Option<&str>) -> Response {
    let lang = visit.lang;
    let problem =
        problem.map(|p| format!(r#"<p class="problem" role="alert">{}</p>"#, escape(p))).unwrap_or_default();
    let body = format!(
        r#"<p>{intro}</p>{problem}<form method="post" action="/portal/login" class="signin">
<label>{user} <input name="username" autocomplete="username" required></label>
<label>{pass} <input name="password" type="password" autocomplete="current-password" required></label>
<button type="submit">{go}</button></form>"#,
        intro = lang.pick(
            "Pasienter ser sitt sammendrag, registrerer sitt donorkort og ser hvem som har lest journalen. Helsepersonell ser sammendraget til sine pasienter.",
            "Patients see their summary, register their donor card and see who has read their record. Health personnel see their patients' summaries."
        ),
        user = lang.pick("Brukernavn", "Username"),
        pass = lang.pick("Passord", "Password"),
        go = lang.pick("Logg inn", "Sign in"),
    );
    visit.page(status, lang.pick("Logg inn", "Sign in"), &body)
}

pub async fn login(visit: Visit, body: Bytes) -> Response {
    let lang = visit.lang;
    let form = form(&body);
    let (Some(username), Some(password)) = (field(&form, "username"), field(&form, "password")) else {
        return login_form(
            &visit,
            StatusCode::BAD_REQUEST,
            Some(lang.pick("Fyll inn begge feltene.", "Fill in both fields.")),
        );
    };
    let Some(user) = crate::accounts::sign_in(&visit.state, username, password).await else {
        return login_form(
            &visit,
            StatusCode::UNAUTHORIZED,
            Some(lang.pick("Feil brukernavn eller passord.", "Wrong username or password.")),
        );
    };
    let patient = match user.role {
        Role::Admin => {
            return login_form(
                &visit,
                StatusCode::FORBIDDEN,
                Some(lang.pick(
                    "Portalen er for pasienter og helsepersonell.",
                    "The portal is for patients and health personnel.",
                )),
            );
        }
        Role::Practitioner => None,
        Role::Patient => {
            let Some(me) = user.fhir_user_id() else {
                return login_form(
                    &visit,
                    StatusCode::FORBIDDEN,
                    Some(lang.pick(
                        "Kontoen er ikke knyttet til en journal.",
                        "This account is not linked to a record.",
                    )),
                );
            };
            match crate::reach::proxied_patients(&visit.state, me, Instant::now()).await {
                // Only their own: straight to it; else they pick.
                Ok(c) if c.len() == 1 => Some(me.to_owned()),
                Ok(_) => None,
                Err(e) => return visit.error(&e),
            }
        }
    };
    match Session::start(&visit.state, &user, patient).await {
        Ok((_, id)) => with_cookie(redirect("/portal"), &set_cookie(&id, visit.secure())),
        Err(e) => visit.error(&e),
    }
}

fn with_cookie(mut response: Response, cookie: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(cookie) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

pub async fn logout(visit: Visit, body: Bytes) -> Response {
    let Some(session) = &visit.session else { return redirect("/portal/login") };
    if !session.form_is_ours(&form(&body)) {
        return foreign_form(&visit);
    }
    if let Err(e) = session.end(&visit.state).await {
        return visit.error(&e);
    }
    with_cookie(redirect("/portal/login"), &set_cookie("", visit.secure()))
}

/// The signed-in patient's session and whose record they work on; else where to go.
fn patient_session(visit: &Visit) -> Result<(&Session, &str), Response> {
    let session = visit.signed_in()?;
    if session.role != Role::Patient {
        return Err(redirect("/portal"));
    }
    match session.patient() {
        Some(p) => Ok((session, p)),
        None => Err(redirect("/portal/choose")),
    }
}

/// A signed-in patient's session, and whose records they may work on (their own and those
/// of whom they are proxy for).
async fn choices(visit: &Visit) -> Result<(&Session, Vec<String>), Response> {
    let session = match visit.signed_in()? {
        s if s.role == Role::Patient => s,
        _ => return Err(redirect("/portal")),
    };
    let me = session.own_patient().ok_or_else(|| redirect("/portal/login"))?;
    let candidates = crate::reach::proxied_patients(&visit.state, me, Instant::now())
        .await
        .map_err(|e| visit.error(&e))?;
    Ok((session, candidates))
}

/// `GET /portal/choose`: whose record, for a patient who is proxy for others.
pub async fn choose_page(visit: Visit) -> Response {
    let (session, candidates) = match choices(&visit).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let lang = visit.lang;
    let names = crate::routes::authorize::patient_names(&visit.state, &candidates).await;
    let options: String = names
        .iter()
        .map(|(id, name)| {
            let whose =
                if session.own_patient() == Some(id) { lang.pick(" (deg selv)", " (yourself)") } else { "" };
            format!(
                r#"<label><input type="radio" name="patient" value="{}" required> {}{whose}</label>"#,
                escape(id),
                escape(name)
            )
        })
        .collect();
    let body = format!(
        r#"<form method="post" action="/portal/choose"><input type="hidden" name="csrf" value="{csrf}"><fieldset><legend>{legend}</legend>{options}</fieldset><button type="submit">{go}</button></form>"#,
        csrf = escape(&session.csrf),
        legend = lang.pick(
            "Du kan handle for flere. Velg journal:",
            "You may act for several people. Choose the record:"
        ),
        go = lang.pick("Fortsett", "Continue"),
    );
    visit.page(StatusCode::OK, lang.pick("Hvem gjelder det?", "Whose record?"), &body)
}

/// `POST /portal/choose`.
pub async fn choose(visit: Visit, body: Bytes) -> Response {
    let (session, candidates) = match choices(&visit).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let form = form(&body);
    if !session.form_is_ours(&form) {
        return foreign_form(&visit);
    }
    let mut session = session.clone();
    match field(&form, "patient") {
        Some(p) if candidates.iter().any(|c| c == p) => {
            session.patient = Some(p.to_owned());
            if let Err(e) = session.save(&visit.state).await {
                return visit.error(&e);
            }
            redirect("/portal/summary")
        }
        _ => visit.page(
            StatusCode::FORBIDDEN,
            visit.lang.pick("Avvist", "Refused"),
            &format!(
                r#"<p class="problem" role="alert">{}</p>"#,
                visit
                    .lang
                    .pick("Du kan ikke handle for denne pasienten.", "You may not act for this patient.")
            ),
        ),
    }
}

/// `GET /portal/summary`: my summary (or that of whom I act for).
pub async fn summary(visit: Visit) -> Response {
    let (session, patient) = match patient_session(&visit) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let lang = visit.lang;
    let title = lang.pick("Mitt sammendrag", "My summary");
    let summary = match visit.read(title, &format!("Patient/{patient}/$summary"), None).await {
        Ok(b) => b,
        Err(page) => return page,
    };
    let mut body = render::patient_line(&summary, lang);
    if session.own_patient() != Some(patient) {
        body.push_str(&format!(
            r#"<p class="note">{} <a href="/portal/choose">{}</a></p>"#,
            lang.pick(
                "Du ser journalen til en du handler for.",
                "You are viewing the record of someone you act for."
            ),
            lang.pick("Bytt", "Switch"),
        ));
    }
    body.push_str(&render::summary(&summary, lang));
    visit.page(StatusCode::OK, title, &body)
}

/// The patient's donor statements, newest first (normally one, changed over time).
async fn statements(visit: &Visit, patient: &str) -> Result<Vec<Value>, Response> {
    let path = format!(
        "Consent?patient=Patient/{patient}&category={}&_sort=-_lastUpdated",
        encode(&format!("{CONSENT_KIND_SYSTEM}|{DONATION}"))
    );
    let found = visit.read(visit.lang.pick("Organdonasjon", "Organ donation"), &path, None).await?;
    Ok(found["entry"].as_array().into_iter().flatten().filter_map(|e| e.get("resource").cloned()).collect())
}

/// `GET /portal/donor`.
pub async fn donor_page(visit: Visit) -> Response {
    donor_view(&visit, StatusCode::OK, None).await
}

async fn donor_view(visit: &Visit, status: StatusCode, problem: Option<&str>) -> Response {
    let (session, patient) = match patient_session(visit) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let lang = visit.lang;
    let title = lang.pick("Organdonasjon", "Organ donation");
    let statements = match statements(visit, patient).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let latest = statements.first();
    let current = latest.filter(|s| s["status"] == "active");
    let mut body = String::new();
    if let Some(p) = problem {
        body.push_str(&format!(r#"<p class="problem" role="alert">{}</p>"#, escape(p)));
    } else if visit_flag(visit, "saved") {
        body.push_str(&format!(
            r#"<p class="done" role="status">{}</p>"#,
            lang.pick("Erklæringen er lagret.", "Your statement is saved.")
        ));
    }
    body.push_str(&format!(
        r#"<section id="current"><h2>{}</h2><p class="statement">{}</p></section>"#,
        lang.pick("Din erklæring nå", "Your statement now"),
        escape(&match current {
            Some(s) => render::line(s, lang),
            None =>
                lang.pick("Du har ingen gjeldende erklæring.", "You have no current statement.").to_owned(),
        }),
    ));
    let own = session.own_patient() == Some(patient);
    if own {
        body.push_str(&donor_form(session, lang, current, latest));
    } else {
        body.push_str(&format!(
            r#"<p class="note">{}</p>"#,
            lang.pick(
                "Bare personen selv kan registrere eller endre sin erklæring.",
                "Only the person themselves can register or change their statement."
            )
        ));
    }
    if let Some(latest) = latest {
        body.push_str(&history(visit, latest).await);
    }
    visit.page(status, title, &body)
}

/// Whether the page's URL carries `?{name}=1` (set by the redirect after a save).
fn visit_flag(visit: &Visit, name: &str) -> bool {
    visit.query.iter().any(|(k, v)| k == name && v == "1")
}

fn donor_form(session: &Session, lang: Lang, current: Option<&Value>, latest: Option<&Value>) -> String {
    let chosen = current.and_then(|c| donor::statement(c)).unwrap_or("");
    let radios: String = STATEMENTS
        .iter()
        .map(|code| {
            let checked = if *code == chosen { " checked" } else { "" };
            format!(
                r#"<label><input type="radio" name="statement" value="{code}" required{checked}> {}</label>"#,
                statement_words(code, lang)
            )
        })
        .collect();
    let left_out: Vec<&str> = current
        .and_then(|c| c.pointer("/provision/provision"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .flat_map(|p| p["code"].as_array().into_iter().flatten())
        .filter_map(|c| c.pointer("/coding/0/code").and_then(Value::as_str))
        .collect();
    let organs: String = ORGANS
        .iter()
        .map(|(code, no, en)| {
            let checked = if left_out.contains(code) { " checked" } else { "" };
            format!(
                r#"<label><input type="checkbox" name="organ" value="{code}"{checked}> {}</label>"#,
                lang.pick(no, en)
            )
        })
        .collect();
    let kin: Vec<&str> = current
        .and_then(|c| c.pointer("/provision/actor"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|a| a.pointer("/reference/display").and_then(Value::as_str))
        .collect();
    let version = latest.and_then(|l| l.pointer("/meta/versionId")).and_then(Value::as_str).unwrap_or("");
    let csrf = escape(&session.csrf);
    let withdraw = if current.is_some() {
        format!(
            r#"<form method="post" action="/portal/donor" class="withdraw"><input type="hidden" name="csrf" value="{csrf}"><input type="hidden" name="version" value="{version}"><input type="hidden" name="action" value="withdraw"><button type="submit">{}</button></form>"#,
            lang.pick("Trekk tilbake erklæringen", "Withdraw my statement"),
            version = escape(version),
        )
    } else {
        String::new()
    };
    format!(
        r#"<section id="register"><h2>{heading}</h2><form method="post" action="/portal/donor" class="donor"><input type="hidden" name="csrf" value="{csrf}"><input type="hidden" name="version" value="{version}"><input type="hidden" name="action" value="save">
<fieldset><legend>{which}</legend>{radios}</fieldset>
<fieldset><legend>{organs_legend}</legend>{organs}</fieldset>
<fieldset><legend>{kin_legend}</legend><label>{kin1} <input name="kin1" maxlength="200" value="{k1}"></label><label>{kin2} <input name="kin2" maxlength="200" value="{k2}"></label></fieldset>
<button type="submit">{save}</button></form>{withdraw}</section>"#,
        heading = if current.is_some() {
            lang.pick("Endre erklæringen", "Change your statement")
        } else {
            lang.pick("Registrer erklæring", "Register a statement")
        },
        which = lang.pick("Hva er ditt ønske?", "What is your wish?"),
        organs_legend = lang.pick(
            "Organer du ikke vil gi (bare ved «med unntak»)",
            "Organs you do not want to give (only with «with exceptions»)"
        ),
        kin_legend = lang.pick(
            "Pårørende som kjenner ønsket ditt (høyst to)",
            "Next of kin who know your wish (two at most)"
        ),
        kin1 = lang.pick("Pårørende 1", "Next of kin 1"),
        kin2 = lang.pick("Pårørende 2", "Next of kin 2"),
        k1 = escape(kin.first().copied().unwrap_or("")),
        k2 = escape(kin.get(1).copied().unwrap_or("")),
        save = lang.pick("Lagre erklæringen", "Save my statement"),
        version = escape(version),
    )
}

/// Every earlier version of the statement, newest first.
async fn history(visit: &Visit, latest: &Value) -> String {
    let lang = visit.lang;
    let Some(id) = latest["id"].as_str() else { return String::new() };
    let answer =
        match visit.fhir(Method::GET, &format!("Consent/{id}/_history?_count=100"), None, None, None).await {
            Ok(a) if a.ok() => a,
            _ => return String::new(),
        };
    let rows: String = answer.body["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e.get("resource"))
        .map(|r| {
            let when = r.pointer("/meta/lastUpdated").and_then(Value::as_str).unwrap_or("");
            let state = if r["status"] == "active" {
                lang.pick("gjeldende", "in force")
            } else {
                lang.pick("trukket tilbake", "withdrawn")
            };
            format!(
                "<tr><td>{}</td><td>{}</td><td>{state}</td></tr>",
                escape(&moment(when, lang)),
                escape(&render::line(r, lang))
            )
        })
        .collect();
    format!(
        r#"<section id="history"><h2>{}</h2><table><thead><tr><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>{rows}</tbody></table></section>"#,
        lang.pick("Tidligere erklæringer", "Earlier statements"),
        lang.pick("Når", "When"),
        lang.pick("Erklæring", "Statement"),
        lang.pick("Status", "Status"),
    )
}

/// `POST /portal/donor`: save (register or change) or withdraw.
pub async fn donor_save(visit: Visit, body: Bytes) -> Response {
    let (session, patient) = match patient_session(&visit) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let lang = visit.lang;
    let form = form(&body);
    if !session.form_is_ours(&form) {
        return foreign_form(&visit);
    }
    let statements = match statements(&visit, patient).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let latest = statements.first();
    let seen_version = field(&form, "version").filter(|v| !v.is_empty());
    let consent = if field(&form, "action") == Some("withdraw") {
        let Some(mut current) = latest.filter(|s| s["status"] == "active").cloned() else {
            let problem =
                lang.pick("Du har ingen erklæring å trekke tilbake.", "You have no statement to withdraw.");
            return donor_view(&visit, StatusCode::CONFLICT, Some(problem)).await;
        };
        current["status"] = json!("inactive");
        current["dateTime"] = json!(Instant::now().to_string());
        current
    } else {
        match statement_from_form(&form, patient, lang) {
            Ok(mut c) => {
                if let Some(id) = latest.and_then(|l| l["id"].as_str()) {
                    c["id"] = json!(id);
                }
                c
            }
            Err(problem) => return donor_view(&visit, StatusCode::UNPROCESSABLE_ENTITY, Some(problem)).await,
        }
    };
    // Changing what the page showed, not what another tab saved since.
    let if_match = seen_version.map(|v| format!("W/\"{v}\""));
    let answer = match consent["id"].as_str() {
        Some(id) => {
            visit.fhir(Method::PUT, &format!("Consent/{id}"), Some(&consent), if_match.as_deref(), None).await
        }
        None => visit.fhir(Method::POST, "Consent", Some(&consent), None, None).await,
    };
    match answer {
        Ok(a) if a.ok() => redirect("/portal/donor?saved=1"),
        Ok(a) if a.status == StatusCode::PRECONDITION_FAILED => {
            let problem = lang.pick(
                "Erklæringen ble endret et annet sted i mellomtiden. Se over og lagre på nytt.",
                "Your statement was changed elsewhere meanwhile. Look it over and save again.",
            );
            donor_view(&visit, StatusCode::CONFLICT, Some(problem)).await
        }
        Ok(a) => donor_view(&visit, a.status, Some(&a.problem())).await,
        Err(e) => visit.error(&e),
    }
}

/// The Consent a filled-in donor form says; a problem (in the page's language) otherwise.
fn statement_from_form(form: &[(String, String)], patient: &str, lang: Lang) -> Result<Value, &'static str> {
    let kind = field(form, "statement")
        .filter(|s| STATEMENTS.contains(s))
        .ok_or_else(|| lang.pick("Velg hva du ønsker.", "Choose what you wish."))?;
    let organs: Vec<&str> = form
        .iter()
        .filter(|(k, _)| k == "organ")
        .map(|(_, v)| v.as_str())
        .filter(|code| ORGANS.iter().any(|(c, ..)| c == code))
        .collect();
    let kin: Vec<&str> = ["kin1", "kin2"]
        .iter()
        .filter_map(|k| field(form, k))
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .collect();
    if kin.iter().any(|n| n.chars().count() > 200) {
        return Err(lang.pick("Navnet er for langt.", "The name is too long."));
    }
    let mut provision = json!({"type": if kind == "not-willing" { "deny" } else { "permit" }});
    if kind == "willing-with-restrictions" {
        if organs.is_empty() {
            return Err(lang.pick(
                "Kryss av for organene du ikke vil gi, eller velg en annen erklæring.",
                "Tick the organs you do not want to give, or choose another statement.",
            ));
        }
        let denied: Vec<Value> = organs
            .iter()
            .map(|code| {
                let display = ORGANS.iter().find(|(c, ..)| c == code).map_or("", |(_, _, en)| en);
                json!({"type": "deny", "code": [{"coding": [{"system": "http://snomed.info/sct", "code": code, "display": display}]}]})
            })
            .collect();
        provision["provision"] = json!(denied);
    }
    if !kin.is_empty() {
        provision["actor"] = json!(kin
            .iter()
            .map(|name| json!({"role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": "NOK"}]}, "reference": {"display": name}}))
            .collect::<Vec<_>>());
    }
    Ok(donor::new_statement(patient, kind, provision))
}

/// `GET /portal/access-log`: who has looked at my record, newest first.
pub async fn access_log(visit: Visit) -> Response {
    let (session, patient) = match patient_session(&visit) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let lang = visit.lang;
    let title = lang.pick("Hvem har sett journalen", "Who has seen the record");
    let log = match visit.read(title, &format!("Patient/{patient}/$access-log?_count=200"), None).await {
        Ok(b) => b,
        Err(page) => return page,
    };
    let events: Vec<&Value> =
        log["entry"].as_array().into_iter().flatten().filter_map(|e| e.get("resource")).collect();
    let mut names = std::collections::HashMap::new();
    let mut rows = String::new();
    for event in &events {
        let requestor = event["agent"].as_array().into_iter().flatten().find(|a| a["requestor"] == true);
        let reference = requestor.and_then(|a| a.pointer("/who/reference")).and_then(Value::as_str);
        let who = match reference {
            Some(r) if Some(r) == session.fhir_user.as_deref() => lang.pick("Deg selv", "You").to_owned(),
            Some(r) if r.starts_with("Practitioner/") || r.starts_with("Patient/") => {
                if !names.contains_key(r) {
                    let name = crate::reach::read_json(&visit.state, r)
                        .await
                        .ok()
                        .flatten()
                        .as_ref()
                        .and_then(person_name);
                    names.insert(r.to_owned(), name);
                }
                let kind = if r.starts_with("Practitioner/") {
                    lang.pick("helsepersonell", "health personnel")
                } else {
                    lang.pick("pasient", "patient")
                };
                match names.get(r).cloned().flatten() {
                    Some(n) => format!("{n} ({kind})"),
                    None => r.to_owned(),
                }
            }
            _ => requestor
                .and_then(|a| a.pointer("/who/identifier/value"))
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_owned(),
        };
        let what = what_was_done(event, lang);
        let purpose = requestor.and_then(|a| a.pointer("/purposeOfUse/0"));
        let code = purpose.and_then(|p| p.pointer("/coding/0/code")).and_then(Value::as_str);
        let emergency = code == Some("ETREAT");
        let why = purpose.map(|p| {
            let words = match code.unwrap_or("") {
                "ETREAT" => lang.pick("Nødtilgang", "Emergency access"),
                "TREAT" => lang.pick("Behandling", "Treatment"),
                other => other,
            };
            match p["text"].as_str() {
                Some(reason) => format!("{words}: {reason}"),
                None => words.to_owned(),
            }
        });
        let outcome = if event["outcome"] == "0" { "" } else { lang.pick(" (avvist)", " (refused)") };
        rows.push_str(&format!(
            r#"<tr{class}><td>{}</td><td>{}</td><td>{}{outcome}</td><td>{}</td></tr>"#,
            escape(&moment(event["recorded"].as_str().unwrap_or(""), lang)),
            escape(&who),
            escape(&what),
            escape(&why.unwrap_or_default()),
            class = if emergency { r#" class="emergency""# } else { "" },
        ));
    }
    let body = if events.is_empty() {
        format!("<p>{}</p>", lang.pick("Ingen har sett journalen ennå.", "Nobody has seen the record yet."))
    } else {
        format!(
            r#"<table class="log"><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>{rows}</tbody></table>"#,
            lang.pick("Når", "When"),
            lang.pick("Hvem", "Who"),
            lang.pick("Hva", "What"),
            lang.pick("Hvorfor", "Why"),
        )
    };
    visit.page(StatusCode::OK, title, &body)
}

/// An access-log entry's interaction in words.
fn what_was_done(event: &Value, lang: Lang) -> String {
    let kind = event.pointer("/subtype/0/code").and_then(Value::as_str).unwrap_or("");
    let target = event.pointer("/entity/0/what/reference").and_then(Value::as_str);
    let words = match kind {
        "summary" => lang.pick("Åpnet sammendraget", "Opened the summary"),
        "everything" => lang.pick("Hentet hele journalen", "Fetched the whole record"),
        "read" | "vread" => lang.pick("Leste", "Read"),
        "search-type" => lang.pick("Søkte i journalen", "Searched the record"),
        "history-instance" => lang.pick("Leste historikken til", "Read the history of"),
        "create" => lang.pick("Registrerte", "Recorded"),
        "update" | "patch" => lang.pick("Endret", "Changed"),
        "delete" => lang.pick("Slettet", "Deleted"),
        _ => lang.pick("Annet", "Other"),
    };
    match target {
        Some(t) if !matches!(kind, "summary" | "everything") => format!("{words} {t}"),
        _ => words.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::render::date;
    use super::*;

    fn form_of(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn the_donor_form_makes_a_statement_the_api_accepts() {
        let form = form_of(&[
            ("statement", "willing-with-restrictions"),
            ("organ", "64033007"),
            ("organ", "not-an-organ"),
            ("kin1", " Ola Nordmann "),
            ("kin2", ""),
        ]);
        let c = statement_from_form(&form, "p1", Lang::En).unwrap();
        assert_eq!(donor::check_shape(&c), Ok(()));
        assert!(helse_fhir_r4::validate_resource(&c, Some("Consent")).is_empty(), "{c}");
        assert_eq!(c["provision"]["provision"].as_array().unwrap().len(), 1, "only known organs");
        assert_eq!(c["provision"]["actor"][0]["reference"]["display"], "Ola Nordmann");
        for kind in STATEMENTS.iter().filter(|k| **k != "willing-with-restrictions") {
            let c =
                statement_from_form(&form_of(&[("statement", kind), ("organ", "64033007")]), "p1", Lang::No)
                    .unwrap();
            assert_eq!(donor::check_shape(&c), Ok(()), "{kind}: organs only with restrictions");
        }
        assert!(
            statement_from_form(&form_of(&[("statement", "willing-with-restrictions")]), "p1", Lang::En)
                .is_err()
        );
        assert!(statement_from_form(&form_of(&[("statement", "maybe")]), "p1", Lang::En).is_err());
        assert!(statement_from_form(&form_of(&[]), "p1", Lang::En).is_err());
    }

    #[test]
    fn log_entries_say_what_was_done() {
        let event =
            json!({"subtype": [{"code": "read"}], "entity": [{"what": {"reference": "Observation/o1"}}]});
        assert_eq!(what_was_done(&event, Lang::En), "Read Observation/o1");
        let event =
            json!({"subtype": [{"code": "summary"}], "entity": [{"what": {"reference": "Patient/p"}}]});
        assert_eq!(what_was_done(&event, Lang::No), "Åpnet sammendraget");
    }

    #[test]
    fn dates_read_the_norwegian_way() {
        assert_eq!(date("2026-11-23T10:00:00Z", Lang::No), "23.11.2026");
        assert_eq!(moment("2026-11-23T10:05:00.123Z", Lang::En), "2026-11-23 10:05 UTC");
    }
}
