//! The health service around the population: regions, health trusts and hospitals,
//! municipalities with GP offices and nursing homes, their staff and shift rosters.

use helse_norway::identifiers::{PersonIdKind, Sex, issue_organisation_number, issue_person_id};
use helse_norway::registers::{HEALTH_REGIONS, HEALTH_TRUSTS, MUNICIPALITIES, Municipality};
use helse_norway::systems;
use serde_json::{Value, json};
use time::Duration;

use crate::catalogue::{FAMILY_NAMES, FEMALE_NAMES, MALE_NAMES, SNOMED};
use crate::rng::Rng;
use crate::values::{address, concept_of, date, date_time, identifier, reference, resource};
use crate::{SynthConfig, patient_id, streams};

/// A GP: where they work and the ids patients and encounters point at.
#[derive(Debug, Clone)]
pub struct Gp {
    pub practitioner: String,
    pub role: String,
    pub office: String,
}

/// What one municipality offers the patients living there.
#[derive(Debug, Clone)]
pub struct Local {
    pub municipality: &'static Municipality,
    pub organisation: String,
    pub gps: Vec<Gp>,
    pub nursing_home: String,
    pub nursing_home_location: String,
    pub hospital: String,
    pub hospital_location: String,
}

pub struct Infrastructure {
    pub resources: Vec<Value>,
    /// By index into `MUNICIPALITIES`; `None` where no patient lives.
    pub locals: Vec<Option<Local>>,
    /// Each patient's municipality index and GP (index into that municipality's `gps`).
    pub homes: Vec<(usize, usize)>,
}

/// Roughly how many patients a GP has on their list in Norway.
const LIST_SIZE: usize = 1_100;
const NURSING_HOME_STAFF: usize = 6;
const ROSTER_DAYS: i64 = 28;

/// Where patient `index` lives, weighted by municipality population.
pub fn home_municipality(seed: u64, index: usize) -> usize {
    let weights: Vec<f64> = MUNICIPALITIES.iter().map(|m| m.population as f64).collect();
    Rng::stream(seed, streams::HOME, index as u64).weighted(&weights)
}

fn practitioner(rng: &mut Rng, id: &str, hpr: u32, category: (&str, &str), seed: u64) -> Value {
    let female = rng.chance(0.5);
    let given = if female { *rng.pick(&FEMALE_NAMES) } else { *rng.pick(&MALE_NAMES) };
    let family = *rng.pick(&FAMILY_NAMES);
    let born = (rng.range(1960, 1995) as i32, rng.range(1, 12) as u32, rng.range(1, 28) as u32);
    let sex = if female { Sex::Female } else { Sex::Male };
    let fnr = issue_person_id(born, sex, PersonIdKind::Fodselsnummer, (seed as u32).wrapping_add(hpr))
        .expect("an individual number exists");
    json!({
        "resourceType": "Practitioner",
        "id": id,
        "identifier": [identifier(systems::HPR_NUMMER, &hpr.to_string()), identifier(systems::FODSELSNUMMER, &fnr)],
        "active": true,
        "name": [{"family": family, "given": [given], "text": format!("{given} {family}")}],
        "gender": if female { "female" } else { "male" },
        "qualification": [{"code": concept_of(systems::HEALTH_PERSONNEL_CATEGORY, category.0, category.1)}]
    })
}

fn organisation(id: &str, name: &str, kind: (&str, &str), ids: &[Value], part_of: Option<&str>) -> Value {
    let mut o = resource("Organization", id);
    o.insert("identifier".into(), Value::Array(ids.to_vec()));
    o.insert("active".into(), Value::Bool(true));
    o.insert(
        "type".into(),
        json!([concept_of("http://terminology.hl7.org/CodeSystem/organization-type", kind.0, kind.1)]),
    );
    o.insert("name".into(), Value::from(name));
    if let Some(parent) = part_of {
        o.insert("partOf".into(), reference("Organization", parent));
    }
    Value::Object(o)
}

fn location(id: &str, name: &str, m: &Municipality, organisation: &str) -> Value {
    json!({
        "resourceType": "Location",
        "id": id,
        "status": "active",
        "name": name,
        "mode": "instance",
        "address": address(m, "work", None, "Sykehusveien 1"),
        "managingOrganization": reference("Organization", organisation)
    })
}

impl Infrastructure {
    pub fn build(config: &SynthConfig) -> Self {
        let seed = config.seed;
        let s = |rest: &str| format!("s{seed}-{rest}");
        let mut rng = Rng::stream(seed, streams::INFRASTRUCTURE, 0);
        let mut out = Vec::new();
        // Synthetic RESH ids and organisation numbers: stable per seed, never real ones.
        let mut resh = 900_000 + (seed % 1000) as u32 * 1000;
        let mut next_resh = || {
            resh += 1;
            identifier(systems::RESH_ID, &resh.to_string())
        };
        let mut orgnr_base = 90_000_000 + (seed % 100_000) as u32 * 10;
        let mut next_orgnr = || {
            orgnr_base += 7;
            identifier(systems::ORGANISASJONSNUMMER, &issue_organisation_number(orgnr_base))
        };
        let mut hpr = 9_000_000 + (seed % 1000) as u32 * 1000;

        let homes_municipality: Vec<usize> =
            (0..config.patients).map(|i| home_municipality(seed, i)).collect();
        let mut residents = vec![0usize; MUNICIPALITIES.len()];
        for m in &homes_municipality {
            residents[*m] += 1;
        }
        let trusts_needed: Vec<bool> = (0..HEALTH_TRUSTS.len())
            .map(|t| MUNICIPALITIES.iter().zip(&residents).any(|(m, n)| m.health_trust == t && *n > 0))
            .collect();
        let mut regions_needed = [false; 4];
        for (t, needed) in HEALTH_TRUSTS.iter().zip(&trusts_needed) {
            regions_needed[t.region] |= needed;
        }
        for (r, name) in HEALTH_REGIONS.iter().enumerate().filter(|(r, _)| regions_needed[*r]) {
            out.push(organisation(
                &s(&format!("rhf{r}")),
                name,
                ("govt", "Government"),
                &[next_orgnr()],
                None,
            ));
        }
        for (t, trust) in HEALTH_TRUSTS.iter().enumerate().filter(|(t, _)| trusts_needed[*t]) {
            let hf = s(&format!("hf{t}"));
            out.push(organisation(
                &hf,
                trust.name,
                ("prov", "Healthcare Provider"),
                &[next_orgnr(), next_resh()],
                Some(&s(&format!("rhf{}", trust.region))),
            ));
            let home = MUNICIPALITIES.iter().find(|m| m.health_trust == t).expect("served");
            out.push(location(&s(&format!("hf{t}-loc")), trust.hospital, home, &hf));
        }

        let mut locals: Vec<Option<Local>> = vec![None; MUNICIPALITIES.len()];
        for (i, m) in MUNICIPALITIES.iter().enumerate().filter(|(i, _)| residents[*i] > 0) {
            let kommune = s(&format!("k{}", m.code));
            out.push(organisation(
                &kommune,
                &format!("{} kommune", m.name),
                ("govt", "Government"),
                &[next_orgnr()],
                None,
            ));
            let office = s(&format!("k{}-legekontor", m.code));
            let mut o = organisation(
                &office,
                &format!("{} legesenter", m.name),
                ("prov", "Healthcare Provider"),
                &[next_orgnr(), next_resh()],
                None,
            );
            o["address"] = json!([address(m, "work", None, "Torget 2")]);
            out.push(o);
            let gp_count = residents[i].div_ceil(LIST_SIZE).max(1);
            let mut gps = Vec::new();
            for g in 0..gp_count {
                hpr += 1;
                let practitioner_id = s(&format!("k{}-lege{g}", m.code));
                out.push(practitioner(&mut rng, &practitioner_id, hpr, ("LE", "Lege"), seed));
                let role = format!("{practitioner_id}-fastlege");
                out.push(json!({
                    "resourceType": "PractitionerRole",
                    "id": role,
                    "active": true,
                    "practitioner": reference("Practitioner", &practitioner_id),
                    "organization": reference("Organization", &office),
                    "code": [concept_of(SNOMED, "62247001", "General practitioner")],
                    "specialty": [concept_of("urn:oid:2.16.578.1.12.4.1.1.7426", "1", "Allmennmedisin")]
                }));
                gps.push(Gp { practitioner: practitioner_id, role, office: office.clone() });
            }
            let home = s(&format!("k{}-sykehjem", m.code));
            out.push(organisation(
                &home,
                &format!("{} sykehjem", m.name),
                ("prov", "Healthcare Provider"),
                &[next_orgnr(), next_resh()],
                Some(&kommune),
            ));
            let home_location = format!("{home}-loc");
            out.push(location(&home_location, &format!("{} sykehjem", m.name), m, &home));
            out.extend(roster(&mut rng, config, &home, &mut hpr));
            let t = m.health_trust;
            locals[i] = Some(Local {
                municipality: m,
                organisation: kommune,
                gps,
                nursing_home: home,
                nursing_home_location: home_location,
                hospital: s(&format!("hf{t}")),
                hospital_location: s(&format!("hf{t}-loc")),
            });
        }

        // Each patient chooses a GP in their municipality; each GP's list is a Group.
        let homes: Vec<(usize, usize)> = homes_municipality
            .iter()
            .enumerate()
            .map(|(p, &m)| {
                let gps = locals[m].as_ref().expect("a municipality with residents").gps.len();
                (m, p % gps)
            })
            .collect();
        for local in locals.iter().flatten() {
            let m = MUNICIPALITIES.iter().position(|x| x.code == local.municipality.code).expect("listed");
            for (g, gp) in local.gps.iter().enumerate() {
                let members: Vec<Value> = homes
                    .iter()
                    .enumerate()
                    .filter(|(_, h)| **h == (m, g))
                    .map(|(p, _)| json!({"entity": reference("Patient", &patient_id(seed, p))}))
                    .collect();
                out.push(json!({
                    "resourceType": "Group",
                    "id": format!("{}-liste", gp.practitioner),
                    "type": "person",
                    "actual": true,
                    "code": concept_of(SNOMED, "62247001", "General practitioner"),
                    "name": format!("Fastlegeliste {} ({})", gp.practitioner, local.municipality.name),
                    "quantity": members.len(),
                    "managingEntity": reference("PractitionerRole", &gp.role),
                    "member": members
                }));
            }
        }
        Infrastructure { resources: out, locals, homes }
    }
}

/// Nursing-home staff and their shifts: each staff member has a Schedule, each shift a Slot,
/// four weeks back from the as-of day and two ahead.
fn roster(rng: &mut Rng, config: &SynthConfig, home: &str, hpr: &mut u32) -> Vec<Value> {
    const CATEGORIES: [(&str, &str); 3] = [("SP", "Sykepleier"), ("HF", "Helsefagarbeider"), ("LE", "Lege")];
    const SHIFTS: [(&str, i64, i64); 3] = [("Dag", 7, 15), ("Kveld", 15, 23), ("Natt", 23, 31)];
    let mut out = Vec::new();
    let first = config.as_of.midnight().assume_utc() - Duration::days(ROSTER_DAYS);
    for n in 0..NURSING_HOME_STAFF {
        *hpr += 1;
        let category = if n == 0 { CATEGORIES[2] } else { CATEGORIES[n % 2] };
        let practitioner_id = format!("{home}-ansatt{n}");
        out.push(practitioner(rng, &practitioner_id, *hpr, category, config.seed));
        let role = format!("{practitioner_id}-rolle");
        out.push(json!({
            "resourceType": "PractitionerRole",
            "id": role,
            "active": true,
            "practitioner": reference("Practitioner", &practitioner_id),
            "organization": reference("Organization", home),
            "code": [concept_of(systems::HEALTH_PERSONNEL_CATEGORY, category.0, category.1)]
        }));
        let schedule = format!("{practitioner_id}-turnus");
        out.push(json!({
            "resourceType": "Schedule",
            "id": schedule,
            "active": true,
            "serviceType": [concept_of(SNOMED, "42665001", "Nursing home")],
            "actor": [reference("PractitionerRole", &role), reference("Location", &format!("{home}-loc"))],
            "planningHorizon": {"start": date(first.date()), "end": date(config.as_of + Duration::days(14))},
            "comment": "Turnus"
        }));
        for day in 0..ROSTER_DAYS + 14 {
            if !rng.chance(0.55) {
                continue;
            }
            let (name, from, to) = *rng.pick(&SHIFTS);
            let start = first + Duration::days(day) + Duration::hours(from);
            let end = first + Duration::days(day) + Duration::hours(to);
            out.push(json!({
                "resourceType": "Slot",
                "id": format!("{schedule}-{day}"),
                "schedule": reference("Schedule", &schedule),
                "serviceType": [concept_of(SNOMED, "42665001", "Nursing home")],
                "status": "busy",
                "start": date_time(start),
                "end": date_time(end),
                "comment": format!("{name}vakt")
            }));
        }
    }
    out
}
