//! Finding and reading the input: files or directories of NDJSON (one resource a line) and
//! JSON (a resource, or a Bundle whose entries are imported), either of them gzipped.
//! Bundle entries get the ids their references use, and the references are rewritten to
//! `Type/id`, so the store needs no second pass.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value;

use crate::ImportError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One resource a line; a bad line is rejected and the next one read.
    Ndjson,
    /// One JSON value: a resource, or a Bundle to unpack.
    Json,
}

#[derive(Debug, Clone)]
pub struct Source {
    pub path: PathBuf,
    pub format: Format,
    /// Size on disk (compressed size for gzip), for progress.
    pub bytes: u64,
}

/// One resource to import, or why what was read is not one. `origin` says where it came from
/// (`file:line` or `file#entry`), for the rejection report.
#[derive(Debug, Clone)]
pub struct Item {
    pub origin: String,
    pub resource: Result<Value, String>,
    /// The id to store it under, when the source decides it (Bundle entries).
    pub id: Option<String>,
}

fn format_of(path: &Path) -> Option<Format> {
    let name = path.file_name()?.to_str()?.to_ascii_lowercase();
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    if name.ends_with(".ndjson") || name.ends_with(".jsonl") {
        Some(Format::Ndjson)
    } else if name.ends_with(".json") {
        Some(Format::Json)
    } else {
        None
    }
}

/// The files under `paths`, in a stable order (sorted within each directory). A file named
/// explicitly must have a known extension; inside directories others are passed over.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<Source>, ImportError> {
    fn walk(dir: &Path, out: &mut Vec<Source>) -> Result<(), ImportError> {
        let io = |e| ImportError::Io(dir.display().to_string(), e);
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(io)?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()
            .map_err(io)?;
        entries.sort();
        for path in entries {
            if path.is_dir() {
                walk(&path, out)?;
            } else if let Some(format) = format_of(&path) {
                let bytes =
                    path.metadata().map_err(|e| ImportError::Io(path.display().to_string(), e))?.len();
                out.push(Source { path, format, bytes });
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    for path in paths {
        if path.is_dir() {
            walk(path, &mut out)?;
        } else {
            let format =
                format_of(path).ok_or_else(|| ImportError::UnknownFormat(path.display().to_string()))?;
            let bytes = path.metadata().map_err(|e| ImportError::Io(path.display().to_string(), e))?.len();
            out.push(Source { path: path.clone(), format, bytes });
        }
    }
    Ok(out)
}

/// Counts bytes as they are read from disk, before decompression.
struct Counted<R> {
    inner: R,
    counter: Arc<AtomicU64>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.counter.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

fn open(source: &Source, counter: Arc<AtomicU64>) -> Result<Box<dyn BufRead + Send>, ImportError> {
    let io = |e| ImportError::Io(source.path.display().to_string(), e);
    let mut file = BufReader::new(Counted { inner: File::open(&source.path).map_err(io)?, counter });
    let gzipped = file.fill_buf().map_err(io)?.starts_with(&[0x1f, 0x8b]);
    Ok(if gzipped {
        Box::new(BufReader::with_capacity(256 * 1024, flate2::bufread::MultiGzDecoder::new(file)))
    } else {
        Box::new(file)
    })
}

/// Reads one source, handing each item to `emit`; stops early when `emit` returns false.
pub fn read(
    source: &Source,
    counter: Arc<AtomicU64>,
    emit: &mut dyn FnMut(Item) -> bool,
) -> Result<(), ImportError> {
    let name = source.path.display().to_string();
    let mut reader = open(source, counter)?;
    match source.format {
        Format::Ndjson => {
            let mut line = String::new();
            let mut number = 0;
            loop {
                line.clear();
                let n = reader.read_line(&mut line).map_err(|e| ImportError::Io(name.clone(), e))?;
                if n == 0 {
                    return Ok(());
                }
                number += 1;
                if line.trim().is_empty() {
                    continue;
                }
                let resource = serde_json::from_str::<Value>(&line).map_err(|e| format!("not JSON: {e}"));
                if !emit(Item { origin: format!("{name}:{number}"), resource, id: None }) {
                    return Ok(());
                }
            }
        }
        Format::Json => {
            let value = match serde_json::from_reader::<_, Value>(reader) {
                Ok(v) => v,
                Err(e) if e.is_io() => return Err(ImportError::Io(name, e.into())),
                Err(e) => {
                    emit(Item { origin: name, resource: Err(format!("not JSON: {e}")), id: None });
                    return Ok(());
                }
            };
            for item in unbundle(value, &name) {
                if !emit(item) {
                    break;
                }
            }
            Ok(())
        }
    }
}

/// A resource, or the entries of a transaction, batch, collection or searchset Bundle (other
/// Bundles — documents, messages — are resources in their own right and stored whole).
pub fn unbundle(value: Value, origin: &str) -> Vec<Item> {
    let is_container = value.get("resourceType").and_then(Value::as_str) == Some("Bundle")
        && matches!(
            value.get("type").and_then(Value::as_str),
            Some("transaction" | "batch" | "collection" | "searchset")
        );
    if !is_container {
        return vec![Item { origin: origin.to_owned(), resource: Ok(value), id: None }];
    }
    let Value::Object(mut bundle) = value else { unreachable!("checked above") };
    let entries = match bundle.remove("entry") {
        Some(Value::Array(entries)) => entries,
        _ => return Vec::new(),
    };
    // First the id of every entry, then the references between them.
    let mut items = Vec::with_capacity(entries.len());
    let mut targets: HashMap<String, String> = HashMap::new();
    let mut by_identifier: HashMap<(String, String), String> = HashMap::new();
    for (i, entry) in entries.into_iter().enumerate() {
        let origin = format!("{origin}#{i}");
        let Value::Object(mut entry) = entry else {
            items.push(Item { origin, resource: Err("a Bundle entry is not an object".into()), id: None });
            continue;
        };
        let method = entry
            .get("request")
            .and_then(|r| r.get("method"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        if !matches!(method.as_str(), "" | "POST" | "PUT") {
            let reason = format!("a {method} entry has nothing to import");
            items.push(Item { origin, resource: Err(reason), id: None });
            continue;
        }
        let Some(Value::Object(resource)) = entry.remove("resource") else {
            items.push(Item { origin, resource: Err("the entry has no resource".into()), id: None });
            continue;
        };
        let ty = resource.get("resourceType").and_then(Value::as_str).unwrap_or("").to_owned();
        let full_url = entry.get("fullUrl").and_then(Value::as_str).unwrap_or("");
        let put_id = (method == "PUT")
            .then(|| entry.get("request").and_then(|r| r.get("url")).and_then(Value::as_str))
            .flatten()
            .and_then(|url| url.split_once('/').filter(|(t, id)| *t == ty && !id.contains(['?', '/'])))
            .map(|(_, id)| id.to_owned());
        let id = put_id
            .or_else(|| full_url.strip_prefix("urn:uuid:").map(str::to_owned))
            .or_else(|| {
                full_url
                    .rsplit_once('/')
                    .filter(|(head, _)| head.ends_with(&format!("/{ty}")))
                    .map(|(_, id)| id.to_owned())
            })
            .or_else(|| resource.get("id").and_then(Value::as_str).map(str::to_owned));
        if let Some(id) = &id {
            let local = format!("{ty}/{id}");
            if !full_url.is_empty() {
                targets.insert(full_url.to_owned(), local.clone());
            }
            for identifier in resource.get("identifier").and_then(Value::as_array).into_iter().flatten() {
                if let (Some(system), Some(value)) = (
                    identifier.get("system").and_then(Value::as_str),
                    identifier.get("value").and_then(Value::as_str),
                ) {
                    by_identifier.insert((ty.clone(), format!("{system}|{value}")), local.clone());
                }
            }
        }
        items.push(Item { origin, resource: Ok(Value::Object(resource)), id });
    }
    for item in &mut items {
        if let Ok(resource) = &mut item.resource {
            rewrite_references(resource, &targets, &by_identifier);
        }
    }
    items
}

/// Points references at the entries' new `Type/id`: by `fullUrl`, or by a conditional
/// reference `Type?identifier=system|value` that an entry in the same Bundle satisfies.
fn rewrite_references(
    value: &mut Value,
    targets: &HashMap<String, String>,
    by_identifier: &HashMap<(String, String), String>,
) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(reference)) = map.get_mut("reference") {
                if let Some(target) = targets.get(reference.as_str()) {
                    *reference = target.clone();
                } else if let Some((ty, query)) = reference.split_once("?identifier=")
                    && let Some(target) = by_identifier.get(&(ty.to_owned(), query.replace("%7C", "|")))
                {
                    *reference = target.clone();
                }
            }
            for v in map.values_mut() {
                rewrite_references(v, targets, by_identifier);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| rewrite_references(v, targets, by_identifier)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn transaction_entries_take_their_uuid_and_references_follow() {
        let bundle = json!({
            "resourceType": "Bundle", "type": "transaction",
            "entry": [
                {"fullUrl": "urn:uuid:11111111-2222-3333-4444-555555555555",
                 "resource": {"resourceType": "Patient", "identifier": [{"system": "urn:x", "value": "7"}]},
                 "request": {"method": "POST", "url": "Patient"}},
                {"fullUrl": "urn:uuid:99999999-2222-3333-4444-555555555555",
                 "resource": {"resourceType": "Observation", "subject": {"reference": "urn:uuid:11111111-2222-3333-4444-555555555555"},
                              "performer": [{"reference": "Patient?identifier=urn:x|7"}]},
                 "request": {"method": "POST", "url": "Observation"}},
                {"resource": {"resourceType": "Organization", "id": "org1"}, "request": {"method": "PUT", "url": "Organization/org9"}},
                {"request": {"method": "DELETE", "url": "Patient/1"}}
            ]
        });
        let items = unbundle(bundle, "b.json");
        assert_eq!(items.len(), 4);
        assert_eq!(items[0].id.as_deref(), Some("11111111-2222-3333-4444-555555555555"));
        let obs = items[1].resource.as_ref().unwrap();
        assert_eq!(obs["subject"]["reference"], "Patient/11111111-2222-3333-4444-555555555555");
        assert_eq!(obs["performer"][0]["reference"], "Patient/11111111-2222-3333-4444-555555555555");
        assert_eq!(items[2].id.as_deref(), Some("org9"), "a PUT's URL names the id");
        assert!(items[3].resource.as_ref().unwrap_err().contains("DELETE"));
        assert_eq!(items[3].origin, "b.json#3");
    }

    #[test]
    fn documents_are_resources_not_containers() {
        let doc = json!({"resourceType": "Bundle", "type": "document", "entry": [{"resource": {"resourceType": "Composition"}}]});
        let items = unbundle(doc.clone(), "d.json");
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].resource.as_ref().unwrap(), &doc);
    }

    #[test]
    fn ndjson_and_gzip_are_read_line_by_line() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let lines = "{\"resourceType\":\"Patient\",\"id\":\"a\"}\n\nnot json\n{\"resourceType\":\"Patient\",\"id\":\"b\"}\n";
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(lines.as_bytes()).unwrap();
        std::fs::write(dir.path().join("Patient.ndjson.gz"), gz.finish().unwrap()).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "ignored").unwrap();
        let sources = discover(&[dir.path().to_owned()]).unwrap();
        assert_eq!(sources.len(), 1);
        let counter = Arc::new(AtomicU64::new(0));
        let mut items = Vec::new();
        read(&sources[0], counter.clone(), &mut |i| {
            items.push(i);
            true
        })
        .unwrap();
        assert_eq!(items.len(), 3);
        assert!(items[1].resource.is_err());
        assert!(items[1].origin.ends_with("Patient.ndjson.gz:3"), "{}", items[1].origin);
        assert_eq!(items[2].resource.as_ref().unwrap()["id"], "b");
        assert_eq!(counter.load(Ordering::Relaxed), sources[0].bytes);
    }
}
