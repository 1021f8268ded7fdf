//! `helse-synth`: a seeded generator of a synthetic Norwegian population as FHIR R4 resources.
//!
//! The same seed and settings always give the same resources, byte for byte: every patient
//! draws from their own random stream, so patients can be generated in any order or in
//! parallel. Ids are readable and stable (`s{seed}-p{n}-…`), so two seeds never collide in one
//! store, and references are plain `Type/id`, ready for the store without rewriting.
//!
//! The population has a health service around it: regional health authorities and health
//! trusts with hospitals (RESH ids), municipalities with GP offices, GPs (HPR numbers) each with
//! a patient list (`Group`), nursing homes with staff and shift rosters (`Schedule`/`Slot`).
//! Patients get fødselsnummer or D-nummer, addresses in real municipalities, chronic disease
//! that grows with age, GP visits and hospital stays with vitals and labs, medicines,
//! allergies, vaccines, and referrals with waiting-list data.

pub mod catalogue;
mod infrastructure;
mod patient;
pub mod rng;
pub mod values;

use serde_json::Value;
use time::Date;

pub use infrastructure::Infrastructure;

/// Our own extensions (for waiting-list data the base resources have no element for).
pub const EXTENSION_BASE: &str = "https://fhir.helse.example/StructureDefinition/";

#[derive(Debug, Clone)]
pub struct SynthConfig {
    pub seed: u64,
    pub patients: usize,
    /// Years of history before `as_of` (at most; 100 covers everyone's whole life).
    pub years: u32,
    /// The day the record is "now": fixed, so output does not change with the clock.
    pub as_of: Date,
}

impl Default for SynthConfig {
    fn default() -> Self {
        SynthConfig {
            seed: 1,
            patients: 100,
            years: 100,
            as_of: Date::from_calendar_date(2026, time::Month::November, 1).expect("a date"),
        }
    }
}

/// The random streams, so that adding draws to one part never shifts another.
pub(crate) mod streams {
    pub const HOME: u64 = 1;
    pub const PATIENT: u64 = 2;
    pub const INFRASTRUCTURE: u64 = 3;
}

/// A population ready to generate: the health service is built up front (it is small), each
/// patient's record on demand.
pub struct Population {
    config: SynthConfig,
    infrastructure: Infrastructure,
}

impl Population {
    pub fn new(config: SynthConfig) -> Self {
        let infrastructure = Infrastructure::build(&config);
        Population { config, infrastructure }
    }

    pub fn config(&self) -> &SynthConfig {
        &self.config
    }

    /// Organisations, practitioners, locations, GP lists and rosters.
    pub fn infrastructure(&self) -> &[Value] {
        &self.infrastructure.resources
    }

    /// Every resource of patient `index` (`0..patients`), the Patient first.
    pub fn patient(&self, index: usize) -> Vec<Value> {
        patient::generate(&self.config, &self.infrastructure, index)
    }

    /// The id of patient `index`'s Patient resource.
    pub fn patient_id(&self, index: usize) -> String {
        patient_id(self.config.seed, index)
    }
}

pub(crate) fn patient_id(seed: u64, index: usize) -> String {
    format!("s{seed}-p{index}")
}

#[cfg(test)]
mod tests;
