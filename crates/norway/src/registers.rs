//! A selection of real municipalities (2024 numbering) with their county, a postal code in
//! the municipality centre, an approximate population (for weighting), and the health trust
//! whose hospitals serve them. Enough geography for realistic synthetic data and for tests;
//! not a full register.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Municipality {
    /// Kommunenummer (Volven 3402).
    pub code: &'static str,
    pub name: &'static str,
    pub county: &'static str,
    pub postal_code: &'static str,
    pub post_place: &'static str,
    pub population: u32,
    /// Index into [`HEALTH_TRUSTS`].
    pub health_trust: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthTrust {
    pub name: &'static str,
    /// The main hospital's name.
    pub hospital: &'static str,
    /// Index into [`HEALTH_REGIONS`].
    pub region: usize,
}

/// The four regional health authorities (RHF).
pub const HEALTH_REGIONS: [&str; 4] =
    ["Helse Sør-Øst RHF", "Helse Vest RHF", "Helse Midt-Norge RHF", "Helse Nord RHF"];

pub const HEALTH_TRUSTS: [HealthTrust; 16] = [
    HealthTrust { name: "Oslo universitetssykehus HF", hospital: "Rikshospitalet", region: 0 },
    HealthTrust { name: "Akershus universitetssykehus HF", hospital: "Ahus Nordbyhagen", region: 0 },
    HealthTrust { name: "Vestre Viken HF", hospital: "Drammen sykehus", region: 0 },
    HealthTrust { name: "Sykehuset Østfold HF", hospital: "Sykehuset Østfold Kalnes", region: 0 },
    HealthTrust { name: "Sykehuset i Vestfold HF", hospital: "Sykehuset i Vestfold Tønsberg", region: 0 },
    HealthTrust { name: "Sykehuset Telemark HF", hospital: "Sykehuset Telemark Skien", region: 0 },
    HealthTrust { name: "Sykehuset Innlandet HF", hospital: "Sykehuset Innlandet Hamar", region: 0 },
    HealthTrust { name: "Sørlandet sykehus HF", hospital: "Sørlandet sykehus Kristiansand", region: 0 },
    HealthTrust { name: "Helse Bergen HF", hospital: "Haukeland universitetssjukehus", region: 1 },
    HealthTrust { name: "Helse Stavanger HF", hospital: "Stavanger universitetssjukehus", region: 1 },
    HealthTrust { name: "Helse Fonna HF", hospital: "Haugesund sjukehus", region: 1 },
    HealthTrust { name: "Helse Førde HF", hospital: "Førde sentralsjukehus", region: 1 },
    HealthTrust { name: "St. Olavs hospital HF", hospital: "St. Olavs hospital", region: 2 },
    HealthTrust { name: "Helse Møre og Romsdal HF", hospital: "Ålesund sjukehus", region: 2 },
    HealthTrust { name: "Nordlandssykehuset HF", hospital: "Nordlandssykehuset Bodø", region: 3 },
    HealthTrust { name: "Universitetssykehuset Nord-Norge HF", hospital: "UNN Tromsø", region: 3 },
];

const fn m(
    code: &'static str,
    name: &'static str,
    county: &'static str,
    postal_code: &'static str,
    post_place: &'static str,
    population: u32,
    health_trust: usize,
) -> Municipality {
    Municipality { code, name, county, postal_code, post_place, population, health_trust }
}

pub const MUNICIPALITIES: [Municipality; 36] = [
    m("0301", "Oslo", "Oslo", "0150", "OSLO", 717_000, 0),
    m("3201", "Bærum", "Akershus", "1337", "SANDVIKA", 130_000, 2),
    m("3203", "Asker", "Akershus", "1383", "ASKER", 98_000, 2),
    m("3205", "Lillestrøm", "Akershus", "2000", "LILLESTRØM", 92_000, 1),
    m("3301", "Drammen", "Buskerud", "3015", "DRAMMEN", 103_000, 2),
    m("3303", "Kongsberg", "Buskerud", "3611", "KONGSBERG", 28_000, 2),
    m("3101", "Halden", "Østfold", "1767", "HALDEN", 31_000, 3),
    m("3103", "Moss", "Østfold", "1530", "MOSS", 51_000, 3),
    m("3105", "Sarpsborg", "Østfold", "1706", "SARPSBORG", 59_000, 3),
    m("3107", "Fredrikstad", "Østfold", "1606", "FREDRIKSTAD", 85_000, 3),
    m("3905", "Tønsberg", "Vestfold", "3110", "TØNSBERG", 58_000, 4),
    m("3907", "Sandefjord", "Vestfold", "3210", "SANDEFJORD", 65_000, 4),
    m("3909", "Larvik", "Vestfold", "3256", "LARVIK", 48_000, 4),
    m("4001", "Porsgrunn", "Telemark", "3915", "PORSGRUNN", 37_000, 5),
    m("4003", "Skien", "Telemark", "3724", "SKIEN", 56_000, 5),
    m("3403", "Hamar", "Innlandet", "2317", "HAMAR", 32_000, 6),
    m("3405", "Lillehammer", "Innlandet", "2609", "LILLEHAMMER", 29_000, 6),
    m("3407", "Gjøvik", "Innlandet", "2815", "GJØVIK", 31_000, 6),
    m("4203", "Arendal", "Agder", "4836", "ARENDAL", 45_000, 7),
    m("4204", "Kristiansand", "Agder", "4611", "KRISTIANSAND S", 116_000, 7),
    m("4601", "Bergen", "Vestland", "5003", "BERGEN", 291_000, 8),
    m("4647", "Sunnfjord", "Vestland", "6800", "FØRDE", 22_000, 11),
    m("1103", "Stavanger", "Rogaland", "4006", "STAVANGER", 146_000, 9),
    m("1108", "Sandnes", "Rogaland", "4306", "SANDNES", 82_000, 9),
    m("1106", "Haugesund", "Rogaland", "5527", "HAUGESUND", 38_000, 10),
    m("5001", "Trondheim", "Trøndelag", "7011", "TRONDHEIM", 214_000, 12),
    m("5006", "Steinkjer", "Trøndelag", "7713", "STEINKJER", 24_000, 12),
    m("1508", "Ålesund", "Møre og Romsdal", "6002", "ÅLESUND", 58_000, 13),
    m("1506", "Molde", "Møre og Romsdal", "6413", "MOLDE", 32_000, 13),
    m("1804", "Bodø", "Nordland", "8006", "BODØ", 53_000, 14),
    m("1806", "Narvik", "Nordland", "8514", "NARVIK", 22_000, 14),
    m("5501", "Tromsø", "Troms", "9008", "TROMSØ", 78_000, 15),
    m("5503", "Harstad", "Troms", "9405", "HARSTAD", 25_000, 15),
    m("5601", "Alta", "Finnmark", "9510", "ALTA", 21_000, 15),
    m("5603", "Hammerfest", "Finnmark", "9600", "HAMMERFEST", 11_000, 15),
    m("5607", "Vadsø", "Finnmark", "9800", "VADSØ", 6_000, 15),
];

pub fn municipality(code: &str) -> Option<&'static Municipality> {
    MUNICIPALITIES.iter().find(|m| m.code == code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_are_consistent() {
        for (i, a) in MUNICIPALITIES.iter().enumerate() {
            assert_eq!(a.code.len(), 4);
            assert_eq!(a.postal_code.len(), 4);
            assert!(a.health_trust < HEALTH_TRUSTS.len());
            assert!(MUNICIPALITIES[i + 1..].iter().all(|b| b.code != a.code), "{} twice", a.code);
        }
        assert!(HEALTH_TRUSTS.iter().all(|t| t.region < HEALTH_REGIONS.len()));
        // Every health trust serves at least one listed municipality.
        for (i, trust) in HEALTH_TRUSTS.iter().enumerate() {
            assert!(MUNICIPALITIES.iter().any(|m| m.health_trust == i), "{}", trust.name);
        }
        assert_eq!(municipality("4601").map(|m| m.name), Some("Bergen"));
    }
}
