//! Norwegian national identifiers and reference registers, as HL7 Norway's base profiles
//! (`hl7.fhir.no.basis`) name them.

pub mod identifiers;
pub mod registers;

/// FHIR `Identifier.system` values from the Norwegian base profiles.
pub mod systems {
    pub const FODSELSNUMMER: &str = "urn:oid:2.16.578.1.12.4.1.4.1";
    pub const D_NUMMER: &str = "urn:oid:2.16.578.1.12.4.1.4.2";
    pub const HPR_NUMMER: &str = "urn:oid:2.16.578.1.12.4.1.4.4";
    pub const ORGANISASJONSNUMMER: &str = "urn:oid:2.16.578.1.12.4.1.4.101";
    pub const RESH_ID: &str = "urn:oid:2.16.578.1.12.4.1.4.102";
    /// Volven 3402: municipality numbers.
    pub const MUNICIPALITY_CODE: &str = "urn:oid:2.16.578.1.12.4.1.1.3402";
    /// Volven 9060: categories of health personnel.
    pub const HEALTH_PERSONNEL_CATEGORY: &str = "urn:oid:2.16.578.1.12.4.1.1.9060";
    /// The base profiles' extension carrying an address's municipality.
    pub const MUNICIPALITY_EXTENSION: &str =
        "http://hl7.no/fhir/StructureDefinition/no-basis-municipalitycode";
}
