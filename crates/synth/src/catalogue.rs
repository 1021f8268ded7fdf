//! What the population is made of: names, chronic conditions with their age pattern, the
//! measurements and medicines that follow from them, and vaccines. Codes are real (ICD-10,
//! SNOMED CT, LOINC, UCUM, ATC); prevalences are rough figures chosen so that older people
//! carry more chronic disease, not epidemiology.

pub const FEMALE_NAMES: [&str; 40] = [
    "Anne",
    "Inger",
    "Kari",
    "Marit",
    "Ingrid",
    "Liv",
    "Eva",
    "Berit",
    "Astrid",
    "Bjørg",
    "Hilde",
    "Anna",
    "Solveig",
    "Marianne",
    "Randi",
    "Ida",
    "Nina",
    "Maria",
    "Elisabeth",
    "Kristin",
    "Nora",
    "Emma",
    "Sofie",
    "Olivia",
    "Ella",
    "Maja",
    "Sara",
    "Ingeborg",
    "Leah",
    "Frida",
    "Emilie",
    "Thea",
    "Tone",
    "Turid",
    "Gunn",
    "Siri",
    "Heidi",
    "Camilla",
    "Aisha",
    "Fatima",
];

pub const MALE_NAMES: [&str; 40] = [
    "Jan", "Per", "Bjørn", "Ole", "Lars", "Kjell", "Knut", "Arne", "Svein", "Thomas", "Hans", "Geir", "Tor",
    "Morten", "Terje", "Odd", "Erik", "Martin", "Andreas", "John", "Jakob", "Emil", "Noah", "Oliver",
    "Filip", "William", "Lucas", "Henrik", "Aksel", "Magnus", "Sindre", "Eirik", "Trond", "Rune", "Stian",
    "Jonas", "Mohammed", "Ali", "Piotr", "Tomasz",
];

pub const FAMILY_NAMES: [&str; 40] = [
    "Hansen",
    "Johansen",
    "Olsen",
    "Larsen",
    "Andersen",
    "Pedersen",
    "Nilsen",
    "Kristiansen",
    "Jensen",
    "Karlsen",
    "Johnsen",
    "Pettersen",
    "Eriksen",
    "Berg",
    "Haugen",
    "Hagen",
    "Johannessen",
    "Andreassen",
    "Jacobsen",
    "Dahl",
    "Jørgensen",
    "Halvorsen",
    "Henriksen",
    "Lund",
    "Sørensen",
    "Jakobsen",
    "Moen",
    "Gundersen",
    "Iversen",
    "Strand",
    "Solberg",
    "Svendsen",
    "Eide",
    "Knutsen",
    "Martinsen",
    "Paulsen",
    "Bakken",
    "Kristoffersen",
    "Mathisen",
    "Lie",
];

pub const STREETS: [&str; 16] = [
    "Storgata",
    "Kirkegata",
    "Skolegata",
    "Parkveien",
    "Skogveien",
    "Bakkeveien",
    "Fjordveien",
    "Strandveien",
    "Granveien",
    "Bjørkeveien",
    "Sjøgata",
    "Industriveien",
    "Solbakken",
    "Lia",
    "Tunveien",
    "Åsveien",
];

/// A coded concept in one system.
#[derive(Debug, Clone, Copy)]
pub struct Code {
    pub system: &'static str,
    pub code: &'static str,
    pub display: &'static str,
}

pub const ICD10: &str = "http://hl7.org/fhir/sid/icd-10";
pub const SNOMED: &str = "http://snomed.info/sct";
pub const LOINC: &str = "http://loinc.org";
pub const ATC: &str = "http://www.whocc.no/atc";
pub const UCUM: &str = "http://unitsofmeasure.org";

const fn c(system: &'static str, code: &'static str, display: &'static str) -> Code {
    Code { system, code, display }
}

/// A measurement: LOINC code, UCUM unit, a typical value and spread, decimals shown.
#[derive(Debug, Clone, Copy)]
pub struct Measure {
    pub code: Code,
    pub unit: &'static str,
    pub mean: f64,
    pub sd: f64,
    pub decimals: usize,
}

const fn lab(
    code: &'static str,
    display: &'static str,
    unit: &'static str,
    mean: f64,
    sd: f64,
    decimals: usize,
) -> Measure {
    Measure { code: c(LOINC, code, display), unit, mean, sd, decimals }
}

pub const HEART_RATE: Measure = lab("8867-4", "Heart rate", "/min", 72.0, 9.0, 0);
pub const BODY_WEIGHT: Measure = lab("29463-7", "Body weight", "kg", 78.0, 14.0, 1);
pub const BODY_HEIGHT: Measure = lab("8302-2", "Body height", "cm", 172.0, 9.0, 0);
pub const BODY_TEMPERATURE: Measure = lab("8310-5", "Body temperature", "Cel", 37.0, 0.4, 1);
pub const OXYGEN_SATURATION: Measure =
    lab("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry", "%", 97.0, 1.5, 0);
pub const RESPIRATORY_RATE: Measure = lab("9279-1", "Respiratory rate", "/min", 16.0, 2.5, 0);
pub const SYSTOLIC: Code = c(LOINC, "8480-6", "Systolic blood pressure");
pub const DIASTOLIC: Code = c(LOINC, "8462-4", "Diastolic blood pressure");
pub const BLOOD_PRESSURE: Code = c(LOINC, "85354-9", "Blood pressure panel with all children optional");
pub const BMI: Code = c(LOINC, "39156-5", "Body mass index (BMI) [Ratio]");

pub const CRP: Measure =
    lab("1988-5", "C reactive protein [Mass/volume] in Serum or Plasma", "mg/L", 4.0, 3.0, 0);
pub const HEMOGLOBIN: Measure = lab("718-7", "Hemoglobin [Mass/volume] in Blood", "g/dL", 13.8, 1.2, 1);
pub const HBA1C: Measure =
    lab("59261-8", "Hemoglobin A1c/Hemoglobin.total in Blood by IFCC protocol", "mmol/mol", 58.0, 10.0, 0);
pub const GLUCOSE: Measure =
    lab("14749-6", "Glucose [Moles/volume] in Serum or Plasma", "mmol/L", 7.5, 1.8, 1);
pub const CREATININE: Measure =
    lab("14682-9", "Creatinine [Moles/volume] in Serum or Plasma", "umol/L", 95.0, 25.0, 0);
pub const EGFR: Measure = lab(
    "33914-3",
    "Glomerular filtration rate/1.73 sq M.predicted [Volume Rate/Area] in Serum or Plasma by Creatinine-based formula (MDRD)",
    "mL/min/{1.73_m2}",
    62.0,
    18.0,
    0,
);
pub const CHOLESTEROL: Measure =
    lab("14647-2", "Cholesterol [Moles/volume] in Serum or Plasma", "mmol/L", 5.4, 1.0, 1);
pub const LDL: Measure =
    lab("22748-8", "Cholesterol in LDL [Moles/volume] in Serum or Plasma", "mmol/L", 3.3, 0.9, 1);
pub const POTASSIUM: Measure =
    lab("2823-3", "Potassium [Moles/volume] in Serum or Plasma", "mmol/L", 4.2, 0.4, 1);
pub const SODIUM: Measure =
    lab("2951-2", "Sodium [Moles/volume] in Serum or Plasma", "mmol/L", 140.0, 3.0, 0);
pub const TSH: Measure =
    lab("3016-3", "Thyrotropin [Units/volume] in Serum or Plasma", "m[IU]/L", 2.5, 1.5, 2);
pub const NT_PROBNP: Measure = lab(
    "33762-6",
    "Natriuretic peptide.B prohormone N-Terminal [Mass/volume] in Serum or Plasma",
    "pg/mL",
    900.0,
    500.0,
    0,
);
pub const LEUKOCYTES: Measure =
    lab("6690-2", "Leukocytes [#/volume] in Blood by Automated count", "10*9/L", 7.0, 1.8, 1);
pub const ALT: Measure = lab(
    "1742-6",
    "Alanine aminotransferase [Enzymatic activity/volume] in Serum or Plasma",
    "U/L",
    28.0,
    10.0,
    0,
);
/// The panel a GP takes at a yearly check of a chronic condition, before the condition's own tests.
pub const CHECK_PANEL: [Measure; 6] = [HEMOGLOBIN, CRP, LEUKOCYTES, CREATININE, SODIUM, POTASSIUM];
pub const INR: Measure =
    lab("6301-6", "INR in Platelet poor plasma by Coagulation assay", "{INR}", 1.1, 0.15, 1);
pub const PEAK_FLOW: Measure = lab(
    "19935-6",
    "Maximum expiratory gas flow Respiratory system airway by Peak flow meter",
    "L/min",
    380.0,
    80.0,
    0,
);

/// A chronic condition, its age pattern, and what follows from it.
#[derive(Debug, Clone, Copy)]
pub struct Chronic {
    pub icd10: Code,
    pub snomed: Code,
    /// Prevalence at ages 20, 50 and 80 (linear between, flat outside).
    pub prevalence: [f64; 3],
    /// Checked at follow-up visits.
    pub labs: &'static [Measure],
    pub medicine: Code,
    /// Extra GP visits a year.
    pub visits_per_year: f64,
    /// Yearly chance of a hospital admission.
    pub admissions_per_year: f64,
}

pub const CHRONIC: [Chronic; 12] = [
    Chronic {
        icd10: c(ICD10, "I10", "Essensiell (primær) hypertensjon"),
        snomed: c(SNOMED, "38341003", "Hypertensive disorder"),
        prevalence: [0.02, 0.18, 0.45],
        labs: &[CREATININE, POTASSIUM, SODIUM],
        medicine: c(ATC, "C08CA01", "amlodipin"),
        visits_per_year: 1.0,
        admissions_per_year: 0.01,
    },
    Chronic {
        icd10: c(ICD10, "E11", "Diabetes mellitus type 2"),
        snomed: c(SNOMED, "44054006", "Diabetes mellitus type 2"),
        prevalence: [0.005, 0.06, 0.14],
        labs: &[HBA1C, GLUCOSE, CREATININE, EGFR, LDL],
        medicine: c(ATC, "A10BA02", "metformin"),
        visits_per_year: 2.0,
        admissions_per_year: 0.03,
    },
    Chronic {
        icd10: c(ICD10, "E78.0", "Ren hyperkolesterolemi"),
        snomed: c(SNOMED, "55822004", "Hyperlipidemia"),
        prevalence: [0.01, 0.12, 0.30],
        labs: &[CHOLESTEROL, LDL],
        medicine: c(ATC, "C10AA05", "atorvastatin"),
        visits_per_year: 0.5,
        admissions_per_year: 0.0,
    },
    Chronic {
        icd10: c(ICD10, "J45", "Astma"),
        snomed: c(SNOMED, "195967001", "Asthma"),
        prevalence: [0.07, 0.06, 0.05],
        labs: &[PEAK_FLOW],
        medicine: c(ATC, "R03AC02", "salbutamol"),
        visits_per_year: 0.7,
        admissions_per_year: 0.01,
    },
    Chronic {
        icd10: c(ICD10, "J44", "Annen kronisk obstruktiv lungesykdom"),
        snomed: c(SNOMED, "13645005", "Chronic obstructive lung disease"),
        prevalence: [0.0, 0.03, 0.12],
        labs: &[CRP, PEAK_FLOW],
        medicine: c(ATC, "R03BB04", "tiotropiumbromid"),
        visits_per_year: 1.5,
        admissions_per_year: 0.15,
    },
    Chronic {
        icd10: c(ICD10, "I48", "Atrieflimmer og atrieflutter"),
        snomed: c(SNOMED, "49436004", "Atrial fibrillation"),
        prevalence: [0.0, 0.02, 0.12],
        labs: &[HEMOGLOBIN, CREATININE, INR],
        medicine: c(ATC, "B01AF02", "apixaban"),
        visits_per_year: 1.0,
        admissions_per_year: 0.08,
    },
    Chronic {
        icd10: c(ICD10, "I50", "Hjertesvikt"),
        snomed: c(SNOMED, "84114007", "Heart failure"),
        prevalence: [0.0, 0.01, 0.09],
        labs: &[NT_PROBNP, CREATININE, POTASSIUM, SODIUM],
        medicine: c(ATC, "C03CA01", "furosemid"),
        visits_per_year: 2.0,
        admissions_per_year: 0.25,
    },
    Chronic {
        icd10: c(ICD10, "N18", "Kronisk nyresykdom"),
        snomed: c(SNOMED, "709044004", "Chronic kidney disease"),
        prevalence: [0.002, 0.03, 0.15],
        labs: &[CREATININE, EGFR, POTASSIUM, HEMOGLOBIN],
        medicine: c(ATC, "C09AA05", "ramipril"),
        visits_per_year: 1.5,
        admissions_per_year: 0.04,
    },
    Chronic {
        icd10: c(ICD10, "F32", "Depressiv episode"),
        snomed: c(SNOMED, "35489007", "Depressive disorder"),
        prevalence: [0.06, 0.07, 0.06],
        labs: &[],
        medicine: c(ATC, "N06AB06", "sertralin"),
        visits_per_year: 2.0,
        admissions_per_year: 0.01,
    },
    Chronic {
        icd10: c(ICD10, "M17", "Kneleddsartrose"),
        snomed: c(SNOMED, "239873007", "Osteoarthritis of knee"),
        prevalence: [0.0, 0.06, 0.25],
        labs: &[CRP],
        medicine: c(ATC, "N02BE01", "paracetamol"),
        visits_per_year: 0.7,
        admissions_per_year: 0.02,
    },
    Chronic {
        icd10: c(ICD10, "E03.9", "Uspesifisert hypotyreose"),
        snomed: c(SNOMED, "40930008", "Hypothyroidism"),
        prevalence: [0.01, 0.05, 0.09],
        labs: &[TSH],
        medicine: c(ATC, "H03AA01", "levotyroksinnatrium"),
        visits_per_year: 0.5,
        admissions_per_year: 0.0,
    },
    Chronic {
        icd10: c(ICD10, "F03", "Uspesifisert demens"),
        snomed: c(SNOMED, "52448006", "Dementia"),
        prevalence: [0.0, 0.002, 0.15],
        labs: &[HEMOGLOBIN, TSH],
        medicine: c(ATC, "N06DA02", "donepezil"),
        visits_per_year: 1.0,
        admissions_per_year: 0.1,
    },
];

pub const DEMENTIA: usize = 11;

/// Short illnesses behind ordinary GP visits, with the lab taken when one is.
pub const ACUTE: [(Code, Code, Option<Measure>); 6] = [
    (
        c(ICD10, "J06.9", "Akutt øvre luftveisinfeksjon, uspesifisert"),
        c(SNOMED, "54150009", "Upper respiratory infection"),
        Some(CRP),
    ),
    (
        c(ICD10, "N39.0", "Urinveisinfeksjon med uspesifisert lokalisasjon"),
        c(SNOMED, "68566005", "Urinary tract infectious disease"),
        Some(CRP),
    ),
    (c(ICD10, "M54.5", "Korsryggsmerter"), c(SNOMED, "279039007", "Low back pain"), None),
    (
        c(ICD10, "A09", "Diaré og gastroenteritt av antatt infeksiøs opprinnelse"),
        c(SNOMED, "25374005", "Gastroenteritis"),
        Some(CRP),
    ),
    (
        c(ICD10, "J02.9", "Uspesifisert akutt faryngitt"),
        c(SNOMED, "363746003", "Acute pharyngitis"),
        Some(CRP),
    ),
    (c(ICD10, "L30.9", "Uspesifisert dermatitt"), c(SNOMED, "182782007", "Dermatitis"), None),
];

/// Allergies: substance, reaction, share of the population, and how critical.
pub const ALLERGIES: [(Code, Code, f64, &str); 5] = [
    (
        c(SNOMED, "373270004", "Penicillin -class of antibiotic- (substance)"),
        c(SNOMED, "271807003", "Eruption of skin"),
        0.06,
        "high",
    ),
    (
        c(SNOMED, "256349002", "Peanut - dietary (substance)"),
        c(SNOMED, "39579001", "Anaphylaxis"),
        0.01,
        "high",
    ),
    (
        c(SNOMED, "256277009", "Grass pollen (substance)"),
        c(SNOMED, "21719001", "Allergic rhinitis caused by pollen"),
        0.12,
        "low",
    ),
    (c(SNOMED, "387458008", "Aspirin (substance)"), c(SNOMED, "247472004", "Hives"), 0.01, "low"),
    (c(SNOMED, "111088007", "Latex (substance)"), c(SNOMED, "40275004", "Contact dermatitis"), 0.01, "low"),
];

/// Vaccines given by age (the childhood programme), and yearly from 65 (influenza).
pub const CHILDHOOD_VACCINES: [(Code, u32); 4] = [
    (c(ATC, "J07CA09", "Difteri-Haemophilus influenzae B-pertussis-poliomyelitt-tetanus-hepatitt B"), 3),
    (c(ATC, "J07AL02", "Pneumokokk, purifisert polysakkaridantigen konjugert"), 5),
    (c(ATC, "J07BD52", "Meslinger, kombinasjoner med kusma og røde hunder, levende svekket"), 15),
    (c(ATC, "J07BM03", "Papillomavirus (humant type 6, 11, 16, 18, 31, 33, 45, 52, 58)"), 144),
];
pub const INFLUENZA_VACCINE: Code =
    c(ATC, "J07BB02", "Influensa, inaktivert, splittvirus eller overflateantigen");

/// Specialities patients are referred to, with the typical wait in weeks.
pub const REFERRALS: [(Code, u32); 6] = [
    (c(SNOMED, "394585009", "Obstetrics and gynecology"), 8),
    (c(SNOMED, "394801008", "Trauma and orthopedics"), 14),
    (c(SNOMED, "394579002", "Cardiology"), 10),
    (c(SNOMED, "394584008", "Gastroenterology"), 12),
    (c(SNOMED, "394592004", "Clinical oncology"), 2),
    (c(SNOMED, "418112009", "Pulmonary medicine"), 9),
];

/// Prevalence at `age` from the three anchor points (ages 20, 50, 80).
pub fn prevalence_at(p: [f64; 3], age: f64) -> f64 {
    if age <= 20.0 {
        p[0] * (age / 20.0).clamp(0.2, 1.0)
    } else if age <= 50.0 {
        p[0] + (p[1] - p[0]) * (age - 20.0) / 30.0
    } else if age <= 80.0 {
        p[1] + (p[2] - p[1]) * (age - 50.0) / 30.0
    } else {
        p[2]
    }
}
