//! Wire types shared by the server and `collabctl`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Longest request line accepted; longer lines get `too_large` and the connection closes.
pub const MAX_LINE: usize = 1024 * 1024;

/// One request line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    #[serde(default)]
    pub id: Value,
    pub method: String,
    #[serde(default)]
    pub params: Value,
}

/// One response line: exactly one of `result` or `error`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Response {
    pub id: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
}

/// A structured error: a stable `code` for scripts, a sentence for people, and the
/// offending parameter when there is one.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl ErrorBody {
    /// An error without a field.
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        ErrorBody { code: code.into(), message: message.into(), field: None }
    }

    /// An error about one parameter.
    pub fn field(code: &str, field: impl Into<String>, message: impl Into<String>) -> Self {
        ErrorBody { code: code.into(), message: message.into(), field: Some(field.into()) }
    }
}

impl Response {
    /// A success.
    pub fn ok(id: Value, result: Value) -> Self {
        Response { id, result: Some(result), error: None }
    }

    /// A failure.
    pub fn err(id: Value, error: ErrorBody) -> Self {
        Response { id, result: None, error: Some(error) }
    }
}
