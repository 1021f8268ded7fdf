//! `helse client`: the OAuth clients that may get access tokens, kept in the store (so every
//! server on it knows them). A client authenticates with a secret printed once at
//! registration, or with a signed assertion checked against the public keys it registered
//! (`--jwks`, SMART Backend Services). An app people sign in to registers its redirect
//! URIs (`--redirect-uri`); one that cannot keep a secret (in a browser, on a phone) is
//! `--public` and proves itself with PKCE alone.

use anyhow::Context;
use clap::{Args, Subcommand};
use helse_auth::Client;
use helse_auth::clients::{CLIENT_KEY_PREFIX, hash_secret, new_client_id, new_secret};
use helse_fhir_r4::Instant;
use helse_store::ResourceStore;

#[derive(Debug, Args)]
pub struct ClientArgs {
    #[command(flatten)]
    store: crate::stores::StoreArg,
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// Register a client; prints its id (and its secret, once, unless --jwks is given).
    Add {
        /// A name for people reading the list.
        #[arg(long)]
        name: String,
        /// The scopes it may be granted, e.g. 'system/*.rs' or 'system/Observation.cruds'.
        #[arg(long)]
        scope: String,
        /// A JWK Set file with the public keys it signs its assertions with.
        #[arg(long)]
        jwks: Option<std::path::PathBuf>,
        /// Where the sign-in page may send people back to (an app; repeat for several).
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        /// An app without a secret of its own (PKCE only); needs --redirect-uri.
        #[arg(long)]
        public: bool,
    },
    /// List the registered clients.
    List,
    /// Remove a client: its tokens stop being issued (tokens already out last until expiry).
    Remove { id: String },
}

pub async fn run(args: ClientArgs) -> anyhow::Result<()> {
    crate::stores::with_store(&args.store.store, |store| Box::pin(act(store, args.action))).await
}

async fn act(store: &dyn ResourceStore, action: Action) -> anyhow::Result<()> {
    match action {
        Action::Add { name, scope, jwks, redirect_uris, public } => {
            anyhow::ensure!(
                !public || !redirect_uris.is_empty(),
                "a --public client is an app: give its --redirect-uri"
            );
            anyhow::ensure!(!public || jwks.is_none(), "a --public client has no keys");
            for uri in &redirect_uris {
                anyhow::ensure!(
                    uri.starts_with("https://")
                        || uri.starts_with("http://127.0.0.1")
                        || uri.starts_with("http://localhost"),
                    "redirect URI '{uri}' must be https (or http on loopback, for development)"
                );
            }
            let grant = helse_auth::Grant::parse(&scope);
            anyhow::ensure!(!grant.scopes.is_empty(), "'{scope}' has no resource scope (e.g. system/*.rs)");
            let jwks = jwks
                .map(|p| -> anyhow::Result<serde_json::Value> {
                    let text =
                        std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
                    let value: serde_json::Value = serde_json::from_str(&text)?;
                    anyhow::ensure!(
                        value["keys"].is_array(),
                        "{} is not a JWK Set ({{\"keys\": [...]}})",
                        p.display()
                    );
                    Ok(value)
                })
                .transpose()?;
            let secret = (jwks.is_none() && !public).then(new_secret);
            let client = Client {
                id: new_client_id(),
                name,
                secret_sha256: secret.as_deref().map(hash_secret),
                jwks,
                scope: grant.to_string(),
                redirect_uris,
            };
            store.kv_put(&Client::store_key(&client.id), &serde_json::to_string(&client)?, None).await?;
            println!("client_id: {}", client.id);
            if let Some(secret) = secret {
                println!("client_secret: {secret}");
                eprintln!("(the secret is shown this once; only its hash is kept)");
            }
            println!("scope: {}", client.scope);
        }
        Action::List => {
            for (_, text) in store.kv_list(CLIENT_KEY_PREFIX, Instant::now()).await? {
                let c: Client = serde_json::from_str(&text)?;
                let how = if c.jwks.is_some() {
                    "private_key_jwt"
                } else if c.is_public() {
                    "public"
                } else {
                    "client_secret"
                };
                println!("{}\t{}\t{}\t{}", c.id, c.name, how, c.scope);
            }
        }
        Action::Remove { id } => {
            let key = Client::store_key(&id);
            anyhow::ensure!(store.kv_get(&key, Instant::now()).await?.is_some(), "no client {id}");
            store.kv_delete(&key).await?;
            println!("removed {id}");
        }
    }
    Ok(())
}

/// On a server with authorisation on and no client yet, says how to make the first one.
pub async fn hint_when_none(
    store: &dyn ResourceStore,
    config: &helse_server::ServerConfig,
) -> anyhow::Result<()> {
    if store.kv_list(CLIENT_KEY_PREFIX, Instant::now()).await?.is_empty() {
        let location = format!("{:?}", config.store);
        eprintln!(
            "No OAuth client is registered, so nobody can get an access token yet. Register an administrator:\n  \
             helse client --store '{location}' add --name admin --scope 'system/*.cruds'\n\
             then get a token: POST /auth/token with grant_type=client_credentials and the printed id and secret (HTTP Basic).\n\
             People sign in through apps: helse user --store '{location}' add NAME --role patient|practitioner|admin [--fhir-user Patient/ID].\n\
             For development only: helse serve --no-auth (loopback)."
        );
    }
    Ok(())
}
