//! Errors from reading lexicon documents and validating data against them.

/// An error from the lexicon catalog or from validation.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum LexiconError {
    /// A schema document is not a valid lexicon.
    #[error("invalid lexicon {id}: {message}")]
    InvalidLexicon {
        /// The document id, or `<unknown>` when it has none.
        id: String,
        /// What is wrong, with the path inside the document.
        message: String,
    },
    /// A document with this id is already in the catalog.
    #[error("lexicon {0} has already been registered")]
    Duplicate(String),
    /// A reference names a definition the catalog does not have.
    #[error("Lexicon not found: {0}")]
    DefNotFound(String),
    /// The definition exists but has the wrong type for the operation.
    #[error("Not a {expected} lexicon: {uri}")]
    WrongDefType {
        /// The definition types allowed.
        expected: String,
        /// The definition.
        uri: String,
    },
    /// The data does not match the schema; the message starts with the path
    /// (`Record/text must not be longer than 300 graphemes`).
    #[error("{0}")]
    Validation(String),
}

impl LexiconError {
    pub(crate) fn invalid(id: &str, message: impl Into<String>) -> Self {
        LexiconError::InvalidLexicon {
            id: id.to_owned(),
            message: message.into(),
        }
    }
}
