//! Check-digit rules for national identifiers.
//!
//! A fødselsnummer is `DDMMYY III K1 K2`. Until 2032, K1 is the one digit making the weighted
//! sum of the first ten digits divisible by 11. From 1 January 2032 numbers may be issued where
//! that sum is 0, 1, 2 or 3 mod 11 (four possible K1), and new numbers no longer encode sex or
//! century; numbers issued under the old rule stay valid, so validation accepts both. K2 is
//! unchanged. A D-nummer adds 4 to the first digit; an H-nummer adds 40 to the month.

const K1_WEIGHTS: [u32; 9] = [3, 7, 6, 1, 8, 9, 4, 5, 2];
const K2_WEIGHTS: [u32; 10] = [5, 4, 3, 2, 7, 6, 5, 4, 3, 2];
const ORGNR_WEIGHTS: [u32; 8] = [3, 2, 7, 6, 5, 4, 3, 2];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PersonIdKind {
    Fodselsnummer,
    DNummer,
    HNummer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sex {
    Female,
    Male,
}

/// Why a string is not a valid personal identification number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PersonIdError {
    #[error("not eleven digits")]
    NotElevenDigits,
    #[error("the first six digits are not a date")]
    NoSuchDate,
    #[error("a check digit is wrong")]
    CheckDigit,
}

fn digits(s: &str) -> Option<Vec<u32>> {
    s.chars().map(|c| c.to_digit(10)).collect()
}

fn weighted(d: &[u32], w: &[u32]) -> u32 {
    d.iter().zip(w).map(|(a, b)| a * b).sum()
}

/// `11 - (sum mod 11)`, with 11 read as 0; `None` for 10, which no number may carry.
fn mod11_check(sum: u32) -> Option<u32> {
    match 11 - sum % 11 {
        11 => Some(0),
        10 => None,
        k => Some(k),
    }
}

/// Validates a fødselsnummer, D-nummer or H-nummer under the current and the 2032 rule.
pub fn validate_person_id(s: &str) -> Result<PersonIdKind, PersonIdError> {
    let d = digits(s).filter(|d| d.len() == 11).ok_or(PersonIdError::NotElevenDigits)?;
    let (mut day, mut month) = (d[0] * 10 + d[1], d[2] * 10 + d[3]);
    let mut kind = PersonIdKind::Fodselsnummer;
    if day > 40 {
        day -= 40;
        kind = PersonIdKind::DNummer;
    }
    if month > 40 {
        month -= 40;
        kind = PersonIdKind::HNummer;
    }
    let max_day = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 => 29,
        _ => return Err(PersonIdError::NoSuchDate),
    };
    if day == 0 || day > max_day {
        return Err(PersonIdError::NoSuchDate);
    }
    let k1_ok = d[9] != 10 && (weighted(&d[..9], &K1_WEIGHTS) + d[9]) % 11 <= 3;
    let k2_ok = mod11_check(weighted(&d[..10], &K2_WEIGHTS)) == Some(d[10]);
    if k1_ok && k2_ok { Ok(kind) } else { Err(PersonIdError::CheckDigit) }
}

/// Issues a number under today's rule for someone born on `(year, month, day)`, with the
/// individual number derived from `serial` (tried upward until the check digits exist).
/// `None` when no individual number in the century's range gives valid check digits.
pub fn issue_person_id(
    (year, month, day): (i32, u32, u32),
    sex: Sex,
    kind: PersonIdKind,
    serial: u32,
) -> Option<String> {
    // Individual numbers by century: 1900–1999 use 000–499, 2000–2039 use 500–999.
    let (lo, hi) = if year >= 2000 { (500, 999) } else { (0, 499) };
    let span = hi - lo + 1;
    let shown_day = if kind == PersonIdKind::DNummer { day + 40 } else { day };
    let shown_month = if kind == PersonIdKind::HNummer { month + 40 } else { month };
    let date = format!("{shown_day:02}{shown_month:02}{:02}", year.rem_euclid(100));
    for step in 0..span {
        let individual = lo + (serial + step) % span;
        // The third individual digit encodes sex: odd for men.
        let odd = individual % 2 == 1;
        if odd != (sex == Sex::Male) {
            continue;
        }
        let base = format!("{date}{individual:03}");
        let d = digits(&base).expect("digits");
        let Some(k1) = mod11_check(weighted(&d, &K1_WEIGHTS)) else { continue };
        let mut d10 = d.clone();
        d10.push(k1);
        let Some(k2) = mod11_check(weighted(&d10, &K2_WEIGHTS)) else { continue };
        return Some(format!("{base}{k1}{k2}"));
    }
    None
}

/// Validates a nine-digit organisasjonsnummer (Enhetsregisteret).
pub fn validate_organisation_number(s: &str) -> bool {
    match digits(s) {
        Some(d) if d.len() == 9 => mod11_check(weighted(&d[..8], &ORGNR_WEIGHTS)) == Some(d[8]),
        _ => false,
    }
}

/// The organisasjonsnummer with the eight leading digits `base` (10_000_000..=99_999_999),
/// or the next base upward that has a check digit.
pub fn issue_organisation_number(mut base: u32) -> String {
    loop {
        let s = format!("{base:08}");
        let d = digits(&s).expect("digits");
        if let Some(k) = mod11_check(weighted(&d, &ORGNR_WEIGHTS)) {
            return format!("{s}{k}");
        }
        base += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_numbers() {
        // The Tax Administration's published example of a number under the 2032 rule.
        assert_eq!(validate_person_id("02013299997"), Ok(PersonIdKind::Fodselsnummer));
        // Well-known synthetic test numbers under today's rule.
        assert_eq!(validate_person_id("01010750160"), Ok(PersonIdKind::Fodselsnummer));
        assert_eq!(validate_person_id("01010750161"), Err(PersonIdError::CheckDigit));
        assert_eq!(validate_person_id("3201075016"), Err(PersonIdError::NotElevenDigits));
        assert_eq!(validate_person_id("32010750160"), Err(PersonIdError::NoSuchDate));
        // Brønnøysund's own organisasjonsnummer.
        assert!(validate_organisation_number("974760673"));
        assert!(!validate_organisation_number("974760674"));
    }

    #[test]
    fn issued_numbers_validate_as_their_kind() {
        for serial in 0..2_000u32 {
            let year = 1920 + (serial % 100) as i32;
            let date = (year, 1 + serial % 12, 1 + serial % 28);
            let sex = if serial % 3 == 0 { Sex::Male } else { Sex::Female };
            for kind in [PersonIdKind::Fodselsnummer, PersonIdKind::DNummer] {
                let id = issue_person_id(date, sex, kind, serial).expect("an individual number exists");
                assert_eq!(validate_person_id(&id), Ok(kind), "{id}");
                let sex_digit = id.as_bytes()[8] - b'0';
                assert_eq!(sex_digit % 2 == 1, sex == Sex::Male, "{id}");
                // One changed digit is always caught by the check digits.
                let mut bad = id.clone().into_bytes();
                bad[7] = b'0' + (bad[7] - b'0' + 1) % 10;
                assert!(validate_person_id(std::str::from_utf8(&bad).unwrap()).is_err(), "{id}");
            }
        }
        for base in [10_000_000, 55_555_555, 99_999_990] {
            assert!(validate_organisation_number(&issue_organisation_number(base)));
        }
    }
}
