//! One patient's record: who they are, what they have, and what happened to them over the
//! years of history — each event written as the resources a real system would hold.

use helse_norway::identifiers::{PersonIdKind, Sex, issue_person_id};
use helse_norway::systems;
use serde_json::{Map, Value, json};
use time::{Date, Duration, OffsetDateTime};

use crate::catalogue::{self as cat, Chronic, Code, Measure};
use crate::infrastructure::{Gp, Infrastructure, Local};
use crate::rng::Rng;
use crate::values::{
    address, concept, concept_of, date, date_time, identifier, measured, quantity, reference, resource,
};
use crate::{EXTENSION_BASE, SynthConfig, patient_id, streams};

const OBSERVATION_CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/observation-category";
const ACT_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
const CONDITION_CLINICAL: &str = "http://terminology.hl7.org/CodeSystem/condition-clinical";
const CONDITION_VERIFICATION: &str = "http://terminology.hl7.org/CodeSystem/condition-ver-status";
const CONDITION_CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/condition-category";

/// Age bands (from, to) and their share of Norway's population, roughly.
const AGE_BANDS: [(i64, i64, f64); 5] =
    [(0, 19, 0.23), (20, 39, 0.27), (40, 59, 0.26), (60, 79, 0.19), (80, 99, 0.05)];

/// A procedure done at a completed referral, by index into `REFERRALS`.
const REFERRAL_PROCEDURES: [Code; 6] = [
    Code { system: cat::SNOMED, code: "268445003", display: "Ultrasound scan of abdomen and pelvis" },
    Code { system: cat::SNOMED, code: "609588000", display: "Total knee replacement" },
    Code { system: cat::SNOMED, code: "40701008", display: "Echocardiography" },
    Code { system: cat::SNOMED, code: "73761001", display: "Colonoscopy" },
    Code { system: cat::SNOMED, code: "367336001", display: "Chemotherapy" },
    Code { system: cat::SNOMED, code: "127783003", display: "Spirometry" },
];

struct Gen<'a> {
    rng: Rng,
    pid: String,
    out: Vec<Value>,
    serial: usize,
    local: &'a Local,
    gp: &'a Gp,
    sex: Sex,
    birth: Date,
    /// Weight (kg) and height (cm) as an adult; children scale down.
    build: (f64, f64),
}

fn at(d: Date, hour: i64, minute: i64) -> OffsetDateTime {
    d.midnight().assume_utc() + Duration::hours(hour) + Duration::minutes(minute)
}

fn poisson(rng: &mut Rng, lambda: f64) -> usize {
    let limit = (-lambda).exp();
    let (mut k, mut p) = (0, rng.unit());
    while p > limit && k < 60 {
        k += 1;
        p *= rng.unit();
    }
    k
}

impl Gen<'_> {
    fn id(&mut self, kind: &str) -> String {
        self.serial += 1;
        format!("{}-{kind}{}", self.pid, self.serial)
    }

    fn subject(&self) -> Value {
        reference("Patient", &self.pid)
    }

    fn age_at(&self, d: Date) -> f64 {
        (d.to_julian_day() - self.birth.to_julian_day()) as f64 / 365.25
    }

    fn push(&mut self, m: Map<String, Value>) {
        self.out.push(Value::Object(m));
    }

    fn observation(
        &mut self,
        category: (&str, &str),
        code: Value,
        when: OffsetDateTime,
        encounter: &str,
        performer: &str,
    ) -> (String, Map<String, Value>) {
        let id = self.id("obs");
        let mut o = resource("Observation", &id);
        o.insert("status".into(), "final".into());
        o.insert(
            "category".into(),
            json!([{"coding": [{"system": OBSERVATION_CATEGORY, "code": category.0, "display": category.1}]}]),
        );
        o.insert("code".into(), code);
        o.insert("subject".into(), self.subject());
        o.insert("encounter".into(), reference("Encounter", encounter));
        o.insert("effectiveDateTime".into(), date_time(when).into());
        o.insert("issued".into(), date_time(when + Duration::minutes(30)).into());
        o.insert("performer".into(), json!([{"reference": performer}]));
        (id, o)
    }

    /// A measured value drawn around `mean`, kept within plausible bounds.
    fn draw(&mut self, m: &Measure, mean: f64) -> f64 {
        self.rng.normal(mean, m.sd).max(m.mean * 0.2)
    }

    fn vital(&mut self, m: &Measure, value: f64, when: OffsetDateTime, encounter: &str, performer: &str) {
        let (_, mut o) =
            self.observation(("vital-signs", "Vital Signs"), concept(&[&m.code]), when, encounter, performer);
        o.insert("valueQuantity".into(), measured(m, value));
        self.push(o);
    }

    fn blood_pressure(&mut self, when: OffsetDateTime, encounter: &str, performer: &str, raised: bool) {
        let age = self.age_at(when.date());
        let systolic = self.rng.normal(110.0 + age * 0.4 + if raised { 18.0 } else { 0.0 }, 10.0);
        let diastolic = self.rng.normal(70.0 + age * 0.1 + if raised { 8.0 } else { 0.0 }, 7.0);
        let (_, mut o) = self.observation(
            ("vital-signs", "Vital Signs"),
            concept(&[&cat::BLOOD_PRESSURE]),
            when,
            encounter,
            performer,
        );
        o.insert(
            "component".into(),
            json!([
                {"code": concept(&[&cat::SYSTOLIC]), "valueQuantity": quantity(systolic, "mm[Hg]", 0)},
                {"code": concept(&[&cat::DIASTOLIC]), "valueQuantity": quantity(diastolic, "mm[Hg]", 0)}
            ]),
        );
        self.push(o);
    }

    /// Weight, height and BMI, scaled for children.
    fn body(&mut self, when: OffsetDateTime, encounter: &str, performer: &str) {
        let age = self.age_at(when.date());
        let growth = if age < 18.0 { 0.35 + 0.65 * age / 18.0 } else { 1.0 };
        let height =
            self.build.1 * growth.sqrt().min(1.0) * if age < 18.0 { 0.6 + 0.4 * age / 18.0 } else { 1.0 };
        let weight = (self.build.0 * growth * growth + self.rng.normal(0.0, 1.5)).max(3.0);
        self.vital(&cat::BODY_WEIGHT, weight, when, encounter, performer);
        self.vital(&cat::BODY_HEIGHT, height, when, encounter, performer);
        let (_, mut o) = self.observation(
            ("vital-signs", "Vital Signs"),
            concept(&[&cat::BMI]),
            when,
            encounter,
            performer,
        );
        let bmi = weight / (height / 100.0).powi(2);
        o.insert("valueQuantity".into(), quantity(bmi, "kg/m2", 1));
        self.push(o);
    }

    /// Lab results and the report that groups them.
    fn labs(&mut self, tests: &[(Measure, f64)], when: OffsetDateTime, encounter: &str, performer: &str) {
        if tests.is_empty() {
            return;
        }
        let mut results = Vec::new();
        for (m, mean) in tests {
            let value = self.draw(m, *mean);
            let (id, mut o) = self.observation(
                ("laboratory", "Laboratory"),
                concept(&[&m.code]),
                when,
                encounter,
                performer,
            );
            o.insert("valueQuantity".into(), measured(m, value));
            self.push(o);
            results.push(reference("Observation", &id));
        }
        let id = self.id("rep");
        let mut r = resource("DiagnosticReport", &id);
        r.insert("status".into(), "final".into());
        r.insert(
            "category".into(),
            json!([concept_of("http://terminology.hl7.org/CodeSystem/v2-0074", "LAB", "Laboratory")]),
        );
        r.insert("code".into(), concept_of(cat::LOINC, "11502-2", "Laboratory report"));
        r.insert("subject".into(), self.subject());
        r.insert("encounter".into(), reference("Encounter", encounter));
        r.insert("effectiveDateTime".into(), date_time(when).into());
        r.insert("issued".into(), date_time(when + Duration::hours(4)).into());
        r.insert("performer".into(), json!([{"reference": performer}]));
        r.insert("result".into(), Value::Array(results));
        self.push(r);
    }

    fn encounter(
        &mut self,
        class: (&str, &str),
        kind: Value,
        period: (OffsetDateTime, Option<OffsetDateTime>),
        provider: &str,
        location: Option<&str>,
        reason: Option<&str>,
    ) -> String {
        let id = self.id("enc");
        let mut e = resource("Encounter", &id);
        e.insert("status".into(), if period.1.is_some() { "finished" } else { "in-progress" }.into());
        e.insert("class".into(), json!({"system": ACT_CODE, "code": class.0, "display": class.1}));
        e.insert("type".into(), json!([kind]));
        e.insert("subject".into(), self.subject());
        e.insert("participant".into(), json!([{"individual": reference("PractitionerRole", &self.gp.role)}]));
        let mut p = Map::new();
        p.insert("start".into(), date_time(period.0).into());
        if let Some(end) = period.1 {
            p.insert("end".into(), date_time(end).into());
        }
        e.insert("period".into(), Value::Object(p));
        if let Some(condition) = reason {
            e.insert("reasonReference".into(), json!([reference("Condition", condition)]));
        }
        if let Some(location) = location {
            e.insert("location".into(), json!([{"location": reference("Location", location)}]));
        }
        e.insert("serviceProvider".into(), reference("Organization", provider));
        self.push(e);
        id
    }

    fn condition(
        &mut self,
        c: (&Code, &Code),
        onset: OffsetDateTime,
        chronic: bool,
        encounter: Option<&str>,
    ) -> String {
        let id = self.id("con");
        let mut m = resource("Condition", &id);
        let (status, display) = if chronic { ("active", "Active") } else { ("resolved", "Resolved") };
        m.insert("clinicalStatus".into(), concept_of(CONDITION_CLINICAL, status, display));
        m.insert("verificationStatus".into(), concept_of(CONDITION_VERIFICATION, "confirmed", "Confirmed"));
        let category = if chronic {
            ("problem-list-item", "Problem List Item")
        } else {
            ("encounter-diagnosis", "Encounter Diagnosis")
        };
        m.insert("category".into(), json!([concept_of(CONDITION_CATEGORY, category.0, category.1)]));
        m.insert("code".into(), concept(&[c.0, c.1]));
        m.insert("subject".into(), self.subject());
        if let Some(encounter) = encounter {
            m.insert("encounter".into(), reference("Encounter", encounter));
        }
        m.insert("onsetDateTime".into(), date_time(onset).into());
        if !chronic {
            m.insert("abatementDateTime".into(), date_time(onset + Duration::days(14)).into());
        }
        m.insert("recordedDate".into(), date_time(onset).into());
        m.insert("recorder".into(), reference("PractitionerRole", &self.gp.role));
        self.push(m);
        id
    }
}

/// A chronic condition the patient has, from when, and its Condition id.
struct Diagnosis {
    chronic: &'static Chronic,
    index: usize,
    onset: OffsetDateTime,
    condition: String,
}

pub fn generate(config: &SynthConfig, infra: &Infrastructure, index: usize) -> Vec<Value> {
    let mut rng = Rng::stream(config.seed, streams::PATIENT, index as u64);
    let (m, g) = infra.homes[index];
    let local = infra.locals[m].as_ref().expect("a patient's municipality is built");
    let gp = &local.gps[g];
    let band = AGE_BANDS[rng.weighted(&AGE_BANDS.map(|b| b.2))];
    let age_days = rng.range(band.0 * 365, band.1 * 365 + 364);
    let now = config.as_of;
    let birth = Date::from_julian_day(now.to_julian_day() - age_days as i32).expect("a date");
    let sex = if rng.chance(0.5) { Sex::Female } else { Sex::Male };
    let build = match sex {
        Sex::Female => (rng.normal(70.0, 12.0).max(45.0), rng.normal(166.0, 6.5)),
        Sex::Male => (rng.normal(85.0, 13.0).max(50.0), rng.normal(180.0, 7.0)),
    };
    let mut rec = Gen {
        rng,
        pid: patient_id(config.seed, index),
        out: Vec::new(),
        serial: 0,
        local,
        gp,
        sex,
        birth,
        build,
    };

    // Death: more likely the older, within the history window.
    let age_now = age_days as f64 / 365.25;
    let died = (age_now > 70.0 && rec.rng.chance((age_now - 70.0) / 120.0))
        .then(|| now - Duration::days(rec.rng.range(1, 365 * 3)));
    let end = died.unwrap_or(now);
    let start = std::cmp::max(birth, now - Duration::days(365 * config.years as i64));

    patient_resource(&mut rec, index, died);

    // Chronic disease, by the age reached at the end of the record.
    let mut diagnoses: Vec<Diagnosis> = Vec::new();
    let age_end = rec.age_at(end);
    for (i, chronic) in cat::CHRONIC.iter().enumerate() {
        if !rec.rng.chance(cat::prevalence_at(chronic.prevalence, age_end)) {
            continue;
        }
        let years_with = rec.rng.range(0, ((age_end - 1.0).max(0.0) * 365.0).min(365.0 * 30.0) as i64);
        let onset = at(end - Duration::days(years_with), rec.rng.range(8, 15), rec.rng.range(0, 59));
        let condition = rec.condition((&chronic.icd10, &chronic.snomed), onset, true, None);
        diagnoses.push(Diagnosis { chronic, index: i, onset, condition });
    }
    allergies(&mut rec, start, end);
    childhood_vaccines(&mut rec, start, end);

    let mut day = start;
    while day < end {
        let year_end = std::cmp::min(day + Duration::days(365), end);
        let span = (year_end - day).whole_days().max(1);
        let fraction = span as f64 / 365.0;
        let age = rec.age_at(day);
        let active: Vec<usize> =
            (0..diagnoses.len()).filter(|&d| diagnoses[d].onset.date() <= year_end).collect();
        let extra: f64 = active.iter().map(|&d| diagnoses[d].chronic.visits_per_year).sum();
        let visits = poisson(&mut rec.rng, (0.8 + age / 50.0 + extra) * fraction);
        for _ in 0..visits {
            let when = at(
                day + Duration::days(rec.rng.range(0, span - 1)),
                rec.rng.range(8, 15),
                rec.rng.range(0, 59),
            );
            let followed = active.iter().copied().filter(|&d| diagnoses[d].onset <= when).collect::<Vec<_>>();
            let follow_up = (!followed.is_empty() && rec.rng.chance(0.6)).then(|| *rec.rng.pick(&followed));
            gp_visit(&mut rec, when, follow_up.map(|d| &diagnoses[d]));
        }
        let admissions_rate: f64 = 0.004
            + age / 1500.0
            + active.iter().map(|&d| diagnoses[d].chronic.admissions_per_year).sum::<f64>();
        for _ in 0..poisson(&mut rec.rng, admissions_rate * fraction) {
            let when = at(
                day + Duration::days(rec.rng.range(0, span - 1)),
                rec.rng.range(0, 23),
                rec.rng.range(0, 59),
            );
            let reason = (!active.is_empty()).then(|| &diagnoses[*rec.rng.pick(&active)]);
            admission(&mut rec, when, end, reason);
        }
        for &d in &active {
            let diagnosis = &diagnoses[d];
            let when =
                std::cmp::max(diagnosis.onset, at(day + Duration::days(rec.rng.range(0, span - 1)), 10, 0));
            if when.date() < year_end {
                prescription(&mut rec, diagnosis, when, now);
            }
        }
        let lungs_or_heart = active.iter().any(|&d| matches!(diagnoses[d].index, 3..=6));
        if (age >= 65.0 && rec.rng.chance(0.7)) || (lungs_or_heart && rec.rng.chance(0.5)) {
            let autumn = Date::from_calendar_date(day.year(), time::Month::October, 15).expect("a date")
                + Duration::days(rec.rng.range(0, 40));
            if autumn >= day && autumn < year_end {
                immunization(&mut rec, &cat::INFLUENZA_VACCINE, autumn);
            }
        }
        if rec.rng.chance((0.03 + 0.04 * active.len() as f64) * fraction) {
            let when = at(day + Duration::days(rec.rng.range(0, span - 1)), 9, 30);
            referral(&mut rec, when, end, active.first().map(|&d| diagnoses[d].condition.as_str()));
        }
        day = year_end;
    }

    if let Some(dementia) = diagnoses.iter().find(|d| d.index == cat::DEMENTIA)
        && age_end >= 75.0
        && rec.rng.chance(0.6)
    {
        nursing_home_stay(&mut rec, dementia, start, end, now);
    }
    rec.out
}

fn patient_resource(rec: &mut Gen<'_>, index: usize, died: Option<Date>) {
    let female = rec.sex == Sex::Female;
    let given = if female { *rec.rng.pick(&cat::FEMALE_NAMES) } else { *rec.rng.pick(&cat::MALE_NAMES) };
    let family = *rec.rng.pick(&cat::FAMILY_NAMES);
    // About one in twenty-five has a D-nummer (workers and others without residence).
    let kind = if rec.rng.chance(0.04) { PersonIdKind::DNummer } else { PersonIdKind::Fodselsnummer };
    let system = if kind == PersonIdKind::DNummer { systems::D_NUMMER } else { systems::FODSELSNUMMER };
    let b = rec.birth;
    let nin = issue_person_id((b.year(), b.month() as u32, b.day() as u32), rec.sex, kind, index as u32 * 7)
        .expect("an individual number exists");
    let m = rec.local.municipality;
    let street = *rec.rng.pick(&cat::STREETS);
    let number = rec.rng.range(1, 120);
    let mut p = resource("Patient", &rec.pid);
    p.insert("identifier".into(), json!([identifier(system, &nin)]));
    p.insert("active".into(), true.into());
    p.insert(
        "name".into(),
        json!([{"use": "official", "family": family, "given": [given], "text": format!("{given} {family}")}]),
    );
    p.insert(
        "telecom".into(),
        json!([{"system": "phone", "value": format!("+47 {}", rec.rng.range(40_000_000, 99_999_999)), "use": "mobile"}]),
    );
    p.insert("gender".into(), if female { "female" } else { "male" }.into());
    p.insert("birthDate".into(), date(b).into());
    if let Some(d) = died {
        p.insert("deceasedDateTime".into(), date_time(at(d, 4, 0)).into());
    }
    p.insert("address".into(), json!([address(m, "home", Some("physical"), &format!("{street} {number}"))]));
    p.insert(
        "communication".into(),
        json!([{"language": concept_of("urn:ietf:bcp:47", "nb", "Norsk bokmål"), "preferred": true}]),
    );
    p.insert("generalPractitioner".into(), json!([reference("PractitionerRole", &rec.gp.role)]));
    p.insert("managingOrganization".into(), reference("Organization", &rec.gp.office));
    rec.push(p);
}

fn gp_visit(rec: &mut Gen<'_>, when: OffsetDateTime, follow_up: Option<&Diagnosis>) {
    let office = rec.gp.office.clone();
    let performer = format!("PractitionerRole/{}", rec.gp.role);
    let kind = concept_of(cat::SNOMED, "185349003", "Encounter for check up");
    let end = when + Duration::minutes(20);
    match follow_up {
        Some(d) => {
            let enc = rec.encounter(
                ("AMB", "ambulatory"),
                kind,
                (when, Some(end)),
                &office,
                None,
                Some(&d.condition),
            );
            let raised = d.index == 0;
            rec.blood_pressure(when, &enc, &performer, raised);
            let hr = rec.draw(&cat::HEART_RATE, cat::HEART_RATE.mean);
            rec.vital(&cat::HEART_RATE, hr, when, &enc, &performer);
            rec.body(when, &enc, &performer);
            let mut tests: Vec<(Measure, f64)> = cat::CHECK_PANEL.iter().map(|m| (*m, m.mean)).collect();
            for m in d.chronic.labs {
                if tests.iter().all(|t| t.0.code.code != m.code.code) {
                    tests.push((*m, m.mean));
                }
            }
            rec.labs(&tests, when, &enc, &performer);
        }
        None => {
            let (icd, snomed, lab) = *rec.rng.pick(&cat::ACUTE);
            let enc = rec.encounter(("AMB", "ambulatory"), kind, (when, Some(end)), &office, None, None);
            rec.condition((&icd, &snomed), when, false, Some(&enc));
            let t = rec.rng.normal(37.6, 0.6);
            rec.vital(&cat::BODY_TEMPERATURE, t, when, &enc, &performer);
            let hr = rec.draw(&cat::HEART_RATE, 80.0);
            rec.vital(&cat::HEART_RATE, hr, when, &enc, &performer);
            if let Some(m) = lab {
                rec.labs(&[(m, 35.0), (cat::LEUKOCYTES, 10.5)], when, &enc, &performer);
            }
        }
    }
}

fn admission(rec: &mut Gen<'_>, when: OffsetDateTime, end: Date, reason: Option<&Diagnosis>) {
    let days = rec.rng.range(1, 8);
    let discharge = std::cmp::min(when + Duration::days(days), at(end, 0, 0));
    let hospital = rec.local.hospital.clone();
    let location = rec.local.hospital_location.clone();
    let performer = format!("Organization/{hospital}");
    let kind = concept_of(cat::SNOMED, "32485007", "Hospital admission");
    let finished = (discharge > when).then_some(discharge);
    let enc = rec.encounter(
        ("IMP", "inpatient encounter"),
        kind,
        (when, finished),
        &hospital,
        Some(&location),
        reason.map(|d| d.condition.as_str()),
    );
    let mut tests: Vec<(Measure, f64)> =
        [cat::CRP, cat::HEMOGLOBIN, cat::CREATININE, cat::SODIUM, cat::POTASSIUM]
            .map(|m| (m, m.mean))
            .to_vec();
    if let Some(d) = reason {
        for m in d.chronic.labs {
            if tests.iter().all(|t| t.0.code.code != m.code.code) {
                tests.push((*m, m.mean));
            }
        }
    }
    rec.labs(&tests, when, &enc, &performer);
    let mut t = when;
    while t < discharge {
        rec.blood_pressure(t, &enc, &performer, reason.is_some_and(|d| d.index == 0));
        let hr = rec.draw(&cat::HEART_RATE, 78.0);
        rec.vital(&cat::HEART_RATE, hr, t, &enc, &performer);
        let temp = rec.rng.normal(37.1, 0.5);
        rec.vital(&cat::BODY_TEMPERATURE, temp, t, &enc, &performer);
        let spo2 = rec.rng.normal(96.0, 1.5).min(100.0);
        rec.vital(&cat::OXYGEN_SATURATION, spo2, t, &enc, &performer);
        let rr = rec.draw(&cat::RESPIRATORY_RATE, 17.0);
        rec.vital(&cat::RESPIRATORY_RATE, rr, t, &enc, &performer);
        // Ward observations (NEWS2) once a shift.
        t += Duration::hours(8);
    }
    if discharge > when + Duration::days(1) {
        let tests: Vec<(Measure, f64)> = [cat::CRP, cat::HEMOGLOBIN].map(|m| (m, m.mean)).to_vec();
        rec.labs(&tests, discharge - Duration::hours(3), &enc, &performer);
    }
}

fn prescription(rec: &mut Gen<'_>, d: &Diagnosis, when: OffsetDateTime, now: Date) {
    let id = rec.id("med");
    let valid_to = when + Duration::days(365);
    let mut r = resource("MedicationRequest", &id);
    r.insert("status".into(), if valid_to.date() > now { "active" } else { "completed" }.into());
    r.insert("intent".into(), "order".into());
    r.insert("medicationCodeableConcept".into(), concept(&[&d.chronic.medicine]));
    r.insert("subject".into(), rec.subject());
    r.insert("authoredOn".into(), date_time(when).into());
    r.insert("requester".into(), reference("PractitionerRole", &rec.gp.role));
    r.insert("reasonReference".into(), json!([reference("Condition", &d.condition)]));
    r.insert(
        "dosageInstruction".into(),
        json!([{"text": "1 tablett daglig", "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}}}]),
    );
    r.insert(
        "dispenseRequest".into(),
        json!({"validityPeriod": {"start": date(when.date()), "end": date(valid_to.date())}, "numberOfRepeatsAllowed": 3}),
    );
    rec.push(r);
}

fn immunization(rec: &mut Gen<'_>, vaccine: &Code, on: Date) {
    let id = rec.id("imm");
    let mut r = resource("Immunization", &id);
    r.insert("status".into(), "completed".into());
    r.insert("vaccineCode".into(), concept(&[vaccine]));
    r.insert("patient".into(), rec.subject());
    r.insert("occurrenceDateTime".into(), date_time(at(on, 10, 15)).into());
    r.insert("primarySource".into(), true.into());
    r.insert("lotNumber".into(), format!("L{}", rec.rng.range(10_000, 99_999)).into());
    r.insert("performer".into(), json!([{"actor": reference("PractitionerRole", &rec.gp.role)}]));
    rec.push(r);
}

fn childhood_vaccines(rec: &mut Gen<'_>, start: Date, end: Date) {
    for (vaccine, months) in cat::CHILDHOOD_VACCINES {
        let on = rec.birth + Duration::days(months as i64 * 30 + rec.rng.range(0, 20));
        if on >= start && on < end && rec.rng.chance(0.95) {
            immunization(rec, &vaccine, on);
        }
    }
}

fn allergies(rec: &mut Gen<'_>, start: Date, end: Date) {
    for (substance, reaction, share, criticality) in cat::ALLERGIES {
        if !rec.rng.chance(share) {
            continue;
        }
        let span = (end - start).whole_days().max(1);
        let recorded = at(start + Duration::days(rec.rng.range(0, span - 1)), 11, 0);
        let id = rec.id("alg");
        let mut r = resource("AllergyIntolerance", &id);
        r.insert(
            "clinicalStatus".into(),
            concept_of(
                "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                "active",
                "Active",
            ),
        );
        r.insert(
            "verificationStatus".into(),
            concept_of(
                "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification",
                "confirmed",
                "Confirmed",
            ),
        );
        r.insert("type".into(), "allergy".into());
        let category = if substance.display.contains("dietary") {
            "food"
        } else if substance.code == "256277009" || substance.code == "111088007" {
            "environment"
        } else {
            "medication"
        };
        r.insert("category".into(), json!([category]));
        r.insert("criticality".into(), criticality.into());
        r.insert("code".into(), concept(&[&substance]));
        r.insert("patient".into(), rec.subject());
        r.insert("recordedDate".into(), date_time(recorded).into());
        r.insert("recorder".into(), reference("PractitionerRole", &rec.gp.role));
        let severity = if criticality == "high" { "severe" } else { "mild" };
        r.insert(
            "reaction".into(),
            json!([{"manifestation": [concept(&[&reaction])], "severity": severity}]),
        );
        rec.push(r);
    }
}

/// A GP referral to the health trust, with the waiting-list dates the rights rules need:
/// received, assessed (due within 10 working days), a deadline for start of care when the
/// patient has the right to necessary care, and the appointment. Appointments after the
/// as-of day leave the patient on the waiting list; some are set after their deadline.
fn referral(rec: &mut Gen<'_>, when: OffsetDateTime, end: Date, reason: Option<&str>) {
    let s = rec.rng.range(0, cat::REFERRALS.len() as i64 - 1) as usize;
    let (speciality, weeks) = cat::REFERRALS[s];
    let received = when.date() + Duration::days(rec.rng.range(0, 3));
    let assessed = received + Duration::days(rec.rng.range(2, 16));
    let right = rec.rng.chance(0.7);
    let deadline = received + Duration::weeks((weeks as f64 * 1.5).ceil() as i64);
    let appointment =
        at(received + Duration::days((weeks as f64 * 7.0 * rec.rng.normal(1.0, 0.35).max(0.2)) as i64), 9, 0);
    let done = appointment.date() < end;
    let id = rec.id("ref");
    let mut r = resource("ServiceRequest", &id);
    let ext =
        |name: &str, key: &str, value: Value| json!({"url": format!("{EXTENSION_BASE}{name}"), key: value});
    let mut extensions = vec![
        ext("referral-received", "valueDate", date(received).into()),
        ext("referral-assessed", "valueDate", date(assessed).into()),
        ext("right-to-necessary-care", "valueBoolean", right.into()),
    ];
    if right {
        extensions.push(ext("treatment-deadline", "valueDate", date(deadline).into()));
    }
    r.insert("extension".into(), Value::Array(extensions));
    r.insert("status".into(), if done { "completed" } else { "active" }.into());
    r.insert("intent".into(), "order".into());
    r.insert("category".into(), json!([concept_of(cat::SNOMED, "3457005", "Patient referral")]));
    r.insert("priority".into(), if s == 4 { "urgent" } else { "routine" }.into());
    r.insert("code".into(), concept(&[&speciality]));
    r.insert("subject".into(), rec.subject());
    r.insert("occurrenceDateTime".into(), date_time(appointment).into());
    r.insert("authoredOn".into(), date_time(when).into());
    r.insert("requester".into(), reference("PractitionerRole", &rec.gp.role));
    r.insert("performer".into(), json!([reference("Organization", &rec.local.hospital)]));
    if let Some(condition) = reason {
        r.insert("reasonReference".into(), json!([reference("Condition", condition)]));
    }
    rec.push(r);
    if done {
        let hospital = rec.local.hospital.clone();
        let location = rec.local.hospital_location.clone();
        let enc = rec.encounter(
            ("AMB", "ambulatory"),
            concept(&[&speciality]),
            (appointment, Some(appointment + Duration::hours(1))),
            &hospital,
            Some(&location),
            reason,
        );
        if let Some(Value::Object(e)) = rec.out.last_mut() {
            e.insert("basedOn".into(), json!([reference("ServiceRequest", &id)]));
        }
        let pid = rec.id("proc");
        let mut p = resource("Procedure", &pid);
        p.insert("basedOn".into(), json!([reference("ServiceRequest", &id)]));
        p.insert("status".into(), "completed".into());
        p.insert("code".into(), concept(&[&REFERRAL_PROCEDURES[s]]));
        p.insert("subject".into(), rec.subject());
        p.insert("encounter".into(), reference("Encounter", &enc));
        p.insert("performedDateTime".into(), date_time(appointment).into());
        p.insert("performer".into(), json!([{"actor": reference("Organization", &hospital)}]));
        rec.push(p);
    }
}

/// A long-term nursing-home stay, with monthly weight and blood pressure.
fn nursing_home_stay(rec: &mut Gen<'_>, dementia: &Diagnosis, start: Date, end: Date, now: Date) {
    let from = std::cmp::max(dementia.onset.date() + Duration::days(rec.rng.range(180, 1500)), start);
    if from >= end {
        return;
    }
    let home = rec.local.nursing_home.clone();
    let location = rec.local.nursing_home_location.clone();
    let kind = concept_of(cat::SNOMED, "42665001", "Nursing home");
    // The stay ends only with death.
    let finished = (end < now).then(|| at(end, 0, 0));
    let stay = rec.encounter(
        ("NONAC", "inpatient non-acute"),
        kind,
        (at(from, 12, 0), finished),
        &home,
        Some(&location),
        Some(&dementia.condition),
    );
    let performer = format!("Organization/{home}");
    let mut day = from + Duration::days(30);
    while day < end {
        let when = at(day, 9, 0);
        rec.blood_pressure(when, &stay, &performer, false);
        let w = rec.build.0 * 0.9 + rec.rng.normal(0.0, 1.0);
        rec.vital(&cat::BODY_WEIGHT, w, when, &stay, &performer);
        day += Duration::days(30);
    }
}
