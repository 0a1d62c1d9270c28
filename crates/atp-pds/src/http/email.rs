//! `com.atproto.server` email methods: confirmation, email update and
//! password reset, with one-time tokens ([`crate::email_token`]) sent
//! through `state.mailer` ([`crate::mailer::token_mail`]).
//!
//! As in the reference PDS:
//!
//! * `requestEmailConfirmation` / `confirmEmail` take any session (main or
//!   app password) of an account that is not taken down; the email given
//!   to `confirmEmail` must be the account's (`InvalidEmail`).
//! * `requestEmailUpdate` / `updateEmail` need the main password's
//!   session. A token is required (`tokenRequired: true`, `TokenRequired`)
//!   only when the current address is confirmed. The new address starts
//!   unconfirmed and every outstanding email token of the account is
//!   dropped.
//! * `requestPasswordReset` needs no session; an address no account has is
//!   refused with "account does not have an email address" (the reference
//!   without an entryway answers so; it does not hide which addresses
//!   exist). `resetPassword` sets the new password and revokes every
//!   refresh token of the account.
//! * Tokens are valid 15 minutes, case-insensitive, single use;
//!   `InvalidToken` / `ExpiredToken` otherwise.

use std::sync::Arc;

use atp_xrpc::server::{Router, XrpcError, XrpcRequest, XrpcResponse};
use serde::Deserialize;
use serde_json::json;

use super::auth::{require_access, Access, Caller};
use super::errors::to_xrpc;
use super::state::PdsState;
use super::with_state;
use crate::account::{Account, AccountStore};
use crate::db::run_blocking;
use crate::email_token::{EmailTokenPurpose, EMAIL_TOKEN_LIFETIME};
use crate::error::Error;
use crate::mailer::{token_mail, Mail};

/// The reference's longest accepted new password.
const NEW_PASSWORD_MAX_LENGTH: usize = 256;

/// Storage errors of these methods in the reference's words (token
/// refusals are [`to_xrpc`]'s `InvalidToken` / `ExpiredToken`).
fn email_error(err: Error) -> XrpcError {
    match err {
        Error::EmailTaken => XrpcError::invalid_request(
            "This email address is already in use, please use a different email.",
        ),
        Error::AccountNotFound(_) => XrpcError::invalid_request("account not found"),
        other => to_xrpc(other),
    }
}

/// Runs `work` on the account store off the async threads, with the
/// errors of these methods.
async fn with_accounts<T: Send + 'static>(
    state: &PdsState,
    work: impl FnOnce(&AccountStore) -> crate::Result<T> + Send + 'static,
) -> Result<T, XrpcError> {
    let accounts = Arc::clone(state.storage.accounts());
    run_blocking(move || work(&accounts))
        .await
        .map_err(email_error)
}

/// The caller's account, refused when it is taken down (the reference's
/// `checkTakedown`).
async fn caller_account(state: &PdsState, caller: &Caller) -> Result<Account, XrpcError> {
    let did = caller.did.clone();
    let account = with_accounts(state, move |accounts| accounts.account_by_did(&did))
        .await?
        .ok_or_else(|| XrpcError::invalid_request("account not found"))?;
    if account.takedown_ref.is_some() {
        return Err(
            XrpcError::auth_required("Account has been taken down").with_name("AccountTakedown")
        );
    }
    Ok(account)
}

/// The account's address, or the reference's refusal for an account
/// without one.
fn address_of(account: &Account) -> Result<&str, XrpcError> {
    if account.email.is_empty() {
        return Err(XrpcError::invalid_request(
            "account does not have an email address",
        ));
    }
    Ok(&account.email)
}

/// Issues `account` a new token for `purpose` (replacing any earlier one)
/// and mails it to the account's address in the message `compose(to,
/// token)` builds; refused when the account has no address.
pub async fn mail_token_with(
    state: &PdsState,
    account: &Account,
    purpose: EmailTokenPurpose,
    compose: impl FnOnce(&str, &str) -> Mail + Send + 'static,
) -> Result<(), XrpcError> {
    let to = address_of(account)?.to_owned();
    let did = account.did.clone();
    let mailer = Arc::clone(&state.mailer);
    with_accounts(state, move |accounts| {
        let token = accounts.issue_email_token(&did, purpose)?;
        mailer.send(&compose(&to, &token))
    })
    .await
}

/// [`mail_token_with`] the standard message for `purpose`
/// ([`token_mail`]).
pub async fn mail_token(
    state: &PdsState,
    account: &Account,
    purpose: EmailTokenPurpose,
) -> Result<(), XrpcError> {
    let compose = move |to: &str, token: &str| token_mail(purpose, to, token);
    mail_token_with(state, account, purpose, compose).await
}

async fn request_email_confirmation(
    state: Arc<PdsState>,
    req: XrpcRequest,
) -> Result<XrpcResponse, XrpcError> {
    let caller = require_access(&state, &req, Access::Standard)?;
    let account = caller_account(&state, &caller).await?;
    mail_token(&state, &account, EmailTokenPurpose::ConfirmEmail).await?;
    Ok(XrpcResponse::empty())
}

#[derive(Deserialize)]
struct ConfirmEmailInput {
    email: String,
    token: String,
}

async fn confirm_email(
    state: Arc<PdsState>,
    mut req: XrpcRequest,
) -> Result<XrpcResponse, XrpcError> {
    let caller = require_access(&state, &req, Access::Standard)?;
    let input: ConfirmEmailInput = req.json().await?;
    let account = caller_account(&state, &caller).await?;
    if account.email != input.email.to_lowercase() {
        return Err(XrpcError::invalid_request("invalid email").with_name("InvalidEmail"));
    }
    with_accounts(&state, move |accounts| {
        let purpose = EmailTokenPurpose::ConfirmEmail;
        accounts.consume_email_token(&account.did, purpose, &input.token, EMAIL_TOKEN_LIFETIME)?;
        accounts.confirm_email(&account.did)
    })
    .await?;
    Ok(XrpcResponse::empty())
}

async fn request_email_update(
    state: Arc<PdsState>,
    req: XrpcRequest,
) -> Result<XrpcResponse, XrpcError> {
    let caller = require_access(&state, &req, Access::Full)?;
    let account = caller_account(&state, &caller).await?;
    address_of(&account)?;
    let token_required = account.email_confirmed_at.is_some();
    if token_required {
        mail_token(&state, &account, EmailTokenPurpose::UpdateEmail).await?;
    }
    XrpcResponse::json(&json!({ "tokenRequired": token_required }))
}

#[derive(Deserialize)]
struct UpdateEmailInput {
    email: String,
    token: Option<String>,
}

async fn update_email(
    state: Arc<PdsState>,
    mut req: XrpcRequest,
) -> Result<XrpcResponse, XrpcError> {
    let caller = require_access(&state, &req, Access::Full)?;
    let input: UpdateEmailInput = req.json().await?;
    if crate::account::normalize_email(&input.email).is_err() {
        return Err(XrpcError::invalid_request(
            "This email address is not supported, please use a different email.",
        ));
    }
    let account = caller_account(&state, &caller).await?;
    let token = input.token.filter(|token| !token.is_empty());
    if token.is_none() && account.email_confirmed_at.is_some() {
        return Err(
            XrpcError::invalid_request("confirmation token required").with_name("TokenRequired")
        );
    }
    with_accounts(&state, move |accounts| {
        if let Some(token) = &token {
            let purpose = EmailTokenPurpose::UpdateEmail;
            accounts.check_email_token(&account.did, purpose, token, EMAIL_TOKEN_LIFETIME)?;
        }
        accounts.update_email(&account.did, &input.email)?;
        accounts.delete_email_tokens(&account.did)?;
        Ok(())
    })
    .await?;
    Ok(XrpcResponse::empty())
}

#[derive(Deserialize)]
struct PasswordResetRequestInput {
    email: String,
}

async fn request_password_reset(
    state: Arc<PdsState>,
    mut req: XrpcRequest,
) -> Result<XrpcResponse, XrpcError> {
    let input: PasswordResetRequestInput = req.json().await?;
    let email = input.email.to_lowercase();
    let account = with_accounts(&state, move |accounts| accounts.account_by_email(&email))
        .await?
        .ok_or_else(|| XrpcError::invalid_request("account does not have an email address"))?;
    mail_token(&state, &account, EmailTokenPurpose::ResetPassword).await?;
    Ok(XrpcResponse::empty())
}

#[derive(Deserialize)]
struct ResetPasswordInput {
    token: String,
    password: String,
}

async fn reset_password(
    state: Arc<PdsState>,
    mut req: XrpcRequest,
) -> Result<XrpcResponse, XrpcError> {
    let input: ResetPasswordInput = req.json().await?;
    if input.password.chars().count() > NEW_PASSWORD_MAX_LENGTH {
        return Err(XrpcError::invalid_request("Invalid password length."));
    }
    with_accounts(&state, move |accounts| {
        let purpose = EmailTokenPurpose::ResetPassword;
        let did = accounts.redeem_email_token(purpose, &input.token, EMAIL_TOKEN_LIFETIME)?;
        // Also revokes every refresh token of the account.
        accounts.update_password(&did, &input.password)
    })
    .await?;
    Ok(XrpcResponse::empty())
}

pub(super) fn register(router: &mut Router, state: &Arc<PdsState>) -> Result<(), atp_xrpc::Error> {
    router.procedure(
        "com.atproto.server.requestEmailConfirmation",
        with_state(state, request_email_confirmation),
    )?;
    router.procedure(
        "com.atproto.server.confirmEmail",
        with_state(state, confirm_email),
    )?;
    router.procedure(
        "com.atproto.server.requestEmailUpdate",
        with_state(state, request_email_update),
    )?;
    router.procedure(
        "com.atproto.server.updateEmail",
        with_state(state, update_email),
    )?;
    router.procedure(
        "com.atproto.server.requestPasswordReset",
        with_state(state, request_password_reset),
    )?;
    router.procedure(
        "com.atproto.server.resetPassword",
        with_state(state, reset_password),
    )?;
    Ok(())
}
