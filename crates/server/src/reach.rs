//! What of the record a request reaches. Scopes say which resource types and interactions a
//! token allows (`access`); this module says *whose* data:
//! - a backend client (`system/` scopes): every patient's;
//! - a patient (`patient/` scopes): the compartment of the token's patient — themselves,
//!   or someone they are proxy for;
//! - health personnel (`user/` scopes): a patient's record when they have a care
//!   relationship with the patient (on the patient's GP list, an active episode of care
//!   they manage or at their organisation, an active care team they are in, an active
//!   referral to them or their organisation), or through **emergency access** with a stated
//!   reason; and never what the patient has blocked from them (`consent`);
//! - an administrator: no patient data.
//!
//! Health personnel work one patient at a time: a search of patient data names the patient
//! (`patient=`, `subject=Patient/…`, or `Patient/{id}/…`), which lets the patient's blocks
//! become clauses of the search itself, so paging and totals never count what is hidden.
//! A resource outside the reach answers 404 — its existence does not leak — except a
//! Patient without a care relationship (403, naming emergency access), since whoever asks
//! by the patient's id knows the patient exists.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use helse_auth::Role;
use helse_fhir_r4::{Issue, IssueType, ResourceId, ResourceType};
use helse_search::{compartment_owners, parse_search, search_parameters};
use helse_store::{Clause, Condition, Cursor, SearchQuery, StoredVersion};
use serde_json::Value;

use crate::AppState;
use crate::access::Access;
use crate::consent::{BLOCK, Block, CONSENT_KIND_SYSTEM};
use crate::error::FhirError;

/// The header health personnel send, with the reason, to open a record they have no care
/// relationship with.
pub const EMERGENCY_HEADER: &str = "x-emergency-access";

/// A person signed in through the authorization code grant.
pub struct Person {
    pub username: String,
    pub role: Role,
    /// `Patient/123`, `Practitioner/456`.
    pub fhir_user: Option<String>,
    /// The patient `patient/` scopes reach (the launch context).
    pub patient: Option<String>,
    /// This request's reason for emergency access, if it claims it.
    pub emergency: Option<String>,
    memo: Mutex<Memo>,
}

impl std::fmt::Debug for Person {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Person").field("role", &self.role).finish_non_exhaustive()
    }
}

/// What one request has looked up about the person and the patients it touched.
#[derive(Default)]
struct Memo {
    identity: Option<Arc<Identity>>,
    patients: HashMap<String, Arc<PatientRules>>,
}

/// Who a practitioner is in the record: themselves and their roles (`Type/id`), and the
/// organisations they work for.
#[derive(Debug, Default)]
struct Identity {
    refs: Vec<String>,
    organisations: Vec<String>,
    /// Holds an active transplant-coordinator role: reads donor statements of any patient.
    coordinator: bool,
}

impl Identity {
    fn all(&self) -> Vec<String> {
        self.refs.iter().chain(&self.organisations).cloned().collect()
    }
}

/// What holds between a practitioner and one patient.
#[derive(Debug)]
struct PatientRules {
    related: bool,
    blocks: Vec<Block>,
}

impl Person {
    pub fn new(
        username: String,
        role: Role,
        fhir_user: Option<String>,
        patient: Option<String>,
        emergency: Option<String>,
    ) -> Person {
        Person { username, role, fhir_user, patient, emergency, memo: Mutex::default() }
    }

    fn memo(&self) -> std::sync::MutexGuard<'_, Memo> {
        self.memo.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Patients this request reached through emergency access (no care relationship).
    pub fn emergency_patients(&self) -> Vec<String> {
        if self.emergency.is_none() {
            return Vec::new();
        }
        let mut ids: Vec<String> =
            self.memo().patients.iter().filter(|(_, r)| !r.related).map(|(id, _)| id.clone()).collect();
        ids.sort();
        ids
    }

    /// The one patient this request reached, if exactly one (for the access log).
    pub fn patient_reached(&self) -> Option<String> {
        if let Some(p) = &self.patient {
            return Some(p.clone());
        }
        let memo = self.memo();
        match memo.patients.len() {
            1 => memo.patients.keys().next().cloned(),
            _ => None,
        }
    }
}

/// Whose data an access reaches.
pub enum Reach<'a> {
    All,
    /// One patient's compartment.
    Patient(&'a str),
    /// Through care relationships (health personnel).
    Care(&'a Person),
    /// No patient data (administrators; a patient token without a patient).
    None,
}

impl Access {
    pub fn reach(&self) -> Reach<'_> {
        match self {
            Access::Unrestricted => Reach::All,
            Access::Anonymous => Reach::None,
            Access::Client { person: None, .. } => Reach::All,
            Access::Client { person: Some(p), .. } => match (p.role, &p.patient) {
                (Role::Patient, Some(patient)) => Reach::Patient(patient),
                (Role::Practitioner, _) => Reach::Care(p),
                _ => Reach::None,
            },
        }
    }

    pub fn person(&self) -> Option<&Person> {
        match self {
            Access::Client { person: Some(p), .. } => Some(p),
            _ => None,
        }
    }
}

/// Whether resources of a type can be patient data (the Patient compartment's members).
pub fn is_patient_data(ty: &str) -> bool {
    ty == "Patient" || search_parameters().compartment_params("Patient", ty).is_some()
}

/// The clause that keeps `ty` resources in `patient`'s compartment.
pub fn compartment_clause(patient: &str, ty: &str) -> Option<Clause> {
    if ty == "Patient" {
        return Some(Clause(vec![Condition::Id(vec![patient.to_owned()])]));
    }
    let params = search_parameters().compartment_params("Patient", ty)?;
    Some(Clause(
        params
            .iter()
            .map(|p| Condition::Reference {
                param: p.clone(),
                target_type: Some("Patient".into()),
                target_id: Some(patient.to_owned()),
                url: None,
            })
            .collect(),
    ))
}

/// A clause no resource satisfies.
fn nothing() -> Clause {
    Clause(vec![Condition::Id(Vec::new())])
}

/// The resources of a search (up to a thousand), read by the server for its own decisions.
pub(crate) async fn find(
    state: &AppState,
    ty: &str,
    params: &[(&str, String)],
) -> Result<Vec<StoredVersion>, FhirError> {
    let Some(clauses) = clauses(ty, params) else { return Ok(Vec::new()) };
    let query = SearchQuery {
        resource_type: ty.to_owned(),
        clauses,
        sort: Vec::new(),
        count: 1000,
        offset: 0,
        cursor: Cursor::Start,
        want_total: false,
    };
    Ok(state.store.search(&query).await?.0.into_iter().map(|(_, v)| v).collect())
}

/// `Type/id` of the one resource a search finds (none, or more than one: `None`).
pub async fn find_one(
    state: &AppState,
    ty: &str,
    param: &str,
    value: &str,
) -> Result<Option<String>, FhirError> {
    let found = find(state, ty, &[(param, value.to_owned())]).await?;
    Ok(match found.as_slice() {
        [one] => Some(format!("{ty}/{}", one.id)),
        _ => None,
    })
}

/// Search clauses from URL-style parameters; `None` if any was not understood (dropping one
/// would widen the search).
fn clauses(ty: &str, params: &[(&str, String)]) -> Option<Vec<Clause>> {
    let params: Vec<(String, String)> = params.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
    let parsed = parse_search(ty, &params, true).ok()?;
    parsed.ignored.is_empty().then_some(parsed.clauses)
}

fn body_json(v: &StoredVersion) -> Option<Value> {
    v.body.as_deref().and_then(|b| serde_json::from_str(b).ok())
}

/// The current body of the resource a `Type/id` reference names; `None` when it is not a
/// local reference or names nothing live.
pub(crate) async fn read_json(state: &AppState, reference: &str) -> Result<Option<Value>, FhirError> {
    let Some((ty, id)) = reference.split_once('/') else { return Ok(None) };
    let (Ok(ty), Ok(id)) = (ResourceType::parse(ty), ResourceId::parse(id)) else { return Ok(None) };
    Ok(state.store.read(ty, &id).await?.as_ref().and_then(body_json))
}

/// The practitioner's own references, their roles' and their organisations'.
async fn identity(state: &AppState, person: &Person) -> Result<Arc<Identity>, FhirError> {
    if let Some(i) = person.memo().identity.clone() {
        return Ok(i);
    }
    let mut identity = Identity::default();
    if let Some(me) = person.fhir_user.as_deref().and_then(|r| r.strip_prefix("Practitioner/")) {
        identity.refs.push(format!("Practitioner/{me}"));
        let roles = find(
            state,
            "PractitionerRole",
            &[("practitioner", format!("Practitioner/{me}")), ("active", "true".into())],
        )
        .await?;
        for role in roles {
            identity.refs.push(format!("PractitionerRole/{}", role.id));
            let Some(body) = body_json(&role) else { continue };
            if let Some(org) = body.pointer("/organization/reference").and_then(Value::as_str) {
                identity.organisations.push(org.to_owned());
            }
            identity.coordinator |= body["code"].as_array().into_iter().flatten().any(|c| {
                c["coding"].as_array().into_iter().flatten().any(|x| {
                    x["system"] == crate::donor::ROLE_SYSTEM
                        && x["code"] == crate::donor::TRANSPLANT_COORDINATOR
                })
            });
        }
    }
    let identity = Arc::new(identity);
    person.memo().identity = Some(identity.clone());
    Ok(identity)
}

/// The conditions on a Patient that make a care relationship with the practitioner.
fn relationship(identity: &Identity) -> Clause {
    let refs = identity.refs.join(",");
    let practitioners: Vec<&String> =
        identity.refs.iter().filter(|r| r.starts_with("Practitioner/")).collect();
    let orgs = identity.organisations.join(",");
    let everyone = identity.all().join(",");
    let open_episode = "active,waitlist,onhold".to_owned();
    let mut conditions = Vec::new();
    let has = |source: &str, param: &str, params: &[(&str, String)]| {
        clauses(source, params).map(|inner| Condition::Has {
            source_type: source.into(),
            param: param.into(),
            inner,
        })
    };
    if !refs.is_empty() {
        conditions.extend(
            clauses("Patient", &[("general-practitioner", refs.clone())])
                .into_iter()
                .flatten()
                .flat_map(|c| c.0),
        );
        conditions.extend(has(
            "CareTeam",
            "patient",
            &[("status", "active".into()), ("participant", refs.clone())],
        ));
    }
    if !practitioners.is_empty() {
        let managers = practitioners.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(",");
        conditions.extend(has(
            "EpisodeOfCare",
            "patient",
            &[("status", open_episode.clone()), ("care-manager", managers)],
        ));
    }
    if !orgs.is_empty() {
        conditions.extend(has(
            "EpisodeOfCare",
            "patient",
            &[("status", open_episode), ("organization", orgs)],
        ));
    }
    if !everyone.is_empty() {
        conditions.extend(has(
            "ServiceRequest",
            "patient",
            &[("status", "active".into()), ("performer", everyone)],
        ));
    }
    if conditions.is_empty() { nothing() } else { Clause(conditions) }
}

/// Whether the practitioner has a care relationship with the patient, and which of the
/// patient's blocks apply to them.
/// Health personnel finding patients: the one patient a search found (say, by national
/// identity number), or every patient found under emergency access, is a patient this
/// request reached — in that patient's access log, and under emergency access queued for
/// review.
pub async fn note_patients_found(
    state: &AppState,
    access: &Access,
    ty: ResourceType,
    found: &[StoredVersion],
) -> Result<(), FhirError> {
    let Reach::Care(person) = access.reach() else { return Ok(()) };
    if ty.as_str() != "Patient" || (found.len() != 1 && person.emergency.is_none()) {
        return Ok(());
    }
    for patient in found {
        rules(state, person, patient.id.as_str()).await?;
    }
    Ok(())
}

async fn rules(state: &AppState, person: &Person, patient: &str) -> Result<Arc<PatientRules>, FhirError> {
    if let Some(r) = person.memo().patients.get(patient) {
        return Ok(r.clone());
    }
    let identity = identity(state, person).await?;
    let query = SearchQuery {
        resource_type: "Patient".into(),
        clauses: vec![Clause(vec![Condition::Id(vec![patient.to_owned()])]), relationship(&identity)],
        sort: Vec::new(),
        count: 1,
        offset: 0,
        cursor: Cursor::Start,
        want_total: false,
    };
    let related = !state.store.search(&query).await?.0.is_empty();
    let who = identity.all();
    let blocks = find(
        state,
        "Consent",
        &[
            ("patient", format!("Patient/{patient}")),
            ("status", "active".into()),
            ("category", format!("{CONSENT_KIND_SYSTEM}|{BLOCK}")),
        ],
    )
    .await?
    .iter()
    .filter_map(body_json)
    .filter_map(|c| Block::from_consent(&c))
    .filter(|b| b.applies_to(&who))
    .collect();
    let rules = Arc::new(PatientRules { related, blocks });
    person.memo().patients.insert(patient.to_owned(), rules.clone());
    Ok(rules)
}

fn no_relationship(patient: &str) -> FhirError {
    FhirError::Forbidden(format!(
        "you have no care relationship with Patient/{patient}; in an emergency, send the header \
         X-Emergency-Access with the reason (it is logged, shown to the patient and reviewed)"
    ))
}

/// Whether a resource is inside the reach: yes, no (hidden), or not for want of a care
/// relationship, or because the patient blocked it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sight {
    Visible,
    Hidden,
    NoRelationship,
    Blocked,
}

pub async fn sight(state: &AppState, access: &Access, resource: &Value) -> Result<Sight, FhirError> {
    let ty = resource.get("resourceType").and_then(Value::as_str).unwrap_or_default();
    if matches!(access.reach(), Reach::All) || !is_patient_data(ty) {
        return Ok(Sight::Visible);
    }
    sight_of_owned(state, access, resource, &compartment_owners("Patient", resource)).await
}

/// `sight` of a resource whose Patient compartment owners are known.
async fn sight_of_owned(
    state: &AppState,
    access: &Access,
    resource: &Value,
    owners: &[String],
) -> Result<Sight, FhirError> {
    Ok(match access.reach() {
        Reach::All => Sight::Visible,
        Reach::None => Sight::Hidden,
        Reach::Patient(p) => {
            if owners.iter().any(|o| o == p) {
                Sight::Visible
            } else {
                Sight::Hidden
            }
        }
        Reach::Care(person) => {
            // Transplant coordinators read donor statements without a care relationship.
            let coordinating =
                crate::donor::is_statement(resource) && identity(state, person).await?.coordinator;
            let mut sight = Sight::Visible;
            for owner in owners {
                let rules = rules(state, person, owner).await?;
                if !rules.related && person.emergency.is_none() && !coordinating {
                    return Ok(Sight::NoRelationship);
                }
                if rules.blocks.iter().any(|b| b.covers(resource)) {
                    sight = Sight::Blocked;
                }
            }
            sight
        }
    })
}

/// Refuses a resource read outside the reach (see the module's comment for 403 vs 404).
pub async fn check_read(state: &AppState, access: &Access, v: &StoredVersion) -> Result<(), FhirError> {
    if matches!(access.reach(), Reach::All) || !is_patient_data(v.resource_type.as_str()) {
        return Ok(());
    }
    let Some(resource) = body_json(v) else { return Ok(()) };
    let hidden = || FhirError::NotFound(format!("{}/{}", v.resource_type, v.id));
    match sight(state, access, &resource).await? {
        Sight::Visible => Ok(()),
        Sight::NoRelationship if v.resource_type.as_str() == "Patient" => Err(no_relationship(v.id.as_str())),
        Sight::Blocked if access.person().is_some_and(|p| p.emergency.is_some()) => {
            Err(FhirError::Forbidden(format!(
                "the patient has blocked {}/{} from you; it is not shown, even in an emergency",
                v.resource_type, v.id
            )))
        }
        _ => Err(hidden()),
    }
}

/// Of `versions`, those inside the reach (for includes, `$everything`, history).
pub async fn keep_visible(
    state: &AppState,
    access: &Access,
    versions: Vec<StoredVersion>,
) -> Result<Vec<StoredVersion>, FhirError> {
    if matches!(access.reach(), Reach::All) {
        return Ok(versions);
    }
    let mut out = Vec::with_capacity(versions.len());
    for v in versions {
        let visible = match body_json(&v) {
            Some(resource) => sight(state, access, &resource).await? == Sight::Visible,
            None => !is_patient_data(v.resource_type.as_str()),
        };
        if visible {
            out.push(v);
        }
    }
    Ok(out)
}

/// Of the members of `patient`'s compartment, those inside the reach, each with its body
/// parsed — once, for the check and for the caller (`$summary` reads every body).
pub async fn keep_visible_members(
    state: &AppState,
    access: &Access,
    patient: &str,
    versions: Vec<StoredVersion>,
) -> Result<Vec<(StoredVersion, Value)>, FhirError> {
    let all = matches!(access.reach(), Reach::All);
    let only_this = [patient.to_owned()];
    let mut out = Vec::with_capacity(versions.len());
    for v in versions {
        let Some(resource) = body_json(&v) else { continue };
        let visible = all || {
            // A member that names no other patient anywhere is owned by this one alone: no
            // need to evaluate its compartment parameters (most of a long record's cost).
            let sight = if names_only(&resource, patient) {
                sight_of_owned(state, access, &resource, &only_this).await?
            } else {
                sight(state, access, &resource).await?
            };
            sight == Sight::Visible
        };
        if visible {
            out.push((v, resource));
        }
    }
    Ok(out)
}

/// Whether every `Patient` a value's references name is `patient` (relative `Patient/id`;
/// an absolute URL to a Patient counts as another).
fn names_only(value: &Value, patient: &str) -> bool {
    match value {
        Value::Object(map) => map.iter().all(|(k, v)| match v {
            Value::String(r) if k == "reference" => {
                !r.contains("Patient/") || r.strip_prefix("Patient/").is_some_and(|id| id == patient)
            }
            other => names_only(other, patient),
        }),
        Value::Array(items) => items.iter().all(|v| names_only(v, patient)),
        _ => true,
    }
}

/// Refuses a write that would put data outside the reach, or change data outside it:
/// `old` is the current version (update, patch, delete), `new` what would be stored.
pub async fn check_write(
    state: &AppState,
    access: &Access,
    ty: ResourceType,
    old: Option<&StoredVersion>,
    new: Option<&Value>,
) -> Result<(), FhirError> {
    if ty.as_str() == "Consent" {
        for r in old.and_then(body_json).iter().chain(new) {
            if crate::donor::is_statement(r) {
                crate::donor::check_writer(access, r)?;
            }
        }
    }
    if matches!(access.reach(), Reach::All) || !is_patient_data(ty.as_str()) {
        return Ok(());
    }
    if let Some(old) = old {
        check_read(state, access, old).await?;
    }
    let Some(new) = new else { return Ok(()) };
    let outside = || FhirError::Forbidden(format!("this {ty} would be outside the records you may write to"));
    match access.reach() {
        Reach::All => Ok(()),
        Reach::None => Err(outside()),
        Reach::Patient(p) => {
            if compartment_owners("Patient", new).iter().any(|o| o == p) {
                Ok(())
            } else {
                Err(outside())
            }
        }
        Reach::Care(person) => {
            for owner in compartment_owners("Patient", new) {
                if !rules(state, person, &owner).await?.related && person.emergency.is_none() {
                    return Err(no_relationship(&owner));
                }
            }
            Ok(())
        }
    }
}

/// Narrows a `ty` search (its clauses, and those of its chains and `_has`) to the reach.
/// Returns notes for the result Bundle (that a block exists, under emergency access).
pub async fn restrict_search(
    state: &AppState,
    access: &Access,
    ty: ResourceType,
    within: Option<(ResourceType, &ResourceId)>,
    clauses: &mut Vec<Clause>,
) -> Result<Vec<Issue>, FhirError> {
    let ty = ty.as_str();
    let name_the_patient = || {
        FhirError::Forbidden(
            "health personnel search one patient's data at a time: name the patient \
             (patient=…, subject=Patient/…, or Patient/{id}/…)"
                .into(),
        )
    };
    match access.reach() {
        Reach::All => Ok(Vec::new()),
        Reach::None => {
            if is_patient_data(ty) {
                return Err(FhirError::Forbidden("this sign-in reaches no patient data".into()));
            }
            narrow(ty, clauses, &|t| if is_patient_data(t) { vec![nothing()] } else { Vec::new() }, false);
            Ok(Vec::new())
        }
        Reach::Patient(p) => {
            narrow(ty, clauses, &|t| compartment_clause(p, t).into_iter().collect(), true);
            Ok(Vec::new())
        }
        Reach::Care(person) => {
            let pinned = pinned_patient(ty, within, clauses);
            let Some(patient) = pinned else {
                if ty == "Patient" {
                    // Finding patients: those they care for; in an emergency, anyone named
                    // by identifier (and what they look at next is checked per patient).
                    // What chains and `_has` look into must stay patient-free; the
                    // relationship clause itself looks into episodes and care teams.
                    narrow(
                        ty,
                        clauses,
                        &|t| if t == "Patient" { Vec::new() } else { vec![nothing()] },
                        false,
                    );
                    let lookup = person.emergency.is_some() && names_identifier(clauses);
                    if !lookup {
                        clauses.push(relationship(&*identity(state, person).await?));
                    }
                    return Ok(Vec::new());
                }
                if is_patient_data(ty) {
                    return Err(name_the_patient());
                }
                narrow(
                    ty,
                    clauses,
                    &|t| if is_patient_data(t) { vec![nothing()] } else { Vec::new() },
                    false,
                );
                return Ok(Vec::new());
            };
            let rules = rules(state, person, &patient).await?;
            if !rules.related && person.emergency.is_none() {
                // A transplant coordinator finds the patient's donor statements, nothing else.
                if ty == "Consent" && identity(state, person).await?.coordinator {
                    clauses.push(Clause(vec![Condition::Token {
                        param: "category".into(),
                        system: helse_store::TokenSystem::Is(CONSENT_KIND_SYSTEM.into()),
                        code: Some(crate::donor::DONATION.into()),
                    }]));
                } else {
                    return Err(no_relationship(&patient));
                }
            }
            let blocks = rules.blocks.clone();
            narrow(
                ty,
                clauses,
                &|t| {
                    let Some(own) = compartment_clause(&patient, t) else { return Vec::new() };
                    let Ok(rt) = ResourceType::parse(t) else { return vec![nothing()] };
                    std::iter::once(own).chain(blocks.iter().filter_map(|b| b.exclusion(rt))).collect()
                },
                true,
            );
            Ok(block_notes(person, &rules))
        }
    }
}

/// Under emergency access, that the patient has blocked something (never what).
fn block_notes(person: &Person, rules: &PatientRules) -> Vec<Issue> {
    if person.emergency.is_some() && !rules.blocks.is_empty() {
        vec![Issue::warning(
            IssueType::Suppressed,
            "the patient has blocked parts of their record from you; what is blocked is not shown",
        )]
    } else {
        Vec::new()
    }
}

/// The notes `$everything` carries for a patient (see `block_notes`).
pub async fn patient_notes(
    state: &AppState,
    access: &Access,
    patient: &str,
) -> Result<Vec<Issue>, FhirError> {
    match access.reach() {
        Reach::Care(person) => Ok(block_notes(person, &*rules(state, person, patient).await?)),
        _ => Ok(Vec::new()),
    }
}

/// Adds `extra(t)` to the clauses of a `ty` search (when `top`) and to the inner clauses of
/// every chain and `_has` in them, for the type each looks into.
fn narrow(ty: &str, clauses: &mut Vec<Clause>, extra: &dyn Fn(&str) -> Vec<Clause>, top: bool) {
    fn walk(c: &mut Condition, extra: &dyn Fn(&str) -> Vec<Clause>) {
        match c {
            Condition::Chain { target_type, inner, .. } => narrow(target_type, inner, extra, true),
            Condition::Has { source_type, inner, .. } => narrow(source_type, inner, extra, true),
            Condition::AnyOf(cs) => cs.iter_mut().for_each(|c| walk(c, extra)),
            Condition::Not(inner) => walk(inner, extra),
            _ => {}
        }
    }
    for clause in clauses.iter_mut() {
        clause.0.iter_mut().for_each(|c| walk(c, extra));
    }
    if top {
        clauses.extend(extra(ty));
    }
}

/// The one patient a search is about: its compartment, or a clause that is a single
/// reference to one Patient (the compartment clause added after keeps the results to that
/// patient's, whichever parameter named them).
fn pinned_patient(
    ty: &str,
    within: Option<(ResourceType, &ResourceId)>,
    clauses: &[Clause],
) -> Option<String> {
    if let Some((compartment, id)) = within {
        return (compartment.as_str() == "Patient").then(|| id.to_string());
    }
    search_parameters().compartment_params("Patient", ty)?;
    clauses.iter().find_map(|c| match c.0.as_slice() {
        [Condition::Reference { target_type: Some(t), target_id: Some(id), .. }] if t == "Patient" => {
            Some(id.clone())
        }
        _ => None,
    })
}

fn names_identifier(clauses: &[Clause]) -> bool {
    clauses.iter().any(|c| {
        !c.0.is_empty()
            && c.0
                .iter()
                .all(|c| matches!(c, Condition::Token { param, code: Some(_), .. } if param == "identifier"))
    })
}

/// The patient ids the `patient` user may act for: themselves, whoever named them proxy in
/// an active Consent, and their children under 16 (a RelatedPerson with a parent
/// relationship whose identifier is theirs).
pub async fn proxied_patients(
    state: &AppState,
    me: &str,
    today: helse_fhir_r4::Instant,
) -> Result<Vec<String>, FhirError> {
    let mut ids = vec![me.to_owned()];
    let consents = find(
        state,
        "Consent",
        &[
            ("actor", format!("Patient/{me}")),
            ("status", "active".into()),
            ("category", format!("{CONSENT_KIND_SYSTEM}|{}", crate::consent::PROXY)),
        ],
    )
    .await?;
    ids.extend(consents.iter().filter_map(body_json).filter_map(|c| crate::consent::proxy_for(&c, me)));

    let Some(myself) = read_json(state, &format!("Patient/{me}")).await? else {
        return Ok(ids);
    };
    let identifiers: Vec<String> = myself["identifier"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| Some(format!("{}|{}", i.get("system")?.as_str()?, i.get("value")?.as_str()?)))
        .collect();
    if !identifiers.is_empty() {
        let parents = find(
            state,
            "RelatedPerson",
            &[
                ("identifier", identifiers.join(",")),
                ("relationship", PARENT_CODES.join(",")),
                ("active", "true".into()),
            ],
        )
        .await?;
        let sixteen_years_ago = sixteen_years_before(today);
        for parent in parents.iter().filter_map(body_json) {
            let Some(child) = parent
                .pointer("/patient/reference")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix("Patient/"))
            else {
                continue;
            };
            let born = read_json(state, &format!("Patient/{child}")).await?;
            let born = born.as_ref().and_then(|b| b["birthDate"].as_str());
            if born.is_some_and(|b| b > sixteen_years_ago.as_str()) {
                ids.push(child.to_owned());
            }
        }
    }
    ids.sort();
    ids.dedup();
    Ok(ids)
}

/// v3 RoleCode codes of a parent or guardian.
const PARENT_CODES: &[&str] =
    &["PRN", "NPRN", "MTH", "FTH", "NMTH", "NFTH", "ADOPTP", "ADOPTM", "ADOPTF", "STPPRN", "GUARD"];

/// `YYYY-MM-DD` sixteen years before `today` (a child born after it is under 16).
fn sixteen_years_before(today: helse_fhir_r4::Instant) -> String {
    let date = today.to_string();
    let year: i32 = date[..4].parse().unwrap_or(1970);
    format!("{:04}{}", year - 16, &date[4..10])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_member_naming_no_other_patient_is_owned_by_its_patient_alone() {
        use serde_json::json;
        let cases = [
            (
                json!({"resourceType": "Observation", "subject": {"reference": "Patient/p1"},
                "performer": [{"reference": "Practitioner/d"}]}),
                true,
            ),
            (
                json!({"resourceType": "Observation", "subject": {"reference": "Patient/p1"},
                "performer": [{"reference": "Patient/p2"}]}),
                false,
            ),
            (
                json!({"resourceType": "Observation", "subject": {"reference": "Patient/p1"},
                "focus": [{"reference": "http://other.example/fhir/Patient/p1"}]}),
                false,
            ),
            (
                json!({"resourceType": "Encounter", "subject": {"reference": "Patient/p1"},
                "contained": [{"resourceType": "Observation", "subject": {"reference": "Patient/p3"}}]}),
                false,
            ),
        ];
        for (resource, only) in cases {
            assert_eq!(names_only(&resource, "p1"), only, "{resource}");
            if only {
                // What the fast path assumes: the compartment parameters find p1 alone.
                assert_eq!(compartment_owners("Patient", &resource), ["p1"], "{resource}");
            }
        }
    }

    #[test]
    fn sixteen_years_count_from_the_date() {
        let start = helse_fhir_r4::parse_date_range("2026-11-23T10:00:00Z").unwrap().start;
        let today = helse_fhir_r4::Instant::from_millis(start);
        assert_eq!(sixteen_years_before(today), "2010-11-23");
        // Born on 2010-11-23: sixteen today, no longer a child for proxy purposes.
        assert!("2010-11-24" > "2010-11-23" && "2010-11-23" <= sixteen_years_before(today).as_str());
    }

    #[test]
    fn a_search_is_pinned_by_one_patient_reference() {
        let parse = |ty: &str, q: &[(&str, &str)]| {
            let params: Vec<(String, String)> = q.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
            parse_search(ty, &params, true).unwrap().clauses
        };
        type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], Option<&'a str>);
        let cases: [Case; 6] = [
            ("Observation", &[("patient", "p1")], Some("p1")),
            ("Observation", &[("subject", "Patient/p1"), ("code", "x")], Some("p1")),
            ("Observation", &[("subject", "p1")], None),
            ("Observation", &[("patient", "p1,p2")], None),
            ("Observation", &[("code", "x")], None),
            ("Condition", &[("subject:Patient", "p3")], Some("p3")),
        ];
        for (ty, q, expected) in cases {
            assert_eq!(pinned_patient(ty, None, &parse(ty, q)).as_deref(), expected, "{ty} {q:?}");
        }
    }

    #[test]
    fn narrowing_reaches_into_chains_and_has() {
        let params = vec![
            ("subject:Patient.name".to_owned(), "x".to_owned()),
            ("_has:Provenance:target:agent".to_owned(), "Practitioner/d".to_owned()),
        ];
        let mut clauses = parse_search("Observation", &params, true).unwrap().clauses;
        narrow("Observation", &mut clauses, &|t| compartment_clause("p1", t).into_iter().collect(), true);
        let text = format!("{clauses:?}");
        // The Observation itself, the chained Patient (by id) and the Provenance (by patient).
        assert_eq!(clauses.len(), 3);
        assert!(text.contains("Id([\"p1\"])"), "{text}");
        assert!(text.matches("target_id: Some(\"p1\")").count() >= 2, "{text}");
    }
}
