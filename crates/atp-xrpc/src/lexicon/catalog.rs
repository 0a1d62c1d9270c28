//! [`Lexicons`]: a catalog of lexicon documents, and validation of records,
//! XRPC parameters and bodies against it.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde_json::{Map, Value};

use atp_syntax::{Nsid, RecordKey, Tid};

use super::bundled_files::BUNDLED_LEXICONS;
use super::schema::{normalize_ref, LexDef, LexSchema, LexiconDoc};
use super::validate;
use super::LexiconError;

/// The outcome of validating a record that did not fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ValidationStatus {
    /// The record matches its collection's schema.
    Valid,
    /// No schema is known for the collection: the record was not checked.
    Unknown,
}

impl ValidationStatus {
    /// `valid` or `unknown`, as in `validationStatus` of write responses.
    pub fn as_str(self) -> &'static str {
        match self {
            ValidationStatus::Valid => "valid",
            ValidationStatus::Unknown => "unknown",
        }
    }
}

/// A catalog of lexicon documents, keyed by NSID.
#[derive(Clone, Debug, Default)]
pub struct Lexicons {
    docs: BTreeMap<String, LexiconDoc>,
}

impl Lexicons {
    /// An empty catalog.
    pub fn new() -> Self {
        Self::default()
    }

    /// The bundled `com.atproto.*`, `app.bsky.*` and `chat.bsky.*`
    /// documents (parsed once, then cloned).
    pub fn bundled() -> Self {
        static BUNDLED: OnceLock<Lexicons> = OnceLock::new();
        BUNDLED
            .get_or_init(|| {
                let mut lexicons = Lexicons::new();
                for (_, text) in BUNDLED_LEXICONS {
                    // The bundled documents are checked by the test suite;
                    // one that failed to parse would only be left out.
                    if let Ok(doc) = LexiconDoc::from_json_str(text) {
                        let _ = lexicons.add(doc);
                    }
                }
                lexicons
            })
            .clone()
    }

    /// The ids and JSON texts of the bundled documents.
    pub fn bundled_sources() -> impl Iterator<Item = (&'static str, &'static str)> {
        BUNDLED_LEXICONS.iter().copied()
    }

    /// Adds a document; fails if one with the same id is present.
    pub fn add(&mut self, doc: LexiconDoc) -> Result<(), LexiconError> {
        let id = doc.id.as_str().to_owned();
        if self.docs.contains_key(&id) {
            return Err(LexiconError::Duplicate(id));
        }
        self.docs.insert(id, doc);
        Ok(())
    }

    /// Parses and adds a document from its JSON form.
    pub fn add_json(&mut self, value: &Value) -> Result<(), LexiconError> {
        self.add(LexiconDoc::from_json(value)?)
    }

    /// Removes a document, returning it.
    pub fn remove(&mut self, nsid: &str) -> Option<LexiconDoc> {
        self.docs.remove(nsid.strip_prefix("lex:").unwrap_or(nsid))
    }

    /// The document with this NSID.
    pub fn get(&self, nsid: &str) -> Option<&LexiconDoc> {
        self.docs.get(nsid.strip_prefix("lex:").unwrap_or(nsid))
    }

    /// Number of documents.
    pub fn len(&self) -> usize {
        self.docs.len()
    }

    /// Whether the catalog is empty.
    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }

    /// The documents, by id.
    pub fn iter(&self) -> impl Iterator<Item = &LexiconDoc> {
        self.docs.values()
    }

    /// A definition by reference: `nsid` (its `main`), `nsid#name`, with or
    /// without a `lex:` prefix.
    pub fn get_def(&self, uri: &str) -> Option<&LexDef> {
        let normalized = normalize_ref("", uri)?;
        let (nsid, name) = normalized.split_once('#')?;
        self.docs.get(nsid)?.defs.get(name)
    }

    pub(crate) fn get_def_or_err(&self, uri: &str) -> Result<&LexDef, LexiconError> {
        self.get_def(uri)
            .ok_or_else(|| LexiconError::DefNotFound(format!("lex:{uri}")))
    }

    fn main_def(&self, nsid: &str, expected: &[&str]) -> Result<&LexDef, LexiconError> {
        let def = self.get_def_or_err(nsid)?;
        if !expected.contains(&def.type_name()) {
            return Err(LexiconError::WrongDefType {
                expected: expected.join(" or "),
                uri: format!("lex:{nsid}"),
            });
        }
        Ok(def)
    }

    /// Validates a record of `collection`: `Unknown` when the catalog has
    /// no schema for it, `Valid` when it matches, or an error whose message
    /// names the path (`Record/text must not be longer than 300 graphemes`).
    /// The record's `$type` must be the collection.
    pub fn validate_record(
        &self,
        collection: &str,
        record: &Value,
    ) -> Result<ValidationStatus, LexiconError> {
        let Some(obj) = record.as_object() else {
            return Err(LexiconError::Validation("Record must be an object".into()));
        };
        let Some(ty) = obj.get("$type").and_then(Value::as_str) else {
            return Err(LexiconError::Validation(
                "Record/$type must be a string".into(),
            ));
        };
        if ty != collection {
            return Err(LexiconError::Validation(format!(
                "Invalid $type: must be {collection}, got {ty}"
            )));
        }
        if !Nsid::is_valid(collection) {
            return Err(LexiconError::Validation(format!(
                "Invalid collection NSID: {collection}"
            )));
        }
        if self.get_def(collection).is_none() {
            return Ok(ValidationStatus::Unknown);
        }
        let LexDef::Record(def) = self.main_def(collection, &["record"])? else {
            return Err(LexiconError::WrongDefType {
                expected: "record".into(),
                uri: format!("lex:{collection}"),
            });
        };
        validate::validate_object(self, "Record", &def.record, record)?;
        Ok(ValidationStatus::Valid)
    }

    /// Checks a record key against the collection's `key` type (`tid`,
    /// `nsid`, `literal:<value>`, `any`). Unknown collections only need a
    /// syntactically valid record key.
    pub fn validate_record_key(&self, collection: &str, rkey: &str) -> Result<(), LexiconError> {
        let bad = |why: &str| {
            Err(LexiconError::Validation(format!(
                "Invalid record key {rkey:?}: {why}"
            )))
        };
        if !RecordKey::is_valid(rkey) {
            return bad("not a valid record key");
        }
        let key = match self.get_def(collection) {
            Some(LexDef::Record(def)) => def.key.clone(),
            _ => None,
        };
        match key.as_deref() {
            Some("tid") if !Tid::is_valid(rkey) => bad("must be a TID"),
            Some("nsid") if !Nsid::is_valid(rkey) => bad("must be an NSID"),
            Some(k) if k.starts_with("literal:") && &k["literal:".len()..] != rkey => {
                bad(&format!("must be {:?}", &k["literal:".len()..]))
            }
            _ => Ok(()),
        }
    }

    /// Validates a value against an object or record definition (`nsid` or
    /// `nsid#name`).
    pub fn validate(&self, uri: &str, value: &Value) -> Result<(), LexiconError> {
        if !value.is_object() {
            return Err(LexiconError::Validation("Value must be an object".into()));
        }
        match self.get_def_or_err(uri.strip_prefix("lex:").unwrap_or(uri))? {
            LexDef::Record(def) => validate::validate_object(self, "Record", &def.record, value),
            LexDef::Schema(LexSchema::Object(def)) => {
                validate::validate_object(self, "Object", def, value)
            }
            other => Err(LexiconError::WrongDefType {
                expected: format!("record or object (found {})", other.type_name()),
                uri: uri.to_owned(),
            }),
        }
    }

    /// Validates decoded XRPC parameters of method `nsid` (see
    /// [`Lexicons::decode_params`]).
    pub fn validate_params(
        &self,
        nsid: &str,
        params: &Map<String, Value>,
    ) -> Result<(), LexiconError> {
        let parameters = match self.main_def(nsid, &["query", "procedure", "subscription"])? {
            LexDef::Query(x) | LexDef::Procedure(x) => x.parameters.as_ref(),
            LexDef::Subscription(s) => s.parameters.as_ref(),
            _ => None,
        };
        match parameters {
            Some(def) => validate::validate_params(self, "Params", def, params),
            None => Ok(()),
        }
    }

    /// Turns query-string pairs into typed parameters of method `nsid`:
    /// integers and booleans parsed, array parameters collected from
    /// repeated keys, unknown keys kept as strings. Values that do not parse
    /// are kept as strings so that validation reports them.
    pub fn decode_params(
        &self,
        nsid: &str,
        pairs: &[(String, String)],
    ) -> Result<Map<String, Value>, LexiconError> {
        let parameters = match self.main_def(nsid, &["query", "procedure", "subscription"])? {
            LexDef::Query(x) | LexDef::Procedure(x) => x.parameters.as_ref(),
            LexDef::Subscription(s) => s.parameters.as_ref(),
            _ => None,
        };
        let mut out = Map::new();
        for (key, text) in pairs {
            let schema = parameters.and_then(|p| p.properties.get(key));
            match schema {
                Some(LexSchema::Array(array)) => {
                    let item = decode_param(&array.items, text);
                    if let Value::Array(items) = out
                        .entry(key.clone())
                        .or_insert_with(|| Value::Array(Vec::new()))
                    {
                        items.push(item);
                    }
                }
                Some(schema) => {
                    out.insert(key.clone(), decode_param(schema, text));
                }
                None => {
                    out.insert(key.clone(), Value::String(text.clone()));
                }
            }
        }
        Ok(out)
    }

    /// Validates the JSON input body of procedure `nsid`.
    pub fn validate_input(&self, nsid: &str, body: &Value) -> Result<(), LexiconError> {
        let LexDef::Procedure(def) = self.main_def(nsid, &["procedure"])? else {
            return Ok(());
        };
        match def.input.as_ref().and_then(|b| b.schema.as_ref()) {
            Some(schema) => validate::validate_one_of(self, "Input", schema, body, true),
            None => Ok(()),
        }
    }

    /// Validates the JSON output body of query or procedure `nsid`.
    pub fn validate_output(&self, nsid: &str, body: &Value) -> Result<(), LexiconError> {
        let (LexDef::Query(def) | LexDef::Procedure(def)) =
            self.main_def(nsid, &["query", "procedure"])?
        else {
            return Ok(());
        };
        match def.output.as_ref().and_then(|b| b.schema.as_ref()) {
            Some(schema) => validate::validate_one_of(self, "Output", schema, body, true),
            None => Ok(()),
        }
    }

    /// Validates an event-stream message body of subscription `nsid`.
    pub fn validate_message(&self, nsid: &str, body: &Value) -> Result<(), LexiconError> {
        let LexDef::Subscription(def) = self.main_def(nsid, &["subscription"])? else {
            return Ok(());
        };
        match def.message.as_ref() {
            Some(schema) => validate::validate_one_of(self, "Message", schema, body, true),
            None => Ok(()),
        }
    }
}

fn decode_param(schema: &LexSchema, text: &str) -> Value {
    match schema {
        LexSchema::Integer(_) => text
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or_else(|_| Value::String(text.to_owned())),
        LexSchema::Boolean(_) => match text {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => Value::String(text.to_owned()),
        },
        _ => Value::String(text.to_owned()),
    }
}
