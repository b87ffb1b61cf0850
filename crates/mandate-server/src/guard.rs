//! What stands in front of the handlers: the `Host` check (DNS rebinding) on every
//! route, and the limiter of failed operator logins.
//!
//! A password check costs an Argon2id run (64 MiB, ~0.6 s), so checks run one at a
//! time behind a queue of bounded length, and each client (peer IP) has a budget of
//! failures per window. A client over its budget, or arriving at a full queue, gets
//! `429 RATE_LIMITED` with `retry_after` at once, without a password check. Nothing
//! else waits for this queue: requests with a token or an operator key (an emergency
//! freeze among them) are checked by a hash lookup.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::header::HOST;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use mandate_core::ErrorCode;

use crate::error::{ApiError, ApiResult};
use crate::task::blocking;

/// Failed logins a client may make within [`FAILURE_WINDOW_SECS`].
pub(crate) const FAILURE_BUDGET: usize = 5;
/// The window of [`FAILURE_BUDGET`].
pub(crate) const FAILURE_WINDOW_SECS: u64 = 60;
/// Password checks waiting or running at once, all clients together.
const MAX_QUEUED: usize = 8;
/// Password checks waiting or running at once for one client.
const MAX_QUEUED_PER_CLIENT: usize = 2;
/// Clients with recent failures remembered at once (beyond it, new clients are refused).
const MAX_CLIENTS: usize = 4096;
/// What a refused client is told to wait when the queue is full.
const QUEUE_RETRY_SECS: u64 = 2;

/// The peer address of a request (`::` when unknown, e.g. in-process calls).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ClientIp(pub(crate) IpAddr);

impl ClientIp {
    /// The peer of `parts`, from the connection the server accepted.
    pub(crate) fn of(parts: &Parts) -> ClientIp {
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0.ip())
            .unwrap_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED));
        ClientIp(ip)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp::of(parts))
    }
}

#[derive(Default)]
struct Client {
    /// Times of recent failures, oldest first.
    failures: VecDeque<u64>,
    /// Password checks of this client waiting or running.
    queued: usize,
}

impl Client {
    fn forget_before(&mut self, now: u64) {
        while self.failures.front().is_some_and(|at| at + FAILURE_WINDOW_SECS <= now) {
            self.failures.pop_front();
        }
    }

    /// Seconds until the client may try again, if it is over its budget.
    fn over_budget(&mut self, now: u64) -> Option<u64> {
        self.forget_before(now);
        if self.failures.len() < FAILURE_BUDGET {
            return None;
        }
        self.failures.front().map(|oldest| (oldest + FAILURE_WINDOW_SECS).saturating_sub(now).max(1))
    }
}

#[derive(Default)]
struct Table {
    clients: HashMap<IpAddr, Client>,
    queued: usize,
}

impl Table {
    fn prune(&mut self, now: u64) {
        self.clients.retain(|_, client| {
            client.forget_before(now);
            client.queued > 0 || !client.failures.is_empty()
        });
    }

    fn client(&mut self, ip: IpAddr, now: u64) -> ApiResult<&mut Client> {
        if !self.clients.contains_key(&ip) && self.clients.len() >= MAX_CLIENTS {
            self.prune(now);
            if self.clients.len() >= MAX_CLIENTS {
                return Err(ApiError::rate_limited("too many clients are failing to log in; retry later", 1));
            }
        }
        Ok(self.clients.entry(ip).or_default())
    }
}

/// Limits failed operator logins per client and queues password checks.
pub(crate) struct LoginLimiter {
    /// One password check at a time (Argon2id uses 64 MiB; also slows guessing).
    gate: tokio::sync::Semaphore,
    table: Mutex<Table>,
}

impl Default for LoginLimiter {
    fn default() -> Self {
        LoginLimiter { gate: tokio::sync::Semaphore::new(1), table: Mutex::new(Table::default()) }
    }
}

fn over_budget_error(secs: u64) -> ApiError {
    ApiError::rate_limited(
        format!("too many failed logins from this client; retry in {secs} s (an operator key or token is not limited)"),
        secs,
    )
}

/// A place in the password-check queue; given back when dropped (also when the
/// client goes away while waiting).
struct Slot<'a> {
    limiter: &'a LoginLimiter,
    ip: IpAddr,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut table = self.limiter.table.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        table.queued = table.queued.saturating_sub(1);
        if let Some(client) = table.clients.get_mut(&self.ip) {
            client.queued = client.queued.saturating_sub(1);
        }
    }
}

impl LoginLimiter {
    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        // Every update leaves the table consistent, so a poisoned lock is still usable.
        self.table.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `RATE_LIMITED` if `client` has used its failure budget.
    pub(crate) fn refuse_if_over_budget(&self, client: ClientIp, now: u64) -> ApiResult<()> {
        let mut table = self.table();
        match table.clients.get_mut(&client.0).and_then(|c| c.over_budget(now)) {
            Some(secs) => Err(over_budget_error(secs)),
            None => Ok(()),
        }
    }

    /// Counts a failed login (a wrong password, an unknown, revoked or expired key).
    pub(crate) fn record_failure(&self, client: ClientIp, now: u64) {
        let mut table = self.table();
        if let Ok(entry) = table.client(client.0, now) {
            entry.failures.push_back(now);
            // Only the budget's worth is needed to decide.
            while entry.failures.len() > FAILURE_BUDGET {
                entry.failures.pop_front();
            }
        }
    }

    fn enter(&self, client: ClientIp, now: u64) -> ApiResult<Slot<'_>> {
        let mut table = self.table();
        if table.queued >= MAX_QUEUED {
            return Err(ApiError::rate_limited("the login queue is full; retry shortly", QUEUE_RETRY_SECS));
        }
        let entry = table.client(client.0, now)?;
        if let Some(secs) = entry.over_budget(now) {
            return Err(over_budget_error(secs));
        }
        if entry.queued >= MAX_QUEUED_PER_CLIENT {
            return Err(ApiError::rate_limited("this client has logins waiting already; retry shortly", 1));
        }
        entry.queued += 1;
        table.queued += 1;
        Ok(Slot { limiter: self, ip: client.0 })
    }

    /// Runs the password check `check` for `client` in turn, unless the client is over
    /// its budget or the queue is full (`RATE_LIMITED`). A `false` counts as a failure.
    pub(crate) async fn check_password(
        &self,
        client: ClientIp,
        now: impl Fn() -> u64,
        check: impl FnOnce() -> ApiResult<bool> + Send + 'static,
    ) -> ApiResult<bool> {
        let _slot = self.enter(client, now())?;
        let _permit = self.gate.acquire().await.map_err(|_| ApiError::internal("login gate closed"))?;
        // Failures recorded while this one waited count too.
        self.refuse_if_over_budget(client, now())?;
        let ok = blocking(check).await?;
        if !ok {
            self.record_failure(client, now());
        }
        Ok(ok)
    }
}

/// The `Host` names the daemon answers to: the loopback names, the listen address,
/// and any the operator added (`--allowed-host`). An entry without a port matches
/// every port.
#[derive(Debug, Clone)]
pub(crate) struct AllowedHosts(Arc<Vec<String>>);

impl AllowedHosts {
    /// The loopback names, `listen` (an IP) and `extra`.
    pub(crate) fn new(listen: IpAddr, extra: &[String]) -> AllowedHosts {
        let mut hosts: Vec<String> = ["localhost", "127.0.0.1", "[::1]"].into_iter().map(String::from).collect();
        hosts.push(match listen {
            IpAddr::V4(ip) => ip.to_string(),
            IpAddr::V6(ip) => format!("[{ip}]"),
        });
        hosts.extend(extra.iter().map(|host| host.trim().to_ascii_lowercase()).filter(|host| !host.is_empty()));
        hosts.sort();
        hosts.dedup();
        AllowedHosts(Arc::new(hosts))
    }

    /// The names, for `/mcp`'s own check.
    pub(crate) fn names(&self) -> Vec<String> {
        self.0.iter().cloned().collect()
    }

    /// Whether a `Host` header value is one of ours.
    pub(crate) fn allows(&self, host: &str) -> bool {
        let host = host.trim().to_ascii_lowercase();
        let name = match host.strip_prefix('[') {
            Some(rest) => rest.split_once(']').map(|(inside, _)| format!("[{inside}]")),
            None => Some(match host.rsplit_once(':') {
                Some((name, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => name.to_string(),
                _ => host.clone(),
            }),
        };
        let Some(name) = name else { return false };
        self.0.iter().any(|allowed| *allowed == host || *allowed == name)
    }
}

/// Refuses a request whose `Host` is not one of ours with `403 HOST_NOT_ALLOWED`: a
/// web page that rebinds its own name to 127.0.0.1 must not reach the API or the
/// dashboard. A request without `Host` (HTTP/1.0; browsers always send it) passes.
pub(crate) async fn check_host(State(allowed): State<AllowedHosts>, request: Request, next: Next) -> Response {
    let host = request.headers().get(HOST).map(|value| value.to_str().unwrap_or(""));
    match host {
        Some(host) if !allowed.allows(host) => ApiError::new(
            ErrorCode::HostNotAllowed,
            "the Host header names a host this daemon does not answer to (DNS-rebinding protection)",
        )
        .into_response(),
        _ => next.run(request).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(last: u8) -> ClientIp {
        ClientIp(IpAddr::from([10, 0, 0, last]))
    }

    #[test]
    fn hosts_match_by_name_with_any_port_or_exactly() {
        let hosts = AllowedHosts::new(IpAddr::from([192, 168, 1, 5]), &["Wallet.Example.com".into()]);
        for ok in ["127.0.0.1:3100", "localhost", "LOCALHOST:1", "[::1]:3100", "192.168.1.5:3100", "wallet.example.com"]
        {
            assert!(hosts.allows(ok), "{ok}");
        }
        for bad in ["evil.example:3100", "127.0.0.1.evil.example", "[::2]:3100", "", "localhost:abc", "[::1"] {
            assert!(!hosts.allows(bad), "{bad}");
        }
        let v6 = AllowedHosts::new("fd00::1".parse().unwrap(), &[]);
        assert!(v6.allows("[fd00::1]:3100") && !v6.allows("fd00::1"));
    }

    #[test]
    fn a_client_over_its_budget_is_refused_with_retry_after_others_are_not() {
        let limiter = LoginLimiter::default();
        for _ in 0..FAILURE_BUDGET {
            assert!(limiter.refuse_if_over_budget(client(1), 100).is_ok());
            limiter.record_failure(client(1), 100);
        }
        let error = limiter.refuse_if_over_budget(client(1), 130).unwrap_err();
        assert_eq!((error.code, error.retry_after), (ErrorCode::RateLimited, Some(30)));
        assert!(limiter.refuse_if_over_budget(client(2), 130).is_ok(), "another client is not affected");
        assert!(limiter.refuse_if_over_budget(client(1), 160).is_ok(), "the window slid past the failures");
    }

    #[test]
    fn the_queue_is_bounded_overall_and_per_client() {
        let limiter = LoginLimiter::default();
        let a = limiter.enter(client(1), 1).unwrap();
        let _b = limiter.enter(client(1), 1).unwrap();
        assert_eq!(limiter.enter(client(1), 1).err().map(|e| e.code), Some(ErrorCode::RateLimited));
        drop(a);
        let _c = limiter.enter(client(1), 1).unwrap();
        let others: Vec<_> = (2..2 + MAX_QUEUED as u8 - 2).map(|n| limiter.enter(client(n), 1).unwrap()).collect();
        let full = limiter.enter(client(200), 1).err().unwrap();
        assert_eq!((full.code, full.retry_after), (ErrorCode::RateLimited, Some(QUEUE_RETRY_SECS)));
        drop(others);
        assert!(limiter.enter(client(200), 1).is_ok());
    }

    #[tokio::test]
    async fn waiting_checks_of_a_client_that_went_over_budget_do_not_run() {
        let limiter = Arc::new(LoginLimiter::default());
        let ran = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        for _ in 0..FAILURE_BUDGET - 1 {
            limiter.record_failure(client(1), 100);
        }
        let permit = limiter.gate.acquire().await.unwrap();
        let mut waiting = Vec::new();
        for _ in 0..MAX_QUEUED_PER_CLIENT {
            let (limiter, ran) = (limiter.clone(), ran.clone());
            waiting.push(tokio::spawn(async move {
                limiter
                    .check_password(
                        client(1),
                        || 100,
                        move || {
                            ran.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            Ok(false)
                        },
                    )
                    .await
            }));
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        drop(permit);
        let mut codes = Vec::new();
        for task in waiting {
            codes.push(task.await.unwrap().map_err(|e| e.code));
        }
        assert_eq!(ran.load(std::sync::atomic::Ordering::SeqCst), 1, "{codes:?}");
        assert!(codes.contains(&Err(ErrorCode::RateLimited)), "{codes:?}");
        assert_eq!(limiter.table().queued, 0, "slots are given back");
    }
}
