//! The hook through which a route checks who is calling.
//!
//! The server knows nothing about tokens: a route is given an
//! [`Authenticator`], which looks at the request head (typically the
//! `Authorization` header) and either answers with [`Credentials`] (any
//! value the verifier wants handlers to see, such as the caller's DID and
//! scope) or refuses with an [`XrpcError`] (401 `AuthenticationRequired`,
//! `ExpiredToken`, 403 `Forbidden`...).

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use super::{RequestHead, XrpcError};

/// A boxed future, as returned by [`Authenticator::authenticate`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What an [`Authenticator`] found out about the caller; handlers read it
/// back with [`Credentials::get`].
#[derive(Clone)]
pub struct Credentials(Arc<dyn Any + Send + Sync>);

impl Credentials {
    /// Wraps any value.
    pub fn new<T: Any + Send + Sync>(value: T) -> Self {
        Credentials(Arc::new(value))
    }

    /// The value, if it is a `T`.
    pub fn get<T: Any + Send + Sync>(&self) -> Option<&T> {
        self.0.downcast_ref()
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials(..)")
    }
}

/// Checks the caller of a route before its handler runs.
pub trait Authenticator: Send + Sync + 'static {
    /// Accepts the request with credentials, or refuses it with an error
    /// that is sent as the response.
    fn authenticate<'a>(
        &'a self,
        head: &'a RequestHead,
    ) -> BoxFuture<'a, Result<Credentials, XrpcError>>;
}

/// An [`Authenticator`] made of a synchronous closure.
pub struct AuthFn<F>(pub F);

impl<F> Authenticator for AuthFn<F>
where
    F: Fn(&RequestHead) -> Result<Credentials, XrpcError> + Send + Sync + 'static,
{
    fn authenticate<'a>(
        &'a self,
        head: &'a RequestHead,
    ) -> BoxFuture<'a, Result<Credentials, XrpcError>> {
        let result = (self.0)(head);
        Box::pin(async move { result })
    }
}

/// The bearer token of an `Authorization: Bearer <token>` header, if any.
pub fn bearer_token(head: &RequestHead) -> Option<&str> {
    let value = head
        .headers
        .get(hyper::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}
