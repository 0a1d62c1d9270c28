//! An XRPC server on hyper 1 and tokio.
//!
//! A [`Router`] maps `/xrpc/<nsid>` to handlers: queries (GET), procedures
//! (POST) and subscriptions (GET upgraded to a WebSocket, see
//! [`crate::stream`]). Each route may have an [`Authenticator`], rate
//! limiters and its own body size limit. [`XrpcServer`] serves a router on
//! a TCP listener with timeouts, size caps, CORS, request logging and
//! graceful shutdown.
//!
//! Errors follow the reference implementation: an unknown method is 501
//! `MethodNotImplemented`, a known method called with the wrong HTTP verb is
//! 400 `InvalidRequest` ("Incorrect HTTP method (POST) expected GET"), and
//! every error body is the envelope `{"error": ..., "message": ...}`.
//!
//! A [`Router::fallback`] handler, when set, receives the calls of methods
//! the router does not serve (a PDS forwards them to its AppView).

mod auth;
mod cors;
mod error_conversions;
mod fallback;
mod lexicon_check;
mod params;
mod rate_limit;
mod request;
pub(crate) mod response;
pub(crate) mod serve;
mod xrpc_error;

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};

pub use auth::{bearer_token, AuthFn, Authenticator, BoxFuture, Credentials};
pub use params::QueryParams;
pub use rate_limit::{KeyFn, RateLimitStatus, RateLimiter};
pub use request::{RequestHead, XrpcRequest, MIN_BODY_RATE};
pub use response::{ResponseBody, XrpcResponse};
pub use serve::XrpcServer;
pub use xrpc_error::{error_name_and_message, standard_name_and_text, XrpcError};

use crate::lexicon::Lexicons;
use crate::stream::{SubscriptionHandler, SubscriptionRequest};

/// A boxed query or procedure handler.
pub type Handler =
    Arc<dyn Fn(XrpcRequest) -> BoxFuture<'static, Result<XrpcResponse, XrpcError>> + Send + Sync>;

/// Limits and switches of a server.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Largest request body a route accepts unless it sets its own limit.
    pub max_body_bytes: usize,
    /// Time allowed to receive the request head (slow-loris guard).
    pub header_read_timeout: Duration,
    /// Time allowed between two chunks of a request body.
    pub body_read_timeout: Duration,
    /// Largest request head (request line and headers), in bytes; at least
    /// 8192.
    pub max_header_bytes: usize,
    /// Longest query string, in bytes.
    pub max_query_bytes: usize,
    /// Answer CORS preflights and add CORS headers.
    pub cors: bool,
    /// Frames buffered per subscriber before it counts as slow.
    pub subscription_buffer: usize,
    /// How long a subscriber's buffer may stay full before the subscriber
    /// is cut off with a `ConsumerTooSlow` error frame.
    pub slow_consumer_timeout: Duration,
    /// How long shutdown waits for in-flight requests and subscriptions.
    pub shutdown_grace: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_body_bytes: 1024 * 1024,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            max_header_bytes: 16 * 1024,
            max_query_bytes: 8 * 1024,
            cors: true,
            subscription_buffer: 500,
            slow_consumer_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// What a route does.
#[derive(Clone)]
enum RouteKind {
    Query(Handler),
    Procedure(Handler),
    Subscription(SubscriptionHandler),
}

/// A registered method with its options.
#[derive(Clone)]
pub struct Route {
    kind: RouteKind,
    auth: Option<Arc<dyn Authenticator>>,
    rate_limits: Vec<Arc<RateLimiter>>,
    max_body_bytes: Option<usize>,
    lexicons: Option<Arc<Lexicons>>,
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.kind {
            RouteKind::Query(_) => "query",
            RouteKind::Procedure(_) => "procedure",
            RouteKind::Subscription(_) => "subscription",
        };
        f.debug_struct("Route")
            .field("kind", &kind)
            .field("authenticated", &self.auth.is_some())
            .field("rate_limits", &self.rate_limits)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("lexicon_checked", &self.lexicons.is_some())
            .finish()
    }
}

impl Route {
    fn new(kind: RouteKind) -> Self {
        Route {
            kind,
            auth: None,
            rate_limits: Vec::new(),
            max_body_bytes: None,
            lexicons: None,
        }
    }

    /// Checks this method's requests against its definition in `lexicons`
    /// before the handler runs (overrides the router-wide catalog set with
    /// [`Router::lexicons`]): query parameters, and the JSON input of a
    /// procedure. A request that does not fit is answered 400
    /// `InvalidRequest` with the reference's message; a subscription's
    /// caller gets that error as an error frame.
    pub fn lexicons(&mut self, lexicons: Arc<Lexicons>) -> &mut Self {
        self.lexicons = Some(lexicons);
        self
    }

    /// Requires the caller to pass `authenticator` first.
    pub fn auth(&mut self, authenticator: Arc<dyn Authenticator>) -> &mut Self {
        self.auth = Some(authenticator);
        self
    }

    /// Adds a rate limiter (one token per call).
    pub fn rate_limit(&mut self, limiter: Arc<RateLimiter>) -> &mut Self {
        self.rate_limits.push(limiter);
        self
    }

    /// Sets the body size limit of this route.
    pub fn max_body_bytes(&mut self, limit: usize) -> &mut Self {
        self.max_body_bytes = Some(limit);
        self
    }

    fn expected_method(&self) -> &'static str {
        match self.kind {
            RouteKind::Procedure(_) => "POST",
            _ => "GET",
        }
    }
}

fn box_handler<F, Fut>(handler: F) -> Handler
where
    F: Fn(XrpcRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<XrpcResponse, XrpcError>> + Send + 'static,
{
    Arc::new(move |req| Box::pin(handler(req)))
}

/// Maps XRPC methods (and a few plain paths) to handlers.
#[derive(Clone, Default)]
pub struct Router {
    routes: HashMap<String, Route>,
    paths: HashMap<String, Handler>,
    global_limits: Vec<Arc<RateLimiter>>,
    lexicons: Option<Arc<Lexicons>>,
    fallback: Option<Handler>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("routes", &self.routes)
            .field("paths", &self.paths.keys().collect::<Vec<_>>())
            .field("fallback", &self.fallback.is_some())
            .finish()
    }
}

impl Router {
    /// An empty router.
    pub fn new() -> Self {
        Self::default()
    }

    fn insert(&mut self, nsid: &str, kind: RouteKind) -> Result<&mut Route, crate::Error> {
        let nsid = atp_syntax::Nsid::new(nsid)
            .map_err(|e| crate::Error::InvalidRequest(format!("invalid NSID {nsid:?}: {e}")))?;
        let slot = self
            .routes
            .entry(nsid.into_string())
            .or_insert_with(|| Route::new(kind.clone()));
        *slot = Route::new(kind);
        Ok(slot)
    }

    /// Registers a query (HTTP GET).
    pub fn query<F, Fut>(&mut self, nsid: &str, handler: F) -> Result<&mut Route, crate::Error>
    where
        F: Fn(XrpcRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<XrpcResponse, XrpcError>> + Send + 'static,
    {
        self.insert(nsid, RouteKind::Query(box_handler(handler)))
    }

    /// Registers a procedure (HTTP POST).
    pub fn procedure<F, Fut>(&mut self, nsid: &str, handler: F) -> Result<&mut Route, crate::Error>
    where
        F: Fn(XrpcRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<XrpcResponse, XrpcError>> + Send + 'static,
    {
        self.insert(nsid, RouteKind::Procedure(box_handler(handler)))
    }

    /// Registers a subscription (HTTP GET upgraded to a WebSocket): the
    /// handler returns the stream of frames to send.
    pub fn subscription<F, Fut>(
        &mut self,
        nsid: &str,
        handler: F,
    ) -> Result<&mut Route, crate::Error>
    where
        F: Fn(SubscriptionRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<crate::stream::FrameStream, XrpcError>> + Send + 'static,
    {
        let handler: SubscriptionHandler = Arc::new(move |req| Box::pin(handler(req)));
        self.insert(nsid, RouteKind::Subscription(handler))
    }

    /// Serves a plain path (for example `/xrpc/_health` or `/`) with any
    /// method; no authentication, parameters are available.
    pub fn path<F, Fut>(&mut self, path: &str, handler: F) -> &mut Self
    where
        F: Fn(XrpcRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<XrpcResponse, XrpcError>> + Send + 'static,
    {
        self.paths.insert(path.to_owned(), box_handler(handler));
        self
    }

    /// Adds a rate limiter applied to every XRPC call.
    pub fn global_rate_limit(&mut self, limiter: Arc<RateLimiter>) -> &mut Self {
        self.global_limits.push(limiter);
        self
    }

    /// Checks the requests of every method `lexicons` defines against its
    /// definition before the handler runs (see [`Route::lexicons`]);
    /// methods the catalog does not define are not checked.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use atp_xrpc::lexicon::Lexicons;
    /// use atp_xrpc::server::{Router, XrpcResponse};
    ///
    /// let mut router = Router::new();
    /// router.lexicons(Arc::new(Lexicons::bundled()));
    /// router.query("com.atproto.repo.getRecord", |req| async move {
    ///     // Only reached with a valid `repo`, `collection` and `rkey`.
    ///     let params = req.lexicon_params().cloned().unwrap_or_default();
    ///     XrpcResponse::json(&params)
    /// })?;
    /// # Ok::<(), atp_xrpc::Error>(())
    /// ```
    pub fn lexicons(&mut self, lexicons: Arc<Lexicons>) -> &mut Self {
        self.lexicons = Some(lexicons);
        self
    }

    /// Sends the calls of methods no route serves to `handler` instead of
    /// answering 501 `MethodNotImplemented`. A PDS uses it to forward
    /// `app.bsky.*` calls to its AppView.
    ///
    /// The handler gets the request as it came: the head (with
    /// [`RequestHead::nsid`] set to the called method), the raw query
    /// parameters and the unread body, under the server-wide body size
    /// limit. No authenticator and no lexicon check of parameters or input
    /// run. Before it, as in the reference server, the global rate limits
    /// are charged, a method the router's lexicon catalog defines must come
    /// with its HTTP verb (400 `InvalidRequest`), and only `GET`, `HEAD` and
    /// `POST` are accepted.
    ///
    /// ```
    /// use atp_xrpc::server::{Router, XrpcResponse};
    ///
    /// let mut router = Router::new();
    /// router.fallback(|req| async move {
    ///     // `nsid` is the called method; the body and headers are intact.
    ///     let nsid = req.head().nsid.clone();
    ///     XrpcResponse::json(&serde_json::json!({ "forwarded": nsid }))
    /// });
    /// assert!(router.has_fallback());
    /// ```
    pub fn fallback<F, Fut>(&mut self, handler: F) -> &mut Self
    where
        F: Fn(XrpcRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<XrpcResponse, XrpcError>> + Send + 'static,
    {
        self.fallback = Some(box_handler(handler));
        self
    }

    /// Whether a fallback handler is set.
    pub fn has_fallback(&self) -> bool {
        self.fallback.is_some()
    }

    /// Whether a method is registered.
    pub fn has_method(&self, nsid: &str) -> bool {
        self.routes.contains_key(nsid)
    }

    /// The route of a registered method, to add options (rate limits,
    /// body limit) after it was registered elsewhere.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use atp_xrpc::server::{RateLimiter, Router, XrpcResponse};
    ///
    /// let mut router = Router::new();
    /// router.query("com.example.ping", |_req| async { Ok(XrpcResponse::empty()) })?;
    /// let limiter = Arc::new(RateLimiter::per_ip("ping", 10, Duration::from_secs(60)));
    /// router
    ///     .route_mut("com.example.ping")
    ///     .expect("registered")
    ///     .rate_limit(limiter);
    /// assert!(router.route_mut("com.example.pong").is_none());
    /// # Ok::<(), atp_xrpc::Error>(())
    /// ```
    pub fn route_mut(&mut self, nsid: &str) -> Option<&mut Route> {
        self.routes.get_mut(nsid)
    }

    /// Answers one request; `remote_addr` is the peer of the connection.
    pub(crate) async fn handle(
        &self,
        req: Request<Incoming>,
        remote_addr: Option<SocketAddr>,
        config: &ServerConfig,
        context: &serve::ConnectionContext,
    ) -> Response<ResponseBody> {
        let started = Instant::now();
        let method = req.method().clone();
        let path = req.uri().path().to_owned();
        let preflight = config.cors && cors::is_preflight(&method, req.headers());
        let mut response = if preflight {
            cors::preflight(req.headers())
        } else {
            match self.dispatch(req, remote_addr, config, context).await {
                Ok(response) => response,
                Err(err) => {
                    if err.status().is_server_error() {
                        tracing::warn!(%method, %path, error = %err, "xrpc request failed");
                    }
                    response::error_response(&err)
                }
            }
        };
        if config.cors && !preflight {
            cors::decorate(&mut response);
        }
        tracing::info!(
            %method,
            %path,
            status = response.status().as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "xrpc request"
        );
        response
    }

    async fn dispatch(
        &self,
        req: Request<Incoming>,
        remote_addr: Option<SocketAddr>,
        config: &ServerConfig,
        context: &serve::ConnectionContext,
    ) -> Result<Response<ResponseBody>, XrpcError> {
        let query = req.uri().query().unwrap_or("");
        if query.len() > config.max_query_bytes {
            return Err(
                XrpcError::new(StatusCode::URI_TOO_LONG, "query string too long")
                    .with_name("InvalidRequest"),
            );
        }
        let params = QueryParams::parse(query)?;
        let path = req.uri().path().to_owned();

        if let Some(handler) = self.paths.get(&path) {
            let (parts, body) = req.into_parts();
            let head = head_of(parts, String::new(), remote_addr);
            let request = XrpcRequest::with_default_limits(head, params, body, config);
            return handler(request).await.map(XrpcResponse::into_response);
        }

        let Some(nsid) = path.strip_prefix("/xrpc/") else {
            return Err(XrpcError::new(StatusCode::NOT_FOUND, "Not Found").with_name("NotFound"));
        };
        let nsid = nsid.strip_suffix('/').unwrap_or(nsid).to_owned();
        let Some(route) = self.routes.get(&nsid) else {
            if !atp_syntax::Nsid::is_valid(&nsid) {
                return Err(XrpcError::invalid_request("invalid xrpc path"));
            }
            let Some(fallback) = &self.fallback else {
                return Err(XrpcError::method_not_implemented());
            };
            let (parts, body) = req.into_parts();
            let head = head_of(parts, nsid, remote_addr);
            let request = fallback::prepare(
                head,
                params,
                body,
                self.lexicons.as_deref(),
                &self.global_limits,
                config,
            )?;
            return fallback(request).await.map(XrpcResponse::into_response);
        };

        let method = req.method();
        let verb_ok = match route.kind {
            RouteKind::Query(_) => method == Method::GET || method == Method::HEAD,
            RouteKind::Procedure(_) => method == Method::POST,
            RouteKind::Subscription(_) => method == Method::GET,
        };
        if !verb_ok {
            return Err(XrpcError::invalid_request(format!(
                "Incorrect HTTP method ({method}) expected {}",
                route.expected_method()
            )));
        }

        let mut req = req;
        let upgrade_parts = match route.kind {
            RouteKind::Subscription(_) => Some(hyper::upgrade::on(&mut req)),
            _ => None,
        };
        let (parts, body) = req.into_parts();
        let head = head_of(parts, nsid.clone(), remote_addr);

        let mut rate_statuses = Vec::new();
        for limiter in &self.global_limits {
            let key = limiter.key_of(&head, None);
            rate_statuses.push(limiter.consume(&key, 1)?);
        }
        let lexicons = route.lexicons.as_ref().or(self.lexicons.as_ref());
        let checked_params = match lexicons {
            Some(lexicons) => lexicon_check::check_params(lexicons, &nsid, &params),
            None => Ok(None),
        };
        let checked_params = match (&route.kind, checked_params) {
            (_, Ok(checked)) => checked,
            // A subscriber hears about it in an error frame, after the upgrade.
            (RouteKind::Subscription(_), Err(err)) => {
                let on_upgrade = upgrade_parts
                    .ok_or_else(|| XrpcError::internal("subscription without upgrade handle"))?;
                let refuse: SubscriptionHandler = Arc::new(move |_req| {
                    let err = err.clone();
                    Box::pin(async move { Err(err) })
                });
                let request = SubscriptionRequest::new(head, params, None);
                return crate::stream::accept_subscription(
                    refuse, request, on_upgrade, config, context,
                );
            }
            (_, Err(err)) => return Err(err),
        };
        let credentials = match &route.auth {
            Some(auth) => Some(auth.authenticate(&head).await?),
            None => None,
        };
        for limiter in &route.rate_limits {
            let key = limiter.key_of(&head, credentials.as_ref());
            rate_statuses.push(limiter.consume(&key, 1)?);
        }
        // The tightest limit is the one reported.
        let reported = rate_statuses.into_iter().min_by_key(|s| s.remaining);

        let mut response = match &route.kind {
            RouteKind::Query(handler) | RouteKind::Procedure(handler) => {
                let request = XrpcRequest::new(
                    head,
                    params,
                    credentials,
                    Some(body),
                    route.max_body_bytes.unwrap_or(config.max_body_bytes),
                    config.body_read_timeout,
                );
                let mut request = request;
                request.set_lexicon_params(checked_params);
                if let (RouteKind::Procedure(_), Some(lexicons)) = (&route.kind, lexicons) {
                    lexicon_check::check_input(lexicons, &nsid, &mut request).await?;
                }
                handler(request).await?.into_response()
            }
            RouteKind::Subscription(handler) => {
                let on_upgrade = upgrade_parts
                    .ok_or_else(|| XrpcError::internal("subscription without upgrade handle"))?;
                let request = SubscriptionRequest::new(head, params, credentials);
                crate::stream::accept_subscription(
                    handler.clone(),
                    request,
                    on_upgrade,
                    config,
                    context,
                )?
            }
        };
        if let Some(status) = reported {
            for (name, value) in status.headers() {
                response.headers_mut().insert(name, value);
            }
        }
        Ok(response)
    }
}

fn head_of(
    parts: hyper::http::request::Parts,
    nsid: String,
    remote_addr: Option<SocketAddr>,
) -> RequestHead {
    RequestHead {
        method: parts.method,
        uri: parts.uri,
        headers: parts.headers,
        nsid,
        remote_addr,
    }
}
