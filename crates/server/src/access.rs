//! Who is asking and what they may do: a request's bearer token checked into an [`Access`],
//! and the one table of which SMART permission each interaction needs.
//!
//! Tokens come from this server's token endpoint (`routes::oauth`): `system/` scopes for
//! backend clients; `patient/` scopes for a patient signed in through an app (reaching the
//! token's patient), `user/` scopes for health personnel and administrators. A token keeps
//! only the scopes of its kind, so a backend client's token never carries a person's
//! reach and a person's never carries `system/`. Whose data a person reaches is `reach`'s.

use std::sync::Arc;

use axum::http::{HeaderMap, header};
use helse_auth::clients::unverified_issuer;
use helse_auth::{Grant, Permission, Role, ScopeContext};
use helse_store::{Clause, Condition};

use crate::AppState;
use crate::error::FhirError;
use crate::interaction::Interaction;
use crate::reach::{EMERGENCY_HEADER, Person};

/// What a request may do.
#[derive(Debug, Clone)]
pub enum Access {
    /// `--no-auth`: development on loopback.
    Unrestricted,
    /// No token: only public endpoints (the CapabilityStatement).
    Anonymous,
    /// A client holding a valid token; for an app a person signed in to, that person.
    Client { client_id: String, grant: Grant, person: Option<Arc<Person>> },
}

impl Access {
    pub fn can(&self, resource_type: &str, permission: Permission) -> bool {
        match self {
            Access::Unrestricted => true,
            Access::Anonymous => false,
            Access::Client { grant, .. } => grant.allows(resource_type, permission),
        }
    }

    /// Refuses with 401 without a token, 403 when the token's scopes do not cover it.
    pub fn require(&self, resource_type: &str, permission: Permission) -> Result<(), FhirError> {
        if self.can(resource_type, permission) {
            return Ok(());
        }
        Err(self.refusal(&format!("{permission:?} on {resource_type}").to_lowercase()))
    }

    /// The permission on every resource type (`system/*.…`).
    pub fn require_all_types(&self, permission: Permission) -> Result<(), FhirError> {
        match self {
            Access::Unrestricted => Ok(()),
            Access::Client { grant, .. } if grant.allows_all_types(permission) => Ok(()),
            _ => Err(self.refusal(&format!("{permission:?} on every resource type").to_lowercase())),
        }
    }

    /// Any authenticated caller.
    pub fn require_authenticated(&self) -> Result<(), FhirError> {
        match self {
            Access::Anonymous => Err(self.refusal("this")),
            _ => Ok(()),
        }
    }

    pub fn client_id(&self) -> Option<&str> {
        match self {
            Access::Client { client_id, .. } => Some(client_id),
            _ => None,
        }
    }

    fn refusal(&self, what: &str) -> FhirError {
        match self {
            Access::Anonymous => {
                FhirError::Unauthorized("an access token is required (Authorization: Bearer …)".into())
            }
            _ => FhirError::Forbidden(format!("the access token's scopes do not allow {what}")),
        }
    }
}

/// The origin of a FHIR base URL (`https://host` of `https://host/fhir`): the issuer of the
/// tokens for it, and where the token endpoint is.
pub fn origin(base: &str) -> &str {
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    match base[after_scheme..].find('/') {
        Some(i) => &base[..after_scheme + i],
        None => base,
    }
}

/// The access an `Authorization` header grants for requests to `base`: a token this server
/// issued, or one from a trusted external issuer.
pub async fn authenticate(state: &AppState, headers: &HeaderMap, base: &str) -> Result<Access, FhirError> {
    let Some(keys) = &state.token_keys else { return Ok(Access::Unrestricted) };
    let Some(value) = headers.get(header::AUTHORIZATION) else { return Ok(Access::Anonymous) };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .ok_or_else(|| FhirError::InvalidToken("the Authorization header is not 'Bearer <token>'".into()))?;
    let refused = |e: helse_auth::AuthError| FhirError::InvalidToken(e.to_string());
    let issuer =
        unverified_issuer(token).map_err(|_| FhirError::InvalidToken("the token is malformed".into()))?;
    let (client_id, scope, person) = match state.trusted_issuers.iter().find(|t| t.issuer == issuer) {
        Some(external) => {
            let claims = external.verify(token, base).map_err(refused)?;
            let client_id = format!("{}@{}", claims.sub, external.issuer);
            let person = match external_person(state, &claims).await? {
                Some((role, fhir_user)) => {
                    let patient = (role == Role::Patient)
                        .then(|| fhir_user.strip_prefix("Patient/").map(str::to_owned))
                        .flatten();
                    Some((client_id.clone(), role, Some(fhir_user), patient))
                }
                None => None,
            };
            (client_id, claims.scopes(), person)
        }
        None => {
            let claims = keys.verify(token, origin(base), base).map_err(refused)?;
            let person = claims.role.map(|role| (claims.sub.clone(), role, claims.fhir_user, claims.patient));
            (claims.client_id.unwrap_or_else(|| claims.sub.clone()), claims.scope, person)
        }
    };
    let mut grant = Grant::parse(&scope);
    let emergency = emergency_reason(headers)?;
    let person = match person {
        None => {
            grant.scopes.retain(|s| s.context == ScopeContext::System);
            if emergency.is_some() {
                return Err(FhirError::Forbidden("emergency access is for health personnel".into()));
            }
            None
        }
        Some((username, role, fhir_user, patient)) => {
            let context = if role == Role::Patient { ScopeContext::Patient } else { ScopeContext::User };
            grant.scopes.retain(|s| s.context == context);
            if emergency.is_some() && role != Role::Practitioner {
                return Err(FhirError::Forbidden("emergency access is for health personnel".into()));
            }
            Some(Arc::new(Person::new(username, role, fhir_user, patient, emergency)))
        }
    };
    Ok(Access::Client { client_id, grant, person })
}

/// Who the person an external token is about is in the record, and so their role: by
/// `fhirUser`, else by ID-porten's national identity number or HelseID's HPR number. A
/// person the record does not know is refused (403), never taken for a backend system.
async fn external_person(
    state: &AppState,
    claims: &helse_auth::issuers::ExternalClaims,
) -> Result<Option<(Role, String)>, FhirError> {
    use helse_norway::systems;
    let unknown = || FhirError::Forbidden("the person this token is about is not in the record".into());
    let found = if let Some(reference) = &claims.fhir_user {
        // `Patient/123`, or a full URL of it.
        let (ty, id) = helse_fhir_r4::reference_target(reference).ok_or_else(unknown)?;
        Some(format!("{ty}/{id}"))
    } else if let Some(pid) = &claims.pid {
        let ids = format!("{}|{pid},{}|{pid}", systems::FODSELSNUMMER, systems::D_NUMMER);
        Some(crate::reach::find_one(state, "Patient", "identifier", &ids).await?.ok_or_else(unknown)?)
    } else if let Some(hpr) = &claims.hpr_number {
        let ids = format!("{}|{hpr}", systems::HPR_NUMMER);
        Some(crate::reach::find_one(state, "Practitioner", "identifier", &ids).await?.ok_or_else(unknown)?)
    } else {
        None
    };
    let Some(reference) = found else { return Ok(None) };
    let role = match reference.split('/').next() {
        Some("Patient") => Role::Patient,
        Some("Practitioner") => Role::Practitioner,
        _ => {
            return Err(FhirError::Forbidden(format!(
                "fhirUser '{reference}' is not a Patient or Practitioner"
            )));
        }
    };
    Ok(Some((role, reference)))
}

/// Most characters an emergency-access reason may have.
pub const MAX_EMERGENCY_REASON: usize = 500;

/// The reason given for emergency access (UTF-8, or percent-encoded UTF-8).
fn emergency_reason(headers: &HeaderMap) -> Result<Option<String>, FhirError> {
    let Some(value) = headers.get(EMERGENCY_HEADER) else { return Ok(None) };
    let raw = String::from_utf8(value.as_bytes().to_vec())
        .map_err(|_| FhirError::BadRequest("X-Emergency-Access is not UTF-8".into()))?;
    let decoded =
        serde_urlencoded::from_str::<Vec<(String, String)>>(&format!("r={}", raw.replace('+', "%2B")))
            .ok()
            .and_then(|v| v.into_iter().next())
            .map_or(raw.clone(), |(_, v)| v);
    let reason = decoded.trim();
    if reason.is_empty() || reason.chars().count() > MAX_EMERGENCY_REASON {
        return Err(FhirError::BadRequest(format!(
            "X-Emergency-Access must state the reason (1 to {MAX_EMERGENCY_REASON} characters)"
        )));
    }
    Ok(Some(reason.to_owned()))
}

/// Whether `access` may run `interaction` at all; what it may see of the results
/// (`_include`, chains, `$everything`, history) is checked where they are built.
pub fn authorize(access: &Access, interaction: &Interaction, headers: &HeaderMap) -> Result<(), FhirError> {
    use Interaction as I;
    use Permission::{Create, Delete, Read, Search, Update};
    if access.person().is_some() {
        // What reaches across patients, or writes to whatever a search finds, is for backend
        // systems: a person's reach is checked resource by resource.
        let across = match interaction {
            I::HistoryType(_) | I::HistorySystem => Some("history across resources"),
            I::Export(_) | I::ExportStatus(_) | I::ExportCancel(_) | I::ExportFile(..) => Some("bulk export"),
            I::ConditionalUpdate(_) | I::ConditionalPatch(_) | I::ConditionalDelete(_) => {
                Some("conditional writes")
            }
            I::Create(_) if headers.contains_key("if-none-exist") => Some("conditional creates"),
            _ => None,
        };
        if let Some(what) = across {
            return Err(FhirError::Forbidden(format!("{what} need a backend (system) client")));
        }
    }
    match interaction {
        I::Capabilities => Ok(()),
        I::Read(ty, _) | I::Vread(ty, ..) | I::HistoryInstance(ty, _) => access.require(ty.as_str(), Read),
        I::Validate(ty, id) => match id {
            Some(_) => access.require(ty.as_str(), Read),
            None => access.require_authenticated(),
        },
        I::Create(ty) => {
            access.require(ty.as_str(), Create)?;
            // A conditional create answers with the match it finds.
            if headers.contains_key("if-none-exist") {
                access.require(ty.as_str(), Search)?;
                access.require(ty.as_str(), Read)?;
            }
            Ok(())
        }
        I::Update(ty, _) | I::Patch(ty, _) => access.require(ty.as_str(), Update),
        I::ConditionalUpdate(ty) | I::ConditionalPatch(ty) => {
            access.require(ty.as_str(), Update)?;
            access.require(ty.as_str(), Search)
        }
        I::Delete(ty, _) => access.require(ty.as_str(), Delete),
        I::ConditionalDelete(ty) => {
            access.require(ty.as_str(), Delete)?;
            access.require(ty.as_str(), Search)
        }
        I::SearchType(ty) | I::HistoryType(ty) => access.require(ty.as_str(), Search),
        I::CompartmentSearch { compartment, target, .. } => {
            access.require(compartment.as_str(), Read)?;
            access.require(target.as_str(), Search)
        }
        I::Everything(ty, _) => access.require(ty.as_str(), Read),
        I::Summary(_) => access.require("Patient", Read),
        I::AccessLog(_) => {
            access.require("Patient", Read)?;
            access.require("AuditEvent", Search)
        }
        // Entries are authorised one by one.
        I::Bundle => access.require_authenticated(),
        // Versions of every type: only for a grant over every type.
        I::HistorySystem => access.require_all_types(Search),
        // The exported types are checked at kick-off; a job is its owner's.
        I::Export(_) | I::ExportStatus(_) | I::ExportCancel(_) | I::ExportFile(..) => {
            access.require_authenticated()
        }
    }
}

/// Chains and `_has` look into other resource types: those must be searchable too, or a
/// search could tell what the grant does not show (which Observations have a Patient with
/// a given name, say).
pub fn authorize_clauses(access: &Access, clauses: &[Clause]) -> Result<(), FhirError> {
    fn walk(access: &Access, c: &Condition) -> Result<(), FhirError> {
        match c {
            Condition::Chain { target_type, inner, .. } => {
                access.require(target_type, Permission::Search)?;
                authorize_clauses(access, inner)
            }
            Condition::Has { source_type, inner, .. } => {
                access.require(source_type, Permission::Search)?;
                authorize_clauses(access, inner)
            }
            Condition::AnyOf(cs) => cs.iter().try_for_each(|c| walk(access, c)),
            Condition::Not(inner) => walk(access, inner),
            _ => Ok(()),
        }
    }
    clauses.iter().flat_map(|c| &c.0).try_for_each(|c| walk(access, c))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Which permission each interaction needs: (method, path, criteria?, scope that allows
    /// it, scope that does not).
    #[test]
    fn each_interaction_needs_its_permission() {
        let cases = [
            ("GET", "/Patient/1", false, "system/Patient.r", "system/Patient.s"),
            ("GET", "/Patient/1/_history/2", false, "system/Patient.r", "system/Observation.r"),
            ("GET", "/Patient/1/_history", false, "system/Patient.r", "system/Patient.s"),
            ("GET", "/Patient", true, "system/Patient.s", "system/Patient.r"),
            ("GET", "/Patient/_history", false, "system/Patient.s", "system/Patient.r"),
            ("GET", "/_history", false, "system/*.s", "system/Patient.s"),
            ("POST", "/Patient", false, "system/Patient.c", "system/Patient.u"),
            ("PUT", "/Patient/1", false, "system/Patient.u", "system/Patient.c"),
            ("PUT", "/Patient", true, "system/Patient.us", "system/Patient.u"),
            ("PATCH", "/Patient/1", false, "system/Patient.u", "system/Patient.r"),
            ("DELETE", "/Patient/1", false, "system/Patient.d", "system/Patient.u"),
            ("DELETE", "/Patient", true, "system/Patient.ds", "system/Patient.d"),
            (
                "GET",
                "/Patient/1/Observation",
                false,
                "system/Patient.r system/Observation.s",
                "system/Observation.s",
            ),
            ("GET", "/Patient/1/$everything", false, "system/Patient.r", "system/Observation.r"),
        ];
        let headers = HeaderMap::new();
        for (method, path, criteria, allowed, refused) in cases {
            let interaction = crate::interaction::parse(&method.parse().unwrap(), path, criteria).unwrap();
            let client = |scope: &str| Access::Client {
                client_id: "c".into(),
                grant: Grant::parse(scope),
                person: None,
            };
            assert!(
                authorize(&client(allowed), &interaction, &headers).is_ok(),
                "{method} {path} with {allowed}"
            );
            assert!(
                matches!(authorize(&client(refused), &interaction, &headers), Err(FhirError::Forbidden(_))),
                "{method} {path} with {refused}"
            );
            assert!(
                matches!(
                    authorize(&Access::Anonymous, &interaction, &headers),
                    Err(FhirError::Unauthorized(_))
                ),
                "{method} {path} anonymously"
            );
            assert!(authorize(&Access::Unrestricted, &interaction, &headers).is_ok());
        }
        // A conditional create answers with what it finds: it also needs search and read.
        let create = crate::interaction::parse(&"POST".parse().unwrap(), "/Patient", false).unwrap();
        let mut conditional = HeaderMap::new();
        conditional.insert("if-none-exist", "identifier=x".parse().unwrap());
        let creator =
            Access::Client { client_id: "c".into(), grant: Grant::parse("system/Patient.c"), person: None };
        assert!(authorize(&creator, &create, &conditional).is_err());
        let full =
            Access::Client { client_id: "c".into(), grant: Grant::parse("system/Patient.crs"), person: None };
        assert!(authorize(&full, &create, &conditional).is_ok());
        // The CapabilityStatement is public.
        let metadata = crate::interaction::parse(&"GET".parse().unwrap(), "/metadata", false).unwrap();
        assert!(authorize(&Access::Anonymous, &metadata, &headers).is_ok());
    }

    #[test]
    fn origins_drop_the_path() {
        assert_eq!(origin("https://helse.example/fhir"), "https://helse.example");
        assert_eq!(origin("http://127.0.0.1:8080/fhir"), "http://127.0.0.1:8080");
        assert_eq!(origin("http://host"), "http://host");
    }
}
