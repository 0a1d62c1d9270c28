//! The conversions every identifier type shares, written once.
//!
//! A type using [`impl_string_traits!`] provides two inherent functions:
//! `fn parse_owned(input: String) -> Result<Self>` (validation, possibly
//! normalization) and `fn as_str(&self) -> &str`. The macro adds `FromStr`,
//! `TryFrom<&str>`, `TryFrom<String>`, `Display`, `AsRef<str>`, comparisons
//! with `str`, `From<T> for String`, and serde as a plain string (validated
//! on the way in).
//!
//! A type that is a string checked by a module-level
//! `fn check(&str) -> Result<(), &'static str>` and stored as is uses
//! [`impl_checked_string!`] instead, which also writes `new`, `parse_owned`,
//! `is_valid`, `as_str` and `into_string`.

macro_rules! impl_string_traits {
    ($ty:ident, $expecting:expr) => {
        impl ::std::str::FromStr for $ty {
            type Err = $crate::Error;
            fn from_str(input: &str) -> ::std::result::Result<Self, Self::Err> {
                Self::parse_owned(input.to_owned())
            }
        }

        impl ::std::convert::TryFrom<&str> for $ty {
            type Error = $crate::Error;
            fn try_from(input: &str) -> ::std::result::Result<Self, Self::Error> {
                Self::parse_owned(input.to_owned())
            }
        }

        impl ::std::convert::TryFrom<String> for $ty {
            type Error = $crate::Error;
            fn try_from(input: String) -> ::std::result::Result<Self, Self::Error> {
                Self::parse_owned(input)
            }
        }

        impl ::std::fmt::Display for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.pad(self.as_str())
            }
        }

        impl ::std::convert::AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }

        impl ::std::cmp::PartialEq<str> for $ty {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl ::std::cmp::PartialEq<&str> for $ty {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl ::std::convert::From<$ty> for String {
            fn from(value: $ty) -> String {
                value.as_str().to_owned()
            }
        }

        impl ::serde::Serialize for $ty {
            fn serialize<S: ::serde::Serializer>(
                &self,
                serializer: S,
            ) -> ::std::result::Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $ty {
            fn deserialize<D: ::serde::Deserializer<'de>>(
                deserializer: D,
            ) -> ::std::result::Result<Self, D::Error> {
                struct Visit;
                impl ::serde::de::Visitor<'_> for Visit {
                    type Value = $ty;
                    fn expecting(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_str<E: ::serde::de::Error>(
                        self,
                        v: &str,
                    ) -> ::std::result::Result<$ty, E> {
                        $ty::parse_owned(v.to_owned()).map_err(E::custom)
                    }
                    fn visit_string<E: ::serde::de::Error>(
                        self,
                        v: String,
                    ) -> ::std::result::Result<$ty, E> {
                        $ty::parse_owned(v).map_err(E::custom)
                    }
                }
                deserializer.deserialize_string(Visit)
            }
        }
    };
}

/// For `struct $ty(String)` whose module has `fn check(&str) ->
/// Result<(), &'static str>`: the constructors and accessors (a failed check
/// is `Error::$variant { input, reason }`), then [`impl_string_traits!`].
/// `$article $noun` names a value in the docs ("a", "DID"); serde expects
/// "`$article $noun` string".
macro_rules! impl_checked_string {
    ($ty:ident, $variant:ident, $article:literal, $noun:literal) => {
        impl $ty {
            #[doc = concat!("Validates `input` as ", $article, " ", $noun, ".")]
            pub fn new(input: &str) -> $crate::Result<Self> {
                Self::parse_owned(input.to_owned())
            }

            pub(crate) fn parse_owned(input: String) -> $crate::Result<Self> {
                match check(&input) {
                    Ok(()) => Ok($ty(input)),
                    Err(reason) => Err($crate::Error::$variant { input, reason }),
                }
            }

            #[doc = concat!("Whether `input` is a valid ", $noun, ".")]
            pub fn is_valid(input: &str) -> bool {
                check(input).is_ok()
            }

            #[doc = concat!("The ", $noun, " as a string.")]
            pub fn as_str(&self) -> &str {
                &self.0
            }

            #[doc = concat!("The ", $noun, " as an owned string.")]
            pub fn into_string(self) -> String {
                self.0
            }
        }

        $crate::string_traits::impl_string_traits!($ty, concat!($article, " ", $noun, " string"));
    };
}

pub(crate) use impl_checked_string;
pub(crate) use impl_string_traits;
