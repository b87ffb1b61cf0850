//! Where a send's time goes: the send pipeline marks the end of each stage, and the
//! response carries the stages as a standard `Server-Timing` header
//! (`auth;dur=0.1, decode;dur=0.2, chain;dur=1.9, reserve;dur=2.4, sign;dur=17.0, …`,
//! milliseconds), which `mandate bench send` aggregates. `auth` runs from the
//! request's arrival (stamped by the router's middleware) to the handler (credential
//! and body read), `decode` from there to the pipeline. Outside a timed request,
//! marks cost nothing.

use std::cell::RefCell;
use std::future::Future;
use std::time::Instant;

use axum::Extension;

use axum::http::HeaderValue;

struct Stages {
    last: Instant,
    spent: Vec<(&'static str, f64)>,
}

tokio::task_local! {
    static STAGES: RefCell<Stages>;
}

/// When a request arrived (a request extension set by the router's middleware).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestStarted(pub(crate) Instant);

/// The stages before the pipeline: `auth` up to the handler, then `decode`.
pub(crate) struct Prelude {
    entered: Instant,
    auth_ms: Option<f64>,
}

impl Prelude {
    /// At the handler's entry.
    pub(crate) fn enter(started: Option<Extension<RequestStarted>>) -> Prelude {
        let entered = Instant::now();
        let auth_ms = started.map(|Extension(RequestStarted(at))| entered.duration_since(at).as_secs_f64() * 1e3);
        Prelude { entered, auth_ms }
    }

    /// When decoding is done: the `Server-Timing` entries so far.
    pub(crate) fn decoded(self) -> String {
        let decode = format!("decode;dur={:.2}", self.entered.elapsed().as_secs_f64() * 1e3);
        match self.auth_ms {
            Some(auth) => format!("auth;dur={auth:.2}, {decode}"),
            None => decode,
        }
    }
}

/// Records the time since the previous mark (or the start) under `stage`; repeated
/// stages (a retried reservation) add up.
pub(crate) fn mark(stage: &'static str) {
    let _ = STAGES.try_with(|stages| {
        let mut stages = stages.borrow_mut();
        let now = Instant::now();
        let ms = now.duration_since(stages.last).as_secs_f64() * 1e3;
        stages.last = now;
        match stages.spent.iter_mut().find(|(name, _)| *name == stage) {
            Some((_, total)) => *total += ms,
            None => stages.spent.push((stage, ms)),
        }
    });
}

/// Runs `work` with a stopwatch; returns its output and the `Server-Timing` value.
pub(crate) async fn timed<F: Future>(work: F) -> (F::Output, Option<HeaderValue>) {
    let stages = RefCell::new(Stages { last: Instant::now(), spent: Vec::new() });
    STAGES
        .scope(stages, async {
            let output = work.await;
            let header = STAGES.with(|stages| {
                let text: Vec<String> =
                    stages.borrow().spent.iter().map(|(name, ms)| format!("{name};dur={ms:.2}")).collect();
                HeaderValue::from_str(&text.join(", ")).ok()
            });
            (output, header)
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stages_add_up_in_order_and_marks_outside_a_timed_request_are_ignored() {
        mark("ignored");
        let ((), header) = timed(async {
            mark("first");
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            mark("second");
            mark("first");
        })
        .await;
        let text = header.unwrap().to_str().unwrap().to_string();
        let names: Vec<&str> = text.split(", ").map(|stage| stage.split(';').next().unwrap()).collect();
        assert_eq!(names, ["first", "second"], "{text}");
        let second: f64 = text.split("second;dur=").nth(1).unwrap().parse().unwrap();
        assert!(second >= 5.0, "{text}");
    }
}
