//! Lexicon schema documents: the types of the definitions and their
//! parsing (with the structural checks the reference applies).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use atp_syntax::Nsid;

use super::LexiconError;

/// A lexicon document: `{"lexicon": 1, "id": <nsid>, "defs": {...}}`.
#[derive(Clone, Debug, PartialEq)]
pub struct LexiconDoc {
    /// The lexicon language version (always 1).
    pub lexicon: u64,
    /// The NSID the document defines.
    pub id: Nsid,
    /// The document revision, if given.
    pub revision: Option<u64>,
    /// Free-form description.
    pub description: Option<String>,
    /// The definitions, by name (`main` is the primary one).
    pub defs: BTreeMap<String, LexDef>,
}

/// A named definition at the top level of a document.
#[derive(Clone, Debug, PartialEq)]
pub enum LexDef {
    /// A record type (only as `main`).
    Record(LexRecord),
    /// An XRPC query (HTTP GET, only as `main`).
    Query(LexXrpcBody),
    /// An XRPC procedure (HTTP POST, only as `main`).
    Procedure(LexXrpcBody),
    /// An event-stream subscription (only as `main`).
    Subscription(LexSubscription),
    /// A permission set (only as `main`); its permissions are kept as JSON.
    PermissionSet(Vec<Value>),
    /// A named token: a value with no data, used in `knownValues`.
    Token,
    /// Any other data type: object, array, string, blob, ...
    Schema(LexSchema),
}

impl LexDef {
    /// The `type` name of the definition.
    pub fn type_name(&self) -> &'static str {
        match self {
            LexDef::Record(_) => "record",
            LexDef::Query(_) => "query",
            LexDef::Procedure(_) => "procedure",
            LexDef::Subscription(_) => "subscription",
            LexDef::PermissionSet(_) => "permission-set",
            LexDef::Token => "token",
            LexDef::Schema(schema) => schema.type_name(),
        }
    }
}

/// A data schema: the types that describe values.
#[derive(Clone, Debug, PartialEq)]
pub enum LexSchema {
    /// `boolean`.
    Boolean(LexBoolean),
    /// `integer`.
    Integer(LexInteger),
    /// `string`.
    String(LexString),
    /// `bytes` (`{"$bytes": base64}` in JSON).
    Bytes(LexBytes),
    /// `cid-link` (`{"$link": cid}` in JSON).
    CidLink,
    /// `blob`.
    Blob(LexBlob),
    /// `unknown`: any object.
    Unknown,
    /// `object`.
    Object(LexObject),
    /// `array`.
    Array(Box<LexArray>),
    /// `ref` to another definition, as `nsid#name`.
    Ref(String),
    /// `union` of definitions, told apart by `$type`.
    Union(LexUnion),
}

impl LexSchema {
    /// The `type` name of the schema.
    pub fn type_name(&self) -> &'static str {
        match self {
            LexSchema::Boolean(_) => "boolean",
            LexSchema::Integer(_) => "integer",
            LexSchema::String(_) => "string",
            LexSchema::Bytes(_) => "bytes",
            LexSchema::CidLink => "cid-link",
            LexSchema::Blob(_) => "blob",
            LexSchema::Unknown => "unknown",
            LexSchema::Object(_) => "object",
            LexSchema::Array(_) => "array",
            LexSchema::Ref(_) => "ref",
            LexSchema::Union(_) => "union",
        }
    }
}

/// `boolean` constraints.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LexBoolean {
    /// Value used when absent.
    pub default: Option<bool>,
    /// The only allowed value.
    pub const_value: Option<bool>,
}

/// `integer` constraints.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LexInteger {
    /// Smallest allowed value.
    pub minimum: Option<i64>,
    /// Largest allowed value.
    pub maximum: Option<i64>,
    /// The allowed values.
    pub enum_values: Option<Vec<i64>>,
    /// The only allowed value.
    pub const_value: Option<i64>,
    /// Value used when absent.
    pub default: Option<i64>,
}

/// `string` constraints.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LexString {
    /// The format (`datetime`, `did`, ...), if any.
    pub format: Option<StringFormat>,
    /// Minimum length in UTF-8 bytes.
    pub min_length: Option<u64>,
    /// Maximum length in UTF-8 bytes.
    pub max_length: Option<u64>,
    /// Minimum length in grapheme clusters.
    pub min_graphemes: Option<u64>,
    /// Maximum length in grapheme clusters.
    pub max_graphemes: Option<u64>,
    /// The allowed values (closed set).
    pub enum_values: Option<Vec<String>>,
    /// The only allowed value.
    pub const_value: Option<String>,
    /// Value used when absent.
    pub default: Option<String>,
    /// Suggested values (open set: not enforced).
    pub known_values: Vec<String>,
}

/// The string formats of the lexicon language.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StringFormat {
    /// `at-identifier`: a DID or a handle.
    AtIdentifier,
    /// `at-uri`.
    AtUri,
    /// `cid` (string form).
    Cid,
    /// `datetime`.
    Datetime,
    /// `did`.
    Did,
    /// `handle`.
    Handle,
    /// `nsid`.
    Nsid,
    /// `tid`.
    Tid,
    /// `record-key`.
    RecordKey,
    /// `uri`.
    Uri,
    /// `language` (BCP 47).
    Language,
}

impl StringFormat {
    /// The format of a `format` name.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "at-identifier" => StringFormat::AtIdentifier,
            "at-uri" => StringFormat::AtUri,
            "cid" => StringFormat::Cid,
            "datetime" => StringFormat::Datetime,
            "did" => StringFormat::Did,
            "handle" => StringFormat::Handle,
            "nsid" => StringFormat::Nsid,
            "tid" => StringFormat::Tid,
            "record-key" => StringFormat::RecordKey,
            "uri" => StringFormat::Uri,
            "language" => StringFormat::Language,
            _ => return None,
        })
    }
}

/// `bytes` constraints (in decoded bytes).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LexBytes {
    /// Minimum size.
    pub min_length: Option<u64>,
    /// Maximum size.
    pub max_length: Option<u64>,
}

/// `blob` constraints.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LexBlob {
    /// Accepted MIME types (`image/*` and `*/*` patterns allowed).
    pub accept: Option<Vec<String>>,
    /// Maximum size in bytes.
    pub max_size: Option<u64>,
}

/// `object`: named properties.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LexObject {
    /// Properties that must be present.
    pub required: Vec<String>,
    /// Properties that may be `null`.
    pub nullable: Vec<String>,
    /// The properties.
    pub properties: BTreeMap<String, LexSchema>,
}

/// `array`.
#[derive(Clone, Debug, PartialEq)]
pub struct LexArray {
    /// The schema of every element.
    pub items: LexSchema,
    /// Minimum number of elements.
    pub min_length: Option<u64>,
    /// Maximum number of elements.
    pub max_length: Option<u64>,
}

/// `union`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LexUnion {
    /// The member definitions, as `nsid#name`.
    pub refs: Vec<String>,
    /// Whether values of other types are refused.
    pub closed: bool,
}

/// `record`.
#[derive(Clone, Debug, PartialEq)]
pub struct LexRecord {
    /// The record-key type (`tid`, `nsid`, `any`, `literal:<value>`).
    pub key: Option<String>,
    /// The record's schema.
    pub record: LexObject,
}

/// `params`: query-string parameters.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LexParams {
    /// Parameters that must be present.
    pub required: Vec<String>,
    /// The parameters (booleans, integers, strings, unknown, arrays of those).
    pub properties: BTreeMap<String, LexSchema>,
}

/// The input or output body of an XRPC method.
#[derive(Clone, Debug, PartialEq)]
pub struct LexBody {
    /// The MIME type (`application/json`, `*/*`, ...).
    pub encoding: String,
    /// The JSON schema of the body (object, ref or union), if any.
    pub schema: Option<LexSchema>,
}

/// A query or procedure.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LexXrpcBody {
    /// Query-string parameters.
    pub parameters: Option<LexParams>,
    /// Request body (procedures).
    pub input: Option<LexBody>,
    /// Response body.
    pub output: Option<LexBody>,
    /// Names of the declared errors.
    pub errors: Vec<String>,
}

/// A subscription.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LexSubscription {
    /// Query-string parameters.
    pub parameters: Option<LexParams>,
    /// The schema of the messages (usually a union).
    pub message: Option<LexSchema>,
    /// Names of the declared errors.
    pub errors: Vec<String>,
}

impl LexiconDoc {
    /// Reads a lexicon document from its JSON form.
    pub fn from_json(value: &Value) -> Result<Self, LexiconError> {
        let obj = value
            .as_object()
            .ok_or_else(|| LexiconError::invalid("<unknown>", "document must be an object"))?;
        let id_text = match obj.get("id") {
            Some(Value::String(s)) => s.as_str(),
            _ => return Err(LexiconError::invalid("<unknown>", "id must be a string")),
        };
        let id = Nsid::new(id_text)
            .map_err(|e| LexiconError::invalid(id_text, format!("id is not a valid NSID: {e}")))?;
        let reader = Reader { id: id.as_str() };
        let lexicon = match obj.get("lexicon") {
            Some(Value::Number(n)) if n.as_u64() == Some(1) => 1,
            _ => return Err(reader.err("", "lexicon must be the integer 1")),
        };
        let revision = reader.opt_u64(obj, "revision", "")?;
        let description = reader.opt_string(obj, "description", "")?;
        let defs_obj = match obj.get("defs") {
            Some(Value::Object(m)) => m,
            _ => return Err(reader.err("", "defs must be an object")),
        };
        let mut defs = BTreeMap::new();
        for (name, def) in defs_obj {
            if name.is_empty() || name.contains('#') {
                return Err(reader.err("defs", format!("bad definition name {name:?}")));
            }
            defs.insert(name.clone(), reader.def(name, def)?);
        }
        Ok(LexiconDoc {
            lexicon,
            id,
            revision,
            description,
            defs,
        })
    }

    /// Reads a lexicon document from JSON text.
    pub fn from_json_str(text: &str) -> Result<Self, LexiconError> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| LexiconError::invalid("<unknown>", format!("not JSON: {e}")))?;
        Self::from_json(&value)
    }
}

/// Normalizes a reference inside document `base` to `nsid#name`
/// (`#name` is local, a bare NSID means its `main`, `lex:` is dropped).
pub(crate) fn normalize_ref(base: &str, reference: &str) -> Option<String> {
    let reference = reference.strip_prefix("lex:").unwrap_or(reference);
    if reference.matches('#').count() > 1 {
        return None;
    }
    let (doc, name) = match reference.split_once('#') {
        Some((doc, name)) => (if doc.is_empty() { base } else { doc }, name),
        None => (reference, "main"),
    };
    if name.is_empty() || !Nsid::is_valid(doc) {
        return None;
    }
    Some(format!("{doc}#{name}"))
}

/// Reads definitions of one document, naming it in errors.
struct Reader<'a> {
    id: &'a str,
}

type Obj = Map<String, Value>;

impl Reader<'_> {
    fn err(&self, path: &str, message: impl Into<String>) -> LexiconError {
        let message = message.into();
        if path.is_empty() {
            LexiconError::invalid(self.id, message)
        } else {
            LexiconError::invalid(self.id, format!("{path}: {message}"))
        }
    }

    fn obj<'v>(&self, value: &'v Value, path: &str) -> Result<&'v Obj, LexiconError> {
        value
            .as_object()
            .ok_or_else(|| self.err(path, "must be an object"))
    }

    fn type_of<'v>(&self, obj: &'v Obj, path: &str) -> Result<&'v str, LexiconError> {
        match obj.get("type") {
            Some(Value::String(s)) => Ok(s),
            _ => Err(self.err(path, "type must be a string")),
        }
    }

    fn opt_string(&self, obj: &Obj, key: &str, path: &str) -> Result<Option<String>, LexiconError> {
        match obj.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(self.err(path, format!("{key} must be a string"))),
        }
    }

    fn opt_bool(&self, obj: &Obj, key: &str, path: &str) -> Result<Option<bool>, LexiconError> {
        match obj.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(self.err(path, format!("{key} must be a boolean"))),
        }
    }

    fn opt_i64(&self, obj: &Obj, key: &str, path: &str) -> Result<Option<i64>, LexiconError> {
        match obj.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_i64()
                .map(Some)
                .ok_or_else(|| self.err(path, format!("{key} must be an integer"))),
        }
    }

    fn opt_u64(&self, obj: &Obj, key: &str, path: &str) -> Result<Option<u64>, LexiconError> {
        match obj.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .map(Some)
                .ok_or_else(|| self.err(path, format!("{key} must be a non-negative integer"))),
        }
    }

    fn opt_strings(
        &self,
        obj: &Obj,
        key: &str,
        path: &str,
    ) -> Result<Option<Vec<String>>, LexiconError> {
        match obj.get(key) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| self.err(path, format!("{key} must be an array of strings")))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(self.err(path, format!("{key} must be an array of strings"))),
        }
    }

    fn reference(&self, text: &str, path: &str) -> Result<String, LexiconError> {
        normalize_ref(self.id, text)
            .ok_or_else(|| self.err(path, format!("bad reference {text:?}")))
    }

    fn def(&self, name: &str, value: &Value) -> Result<LexDef, LexiconError> {
        let path = format!("defs/{name}");
        let obj = self.obj(value, &path)?;
        let ty = self.type_of(obj, &path)?;
        let primary = matches!(
            ty,
            "record" | "query" | "procedure" | "subscription" | "permission-set"
        );
        if primary && name != "main" {
            return Err(self.err(&path, format!("a {ty} definition must be named main")));
        }
        Ok(match ty {
            "record" => LexDef::Record(self.record(obj, &path)?),
            "query" => LexDef::Query(self.xrpc(obj, &path, false)?),
            "procedure" => LexDef::Procedure(self.xrpc(obj, &path, true)?),
            "subscription" => LexDef::Subscription(self.subscription(obj, &path)?),
            "permission-set" => LexDef::PermissionSet(match obj.get("permissions") {
                Some(Value::Array(items)) => {
                    for (i, item) in items.iter().enumerate() {
                        let p = self.obj(item, &format!("{path}/permissions/{i}"))?;
                        if self.type_of(p, &path)? != "permission" {
                            return Err(self.err(&path, "permissions must have type permission"));
                        }
                        if !matches!(p.get("resource"), Some(Value::String(_))) {
                            return Err(self.err(&path, "a permission must name its resource"));
                        }
                    }
                    items.clone()
                }
                _ => return Err(self.err(&path, "permissions must be an array")),
            }),
            "token" => LexDef::Token,
            "ref" | "union" | "unknown" | "params" | "permission" => {
                return Err(self.err(&path, format!("type {ty} is not allowed as a definition")))
            }
            _ => LexDef::Schema(self.schema(value, &path)?),
        })
    }

    fn record(&self, obj: &Obj, path: &str) -> Result<LexRecord, LexiconError> {
        let key = self.opt_string(obj, "key", path)?;
        let record_path = format!("{path}/record");
        let record_value = obj
            .get("record")
            .ok_or_else(|| self.err(path, "record is missing"))?;
        let record_obj = self.obj(record_value, &record_path)?;
        if self.type_of(record_obj, &record_path)? != "object" {
            return Err(self.err(&record_path, "type must be object"));
        }
        Ok(LexRecord {
            key,
            record: self.object(record_obj, &record_path)?,
        })
    }

    fn xrpc(&self, obj: &Obj, path: &str, has_input: bool) -> Result<LexXrpcBody, LexiconError> {
        Ok(LexXrpcBody {
            parameters: self.opt_params(obj, path)?,
            input: if has_input {
                self.opt_body(obj, "input", path)?
            } else {
                None
            },
            output: self.opt_body(obj, "output", path)?,
            errors: self.error_names(obj, path)?,
        })
    }

    fn subscription(&self, obj: &Obj, path: &str) -> Result<LexSubscription, LexiconError> {
        let message = match obj.get("message") {
            None => None,
            Some(v) => {
                let mpath = format!("{path}/message");
                let m = self.obj(v, &mpath)?;
                match m.get("schema") {
                    None => None,
                    Some(s) => Some(self.body_schema(s, &format!("{mpath}/schema"))?),
                }
            }
        };
        Ok(LexSubscription {
            parameters: self.opt_params(obj, path)?,
            message,
            errors: self.error_names(obj, path)?,
        })
    }

    fn error_names(&self, obj: &Obj, path: &str) -> Result<Vec<String>, LexiconError> {
        match obj.get("errors") {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|e| match e.get("name") {
                    Some(Value::String(s)) => Ok(s.clone()),
                    _ => Err(self.err(path, "errors must have a name")),
                })
                .collect(),
            Some(_) => Err(self.err(path, "errors must be an array")),
        }
    }

    fn opt_params(&self, obj: &Obj, path: &str) -> Result<Option<LexParams>, LexiconError> {
        let Some(value) = obj.get("parameters") else {
            return Ok(None);
        };
        let ppath = format!("{path}/parameters");
        let p = self.obj(value, &ppath)?;
        if self.type_of(p, &ppath)? != "params" {
            return Err(self.err(&ppath, "type must be params"));
        }
        let required = self.opt_strings(p, "required", &ppath)?.unwrap_or_default();
        let mut properties = BTreeMap::new();
        if let Some(props) = p.get("properties") {
            for (key, prop) in self.obj(props, &ppath)? {
                let prop_path = format!("{ppath}/properties/{key}");
                let schema = self.schema(prop, &prop_path)?;
                let allowed = match &schema {
                    LexSchema::Boolean(_)
                    | LexSchema::Integer(_)
                    | LexSchema::String(_)
                    | LexSchema::Unknown => true,
                    LexSchema::Array(a) => matches!(
                        a.items,
                        LexSchema::Boolean(_)
                            | LexSchema::Integer(_)
                            | LexSchema::String(_)
                            | LexSchema::Unknown
                    ),
                    _ => false,
                };
                if !allowed {
                    return Err(self.err(
                        &prop_path,
                        "parameters must be primitives or arrays of primitives",
                    ));
                }
                properties.insert(key.clone(), schema);
            }
        }
        self.check_required(&required, &properties, &ppath)?;
        Ok(Some(LexParams {
            required,
            properties,
        }))
    }

    fn opt_body(&self, obj: &Obj, key: &str, path: &str) -> Result<Option<LexBody>, LexiconError> {
        let Some(value) = obj.get(key) else {
            return Ok(None);
        };
        let bpath = format!("{path}/{key}");
        let b = self.obj(value, &bpath)?;
        let encoding = match b.get("encoding") {
            Some(Value::String(s)) => s.clone(),
            _ => return Err(self.err(&bpath, "encoding must be a string")),
        };
        let schema = match b.get("schema") {
            None => None,
            Some(s) => Some(self.body_schema(s, &format!("{bpath}/schema"))?),
        };
        Ok(Some(LexBody { encoding, schema }))
    }

    fn body_schema(&self, value: &Value, path: &str) -> Result<LexSchema, LexiconError> {
        let schema = self.schema(value, path)?;
        match schema {
            LexSchema::Object(_) | LexSchema::Ref(_) | LexSchema::Union(_) => Ok(schema),
            other => Err(self.err(
                path,
                format!(
                    "a body schema must be an object, ref or union, not {}",
                    other.type_name()
                ),
            )),
        }
    }

    fn check_required(
        &self,
        required: &[String],
        properties: &BTreeMap<String, LexSchema>,
        path: &str,
    ) -> Result<(), LexiconError> {
        for field in required {
            if !properties.contains_key(field) {
                return Err(self.err(path, format!("required field {field:?} not defined")));
            }
        }
        Ok(())
    }

    fn object(&self, obj: &Obj, path: &str) -> Result<LexObject, LexiconError> {
        let required = self.opt_strings(obj, "required", path)?.unwrap_or_default();
        let nullable = self.opt_strings(obj, "nullable", path)?.unwrap_or_default();
        let mut properties = BTreeMap::new();
        if let Some(props) = obj.get("properties") {
            for (key, prop) in self.obj(props, path)? {
                properties.insert(
                    key.clone(),
                    self.schema(prop, &format!("{path}/properties/{key}"))?,
                );
            }
        }
        self.check_required(&required, &properties, path)?;
        Ok(LexObject {
            required,
            nullable,
            properties,
        })
    }

    /// A data schema inside a definition (object property, array items,
    /// body schema) or a data-type definition.
    fn schema(&self, value: &Value, path: &str) -> Result<LexSchema, LexiconError> {
        let obj = self.obj(value, path)?;
        let ty = self.type_of(obj, path)?;
        Ok(match ty {
            "boolean" => LexSchema::Boolean(LexBoolean {
                default: self.opt_bool(obj, "default", path)?,
                const_value: self.opt_bool(obj, "const", path)?,
            }),
            "integer" => LexSchema::Integer(LexInteger {
                minimum: self.opt_i64(obj, "minimum", path)?,
                maximum: self.opt_i64(obj, "maximum", path)?,
                enum_values: match obj.get("enum") {
                    None => None,
                    Some(Value::Array(items)) => Some(
                        items
                            .iter()
                            .map(|v| {
                                v.as_i64()
                                    .ok_or_else(|| self.err(path, "enum must hold integers"))
                            })
                            .collect::<Result<Vec<_>, _>>()?,
                    ),
                    Some(_) => return Err(self.err(path, "enum must be an array")),
                },
                const_value: self.opt_i64(obj, "const", path)?,
                default: self.opt_i64(obj, "default", path)?,
            }),
            "string" => {
                let format = match self.opt_string(obj, "format", path)? {
                    None => None,
                    Some(name) => Some(StringFormat::from_name(&name).ok_or_else(|| {
                        self.err(path, format!("unknown string format {name:?}"))
                    })?),
                };
                LexSchema::String(LexString {
                    format,
                    min_length: self.opt_u64(obj, "minLength", path)?,
                    max_length: self.opt_u64(obj, "maxLength", path)?,
                    min_graphemes: self.opt_u64(obj, "minGraphemes", path)?,
                    max_graphemes: self.opt_u64(obj, "maxGraphemes", path)?,
                    enum_values: self.opt_strings(obj, "enum", path)?,
                    const_value: self.opt_string(obj, "const", path)?,
                    default: self.opt_string(obj, "default", path)?,
                    known_values: self
                        .opt_strings(obj, "knownValues", path)?
                        .unwrap_or_default(),
                })
            }
            "bytes" => LexSchema::Bytes(LexBytes {
                min_length: self.opt_u64(obj, "minLength", path)?,
                max_length: self.opt_u64(obj, "maxLength", path)?,
            }),
            "cid-link" => LexSchema::CidLink,
            "blob" => LexSchema::Blob(LexBlob {
                accept: self.opt_strings(obj, "accept", path)?,
                max_size: self.opt_u64(obj, "maxSize", path)?,
            }),
            "unknown" => LexSchema::Unknown,
            "object" => LexSchema::Object(self.object(obj, path)?),
            "array" => {
                let items = obj
                    .get("items")
                    .ok_or_else(|| self.err(path, "items is missing"))?;
                LexSchema::Array(Box::new(LexArray {
                    items: self.schema(items, &format!("{path}/items"))?,
                    min_length: self.opt_u64(obj, "minLength", path)?,
                    max_length: self.opt_u64(obj, "maxLength", path)?,
                }))
            }
            "ref" => match obj.get("ref") {
                Some(Value::String(r)) => LexSchema::Ref(self.reference(r, path)?),
                _ => return Err(self.err(path, "ref must be a string")),
            },
            "union" => {
                let refs = self
                    .opt_strings(obj, "refs", path)?
                    .ok_or_else(|| self.err(path, "refs is missing"))?
                    .iter()
                    .map(|r| self.reference(r, path))
                    .collect::<Result<Vec<_>, _>>()?;
                LexSchema::Union(LexUnion {
                    refs,
                    closed: self.opt_bool(obj, "closed", path)?.unwrap_or(false),
                })
            }
            other => return Err(self.err(path, format!("type {other} is not allowed here"))),
        })
    }
}
