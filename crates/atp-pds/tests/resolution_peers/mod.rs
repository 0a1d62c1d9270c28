//! Loopback stand-ins for the outside world of handle resolution: a DNS
//! server answering TXT and A records from a table, and an HTTP server
//! answering `/.well-known/atproto-did` per `Host`, counting its requests.
#![allow(clippy::unwrap_used, dead_code)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use hickory_resolver::proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_resolver::proto::rr::rdata::{A, TXT};
use hickory_resolver::proto::rr::{RData, Record, RecordType};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, UdpSocket};

type Table = Arc<Mutex<HashMap<(String, RecordType), Vec<RData>>>>;

/// A DNS server on 127.0.0.1 (UDP) answering from a table.
pub struct FakeDns {
    addr: SocketAddr,
    table: Table,
    task: tokio::task::JoinHandle<()>,
}

fn key(name: &str, kind: RecordType) -> (String, RecordType) {
    (name.trim_end_matches('.').to_ascii_lowercase(), kind)
}

impl FakeDns {
    /// Starts the server.
    pub async fn start() -> FakeDns {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let table: Table = Arc::default();
        let answers = Arc::clone(&table);
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let Ok((len, peer)) = socket.recv_from(&mut buf).await else {
                    return;
                };
                let Ok(query) = Message::from_vec(&buf[..len]) else {
                    continue;
                };
                let reply = answer(&query, &answers);
                if let Ok(bytes) = reply.to_vec() {
                    let _ = socket.send_to(&bytes, peer).await;
                }
            }
        });
        FakeDns { addr, table, task }
    }

    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Adds a TXT record (one string) to `name`.
    pub fn txt(&self, name: &str, value: &str) {
        self.add(
            name,
            RecordType::TXT,
            RData::TXT(TXT::new(vec![value.to_owned()])),
        );
    }

    /// Adds a TXT record split into several strings.
    pub fn txt_chunks(&self, name: &str, chunks: &[&str]) {
        let chunks = chunks.iter().map(|c| (*c).to_owned()).collect();
        self.add(name, RecordType::TXT, RData::TXT(TXT::new(chunks)));
    }

    /// Adds an A record to `name`.
    pub fn a(&self, name: &str, ip: Ipv4Addr) {
        self.add(name, RecordType::A, RData::A(A(ip)));
    }

    fn add(&self, name: &str, kind: RecordType, data: RData) {
        self.table
            .lock()
            .unwrap()
            .entry(key(name, kind))
            .or_default()
            .push(data);
    }
}

impl Drop for FakeDns {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn answer(query: &Message, table: &Table) -> Message {
    let mut reply = Message::new(query.metadata.id, MessageType::Response, OpCode::Query);
    reply.metadata.recursion_desired = query.metadata.recursion_desired;
    reply.metadata.recursion_available = true;
    reply.metadata.authoritative = true;
    let Some(question) = query.queries.first() else {
        reply.metadata.response_code = ResponseCode::FormErr;
        return reply;
    };
    reply.add_query(question.clone());
    let name = question.name().to_string();
    let table = table.lock().unwrap();
    let records = table.get(&key(&name, question.query_type()));
    let known_name = table.keys().any(|(n, _)| *n == key(&name, RecordType::A).0);
    match records {
        Some(records) => {
            for data in records {
                reply.add_answer(Record::from_rdata(
                    question.name().clone(),
                    60,
                    data.clone(),
                ));
            }
        }
        None if known_name => {}
        None => reply.metadata.response_code = ResponseCode::NXDomain,
    }
    reply
}

/// What the HTTP server answers for a `Host`.
pub type Reply = (StatusCode, String);

/// An HTTP server on 127.0.0.1 answering `/.well-known/atproto-did` from a
/// table of hosts (without port); 404 for anything else. Counts requests.
pub struct FakeWeb {
    addr: SocketAddr,
    table: Arc<Mutex<HashMap<String, Reply>>>,
    requests: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeWeb {
    /// Starts the server.
    pub async fn start() -> FakeWeb {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let table: Arc<Mutex<HashMap<String, Reply>>> = Arc::default();
        let requests = Arc::new(AtomicUsize::new(0));
        let (answers, count) = (Arc::clone(&table), Arc::clone(&requests));
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (answers, count) = (Arc::clone(&answers), Arc::clone(&count));
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                        count.fetch_add(1, Ordering::SeqCst);
                        let host = req
                            .headers()
                            .get(hyper::header::HOST)
                            .and_then(|h| h.to_str().ok())
                            .unwrap_or_default()
                            .split(':')
                            .next()
                            .unwrap_or_default()
                            .to_owned();
                        let reply = if req.uri().path() == "/.well-known/atproto-did" {
                            answers.lock().unwrap().get(&host).cloned()
                        } else {
                            None
                        };
                        let (status, body) =
                            reply.unwrap_or((StatusCode::NOT_FOUND, "not found".to_owned()));
                        async move {
                            let mut response = Response::new(Full::new(Bytes::from(body)));
                            *response.status_mut() = status;
                            response.headers_mut().insert(
                                hyper::header::CONTENT_TYPE,
                                hyper::header::HeaderValue::from_static("text/plain"),
                            );
                            Ok::<_, Infallible>(response)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        FakeWeb {
            addr,
            table,
            requests,
            task,
        }
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Serves `body` with `status` for `host`.
    pub fn serve(&self, host: &str, status: StatusCode, body: &str) {
        self.table
            .lock()
            .unwrap()
            .insert(host.to_owned(), (status, body.to_owned()));
    }

    /// How many requests arrived.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for FakeWeb {
    fn drop(&mut self) {
        self.task.abort();
    }
}
