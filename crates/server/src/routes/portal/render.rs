//! FHIR resources as HTML for people: the summary document section by section (critical
//! information first and marked so), a donor statement in words, the access log as a table.

use std::collections::HashMap;

use serde_json::Value;

use crate::describe::{concept, identifier, person_name};
use crate::donor;
use crate::html::{Lang, escape};

/// The summary's sections a reader must not miss: alerts and allergies.
const CRITICAL: [&str; 2] = ["104605-1", "48765-2"];

/// A date (or the date of a dateTime) as the language writes it.
pub fn date(text: &str, lang: Lang) -> String {
    let day = text.get(..10).unwrap_or(text);
    match (lang, day.split('-').collect::<Vec<_>>().as_slice()) {
        (Lang::No, [y, m, d]) => format!("{d}.{m}.{y}"),
        _ => day.to_owned(),
    }
}

/// A moment (`recorded`) to the minute, in UTC.
pub fn moment(text: &str, lang: Lang) -> String {
    let time = text.get(11..16).unwrap_or("");
    format!("{} {time} UTC", date(text, lang))
}

fn field_date<'a>(r: &'a Value, fields: &[&str]) -> Option<&'a str> {
    fields.iter().find_map(|f| {
        let v = r.get(*f)?;
        v.as_str().or_else(|| v.get("start").and_then(Value::as_str))
    })
}

/// An Observation's value in words.
fn value(r: &Value) -> Option<String> {
    if let Some(q) = r.get("valueQuantity") {
        let number = q.get("value").map(|v| v.to_string()).unwrap_or_default();
        let unit = q.get("unit").or_else(|| q.get("code")).and_then(Value::as_str).unwrap_or("");
        return Some(format!("{number} {unit}").trim().to_owned());
    }
    if let Some(c) = r.get("valueCodeableConcept") {
        return concept(c).map(str::to_owned);
    }
    for f in ["valueString", "valueBoolean", "valueInteger"] {
        if let Some(v) = r.get(f) {
            return Some(v.as_str().map_or_else(|| v.to_string(), str::to_owned));
        }
    }
    let parts: Vec<String> = r
        .get("component")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| Some(format!("{} {}", concept(c.get("code")?)?, value(c)?)))
        .collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// The organs a donor statement leaves out, and the next of kin it names.
fn donor_details(r: &Value, lang: Lang) -> String {
    let organs: Vec<String> = r
        .pointer("/provision/provision")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .flat_map(|p| p["code"].as_array().into_iter().flatten())
        .filter_map(|c| {
            let code = c.pointer("/coding/0/code").and_then(Value::as_str)?;
            Some(organ_name(code, lang).map_or_else(|| concept(c).unwrap_or(code).to_owned(), str::to_owned))
        })
        .collect();
    let kin: Vec<&str> = r
        .pointer("/provision/actor")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|a| a.pointer("/role/coding/0/code").and_then(Value::as_str) == Some("NOK"))
        .filter_map(|a| a.pointer("/reference/display").and_then(Value::as_str))
        .collect();
    let mut out = String::new();
    if !organs.is_empty() {
        out.push_str(&format!("{}: {}. ", lang.pick("Unntatt", "Except"), organs.join(", ")));
    }
    if !kin.is_empty() {
        out.push_str(&format!(
            "{}: {}.",
            lang.pick("Pårørende som kjenner ønsket", "Next of kin informed"),
            kin.join(", ")
        ));
    }
    out.trim().to_owned()
}

/// The organs the donor form offers (SNOMED CT body structures): code, Norwegian, English.
pub const ORGANS: [(&str, &str, &str); 7] = [
    ("80891009", "Hjerte", "Heart"),
    ("39607008", "Lunger", "Lungs"),
    ("10200004", "Lever", "Liver"),
    ("64033007", "Nyrer", "Kidneys"),
    ("15776009", "Bukspyttkjertel", "Pancreas"),
    ("30315005", "Tynntarm", "Small intestine"),
    ("28726007", "Hornhinner", "Corneas"),
];

pub fn organ_name(code: &str, lang: Lang) -> Option<&'static str> {
    ORGANS.iter().find(|(c, ..)| *c == code).map(|(_, no, en)| lang.pick(no, en))
}

/// A donor statement's code in words.
pub fn statement_words(code: &str, lang: Lang) -> &'static str {
    match code {
        "willing" => lang.pick("Jeg vil være organdonor", "I want to be an organ donor"),
        "willing-with-restrictions" => {
            lang.pick("Jeg vil være organdonor, med unntak", "I want to be an organ donor, with exceptions")
        }
        "not-willing" => lang.pick("Jeg vil ikke være organdonor", "I do not want to be an organ donor"),
        "next-of-kin-decides" => lang.pick("Mine pårørende avgjør", "My next of kin decide"),
        _ => lang.pick("Ukjent erklæring", "Unknown statement"),
    }
}

/// One resource of the summary in a line (plain text; the caller escapes it).
pub fn line(r: &Value, lang: Lang) -> String {
    let ty = r.get("resourceType").and_then(Value::as_str).unwrap_or("");
    let unnamed = lang.pick("(uten navn)", "(unnamed)");
    let mut parts: Vec<String> = Vec::new();
    let mut when = None;
    match ty {
        "Consent" if donor::is_statement(r) => {
            let code = donor::statement(r).unwrap_or("");
            parts.push(format!(
                "{}: {}",
                lang.pick("Organdonasjon", "Organ donation"),
                statement_words(code, lang)
            ));
            let details = donor_details(r, lang);
            if !details.is_empty() {
                parts.push(details);
            }
            when = r.get("dateTime").and_then(Value::as_str);
        }
        "Consent" => parts.push(r.get("category").and_then(concept).unwrap_or(unnamed).to_owned()),
        "MedicationStatement" | "MedicationRequest" => {
            let drug = r
                .get("medicationCodeableConcept")
                .and_then(concept)
                .or_else(|| r.pointer("/medicationReference/display").and_then(Value::as_str));
            parts.push(drug.unwrap_or(unnamed).to_owned());
            let dose = r
                .pointer("/dosage/0/text")
                .or_else(|| r.pointer("/dosageInstruction/0/text"))
                .and_then(Value::as_str);
            parts.extend(dose.map(str::to_owned));
            when = field_date(r, &["effectiveDateTime", "effectivePeriod", "authoredOn", "dateAsserted"]);
        }
        "DeviceUseStatement" => {
            parts.push(r.pointer("/device/display").and_then(Value::as_str).unwrap_or(unnamed).to_owned());
            when = field_date(r, &["timingDateTime", "timingPeriod", "recordedOn"]);
        }
        "Encounter" => {
            let kind = r
                .get("type")
                .and_then(concept)
                .or_else(|| r.pointer("/class/display").and_then(Value::as_str))
                .or_else(|| r.pointer("/class/code").and_then(Value::as_str));
            parts.push(kind.unwrap_or(unnamed).to_owned());
            parts.extend(r.pointer("/serviceProvider/display").and_then(Value::as_str).map(str::to_owned));
            when = field_date(r, &["period"]);
        }
        "Immunization" => {
            parts.push(r.get("vaccineCode").and_then(concept).unwrap_or(unnamed).to_owned());
            when = field_date(r, &["occurrenceDateTime"]);
        }
        _ => {
            parts.push(r.get("code").and_then(concept).unwrap_or(unnamed).to_owned());
            if ty == "Observation" {
                parts.extend(value(r));
            }
            if ty == "AllergyIntolerance" {
                if r["criticality"] == "high" {
                    parts.push(lang.pick("høy kritikalitet", "high criticality").to_owned());
                }
                let reactions: Vec<&str> = r
                    .get("reaction")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .flat_map(|x| x["manifestation"].as_array().into_iter().flatten())
                    .filter_map(concept)
                    .collect();
                if !reactions.is_empty() {
                    parts.push(format!("{}: {}", lang.pick("reaksjon", "reaction"), reactions.join(", ")));
                }
            }
            when = field_date(
                r,
                &[
                    "effectiveDateTime",
                    "effectivePeriod",
                    "onsetDateTime",
                    "performedDateTime",
                    "performedPeriod",
                    "recordedDate",
                    "period",
                ],
            );
        }
    }
    let mut text = parts.join(" — ");
    if let Some(w) = when {
        text.push_str(&format!(" ({})", date(w, lang)));
    }
    text
}

/// The summary document (a `document` Bundle from `$summary`) as HTML: the patient, then
/// each section, critical ones first and marked, each entry with the institution that
/// recorded it.
pub fn summary(bundle: &Value, lang: Lang) -> String {
    let entries: Vec<&Value> = bundle["entry"].as_array().into_iter().flatten().collect();
    let by_ref: HashMap<String, &Value> = entries
        .iter()
        .filter_map(|e| {
            let r = e.get("resource")?;
            Some((format!("{}/{}", r["resourceType"].as_str()?, r["id"].as_str()?), r))
        })
        .collect();
    // Which organisation recorded each entry (the document's Provenance).
    let mut source: HashMap<&str, String> = HashMap::new();
    for p in entries.iter().filter_map(|e| e.get("resource")).filter(|r| r["resourceType"] == "Provenance") {
        let Some(org) = p.pointer("/agent/0/who/reference").and_then(Value::as_str) else { continue };
        let name = by_ref.get(org).and_then(|o| o["name"].as_str()).unwrap_or(org).to_owned();
        for t in p["target"].as_array().into_iter().flatten() {
            if let Some(t) = t["reference"].as_str() {
                source.insert(t, name.clone());
            }
        }
    }
    let composition = entries.first().and_then(|e| e.get("resource")).cloned().unwrap_or(Value::Null);
    let mut parts: Vec<(u8, String)> = Vec::new();
    for section in composition["section"].as_array().into_iter().flatten() {
        let title = lang.half(section["title"].as_str().unwrap_or(""));
        let code = section.pointer("/code/coding/0/code").and_then(Value::as_str).unwrap_or("");
        let refs: Vec<&str> = section["entry"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["reference"].as_str())
            .collect();
        let class = if code.is_empty() {
            // A section without a code says something is withheld.
            "withheld"
        } else if CRITICAL.contains(&code) {
            "critical"
        } else {
            "ordinary"
        };
        let items = if refs.is_empty() {
            let said = if code.is_empty() {
                section.pointer("/text/div").and_then(Value::as_str).map(strip_tags).unwrap_or_default()
            } else {
                lang.pick("Ingen opplysninger.", "No information.").to_owned()
            };
            format!(r#"<p class="none">{}</p>"#, escape(&said))
        } else {
            let lis: String = refs
                .iter()
                .filter_map(|r| by_ref.get(*r).map(|body| (*r, *body)))
                .map(|(r, body)| {
                    let from = source
                        .get(r)
                        .map(|o| {
                            format!(
                                r#" <span class="source">{} {}</span>"#,
                                lang.pick("Registrert av", "Recorded by"),
                                escape(o)
                            )
                        })
                        .unwrap_or_default();
                    format!("<li>{}{from}</li>", escape(&line(body, lang)))
                })
                .collect();
            format!("<ul>{lis}</ul>")
        };
        let id = if code.is_empty() { "withheld".to_owned() } else { format!("s-{code}") };
        let rank = match class {
            "critical" => 0,
            "withheld" => 1,
            _ => 2,
        };
        parts.push((rank, format!(
            r#"<section class="{class}" id="{id}" aria-labelledby="{id}-h"><h2 id="{id}-h">{}</h2>{items}</section>"#,
            escape(title),
        )));
    }
    // Critical information first, whatever order the document has; the rest as it has it.
    parts.sort_by_key(|(rank, _)| *rank);
    parts.into_iter().map(|(_, html)| html).collect()
}

/// The patient a summary is about, as a heading line: name, birth date, fødselsnummer.
pub fn patient_line(bundle: &Value, lang: Lang) -> String {
    let Some(patient) = bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e.get("resource"))
        .find(|r| r["resourceType"] == "Patient")
    else {
        return String::new();
    };
    let name = person_name(patient).unwrap_or_default();
    let born =
        patient["birthDate"].as_str().map(|b| format!("{} {}", lang.pick("født", "born"), date(b, lang)));
    let fnr = identifier(patient, helse_norway::systems::FODSELSNUMMER)
        .or_else(|| identifier(patient, helse_norway::systems::D_NUMMER))
        .map(|n| format!("{} {n}", lang.pick("fødselsnr.", "national id")));
    let parts: Vec<String> =
        [Some(name), born, fnr].into_iter().flatten().filter(|p| !p.is_empty()).collect();
    format!(r#"<p class="patient">{}</p>"#, escape(&parts.join(" · ")))
}

/// The text of an XHTML narrative, without its markup.
fn strip_tags(div: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for c in div.chars() {
        match c {
            '<' => inside = true,
            '>' => inside = false,
            c if !inside => out.push(c),
            _ => {}
        }
    }
    out.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn resources_read_as_lines_in_each_language() {
        let obs = json!({"resourceType": "Observation", "code": {"text": "Hemoglobin"},
            "valueQuantity": {"value": 13.5, "unit": "g/dL"}, "effectiveDateTime": "2026-03-04T10:00:00Z"});
        assert_eq!(line(&obs, Lang::No), "Hemoglobin — 13.5 g/dL (04.03.2026)");
        assert_eq!(line(&obs, Lang::En), "Hemoglobin — 13.5 g/dL (2026-03-04)");
        let allergy = json!({"resourceType": "AllergyIntolerance", "criticality": "high",
            "code": {"coding": [{"display": "Penicillin"}]},
            "reaction": [{"manifestation": [{"text": "Anafylaksi"}]}]});
        assert_eq!(line(&allergy, Lang::En), "Penicillin — high criticality — reaction: Anafylaksi");
        let donor = crate::donor::tests::statement_of(
            "willing-with-restrictions",
            json!({"type": "permit", "provision": [{"type": "deny", "code": [{"coding": [{"system": "http://snomed.info/sct", "code": "64033007"}]}]}],
                   "actor": [{"role": {"coding": [{"code": "NOK"}]}, "reference": {"display": "Ola"}}]}),
        );
        assert_eq!(
            line(&donor, Lang::No),
            "Organdonasjon: Jeg vil være organdonor, med unntak — Unntatt: Nyrer. Pårørende som kjenner ønsket: Ola."
        );
    }

    #[test]
    fn critical_sections_are_marked_and_entries_name_their_source() {
        let bundle = json!({"entry": [
            {"resource": {"resourceType": "Composition", "section": [
                {"title": "Kritisk informasjon / Alerts", "code": {"coding": [{"code": "104605-1"}]},
                 "entry": [{"reference": "Flag/f1"}]},
                {"title": "Vaksiner / Immunizations", "code": {"coding": [{"code": "11369-6"}]}},
            ]}},
            {"resource": {"resourceType": "Flag", "id": "f1", "code": {"text": "Smitte <MRSA>"}}},
            {"resource": {"resourceType": "Organization", "id": "h", "name": "Sykehuset"}},
            {"resource": {"resourceType": "Provenance", "target": [{"reference": "Flag/f1"}],
                          "agent": [{"who": {"reference": "Organization/h"}}]}},
        ]});
        let html = summary(&bundle, Lang::En);
        assert!(html.starts_with(r#"<section class="critical" id="s-104605-1""#), "{html}");
        assert!(html.contains("<h2 id=\"s-104605-1-h\">Alerts</h2>"));
        assert!(html.contains("Smitte &lt;MRSA&gt;"), "escaped: {html}");
        assert!(html.contains("Recorded by Sykehuset"));
        assert!(html.contains(r#"<section class="ordinary" id="s-11369-6""#));
        assert!(html.contains("No information."));
    }
}
