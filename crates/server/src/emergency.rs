//! Emergency access ("break the glass"): health personnel without a care relationship may
//! open a patient's record by stating a reason (`X-Emergency-Access`). It is granted, marked
//! in the access log (purpose `ETREAT` with the reason, visible to the patient), and queued
//! here for review: an administrator goes through the queue (`helse emergency list`,
//! `helse emergency review`) and records whether the access was justified.

use helse_fhir_r4::Instant;
use helse_store::ResourceStore;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::error::FhirError;
use crate::interaction::Interaction;
use crate::reach::Person;

/// Where the queue is kept in the store's key-value table.
pub const EMERGENCY_KEY_PREFIX: &str = "emergency-access/";

/// One emergency access to one patient's record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmergencyAccess {
    pub recorded: String,
    pub username: String,
    #[serde(default, rename = "fhirUser", skip_serializing_if = "Option::is_none")]
    pub fhir_user: Option<String>,
    pub patient: String,
    pub reason: String,
    /// The interaction (`read`, `search-type`, …).
    pub interaction: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<Review>,
}

/// An administrator's verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Review {
    pub by: String,
    pub at: String,
    pub justified: bool,
    pub note: String,
}

/// Queues one entry per patient this request reached without a care relationship.
pub async fn queue(
    state: &AppState,
    person: &Person,
    interaction: Option<&Interaction>,
) -> Result<(), FhirError> {
    let Some(reason) = &person.emergency else { return Ok(()) };
    for patient in person.emergency_patients() {
        let now = Instant::now();
        let entry = EmergencyAccess {
            recorded: now.to_string(),
            username: person.username.clone(),
            fhir_user: person.fhir_user.clone(),
            patient,
            reason: reason.clone(),
            interaction: interaction.map_or("other", |i| i.kind().code()).to_owned(),
            review: None,
        };
        let key = format!("{EMERGENCY_KEY_PREFIX}{:013}-{}", now.millis(), uuid::Uuid::new_v4().simple());
        state.store.kv_put(&key, &serde_json::to_string(&entry).expect("serialisable"), None).await?;
        tracing::warn!(interaction = %entry.interaction, "emergency access granted; queued for review");
    }
    Ok(())
}

/// The queue, oldest first: (key, entry); only those not yet reviewed unless `all`.
pub async fn list(store: &dyn ResourceStore, all: bool) -> Result<Vec<(String, EmergencyAccess)>, FhirError> {
    let mut out: Vec<(String, EmergencyAccess)> = store
        .kv_list(EMERGENCY_KEY_PREFIX, Instant::now())
        .await?
        .into_iter()
        .filter_map(|(k, v)| Some((k, serde_json::from_str::<EmergencyAccess>(&v).ok()?)))
        .filter(|(_, e)| all || e.review.is_none())
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Records a review of the entry under `key`.
pub async fn review(
    store: &dyn ResourceStore,
    key: &str,
    review: Review,
) -> Result<EmergencyAccess, FhirError> {
    let key = if key.starts_with(EMERGENCY_KEY_PREFIX) {
        key.to_owned()
    } else {
        format!("{EMERGENCY_KEY_PREFIX}{key}")
    };
    let text = store
        .kv_get(&key, Instant::now())
        .await?
        .ok_or_else(|| FhirError::NotFound(format!("emergency access {key}")))?;
    let mut entry: EmergencyAccess = serde_json::from_str(&text)
        .map_err(|e| FhirError::Internal(format!("unreadable queue entry: {e}")))?;
    entry.review = Some(review);
    store.kv_put(&key, &serde_json::to_string(&entry).expect("serialisable"), None).await?;
    Ok(entry)
}
