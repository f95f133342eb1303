//! Errors the emulated API answers with: Hetzner's codes, messages and `details`, as plain data (the HTTP
//! status is chosen by `http.rs`, so the store knows no HTTP types).

use serde_json::{Value, json};

/// One of Hetzner's error codes. The generic ones have their own variant; operation-specific codes
/// (`server_not_stopped`, `no_subnet_available`, ...) are `Specific` and answered with 422.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Code {
    Unauthorized,
    NotFound,
    InvalidInput,
    JsonError,
    UniquenessError,
    Locked,
    Conflict,
    Protected,
    ResourceLimitExceeded,
    RateLimitExceeded,
    ServiceError,
    ServerError,
    Timeout,
    ResourceInUse,
    Specific(&'static str),
}

impl Code {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Code::Unauthorized => "unauthorized",
            Code::NotFound => "not_found",
            Code::InvalidInput => "invalid_input",
            Code::JsonError => "json_error",
            Code::UniquenessError => "uniqueness_error",
            Code::Locked => "locked",
            Code::Conflict => "conflict",
            Code::Protected => "protected",
            Code::ResourceLimitExceeded => "resource_limit_exceeded",
            Code::RateLimitExceeded => "rate_limit_exceeded",
            Code::ServiceError => "service_error",
            Code::ServerError => "server_error",
            Code::Timeout => "timeout",
            Code::ResourceInUse => "resource_in_use",
            Code::Specific(code) => code,
        }
    }
}

/// An error answer: code, message and `details` (`null` unless the code defines them).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ApiError {
    pub(crate) code: Code,
    pub(crate) message: String,
    pub(crate) details: Value,
}

impl ApiError {
    pub(crate) fn new(code: Code, message: impl Into<String>) -> ApiError {
        ApiError { code, message: message.into(), details: Value::Null }
    }

    pub(crate) fn not_found(kind: &str, id: u64) -> ApiError {
        ApiError::new(Code::NotFound, format!("{kind} with ID '{id}' not found"))
    }

    /// `invalid_input` with `details.fields`, as Hetzner names the offending field.
    pub(crate) fn invalid_field(field: &str, message: &str) -> ApiError {
        ApiError {
            code: Code::InvalidInput,
            message: format!("invalid input in field '{field}'"),
            details: json!({ "fields": [{ "name": field, "messages": [message] }] }),
        }
    }

    /// `uniqueness_error` naming the field that must be unique.
    pub(crate) fn not_unique(field: &str, value: &str) -> ApiError {
        ApiError {
            code: Code::UniquenessError,
            message: format!("{field} '{value}' is already used"),
            details: json!({ "fields": [{ "name": field }] }),
        }
    }

    pub(crate) fn specific(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(Code::Specific(code), message)
    }

    pub(crate) fn protected(kind: &str, id: u64) -> ApiError {
        ApiError::new(Code::Protected, format!("{kind} {id} is protected"))
    }

    pub(crate) fn locked(kind: &str, id: u64) -> ApiError {
        ApiError::new(Code::Locked, format!("{kind} {id} is locked by a running action"))
    }

    /// The body Hetzner sends: `{"error": {"code", "message", "details"}}`.
    pub(crate) fn body(&self) -> Value {
        json!({ "error": { "code": self.code.as_str(), "message": self.message, "details": self.details } })
    }
}
