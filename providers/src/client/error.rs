//! Errors of the API client: what terrace was doing, on which resource, and what Hetzner answered
//! (status, error code, message). Built from Hetzner's error envelope
//! `{"error": {"code": "...", "message": "...", "details": {...}}}`.

use std::time::Duration;

use reqwest::StatusCode;

use super::Operation;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.describe())]
pub struct ApiError {
    pub operation: String,
    pub resource: Option<String>,
    /// The HTTP status, when there was a response.
    pub status: Option<u16>,
    /// Hetzner's error code (`uniqueness_error`, `locked`, ...), or terrace's for transport
    /// problems (`connection`, `timeout`, `json_error`, `action_error`, `action_timeout`).
    pub code: String,
    pub message: String,
    /// Field problems of an `invalid_input`: `name: is already used`.
    pub fields: Vec<String>,
    pub note: Option<String>,
}

impl ApiError {
    fn base(operation: &Operation, status: Option<u16>, code: &str, message: String) -> Self {
        Self {
            operation: operation.what.clone(),
            resource: operation.resource.clone(),
            status,
            code: code.to_owned(),
            message,
            fields: Vec::new(),
            note: None,
        }
    }

    /// An error response: Hetzner's envelope when it is one, the status and body otherwise.
    pub(crate) fn from_response(operation: &Operation, status: StatusCode, body: &str) -> Self {
        let parsed: Option<serde_json::Value> = serde_json::from_str(body).ok();
        let envelope = parsed.as_ref().and_then(|v| v.get("error"));
        let code = envelope.and_then(|e| e.get("code")).and_then(|c| c.as_str());
        let message = envelope.and_then(|e| e.get("message")).and_then(|m| m.as_str());
        let mut error = match (code, message) {
            (Some(code), message) => {
                Self::base(operation, Some(status.as_u16()), code, message.unwrap_or("").to_owned())
            }
            _ => {
                let code = match status.as_u16() {
                    429 => "rate_limit_exceeded",
                    500..=599 => "service_error",
                    _ => "http_error",
                };
                let excerpt: String = body.chars().take(200).collect();
                Self::base(operation, Some(status.as_u16()), code, excerpt)
            }
        };
        if let Some(fields) = envelope.and_then(|e| e.pointer("/details/fields")).and_then(|f| f.as_array()) {
            for field in fields {
                let name = field.get("name").and_then(|n| n.as_str()).unwrap_or("?");
                let messages: Vec<&str> = field
                    .get("messages")
                    .and_then(|m| m.as_array())
                    .into_iter()
                    .flatten()
                    .filter_map(|m| m.as_str())
                    .collect();
                error.fields.push(format!("{name}: {}", messages.join("; ")));
            }
        }
        error
    }

    pub(crate) fn transport(operation: &Operation, error: &reqwest::Error) -> Self {
        let code = if error.is_timeout() { "timeout" } else { "connection" };
        // reqwest's message names the URL, never the headers: the token stays out.
        Self::base(operation, None, code, error.to_string())
    }

    /// The API answered, but its answer could not be read: final, since the request was carried
    /// out (or refused) and asking again may do it twice.
    pub(crate) fn unread(operation: &Operation, status: StatusCode, error: &reqwest::Error) -> Self {
        Self::base(
            operation,
            Some(status.as_u16()),
            "response_unread",
            format!(
                "the API answered {status}, but its answer could not be read ({error}): the request may have been \
                 carried out; the next run's refresh finds what it made"
            ),
        )
    }

    pub(crate) fn body(operation: &Operation, status: StatusCode, problem: &str) -> Self {
        Self::base(operation, Some(status.as_u16()), "json_error", format!("the response is not JSON: {problem}"))
    }

    pub(crate) fn rate_limited(operation: &Operation, wait: Duration) -> Self {
        Self::base(
            operation,
            Some(429),
            "rate_limit_exceeded",
            format!("the rate limit recovers only in {} s, longer than terrace waits", wait.as_secs()),
        )
    }

    pub(crate) fn action(operation: &Operation, code: &str, message: String) -> Self {
        Self::base(operation, None, code, message)
    }

    /// A problem terrace found itself, with no response behind it (an object gone meanwhile).
    pub fn local(operation: &Operation, code: &str, message: &str) -> Self {
        Self::base(operation, None, code, message.to_owned())
    }

    #[cfg(test)]
    pub(crate) fn with_status(mut self, status: Option<u16>) -> Self {
        self.status = status;
        self
    }

    pub(crate) fn with_note(mut self, note: &str) -> Self {
        self.note = Some(note.to_owned());
        self
    }

    fn describe(&self) -> String {
        let mut text = self.operation.clone();
        if let Some(resource) = &self.resource {
            text.push_str(&format!(" `{resource}`"));
        }
        text.push_str(": ");
        match self.status {
            Some(status) => text.push_str(&format!("Hetzner answered {status} {}", self.code)),
            None => text.push_str(&self.code),
        }
        if !self.message.is_empty() {
            text.push_str(&format!(": {}", self.message));
        }
        if !self.fields.is_empty() {
            text.push_str(&format!(" ({})", self.fields.join(", ")));
        }
        if let Some(note) = &self.note {
            text.push_str(&format!("; {note}"));
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hetzner_errors_name_the_operation_the_resource_and_the_code() {
        let op = Operation::new("create server").on("fastbots-app");
        let body = r#"{"error": {"code": "invalid_input", "message": "invalid input in field 'name'",
            "details": {"fields": [{"name": "name", "messages": ["is already used"]}]}}}"#;
        let error = ApiError::from_response(&op, StatusCode::UNPROCESSABLE_ENTITY, body);
        assert_eq!(error.code, "invalid_input");
        assert_eq!(
            error.to_string(),
            "create server `fastbots-app`: Hetzner answered 422 invalid_input: invalid input in field 'name' (name: is already used)"
        );
        let plain = ApiError::from_response(&op, StatusCode::BAD_GATEWAY, "<html>bad gateway</html>");
        assert_eq!(plain.code, "service_error");
    }
}
