//! The access log: one `AuditEvent` for every FHIR request (but the CapabilityStatement) —
//! who (the token's client), what (interaction, resource, query), when, from where (the
//! peer address), why (`X-Purpose-Of-Use`, when sent), the outcome, and whose record (the
//! Patient the request names, when it names one) — appended to the store's hash-chained
//! log. An entry for a request that changes data is stored before the answer is sent; an
//! entry for a read is queued (in memory, bounded) and stored with the next batch, within
//! milliseconds: waiting for every read's entry held reads to a third of their speed
//! (52,000/s → 16,000/s on SQLite). A process killed in that window loses those reads'
//! entries. Appends are group-committed: whatever is queued goes into one store
//! transaction. A request that writes stores its entry with its writes, in their
//! transaction (the store's outbox, `Write::AccessLog`), so no write is ever without its
//! entry; the appender moves outbox entries into the chain after a batch that follows such a
//! write, at a flush and at start (what a crash left there).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::http::{Method, Uri};
use helse_fhir_r4::Instant;
use helse_store::{AuditRecord, ResourceStore};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use crate::access::Access;
use crate::error::FhirError;
use crate::interaction::{self, Interaction, InteractionKind};

/// An entry and who waits for it; no entry is a barrier (`flush`).
type Pending = (Option<AuditRecord>, oneshot::Sender<Result<(), String>>);

/// The appender's queue.
#[derive(Clone)]
pub struct AuditLog {
    queue: mpsc::Sender<Pending>,
    /// Writes left entries in the store's outbox since the last drain.
    outbox_pending: Arc<std::sync::atomic::AtomicBool>,
}

/// Most entries one append transaction carries.
const MAX_BATCH: usize = 2048;

impl AuditLog {
    pub fn start(store: Arc<dyn ResourceStore>) -> AuditLog {
        let (queue, mut rx) = mpsc::channel::<Pending>(MAX_BATCH * 4);
        let outbox_pending = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let pending = outbox_pending.clone();
        tokio::spawn(async move {
            // Entries a crash left in the outbox go into the chain first.
            if let Err(e) = store.drain_audit_outbox().await {
                tracing::error!(error = %e, "the access log's outbox could not be drained");
            }
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(p) => batch.push(p),
                        Err(_) => break,
                    }
                }
                let (records, acks): (Vec<Option<AuditRecord>>, Vec<_>) = batch.into_iter().unzip();
                // A barrier (a flush) drains the outbox too; so does a write's nudge, which
                // may have found the queue full and left only the flag.
                let barrier = records.iter().any(Option::is_none);
                let drain = pending.swap(false, std::sync::atomic::Ordering::AcqRel) || barrier;
                let records: Vec<AuditRecord> = records.into_iter().flatten().collect();
                let mut result = if records.is_empty() {
                    Ok(())
                } else {
                    store.append_audit(records).await.map_err(|e| e.to_string())
                };
                // What writes left in the outbox joins the chain after the batch (a read-only
                // batch does not look).
                if result.is_ok() && drain {
                    result = store.drain_audit_outbox().await.map(|_| ()).map_err(|e| e.to_string());
                }
                for ack in acks {
                    let _ = ack.send(result.clone());
                }
            }
        });
        AuditLog { queue, outbox_pending }
    }

    /// Returns once everything queued before it is stored, the outbox included (at
    /// shutdown).
    pub async fn flush(&self) -> Result<(), FhirError> {
        self.send(None, true).await
    }

    /// Asks for the outbox to be drained soon (after a write stored its entry there).
    pub fn nudge(&self) {
        self.outbox_pending.store(true, std::sync::atomic::Ordering::Release);
        let (ack, _) = oneshot::channel();
        // A full queue will be served anyway, and the flag is seen then.
        let _ = self.queue.try_send((None, ack));
    }

    /// Adds one entry: stored before returning when `wait`, else queued (reads: see the
    /// module's comment).
    pub async fn record(&self, record: AuditRecord, wait: bool) -> Result<(), FhirError> {
        self.send(Some(record), wait).await
    }

    async fn send(&self, record: Option<AuditRecord>, wait: bool) -> Result<(), FhirError> {
        let (ack, done) = oneshot::channel();
        let unavailable = |why: String| {
            // The cause for operators; the client learns only that it was not served.
            tracing::error!(error = %why, "the access log could not be written");
            FhirError::Unavailable
        };
        self.queue.send((record, ack)).await.map_err(|_| unavailable("the appender has stopped".into()))?;
        if !wait {
            return Ok(());
        }
        done.await.map_err(|_| unavailable("the appender has stopped".into()))?.map_err(unavailable)
    }
}

/// What a request's access-log entry is made from, for the write paths that store the entry
/// with their writes (`routes::fhir::write_logged`); `written` says that one did.
pub struct RequestLog<'a> {
    pub method: &'a Method,
    pub uri: &'a Uri,
    pub peer: SocketAddr,
    pub purpose: Option<&'a str>,
    pub written: std::sync::atomic::AtomicBool,
}

impl RequestLog<'_> {
    pub fn entry(&self, access: &Access, interaction: &Interaction, status: u16) -> Option<AuditRecord> {
        entry(access, self.method, self.uri, Some(interaction), self.peer, self.purpose, status)
    }

    pub fn was_written(&self) -> bool {
        self.written.load(std::sync::atomic::Ordering::Acquire)
    }
}

/// The entry for one request: `interaction` as the dispatcher read it (read here when the
/// request was refused before that). `None` for requests that touch no data (the
/// CapabilityStatement).
pub fn entry(
    access: &Access,
    method: &Method,
    uri: &Uri,
    interaction: Option<&Interaction>,
    peer: SocketAddr,
    purpose: Option<&str>,
    status: u16,
) -> Option<AuditRecord> {
    let query = || -> Vec<(String, String)> {
        serde_urlencoded::from_str(uri.query().unwrap_or("")).unwrap_or_default()
    };
    let read_here;
    let parsed = match interaction {
        Some(i) => Some(i),
        None => {
            let path = uri.path().strip_prefix("/fhir").unwrap_or("");
            let has_criteria = query().iter().any(|(k, _)| k != "_format" && k != "_pretty");
            read_here = interaction::parse(method, path, has_criteria).ok();
            read_here.as_ref()
        }
    };
    if matches!(parsed, Some(Interaction::Capabilities)) {
        return None;
    }
    let kind = parsed.map_or(InteractionKind::Other, Interaction::kind);
    let (what, patient) = match parsed {
        Some(i) => subject_of(i, query),
        None => (None, None),
    };
    let recorded = Instant::now();
    let who = match access {
        Access::Unrestricted => "no-auth (development)".to_owned(),
        Access::Anonymous => "anonymous".to_owned(),
        Access::Client { client_id, .. } => client_id.clone(),
    };
    let network = json!({"address": peer.ip().to_string(), "type": if peer.is_ipv4() { "2" } else { "5" }});
    let mut agents = Vec::new();
    // A person signed in through an app: the person is the requestor, the app the means.
    if let Some(person) = access.person() {
        let mut me =
            json!({"who": {"identifier": {"value": person.username}}, "requestor": true, "network": network});
        if let Some(r) = &person.fhir_user {
            me["who"]["reference"] = json!(r);
        }
        agents.push(me);
        agents.push(json!({"who": {"identifier": {"value": who}}, "requestor": false,
            "type": {"coding": [{"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110150", "display": "Application"}]}}));
    } else {
        agents.push(json!({"who": {"identifier": {"value": who}}, "requestor": true, "network": network}));
    }
    let emergency = access.person().and_then(|p| p.emergency.as_deref());
    let purpose = if emergency.is_some() { Some("ETREAT") } else { purpose };
    if let Some(p) = purpose {
        let mut reason =
            json!({"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": p}]});
        if let Some(why) = emergency {
            reason["text"] = json!(why);
        }
        agents[0]["purposeOfUse"] = json!([reason]);
    }
    let patient = patient.or_else(|| access.person().and_then(|p| p.patient_reached()));
    let mut entity = Vec::new();
    if let Some(w) = &what {
        entity.push(json!({"what": {"reference": w}}));
    }
    if let Some(q) = uri.query().filter(|q| !q.is_empty()) {
        use base64::Engine;
        entity.push(json!({"query": base64::engine::general_purpose::STANDARD.encode(q)}));
    }
    let mut event = json!({
        "resourceType": "AuditEvent",
        "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest"},
        "subtype": [{"system": "http://hl7.org/fhir/restful-interaction", "code": kind.code()}],
        "action": action(kind),
        "recorded": recorded.to_string(),
        "outcome": match status { 0..=399 => "0", 400..=499 => "4", _ => "8" },
        "agent": agents,
        "source": {"observer": {"display": "helse"}},
    });
    if !entity.is_empty() {
        event["entity"] = Value::Array(entity);
    }
    Some(AuditRecord { recorded, patient, event: event.to_string() })
}

/// `C`reate, `R`ead, `U`pdate, `D`elete or `E`xecute (AuditEvent.action).
fn action(kind: InteractionKind) -> &'static str {
    use InteractionKind as K;
    match kind {
        K::Create => "C",
        K::Read
        | K::Vread
        | K::SearchType
        | K::HistoryInstance
        | K::HistoryType
        | K::HistorySystem
        | K::Everything
        | K::Summary => "R",
        K::Update | K::Patch => "U",
        K::Delete => "D",
        _ => "E",
    }
}

/// The resource a request names (`Type/id`), and the Patient whose record it is, when the
/// request says so: a Patient itself, the Patient compartment, or a `patient`/`subject`
/// search parameter naming a Patient.
fn subject_of(
    i: &Interaction,
    query: impl FnOnce() -> Vec<(String, String)>,
) -> (Option<String>, Option<String>) {
    use Interaction as I;
    let named = match i {
        I::Read(t, id)
        | I::Vread(t, id, _)
        | I::Update(t, id)
        | I::Patch(t, id)
        | I::Delete(t, id)
        | I::HistoryInstance(t, id)
        | I::Everything(t, id)
        | I::Validate(t, Some(id)) => Some((t.to_string(), id.to_string())),
        I::AccessLog(id) | I::Summary(id) => Some(("Patient".to_owned(), id.to_string())),
        I::CompartmentSearch { compartment, id, .. } => Some((compartment.to_string(), id.to_string())),
        _ => None,
    };
    let what = named.as_ref().map(|(t, id)| format!("{t}/{id}"));
    let patient = match named {
        Some((t, id)) if t == "Patient" => Some(id),
        _ => query().into_iter().find_map(|(k, v)| {
            let k = k.split(':').next().unwrap_or_default();
            match k {
                "patient" => Some(v.trim_start_matches("Patient/").to_owned()),
                "subject" => v.strip_prefix("Patient/").map(str::to_owned),
                _ => None,
            }
        }),
    };
    (what, patient)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_name_the_resource_the_patient_and_the_action() {
        let peer: SocketAddr = "10.0.0.7:5000".parse().unwrap();
        let client = Access::Client { client_id: "lab".into(), grant: Default::default(), person: None };
        // (method, URL, resource named, whose record, action)
        let cases = [
            ("GET", "/fhir/Patient/p1", Some("Patient/p1"), Some("p1"), "R"),
            ("PUT", "/fhir/Patient/p1", Some("Patient/p1"), Some("p1"), "U"),
            ("DELETE", "/fhir/Observation/o1", Some("Observation/o1"), None, "D"),
            ("POST", "/fhir/Observation", None, None, "C"),
            ("GET", "/fhir/Observation?subject=Patient/p2&code=x", None, Some("p2"), "R"),
            ("GET", "/fhir/Observation?patient=p3", None, Some("p3"), "R"),
            ("GET", "/fhir/Observation?subject=Group/g", None, None, "R"),
            ("GET", "/fhir/Patient/p4/Observation", Some("Patient/p4"), Some("p4"), "R"),
            ("GET", "/fhir/Patient/p5/$everything", Some("Patient/p5"), Some("p5"), "R"),
            ("POST", "/fhir/", None, None, "E"),
        ];
        for (method, url, what, patient, action) in cases {
            let uri: Uri = url.parse().unwrap();
            let record =
                entry(&client, &method.parse().unwrap(), &uri, None, peer, Some("TREAT"), 200).unwrap();
            let event: Value = serde_json::from_str(&record.event).unwrap();
            assert_eq!(record.patient.as_deref(), patient, "{method} {url}");
            assert_eq!(event["action"], action, "{method} {url}");
            assert_eq!(event["entity"][0]["what"]["reference"].as_str(), what, "{method} {url}");
            assert_eq!(event["agent"][0]["who"]["identifier"]["value"], "lab");
            assert_eq!(event["agent"][0]["network"]["address"], "10.0.0.7");
            assert_eq!(event["outcome"], "0");
            let issues = helse_fhir_r4::validate_resource(&event, Some("AuditEvent"));
            assert!(issues.is_empty(), "{method} {url}: a valid AuditEvent: {issues:?}");
        }
        let metadata: Uri = "/fhir/metadata".parse().unwrap();
        assert!(
            entry(&client, &Method::GET, &metadata, None, peer, None, 200).is_none(),
            "no data, no entry"
        );
        let refused: Uri = "/fhir/Patient/p1".parse().unwrap();
        let record = entry(&Access::Anonymous, &Method::GET, &refused, None, peer, None, 401).unwrap();
        let event: Value = serde_json::from_str(&record.event).unwrap();
        assert_eq!(
            (event["outcome"].as_str(), event["agent"][0]["who"]["identifier"]["value"].as_str()),
            (Some("4"), Some("anonymous"))
        );
    }
}
