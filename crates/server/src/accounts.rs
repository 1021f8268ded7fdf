//! The server's own user accounts (`helse user add`): finding one by name, and signing in
//! with a password — for the authorization endpoint and the portal alike.

use helse_auth::User;
use helse_auth::users::{PASSWORD_ITERATIONS, hash_password, verify_password};
use helse_fhir_r4::Instant;

use crate::AppState;

pub async fn load(state: &AppState, username: &str) -> Option<User> {
    let text = state.store.kv_get(&User::store_key(username), Instant::now()).await.ok()??;
    serde_json::from_str(&text).ok()
}

/// The account whose password this is; `None` for a wrong password or an unknown name —
/// which costs as much as a wrong password, so timing tells no names.
pub async fn sign_in(state: &AppState, username: &str, password: &str) -> Option<User> {
    let user = load(state, username).await;
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    // Hashing takes a few hundred milliseconds: off the request threads.
    let password = password.to_owned();
    let matches = tokio::task::spawn_blocking(move || {
        verify_password(&password, stored.as_deref().unwrap_or_else(|| unknown_user_hash()))
    })
    .await
    .unwrap_or(false);
    let user = user.filter(|_| matches);
    if user.is_none() {
        tracing::info!("sign-in refused");
    }
    user
}

/// A hash no password matches, made at full cost, to verify against for unknown names.
fn unknown_user_hash() -> &'static String {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password(&helse_auth::new_secret(), PASSWORD_ITERATIONS))
}
