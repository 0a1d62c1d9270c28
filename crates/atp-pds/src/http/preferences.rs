//! `app.bsky.actor.getPreferences` and `putPreferences`, served from the
//! account's store, with the reference PDS's rules:
//!
//! * every preference needs a string `$type` ("Preference is missing a
//!   $type") in the `app.bsky` namespace ("Some preferences are not in the
//!   app.bsky namespace");
//! * `app.bsky.actor.defs#personalDetailsPref` is neither shown to nor
//!   settable by app-password sessions; when such a session puts its
//!   preferences, the stored personal details are kept;
//! * `app.bsky.actor.defs#declaredAgePref` is read-only: it is not stored,
//!   and `getPreferences` adds one computed from the personal details'
//!   `birthDate`;
//! * `putPreferences` replaces the whole list.
//!
//! The reference serves these methods only when an AppView is configured;
//! this PDS always serves them. A call with an `atproto-proxy` header
//! naming another service than the configured AppView is forwarded there
//! (see [`super::proxy`]), as the reference does.

use std::sync::Arc;

use atp_xrpc::auth::AuthScope;
use atp_xrpc::server::{Router, XrpcError, XrpcRequest, XrpcResponse};
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::{require_access, Access, Caller};
use super::errors::to_xrpc;
use super::proxy;
use super::state::PdsState;
use super::with_state;
use crate::db::run_blocking;

/// The namespace these methods manage.
const NAMESPACE: &str = "app.bsky";
/// Shown to and settable by full-access sessions only.
const PERSONAL_DETAILS: &str = "app.bsky.actor.defs#personalDetailsPref";
/// Computed, never stored.
const DECLARED_AGE: &str = "app.bsky.actor.defs#declaredAgePref";

/// The `$type` of a preference, if it has a string one.
fn type_of(pref: &Value) -> Option<&str> {
    pref.get("$type").and_then(Value::as_str)
}

fn in_namespace(name: &str) -> bool {
    name == NAMESPACE || name.starts_with("app.bsky.")
}

/// Whether a session with this scope may see and set `pref_type`.
fn allowed(pref_type: &str, full_access: bool) -> bool {
    full_access || pref_type != PERSONAL_DETAILS
}

/// Whole years between `birth` and `today`.
fn age_on(birth: NaiveDate, today: NaiveDate) -> i32 {
    let mut age = today.year() - birth.year();
    if (today.month(), today.day()) < (birth.month(), birth.day()) {
        age -= 1;
    }
    age
}

/// A `birthDate` as a date: an RFC 3339 datetime (its UTC date) or a bare
/// `YYYY-MM-DD`.
fn birth_date(text: &str) -> Option<NaiveDate> {
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Some(time.with_timezone(&Utc).date_naive());
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}

/// The preferences shown to a session: the stored `app.bsky` ones, plus
/// the computed declared age, less what the session may not see.
fn visible(stored: Vec<Value>, full_access: bool, today: NaiveDate) -> Vec<Value> {
    let mut prefs: Vec<Value> = stored
        .into_iter()
        .filter(|pref| type_of(pref).is_some_and(in_namespace))
        .collect();
    let birth = prefs
        .iter()
        .find(|pref| type_of(pref) == Some(PERSONAL_DETAILS))
        .and_then(|pref| pref.get("birthDate"))
        .and_then(Value::as_str)
        .map(|text| birth_date(text).map(|birth| age_on(birth, today)));
    if let Some(age) = birth {
        // An unreadable date counts as no age, as in the reference.
        let over = |years: i32| age.is_some_and(|age| age >= years);
        prefs.push(json!({
            "$type": DECLARED_AGE,
            "isOverAge13": over(13),
            "isOverAge16": over(16),
            "isOverAge18": over(18),
        }));
    }
    prefs.retain(|pref| type_of(pref).is_some_and(|t| allowed(t, full_access)));
    prefs
}

/// The list to store after a put: the stored preferences the session may
/// not replace (outside the namespace, or hidden from it), then the new
/// ones less the read-only kind.
fn replacement(
    stored: Vec<Value>,
    new: Vec<Value>,
    full_access: bool,
) -> Result<Vec<Value>, XrpcError> {
    let mut types = Vec::with_capacity(new.len());
    for pref in &new {
        match type_of(pref) {
            Some(t) => types.push(t.to_owned()),
            None => return Err(XrpcError::invalid_request("Preference is missing a $type")),
        }
    }
    if !types.iter().all(|t| in_namespace(t)) {
        return Err(XrpcError::invalid_request(format!(
            "Some preferences are not in the {NAMESPACE} namespace"
        )));
    }
    let forbidden: Vec<&str> = types
        .iter()
        .map(String::as_str)
        .filter(|t| !allowed(t, full_access))
        .collect();
    if !forbidden.is_empty() {
        return Err(XrpcError::invalid_request(format!(
            "Do not have authorization to set preferences: {}",
            forbidden.join(", ")
        )));
    }
    let mut kept: Vec<Value> = stored
        .into_iter()
        .filter(|pref| {
            let t = type_of(pref).unwrap_or("");
            !in_namespace(t) || !allowed(t, full_access)
        })
        .collect();
    kept.extend(
        new.into_iter()
            .filter(|pref| type_of(pref) != Some(DECLARED_AGE)),
    );
    Ok(kept)
}

/// Whether the call names another service than the configured AppView in
/// its `atproto-proxy` header (then it is forwarded, as the reference does).
fn proxied_elsewhere(state: &PdsState, req: &XrpcRequest) -> bool {
    let Some(target) = proxy::proxy_header(req) else {
        return false;
    };
    match &state.appview {
        Some(appview) => target != format!("{}#bsky_appview", appview.did),
        None => true,
    }
}

async fn stored_preferences(state: &PdsState, did: &str) -> Result<Vec<Value>, XrpcError> {
    let actors = Arc::clone(state.storage.actors());
    let did = did.to_owned();
    run_blocking(move || actors.open(&did)?.preferences())
        .await
        .map_err(to_xrpc)
}

fn full_access(caller: &Caller) -> bool {
    caller.scope == AuthScope::Access
}

async fn get_preferences(
    state: Arc<PdsState>,
    req: XrpcRequest,
) -> Result<XrpcResponse, XrpcError> {
    let caller = require_access(&state, &req, Access::Takendown)?;
    if proxied_elsewhere(&state, &req) {
        return proxy::forward(&state, req).await;
    }
    let stored = stored_preferences(&state, &caller.did).await?;
    let preferences = visible(stored, full_access(&caller), Utc::now().date_naive());
    XrpcResponse::json(&json!({ "preferences": preferences }))
}

#[derive(Deserialize)]
struct PutInput {
    preferences: Vec<Value>,
}

async fn put_preferences(
    state: Arc<PdsState>,
    mut req: XrpcRequest,
) -> Result<XrpcResponse, XrpcError> {
    let caller = require_access(&state, &req, Access::Standard)?;
    let account = caller.account(&state).await?;
    if account.takedown_ref.is_some() {
        return Err(
            XrpcError::auth_required("Account has been taken down").with_name("AccountTakedown")
        );
    }
    if proxied_elsewhere(&state, &req) {
        return proxy::forward(&state, req).await;
    }
    let input: PutInput = req.json().await?;
    let full = full_access(&caller);
    let actors = Arc::clone(state.storage.actors());
    let did = caller.did.clone();
    // Read, merge and write under the store's writer: the store opened
    // here is the one shared by every request for the account.
    let outcome = run_blocking(move || {
        let store = actors.open(&did)?;
        let stored = store.preferences()?;
        match replacement(stored, input.preferences, full) {
            Ok(prefs) => store.put_preferences(&prefs).map(|()| Ok(())),
            Err(refusal) => Ok(Err(refusal)),
        }
    })
    .await
    .map_err(to_xrpc)?;
    outcome?;
    Ok(XrpcResponse::empty())
}

pub(super) fn register(router: &mut Router, state: &Arc<PdsState>) -> Result<(), atp_xrpc::Error> {
    router.query(
        "app.bsky.actor.getPreferences",
        with_state(state, get_preferences),
    )?;
    router.procedure(
        "app.bsky.actor.putPreferences",
        with_state(state, put_preferences),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn age_counts_whole_years() {
        assert_eq!(age_on(day("2000-06-15"), day("2018-06-14")), 17);
        assert_eq!(age_on(day("2000-06-15"), day("2018-06-15")), 18);
        assert_eq!(
            birth_date("2000-06-15T00:00:00.000Z"),
            Some(day("2000-06-15"))
        );
        assert_eq!(birth_date("June"), None);
    }

    #[test]
    fn declared_age_is_computed_and_personal_details_hidden() {
        let stored = vec![
            json!({"$type": "app.bsky.actor.defs#adultContentPref", "enabled": true}),
            json!({"$type": PERSONAL_DETAILS, "birthDate": "2005-01-02T00:00:00.000Z"}),
        ];
        let today = day("2020-01-02");
        let full = visible(stored.clone(), true, today);
        assert_eq!(full.len(), 3);
        assert_eq!(
            full[2],
            json!({"$type": DECLARED_AGE, "isOverAge13": true, "isOverAge16": false, "isOverAge18": false})
        );
        let app = visible(stored, false, today);
        assert_eq!(app.len(), 2);
        assert!(app.iter().all(|p| type_of(p) != Some(PERSONAL_DETAILS)));
    }

    #[test]
    fn app_password_puts_keep_personal_details() {
        let stored = vec![
            json!({"$type": PERSONAL_DETAILS, "birthDate": "2000-01-01"}),
            json!({"$type": "app.bsky.actor.defs#adultContentPref", "enabled": true}),
        ];
        let new = vec![
            json!({"$type": "app.bsky.actor.defs#savedFeedsPref", "pinned": [], "saved": []}),
            json!({"$type": DECLARED_AGE, "isOverAge13": true}),
        ];
        let out = replacement(stored.clone(), new.clone(), false).unwrap();
        assert_eq!(out, vec![stored[0].clone(), new[0].clone()]);
        let out = replacement(stored, new.clone(), true).unwrap();
        assert_eq!(out, vec![new[0].clone()]);
    }
}
