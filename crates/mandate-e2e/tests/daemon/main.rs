//! The daemon end to end: `mandate init` + `mandate serve` (with its cosigner as a
//! separate process), the CLI as the recovery party creating wallets, agents sending
//! over REST (through `mandate-client`), a real anvil node underneath. How the
//! `mandate` binary is found: [`bin`].
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs,
    unreachable_pub
)]

mod agents;
mod approvals;
mod audit;
mod chains;
mod compromise;
mod cosigner_crash;
mod dashboard;
mod first_run;
mod flows;
mod layout;
mod logs;
mod mcp;
mod nonces;
mod openapi;
mod operator_auth;
mod owner_view;
mod passkeys;
mod policy;
mod replicas;
mod sessions;
mod subaccounts;
mod webhooks;
mod x402;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use alloy_primitives::{Address, U256};
use mandate_client::{Client, Credential, RawRequest, Secret};
use mandate_test_support::{free_port, run_json, spawn_server, spawn_server_logging, wait_until, Anvil, Server};
use serde_json::{json, Value};
use tempfile::TempDir;

pub(crate) const RECOVERY_PASSPHRASE: &str = "recovery passphrase for daemon tests";

/// The `mandate` binary under test: `$MANDATE_BIN` if set; otherwise, once per test
/// binary, `$CARGO build --locked -p mandate-cli --bin mandate` with this test
/// binary's profile and target directory (a no-op when `cargo test --workspace` has
/// built it already), then `<target dir>/<profile>/mandate`.
pub(crate) fn bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(locate_mandate)
}

fn locate_mandate() -> PathBuf {
    if let Some(path) = std::env::var_os("MANDATE_BIN").filter(|path| !path.is_empty()) {
        let path = PathBuf::from(path);
        assert!(path.is_file(), "MANDATE_BIN={} is not a file", path.display());
        return path;
    }
    // This test binary is <target dir>/<profile dir>/deps/<name>-<hash>.
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe.parent().and_then(Path::parent).expect("<target>/<profile>/deps/<test>");
    let target_dir = profile_dir.parent().expect("<target>/<profile>");
    let profile = match profile_dir.file_name().and_then(|name| name.to_str()) {
        Some("debug") => "dev".to_string(),
        Some(other) => other.to_string(),
        None => panic!("no profile directory above {}", exe.display()),
    };
    // Cargo sets CARGO for the tests it runs; `cargo` from PATH otherwise.
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.toml");
    let mut build = Command::new(&cargo);
    build
        .args(["build", "--locked", "-p", "mandate-cli", "--bin", "mandate", "--profile", &profile, "--manifest-path"])
        .arg(&manifest)
        .env("CARGO_TARGET_DIR", target_dir);
    // What cargo set for this test binary (CARGO_PKG_NAME, CARGO_MANIFEST_DIR, …) is
    // not the environment of a build: build scripts that watch those variables would
    // run again, and everything above them be rebuilt, on every test run.
    let per_crate = ["CARGO_PKG_", "CARGO_MANIFEST_", "CARGO_CRATE_", "CARGO_BIN_", "CARGO_PRIMARY_PACKAGE"];
    for (name, _) in std::env::vars_os() {
        let text = name.to_string_lossy();
        if per_crate.iter().any(|prefix| text.starts_with(prefix))
            || ["CARGO_TARGET_TMPDIR", "CARGO_RUSTC_CURRENT_DIR", "OUT_DIR"].contains(&text.as_ref())
        {
            build.env_remove(&name);
        }
    }
    let status = build.status().unwrap_or_else(|e| panic!("running {cargo:?} build: {e}"));
    assert!(status.success(), "building the mandate binary failed ({status}); or set MANDATE_BIN");
    let path = profile_dir.join(format!("mandate{}", std::env::consts::EXE_SUFFIX));
    assert!(path.is_file(), "{} is missing after the build", path.display());
    path
}

/// The daemon's REST API through `mandate-client`, for blocking tests: a client
/// without a credential (each call names its own) and a runtime to run it on.
#[derive(Clone)]
pub(crate) struct Api {
    client: Client,
    runtime: Arc<tokio::runtime::Runtime>,
}

impl Api {
    pub(crate) fn new(url: &str) -> Api {
        let client = Client::with_timeouts(url, Duration::from_secs(5), Duration::from_secs(120)).unwrap();
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        Api { client, runtime: Arc::new(runtime) }
    }

    /// The client, acting as `token` if given.
    pub(crate) fn client(&self, token: Option<&str>) -> Client {
        match token {
            Some(token) => self.client.with_credential(Credential::Session(Secret::new(token))),
            None => self.client.clone(),
        }
    }

    /// Runs a client call to completion.
    pub(crate) fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// Sends `request` as `token`; the answer as it came (panics if none came).
    pub(crate) fn raw(&self, token: Option<&str>, request: RawRequest) -> mandate_client::RawReply {
        self.block_on(self.client(token).send_raw(request)).unwrap()
    }

    /// An HTTP call with a JSON body given as bytes and extra headers; returns
    /// (status, JSON body).
    pub(crate) fn call_with(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let mut request = RawRequest::new(method.parse().unwrap(), path).header("content-type", "application/json");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.body(body);
        }
        let reply = self.raw(token, request);
        let text = String::from_utf8_lossy(&reply.body);
        let status = reply.status;
        (status, serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}")))
    }
}

pub(crate) fn eth(text: &str) -> U256 {
    mandate_core::amount::parse_units(text, 18).unwrap()
}

/// How the cosigner runs, and where the parties live.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum CosignerMode {
    /// `mandate init --dev` puts the three parties in the data directory and
    /// `mandate serve --dev` starts the cosigner.
    Dev,
    /// The production layout: three parties in three directories (`<tmp>/data`,
    /// `<tmp>/cosigner`, `<tmp>/recovery`), paired by public key; the test runs
    /// `mandate cosigner serve` itself (as on its own host).
    External,
}

/// What provisioning the production layout printed: each party's `init`, and each
/// party's `pair` (service, cosigner, recovery).
pub(crate) struct Provisioned {
    pub(crate) inits: [Value; 3],
    pub(crate) pairs: [Value; 3],
}

/// Provisions the production layout under `root` as an operator would on three hosts:
/// `mandate init` (daemon), `mandate cosigner init`, `mandate recovery init`, then each
/// pins the other two's public keys. The cosigner's password file is its own,
/// `<root>/cosigner-password`, outside the daemon's directory. `env` is the daemon
/// commands' extra environment (`MANDATE_DATABASE_URL`).
pub(crate) fn provision_production(
    root: &Path,
    cosigner_addr: &str,
    service_addr: &str,
    env: &[(&str, &str)],
) -> Provisioned {
    let path = |name: &str| root.join(name).display().to_string();
    let run = |args: &[&str]| {
        let (ok, out) = run_json(bin(), args, env);
        assert!(ok, "mandate {args:?}: {out}");
        out
    };
    let service = run(&["init", "--auto-provision", "--data-dir", &path("data"), "--service-addr", service_addr]);
    let cosigner = run(&["cosigner", "init", "--data-dir", &path("cosigner")]);
    let recovery = run(&["recovery", "init", "--dir", &path("recovery")]);
    let key = |init: &Value, role: &str| -> String {
        let party = match init.get("parties") {
            Some(parties) => parties.as_array().unwrap().iter().find(|p| p["role"] == role).unwrap().clone(),
            None => init.clone(),
        };
        party["public_key"].as_str().unwrap().to_string()
    };
    let (s, c, r) = (key(&service, "service"), key(&cosigner, "cosigner"), key(&recovery, "recovery"));
    let pairs = [
        run(&[
            "pair",
            "--data-dir",
            &path("data"),
            "--cosigner-pubkey",
            &c,
            "--cosigner-addr",
            cosigner_addr,
            "--recovery-pubkey",
            &r,
        ]),
        run(&["cosigner", "pair", "--data-dir", &path("cosigner"), "--service-pubkey", &s, "--recovery-pubkey", &r]),
        run(&[
            "recovery",
            "pair",
            "--dir",
            &path("recovery"),
            "--service-pubkey",
            &s,
            "--service-addr",
            service_addr,
            "--cosigner-pubkey",
            &c,
            "--cosigner-addr",
            cosigner_addr,
        ]),
    ];
    let password = root.join("cosigner-password");
    std::fs::write(&password, hex::encode(rand::random::<[u8; 32]>())).unwrap();
    std::fs::set_permissions(&password, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    Provisioned { inits: [service, cosigner, recovery], pairs }
}

/// One daemon with its cosigner and a fresh anvil.
pub(crate) struct Daemon {
    pub(crate) dir: TempDir,
    pub(crate) anvil: Anvil,
    pub(crate) url: String,
    listen: String,
    rpc_url: String,
    mode: CosignerMode,
    cosigner_addr: String,
    server: Option<Server>,
    cosigner: Option<Server>,
    pub(crate) admin: String,
    pub(crate) api: Api,
    serve_args: Vec<String>,
    /// The PostgreSQL database (`MANDATE_DATABASE_URL` of init, pair and serve); `None`: SQLite.
    database: Option<String>,
    /// The production layout's provisioning output (external cosigner only).
    pub(crate) provisioned: Option<Provisioned>,
    /// Where the daemon's stderr goes from its next start (inherited when `None`).
    pub(crate) stderr_log: Option<PathBuf>,
}

impl Daemon {
    pub(crate) fn start(mode: CosignerMode) -> Daemon {
        Daemon::start_with(mode, &[])
    }

    /// Like [`Daemon::start`], with extra `mandate serve` arguments (kept across restarts).
    pub(crate) fn start_with(mode: CosignerMode, serve_args: &[&str]) -> Daemon {
        Daemon::start_on(mode, serve_args, None)
    }

    /// Like [`Daemon::start_with`], on the PostgreSQL database `database` if given.
    pub(crate) fn start_on(mode: CosignerMode, serve_args: &[&str], database: Option<&str>) -> Daemon {
        let env: Vec<(&str, &str)> = database.map(|url| ("MANDATE_DATABASE_URL", url)).into_iter().collect();
        let anvil = Anvil::start();
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let cosigner_addr = format!("127.0.0.1:{}", free_port());
        let service_addr = format!("127.0.0.1:{}", free_port());
        let provisioned = match mode {
            CosignerMode::Dev => {
                let (ok, out) = run_json(
                    bin(),
                    &[
                        "init",
                        "--dev",
                        "--auto-provision",
                        "--data-dir",
                        data.to_str().unwrap(),
                        "--cosigner-addr",
                        &cosigner_addr,
                        "--service-addr",
                        &service_addr,
                    ],
                    &env,
                );
                assert!(ok, "init failed: {out}");
                None
            }
            CosignerMode::External => Some(provision_production(dir.path(), &cosigner_addr, &service_addr, &env)),
        };
        let listen = format!("127.0.0.1:{}", free_port());
        let url = format!("http://{listen}");
        let mut daemon = Daemon {
            api: Api::new(&url),
            url,
            listen,
            rpc_url: anvil.url(),
            dir,
            anvil,
            mode,
            cosigner_addr,
            server: None,
            cosigner: None,
            admin: String::new(),
            serve_args: serve_args.iter().map(|arg| arg.to_string()).collect(),
            database: database.map(str::to_string),
            provisioned,
            stderr_log: None,
        };
        if mode == CosignerMode::External {
            daemon.start_cosigner();
        }
        daemon.start_server();
        daemon.admin = daemon.login();
        daemon
    }

    pub(crate) fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub(crate) fn master_file(&self) -> String {
        self.data().join("master-password").display().to_string()
    }

    /// The place of the party that is not the daemon: in the data directory in the
    /// `--dev` layout, beside it (another host, in production) otherwise.
    fn party_place(&self, name: &str) -> PathBuf {
        match self.mode {
            CosignerMode::Dev => self.data().join(name),
            CosignerMode::External => self.dir.path().join(name),
        }
    }

    /// The cosigner's home.
    pub(crate) fn cosigner_home(&self) -> PathBuf {
        self.party_place("cosigner")
    }

    /// The recovery party's home.
    pub(crate) fn recovery_dir(&self) -> PathBuf {
        self.party_place("recovery")
    }

    pub(crate) fn start_cosigner(&mut self) {
        let home = self.cosigner_home();
        let password = self.party_place("cosigner-password");
        self.cosigner = Some(spawn_server(
            bin(),
            &["cosigner", "serve", "--data-dir", home.to_str().unwrap(), "--listen", &self.cosigner_addr],
            &[("MANDATE_COSIGNER_PASSWORD_FILE", password.to_str().unwrap())],
        ));
    }

    pub(crate) fn stop_cosigner(&mut self) {
        self.cosigner = None;
    }

    pub(crate) fn start_server(&mut self) {
        let data = self.data();
        let mut args =
            vec!["serve", "--data-dir", data.to_str().unwrap(), "--listen", &self.listen, "--rpc-url", &self.rpc_url];
        if self.mode == CosignerMode::Dev {
            args.push("--dev");
        }
        args.extend(self.serve_args.iter().map(String::as_str));
        let master = self.master_file();
        let mut env = vec![("MANDATE_MASTER_PASSWORD_FILE", master.as_str())];
        env.extend(self.database.as_deref().map(|url| ("MANDATE_DATABASE_URL", url)));
        // A line per request would bury the test output; a test that reads the log keeps them.
        if self.stderr_log.is_none() {
            env.push(("MANDATE_LOG_LEVEL", "warn"));
        }
        let server = spawn_server_logging(bin(), &args, &env, self.stderr_log.as_deref());
        assert_eq!(server.banner["listening"], self.listen, "{}", server.banner);
        self.server = Some(server);
    }

    /// A second `mandate serve` process on this daemon's database, set up as README's
    /// "Several daemons on PostgreSQL" says: a copy of the data directory (taken now,
    /// so after the wallets it should sign for were created), its own REST and
    /// service-party addresses, the same node and cosigner. Logged in on its own.
    pub(crate) fn replica(&self) -> Replica {
        self.replica_on(&self.rpc_url)
    }

    /// Like [`Daemon::replica`], reaching the node through `rpc_url` (a proxy).
    pub(crate) fn replica_on(&self, rpc_url: &str) -> Replica {
        let database = self.database.as_deref().expect("replicas share a PostgreSQL database");
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let status = Command::new("cp").arg("-a").arg(self.data()).arg(&data).status().unwrap();
        assert!(status.success(), "copying the data directory");
        let listen = format!("127.0.0.1:{}", free_port());
        let service_listen = format!("127.0.0.1:{}", free_port());
        let mut args = vec![
            "serve",
            "--data-dir",
            data.to_str().unwrap(),
            "--listen",
            &listen,
            "--service-listen",
            &service_listen,
            "--rpc-url",
            rpc_url,
        ];
        args.extend(self.serve_args.iter().map(String::as_str));
        let master = data.join("master-password").display().to_string();
        let env = [
            ("MANDATE_MASTER_PASSWORD_FILE", master.as_str()),
            ("MANDATE_DATABASE_URL", database),
            ("MANDATE_LOG_LEVEL", "warn"),
        ];
        let server = spawn_server(bin(), &args, &env);
        assert_eq!(server.banner["listening"], listen, "{}", server.banner);
        let url = format!("http://{listen}");
        let api = Api::new(&url);
        let password = Secret::new(std::fs::read_to_string(&master).unwrap().trim());
        let admin = api.block_on(api.client(None).login(&password)).unwrap().token.expose().to_string();
        Replica { _dir: dir, server, url, api, admin }
    }

    /// SIGTERM to the daemon; returns whether it exited cleanly.
    pub(crate) fn terminate(&mut self) -> bool {
        let mut server = self.server.take().expect("daemon running");
        server.terminate().success()
    }

    pub(crate) fn cosigner_addr(&self) -> &str {
        &self.cosigner_addr
    }

    /// Stops and starts the daemon (its local cosigner too in dev mode).
    pub(crate) fn restart(&mut self) {
        self.server = None;
        std::thread::sleep(Duration::from_millis(300));
        self.start_server();
        self.admin = self.login();
    }

    pub(crate) fn login(&self) -> String {
        let password = Secret::new(std::fs::read_to_string(self.master_file()).unwrap().trim());
        let login = self.api.block_on(self.api.client(None).login(&password)).unwrap();
        login.token.expose().to_string()
    }

    /// CLI environment for the operator.
    pub(crate) fn cli_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("MANDATE_URL", self.url.clone()),
            ("MANDATE_MASTER_PASSWORD_FILE", self.master_file()),
            ("MANDATE_RECOVERY_PASSPHRASE", RECOVERY_PASSPHRASE.to_string()),
            ("MANDATE_RECOVERY_DIR", self.recovery_dir().display().to_string()),
        ]
    }

    /// Runs `mandate --json args` as the operator.
    pub(crate) fn cli(&self, args: &[&str]) -> (bool, Value) {
        let env = self.cli_env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        run_json(bin(), args, &env)
    }

    /// `mandate wallet create`, funded with `fund` ETH. Returns (id, address).
    pub(crate) fn wallet(&self, name: &str, fund: &str) -> (String, Address) {
        let out = self.dir.path().join(format!("{name}.recovery"));
        let (ok, wallet) = self.cli(&["wallet", "create", "--name", name, "--recovery-out", out.to_str().unwrap()]);
        assert!(ok, "wallet create: {wallet}");
        let address: Address = wallet["address"].as_str().unwrap().parse().unwrap();
        if fund != "0" {
            self.anvil.fund(address, eth(fund));
        }
        (wallet["id"].as_str().unwrap().to_string(), address)
    }

    /// An HTTP call; returns (status, JSON body).
    pub(crate) fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<&Value>) -> (u16, Value) {
        self.call_with(method, path, token, body.map(|b| b.to_string().into_bytes()), &[])
    }

    pub(crate) fn call_with(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        self.api.call_with(method, path, token, body, headers)
    }

    pub(crate) fn set_policy(&self, wallet: &str, rules: Value) {
        let (status, body) = self.call(
            "PUT",
            &format!("/v1/wallets/{wallet}/policy"),
            Some(&self.admin),
            Some(&json!({"version": 1, "rules": rules})),
        );
        assert_eq!(status, 200, "{body}");
    }

    /// A session token for `wallet` with `scopes`.
    pub(crate) fn session(&self, wallet: &str, scopes: &[&str]) -> String {
        self.session_with(json!({"wallet_id": wallet, "ttl_secs": 3600, "scopes": scopes}))["token"]
            .as_str()
            .unwrap()
            .to_string()
    }

    pub(crate) fn session_with(&self, body: Value) -> Value {
        let (status, created) = self.call("POST", "/v1/sessions", Some(&self.admin), Some(&body));
        assert_eq!(status, 201, "{created}");
        created
    }

    pub(crate) fn send(&self, token: &str, wallet: &str, to: Address, amount: &str) -> (u16, Value) {
        self.call(
            "POST",
            &format!("/v1/wallets/{wallet}/transactions"),
            Some(token),
            Some(&json!({"to": to.to_checksum(None), "amount": amount})),
        )
    }

    /// Polls a transaction until it is confirmed or failed.
    pub(crate) fn wait_final(&self, token: &str, tx_id: &str) -> Value {
        let mut last = Value::Null;
        let done = wait_until(Duration::from_secs(30), || {
            let (_, tx) = self.call("GET", &format!("/v1/transactions/{tx_id}"), Some(token), None);
            last = tx;
            matches!(last["status"].as_str(), Some("confirmed" | "failed"))
        });
        assert!(done, "transaction {tx_id} never became final: {last}");
        last
    }
}

/// A second daemon process on a [`Daemon`]'s PostgreSQL database ([`Daemon::replica`]).
pub(crate) struct Replica {
    _dir: TempDir,
    pub(crate) server: Server,
    pub(crate) url: String,
    pub(crate) api: Api,
    pub(crate) admin: String,
}

pub(crate) fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_else(|| panic!("no error envelope in {body}"))
}

/// A fresh recipient address.
pub(crate) fn recipient() -> Address {
    Address::from(rand::random::<[u8; 20]>())
}
