//! Validates FHIR JSON files and prints every issue: `cargo run --example validate_files -- DIR`.
use std::collections::BTreeMap;

fn main() {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let (mut ok, mut bad) = (0, 0);
    for arg in std::env::args().skip(1) {
        let mut paths: Vec<_> = match std::fs::read_dir(&arg) {
            Ok(dir) => dir.filter_map(|e| e.ok().map(|e| e.path())).collect(),
            Err(_) => vec![arg.clone().into()],
        };
        paths.sort();
        for path in paths {
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let Ok(value) = serde_json::from_str::<serde_json::Value>(&text) else {
                continue;
            };
            if value.get("resourceType").is_none() {
                continue;
            }
            let issues = helse_fhir_r4::validate_resource(&value, None);
            if issues.is_empty() {
                ok += 1;
            } else {
                bad += 1;
                for i in &issues {
                    println!(
                        "{}: {} {}",
                        path.display(),
                        i.expression.as_deref().unwrap_or(""),
                        i.diagnostics
                    );
                    *counts.entry(i.diagnostics.chars().take(50).collect()).or_default() += 1;
                }
            }
        }
    }
    println!("{ok} valid, {bad} with issues");
}
