//! Resolving handles on domains the service does not own: DNS TXT
//! `_atproto.<handle>` and HTTPS `https://<handle>/.well-known/atproto-did`,
//! as the handle specification describes.
//!
//! * DNS: the TXT records of `_atproto.<handle>` whose value starts with
//!   `did=`; exactly one must be present and hold a valid DID.
//! * HTTPS: `GET /.well-known/atproto-did` on the handle's host; a 2xx
//!   answer whose first line (whitespace trimmed) is a valid DID. Redirects
//!   are not followed.
//!
//! Both run at once; the DNS answer wins when both find one (the spec's
//! preference). Every lookup is bounded by a timeout and the HTTPS answer by
//! a size limit.
//!
//! The HTTPS fetch never reaches a loopback, private, link-local,
//! unspecified or otherwise non-public address (a handle is user input, and
//! the PDS must not become a way to probe its own network): the handle's
//! host is resolved first, every address is checked, and the connection
//! goes to a checked address, so a second lookup cannot swap the target.
//! [`HandleResolver::new`]`(true)` lifts this for development.
//!
//! For development and tests, [`HandleResolver::with_nameserver`] sends all
//! DNS queries to one server (for example a test server on loopback),
//! [`HandleResolver::with_plain_http_port`] fetches the well-known path
//! over plain HTTP on another port, and [`HandleResolver::with_https_port`]
//! with [`HandleResolver::with_root_certificates`] keep HTTPS but on
//! another port and under a private certificate authority.
//!
//! ```
//! use std::net::IpAddr;
//! use atp_pds::handle_resolver::{is_public_address, HandleResolver};
//!
//! let resolver = HandleResolver::new(false);
//! assert!(!resolver.allow_private_addresses);
//! assert!(is_public_address("93.184.216.34".parse::<IpAddr>()?));
//! assert!(!is_public_address("127.0.0.1".parse::<IpAddr>()?));
//! assert!(!is_public_address("fd00::1".parse::<IpAddr>()?));
//! # Ok::<(), std::net::AddrParseError>(())
//! ```

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;
use hickory_resolver::TokioResolver;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::header::{HOST, USER_AGENT};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::error::{Error, Result};

/// How long one resolution (DNS and HTTPS) may take by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);

/// The largest well-known answer read, in bytes (a DID is at most 2 KiB).
pub const MAX_WELL_KNOWN_BYTES: usize = 4096;

/// The DNS label in front of the handle.
const DNS_SUBDOMAIN: &str = "_atproto";
/// The prefix of a TXT record naming the DID.
const DNS_PREFIX: &str = "did=";
/// The path of the HTTPS method.
const WELL_KNOWN_PATH: &str = "/.well-known/atproto-did";

/// Resolves handles to DIDs.
#[derive(Clone)]
pub struct HandleResolver {
    /// Whether requests to loopback and private addresses are allowed
    /// (development only).
    pub allow_private_addresses: bool,
    timeout: Duration,
    nameserver: Option<SocketAddr>,
    plain_http_port: Option<u16>,
    https_port: u16,
    tls_roots: Option<Arc<[CertificateDer<'static>]>>,
    dns: Arc<OnceLock<TokioResolver>>,
    tls: Arc<OnceLock<tokio_rustls::TlsConnector>>,
}

impl fmt::Debug for HandleResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HandleResolver")
            .field("allow_private_addresses", &self.allow_private_addresses)
            .field("timeout", &self.timeout)
            .field("nameserver", &self.nameserver)
            .field("plain_http_port", &self.plain_http_port)
            .field("https_port", &self.https_port)
            .field("private_tls_roots", &self.tls_roots.is_some())
            .finish()
    }
}

impl Default for HandleResolver {
    fn default() -> Self {
        HandleResolver::new(false)
    }
}

impl HandleResolver {
    /// A resolver using the system's DNS configuration, HTTPS on port 443
    /// and a 3-second timeout; `allow_private_addresses` only for
    /// development.
    pub fn new(allow_private_addresses: bool) -> Self {
        HandleResolver {
            allow_private_addresses,
            timeout: DEFAULT_TIMEOUT,
            nameserver: None,
            plain_http_port: None,
            https_port: 443,
            tls_roots: None,
            dns: Arc::new(OnceLock::new()),
            tls: Arc::new(OnceLock::new()),
        }
    }

    /// The same resolver with another time limit for each method.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The same resolver sending every DNS query (TXT records and the
    /// addresses of handle hosts) to `nameserver` over UDP and TCP, without
    /// the hosts file.
    pub fn with_nameserver(mut self, nameserver: SocketAddr) -> Self {
        self.nameserver = Some(nameserver);
        self.dns = Arc::new(OnceLock::new());
        self
    }

    /// The same resolver fetching `http://<handle>:<port>/.well-known/atproto-did`
    /// (plain HTTP) instead of HTTPS on port 443: for development and tests
    /// only, never in production.
    pub fn with_plain_http_port(mut self, port: u16) -> Self {
        self.plain_http_port = Some(port);
        self
    }

    /// The same resolver fetching the well-known path over HTTPS on `port`
    /// instead of 443 (for tests).
    pub fn with_https_port(mut self, port: u16) -> Self {
        self.https_port = port;
        self
    }

    /// The same resolver trusting exactly these root certificates (DER)
    /// for HTTPS instead of the bundled Mozilla set: for a private
    /// certificate authority, or tests.
    pub fn with_root_certificates(mut self, der_roots: &[&[u8]]) -> Self {
        let roots: Vec<CertificateDer<'static>> = der_roots
            .iter()
            .map(|der| CertificateDer::from(der.to_vec()))
            .collect();
        self.tls_roots = Some(roots.into());
        self.tls = Arc::new(OnceLock::new());
        self
    }

    /// The per-method time limit.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The DID `handle` claims, or `None` when neither method finds one.
    ///
    /// Both methods run at once; the DNS answer is preferred. Failures of a
    /// method (no record, unreachable host, refused address) count as "not
    /// found" and are logged at debug level.
    pub async fn resolve(&self, handle: &str) -> Result<Option<String>> {
        let handle = handle.trim().to_ascii_lowercase();
        atp_syntax::Handle::new(&handle)?;
        let dns = self.resolve_dns(&handle);
        let http = self.resolve_http(&handle);
        tokio::pin!(dns, http);
        let mut http_answer = None;
        let dns_answer = loop {
            tokio::select! {
                answer = &mut dns => break answer,
                answer = &mut http, if http_answer.is_none() => http_answer = Some(answer),
            }
        };
        match dns_answer {
            Ok(Some(did)) => return Ok(Some(did)),
            Ok(None) => {}
            Err(err) => tracing::debug!(%handle, error = %err, "DNS handle resolution failed"),
        }
        let http_answer = match http_answer {
            Some(answer) => answer,
            None => http.await,
        };
        match http_answer {
            Ok(found) => Ok(found),
            Err(err) => {
                tracing::debug!(%handle, error = %err, "HTTPS handle resolution failed");
                Ok(None)
            }
        }
    }

    /// The DNS method alone: the DID of the single `did=` TXT record of
    /// `_atproto.<handle>`, `None` when there is none, or several, or the
    /// value is not a DID.
    pub async fn resolve_dns(&self, handle: &str) -> Result<Option<String>> {
        let resolver = self.dns_resolver()?;
        let name = format!("{DNS_SUBDOMAIN}.{}.", handle.trim_end_matches('.'));
        let lookup = match tokio::time::timeout(self.timeout, resolver.txt_lookup(name)).await {
            Err(_) => return Err(Error::Internal(format!("DNS lookup of {handle} timed out"))),
            Ok(Err(err)) if err.is_no_records_found() => return Ok(None),
            Ok(Err(err)) => return Err(Error::Internal(format!("DNS lookup of {handle}: {err}"))),
            Ok(Ok(lookup)) => lookup,
        };
        let values: Vec<String> = lookup
            .answers()
            .iter()
            .filter_map(|record| match &record.data {
                RData::TXT(txt) => Some(
                    txt.txt_data
                        .iter()
                        .map(|chunk| String::from_utf8_lossy(chunk))
                        .collect::<String>(),
                ),
                _ => None,
            })
            .collect();
        Ok(did_from_txt_values(&values))
    }

    /// The HTTPS method alone: the DID served at
    /// `https://<handle>/.well-known/atproto-did`, `None` for a non-2xx
    /// answer or a body that is not a DID.
    ///
    /// Fails when the host does not resolve, resolves to a non-public
    /// address (unless private addresses are allowed), cannot be reached,
    /// or does not answer within the timeout.
    pub async fn resolve_http(&self, handle: &str) -> Result<Option<String>> {
        let handle = handle.trim_end_matches('.').to_ascii_lowercase();
        match tokio::time::timeout(self.timeout, self.fetch_well_known(&handle)).await {
            Ok(result) => result,
            Err(_) => Err(Error::Internal(format!(
                "no answer from {handle} within {} s",
                self.timeout.as_secs_f32()
            ))),
        }
    }

    async fn fetch_well_known(&self, handle: &str) -> Result<Option<String>> {
        let addresses = self.checked_addresses(handle).await?;
        let port = self.plain_http_port.unwrap_or(self.https_port);
        let mut last_error = None;
        let mut stream = None;
        for ip in addresses {
            match TcpStream::connect(SocketAddr::new(ip, port)).await {
                Ok(connected) => {
                    stream = Some(connected);
                    break;
                }
                Err(err) => last_error = Some(err),
            }
        }
        let Some(stream) = stream else {
            let reason = last_error.map_or_else(|| "no address".to_owned(), |e| e.to_string());
            return Err(Error::Internal(format!(
                "cannot connect to {handle}: {reason}"
            )));
        };
        let body = match self.plain_http_port {
            Some(port) => get_well_known(stream, &format!("{handle}:{port}")).await?,
            None => {
                let server_name = ServerName::try_from(handle.to_owned())
                    .map_err(|_| Error::InvalidInput(format!("{handle} is not a host name")))?;
                let tls = self
                    .tls_connector()?
                    .connect(server_name, stream)
                    .await
                    .map_err(|e| Error::Internal(format!("TLS with {handle}: {e}")))?;
                get_well_known(tls, handle).await?
            }
        };
        Ok(body.and_then(|body| did_from_well_known_body(&body)))
    }

    /// The addresses of `host`, every one of them public unless private
    /// addresses are allowed.
    async fn checked_addresses(&self, host: &str) -> Result<Vec<IpAddr>> {
        let resolver = self.dns_resolver()?;
        let lookup = resolver
            .lookup_ip(format!("{host}."))
            .await
            .map_err(|e| Error::Internal(format!("cannot resolve {host}: {e}")))?;
        let addresses: Vec<IpAddr> = lookup.iter().collect();
        if addresses.is_empty() {
            return Err(Error::Internal(format!("{host} has no address")));
        }
        if !self.allow_private_addresses {
            if let Some(refused) = addresses.iter().find(|ip| !is_public_address(**ip)) {
                return Err(Error::InvalidInput(format!(
                    "{host} resolves to {refused}, which is not a public address"
                )));
            }
        }
        Ok(addresses)
    }

    fn dns_resolver(&self) -> Result<&TokioResolver> {
        if let Some(resolver) = self.dns.get() {
            return Ok(resolver);
        }
        let mut options = ResolverOpts::default();
        options.timeout = self.timeout;
        options.attempts = 1;
        let builder = match self.nameserver {
            Some(server) => {
                let mut udp = ConnectionConfig::udp();
                udp.port = server.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = server.port();
                let config = ResolverConfig::from_name_servers(vec![NameServerConfig::new(
                    server.ip(),
                    true,
                    vec![udp, tcp],
                )]);
                options.use_hosts_file = ResolveHosts::Never;
                TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
            }
            None => TokioResolver::builder_tokio().map_err(|e| {
                Error::Internal(format!("cannot read the system's DNS configuration: {e}"))
            })?,
        };
        let resolver = builder
            .with_options(options)
            .build()
            .map_err(|e| Error::Internal(format!("cannot set up DNS resolution: {e}")))?;
        // Another task may have won the race; either resolver will do.
        let _ = self.dns.set(resolver);
        self.dns
            .get()
            .ok_or_else(|| Error::Internal("DNS resolver missing".to_owned()))
    }

    fn tls_connector(&self) -> Result<&tokio_rustls::TlsConnector> {
        if let Some(connector) = self.tls.get() {
            return Ok(connector);
        }
        let roots = match &self.tls_roots {
            Some(ders) => {
                let mut roots = rustls::RootCertStore::empty();
                for der in ders.iter() {
                    roots.add(der.clone()).map_err(|e| {
                        Error::InvalidInput(format!("unusable root certificate: {e}"))
                    })?;
                }
                roots
            }
            None => {
                rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned())
            }
        };
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Internal(format!("cannot set up TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let _ = self
            .tls
            .set(tokio_rustls::TlsConnector::from(Arc::new(config)));
        self.tls
            .get()
            .ok_or_else(|| Error::Internal("TLS connector missing".to_owned()))
    }
}

/// One `GET` of the well-known path on an open connection: the body of a
/// 2xx answer (at most [`MAX_WELL_KNOWN_BYTES`]), `None` for another status.
async fn get_well_known<S>(stream: S, host: &str) -> Result<Option<Bytes>>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| Error::Internal(format!("HTTP with {host}: {e}")))?;
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    let request = Request::builder()
        .method(Method::GET)
        .uri(WELL_KNOWN_PATH)
        .header(HOST, host)
        .header(USER_AGENT, concat!("atp-pds/", env!("CARGO_PKG_VERSION")))
        .body(Empty::<Bytes>::new())
        .map_err(|e| Error::Internal(format!("HTTP request to {host}: {e}")))?;
    let outcome = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| Error::Internal(format!("HTTP with {host}: {e}")))?;
        if !response.status().is_success() {
            return Ok(None);
        }
        let body = Limited::new(response.into_body(), MAX_WELL_KNOWN_BYTES)
            .collect()
            .await
            .map_err(|e| Error::Internal(format!("reading the answer of {host}: {e}")))?
            .to_bytes();
        Ok(Some(body))
    }
    .await;
    driver.abort();
    outcome
}

/// The DID named by a set of TXT values: exactly one must start with
/// `did=`, and what follows (as is, untrimmed) must be a valid DID.
pub fn did_from_txt_values(values: &[String]) -> Option<String> {
    let mut found = values.iter().filter_map(|v| v.strip_prefix(DNS_PREFIX));
    let did = found.next()?;
    if found.next().is_some() {
        return None;
    }
    atp_syntax::Did::new(did).ok().map(|_| did.to_owned())
}

/// The DID in a well-known answer: its first line, whitespace trimmed, if
/// it is a valid DID.
pub fn did_from_well_known_body(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let did = text.trim_start().lines().next()?.trim();
    atp_syntax::Did::new(did).ok().map(|_| did.to_owned())
}

/// Whether `ip` is an address of the public internet: not loopback,
/// private (RFC 1918, unique local), shared (100.64.0.0/10), link-local,
/// unspecified, multicast, broadcast, documentation or reserved. IPv4
/// addresses embedded in IPv6 (mapped, compatible, NAT64) are judged as
/// IPv4.
pub fn is_public_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0 // "this network"
        || (a == 100 && (64..128).contains(&b)) // shared address space
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240) // reserved
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let segments = ip.segments();
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    // IPv4-compatible (::a.b.c.d, deprecated) and the NAT64 prefix 64:ff9b::/96.
    let embedded =
        |s: &[u16]| Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    if segments[..6] == [0, 0, 0, 0, 0, 0] && !ip.is_loopback() && !ip.is_unspecified() {
        return is_public_v4(embedded(&segments));
    }
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return is_public_v4(embedded(&segments));
    }
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (segments[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
        || (segments[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (segments[0] & 0xffc0) == 0xfec0 // site-local (deprecated) fec0::/10
        || (segments[0] == 0x2001 && segments[1] == 0x0db8) // documentation
        || segments[0] == 0x0100 && segments[1..4] == [0, 0, 0]) // discard-only 100::/64
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn txt_values_need_exactly_one_did() {
        let did = "did:plc:ewvi7nxzyoun6zhxrhs64oiz";
        let one = vec![format!("did={did}"), "v=spf1 -all".to_owned()];
        assert_eq!(did_from_txt_values(&one).as_deref(), Some(did));
        let two = vec![
            format!("did={did}"),
            "did=did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".to_owned(),
        ];
        assert_eq!(did_from_txt_values(&two), None);
        assert_eq!(did_from_txt_values(&["did=not a did".to_owned()]), None);
        assert_eq!(did_from_txt_values(&[format!("did= {did}")]), None);
        assert_eq!(did_from_txt_values(&[did.to_owned()]), None);
        assert_eq!(did_from_txt_values(&[]), None);
    }

    #[test]
    fn well_known_body_is_a_did_on_the_first_line() {
        let did = "did:plc:ewvi7nxzyoun6zhxrhs64oiz";
        assert_eq!(
            did_from_well_known_body(did.as_bytes()).as_deref(),
            Some(did)
        );
        assert_eq!(
            did_from_well_known_body(format!("  {did}\r\nmore").as_bytes()).as_deref(),
            Some(did)
        );
        assert_eq!(did_from_well_known_body(b"<html>hello</html>"), None);
        assert_eq!(did_from_well_known_body(b""), None);
        assert_eq!(did_from_well_known_body(&[0xff, 0xfe]), None);
    }

    #[test]
    fn only_public_addresses_pass() {
        let refused = [
            "127.0.0.1",
            "127.255.0.9",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "0.1.2.3",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "240.0.0.1",
            "192.0.2.1",
            "::",
            "::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2001:db8::1",
        ];
        for text in refused {
            let ip: IpAddr = text.parse().unwrap();
            assert!(!is_public_address(ip), "{text} should be refused");
        }
        let allowed = [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ];
        for text in allowed {
            let ip: IpAddr = text.parse().unwrap();
            assert!(is_public_address(ip), "{text} should be allowed");
        }
    }
}
