//! `create-hostedserver-ticket`: the backend's side of a hosted-server session, from the
//! command line. A game backend signs relay auth tickets with `sockworks_relay::ticket::sign`;
//! this is the same call for scripts, demos and operators (GNS's certtool has the same command
//! for Valve's relays, in its Steam builds only).

use anyhow::{Context, Result, bail};
use sockworks_engine::crypto::keys::IdentityKey;
use sockworks_engine::wire::identity::Identity;
use sockworks_relay::ticket::{RelayAuthTicket, sign};

use super::load_private_key;
use crate::cli::TicketArgs;
use crate::clock::unix_now;

/// Relays refuse tickets that expire further ahead than this.
const MAX_HOURS: u32 = 24;

/// Signs the ticket and prints `SOCKWORKS_TICKET=<hex>`.
pub fn run(args: &TicketArgs) -> Result<()> {
    let ca = load_private_key(&args.ca_key).context("CA key")?;
    for (what, id) in [
        ("--gameserver", &args.gameserver),
        ("--client-identity", &args.client_identity),
    ] {
        Identity::parse(id).with_context(|| format!("{what} {id:?} is not a GNS identity"))?;
    }
    if args.hours == 0 || args.hours > MAX_HOURS {
        bail!("--hours must be 1 to {MAX_HOURS} (relays refuse tickets further ahead)");
    }
    let routing = hex::decode(args.routing.trim()).context("--routing is not hex")?;
    let ticket = RelayAuthTicket {
        gameserver: args.gameserver.clone(),
        authorized_client: args.client_identity.clone(),
        public_ip: args.public_ip,
        expiry_unix: unix_now() + u64::from(args.hours) * 3600,
        routing,
        app_id: args.app,
        restrict_to_vport: args.vport,
        extra: Vec::new(),
    };
    let signed = sign(&ticket, &IdentityKey::from_seed(ca.seed())).context("ticket")?;
    println!("SOCKWORKS_TICKET={}", hex::encode(signed));
    Ok(())
}
