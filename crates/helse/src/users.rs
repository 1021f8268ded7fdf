//! `helse user`: the people who sign in at the authorisation server (patients, health
//! personnel, administrators), kept in the store. A password is read from standard input
//! (`--password-stdin`) or generated and printed once; only a salted hash is kept.

use clap::{Args, Subcommand};
use helse_auth::users::{PASSWORD_ITERATIONS, USER_KEY_PREFIX, hash_password};
use helse_auth::{Role, User, new_secret};
use helse_fhir_r4::Instant;
use helse_store::ResourceStore;

#[derive(Debug, Args)]
pub struct UserArgs {
    #[command(flatten)]
    store: crate::stores::StoreArg,
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// Add a user, or replace one of the same name (a new password).
    Add {
        username: String,
        /// patient, practitioner or admin.
        #[arg(long)]
        role: String,
        /// Who they are in the record: Patient/ID for a patient, Practitioner/ID for health
        /// personnel.
        #[arg(long = "fhir-user")]
        fhir_user: Option<String>,
        /// Read the password from standard input instead of generating one.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users (name, role, fhirUser).
    List,
    /// Remove a user: they can no longer sign in (tokens already out last until expiry).
    Remove { username: String },
}

pub async fn run(args: UserArgs) -> anyhow::Result<()> {
    crate::stores::with_store(&args.store.store, |store| Box::pin(act(store, args.action))).await
}

async fn act(store: &dyn ResourceStore, action: Action) -> anyhow::Result<()> {
    match action {
        Action::Add { username, role, fhir_user, password_stdin } => {
            let role = Role::parse(&role)
                .ok_or_else(|| anyhow::anyhow!("role '{role}' is not patient, practitioner or admin"))?;
            anyhow::ensure!(
                !username.is_empty() && username.chars().all(|c| c.is_alphanumeric() || "._-@".contains(c)),
                "a username is letters, digits and . _ - @"
            );
            match (role.fhir_user_type(), &fhir_user) {
                (Some(ty), Some(r)) => anyhow::ensure!(
                    r.strip_prefix(ty)
                        .and_then(|rest| rest.strip_prefix('/'))
                        .is_some_and(|id| !id.is_empty()),
                    "a {} is {ty}/ID in the record, not '{r}'",
                    role.as_str()
                ),
                (Some(ty), None) => anyhow::bail!("a {} needs --fhir-user {ty}/ID", role.as_str()),
                (None, Some(_)) => anyhow::bail!("an admin is nobody in the record: no --fhir-user"),
                (None, None) => {}
            }
            let (password, generated) = if password_stdin {
                let mut line = String::new();
                std::io::stdin().read_line(&mut line)?;
                let password = line.trim_end_matches(['\r', '\n']).to_owned();
                anyhow::ensure!(password.chars().count() >= 12, "a password has at least 12 characters");
                (password, false)
            } else {
                (new_secret(), true)
            };
            let user = User {
                username: username.clone(),
                role,
                fhir_user,
                password_hash: hash_password(&password, PASSWORD_ITERATIONS),
            };
            store.kv_put(&User::store_key(&username), &serde_json::to_string(&user)?, None).await?;
            println!("user: {username} ({})", role.as_str());
            if generated {
                println!("password: {password}");
                eprintln!("(the password is shown this once; only its hash is kept)");
            }
        }
        Action::List => {
            for (_, text) in store.kv_list(USER_KEY_PREFIX, Instant::now()).await? {
                let u: User = serde_json::from_str(&text)?;
                println!("{}\t{}\t{}", u.username, u.role.as_str(), u.fhir_user.as_deref().unwrap_or("-"));
            }
        }
        Action::Remove { username } => {
            let key = User::store_key(&username);
            anyhow::ensure!(store.kv_get(&key, Instant::now()).await?.is_some(), "no user {username}");
            store.kv_delete(&key).await?;
            println!("removed {username}");
        }
    }
    Ok(())
}
