//! People who sign in at the authorisation server: patients, health personnel and
//! administrators, each tied to the FHIR resource that is them (`fhirUser`), with a
//! password kept as a salted PBKDF2 hash.

use serde::{Deserialize, Serialize};

/// What a person is to the record, which decides what their tokens reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Sees their own record, and the records they are proxy for.
    Patient,
    /// Health personnel: sees a patient's record through a care relationship, or through
    /// emergency access.
    Practitioner,
    /// Runs the service (clients, users, reviews of emergency access); sees no patient data.
    Admin,
}

impl Role {
    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "patient" => Some(Role::Patient),
            "practitioner" => Some(Role::Practitioner),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Patient => "patient",
            Role::Practitioner => "practitioner",
            Role::Admin => "admin",
        }
    }

    /// The resource type a user of this role is (`fhirUser`), if any.
    pub fn fhir_user_type(self) -> Option<&'static str> {
        match self {
            Role::Patient => Some("Patient"),
            Role::Practitioner => Some("Practitioner"),
            Role::Admin => None,
        }
    }
}

/// A user account, kept as JSON in the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub username: String,
    pub role: Role,
    /// `Patient/123` or `Practitioner/456`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fhir_user: Option<String>,
    /// `pbkdf2-sha256$iterations$salt$hash` (base64url).
    pub password_hash: String,
}

/// Where users are kept in the store's key-value table.
pub const USER_KEY_PREFIX: &str = "user/";

impl User {
    pub fn store_key(username: &str) -> String {
        format!("{USER_KEY_PREFIX}{username}")
    }

    /// The id of the `fhirUser` resource (`123` of `Patient/123`).
    pub fn fhir_user_id(&self) -> Option<&str> {
        self.fhir_user.as_deref().and_then(|r| r.split_once('/')).map(|(_, id)| id)
    }
}

/// PBKDF2-HMAC-SHA256 iterations for new passwords (OWASP's 2023 figure).
pub const PASSWORD_ITERATIONS: u32 = 600_000;

/// A salted hash of `password` at `iterations` (tests use fewer; the count is kept in the
/// hash, so verification follows whatever a hash was made with).
pub fn hash_password(password: &str, iterations: u32) -> String {
    let salt = crate::random_bytes::<16>();
    let hash = pbkdf2_sha256(password, &salt, iterations);
    format!("pbkdf2-sha256${iterations}${}${}", crate::base64url(&salt), crate::base64url(&hash))
}

/// Whether `password` is the one `stored` was made from (compared in constant time).
pub fn verify_password(password: &str, stored: &str) -> bool {
    use base64::Engine;
    let decode = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s).ok();
    let mut parts = stored.split('$');
    let (Some("pbkdf2-sha256"), Some(iterations), Some(salt), Some(hash), None) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let (Ok(iterations), Some(salt), Some(expected)) =
        (iterations.parse::<u32>(), decode(salt), decode(hash))
    else {
        return false;
    };
    if iterations == 0 || expected.len() != 32 {
        return false;
    }
    let actual = pbkdf2_sha256(password, &salt, iterations);
    actual.iter().zip(&expected).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

fn pbkdf2_sha256(password: &str, salt: &[u8], iterations: u32) -> [u8; 32] {
    let mut out = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password.as_bytes(), salt, iterations, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_only_against_their_own_hash() {
        let stored = hash_password("correct horse", 1_000);
        assert!(verify_password("correct horse", &stored));
        assert!(!verify_password("correct hors", &stored));
        // Salted: the same password hashes differently each time.
        assert_ne!(stored, hash_password("correct horse", 1_000));
        for broken in ["", "pbkdf2-sha256$0$AA$AA", "md5$1$AA$AA", &stored.replace("$1000$", "$1001$")] {
            assert!(!verify_password("correct horse", broken), "{broken}");
        }
    }

    #[test]
    fn roles_read_and_name_their_resource_type() {
        assert_eq!(Role::parse("practitioner"), Some(Role::Practitioner));
        assert_eq!(Role::parse("root"), None);
        assert_eq!(Role::Patient.fhir_user_type(), Some("Patient"));
        assert_eq!(Role::Admin.fhir_user_type(), None);
        let user = User {
            username: "kari".into(),
            role: Role::Patient,
            fhir_user: Some("Patient/p1".into()),
            password_hash: String::new(),
        };
        assert_eq!(user.fhir_user_id(), Some("p1"));
    }
}
