//! Storage errors as the reference PDS's XRPC answers.

use atp_xrpc::server::XrpcError;

use crate::error::Error;

/// The answer for a storage error: client mistakes become 400s with the
/// reference's names and messages, everything else a 500 (whose detail is
/// logged, not shown).
pub fn to_xrpc(err: Error) -> XrpcError {
    match err {
        Error::InvalidPassword => XrpcError::auth_required("Invalid identifier or password")
            .with_name("AuthenticationRequired"),
        Error::HandleTaken(handle) => {
            XrpcError::invalid_request(format!("Handle already taken: {handle}"))
        }
        Error::EmailTaken => XrpcError::invalid_request("Email already taken"),
        Error::Syntax(_) => XrpcError::invalid_request("Input/handle must be a valid handle")
            .with_name("InvalidHandle"),
        Error::InviteCodeRequired => {
            XrpcError::invalid_request("No invite code provided").with_name("InvalidInviteCode")
        }
        Error::InvalidInviteCode => {
            XrpcError::invalid_request("Provided invite code not available")
                .with_name("InvalidInviteCode")
        }
        Error::InvalidInput(message) => XrpcError::invalid_request(message),
        Error::AccountNotFound(_) => XrpcError::invalid_request("Account not found"),
        Error::AccountTakendown => {
            XrpcError::auth_required("Account has been taken down").with_name("AccountTakedown")
        }
        Error::InvalidToken => {
            XrpcError::invalid_request("Token is invalid").with_name("InvalidToken")
        }
        Error::ExpiredToken => {
            XrpcError::invalid_request("Token is expired").with_name("ExpiredToken")
        }
        Error::AppPasswordExists(_) => {
            XrpcError::invalid_request("could not create app-specific password")
        }
        other => {
            tracing::error!(error = %other, "internal error in an XRPC handler");
            XrpcError::internal(other)
        }
    }
}
