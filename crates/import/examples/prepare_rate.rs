//! How fast items are validated and indexed, without a store: `cargo run --release --example prepare_rate DIR`.
fn main() {
    let dir = std::env::args().nth(1).expect("a directory");
    let sources = helse_import::discover(&[dir.into()]).unwrap();
    let mut items = Vec::new();
    for s in &sources {
        helse_import::source::read(s, Default::default(), &mut |i| {
            items.push(i);
            true
        })
        .unwrap();
    }
    let t = std::time::Instant::now();
    let mut rows = 0;
    for i in items.iter().cloned() {
        rows += helse_import::prepare::prepare(i, true).unwrap().index.len();
    }
    let n = items.len() as f64;
    println!("{n} items, {rows} index rows, {:.0} items/s on one thread", n / t.elapsed().as_secs_f64());
    let t = std::time::Instant::now();
    for i in items.iter().cloned() {
        helse_import::prepare::prepare(i, false).unwrap();
    }
    println!("validation only: {:.0} items/s", n / t.elapsed().as_secs_f64());
}
