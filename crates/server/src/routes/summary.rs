//! `Patient/{id}/$summary`: the patient summary (kjernejournal's core, shaped as the
//! International Patient Summary) — a `document` Bundle built from the live record, never
//! typed in twice. A `Composition` with one section per IPS heading (critical information
//! first), each listing the resources that belong there by a rule of the table below; every
//! entry's recording institution is stated by a `Provenance` in the document (from the
//! record's own Provenance, else the organisation behind the resource's recorder, asserter,
//! performer or requester, else its encounter's service provider). The reach applies as to
//! any read: what the patient blocked from the reader is not in it.

use std::collections::{BTreeMap, HashMap};

use axum::http::StatusCode;
use helse_fhir_r4::{Instant, ResourceId, ResourceType};
use helse_store::StoredVersion;
use serde_json::{Map, Value, json};

use crate::error::FhirError;
use crate::response::{FhirResponse, Payload};
use crate::routes::fhir::Ctx;
use crate::routes::search::compartment;

/// One section: its LOINC code and title, the resource types in it, the rule that picks a
/// resource, whether only the latest per code is kept, how many it lists at most, and
/// whether IPS requires it even when empty.
struct Section {
    code: &'static str,
    title: &'static str,
    types: &'static [&'static str],
    keep: fn(&Value) -> bool,
    latest_per_code: bool,
    most: Option<usize>,
    required: bool,
}

/// In the order a reader needs them: critical information first.
const SECTIONS: &[Section] = &[
    Section {
        code: "104605-1",
        title: "Kritisk informasjon / Alerts",
        types: &["Flag"],
        keep: |r| status(r) == Some("active"),
        latest_per_code: false,
        most: None,
        required: false,
    },
    Section {
        code: "48765-2",
        title: "Allergier og intoleranser / Allergies and intolerances",
        types: &["AllergyIntolerance"],
        keep: |r| {
            confirmed(r) && coded(r, "clinicalStatus").is_none_or(|s| !matches!(s, "inactive" | "resolved"))
        },
        latest_per_code: false,
        most: None,
        required: true,
    },
    Section {
        code: "11450-4",
        title: "Problemliste / Problem list",
        types: &["Condition"],
        keep: |r| {
            confirmed(r)
                && coded(r, "clinicalStatus").is_none_or(|s| matches!(s, "active" | "recurrence" | "relapse"))
        },
        latest_per_code: false,
        most: None,
        required: true,
    },
    Section {
        code: "10160-0",
        title: "Legemidler / Medication summary",
        types: &["MedicationStatement", "MedicationRequest"],
        keep: |r| matches!(status(r), Some("active" | "intended" | "on-hold")),
        latest_per_code: false,
        most: None,
        required: true,
    },
    Section {
        code: "11369-6",
        title: "Vaksiner / Immunizations",
        types: &["Immunization"],
        keep: |r| status(r) == Some("completed"),
        latest_per_code: false,
        most: None,
        required: false,
    },
    Section {
        code: "30954-2",
        title: "Prøvesvar / Results",
        types: &["Observation"],
        keep: |r| in_category(r, "laboratory") && final_result(r),
        latest_per_code: true,
        most: None,
        required: false,
    },
    Section {
        code: "8716-3",
        title: "Vitale tegn / Vital signs",
        types: &["Observation"],
        keep: |r| in_category(r, "vital-signs") && final_result(r),
        latest_per_code: true,
        most: None,
        required: false,
    },
    Section {
        code: "47519-4",
        title: "Prosedyrer / Procedures",
        types: &["Procedure"],
        keep: |r| status(r) == Some("completed"),
        latest_per_code: false,
        most: None,
        required: false,
    },
    Section {
        code: "46264-8",
        title: "Medisinsk utstyr / Medical devices",
        types: &["DeviceUseStatement"],
        keep: |r| matches!(status(r), Some("active" | "completed")),
        latest_per_code: false,
        most: None,
        required: false,
    },
    Section {
        code: "42348-3",
        title: "Forhåndserklæringer / Advance directives",
        types: &["Consent"],
        keep: |r| status(r) == Some("active") && coded(r, "scope") == Some("adr"),
        latest_per_code: false,
        most: None,
        required: false,
    },
    Section {
        code: "46240-8",
        title: "Kontakter med helsetjenesten / Encounters",
        types: &["Encounter"],
        keep: |r| status(r) != Some("entered-in-error") && status(r) != Some("cancelled"),
        latest_per_code: false,
        // The most recent contacts.
        most: Some(10),
        required: false,
    },
];

fn status(r: &Value) -> Option<&str> {
    r.get("status").and_then(Value::as_str)
}

/// The first code of a CodeableConcept element.
fn coded<'a>(r: &'a Value, element: &str) -> Option<&'a str> {
    r.get(element)?.get("coding")?.as_array()?.iter().find_map(|c| c.get("code").and_then(Value::as_str))
}

fn confirmed(r: &Value) -> bool {
    !matches!(coded(r, "verificationStatus"), Some("refuted" | "entered-in-error"))
}

fn final_result(r: &Value) -> bool {
    matches!(status(r), Some("final" | "amended" | "corrected"))
}

fn in_category(r: &Value, code: &str) -> bool {
    r.get("category")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|c| c.get("coding").and_then(Value::as_array).into_iter().flatten().any(|x| x["code"] == code))
}

/// When a resource happened (for order, and for "latest"): its effective, onset, occurrence,
/// authored, recorded or period start, else when it was stored.
fn when(v: &StoredVersion, r: &Value) -> String {
    const FIELDS: [&str; 9] = [
        "effectiveDateTime",
        "onsetDateTime",
        "occurrenceDateTime",
        "performedDateTime",
        "authoredOn",
        "recordedDate",
        "dateAsserted",
        "dateTime",
        "issued",
    ];
    FIELDS
        .iter()
        .find_map(|f| r.get(*f).and_then(Value::as_str))
        .or_else(|| r.pointer("/period/start").and_then(Value::as_str))
        .or_else(|| r.pointer("/effectivePeriod/start").and_then(Value::as_str))
        .or_else(|| r.pointer("/performedPeriod/start").and_then(Value::as_str))
        .map_or_else(|| v.last_updated.to_string(), str::to_owned)
}

/// `system|code` of a resource's `code` (for "latest per code").
fn code_key(r: &Value) -> String {
    let c = r.pointer("/code/coding/0");
    format!(
        "{}|{}",
        c.and_then(|c| c.get("system")).and_then(Value::as_str).unwrap_or(""),
        c.and_then(|c| c.get("code")).and_then(Value::as_str).unwrap_or("")
    )
}

/// A stored resource in the summary: its version, its body, when it happened.
struct Item {
    version: StoredVersion,
    body: Value,
    when: String,
}

/// Which items each section lists, in order (newest first).
fn sections(items: &[Item]) -> Vec<(&'static Section, Vec<&Item>)> {
    let mut by_type: HashMap<&str, Vec<&Item>> = HashMap::new();
    for item in items {
        by_type.entry(item.version.resource_type.as_str()).or_default().push(item);
    }
    let mut out = Vec::new();
    for section in SECTIONS {
        let mut chosen: Vec<&Item> = section
            .types
            .iter()
            .flat_map(|ty| by_type.get(ty).into_iter().flatten())
            .filter(|item| (section.keep)(&item.body))
            .copied()
            .collect();
        chosen.sort_by(|a, b| {
            b.when.cmp(&a.when).then_with(|| a.version.id.as_str().cmp(b.version.id.as_str()))
        });
        if section.latest_per_code {
            let mut seen = std::collections::HashSet::new();
            chosen.retain(|i| seen.insert(code_key(&i.body)));
        }
        if let Some(most) = section.most {
            chosen.truncate(most);
        }
        out.push((section, chosen));
    }
    out
}

/// A short human-readable line for an entry (the section's narrative).
fn display(r: &Value) -> String {
    let concept = ["code", "vaccineCode", "medicationCodeableConcept", "type"]
        .iter()
        .find_map(|f| crate::describe::concept(r.get(*f)?));
    let value = r.get("valueQuantity").map(|q| {
        format!(
            " {} {}",
            q.get("value").map(|v| v.to_string()).unwrap_or_default(),
            q.get("unit").and_then(Value::as_str).unwrap_or("")
        )
    });
    format!("{}{}", concept.unwrap_or("(uten navn / unnamed)"), value.unwrap_or_default()).trim().to_owned()
}

/// The organisation responsible for a resource: who recorded, asserted, performed or
/// requested it (an Organization, or a PractitionerRole's organisation), else the service
/// provider of its encounter; for an Encounter its own service provider.
async fn responsible(ctx: &Ctx<'_>, r: &Value, memo: &mut HashMap<String, Option<String>>) -> Option<String> {
    let mut refs: Vec<String> = Vec::new();
    for field in
        ["recorder", "asserter", "requester", "informationSource", "serviceProvider", "performer", "author"]
    {
        let Some(v) = r.get(field) else { continue };
        let items: Vec<&Value> = match v {
            Value::Array(a) => a.iter().collect(),
            other => vec![other],
        };
        for item in items {
            let target = item.get("reference").or_else(|| item.pointer("/actor/reference"));
            if let Some(t) = target.and_then(Value::as_str) {
                refs.push(t.to_owned());
            }
        }
    }
    if let Some(e) = r.pointer("/encounter/reference").and_then(Value::as_str) {
        refs.push(e.to_owned());
    }
    for reference in refs {
        if reference.starts_with("Organization/") {
            return Some(reference);
        }
        if reference.starts_with("PractitionerRole/") || reference.starts_with("Encounter/") {
            if let Some(found) = memo.get(&reference) {
                if found.is_some() {
                    return found.clone();
                }
                continue;
            }
            let field = if reference.starts_with("Encounter/") {
                "/serviceProvider/reference"
            } else {
                "/organization/reference"
            };
            let org = read_reference(ctx, &reference)
                .await
                .and_then(|b| b.pointer(field).and_then(Value::as_str).map(str::to_owned))
                .filter(|o| o.starts_with("Organization/"));
            memo.insert(reference, org.clone());
            if org.is_some() {
                return org;
            }
        }
    }
    None
}

async fn read_reference(ctx: &Ctx<'_>, reference: &str) -> Option<Value> {
    crate::reach::read_json(ctx.state, reference).await.ok().flatten()
}

fn full_url(ctx: &Ctx<'_>, ty: &str, id: &str) -> String {
    format!("{}/{ty}/{id}", ctx.base)
}

fn urn() -> String {
    format!("urn:uuid:{}", uuid::Uuid::new_v4())
}

pub async fn summary(ctx: &Ctx<'_>, id: &ResourceId) -> Result<FhirResponse, FhirError> {
    let patient_type = ResourceType::parse("Patient").expect("a type");
    let wanted = |t: &str| SECTIONS.iter().any(|s| s.types.contains(&t)) || t == "Provenance";
    let (patient, members) = compartment(ctx, patient_type, id, wanted).await?;
    let members = crate::reach::keep_visible_members(ctx.state, ctx.access, id.as_str(), members).await?;
    // The record's own Provenance, by target.
    let mut recorded_by: HashMap<String, String> = HashMap::new();
    let (provenances, members): (Vec<_>, Vec<_>) =
        members.into_iter().partition(|(v, _)| v.resource_type.as_str() == "Provenance");
    for (_, body) in &provenances {
        let org = body["agent"].as_array().into_iter().flatten().find_map(|a| {
            a.pointer("/who/reference")
                .and_then(Value::as_str)
                .filter(|w| w.starts_with("Organization/"))
                .map(str::to_owned)
        });
        if let Some(org) = org {
            for t in body["target"].as_array().into_iter().flatten() {
                if let Some(r) = t.get("reference").and_then(Value::as_str) {
                    recorded_by.insert(r.to_owned(), org.clone());
                }
            }
        }
    }
    let notes = crate::reach::patient_notes(ctx.state, ctx.access, id.as_str()).await?;
    let items: Vec<Item> = members
        .into_iter()
        .map(|(version, body)| Item { when: when(&version, &body), version, body })
        .collect();
    let sections = sections(&items);

    let now = Instant::now();
    let composition_url = urn();
    let mut entries: Vec<Value> = Vec::new();
    let mut composition_sections = Vec::new();
    let mut by_org: BTreeMap<String, (Vec<String>, String)> = BTreeMap::new();
    let mut memo = HashMap::new();
    let mut listed = std::collections::HashSet::new();
    for (section, items) in &sections {
        let mut refs = Vec::new();
        let mut lines = Vec::new();
        for item in items {
            let reference = format!("{}/{}", item.version.resource_type, item.version.id);
            refs.push(json!({"reference": reference}));
            lines.push(format!("<li>{}</li>", crate::html::escape(&display(&item.body))));
            if listed.insert(reference.clone()) {
                entries.push(json!({
                    "fullUrl": full_url(ctx, item.version.resource_type.as_str(), item.version.id.as_str()),
                    "resource": item.body,
                }));
                let org = match recorded_by.get(&reference) {
                    Some(o) => Some(o.clone()),
                    None => responsible(ctx, &item.body, &mut memo).await,
                };
                if let Some(org) = org {
                    let slot = by_org.entry(org).or_default();
                    slot.0.push(reference.clone());
                    let updated = item.version.last_updated.to_string();
                    if updated > slot.1 {
                        slot.1 = updated;
                    }
                }
            }
        }
        let mut s = Map::new();
        s.insert("title".into(), json!(section.title));
        s.insert("code".into(), json!({"coding": [{"system": "http://loinc.org", "code": section.code}]}));
        let div = if lines.is_empty() {
            "<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>Ingen opplysninger / No information</p></div>"
                .to_owned()
        } else {
            format!("<div xmlns=\"http://www.w3.org/1999/xhtml\"><ul>{}</ul></div>", lines.join(""))
        };
        s.insert("text".into(), json!({"status": "generated", "div": div}));
        if refs.is_empty() {
            if !section.required {
                continue;
            }
            s.insert(
                "emptyReason".into(),
                json!({"coding": [{"system": "http://terminology.hl7.org/CodeSystem/list-empty-reason", "code": "unavailable"}]}),
            );
        } else {
            s.insert("entry".into(), Value::Array(refs));
        }
        composition_sections.push(Value::Object(s));
    }
    if !notes.is_empty() {
        let text: Vec<String> = notes.iter().map(|n| crate::html::escape(&n.diagnostics)).collect();
        composition_sections.insert(
            0,
            json!({"title": "Sperret informasjon / Blocked information",
                   "text": {"status": "generated", "div": format!("<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>{}</p></div>", text.join(" "))},
                   "emptyReason": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/list-empty-reason", "code": "withheld"}]}}),
        );
    }
    // Who recorded what: one Provenance per organisation, and the organisations themselves.
    let mut provenance_entries = Vec::new();
    for (org, (targets, recorded)) in &by_org {
        if let Some(body) = read_reference(ctx, org).await {
            let (ty, oid) = org.split_once('/').expect("Type/id");
            entries.push(json!({"fullUrl": full_url(ctx, ty, oid), "resource": body}));
        }
        provenance_entries.push(json!({
            "fullUrl": urn(),
            "resource": {
                "resourceType": "Provenance",
                "target": targets.iter().map(|t| json!({"reference": t})).collect::<Vec<_>>(),
                "recorded": recorded,
                "agent": [{"who": {"reference": org}}],
            },
        }));
    }
    entries.extend(provenance_entries);
    let patient_body: Value = serde_json::from_str(patient.body.as_deref().unwrap_or("{}"))
        .map_err(|e| FhirError::Internal(format!("stored body unreadable: {e}")))?;
    let composition = json!({
        "resourceType": "Composition",
        "status": "final",
        "type": {"coding": [{"system": "http://loinc.org", "code": "60591-5", "display": "Patient summary Document"}]},
        "subject": {"reference": format!("Patient/{id}")},
        "date": now.to_string(),
        "author": [{"display": "Helse — built from the shared record"}],
        "title": "Pasientsammendrag / Patient summary",
        "section": composition_sections,
    });
    let mut all = vec![
        json!({"fullUrl": composition_url, "resource": composition}),
        json!({"fullUrl": full_url(ctx, "Patient", id.as_str()), "resource": patient_body}),
    ];
    all.extend(entries);
    let bundle = json!({
        "resourceType": "Bundle",
        "identifier": {"system": "urn:ietf:rfc:3986", "value": urn()},
        "type": "document",
        "timestamp": now.to_string(),
        "entry": all,
    });
    Ok(FhirResponse::new(StatusCode::OK, Payload::Json(bundle)))
}
