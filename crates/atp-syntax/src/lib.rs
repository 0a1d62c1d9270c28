//! Validated AT Protocol identifiers.
//!
//! Each type here can only hold a valid value ("parse, don't validate"):
//! build one with `parse`/`FromStr`, `TryFrom<&str>`, `TryFrom<String>` or
//! serde (which validates while deserializing), and from then on it is known
//! to be well-formed. They all display, serialize and compare as plain
//! strings.
//!
//! | type | what it is | spec |
//! | --- | --- | --- |
//! | [`Did`] | `did:method:identifier` | DID |
//! | [`Handle`] | a DNS name, lower case | Handle |
//! | [`AtIdentifier`] | a DID or a handle | Lexicon `at-identifier` |
//! | [`Nsid`] | `com.example.fooBar` | NSID |
//! | [`RecordKey`] | the key of a record in a collection | Record Key |
//! | [`Tid`], [`TidClock`] | 13-character timestamp identifiers | TID |
//! | [`AtUri`] | `at://authority/collection/rkey` | AT URI scheme |
//! | [`Datetime`] | `1985-04-12T23:20:50.123Z` | Lexicon `datetime` |
//! | [`Language`] | BCP 47 tag such as `pt-BR` | Lexicon `language` |
//! | [`CidString`] | a CID in string form (syntax only) | Lexicon `cid` |
//! | [`Uri`] | any URI, loosely checked | Lexicon `uri` |
//!
//! The behaviour follows the atproto specifications and the reference
//! implementation, and is checked against the shared interop test vectors.
//!
//! ```
//! use atp_syntax::{AtUri, Did, Handle, Nsid, RecordKey, Tid};
//!
//! let did: Did = "did:plc:7iza6de2dwap2sbkpav7c6c6".parse()?;
//! assert_eq!(did.method(), "plc");
//!
//! let handle = Handle::new("Alice.Example.COM")?;
//! assert_eq!(handle.to_string(), "alice.example.com");
//!
//! let collection = Nsid::new("app.bsky.feed.post")?;
//! assert_eq!(collection.name(), "post");
//!
//! let rkey = RecordKey::from(Tid::now());
//! assert_eq!(rkey.as_str().len(), 13);
//!
//! let uri = AtUri::for_record(did, collection, rkey);
//! assert!(uri.as_str().starts_with("at://did:plc:7iza6de2dwap2sbkpav7c6c6/app.bsky.feed.post/"));
//! let again: AtUri = uri.as_str().parse()?;
//! assert_eq!(again, uri);
//!
//! let err = "john..test".parse::<Handle>().unwrap_err();
//! assert_eq!(err.to_string(), r#"handle "john..test": empty label"#);
//! assert!("did:METHOD:x".parse::<Did>().is_err());
//! # Ok::<(), atp_syntax::Error>(())
//! ```

mod at_identifier;
mod at_uri;
mod cid_string;
mod datetime;
mod did;
mod error;
mod handle;
mod language;
mod nsid;
mod percent;
mod record_key;
mod string_traits;
mod tid;
mod tid_clock;
mod uri;

pub use at_identifier::AtIdentifier;
pub use at_uri::{AtUri, AT_URI_MAX_LENGTH};
pub use cid_string::CidString;
pub use datetime::{Datetime, DATETIME_MAX_LENGTH};
pub use did::{Did, DID_MAX_LENGTH};
pub use error::{Error, Result};
pub use handle::{Handle, DISALLOWED_TLDS, HANDLE_LABEL_MAX_LENGTH, HANDLE_MAX_LENGTH};
pub use language::Language;
pub use nsid::{Nsid, NSID_MAX_LENGTH};
pub use percent::percent_decode;
pub use record_key::{RecordKey, RECORD_KEY_MAX_LENGTH};
pub use tid::{Tid, TID_LENGTH, TID_MAX_CLOCK_ID, TID_MAX_MICROS};
pub use tid_clock::TidClock;
pub use uri::{Uri, URI_MAX_LENGTH};
