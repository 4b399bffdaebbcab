//! The command line: one subcommand per action, options named after GNS's certtool where it
//! has them (`--pub-key`, `--pub-key-file`, `--app`, `--pop`), and none of its
//! left-to-right state: every command states all of its inputs.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Certificate authority for Sockworks and GameNetworkingSockets peers: Ed25519 keys,
/// certificates and certificate requests in GNS's formats, a revocation list, and an HTTP
/// signing service.
#[derive(Debug, Parser)]
#[command(name = "sockworks-cert", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate a CA key pair: the private key (OpenSSH PEM, mode 0600) to --out, the public
    /// key line to stdout and to OUT.pub.
    GenCa(GenKeyArgs),
    /// Generate an end-entity key pair (same files as gen-ca), e.g. for `request` or `issue`.
    GenKey(GenKeyArgs),
    /// Issue an end-entity certificate for an identity and a public key (or a request).
    Issue(IssueArgs),
    /// Show any certificate, certificate request, private key or public key line.
    Inspect(InspectArgs),
    /// Add a key id to a revocation list that a Sockworks trust configuration loads.
    Revoke(RevokeArgs),
    /// Write a certificate request for a key and identity, as GetCertificateRequest builds it.
    Request(RequestArgs),
    /// Run the HTTP signing service (POST /v1/sign, GET /v1/ca).
    Serve(ServeArgs),
    /// Sign a relay auth ticket for a hosted server (GNS certtool's
    /// create_hostedserver_ticket): prints `SOCKWORKS_TICKET=<hex>` for the client's
    /// ReceivedRelayAuthTicket.
    CreateHostedserverTicket(TicketArgs),
}

/// `gen-ca` and `gen-key`.
#[derive(Debug, Args)]
pub struct GenKeyArgs {
    /// Private key file to create (mode 0600); the public key goes to OUT.pub.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Replace existing files.
    #[arg(long)]
    pub force: bool,
}

/// Where the key to certify comes from (exactly one).
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct SubjectKey {
    /// The public key to certify: "ssh-ed25519 AAAA... comment" (the comment is optional).
    #[arg(long, value_name = "LINE")]
    pub pub_key: Option<String>,
    /// A file holding the public key line (or the OpenSSH private key) to certify.
    #[arg(long, value_name = "FILE")]
    pub pub_key_file: Option<PathBuf>,
    /// A certificate request (PEM block or raw protobuf; `-` for stdin): its key, and its
    /// identity unless --identity is given (they must then agree).
    #[arg(long, value_name = "FILE")]
    pub request: Option<PathBuf>,
}

/// How long a certificate is valid.
#[derive(Debug, Args)]
pub struct ValidityArgs {
    /// Validity in days from --not-before [default: 730, GNS's certtool default].
    #[arg(long, value_name = "DAYS", conflicts_with = "expires")]
    pub days: Option<u32>,
    /// Expiry time: RFC 3339 (2030-01-31T00:00:00Z) or unix seconds.
    #[arg(long, value_name = "TIME")]
    pub expires: Option<String>,
    /// Creation time (`time_created`): RFC 3339 or unix seconds [default: now].
    #[arg(long, value_name = "TIME")]
    pub not_before: Option<String>,
}

/// `issue`.
#[derive(Debug, Args)]
pub struct IssueArgs {
    /// The CA private key (OpenSSH PEM; must not be readable by group or others).
    #[arg(long, value_name = "FILE")]
    pub ca_key: PathBuf,
    /// The key to certify.
    #[command(flatten)]
    pub subject: SubjectKey,
    /// The identity the certificate names, in GNS's string form: str:NAME, steamid:N,
    /// ip:ADDR or ip:ADDR:PORT, gen:HEX, xboxpwid:ID, psn:N. Required unless --request names
    /// one.
    #[arg(long, value_name = "IDENTITY")]
    pub identity: Option<String>,
    /// App ids the certificate is valid for (open-source GNS peers check 0).
    #[arg(long, value_name = "IDS", value_delimiter = ',', default_value = "0")]
    pub app: Vec<u32>,
    /// POP codes (3-4 characters) the certificate is restricted to, e.g. iad,sto.
    #[arg(long, value_name = "CODES", value_delimiter = ',')]
    pub pop: Vec<String>,
    /// Validity.
    #[command(flatten)]
    pub validity: ValidityArgs,
    /// Put this private key (the certified key's) into the certificate's private_key_data,
    /// making the cert+key bundle SetCertificate takes; --out is then written with mode 0600.
    #[arg(long, value_name = "FILE")]
    pub with_private_key: Option<PathBuf>,
    /// Write the certificate here instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Replace an existing --out file.
    #[arg(long)]
    pub force: bool,
}

/// `inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The file to show (`-` for stdin): a STEAMDATAGRAM CERT block, a certificate request,
    /// an OpenSSH private key, an ssh-ed25519 line, or raw protobuf.
    #[arg(value_name = "FILE")]
    pub input: PathBuf,
    /// One JSON object instead of text; times as exact integers and RFC 3339 strings.
    #[arg(long)]
    pub json: bool,
    /// Check a certificate's signature with this CA public key line.
    #[arg(long, value_name = "LINE", conflicts_with = "ca_pub_key_file")]
    pub ca_pub_key: Option<String>,
    /// Check a certificate's signature with the CA public key (or private key) in this file.
    #[arg(long, value_name = "FILE")]
    pub ca_pub_key_file: Option<PathBuf>,
}

/// `revoke`.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("what").required(true).multiple(false))]
pub struct RevokeArgs {
    /// The key id to revoke (decimal, as `inspect` prints it).
    #[arg(long, value_name = "N", group = "what")]
    pub key_id: Option<u64>,
    /// Revoke the key of this certificate.
    #[arg(long, value_name = "FILE", group = "what")]
    pub cert: Option<PathBuf>,
    /// The revocation list to append to (created if missing).
    #[arg(long, value_name = "FILE")]
    pub list: PathBuf,
    /// Why, recorded in the comment.
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
}

/// `request`.
#[derive(Debug, Args)]
pub struct RequestArgs {
    /// The private key whose public half is to be certified (OpenSSH PEM).
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// The identity to ask for (GNS string form).
    #[arg(long, value_name = "IDENTITY")]
    pub identity: String,
    /// Write the request here instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Write raw protobuf bytes (what GetCertificateRequest returns) instead of a PEM block;
    /// needs --out.
    #[arg(long, requires = "out")]
    pub raw: bool,
    /// Replace an existing --out file.
    #[arg(long)]
    pub force: bool,
}

/// `serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The CA private key (must not be readable by group or others).
    #[arg(long, value_name = "FILE")]
    pub ca_key: PathBuf,
    /// Tokens file: lines of 'TOKEN PATTERN', e.g. 'k3y... str:player-*' ('*' matches any run).
    #[arg(long, value_name = "FILE")]
    pub tokens: PathBuf,
    /// Address to listen on (port 0 picks a free port; the address is printed on stdout).
    #[arg(long, value_name = "ADDR")]
    pub listen: SocketAddr,
    /// Validity of issued certificates, in days from their time_created.
    #[arg(long, value_name = "DAYS", default_value_t = 30)]
    pub days: u32,
    /// Validity in seconds instead of days (short-lived certificates that clients renew
    /// often; at least 5).
    #[arg(long, value_name = "SECS", conflicts_with = "days")]
    pub lifetime: Option<u32>,
    /// App ids put in issued certificates.
    #[arg(long, value_name = "IDS", value_delimiter = ',', default_value = "0")]
    pub app: Vec<u32>,
    /// Seconds to date certificates back (time_created = now - SECS), so that peers whose
    /// clocks run a little behind the CA's accept them at once.
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    pub backdate: u32,
    /// POP codes put in issued certificates [default: the request's].
    #[arg(long, value_name = "CODES", value_delimiter = ',')]
    pub pop: Vec<String>,
    /// Largest request body accepted, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 16384)]
    pub max_body: usize,
    /// Most connections served at once; more are answered 503.
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub max_connections: usize,
    /// Seconds a client may stay silent, and four times that for a whole request.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub read_timeout: u64,
}

/// `create-hostedserver-ticket`.
#[derive(Debug, Args)]
pub struct TicketArgs {
    /// The fleet's ticket-signing CA private key (OpenSSH PEM; the relays trust its `.pub`).
    #[arg(long, value_name = "FILE")]
    pub ca_key: PathBuf,
    /// The hosted server's identity (GNS string form), as the client will name it in
    /// ConnectToHostedDedicatedServer.
    #[arg(long, value_name = "IDENTITY")]
    pub gameserver: String,
    /// The client the ticket is for (GNS string form).
    #[arg(long, value_name = "IDENTITY")]
    pub client_identity: String,
    /// The server's routing blob in hex, as GetHostedDedicatedServerAddress returned it (the
    /// examples' hosted echo server prints it as ROUTING=...).
    #[arg(long, value_name = "HEX")]
    pub routing: String,
    /// Hours until the ticket expires (Valve recommends 6; relays refuse more than 24 ahead).
    #[arg(long, value_name = "HOURS", default_value_t = 6)]
    pub hours: u32,
    /// The client's public IPv4 address, binding the ticket to it [default: any].
    #[arg(long, value_name = "IPV4")]
    pub public_ip: Option<std::net::Ipv4Addr>,
    /// The client's AppID.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub app: u32,
    /// The only virtual port the ticket is good for (-1: any).
    #[arg(long, value_name = "N", default_value_t = -1, allow_negative_numbers = true)]
    pub vport: i32,
}
