//! `mandate`: the one binary of Mandate. Every party runs as its own process of it:
//! `mandate cosigner serve` (the cosigner), `mandate service serve` (the service
//! party until the daemon embeds it), and the recovery party is this CLI itself.

mod bench;
mod output;
mod parties;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use mandate_core::Role;

use output::{print_err, print_ok, CliResult};

#[derive(Parser)]
#[command(name = "mandate", version, about = "Mandate: a self-hosted wallet service for AI agents")]
struct Cli {
    /// Machine-readable JSON output (errors use the API's error envelope).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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
        #[arg(long)]
        with: Role,
        #[arg(long)]
        tx: String,
    },
    /// Complete refresh of all three shares (same address; old shares stop working).
    Refresh {
        #[command(flatten)]
        share: ShareArgs,
    },
    /// Rebuild a lost service or cosigner share, then refresh all three.
    Repair {
        #[command(flatten)]
        share: ShareArgs,
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
}

fn run(cli: Cli) -> CliResult {
    match cli.command {
        Command::Cosigner { command } => match command {
            CosignerCommand::Init(home) => parties::init(home.data_dir, Role::Cosigner),
            CosignerCommand::Pair { home, service_pubkey, recovery_pubkey } => parties::pair(
                home.data_dir,
                Role::Cosigner,
                &[(Role::Service, &service_pubkey, None), (Role::Recovery, &recovery_pubkey, None)],
            ),
            CosignerCommand::Serve { home, listen } => parties::serve(home.data_dir, Role::Cosigner, &listen),
            CosignerCommand::Freeze { home, wallet } => parties::set_frozen(home.data_dir, wallet, true),
            CosignerCommand::Unfreeze { home, wallet } => parties::set_frozen(home.data_dir, wallet, false),
        },
        Command::Service { command } => match command {
            ServiceCommand::Init(home) => parties::init(home.data_dir, Role::Service),
            ServiceCommand::Pair { home, cosigner_pubkey, cosigner_addr, recovery_pubkey } => parties::pair(
                home.data_dir,
                Role::Service,
                &[(Role::Cosigner, &cosigner_pubkey, Some(&cosigner_addr)), (Role::Recovery, &recovery_pubkey, None)],
            ),
            ServiceCommand::Serve { home, listen } => parties::serve(home.data_dir, Role::Service, &listen),
            ServiceCommand::Sign { home, wallet, tx } => parties::service_sign(home.data_dir, &wallet, &tx),
        },
        Command::Recovery { command } => match command {
            RecoveryCommand::Init { dir } => parties::init(dir, Role::Recovery),
            RecoveryCommand::Pair { dir, service_pubkey, service_addr, cosigner_pubkey, cosigner_addr } => {
                parties::pair(
                    dir,
                    Role::Recovery,
                    &[
                        (Role::Service, &service_pubkey, Some(&service_addr)),
                        (Role::Cosigner, &cosigner_pubkey, Some(&cosigner_addr)),
                    ],
                )
            }
            RecoveryCommand::Dkg { dir, out } => parties::recovery_dkg(dir, out),
            RecoveryCommand::Sign { share, with, tx } => parties::recovery_sign(share.dir, share.share, with, &tx),
            RecoveryCommand::Refresh { share } => parties::recovery_refresh(share.dir, share.share),
            RecoveryCommand::Repair { share, target } => parties::recovery_repair(share.dir, share.share, target),
        },
        Command::Tx { command } => match command {
            TxCommand::Build { chain_id, nonce, to, value_wei, gas_limit, max_fee, priority_fee, data } => {
                parties::build_tx(chain_id, nonce, &to, &value_wei, gas_limit, max_fee, priority_fee, &data)
            }
        },
        Command::Bench { command } => match command {
            BenchCommand::Mpc { signatures } => bench::mpc(signatures),
        },
    }
}

fn main() {
    let cli = Cli::parse();
    let json_mode = cli.json;
    let code = match run(cli) {
        Ok(value) => {
            print_ok(json_mode, &value);
            0
        }
        Err(error) => print_err(json_mode, &error),
    };
    std::process::exit(code);
}
