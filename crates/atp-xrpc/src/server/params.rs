//! Query-string parameters, decoded into a serde type.
//!
//! Every value arrives as a string; the target type decides what it becomes:
//! `true`/`false` for booleans, decimal numbers for integers and floats, a
//! repeated key (`?uri=a&uri=b`) for a `Vec`. A missing key is `None` for an
//! `Option`. Unlike the reference, which coerces leniently and relies on its
//! lexicon validation afterwards, the decoding here is strict: `limit=12abc`
//! is an error rather than 12.

use std::fmt;

use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};

use super::XrpcError;

/// Parameters of a request: the decoded `key=value` pairs of the query
/// string, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueryParams {
    pairs: Vec<(String, String)>,
}

impl QueryParams {
    /// Decodes a raw query string (without the `?`). `+` is a space and
    /// `%XX` escapes are decoded; invalid UTF-8 is an error.
    pub fn parse(query: &str) -> Result<Self, XrpcError> {
        let mut pairs = Vec::new();
        for part in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = part.split_once('=').unwrap_or((part, ""));
            pairs.push((percent_decode(key)?, percent_decode(value)?));
        }
        Ok(QueryParams { pairs })
    }

    /// The pairs, in order.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    /// The first value of a key.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Decodes the parameters into `T` (a struct with named fields); an
    /// error is 400 `InvalidRequest` naming the problem.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, XrpcError> {
        let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
        for (key, value) in &self.pairs {
            match groups.iter_mut().find(|(k, _)| *k == key.as_str()) {
                Some((_, values)) => values.push(value),
                None => groups.push((key, vec![value])),
            }
        }
        T::deserialize(ParamsDeserializer { groups })
            .map_err(|e| XrpcError::invalid_request(format!("invalid params: {}", e.0)))
    }
}

/// Percent-decoding of one query component (`+` is a space).
fn percent_decode(input: &str) -> Result<String, XrpcError> {
    let bytes = atp_syntax::percent_decode(&input.replace('+', " "))
        .ok_or_else(|| XrpcError::invalid_request("invalid percent-encoding"))?;
    String::from_utf8(bytes).map_err(|_| XrpcError::invalid_request("query is not valid UTF-8"))
}

/// A decoding failure (message only).
#[derive(Debug)]
struct ParamError(String);

impl fmt::Display for ParamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParamError {}

impl de::Error for ParamError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        ParamError(msg.to_string())
    }
}

struct ParamsDeserializer<'a> {
    groups: Vec<(&'a str, Vec<&'a str>)>,
}

impl<'de, 'a> de::Deserializer<'de> for ParamsDeserializer<'a> {
    type Error = ParamError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
        visitor.visit_map(GroupsAccess {
            groups: self.groups.into_iter(),
            pending: None,
        })
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

struct GroupsAccess<'a> {
    groups: std::vec::IntoIter<(&'a str, Vec<&'a str>)>,
    pending: Option<Vec<&'a str>>,
}

impl<'de, 'a> de::MapAccess<'de> for GroupsAccess<'a> {
    type Error = ParamError;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, ParamError> {
        match self.groups.next() {
            Some((key, values)) => {
                self.pending = Some(values);
                let key: de::value::StrDeserializer<'_, ParamError> = key.into_deserializer();
                seed.deserialize(key).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: de::DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, ParamError> {
        let values = self.pending.take().unwrap_or_default();
        seed.deserialize(ValuesDeserializer { values })
    }
}

/// All values given for one key.
struct ValuesDeserializer<'a> {
    values: Vec<&'a str>,
}

impl<'a> ValuesDeserializer<'a> {
    fn single(&self) -> Result<&'a str, ParamError> {
        match self.values.as_slice() {
            [one] => Ok(one),
            [] => Err(ParamError("missing value".into())),
            _ => Err(ParamError("expected a single value".into())),
        }
    }

    fn number<T: std::str::FromStr>(&self) -> Result<T, ParamError> {
        let text = self.single()?;
        text.parse()
            .map_err(|_| ParamError(format!("expected a number, got {text:?}")))
    }
}

macro_rules! numbers {
    ($($method:ident => $visit:ident,)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
                visitor.$visit(self.number()?)
            }
        )*
    };
}

impl<'de, 'a> de::Deserializer<'de> for ValuesDeserializer<'a> {
    type Error = ParamError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
        if self.values.len() == 1 {
            visitor.visit_str(self.single()?)
        } else {
            self.deserialize_seq(visitor)
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
        match self.single()? {
            "true" => visitor.visit_bool(true),
            "false" => visitor.visit_bool(false),
            other => Err(ParamError(format!("expected true or false, got {other:?}"))),
        }
    }

    numbers! {
        deserialize_i8 => visit_i8,
        deserialize_i16 => visit_i16,
        deserialize_i32 => visit_i32,
        deserialize_i64 => visit_i64,
        deserialize_u8 => visit_u8,
        deserialize_u16 => visit_u16,
        deserialize_u32 => visit_u32,
        deserialize_u64 => visit_u64,
        deserialize_f32 => visit_f32,
        deserialize_f64 => visit_f64,
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ParamError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
        visitor.visit_seq(de::value::SeqDeserializer::new(
            self.values
                .into_iter()
                .map(|v| ValuesDeserializer { values: vec![v] }),
        ))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ParamError> {
        let text: de::value::StrDeserializer<'_, ParamError> = self.single()?.into_deserializer();
        visitor.visit_enum(text)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
        visitor.visit_str(self.single()?)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
        visitor.visit_string(self.single()?.to_owned())
    }

    serde::forward_to_deserialize_any! {
        i128 u128 char bytes byte_buf unit unit_struct tuple
        tuple_struct map struct identifier ignored_any
    }
}

impl<'de, 'a> IntoDeserializer<'de, ParamError> for ValuesDeserializer<'a> {
    type Deserializer = Self;
    fn into_deserializer(self) -> Self {
        self
    }
}
