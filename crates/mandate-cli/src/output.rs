//! How the CLI reports results and errors: human text, or JSON with `--json`, using
//! the same error envelope as the REST API.

use mandate_core::ErrorCode;
use serde_json::{json, Value};

/// A CLI failure: a stable code plus a message.
#[derive(Debug)]
pub(crate) struct CliError {
    pub(crate) code: ErrorCode,
    pub(crate) message: String,
}

impl CliError {
    pub(crate) fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        CliError { code, message: message.into() }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        CliError::new(ErrorCode::InvalidInput, message)
    }

    pub(crate) fn envelope(&self) -> Value {
        json!({"error": {
            "category": self.code.category(),
            "code": self.code.as_str(),
            "message": self.message,
            "required_action": self.code.required_action(),
            "retryable": self.code.retryable(),
            "details": {}
        }})
    }
}

impl From<mandate_mpc::MpcError> for CliError {
    fn from(error: mandate_mpc::MpcError) -> Self {
        CliError::new(error.code(), error.to_string())
    }
}

impl From<mandate_chain::ChainError> for CliError {
    fn from(error: mandate_chain::ChainError) -> Self {
        CliError::new(error.code(), error.to_string())
    }
}

impl From<mandate_mpc::net::Refusal> for CliError {
    fn from(refusal: mandate_mpc::net::Refusal) -> Self {
        CliError::new(refusal.code, refusal.message)
    }
}

pub(crate) type CliResult<T = Value> = Result<T, CliError>;

/// Prints a success value.
pub(crate) fn print_ok(json_mode: bool, value: &Value) {
    if json_mode {
        println!("{value}");
    } else if let Some(object) = value.as_object() {
        for (key, field) in object {
            match field {
                Value::String(text) => println!("{key}: {text}"),
                other => println!("{key}: {other}"),
            }
        }
    } else {
        println!("{value}");
    }
}

/// Prints an error; returns the process exit code.
pub(crate) fn print_err(json_mode: bool, error: &CliError) -> i32 {
    if json_mode {
        println!("{}", error.envelope());
    } else {
        eprintln!("error[{}]: {}", error.code, error.message);
    }
    1
}
