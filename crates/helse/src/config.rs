//! Settings for `helse serve`: command-line flags win over environment variables
//! (`HELSE_*`), which win over the config file, which wins over defaults.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use helse_server::{AuthMode, Limits, ServerConfig, SqliteDurability};
use helse_store::StoreLocation;
use serde::Deserialize;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Config file (TOML). Defaults to ./helse.toml when it exists.
    #[arg(long, env = "HELSE_CONFIG")]
    config: Option<PathBuf>,
    /// Store: `sqlite:PATH` or `postgres://user@host/db`.
    #[arg(long, env = "HELSE_STORE")]
    store: Option<String>,
    /// Address to listen on.
    #[arg(long, env = "HELSE_LISTEN")]
    listen: Option<SocketAddr>,
    /// Public base URL of the FHIR API, e.g. https://fhir.example.no/fhir.
    #[arg(long, env = "HELSE_BASE_URL")]
    base_url: Option<String>,
    /// SQLite durability: `full` (fsync each commit) or `normal` (survives a crash of the
    /// process, not of the machine).
    #[arg(long, env = "HELSE_SQLITE_SYNC")]
    sqlite_sync: Option<String>,
    /// Largest request body, in bytes.
    #[arg(long, env = "HELSE_MAX_BODY_BYTES")]
    max_body_bytes: Option<usize>,
    /// Longest a request may take, in seconds.
    #[arg(long, env = "HELSE_REQUEST_TIMEOUT")]
    request_timeout: Option<u64>,
    /// Log format: `text` or `json`.
    #[arg(long, env = "HELSE_LOG_FORMAT")]
    log_format: Option<String>,
    /// Seconds a finished bulk export is kept (default one day).
    #[arg(long, env = "HELSE_EXPORT_RETENTION")]
    export_retention: Option<u64>,
    /// On an empty store, load a synthetic population of this many patients first
    /// (`helse synth`, seed 1), so there is something to look at.
    #[arg(long, value_name = "PATIENTS", num_args = 0..=1, default_missing_value = "100")]
    pub demo: Option<usize>,
    /// Development only: no access tokens needed, every record open. Refused unless
    /// listening on loopback.
    #[arg(long, env = "HELSE_NO_AUTH")]
    no_auth: bool,
    /// Accept access tokens from an external OpenID Connect issuer, checked against its
    /// public keys: `ISSUER=JWKS_FILE` (repeatable).
    #[arg(long = "trust-issuer", value_name = "ISSUER=JWKS_FILE")]
    trust_issuers: Vec<String>,
}

/// The config file's shape; every field optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    store: Option<String>,
    listen: Option<SocketAddr>,
    base_url: Option<String>,
    sqlite_sync: Option<String>,
    max_body_bytes: Option<usize>,
    request_timeout: Option<u64>,
    log_format: Option<String>,
    max_json_depth: Option<usize>,
    default_page_size: Option<usize>,
    max_page_size: Option<usize>,
    postgres_pool_size: Option<usize>,
    export_retention: Option<u64>,
    trusted_issuers: Option<Vec<TrustedIssuerConfig>>,
}

/// `[[trusted_issuers]]` in the config file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TrustedIssuerConfig {
    issuer: String,
    jwks_file: PathBuf,
}

/// An issuer and its JWK Set, read from the file.
fn trusted_issuer(issuer: &str, jwks_file: &std::path::Path) -> anyhow::Result<helse_auth::TrustedIssuer> {
    let text =
        std::fs::read_to_string(jwks_file).with_context(|| format!("reading {}", jwks_file.display()))?;
    let jwks: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", jwks_file.display()))?;
    anyhow::ensure!(
        jwks["keys"].is_array(),
        "{} is not a JWK Set ({{\"keys\": [...]}})",
        jwks_file.display()
    );
    Ok(helse_auth::TrustedIssuer { issuer: issuer.to_owned(), jwks })
}

pub struct Settings {
    pub server: ServerConfig,
    pub log_format: String,
}

impl Settings {
    pub fn load(args: &ServeArgs) -> anyhow::Result<Self> {
        let path = args.config.clone().or_else(|| {
            let default = PathBuf::from("helse.toml");
            default.exists().then_some(default)
        });
        let file: FileConfig = match &path {
            Some(p) => {
                let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
                toml::from_str(&text).with_context(|| format!("parsing {}", p.display()))?
            }
            None => FileConfig::default(),
        };
        let store =
            args.store.clone().or(file.store).unwrap_or_else(|| "sqlite:./helse-data/helse.db".into());
        let store = StoreLocation::parse(&store)?;
        let sync = args.sqlite_sync.clone().or(file.sqlite_sync).unwrap_or_else(|| "full".into());
        let sqlite_durability = match sync.as_str() {
            "full" => SqliteDurability::Full,
            "normal" => SqliteDurability::Normal,
            other => anyhow::bail!("sqlite_sync must be 'full' or 'normal', not '{other}'"),
        };
        let defaults = Limits::default();
        let limits = Limits {
            max_body_bytes: args.max_body_bytes.or(file.max_body_bytes).unwrap_or(defaults.max_body_bytes),
            max_json_depth: file.max_json_depth.unwrap_or(defaults.max_json_depth),
            request_timeout: args
                .request_timeout
                .or(file.request_timeout)
                .map(Duration::from_secs)
                .unwrap_or(defaults.request_timeout),
            default_page_size: file.default_page_size.unwrap_or(defaults.default_page_size),
            max_page_size: file.max_page_size.unwrap_or(defaults.max_page_size),
            export_retention: args
                .export_retention
                .or(file.export_retention)
                .map(Duration::from_secs)
                .unwrap_or(defaults.export_retention),
        };
        let mut trusted_issuers = Vec::new();
        for t in file.trusted_issuers.iter().flatten() {
            trusted_issuers.push(trusted_issuer(&t.issuer, &t.jwks_file)?);
        }
        for flag in &args.trust_issuers {
            let (issuer, file) = flag
                .rsplit_once('=')
                .with_context(|| format!("--trust-issuer '{flag}' is not ISSUER=JWKS_FILE"))?;
            trusted_issuers.push(trusted_issuer(issuer, std::path::Path::new(file))?);
        }
        Ok(Settings {
            server: ServerConfig {
                listen: args
                    .listen
                    .or(file.listen)
                    .unwrap_or_else(|| "127.0.0.1:8080".parse().expect("valid")),
                base_url: args.base_url.clone().or(file.base_url),
                store,
                sqlite_durability,
                postgres_pool_size: file.postgres_pool_size.unwrap_or(16),
                limits,
                auth: if args.no_auth { AuthMode::Disabled } else { AuthMode::Enforced },
                trusted_issuers,
            },
            log_format: args.log_format.clone().or(file.log_format).unwrap_or_else(|| "text".into()),
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: ServeArgs,
    }

    fn load(argv: &[&str], file: Option<&str>) -> Settings {
        let dir = tempfile::tempdir().unwrap();
        let mut argv: Vec<String> =
            std::iter::once("helse".to_owned()).chain(argv.iter().map(|s| s.to_string())).collect();
        if let Some(text) = file {
            let path = dir.path().join("helse.toml");
            std::fs::write(&path, text).unwrap();
            argv.push("--config".into());
            argv.push(path.display().to_string());
        }
        Settings::load(&Cli::parse_from(argv).args).unwrap()
    }

    #[test]
    fn defaults_then_file_then_flags() {
        let d = load(&[], None);
        assert_eq!(d.server.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(d.server.store, StoreLocation::Sqlite("./helse-data/helse.db".into()));
        let f =
            load(&[], Some("listen = \"127.0.0.1:9000\"\nmax_page_size = 20\nstore = \"sqlite:/tmp/x.db\""));
        assert_eq!(f.server.listen.to_string(), "127.0.0.1:9000");
        assert_eq!(f.server.limits.max_page_size, 20);
        let both = load(&["--listen", "127.0.0.1:9100"], Some("listen = \"127.0.0.1:9000\""));
        assert_eq!(both.server.listen.to_string(), "127.0.0.1:9100", "flags win over the file");
        assert_eq!(d.server.auth, AuthMode::Enforced, "secure by default");
        assert_eq!(load(&["--no-auth"], None).server.auth, AuthMode::Disabled);
    }

    #[test]
    fn trusted_issuers_come_from_flags_and_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("jwks.json");
        std::fs::write(&keys, r#"{"keys": [{"kty": "EC", "crv": "P-256", "x": "a", "y": "b"}]}"#).unwrap();
        let flag = format!("https://idp.example={}", keys.display());
        let s = load(
            &["--trust-issuer", &flag],
            Some(&format!(
                "[[trusted_issuers]]\nissuer = \"https://other.example\"\njwks_file = \"{}\"",
                keys.display()
            )),
        );
        let issuers: Vec<&str> = s.server.trusted_issuers.iter().map(|t| t.issuer.as_str()).collect();
        assert_eq!(issuers, ["https://other.example", "https://idp.example"]);
        let not_keys = dir.path().join("x.json");
        std::fs::write(&not_keys, "{}").unwrap();
        let args =
            Cli::parse_from(["helse", "--trust-issuer", &format!("https://idp={}", not_keys.display())]).args;
        assert!(Settings::load(&args).is_err(), "a file without keys is refused");
    }

    #[test]
    fn bad_settings_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("helse.toml");
        std::fs::write(&path, "colour = \"blue\"").unwrap();
        let args = Cli::parse_from(["helse", "--config", path.to_str().unwrap()]).args;
        assert!(Settings::load(&args).is_err(), "unknown keys are refused");
        let args = Cli::parse_from(["helse", "--store", "mysql://x"]).args;
        assert!(Settings::load(&args).is_err());
        let args = Cli::parse_from(["helse", "--sqlite-sync", "sometimes"]).args;
        assert!(Settings::load(&args).is_err());
    }
}
