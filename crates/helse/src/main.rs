//! `helse`: one binary for operators.

mod audit;
mod bench;
mod bench_search;
mod bench_summary;
mod clients;
mod config;
mod emergency;
mod import;
mod progress;
mod reindex;
mod stores;
mod synth;
mod users;

use clap::{Parser, Subcommand};

/// The system allocator spends a quarter of an import's time in malloc and free across
/// threads; mimalloc's per-thread heaps do not.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "helse", version, about = "Helse: an open FHIR R4 health-record server")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the FHIR API.
    Serve(config::ServeArgs),
    /// Measure reads, creates and updates per second against a running server.
    Bench(bench::BenchArgs),
    /// Rebuild every search index from the stored resources (safe beside a running server).
    Reindex(reindex::ReindexArgs),
    /// Load NDJSON or Bundle files (optionally gzipped) into a store or a running server.
    Import(import::ImportArgs),
    /// Generate a synthetic Norwegian population (seeded), as NDJSON files or into a store.
    Synth(synth::SynthArgs),
    /// Register, list and remove the OAuth clients that may get access tokens.
    Client(clients::ClientArgs),
    /// Verify the access log's hash chain; list who accessed a patient's record.
    Audit(audit::AuditArgs),
    /// The people who sign in: patients, health personnel, administrators.
    User(users::UserArgs),
    /// Review emergency access to patients' records.
    Emergency(emergency::EmergencyArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match cli.command {
        Command::Serve(args) => runtime.block_on(serve(args)),
        Command::Bench(args) => runtime.block_on(bench::run(args)),
        Command::Reindex(args) => runtime.block_on(reindex::run(args)),
        Command::Import(args) => runtime.block_on(import::run(args)),
        Command::Synth(args) => runtime.block_on(synth::run(args)),
        Command::Client(args) => runtime.block_on(clients::run(args)),
        Command::Audit(args) => runtime.block_on(audit::run(args)),
        Command::User(args) => runtime.block_on(users::run(args)),
        Command::Emergency(args) => runtime.block_on(emergency::run(args)),
    }
}

async fn serve(args: config::ServeArgs) -> anyhow::Result<()> {
    let settings = config::Settings::load(&args)?;
    init_logging(&settings.log_format);
    if let Some(patients) = args.demo {
        load_demo(&settings, patients).await?;
    }
    let server = helse_server::Server::bind(&settings.server).await?;
    if settings.server.auth == helse_server::AuthMode::Enforced {
        clients::hint_when_none(server.store().as_ref(), &settings.server).await?;
    }
    tracing::info!(
        listen = %server.local_addr,
        store = ?settings.server.store,
        "helse is serving FHIR R4 at http://{}/fhir",
        server.local_addr
    );
    server.run(shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

/// `serve --demo`: a synthetic population in an empty store, loaded before serving.
async fn load_demo(settings: &config::Settings, patients: usize) -> anyhow::Result<()> {
    let config = &settings.server;
    let store =
        helse_server::open_store(&config.store, config.sqlite_durability, config.postgres_pool_size).await?;
    if store.count_current().await? > 0 {
        tracing::info!("--demo: the store has data already; nothing loaded");
        store.close().await;
        return Ok(());
    }
    tracing::info!(patients, "--demo: loading a synthetic population (helse synth, seed 1)");
    let config = helse_synth::SynthConfig { patients, ..helse_synth::SynthConfig::default() };
    import::into_store(store, std::sync::Arc::new(helse_synth::Population::new(config))).await
}

fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("HELSE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// SIGINT or SIGTERM: stop accepting, finish what is in flight.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
