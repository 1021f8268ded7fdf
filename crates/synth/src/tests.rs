use std::collections::{HashMap, HashSet};

use helse_fhir_r4::{IssueSeverity, validate_resource};
use serde_json::Value;

use super::*;

fn population(patients: usize, seed: u64) -> (Population, Vec<Value>) {
    let p = Population::new(SynthConfig { seed, patients, ..SynthConfig::default() });
    let mut all = p.infrastructure().to_vec();
    for i in 0..patients {
        all.extend(p.patient(i));
    }
    (p, all)
}

#[test]
fn the_same_seed_gives_the_same_population() {
    let (_, a) = population(20, 5);
    let (_, b) = population(20, 5);
    assert_eq!(a, b);
    let (_, c) = population(20, 6);
    assert_ne!(a, c);
}

#[test]
fn every_resource_is_valid_r4_and_every_reference_resolves() {
    let (_, all) = population(60, 11);
    let mut ids = HashSet::new();
    for r in &all {
        let key = format!("{}/{}", r["resourceType"].as_str().unwrap(), r["id"].as_str().unwrap());
        assert!(ids.insert(key.clone()), "{key} twice");
        let errors: Vec<_> = validate_resource(r, None)
            .into_iter()
            .filter(|i| matches!(i.severity, IssueSeverity::Error | IssueSeverity::Fatal))
            .collect();
        assert!(errors.is_empty(), "{key}: {errors:?}");
    }
    fn references(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("reference") {
                    out.push(r.clone());
                }
                m.values().for_each(|v| references(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| references(v, out)),
            _ => {}
        }
    }
    let mut refs = Vec::new();
    all.iter().for_each(|r| references(r, &mut refs));
    assert!(refs.len() > all.len());
    for r in refs {
        assert!(ids.contains(&r), "dangling reference {r}");
    }
}

#[test]
fn identifiers_are_valid_national_numbers() {
    let (_, all) = population(200, 3);
    let mut kinds = HashMap::new();
    for p in all.iter().filter(|r| r["resourceType"] == "Patient") {
        let value = p["identifier"][0]["value"].as_str().unwrap();
        let kind = helse_norway::identifiers::validate_person_id(value).expect(value);
        *kinds.entry(format!("{kind:?}")).or_insert(0) += 1;
        // The birth date is the one the number encodes.
        let birth = p["birthDate"].as_str().unwrap();
        let day: u32 = value[..2].parse().unwrap();
        assert_eq!(day % 40, birth[8..10].parse::<u32>().unwrap(), "{value} {birth}");
        assert_eq!(value[2..4], birth[5..7]);
        assert_eq!(value[4..6], birth[2..4]);
    }
    assert!(kinds["Fodselsnummer"] > 150 && kinds.contains_key("DNummer"), "{kinds:?}");
}

#[test]
fn older_people_carry_more_chronic_disease() {
    let (_, all) = population(400, 9);
    let age: HashMap<&str, i32> = all
        .iter()
        .filter(|r| r["resourceType"] == "Patient")
        .map(|p| {
            (p["id"].as_str().unwrap(), 2026 - p["birthDate"].as_str().unwrap()[..4].parse::<i32>().unwrap())
        })
        .collect();
    let mut conditions: HashMap<&str, usize> = HashMap::new();
    for r in all
        .iter()
        .filter(|r| r["resourceType"] == "Condition" && r["clinicalStatus"]["coding"][0]["code"] == "active")
    {
        *conditions
            .entry(r["subject"]["reference"].as_str().unwrap().trim_start_matches("Patient/"))
            .or_default() += 1;
    }
    let (mut young, mut old) = ((0, 0), (0, 0));
    for (id, a) in &age {
        let n = conditions.get(id).copied().unwrap_or(0);
        if *a < 40 {
            young = (young.0 + n, young.1 + 1);
        } else if *a >= 70 {
            old = (old.0 + n, old.1 + 1);
        }
    }
    let (y, o) = (young.0 as f64 / young.1 as f64, old.0 as f64 / old.1 as f64);
    assert!(o > 3.0 * y && o > 1.0, "chronic conditions per person: under 40 {y:.2}, 70 and over {o:.2}");
}

#[test]
fn gp_lists_hold_exactly_the_gps_patients() {
    let (p, all) = population(150, 4);
    let mut listed = 0;
    for g in all.iter().filter(|r| r["resourceType"] == "Group") {
        let role = g["managingEntity"]["reference"].as_str().unwrap();
        for m in g["member"].as_array().unwrap() {
            let pid = m["entity"]["reference"].as_str().unwrap().trim_start_matches("Patient/");
            let patient = all.iter().find(|r| r["resourceType"] == "Patient" && r["id"] == pid).unwrap();
            assert_eq!(patient["generalPractitioner"][0]["reference"].as_str(), Some(role));
            listed += 1;
        }
    }
    assert_eq!(listed, p.config().patients);
}

#[test]
fn referrals_carry_waiting_list_dates() {
    let (_, all) = population(200, 8);
    let referrals: Vec<&Value> = all.iter().filter(|r| r["resourceType"] == "ServiceRequest").collect();
    assert!(referrals.len() > 20, "{}", referrals.len());
    let waiting = referrals.iter().filter(|r| r["status"] == "active").count();
    assert!(waiting > 0, "someone is on a waiting list");
    for r in referrals {
        let ext = |name: &str| {
            r["extension"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["url"].as_str().unwrap().ends_with(name))
                .cloned()
        };
        let received = ext("referral-received").unwrap()["valueDate"].as_str().unwrap().to_owned();
        let assessed = ext("referral-assessed").unwrap()["valueDate"].as_str().unwrap().to_owned();
        assert!(assessed > received);
        if ext("right-to-necessary-care").unwrap()["valueBoolean"] == true {
            assert!(ext("treatment-deadline").unwrap()["valueDate"].as_str().unwrap() > received.as_str());
        }
    }
}
