//! Parses every expression in a SearchParameter Bundle: `cargo run --example parse_all -- FILE`.
fn main() {
    let path = std::env::args().nth(1).expect("search-parameters.json");
    let bundle: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let (mut ok, mut bad) = (0, 0);
    for e in bundle["entry"].as_array().unwrap() {
        let Some(expr) = e["resource"]["expression"].as_str() else {
            continue;
        };
        match helse_fhirpath::Expression::parse(expr) {
            Ok(_) => ok += 1,
            Err(err) => {
                bad += 1;
                println!("{}: {err}", e["resource"]["id"]);
            }
        }
    }
    println!("{ok} parsed, {bad} failed");
}
