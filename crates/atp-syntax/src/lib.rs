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
//!
//! The behaviour follows the atproto specifications and the reference
//! implementation, and is checked against the shared interop test vectors.
//!
//! ```
//! use atp_syntax::{Did, Handle, Nsid, RecordKey, Tid};
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
//! assert!("did:METHOD:x".parse::<Did>().is_err());
//! # Ok::<(), atp_syntax::Error>(())
//! ```

mod at_identifier;
mod did;
mod error;
mod handle;
mod nsid;
mod record_key;
mod string_traits;
mod tid;
mod tid_clock;

pub use at_identifier::AtIdentifier;
pub use did::{Did, DID_MAX_LENGTH};
pub use error::{Error, Result};
pub use handle::{Handle, DISALLOWED_TLDS, HANDLE_LABEL_MAX_LENGTH, HANDLE_MAX_LENGTH};
pub use nsid::{Nsid, NSID_MAX_LENGTH};
pub use record_key::{RecordKey, RECORD_KEY_MAX_LENGTH};
pub use tid::{Tid, TID_LENGTH, TID_MAX_CLOCK_ID, TID_MAX_MICROS};
pub use tid_clock::TidClock;
