//! Times index extraction for a typical Patient: `cargo run --release --example extract_speed`.
fn main() {
    let p: serde_json::Value = serde_json::from_str(
        r#"{"resourceType":"Patient","active":true,"name":[{"family":"Bench1","given":["Kari","Ola"]}],"gender":"female","birthDate":"1970-01-01","address":[{"city":"Bergen","postalCode":"5003","country":"NO"}]}"#,
    )
    .unwrap();
    let n = helse_search::index_entries(&p).len();
    let start = std::time::Instant::now();
    let rounds = 20_000;
    for _ in 0..rounds {
        std::hint::black_box(helse_search::index_entries(std::hint::black_box(&p)));
    }
    let per = start.elapsed() / rounds;
    println!("{n} index rows per Patient; extraction takes {per:?} per resource");
}
