//! `mandate`: the one binary of Mandate. Every party runs as its own process of it:
//! `mandate cosigner serve` (the cosigner), `mandate serve` (the daemon, which embeds
//! the service party; `mandate service serve` runs that party alone), and the
//! recovery party is this CLI itself. The operator's commands (`wallet`, `policy`,
//! `session`, `audit`) talk to the daemon's REST API.

mod agent;
mod api;
mod layout;
mod login_cache;
mod mcp;
mod operator;
mod output;
mod owner;
mod owner_review;
mod parties;
mod webhook;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use mandate_core::Role;

use operator::{AuditCommand, DaemonArg, DataDirArg, PolicyCommand, SessionCommand, WalletCommand};
use output::{print_err, print_report, CliError, CliResult, Report};

#[derive(Parser)]
#[command(name = "mandate", version, about = "Mandate: a self-hosted wallet service for AI agents")]
struct Cli {
    /// Machine-readable JSON output (errors use the API's error envelope).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

/// How a long-running process (`serve`, `cosigner serve`) logs, on stderr.
#[derive(Debug, Clone, clap::Args)]
struct LogArgs {
    /// Log lines as `text`, or `json` (one object per line, with request ids).
    #[arg(long = "log-format", env = "MANDATE_LOG_FORMAT", default_value = "text")]
    format: mandate_server::logging::LogFormat,
    /// The least severe level logged: error, warn, info or debug.
    #[arg(long = "log-level", env = "MANDATE_LOG_LEVEL", default_value = "info")]
    level: mandate_server::logging::LogLevel,
}

impl LogArgs {
    fn init(&self) {
        mandate_server::logging::init(self.format, self.level);
    }
}

#[derive(Subcommand)]
enum Command {
    /// Create the daemon's data directory: master password hash and the service party's
    /// identity (password from MANDATE_MASTER_PASSWORD or _FILE). The cosigner and the
    /// recovery party are provisioned in their own places and pinned with `mandate pair`;
    /// `--dev` puts all three here instead (one host, development only).
    Init {
        #[command(flatten)]
        data: DataDirArg,
        /// Generate the master password into <data-dir>/master-password (0600).
        #[arg(long)]
        auto_provision: bool,
        /// The single-host development layout for `mandate serve --dev`: the cosigner
        /// and the recovery party in this directory too, paired (two shares in one place).
        #[arg(long)]
        dev: bool,
        /// Where the local cosigner of --dev listens (default 127.0.0.1:3200).
        #[arg(long, requires = "dev")]
        cosigner_addr: Option<String>,
        /// Where the daemon's embedded service party listens.
        #[arg(long, default_value = "127.0.0.1:3201")]
        service_addr: String,
        /// A PostgreSQL database for several daemons (`postgres://user:password@host/db`);
        /// default: SQLite in the data directory.
        #[arg(long = "database", env = "MANDATE_DATABASE_URL", hide_env_values = true)]
        database: Option<String>,
    },
    /// Pin the cosigner (key and address) and the recovery party (key) in the daemon's
    /// service party; prints the fingerprints to compare with the ones their `init` printed.
    Pair {
        #[command(flatten)]
        data: DataDirArg,
        /// The cosigner's public key (from `mandate cosigner init`).
        #[arg(long)]
        cosigner_pubkey: String,
        /// Where the cosigner listens (`host:port`).
        #[arg(long)]
        cosigner_addr: String,
        /// The recovery party's public key (from `mandate recovery init`).
        #[arg(long)]
        recovery_pubkey: String,
        /// A PostgreSQL database for several daemons (`postgres://user:password@host/db`);
        /// default: SQLite in the data directory.
        #[arg(long = "database", env = "MANDATE_DATABASE_URL", hide_env_values = true)]
        database: Option<String>,
    },
    /// Run the daemon: the REST API and the service party (MANDATE_MASTER_PASSWORD or _FILE).
    Serve {
        #[command(flatten)]
        data: DataDirArg,
        /// REST listen address.
        #[arg(long, env = "MANDATE_LISTEN", default_value = "127.0.0.1:3100")]
        listen: String,
        /// Where the service party listens for recovery runs; default: the address
        /// given at `mandate init` (replicas sharing a host each need their own).
        #[arg(long, env = "MANDATE_SERVICE_LISTEN")]
        service_listen: Option<String>,
        /// The EVM JSON-RPC endpoint of the default chain (named `default`).
        #[arg(long, env = "MANDATE_RPC_URL", default_value = "http://127.0.0.1:8545")]
        rpc_url: String,
        /// Another chain to serve, as NAME=RPC_URL (its chain id is read from the node);
        /// repeat, or separate with commas. Requests then name their chain.
        #[arg(long = "chain", env = "MANDATE_CHAINS", value_delimiter = ',', value_name = "NAME=RPC_URL")]
        chains: Vec<String>,
        /// Also run a local cosigner process (development only).
        #[arg(long)]
        dev: bool,
        /// Seconds an owner has to approve a held transaction before it expires.
        #[arg(long, env = "MANDATE_APPROVAL_TTL_SECS", default_value_t = mandate_server::DEFAULT_APPROVAL_TTL_SECS)]
        approval_ttl_secs: u64,
        /// Seconds a freeze lasts at least before an owner may lift it.
        #[arg(long, env = "MANDATE_FREEZE_COOLDOWN_SECS", default_value_t = mandate_server::DEFAULT_FREEZE_COOLDOWN_SECS)]
        freeze_cooldown_secs: u64,
        /// A `Host` name to answer to besides localhost and the listen address (e.g. a
        /// reverse proxy's public name); repeat or separate with commas.
        #[arg(long = "allowed-host", env = "MANDATE_ALLOWED_HOSTS", value_delimiter = ',')]
        allowed_hosts: Vec<String>,
        /// A PostgreSQL database for several daemons (`postgres://user:password@host/db`);
        /// default: SQLite in the data directory.
        #[arg(long = "database", env = "MANDATE_DATABASE_URL", hide_env_values = true)]
        database: Option<String>,
        /// Seconds after which a transaction left `reserved` (its daemon died, or lost the
        /// database, before recording a signature) is released and its nonce filled.
        #[arg(long, env = "MANDATE_RESERVATION_LEASE_SECS", default_value_t = mandate_server::DEFAULT_RESERVATION_LEASE_SECS, value_parser = clap::value_parser!(u64).range(5..))]
        reservation_lease_secs: u64,
        #[command(flatten)]
        log: LogArgs,
    },
    /// Wallets on the daemon.
    Wallet {
        #[command(flatten)]
        daemon: DaemonArg,
        #[command(subcommand)]
        command: WalletCommand,
    },
    /// Wallet policies on the daemon.
    Policy {
        #[command(flatten)]
        daemon: DaemonArg,
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Agent sessions on the daemon.
    Session {
        #[command(flatten)]
        daemon: DaemonArg,
        #[command(subcommand)]
        command: SessionCommand,
    },
    /// Operator credentials on the daemon: API keys for day-to-day commands
    /// (MANDATE_OPERATOR_KEY or _FILE), instead of the master password.
    Operator {
        #[command(flatten)]
        daemon: DaemonArg,
        #[command(subcommand)]
        command: operator::OperatorCommand,
    },
    /// The MCP server on stdio for an agent (docs/MCP.md): session token from
    /// MANDATE_SESSION_TOKEN or MANDATE_SESSION_TOKEN_FILE, daemon at --url / MANDATE_URL.
    Mcp {
        #[command(flatten)]
        daemon: DaemonArg,
        /// The tool band: read, prepare, sign or broadcast (or a list such as
        /// read,prepare,sign: its highest). At most what the session's scopes grant.
        #[arg(long, default_value = "read")]
        band: String,
        /// Act as an agent key (docs/AGENTS.md) instead of a session token: every
        /// request is signed with this key file; needs --wallet.
        #[arg(long, requires = "wallet")]
        agent_key: Option<std::path::PathBuf>,
        /// The wallet the agent key was registered for.
        #[arg(long)]
        wallet: Option<String>,
    },
    /// Wallet owners: key files, registration (owners approve and unfreeze).
    Owner {
        #[command(flatten)]
        daemon: DaemonArg,
        #[command(subcommand)]
        command: owner::OwnerCommand,
    },
    /// Approve a held transaction with an owner key (signed locally; the key stays here).
    Approve {
        #[command(flatten)]
        daemon: DaemonArg,
        /// The transaction id (`tx_…`).
        id: String,
        /// The owner key file (from `mandate owner keygen`).
        #[arg(long)]
        owner_key: PathBuf,
        /// Print the signature (to paste in the dashboard) instead of sending it.
        #[arg(long)]
        print_signature: bool,
        #[command(flatten)]
        review: owner::Review,
        #[command(flatten)]
        tokens: owner::Tokens,
    },
    /// Deny a held transaction with an owner key: it is never sent.
    Deny {
        #[command(flatten)]
        daemon: DaemonArg,
        /// The transaction id (`tx_…`).
        id: String,
        /// The owner key file.
        #[arg(long)]
        owner_key: PathBuf,
        /// Print the signature instead of sending it.
        #[arg(long)]
        print_signature: bool,
        #[command(flatten)]
        review: owner::Review,
        #[command(flatten)]
        tokens: owner::Tokens,
    },
    /// Held transactions (waiting for approval, delayed, approved) with the texts owners sign.
    Pending {
        #[command(flatten)]
        daemon: DaemonArg,
        /// Only this wallet's.
        #[arg(long)]
        wallet: Option<String>,
    },
    /// Agent keys: an agent signs its own requests (docs/AGENTS.md).
    Agent {
        #[command(flatten)]
        daemon: DaemonArg,
        #[command(subcommand)]
        command: agent::AgentCommand,
    },
    /// Cancel a transaction (operator): a held one before it is sent; a submitted one
    /// not yet mined by a zero-value self-send at its nonce with higher fees.
    Cancel {
        #[command(flatten)]
        daemon: DaemonArg,
        /// The transaction id (`tx_…`).
        id: String,
    },
    /// Send a submitted transaction that is not mined yet again at its nonce with
    /// fees raised at least 12.5 % (operator).
    SpeedUp {
        #[command(flatten)]
        daemon: DaemonArg,
        /// The transaction id (`tx_…`).
        id: String,
    },
    /// Emergency freeze of one wallet or all: the daemon and the cosigner sign nothing.
    Freeze {
        #[command(flatten)]
        daemon: DaemonArg,
        /// The wallet id (`wal_…`).
        #[arg(long, conflicts_with = "all")]
        wallet: Option<String>,
        /// Every wallet.
        #[arg(long)]
        all: bool,
        /// Why (kept in the audit trail).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Lift a wallet's freeze with an owner key, after the cool-down.
    Unfreeze {
        #[command(flatten)]
        daemon: DaemonArg,
        /// The wallet id (`wal_…`).
        #[arg(long)]
        wallet: String,
        /// The owner key file.
        #[arg(long)]
        owner_key: PathBuf,
        #[command(flatten)]
        review: owner::Review,
    },
    /// Signed webhooks (docs/WEBHOOKS.md). The daemon is at MANDATE_URL (or
    /// --daemon-url): `--url` here is the webhook's.
    Webhook {
        /// The daemon's URL.
        #[arg(long, global = true, env = "MANDATE_URL", default_value = api::DEFAULT_URL)]
        daemon_url: String,
        #[command(subcommand)]
        command: webhook::WebhookCommand,
    },
    /// Development chains only (anvil, hardhat): test ether for a wallet.
    Dev {
        #[command(flatten)]
        daemon: DaemonArg,
        #[command(subcommand)]
        command: DevCommand,
    },
    /// The daemon's audit trail.
    Audit {
        #[command(flatten)]
        daemon: DaemonArg,
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// The cosigner party (run it on another host in production).
    Cosigner {
        #[command(subcommand)]
        command: CosignerCommand,
    },
    /// The service party's key-share endpoint (embedded in the daemon later).
    Service {
        #[command(subcommand)]
        command: ServiceCommand,
    },
    /// The recovery party: the operator's offline share, brought online by this CLI.
    Recovery {
        #[command(subcommand)]
        command: RecoveryCommand,
    },
    /// Build transactions.
    Tx {
        #[command(subcommand)]
        command: TxCommand,
    },
    /// Benchmarks that print figures.
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
}

#[derive(Subcommand)]
enum DevCommand {
    /// Add ether to a wallet's balance. Refused unless the daemon's node is a local dev
    /// chain (chain id 31337 or 1337 answering anvil's or hardhat's dev methods); audited.
    Fund {
        /// The wallet id (`wal_…`).
        #[arg(long)]
        wallet: String,
        /// How much ether, e.g. 5 or 0.25.
        #[arg(long)]
        amount: String,
        /// The chain (its name or id) when the daemon serves several.
        #[arg(long)]
        chain: Option<String>,
    },
}

#[derive(clap::Args)]
struct HomeArg {
    /// The party's data directory.
    #[arg(long)]
    data_dir: PathBuf,
}

#[derive(Subcommand)]
enum CosignerCommand {
    /// Create the data directory, identity key and default limits; prints the public key.
    Init(HomeArg),
    /// Pin the service's and the recovery party's identity keys.
    Pair {
        #[command(flatten)]
        home: HomeArg,
        #[arg(long)]
        service_pubkey: String,
        #[arg(long)]
        recovery_pubkey: String,
    },
    /// Listen for runs (secret from MANDATE_COSIGNER_PASSWORD or _FILE).
    Serve {
        #[command(flatten)]
        home: HomeArg,
        #[arg(long, default_value = "127.0.0.1:3200")]
        listen: String,
        /// Exit when standard input closes (the daemon's `--dev` uses it so its local
        /// cosigner never outlives it).
        #[arg(long, hide = true)]
        exit_with_stdin: bool,
        #[command(flatten)]
        log: LogArgs,
    },
    /// Freeze signing, for one wallet or everything, on this host's limits file.
    Freeze {
        #[command(flatten)]
        home: HomeArg,
        #[arg(long)]
        wallet: Option<String>,
    },
    /// Lift a freeze set with `freeze`.
    Unfreeze {
        #[command(flatten)]
        home: HomeArg,
        #[arg(long)]
        wallet: Option<String>,
    },
    /// Print the audit anchor: the highest audit record (sequence number and hash) the
    /// daemon showed this cosigner. Save it and check the daemon's trail against it
    /// with `mandate audit verify --anchor FILE`.
    Anchor(HomeArg),
}

#[derive(Subcommand)]
enum ServiceCommand {
    /// Create the data directory and identity key; prints the public key.
    Init(HomeArg),
    /// Pin the cosigner (key and address) and the recovery party (key).
    Pair {
        #[command(flatten)]
        home: HomeArg,
        #[arg(long)]
        cosigner_pubkey: String,
        #[arg(long)]
        cosigner_addr: String,
        #[arg(long)]
        recovery_pubkey: String,
    },
    /// Listen for runs the recovery party coordinates (secret from MANDATE_MASTER_PASSWORD or _FILE).
    Serve {
        #[command(flatten)]
        home: HomeArg,
        #[arg(long, default_value = "127.0.0.1:3201")]
        listen: String,
    },
    /// Sign an unsigned EIP-1559 transaction together with the cosigner.
    Sign {
        #[command(flatten)]
        home: HomeArg,
        #[arg(long)]
        wallet: String,
        /// Unsigned transaction, hex (`0x02…`), as printed by `mandate tx build`.
        #[arg(long)]
        tx: String,
        /// An owner's signed approval to pass to the cosigner (JSON file), for
        /// transactions above the cosigner's `approval_above`.
        #[arg(long)]
        approval: Option<PathBuf>,
    },
}

#[derive(clap::Args)]
struct ShareArgs {
    /// The recovery party's directory (identity key and pinned peers).
    #[arg(long)]
    dir: PathBuf,
    /// The encrypted recovery share (passphrase from MANDATE_RECOVERY_PASSPHRASE or _FILE).
    #[arg(long)]
    share: PathBuf,
}

/// The owner's authorization of a share ceremony (every party verifies it).
#[derive(clap::Args)]
struct CeremonyArgs {
    /// The owner key file (from `mandate owner keygen`) that signs the exact plan;
    /// the key must be an owner of the wallet at every party taking part.
    #[arg(long)]
    owner_key: PathBuf,
    /// How long the authorization stays valid, in seconds (at most 86400).
    #[arg(long, default_value_t = 600)]
    valid_for: u64,
}

#[derive(Subcommand)]
enum RecoveryCommand {
    /// Create the directory and identity key; prints the public key.
    Init {
        #[arg(long)]
        dir: PathBuf,
    },
    /// Pin the service and the cosigner (keys and addresses).
    Pair {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        service_pubkey: String,
        #[arg(long)]
        service_addr: String,
        #[arg(long)]
        cosigner_pubkey: String,
        #[arg(long)]
        cosigner_addr: String,
    },
    /// Create a wallet: DKG with the service and the cosigner; writes the recovery share.
    Dkg {
        #[arg(long)]
        dir: PathBuf,
        /// Where to write the encrypted recovery share (must not exist).
        #[arg(long)]
        out: PathBuf,
    },
    /// Sign with the recovery share and one online party (when the other is lost).
    Sign {
        #[command(flatten)]
        share: ShareArgs,
        #[command(flatten)]
        ceremony: CeremonyArgs,
        #[arg(long)]
        with: Role,
        #[arg(long)]
        tx: String,
    },
    /// Complete refresh of all three shares (same address; old shares stop working).
    Refresh {
        #[command(flatten)]
        share: ShareArgs,
        #[command(flatten)]
        ceremony: CeremonyArgs,
    },
    /// Rebuild a lost service or cosigner share, then refresh all three.
    Repair {
        #[command(flatten)]
        share: ShareArgs,
        #[command(flatten)]
        ceremony: CeremonyArgs,
        #[arg(long)]
        target: Role,
    },
}

#[derive(Subcommand)]
enum TxCommand {
    /// Print an unsigned EIP-1559 transaction as hex.
    Build {
        #[arg(long)]
        chain_id: u64,
        #[arg(long)]
        nonce: u64,
        #[arg(long)]
        to: String,
        #[arg(long)]
        value_wei: String,
        #[arg(long, default_value_t = 21_000)]
        gas_limit: u64,
        #[arg(long, default_value_t = 2_000_000_000)]
        max_fee: u128,
        #[arg(long, default_value_t = 1_000_000_000)]
        priority_fee: u128,
        /// Calldata, hex.
        #[arg(long, default_value = "")]
        data: String,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// DKG, threshold signing (cosigner in its own process), refresh; k256 baseline.
    Mpc {
        #[arg(long, default_value_t = 60)]
        signatures: usize,
    },
    /// Agent sends through the daemon against anvil; single-key, no-policy baseline.
    Send {
        #[arg(long, default_value_t = 60)]
        sends: usize,
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
    },
    /// Agent sends through two daemons on one PostgreSQL database (production layout,
    /// one cosigner); one SQLite daemon as the baseline; invariant violations counted.
    Replicas {
        /// Sends the wallet's rolling cap admits (a quarter more are asked for).
        #[arg(long, default_value_t = 200)]
        sends: usize,
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
    },
    /// MCP tools/call round trips (get_balance, evaluate_action) over the daemon's
    /// streamable HTTP /mcp; the same calls over REST as the baseline.
    Mcp {
        #[arg(long, default_value_t = 500)]
        calls: usize,
    },
    /// Signed agent requests (docs/AGENTS.md) against bearer session tokens: the same
    /// GET alternately with each, on a real daemon; the added latency.
    Auth {
        #[arg(long, default_value_t = 2000)]
        requests: usize,
    },
    /// Policy decisions for a 100-rule policy (pure engine); one-rule baseline.
    Policy {
        #[arg(long, default_value_t = 20_000)]
        iterations: usize,
        /// Spends in the last day that rolling windows and velocity scan.
        #[arg(long, default_value_t = 200)]
        history: usize,
    },
}

fn run(cli: Cli) -> CliResult<Report> {
    let result: CliResult = match cli.command {
        Command::Init { data, auto_provision, dev, cosigner_addr, service_addr, database } => {
            let database = mandate_server::database_url(database.as_deref())?;
            return layout::init_daemon(data.data_dir, auto_provision, dev, cosigner_addr, service_addr, database);
        }
        Command::Pair { data, cosigner_pubkey, cosigner_addr, recovery_pubkey, database } => {
            let database = mandate_server::database_url(database.as_deref())?;
            return layout::pair_daemon(data.data_dir, cosigner_pubkey, cosigner_addr, recovery_pubkey, database);
        }
        Command::Serve {
            data,
            listen,
            service_listen,
            rpc_url,
            chains,
            dev,
            approval_ttl_secs,
            freeze_cooldown_secs,
            allowed_hosts,
            database,
            reservation_lease_secs,
            log,
        } => {
            log.init();
            // Blocks until the daemon stops (it prints its own banner line).
            mandate_server::run(mandate_server::ServeConfig {
                data_dir: data.data_dir,
                listen,
                rpc_url,
                chains: operator::parse_chains(&chains)?,
                dev,
                approval_ttl_secs,
                freeze_cooldown_secs,
                allowed_hosts,
                database: mandate_server::database_url(database.as_deref())?,
                service_listen,
                log_format: log.format,
                reservation_lease_secs,
            })?;
            Ok(serde_json::json!({"stopped": true}))
        }
        Command::Operator { daemon, command } => return operator::operator(&daemon, command),
        Command::Wallet { daemon, command } => return operator::wallet(&daemon, command),
        Command::Policy { daemon, command } => return operator::policy(&daemon, command),
        Command::Session { daemon, command } => return operator::session(&daemon, command),
        Command::Audit { daemon, command } => return operator::audit(&daemon, command),
        Command::Dev { daemon, command: DevCommand::Fund { wallet, amount, chain } } => {
            return operator::dev_fund(&daemon, &wallet, &amount, chain.as_deref())
        }
        Command::Owner { daemon, command } => return owner::owner(&daemon, command),
        Command::Webhook { daemon_url, command } => return webhook::webhook(&daemon_url, command),
        Command::Approve { daemon, id, owner_key, print_signature, review, tokens } => {
            return owner::decide(
                &daemon,
                &id,
                &owner_key,
                mandate_chain::approval::DecisionAction::Approve,
                print_signature,
                &review,
                &tokens,
            )
        }
        Command::Deny { daemon, id, owner_key, print_signature, review, tokens } => {
            return owner::decide(
                &daemon,
                &id,
                &owner_key,
                mandate_chain::approval::DecisionAction::Deny,
                print_signature,
                &review,
                &tokens,
            )
        }
        Command::Pending { daemon, wallet } => return owner::pending(&daemon, wallet.as_deref()),
        Command::Agent { daemon, command } => return agent::agent(&daemon, command),
        Command::Cancel { daemon, id } => return owner::cancel(&daemon, &id),
        Command::SpeedUp { daemon, id } => return owner::speed_up(&daemon, &id),
        Command::Freeze { daemon, wallet, all, reason } => {
            return owner::freeze(&daemon, wallet.as_deref(), all, reason)
        }
        Command::Unfreeze { daemon, wallet, owner_key, review } => {
            return owner::unfreeze(&daemon, &wallet, &owner_key, &review)
        }
        Command::Mcp { .. } => Err(CliError::invalid("mcp runs before the other commands")),
        Command::Cosigner { command } => match command {
            CosignerCommand::Init(home) => return layout::init_party(home.data_dir, Role::Cosigner),
            CosignerCommand::Pair { home, service_pubkey, recovery_pubkey } => {
                return layout::pair_party(
                    home.data_dir,
                    Role::Cosigner,
                    &[(Role::Service, &service_pubkey, None), (Role::Recovery, &recovery_pubkey, None)],
                )
            }
            CosignerCommand::Serve { home, listen, exit_with_stdin, log } => {
                log.init();
                if exit_with_stdin {
                    parties::exit_when_stdin_closes();
                }
                parties::serve(home.data_dir, Role::Cosigner, &listen)
            }
            CosignerCommand::Freeze { home, wallet } => parties::set_frozen(home.data_dir, wallet, true),
            CosignerCommand::Unfreeze { home, wallet } => parties::set_frozen(home.data_dir, wallet, false),
            CosignerCommand::Anchor(home) => {
                let anchor = mandate_cosigner::AuditAnchorFile::new(&home.data_dir).read().map_err(CliError::from)?;
                match anchor {
                    Some(anchor) => Ok(serde_json::json!(anchor)),
                    None => Err(CliError::new(
                        mandate_core::ErrorCode::NotFound,
                        "this cosigner has not seen the daemon's audit head yet (no signing or notice run)",
                    )),
                }
            }
        },
        Command::Service { command } => match command {
            ServiceCommand::Init(home) => return layout::init_party(home.data_dir, Role::Service),
            ServiceCommand::Pair { home, cosigner_pubkey, cosigner_addr, recovery_pubkey } => {
                return layout::pair_party(
                    home.data_dir,
                    Role::Service,
                    &[
                        (Role::Cosigner, &cosigner_pubkey, Some(&cosigner_addr)),
                        (Role::Recovery, &recovery_pubkey, None),
                    ],
                )
            }
            ServiceCommand::Serve { home, listen } => parties::serve(home.data_dir, Role::Service, &listen),
            ServiceCommand::Sign { home, wallet, tx, approval } => {
                parties::service_sign(home.data_dir, &wallet, &tx, approval.as_deref())
            }
        },
        Command::Recovery { command } => match command {
            RecoveryCommand::Init { dir } => return layout::init_party(dir, Role::Recovery),
            RecoveryCommand::Pair { dir, service_pubkey, service_addr, cosigner_pubkey, cosigner_addr } => {
                return layout::pair_party(
                    dir,
                    Role::Recovery,
                    &[
                        (Role::Service, &service_pubkey, Some(&service_addr)),
                        (Role::Cosigner, &cosigner_pubkey, Some(&cosigner_addr)),
                    ],
                )
            }
            RecoveryCommand::Dkg { dir, out } => parties::recovery_dkg(dir, out),
            RecoveryCommand::Sign { share, ceremony, with, tx } => {
                let owner = parties::CeremonyOwner::new(ceremony.owner_key, ceremony.valid_for);
                parties::recovery_sign(share.dir, share.share, &owner, with, &tx)
            }
            RecoveryCommand::Refresh { share, ceremony } => {
                let owner = parties::CeremonyOwner::new(ceremony.owner_key, ceremony.valid_for);
                parties::recovery_refresh(share.dir, share.share, &owner)
            }
            RecoveryCommand::Repair { share, ceremony, target } => {
                let owner = parties::CeremonyOwner::new(ceremony.owner_key, ceremony.valid_for);
                parties::recovery_repair(share.dir, share.share, &owner, target)
            }
        },
        Command::Tx { command } => match command {
            TxCommand::Build { chain_id, nonce, to, value_wei, gas_limit, max_fee, priority_fee, data } => {
                parties::build_tx(chain_id, nonce, &to, &value_wei, gas_limit, max_fee, priority_fee, &data)
            }
        },
        Command::Bench { command } => match command {
            BenchCommand::Mpc { signatures } => Ok(mandate_bench::mpc(signatures)?),
            BenchCommand::Send { sends, concurrency } => Ok(mandate_bench::send(sends, concurrency)?),
            BenchCommand::Policy { iterations, history } => Ok(mandate_bench::policy(iterations, history)?),
            BenchCommand::Mcp { calls } => Ok(mandate_bench::mcp_bench(calls)?),
            BenchCommand::Replicas { sends, concurrency } => Ok(mandate_bench::replicas(sends, concurrency)?),
            BenchCommand::Auth { requests } => Ok(mandate_bench::auth_bench(requests)?),
        },
    };
    result.map(Report::from)
}

fn main() {
    let cli = Cli::parse();
    let json_mode = cli.json;
    if let Command::Mcp { daemon, band, agent_key, wallet } = &cli.command {
        // stdout belongs to MCP: errors go to stderr, and nothing is printed on success.
        let agent = agent_key.as_deref().zip(wallet.as_deref());
        let code = match mcp::run(&daemon.url, band, agent) {
            Ok(()) => 0,
            Err(error) => print_err(false, &error),
        };
        std::process::exit(code);
    }
    let code = match run(cli) {
        Ok(report) => {
            print_report(json_mode, &report);
            report.exit_code
        }
        Err(error) => print_err(json_mode, &error),
    };
    std::process::exit(code);
}
