//! Who is asking and what they may do: a request's bearer token checked into an [`Access`],
//! and the one table of which SMART permission each interaction needs.
//!
//! Tokens come from this server's token endpoint (`routes::oauth`), which grants `system/`
//! scopes to backend clients. `patient/` and `user/` scopes need a launch context (which
//! patient, which user) that only the authorization-code flow provides; until that flow
//! exists such scopes grant nothing, rather than everything.

use axum::http::{HeaderMap, header};
use helse_auth::clients::unverified_issuer;
use helse_auth::{Grant, Permission, ScopeContext};
use helse_store::{Clause, Condition};

use crate::AppState;
use crate::error::FhirError;
use crate::interaction::Interaction;

/// What a request may do.
#[derive(Debug, Clone)]
pub enum Access {
    /// `--no-auth`: development on loopback.
    Unrestricted,
    /// No token: only public endpoints (the CapabilityStatement).
    Anonymous,
    /// A client holding a valid token.
    Client { client_id: String, grant: Grant },
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
pub fn authenticate(state: &AppState, headers: &HeaderMap, base: &str) -> Result<Access, FhirError> {
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
    let (client_id, scope) = match state.trusted_issuers.iter().find(|t| t.issuer == issuer) {
        Some(external) => {
            let claims = external.verify(token, base).map_err(refused)?;
            (format!("{}@{}", claims.sub, external.issuer), claims.scopes())
        }
        None => {
            let claims = keys.verify(token, origin(base), base).map_err(refused)?;
            (claims.sub, claims.scope)
        }
    };
    let mut grant = Grant::parse(&scope);
    grant.scopes.retain(|s| s.context == ScopeContext::System);
    Ok(Access::Client { client_id, grant })
}

/// Whether `access` may run `interaction` at all; what it may see of the results
/// (`_include`, chains, `$everything`, history) is checked where they are built.
pub fn authorize(access: &Access, interaction: &Interaction, headers: &HeaderMap) -> Result<(), FhirError> {
    use Interaction as I;
    use Permission::{Create, Delete, Read, Search, Update};
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
            let client = |scope: &str| Access::Client { client_id: "c".into(), grant: Grant::parse(scope) };
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
        let creator = Access::Client { client_id: "c".into(), grant: Grant::parse("system/Patient.c") };
        assert!(authorize(&creator, &create, &conditional).is_err());
        let full = Access::Client { client_id: "c".into(), grant: Grant::parse("system/Patient.crs") };
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
