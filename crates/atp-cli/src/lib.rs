//! The `atp` command's logic; `src/main.rs` only parses arguments and sets the exit code.
//!
//! Exit codes (docs/cli.md): 0 success; 1 a verification failed (invalid signature, envelope
//! or credential refused); 2 usage error or malformed input (arguments, keys, Multikeys, DIDs,
//! files); 3 the node is unreachable, refused the request or answered something that does
//! not verify; 4 local state (the agent's files under `$ATP_HOME`, a deactivated identity).
#![forbid(unsafe_code)]

pub mod audit;
mod commands;
pub mod compliance;
mod crypto_cmd;
pub mod login;
mod output;
pub mod roles;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub use commands::run;
pub use output::{CliError, report};

/// Exit code: success.
pub const EXIT_OK: u8 = 0;
/// Exit code: a verification failed (the input is well formed but does not verify).
pub const EXIT_INVALID: u8 = 1;
/// Exit code: usage error or malformed input.
pub const EXIT_USAGE: u8 = 2;
/// Exit code: the node is unreachable, refused, or misbehaved.
pub const EXIT_NODE: u8 = 3;
/// Exit code: local state (agent home, key files, deactivated identity).
pub const EXIT_LOCAL: u8 = 4;

/// The ATP command line: agent identities, sealed messages, credentials, log proofs, node
/// administration and raw crypto primitives.
#[derive(Debug, Parser)]
#[command(name = "atp", version, about, propagate_version = true)]
pub struct Cli {
    /// The node URL(s), comma-separated: the nodes of a cluster, over which calls take turns.
    #[arg(long, global = true, env = "ATP_NODE", default_value = "http://127.0.0.1:7443")]
    pub node: String,
    /// The agent (a directory under $ATP_HOME/agents) that acts.
    #[arg(long, global = true, env = "ATP_AGENT", default_value = "default")]
    pub agent: String,
    /// Where agents keep their keys and `atp login` its tokens (default ~/.atp).
    #[arg(long, global = true, env = "ATP_HOME")]
    pub home: Option<PathBuf>,
    /// A file holding the node's admin token (for admin commands and node-issued credentials).
    #[arg(long, global = true, env = "ATP_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<PathBuf>,
    /// Machine-readable JSON output (one object on stdout; errors as JSON on stderr).
    #[arg(long, global = true)]
    pub json: bool,
    /// The stored login (`atp login`) in $ATP_HOME/credentials that login, logout and the admin
    /// commands use.
    #[arg(long, global = true, env = "ATP_PROFILE", default_value = "default")]
    pub profile: String,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// The top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// The agent's own `did:atp` identity.
    #[command(subcommand)]
    Id(IdCommand),
    /// Seal a message (a file or stdin) for one or more recipients; writes the envelope.
    Seal(SealArgs),
    /// Open and verify an envelope (a file or stdin); writes the payload.
    Open(OpenArgs),
    /// Verifiable credentials.
    #[command(subcommand)]
    Vc(VcCommand),
    /// Trust scores, evidence and proofs.
    #[command(subcommand)]
    Trust(TrustCommand),
    /// The node's transparency log, verified locally.
    #[command(subcommand)]
    Log(LogCommand),
    /// Node administration (needs the admin token).
    #[command(subcommand)]
    Admin(AdminCommand),
    /// The node's audit trail (enterprise `[audit]`; the `auditor` or `admin` role).
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Compliance reports from the audit trail (enterprise `[audit]`; `auditor` or `admin`).
    #[command(subcommand)]
    Compliance(ComplianceCommand),
    /// Raw signature primitives, for interoperability and debugging.
    #[command(subcommand)]
    Crypto(CryptoCommand),
    /// Sign in as an operator at the OpenID provider (device grant, or --pkce); the admin
    /// commands then send the stored token.
    Login(LoginArgs),
    /// Revoke the stored tokens at the provider and delete them here.
    Logout,
    /// Print a shell completion script.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// `atp id …`
#[derive(Debug, Subcommand)]
pub enum IdCommand {
    /// Create the agent's identity (keys in $ATP_HOME) and register it; prints the DID.
    New,
    /// Print the agent's DID (with --json: its key sequence, state and home).
    Show,
    /// Rotate to the pre-committed next key and commit a new one.
    Rotate,
    /// Deactivate the identity, finally.
    Deactivate {
        /// Confirm: deactivation cannot be undone.
        #[arg(long)]
        yes: bool,
    },
    /// Resolve a DID to its DID document, built from its verified key event log.
    Resolve {
        /// The DID (`did:atp:…` or `did:key:…`).
        did: String,
    },
}

/// `atp login`
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The OpenID provider's issuer URL (https; plain http only on a loopback address).
    #[arg(long, env = "ATP_OIDC_ISSUER")]
    pub issuer: String,
    /// The CLI's client id at the provider (a public client).
    #[arg(long, env = "ATP_OIDC_CLIENT_ID")]
    pub client_id: String,
    /// The node's audience, sent as the `audience` parameter (Auth0-style providers).
    #[arg(long)]
    pub audience: Option<String>,
    /// The node's resource indicator (RFC 8707), sent as the `resource` parameter.
    #[arg(long)]
    pub resource: Option<String>,
    /// The scopes to ask for (repeat, or space-separate).
    #[arg(long = "scope", default_values = ["openid", "offline_access"])]
    pub scope: Vec<String>,
    /// Authorization code + PKCE with a loopback redirect, instead of the device grant.
    #[arg(long)]
    pub pkce: bool,
    /// Give up when the sign-in is not completed within this many seconds.
    #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub timeout: u64,
}

/// `atp seal`
#[derive(Debug, Args)]
pub struct SealArgs {
    /// A recipient DID (repeat for several).
    #[arg(long = "to", required = true)]
    pub to: Vec<String>,
    /// The payload's media type.
    #[arg(long, default_value = "application/octet-stream")]
    pub content_type: String,
    /// The message file; `-` or absent reads stdin.
    #[arg(long = "in", short = 'i')]
    pub input: Option<PathBuf>,
    /// Where to write the envelope; `-` or absent writes stdout (binary; refused on a terminal).
    #[arg(long = "out", short = 'o')]
    pub output: Option<PathBuf>,
}

/// `atp open`
#[derive(Debug, Args)]
pub struct OpenArgs {
    /// The envelope file; `-` or absent reads stdin.
    pub input: Option<PathBuf>,
    /// Where to write the payload; `-` or absent writes stdout.
    #[arg(long = "out", short = 'o')]
    pub output: Option<PathBuf>,
}

/// `atp vc …`
#[derive(Debug, Subcommand)]
pub enum VcCommand {
    /// Sign a credential (JSON file) as this agent with a quantum-safe proof set; with
    /// --node-issuer the node issues it (admin) and allocates status entries.
    Issue {
        /// The unsigned credential; `-` reads stdin.
        file: PathBuf,
        /// Have the node issue it as its own issuer DID.
        #[arg(long)]
        node_issuer: bool,
        /// With --node-issuer: allocate status entries (revocation, suspension).
        #[arg(long = "status", value_enum)]
        status: Vec<PurposeArg>,
    },
    /// Verify a credential: proofs locally; with --online also its status on the node.
    Verify {
        /// The credential; `-` reads stdin.
        file: PathBuf,
        /// Also ask the node (status lists).
        #[arg(long)]
        online: bool,
    },
    /// Revoke a node-issued credential (admin; final).
    Revoke {
        /// The credential; `-` reads stdin.
        file: PathBuf,
    },
    /// Show a credential's status as the node checks it.
    Status {
        /// The credential; `-` reads stdin.
        file: PathBuf,
    },
}

/// A status purpose.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PurposeArg {
    /// Revocation.
    Revocation,
    /// Suspension.
    Suspension,
}

/// `atp trust …`
#[derive(Debug, Subcommand)]
pub enum TrustCommand {
    /// A DID's trust level and score, from the node's signed trust proof (verified here).
    Get {
        /// The DID.
        did: String,
    },
    /// Why a DID has its trust level (the strongest evidence paths).
    Explain {
        /// The DID.
        did: String,
    },
    /// Endorse another agent (signed evidence, submitted to the node).
    Endorse {
        /// The DID endorsed.
        did: String,
        /// The capability endorsed.
        #[arg(long)]
        capability: Option<String>,
    },
    /// Interaction receipts, signed by both parties.
    #[command(subcommand)]
    Receipt(ReceiptCommand),
    /// Report an incident about an agent (signed evidence, submitted to the node).
    Report {
        /// The DID reported.
        did: String,
        /// The severity.
        #[arg(long, value_enum)]
        severity: SeverityArg,
        /// The capability concerned.
        #[arg(long)]
        capability: Option<String>,
    },
}

/// `atp trust receipt …`: the co-signing flow.
#[derive(Debug, Subcommand)]
pub enum ReceiptCommand {
    /// Start a receipt with the other party; writes the half-signed receipt (JSON).
    Start {
        /// The other party's DID.
        #[arg(long = "with")]
        with: String,
        /// The capability exercised.
        #[arg(long)]
        capability: String,
        /// The outcome.
        #[arg(long, value_enum)]
        outcome: OutcomeArg,
        /// Where to write it; `-` or absent writes stdout.
        #[arg(long = "out", short = 'o')]
        output: Option<PathBuf>,
    },
    /// Countersign a receipt that names this agent; writes the fully signed receipt.
    Countersign {
        /// The half-signed receipt; `-` reads stdin.
        file: PathBuf,
        /// Where to write it; `-` or absent writes stdout.
        #[arg(long = "out", short = 'o')]
        output: Option<PathBuf>,
    },
    /// Submit a fully signed receipt to the node.
    Submit {
        /// The receipt; `-` reads stdin.
        file: PathBuf,
    },
}

/// An interaction outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutcomeArg {
    /// Success.
    Success,
    /// Failure.
    Failure,
}

/// An incident severity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SeverityArg {
    /// Minor.
    Low,
    /// Significant.
    Medium,
    /// Serious (caps the subject's level while open).
    High,
}

/// `atp log …`
#[derive(Debug, Subcommand)]
pub enum LogCommand {
    /// Fetch the latest checkpoint and verify it (both signature lines, the node's key) and
    /// that it extends the largest one this agent verified before (kept in $ATP_HOME).
    Checkpoint {
        /// Also write the signed note here (to compare with another client: `atp log gossip`).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Where to write the evidence if the node's log is inconsistent (default: stdout).
        #[arg(long)]
        evidence: Option<PathBuf>,
    },
    /// Compare a checkpoint another client saw with this agent's view of the log: one tree
    /// must extend the other. A split view exits 3 and writes the evidence.
    Gossip {
        /// The other client's signed note (`atp log checkpoint --out`); `-` reads stdin.
        file: PathBuf,
        /// Where to write the evidence of a split view (default: stdout).
        #[arg(long)]
        evidence: Option<PathBuf>,
    },
    /// Check log evidence offline, without a node: the node's key event log, both signed
    /// checkpoints, and what they prove.
    Evidence {
        /// The evidence file (`atp log gossip --evidence`); `-` reads stdin.
        file: PathBuf,
    },
    /// Prove that key events are in the log (default: all of this agent's events).
    Prove {
        /// Another DID whose events to prove.
        #[arg(long)]
        did: Option<String>,
    },
    /// Verify a checkpoint note from a file against the node's keys (and, with --witnesses,
    /// its witness cosignatures against a k-of-n policy).
    Verify {
        /// The signed note; `-` reads stdin.
        file: PathBuf,
        /// A witness policy file (`quorum <k>`, then `witness <vkey> <vkey>` lines); the note
        /// must carry valid cosignatures from at least k of them. `ATP_WITNESSES` applies the
        /// same policy to every command.
        #[arg(long)]
        witnesses: Option<PathBuf>,
    },
}

/// `atp compliance …`
#[derive(Debug, Subcommand)]
pub enum ComplianceCommand {
    /// A report for a framework over a period, signed by the node and verified here.
    Report(compliance::ReportArgs),
}

/// `atp admin …`
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Trust anchors.
    #[command(subcommand)]
    Anchors(AnchorsCommand),
    /// RBAC role bindings (enterprise `[rbac]`).
    #[command(subcommand)]
    Roles(roles::RolesCommand),
    /// The node's trust computation.
    #[command(subcommand)]
    Trust(AdminTrustCommand),
    /// Erase a subject's personal data (GDPR Art. 17) by crypto-shredding: the node destroys
    /// its data key and the trust evidence about it, logs the erasure and recomputes trust.
    /// Irreversible; erasing again changes nothing.
    Erase {
        /// The subject's DID.
        #[arg(long)]
        subject: String,
    },
}

/// `atp admin trust …`
#[derive(Debug, Subcommand)]
pub enum AdminTrustCommand {
    /// Compute the trust snapshot now and wait for it; prints its time, size and level counts.
    Recompute,
    /// Print the trust model's constants the node uses, as a `[trust]` section for its
    /// configuration file (with --json: one object, the same keys).
    Config,
}

/// `atp admin anchors …`
#[derive(Debug, Subcommand)]
pub enum AnchorsCommand {
    /// Replace the set of trust anchors.
    Set {
        /// The anchor DIDs (none clears the set).
        dids: Vec<String>,
    },
    /// List the trust anchors.
    List,
}

/// `atp crypto …`
#[derive(Debug, Subcommand)]
pub enum CryptoCommand {
    /// Generate a key; writes an atp key file (mode 0600) and prints the public key.
    Keygen {
        /// The algorithm.
        #[arg(long, value_enum)]
        alg: AlgArg,
        /// The key file to create.
        #[arg(long, short = 'o')]
        out: PathBuf,
    },
    /// Print the public key of a key file.
    Pubkey {
        /// The key file.
        #[arg(long)]
        key: PathBuf,
    },
    /// Sign a message (a file or stdin); prints the signature in hex.
    Sign {
        /// The algorithm (must be the key's).
        #[arg(long, value_enum)]
        alg: AlgArg,
        /// The key file.
        #[arg(long)]
        key: PathBuf,
        /// The context string, in hex (empty for Ed25519).
        #[arg(long, default_value = "")]
        ctx: String,
        /// The message file; `-` or absent reads stdin.
        #[arg(long = "in", short = 'i')]
        input: Option<PathBuf>,
    },
    /// Verify a signature: exit 0 if valid, 1 if invalid, 2 on usage errors.
    Verify {
        /// The algorithm.
        #[arg(long, value_enum)]
        alg: AlgArg,
        /// The public key: a Multikey (z6Mk…, u…) or hex.
        #[arg(long = "pub")]
        public_key: String,
        /// The context string, in hex.
        #[arg(long, default_value = "")]
        ctx: String,
        /// The signature, in hex.
        #[arg(long)]
        sig: String,
        /// The message file; `-` or absent reads stdin.
        #[arg(long = "in", short = 'i')]
        input: Option<PathBuf>,
    },
}

/// A signature algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum AlgArg {
    /// Ed25519 (RFC 8032, strict verification).
    Ed25519,
    /// ML-DSA-44 (FIPS 204).
    #[value(name = "ml-dsa-44")]
    MlDsa44,
    /// ML-DSA-65 (FIPS 204).
    #[value(name = "ml-dsa-65")]
    MlDsa65,
    /// ML-DSA-87 (FIPS 204).
    #[value(name = "ml-dsa-87")]
    MlDsa87,
    /// The composite id-MLDSA65-Ed25519-SHA512 (ATP's default).
    #[value(name = "mldsa65-ed25519")]
    MlDsa65Ed25519,
}

impl AlgArg {
    /// The atp-crypto algorithm.
    pub fn algorithm(self) -> atp_crypto::AlgorithmId {
        use atp_crypto::AlgorithmId as A;
        match self {
            AlgArg::Ed25519 => A::Ed25519,
            AlgArg::MlDsa44 => A::MlDsa44,
            AlgArg::MlDsa65 => A::MlDsa65,
            AlgArg::MlDsa87 => A::MlDsa87,
            AlgArg::MlDsa65Ed25519 => A::MlDsa65Ed25519,
        }
    }
}
