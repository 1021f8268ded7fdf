//! Health personnel's pages: the patients in my care (and finding one by national identity
//! number), a patient's summary with critical information first, and emergency access —
//! opening the summary of a patient outside my care with a stated reason, which the
//! patient sees in their access log and which is queued for review.

use axum::body::Bytes;
use axum::extract::Path;
use axum::http::{Method, StatusCode};
use axum::response::Response;
use helse_auth::Role;
use helse_norway::systems;
use serde_json::Value;

use super::render::{self, date};
use super::{Session, Visit, encode, field, foreign_form, form, redirect};
use crate::access::MAX_EMERGENCY_REASON;
use crate::describe::{identifier, person_name};
use crate::html::{Lang, escape};

fn practitioner_session(visit: &Visit) -> Result<&Session, Response> {
    let session = visit.signed_in()?;
    if session.role != Role::Practitioner {
        return Err(redirect("/portal"));
    }
    Ok(session)
}

/// `GET /portal/patients[?fnr=…]`: my patients, or the one with this number.
pub async fn patients(visit: Visit) -> Response {
    let session = match practitioner_session(&visit) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let lang = visit.lang;
    let title = lang.pick("Pasienter", "Patients");
    let wanted = visit.query.iter().find(|(k, _)| k == "fnr").map(|(_, v)| v.trim().to_owned());
    let path = match &wanted {
        Some(n) => format!("Patient?identifier={}&_count=20", fnr_token(n)),
        None => "Patient?_count=100&_sort=family".to_owned(),
    };
    let found = match visit.read(title, &path, None).await {
        Ok(b) => b,
        Err(page) => return page,
    };
    let mut body = search_form(lang, wanted.as_deref());
    let rows = patient_rows(&found, lang);
    match (&wanted, rows.is_empty()) {
        (Some(n), true) => {
            body.push_str(&format!(
                r#"<p class="note">{}</p>"#,
                lang.pick(
                    "Ingen pasient med dette nummeret er i din behandling.",
                    "No patient with this number is in your care."
                )
            ));
            body.push_str(&emergency_form(session, lang, ("fnr", n)));
        }
        (None, true) => body.push_str(&format!(
            "<p>{}</p>",
            lang.pick("Du har ingen pasienter i din behandling.", "You have no patients in your care.")
        )),
        (_, false) => body.push_str(&format!(
            r#"<table class="patients"><thead><tr><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>{rows}</tbody></table>"#,
            lang.pick("Navn", "Name"),
            lang.pick("Født", "Born"),
            lang.pick("Fødselsnummer", "National identity number"),
        )),
    }
    visit.page(StatusCode::OK, title, &body)
}

/// A token search value for a fødselsnummer or D-nummer (the number says which).
fn fnr_token(number: &str) -> String {
    encode(&format!("{}|{number},{}|{number}", systems::FODSELSNUMMER, systems::D_NUMMER))
}

fn search_form(lang: Lang, wanted: Option<&str>) -> String {
    format!(
        r#"<form method="get" action="/portal/patients" class="find"><label>{label} <input name="fnr" inputmode="numeric" pattern="[0-9]{{11}}" value="{value}" required></label><button type="submit">{go}</button></form>"#,
        label = lang.pick("Fødselsnummer", "National identity number"),
        value = escape(wanted.unwrap_or("")),
        go = lang.pick("Finn pasient", "Find patient"),
    )
}

fn patient_rows(bundle: &Value, lang: Lang) -> String {
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e.get("resource"))
        .filter(|r| r["resourceType"] == "Patient")
        .map(|p| {
            let id = p["id"].as_str().unwrap_or("");
            format!(
                r#"<tr><td><a href="/portal/patients/{href}">{name}</a></td><td>{born}</td><td>{number}</td></tr>"#,
                href = escape(id),
                name = escape(&person_name(p).unwrap_or_else(|| id.to_owned())),
                born = escape(&p["birthDate"].as_str().map(|b| date(b, lang)).unwrap_or_default()),
                number = escape(
                    identifier(p, systems::FODSELSNUMMER).or_else(|| identifier(p, systems::D_NUMMER)).unwrap_or("")
                ),
            )
        })
        .collect()
}

/// The form that opens a patient's summary through emergency access; `who` is the patient
/// (`patient`, an id) or their number (`fnr`).
fn emergency_form(session: &Session, lang: Lang, who: (&str, &str)) -> String {
    format!(
        r#"<section class="emergency"><h2>{heading}</h2><p>{explain}</p><form method="post" action="/portal/emergency"><input type="hidden" name="csrf" value="{csrf}"><input type="hidden" name="{name}" value="{value}"><label>{reason} <textarea name="reason" maxlength="{MAX_EMERGENCY_REASON}" required></textarea></label><button type="submit">{go}</button></form></section>"#,
        heading = lang.pick("Nødtilgang", "Emergency access"),
        explain = lang.pick(
            "Du kan åpne sammendraget uten behandlingsrelasjon når det trengs for å gi helsehjelp. Oppgi grunnen. Tilgangen logges, pasienten ser den, og den blir gjennomgått.",
            "You may open the summary without a care relationship when it is needed to give care. State the reason. The access is logged, the patient sees it, and it is reviewed."
        ),
        csrf = escape(&session.csrf),
        name = who.0,
        value = escape(who.1),
        reason = lang.pick("Grunn", "Reason"),
        go = lang.pick("Åpne med nødtilgang", "Open with emergency access"),
    )
}

/// `GET /portal/patients/{id}`: the summary of a patient in my care.
pub async fn patient_summary(visit: Visit, Path(id): Path<String>) -> Response {
    let session = match practitioner_session(&visit) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let lang = visit.lang;
    let title = lang.pick("Pasientsammendrag", "Patient summary");
    let answer =
        match visit.fhir(Method::GET, &format!("Patient/{}/$summary", encode(&id)), None, None, None).await {
            Ok(a) => a,
            Err(e) => return visit.error(&e),
        };
    if answer.status == StatusCode::FORBIDDEN {
        // No care relationship: say so, and offer emergency access.
        let body = format!(
            r#"<p class="problem" role="alert">{}</p>{}"#,
            lang.pick("Pasienten er ikke i din behandling.", "This patient is not in your care."),
            emergency_form(session, lang, ("patient", &id))
        );
        return visit.page(StatusCode::FORBIDDEN, title, &body);
    }
    if !answer.ok() {
        return visit.failed(title, &answer);
    }
    visit.page(StatusCode::OK, title, &summary_body(&answer.body, lang, None))
}

fn summary_body(bundle: &Value, lang: Lang, emergency: Option<&str>) -> String {
    let mut body = render::patient_line(bundle, lang);
    if let Some(reason) = emergency {
        body.push_str(&format!(
            r#"<p class="emergency-banner" role="status">{}: {}</p>"#,
            lang.pick(
                "Åpnet med nødtilgang — logget, synlig for pasienten og til gjennomgang. Grunn",
                "Opened with emergency access — logged, visible to the patient and reviewed. Reason"
            ),
            escape(reason)
        ));
    }
    body.push_str(&render::summary(bundle, lang));
    body
}

/// `POST /portal/emergency`: a patient's summary through emergency access.
pub async fn emergency(visit: Visit, body: Bytes) -> Response {
    let session = match practitioner_session(&visit) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let lang = visit.lang;
    let title = lang.pick("Pasientsammendrag (nødtilgang)", "Patient summary (emergency access)");
    let form = form(&body);
    if !session.form_is_ours(&form) {
        return foreign_form(&visit);
    }
    let reason = field(&form, "reason").map(str::trim).unwrap_or("");
    if reason.is_empty() || reason.chars().count() > MAX_EMERGENCY_REASON {
        let who = match (field(&form, "patient"), field(&form, "fnr")) {
            (Some(p), _) => ("patient", p),
            (None, Some(n)) => ("fnr", n),
            _ => return redirect("/portal/patients"),
        };
        let body = format!(
            r#"<p class="problem" role="alert">{}</p>{}"#,
            lang.pick("Oppgi grunnen for nødtilgang.", "State the reason for emergency access."),
            emergency_form(session, lang, who)
        );
        return visit.page(StatusCode::UNPROCESSABLE_ENTITY, title, &body);
    }
    let reason = reason.to_owned();
    let id = match (field(&form, "patient"), field(&form, "fnr")) {
        (Some(p), _) => p.to_owned(),
        (None, Some(n)) => {
            let path = format!("Patient?identifier={}&_count=2", fnr_token(n.trim()));
            let found = match visit.read(title, &path, Some(reason.clone())).await {
                Ok(b) => b,
                Err(page) => return page,
            };
            let ids: Vec<&str> = found["entry"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|e| e.pointer("/resource/id").and_then(Value::as_str))
                .collect();
            match ids.as_slice() {
                [one] => (*one).to_owned(),
                _ => {
                    let body = format!(
                        r#"<p class="problem" role="alert">{}</p>"#,
                        lang.pick("Fant ingen pasient med dette nummeret.", "No patient has this number.")
                    );
                    return visit.page(StatusCode::NOT_FOUND, title, &body);
                }
            }
        }
        _ => return redirect("/portal/patients"),
    };
    let path = format!("Patient/{}/$summary", encode(&id));
    let summary = match visit.read(title, &path, Some(reason.clone())).await {
        Ok(b) => b,
        Err(page) => return page,
    };
    visit.page(StatusCode::OK, title, &summary_body(&summary, lang, Some(&reason)))
}
