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
use crate::account::Account;
use crate::db::run_blocking;
use crate::email_token::{EmailTokenPurpose, EMAIL_TOKEN_LIFETIME};
use crate::error::Error;
use crate::mailer::token_mail;

/// The reference's longest accepted new password.
const NEW_PASSWORD_MAX_LENGTH: usize = 256;

/// Storage errors of these methods in the reference's words.
fn email_error(err: Error) -> XrpcError {
    match err {
        Error::InvalidToken => {
            XrpcError::invalid_request("Token is invalid").with_name("InvalidToken")
        }
        Error::ExpiredToken => {
            XrpcError::invalid_request("Token is expired").with_name("ExpiredToken")
        }
        Error::EmailTaken => XrpcError::invalid_request(
            "This email address is already in use, please use a different email.",
        ),
        Error::AccountNotFound(_) => XrpcError::invalid_request("account not found"),
        other => to_xrpc(other),
    }
}

/// The caller's account, refused when it is taken down (the reference's
/// `checkTakedown`).
async fn caller_account(state: &PdsState, caller: &Caller) -> Result<Account, XrpcError> {
    let accounts = Arc::clone(state.storage.accounts());
    let did = caller.did.clone();
    let account = run_blocking(move || accounts.account_by_did(&did))
        .await
        .map_err(email_error)?
        .ok_or_else(|| XrpcError::invalid_request("account not found"))?;
    if account.takedown_ref.is_some() {
        return Err(
            XrpcError::auth_required("Account has been taken down").with_name("AccountTakedown")
        );
    }
    Ok(account)
}

/// Issues a token for `did` and mails it to `to`.
async fn send_token(
    state: &PdsState,
    did: &str,
    to: &str,
    purpose: EmailTokenPurpose,
) -> Result<(), XrpcError> {
    let accounts = Arc::clone(state.storage.accounts());
    let mailer = Arc::clone(&state.mailer);
    let (did, to) = (did.to_owned(), to.to_owned());
    run_blocking(move || {
        let token = accounts.issue_email_token(&did, purpose)?;
        mailer.send(&token_mail(purpose, &to, &token))
    })
    .await
    .map_err(email_error)
}

async fn request_email_confirmation(
    state: Arc<PdsState>,
    req: XrpcRequest,
) -> Result<XrpcResponse, XrpcError> {
    let caller = require_access(&state, &req, Access::Standard)?;
    let account = caller_account(&state, &caller).await?;
    if account.email.is_empty() {
        return Err(XrpcError::invalid_request(
            "account does not have an email address",
        ));
    }
    send_token(
        &state,
        &account.did,
        &account.email,
        EmailTokenPurpose::ConfirmEmail,
    )
    .await?;
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
    let accounts = Arc::clone(state.storage.accounts());
    run_blocking(move || {
        accounts.consume_email_token(
            &account.did,
            EmailTokenPurpose::ConfirmEmail,
            &input.token,
            EMAIL_TOKEN_LIFETIME,
        )?;
        accounts.confirm_email(&account.did)
    })
    .await
    .map_err(email_error)?;
    Ok(XrpcResponse::empty())
}

async fn request_email_update(
    state: Arc<PdsState>,
    req: XrpcRequest,
) -> Result<XrpcResponse, XrpcError> {
    let caller = require_access(&state, &req, Access::Full)?;
    let account = caller_account(&state, &caller).await?;
    if account.email.is_empty() {
        return Err(XrpcError::invalid_request(
            "account does not have an email address",
        ));
    }
    let token_required = account.email_confirmed_at.is_some();
    if token_required {
        send_token(
            &state,
            &account.did,
            &account.email,
            EmailTokenPurpose::UpdateEmail,
        )
        .await?;
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
    let accounts = Arc::clone(state.storage.accounts());
    run_blocking(move || {
        if let Some(token) = &token {
            accounts.check_email_token(
                &account.did,
                EmailTokenPurpose::UpdateEmail,
                token,
                EMAIL_TOKEN_LIFETIME,
            )?;
        }
        accounts.update_email(&account.did, &input.email)?;
        accounts.delete_email_tokens(&account.did)?;
        Ok(())
    })
    .await
    .map_err(email_error)?;
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
    let accounts = Arc::clone(state.storage.accounts());
    let account = run_blocking(move || accounts.account_by_email(&email))
        .await
        .map_err(email_error)?;
    let Some(account) = account.filter(|account| !account.email.is_empty()) else {
        return Err(XrpcError::invalid_request(
            "account does not have an email address",
        ));
    };
    send_token(
        &state,
        &account.did,
        &account.email,
        EmailTokenPurpose::ResetPassword,
    )
    .await?;
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
    let accounts = Arc::clone(state.storage.accounts());
    run_blocking(move || {
        let did = accounts.redeem_email_token(
            EmailTokenPurpose::ResetPassword,
            &input.token,
            EMAIL_TOKEN_LIFETIME,
        )?;
        // Also revokes every refresh token of the account.
        accounts.update_password(&did, &input.password)
    })
    .await
    .map_err(email_error)?;
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
