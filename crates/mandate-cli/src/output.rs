//! How the CLI reports results and errors: human text, or JSON with `--json`, using
//! the same error envelope as the REST API.

use mandate_core::ErrorCode;
use serde_json::{json, Value};

/// A CLI failure: a stable code, a message and structured details (the same three
/// fields as the API's envelope; a daemon's envelope is passed through as it came).
#[derive(Debug)]
pub(crate) struct CliError {
    pub(crate) code: ErrorCode,
    pub(crate) message: String,
    pub(crate) details: Value,
}

impl CliError {
    pub(crate) fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        CliError { code, message: message.into(), details: json!({}) }
    }

    pub(crate) fn with_details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        CliError::new(ErrorCode::InvalidInput, message)
    }

    pub(crate) fn envelope(&self) -> Value {
        mandate_core::error_envelope(self.code, &self.message, self.details.clone())
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

impl From<mandate_server::ApiError> for CliError {
    fn from(error: mandate_server::ApiError) -> Self {
        CliError { code: error.code, message: error.message, details: error.details }
    }
}

impl From<mandate_bench::BenchError> for CliError {
    fn from(error: mandate_bench::BenchError) -> Self {
        CliError::new(error.code, error.message)
    }
}

impl From<mandate_mpc::net::Refusal> for CliError {
    fn from(refusal: mandate_mpc::net::Refusal) -> Self {
        CliError::new(refusal.code, refusal.message)
    }
}

pub(crate) type CliResult<T = Value> = Result<T, CliError>;

/// What a command prints on success: its JSON value, and optionally a text of its own
/// for people (otherwise the value is shown one field a line).
pub(crate) struct Report {
    pub(crate) value: Value,
    pub(crate) human: Option<String>,
    /// The process's exit status (0 unless the answer is a refusal a script must see,
    /// e.g. [`EXIT_DENIED`]).
    pub(crate) exit_code: i32,
}

/// The exit status of `mandate policy test` when the policy denies the action (1 is
/// an error, 2 a usage error).
pub(crate) const EXIT_DENIED: i32 = 3;

impl Report {
    /// A report shown as `text` to people and as `value` with `--json`.
    pub(crate) fn with_text(value: Value, text: impl Into<String>) -> Self {
        Report { value, human: Some(text.into()), exit_code: 0 }
    }

    /// The same report, exiting with `code`.
    pub(crate) fn exiting(self, code: i32) -> Self {
        Report { exit_code: code, ..self }
    }
}

impl From<Value> for Report {
    fn from(value: Value) -> Self {
        Report { value, human: None, exit_code: 0 }
    }
}

/// Prints a report.
pub(crate) fn print_report(json_mode: bool, report: &Report) {
    match (&report.human, json_mode) {
        (Some(text), false) => println!("{}", text.trim_end()),
        _ => print_ok(json_mode, &report.value),
    }
}

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
        if error.details.as_object().is_some_and(|details| !details.is_empty()) {
            eprintln!("details: {}", error.details);
        }
    }
    1
}
