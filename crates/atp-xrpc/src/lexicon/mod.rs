//! Lexicon: schema documents, a catalog of them, and validation of records,
//! XRPC parameters and bodies with the reference implementation's verdicts.
//!
//! Data is validated in its JSON form (`{"$bytes": ...}`, `{"$link": ...}`,
//! blob objects). Errors carry the path of the offending value, as the
//! reference reports them.
//!
//! ```
//! use atp_xrpc::lexicon::{Lexicons, ValidationStatus};
//! use serde_json::json;
//!
//! let lexicons = Lexicons::bundled();
//! let post = json!({
//!     "$type": "app.bsky.feed.post",
//!     "text": "hello world",
//!     "createdAt": "2024-01-01T00:00:00.000Z",
//! });
//! assert_eq!(lexicons.validate_record("app.bsky.feed.post", &post)?, ValidationStatus::Valid);
//!
//! let long = json!({
//!     "$type": "app.bsky.feed.post",
//!     "text": "x".repeat(301),
//!     "createdAt": "2024-01-01T00:00:00.000Z",
//! });
//! let err = lexicons.validate_record("app.bsky.feed.post", &long).unwrap_err();
//! assert_eq!(err.to_string(), "Record/text must not be longer than 300 graphemes");
//!
//! let other = json!({"$type": "com.example.thing", "anything": 1});
//! assert_eq!(lexicons.validate_record("com.example.thing", &other)?, ValidationStatus::Unknown);
//! # Ok::<(), atp_xrpc::lexicon::LexiconError>(())
//! ```

mod bundled_files;
mod catalog;
mod error;
mod schema;
mod validate;

pub use catalog::{Lexicons, ValidationStatus};
pub use error::LexiconError;
pub use schema::{
    LexArray, LexBlob, LexBody, LexBoolean, LexBytes, LexDef, LexInteger, LexObject, LexParams,
    LexRecord, LexSchema, LexString, LexSubscription, LexUnion, LexXrpcBody, LexiconDoc,
    StringFormat,
};
