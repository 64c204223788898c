//! The README quickstart: two agents on one node exchange a verified message.
//!
//! ```text
//! cargo run -p atp-node                         # terminal 1: the node on 127.0.0.1:7443
//! cargo run -p atp-sdk --example quickstart     # terminal 2
//! ```
//!
//! `ATP_NODE` overrides the node URL; keys go to `$ATP_HOME` (default `~/.atp`).

#[tokio::main]
async fn main() -> Result<(), atp::Error> {
    let node = std::env::var("ATP_NODE").unwrap_or_else(|_| "http://127.0.0.1:7443".into());

    // The receiving agent, so that there is someone to talk to.
    let bob = atp::Agent::connect(&node, "quickstart-bob").await?;

    // The three lines.
    let agent = atp::Agent::connect(&node, "billing-bot").await?; // load-or-create keys, register did:atp
    let sealed = agent.seal(&bob.did(), b"invoice #42 approved")?; // composite-signed envelope
    let opened = bob.open(&sealed).await?; // verified sender

    println!("billing-bot:   {}", agent.did());
    println!("quickstart-bob: {}", bob.did());
    println!(
        "bob opened {} bytes from {}: {:?}",
        opened.payload.len(),
        opened.sender,
        String::from_utf8_lossy(&opened.payload)
    );
    assert_eq!(opened.sender, agent.did());
    Ok(())
}
