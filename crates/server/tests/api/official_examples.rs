//! Every official R4 example (npm `hl7.fhir.r4.examples@4.0.1`) is stored with PUT under its
//! own id and read back semantically equal; what we return is then parsed by an independent
//! R4 implementation (PyPI `fhir.resources==6.4.0`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use futures::StreamExt;
use helse_store::IndexValue;
use serde_json::Value;

use helse_test_support::{Backend, TestServer, on_both_stores};

on_both_stores!(official_examples_round_trip);

/// Where `scripts/test` unpacked the package (the folder holding `package/`).
fn examples_dir() -> PathBuf {
    let dir = std::env::var("HELSE_R4_EXAMPLES").expect(
        "HELSE_R4_EXAMPLES is not set: run the suite with scripts/test, which fetches hl7.fhir.r4.examples",
    );
    PathBuf::from(dir).join("package")
}

fn known_invalid() -> BTreeMap<String, String> {
    include_str!("known_invalid_examples.txt")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (f, why) = l.split_once(": ").expect("FILE: reason");
            (f.to_owned(), why.to_owned())
        })
        .collect()
}

/// The resource without the server-owned `meta.versionId`/`meta.lastUpdated`.
fn comparable(mut v: Value) -> Value {
    if let Some(meta) = v.get_mut("meta").and_then(Value::as_object_mut) {
        meta.shift_remove("versionId");
        meta.shift_remove("lastUpdated");
        if meta.is_empty() {
            v.as_object_mut().unwrap().shift_remove("meta");
        }
    }
    v
}

async fn official_examples_round_trip(backend: Backend) {
    let dir = examples_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .filter(|p| !matches!(p.file_name().unwrap().to_str().unwrap(), "package.json" | ".index.json"))
        .collect();
    files.sort();
    assert!(files.len() > 5000, "expected the whole package, found {} files", files.len());

    let s = TestServer::start(backend).await;
    let out_dir = tempfile::tempdir().unwrap();
    let known_invalid = known_invalid();
    let results: Vec<(String, Result<(), String>)> = futures::stream::iter(files.iter())
        .map(|path| {
            let s = &s;
            let out_dir = out_dir.path();
            async move {
                let name = path.file_name().unwrap().to_str().unwrap().to_owned();
                let original: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
                let ty = original["resourceType"].as_str().unwrap();
                let id = original["id"].as_str().unwrap_or_else(|| panic!("{name} has no id"));
                let put = s.put(&format!("{ty}/{id}"), &original).await;
                if put.status != 200 && put.status != 201 {
                    return (
                        name,
                        Err(format!(
                            "PUT {}: {}",
                            put.status,
                            put.text.chars().take(300).collect::<String>()
                        )),
                    );
                }
                let got = s.get(&format!("{ty}/{id}")).await;
                if got.status != 200 {
                    return (name, Err(format!("GET {}", got.status)));
                }
                std::fs::write(out_dir.join(&name), &got.text).unwrap();
                let back = got.json();
                if back["meta"]["versionId"].as_str().is_none() {
                    return (name, Err("no meta.versionId".into()));
                }
                if comparable(back) != comparable(original) {
                    return (name, Err("read back differs from what was stored".into()));
                }
                (name, Ok(()))
            }
        })
        .buffer_unordered(4)
        .collect()
        .await;

    let stored = results.iter().filter(|(_, r)| r.is_ok()).count();
    let refused: BTreeMap<&str, &str> =
        results.iter().filter_map(|(n, r)| r.as_ref().err().map(|e| (n.as_str(), e.as_str()))).collect();
    println!("{stored} of {} official examples stored and read back equal on {backend:?}", files.len());
    for (name, why) in &known_invalid {
        println!("  excluded {name}: {why}");
    }
    let unexpected: Vec<String> = refused
        .iter()
        .filter(|(n, e)| {
            !known_invalid.contains_key(**n) || !(e.starts_with("PUT 422") || e.starts_with("PUT 400"))
        })
        .map(|(n, e)| format!("{n}: {e}"))
        .collect();
    assert!(unexpected.is_empty(), "unexpected failures:\n{}", unexpected.join("\n"));
    let accepted_but_known: Vec<&String> =
        known_invalid.keys().filter(|n| !refused.contains_key(n.as_str())).collect();
    assert!(accepted_but_known.is_empty(), "listed as invalid but accepted: {accepted_but_known:?}");

    // An independent R4 parser accepts everything we returned.
    let python = std::env::var("HELSE_PYTHON")
        .expect("HELSE_PYTHON is not set: run the suite with scripts/test, which installs fhir.resources");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/python/check_r4_parser.py");
    let output = std::process::Command::new(python).arg(script).arg(out_dir.path()).output().unwrap();
    let report = String::from_utf8_lossy(&output.stdout);
    println!("{report}{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "the independent parser rejected what we returned");
    assert!(report.contains(&format!("of {stored} files")), "parser saw a different number of files");

    search_finds_every_indexed_example(&s, &files, &refused, backend).await;
    s.stop().await;
}

/// A search value that must match `value` (the first indexed value of a parameter).
fn query_value(value: &IndexValue) -> Option<String> {
    let escape =
        |s: &str| s.replace('\\', "\\\\").replace(',', "\\,").replace('|', "\\|").replace('$', "\\$");
    Some(match value {
        IndexValue::Token { system, code, .. } if !code.is_empty() => match system {
            Some(sys) => format!("{}|{}", escape(sys), escape(code)),
            None => escape(code),
        },
        IndexValue::Token { .. } => return None,
        IndexValue::String { exact, .. } => escape(exact),
        IndexValue::Date { start, end } => {
            if *start != i64::MIN {
                format!("ge{}", helse_fhir_r4::Instant::from_millis(*start))
            } else {
                format!("le{}", helse_fhir_r4::Instant::from_millis(end - 1))
            }
        }
        IndexValue::Reference { target_type: Some(t), target_id: Some(i), .. } => format!("{t}/{i}"),
        IndexValue::Reference { url: Some(u), .. } => escape(u),
        IndexValue::Reference { .. } => return None,
        IndexValue::Number(n) => format!("{n}"),
        IndexValue::Quantity { value, .. } => format!("{value}"),
        IndexValue::Uri(u) => escape(u),
    })
}

/// For every search parameter that has a value in some stored official example, searching by
/// that value (narrowed by `_id`) finds the example.
async fn search_finds_every_indexed_example(
    s: &TestServer,
    files: &[PathBuf],
    refused: &BTreeMap<&str, &str>,
    backend: Backend,
) {
    let mut probes: BTreeMap<(String, String), (String, String)> = BTreeMap::new();
    for path in files {
        let name = path.file_name().unwrap().to_str().unwrap();
        if refused.contains_key(name) {
            continue;
        }
        let resource: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let ty = resource["resourceType"].as_str().unwrap().to_owned();
        let id = resource["id"].as_str().unwrap().to_owned();
        // Composite components (`code$k`, grouped by element) combine into `a$b` values.
        let mut composites: BTreeMap<(String, i64), BTreeMap<usize, String>> = BTreeMap::new();
        for entry in helse_search::index_entries(&resource) {
            if let (Some((code, k)), Some(group)) = (entry.param.split_once('$'), entry.group) {
                if let Some(v) = query_value(&entry.value) {
                    composites
                        .entry((code.to_owned(), group))
                        .or_default()
                        .entry(k.parse().unwrap())
                        .or_insert(v);
                }
                continue;
            }
            let key = (ty.clone(), entry.param.clone());
            // Rows serving modifiers (`code:of-type`) are checked by the search semantics tests.
            if entry.param.contains(':') || probes.contains_key(&key) {
                continue;
            }
            if let Some(v) = query_value(&entry.value) {
                probes.insert(key, (id.clone(), v));
            }
        }
        for ((code, _), parts) in composites {
            // A component without a searchable value (a text-only concept) cannot be probed.
            let components =
                helse_search::search_parameters().get(&ty, &code).map_or(0, |p| p.components.len());
            let key = (ty.clone(), code);
            if parts.len() == components && !probes.contains_key(&key) {
                probes.insert(key, (id.clone(), parts.into_values().collect::<Vec<_>>().join("$")));
            }
        }
    }
    let results: Vec<Option<String>> = futures::stream::iter(probes.iter())
        .map(|((ty, param), (id, value))| async move {
            let mut url = reqwest::Url::parse(&s.url(ty)).unwrap();
            url.query_pairs_mut().append_pair(param, value).append_pair("_id", id).append_pair("_count", "1");
            let r = s.client.get(url).header("prefer", "handling=strict").send().await.unwrap();
            let status = r.status().as_u16();
            let body: Value = r.json().await.unwrap_or_default();
            (status == 200 && body["total"] == 1).then_some(()).map_or_else(
                || Some(format!("{ty}?{param}={value} (&_id={id}): {status} total={}", body["total"])),
                |_| None,
            )
        })
        .buffer_unordered(4)
        .collect()
        .await;
    let failures: Vec<String> = results.into_iter().flatten().collect();
    let params = helse_search::search_parameters();
    let types = helse_fhir_r4::definitions().resource_types();
    let defined: usize = types.iter().map(|t| params.for_type(t).count()).sum();
    let not_indexed: usize = types
        .iter()
        .map(|t| params.for_type(t).filter(|p| p.ty == helse_search::ParamType::Special).count())
        .sum();
    println!(
        "{backend:?}: {} of {} (type, parameter) pairs with a value in an official example find it; \
         {defined} pairs are defined by {} official SearchParameters, {not_indexed} of them of the \
         `special` type (not indexed)",
        probes.len() - failures.len(),
        probes.len(),
        params.total
    );
    assert!(
        failures.is_empty(),
        "{} searches missed their example:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
