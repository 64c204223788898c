//! The commands that act as an agent, through the SDK.

use std::path::{Path, PathBuf};

use atp::{Agent, AgentOptions, StatusAction, StatusPurpose};
use base64::Engine as _;
use serde_json::{Value, json};

use crate::output::{
    CliError, Colour, note, paint, print_json, read_input, read_json, spinner, write_output,
};
use crate::{
    AdminCommand, AdminTrustCommand, AnchorsCommand, Cli, Command, ComplianceCommand, EXIT_OK,
    IdCommand, LogCommand, OutcomeArg, PurposeArg, ReceiptCommand, SeverityArg, TrustCommand,
    VcCommand,
};

/// Runs the command; returns the exit code (errors carry theirs, see [`CliError::exit_code`]).
pub async fn run(cli: Cli) -> Result<u8, CliError> {
    let json = cli.json;
    match &cli.command {
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(*shell, &mut command, "atp", &mut std::io::stdout());
            return Ok(EXIT_OK);
        }
        Command::Crypto(_) => {
            let Command::Crypto(c) = cli.command else { unreachable!("matched above") };
            return crate::crypto_cmd::run(c, json);
        }
        Command::Log(LogCommand::Evidence { file }) => return log_evidence(file, json),
        Command::Login(args) => return crate::login::login(&cli, args).await,
        Command::Logout => return crate::login::logout(&cli).await,
        _ => {}
    }
    atp::check_agent_name(&cli.agent)?;
    let agent = connect(&cli).await?;
    match &cli.command {
        Command::Id(c) => id(&agent, c, json).await,
        Command::Seal(args) => {
            let payload = read_input(args.input.as_deref())?;
            for to in &args.to {
                atp::core::did::validate_did(to)
                    .map_err(|e| CliError::Usage(format!("--to {to:?}: {e}")))?;
            }
            let to: Vec<&str> = args.to.iter().map(String::as_str).collect();
            let sealed = agent.seal_to(&to, &args.content_type, &payload)?;
            write_output(args.output.as_deref(), &sealed, true)?;
            note(json, &format!("sealed {} bytes for {}", payload.len(), args.to.join(", ")));
            if json && args.output.as_deref().is_some_and(|p| p.as_os_str() != "-") {
                print_json(
                    &json!({"bytes": sealed.len(), "recipients": args.to, "sender": agent.did()}),
                );
            }
            Ok(EXIT_OK)
        }
        Command::Open(args) => {
            let wire = read_input(args.input.as_deref())?;
            let opened = agent.open(&wire).await.map_err(refused)?;
            if json {
                print_json(&json!({
                    "sender": opened.sender,
                    "senderKeySeq": opened.sender_key_seq,
                    "contentType": opened.content_type,
                    "issuedAt": opened.issued_at,
                    "expiresAt": opened.expires_at,
                    "payload": base64::engine::general_purpose::STANDARD.encode(&opened.payload),
                }));
                if let Some(path) = args.output.as_deref().filter(|p| p.as_os_str() != "-") {
                    write_output(Some(path), &opened.payload, false)?;
                }
            } else {
                write_output(args.output.as_deref(), &opened.payload, false)?;
                eprintln!(
                    "{} from {} (key #{}, {})",
                    paint("verified", Colour::Green),
                    opened.sender,
                    opened.sender_key_seq,
                    opened.content_type
                );
            }
            Ok(EXIT_OK)
        }
        Command::Vc(c) => vc(&cli, &agent, c, json).await,
        Command::Trust(c) => trust(&agent, c, json).await,
        Command::Log(c) => log(&agent, c, json).await,
        Command::Admin(AdminCommand::Anchors(c)) => {
            admin_token(&cli, &agent).await?;
            match c {
                AnchorsCommand::Set { dids } => {
                    for did in dids {
                        atp::core::did::validate_did(did)
                            .map_err(|e| CliError::Usage(format!("{did:?}: {e}")))?;
                    }
                    let anchors: Vec<(String, String)> =
                        dids.iter().map(|d| (d.clone(), String::new())).collect();
                    let revision = agent.set_trust_anchors(&anchors).await?;
                    if json {
                        print_json(&json!({"revision": revision, "anchors": dids}));
                    } else {
                        println!("revision {revision}: {} anchor(s)", dids.len());
                    }
                }
                AnchorsCommand::List => {
                    let (anchors, revision) = agent.trust_anchors().await?;
                    if json {
                        let list: Vec<Value> =
                            anchors.iter().map(|(d, n)| json!({"did": d, "note": n})).collect();
                        print_json(&json!({"revision": revision, "anchors": list}));
                    } else {
                        for (did, _) in &anchors {
                            println!("{did}");
                        }
                        note(json, &format!("revision {revision}"));
                    }
                }
            }
            Ok(EXIT_OK)
        }
        Command::Admin(AdminCommand::Roles(c)) => {
            admin_token(&cli, &agent).await?;
            crate::roles::run(&agent, c, json).await
        }
        Command::Compliance(ComplianceCommand::Report(args)) => {
            admin_token(&cli, &agent).await?;
            crate::compliance::run(&agent, args, json).await
        }
        Command::Audit(c) => {
            admin_token(&cli, &agent).await?;
            crate::audit::run(&agent, c, json).await
        }
        Command::Admin(AdminCommand::Trust(c)) => {
            admin_token(&cli, &agent).await?;
            admin_trust(&agent, c, json).await
        }
        Command::Admin(AdminCommand::Erase { subject }) => {
            atp::core::did::validate_did(subject)
                .map_err(|e| CliError::Usage(format!("{subject:?}: {e}")))?;
            admin_token(&cli, &agent).await?;
            let r = agent.erase_subject(subject).await?;
            let leaf = r.log_receipt.as_ref().map_or(0, |l| l.leaf_index);
            if json {
                print_json(&json!({
                    "subject": r.subject,
                    "erasedAt": r.erased_at_unix_ms,
                    "evidenceErased": r.evidence_erased,
                    "alreadyErased": r.already_erased,
                    "logIndex": leaf,
                }));
            } else if r.already_erased {
                println!("{} was already erased (log leaf {leaf})", r.subject);
            } else {
                println!(
                    "erased {}: {} piece(s) of evidence destroyed, log leaf {leaf}",
                    r.subject, r.evidence_erased
                );
            }
            Ok(EXIT_OK)
        }
        Command::Completions { .. } | Command::Crypto(_) | Command::Login(_) | Command::Logout => {
            unreachable!("handled before connecting")
        }
    }
}

async fn connect(cli: &Cli) -> Result<Agent, CliError> {
    let mut options = AgentOptions::from_env(&cli.node)?;
    if matches!(cli.command, Command::Compliance(_)) {
        // A report reads the whole period's trail before it answers (docs/compliance.md).
        options.node.timeout = crate::compliance::REPORT_TIMEOUT;
    }
    if let Some(home) = &cli.home {
        options.home = Some(home.clone());
    }
    let bar = spinner(&format!("connecting to {}", cli.node));
    let agent = Agent::connect_with(options, &cli.agent).await;
    bar.finish_and_clear();
    Ok(agent?)
}

/// Verification failures of what the user handed in are exit 1, with the protocol's code.
fn refused(e: atp::Error) -> CliError {
    match e {
        atp::Error::Protocol(p) => {
            CliError::Invalid { code: p.code().to_owned(), message: p.to_string() }
        }
        other => CliError::Sdk(other),
    }
}

/// Sets the bearer token of an admin call: the explicit admin token (`--admin-token-file`,
/// `ATP_ADMIN_TOKEN_FILE`) wins over the stored login of `--profile` (`atp login`), which is
/// refreshed first when it is about to expire.
async fn admin_token(cli: &Cli, agent: &Agent) -> Result<(), CliError> {
    let Some(path) = cli.admin_token_file.as_deref() else {
        let home = match &cli.home {
            Some(home) => home.clone(),
            None => atp::default_home()?,
        };
        let token = crate::login::stored_bearer(&home, &cli.profile).await?.ok_or_else(|| {
            CliError::Usage(format!(
                "this command needs the node's admin token: --admin-token-file FILE (or ATP_ADMIN_TOKEN_FILE), or `atp login` (no stored login for profile {})",
                cli.profile
            ))
        })?;
        agent.set_bearer_token(Some(token.expose()));
        return Ok(());
    };
    let bytes = read_input(Some(path))?;
    let token = zeroize::Zeroizing::new(String::from_utf8(bytes).map_err(|_| {
        CliError::Usage(format!("{}: the admin token is not UTF-8", path.display()))
    })?);
    agent.set_bearer_token(Some(token.trim()));
    Ok(())
}

async fn id(agent: &Agent, command: &IdCommand, json: bool) -> Result<u8, CliError> {
    let show = |state: &atp::core::kel::KelState| {
        if json {
            print_json(&json!({
                "did": state.did,
                "agent": agent.name(),
                "keySequence": state.key_sequence,
                "sequence": state.sequence,
                "deactivated": state.deactivated,
                "home": agent.home_dir(),
            }));
        } else {
            println!("{}", state.did);
        }
    };
    match command {
        IdCommand::New | IdCommand::Show => show(&agent.state()),
        IdCommand::Rotate => {
            let state = agent.rotate().await?;
            note(json, &format!("rotated: key #{} is current", state.key_sequence));
            show(&state);
        }
        IdCommand::Deactivate { yes } => {
            if !yes {
                return Err(CliError::Usage("deactivation is final; add --yes to confirm".into()));
            }
            let state = agent.deactivate().await?;
            note(json, "deactivated");
            show(&state);
        }
        IdCommand::Resolve { did } => {
            did_arg(did)?;
            let resolved = agent.resolve(did).await?;
            let value = serde_json::to_value(&resolved)
                .map_err(|e| CliError::Usage(format!("internal: {e}")))?;
            if json {
                print_json(&value);
            } else {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&value).unwrap_or_else(|_| value.to_string())
                );
            }
        }
    }
    Ok(EXIT_OK)
}

async fn vc(cli: &Cli, agent: &Agent, command: &VcCommand, json: bool) -> Result<u8, CliError> {
    let pretty = |v: &Value| serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string());
    match command {
        VcCommand::Issue { file, node_issuer, status } => {
            let credential = read_json(file)?;
            let signed = if *node_issuer {
                admin_token(cli, agent).await?;
                let purposes: Vec<StatusPurpose> = status
                    .iter()
                    .map(|p| match p {
                        PurposeArg::Revocation => StatusPurpose::Revocation,
                        PurposeArg::Suspension => StatusPurpose::Suspension,
                    })
                    .collect();
                agent.node_issue_credential(&credential, &purposes).await?
            } else {
                if !status.is_empty() {
                    return Err(CliError::Usage("--status needs --node-issuer".into()));
                }
                agent.issue_credential(&credential).map_err(|e| match e {
                    atp::Error::Protocol(p) => CliError::Usage(format!("{}: {p}", file.display())),
                    other => CliError::Sdk(other),
                })?
            };
            println!("{}", if json { signed.to_string() } else { pretty(&signed) });
        }
        VcCommand::Verify { file, online } => {
            let credential = read_json(file)?;
            let verified = agent.verify_credential(&credential).await.map_err(refused)?;
            let mut out = json!({
                "verified": true,
                "issuer": verified.credential.issuer,
                "proofs": verified.proofs.proofs.iter().map(|p| p.cryptosuite.name()).collect::<Vec<_>>(),
            });
            if *online {
                let response =
                    agent.node_verify_credential(&credential).await.map_err(node_refused)?;
                out["statusChecks"] =
                    response.credential.map(|c| c.status_checks.len()).unwrap_or_default().into();
            }
            if json {
                print_json(&out);
            } else {
                println!(
                    "{} credential from {}",
                    paint("verified", Colour::Green),
                    verified.credential.issuer
                );
            }
        }
        VcCommand::Revoke { file } => {
            admin_token(cli, agent).await?;
            let credential = read_json(file)?;
            let changed = agent.node_update_status(&credential, StatusAction::Revoke).await?;
            if json {
                print_json(&json!({"revoked": true, "changed": changed}));
            } else {
                println!("revoked");
            }
        }
        VcCommand::Status { file } => {
            let credential = read_json(file)?;
            let (status, detail) = match agent.node_verify_credential(&credential).await {
                Ok(r) => (
                    "valid",
                    r.credential.map(|c| c.status_checks.len()).unwrap_or_default().to_string(),
                ),
                Err(atp::Error::Rejected { reason: Some(r), .. }) if r == "CREDENTIAL_REVOKED" => {
                    ("revoked", r)
                }
                Err(atp::Error::Rejected { reason: Some(r), .. })
                    if r == "CREDENTIAL_SUSPENDED" =>
                {
                    ("suspended", r)
                }
                Err(e) => return Err(node_refused(e)),
            };
            if json {
                print_json(&json!({"status": status, "detail": detail}));
            } else {
                println!("{status}");
            }
        }
    }
    Ok(EXIT_OK)
}

/// Evidence the node would refuse under one of its rules (say `EVIDENCE_SELF`), which the SDK
/// refuses before sending it: exit 3 with the node's code, as if the node had answered, so that
/// the outcome does not depend on where the rule was checked.
fn rule_refused(e: atp::Error) -> CliError {
    match e {
        atp::Error::Protocol(p) => {
            CliError::Refused { code: p.code().to_owned(), message: p.to_string() }
        }
        other => CliError::Sdk(other),
    }
}

async fn admin_trust(
    agent: &Agent,
    command: &AdminTrustCommand,
    json: bool,
) -> Result<u8, CliError> {
    match command {
        AdminTrustCommand::Recompute => {
            let r = agent.recompute_trust().await?;
            if json {
                print_json(&json!({
                    "computedAt": r.computed_at_unix_ms,
                    "agents": r.agents,
                    "edges": r.edges,
                    "iterations": r.iterations,
                    "levelCounts": r.level_counts,
                    "durationMs": r.duration_ms,
                }));
            } else {
                let levels: Vec<String> = r
                    .level_counts
                    .iter()
                    .enumerate()
                    .map(|(level, n)| format!("level {level}: {n}"))
                    .collect();
                println!(
                    "computed at {} in {} ms: {} agents, {} edges, {} iterations; {}",
                    r.computed_at_unix_ms,
                    r.duration_ms,
                    r.agents,
                    r.edges,
                    r.iterations,
                    levels.join(", ")
                );
            }
        }
        AdminTrustCommand::Config => {
            let c = agent.trust_config().await?;
            let ms = |v: i64| Value::String(format!("{v}ms"));
            // The keys and units of the node's `[trust]` section (docs/operations.md), so that
            // the text form pastes into a configuration file.
            let keys: [(&str, Value); 18] = [
                ("recompute_interval", ms(c.recompute_interval_ms)),
                ("proof_ttl", ms(c.proof_ttl_ms)),
                ("damping", json!(c.damping)),
                ("max_iterations", json!(c.max_iterations)),
                ("tolerance", json!(c.tolerance)),
                ("half_life", ms(c.half_life_ms)),
                ("endorsement_weight", json!(c.endorsement_weight)),
                ("receipt_weight", json!(c.receipt_weight)),
                ("credential_weight", json!(c.credential_weight)),
                ("incident_weights", json!(c.incident_weights)),
                ("negative_multiplier", json!(c.negative_multiplier)),
                ("issuer_prior_weight", json!(c.issuer_prior_weight)),
                ("score_half_units", json!(c.score_half_units)),
                ("level_thresholds", json!(c.level_thresholds)),
                ("incident_open", ms(c.incident_open_ms)),
                ("incident_reporter_min_level", json!(c.incident_reporter_min_level)),
                ("explain_max_depth", json!(c.explain_max_depth)),
                ("explain_max_steps", json!(c.explain_max_steps)),
            ];
            if json {
                let object: serde_json::Map<String, Value> =
                    keys.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
                print_json(&Value::Object(object));
            } else {
                println!("[trust]");
                for (key, value) in keys {
                    // A JSON number, string (no escapes here) or array of numbers is TOML too.
                    println!("{key} = {value}");
                }
            }
        }
    }
    Ok(EXIT_OK)
}

/// The node's verdict that a credential does not verify is exit 1, like a local failure.
fn node_refused(e: atp::Error) -> CliError {
    match e {
        atp::Error::Rejected {
            code: atp::grpc::tonic::Code::InvalidArgument,
            ref reason,
            ref message,
            ..
        } => CliError::Invalid {
            code: reason.clone().unwrap_or_else(|| "INVALID".into()),
            message: message.clone(),
        },
        other => refused(other),
    }
}

async fn log(agent: &Agent, command: &LogCommand, json: bool) -> Result<u8, CliError> {
    let b64 = |h: &[u8]| base64::engine::general_purpose::STANDARD.encode(h);
    match command {
        LogCommand::Checkpoint { out, evidence } => {
            let (cp, signed) = agent
                .verified_checkpoint_note()
                .await
                .map_err(|e| keep_evidence(e.into(), evidence))?;
            if let Some(path) = out {
                write_output(Some(path), signed.as_bytes(), false)?;
            }
            let [ed_vkey, mldsa_vkey] = agent.checkpoint_verifier_keys().await?;
            if json {
                print_json(&json!({
                    "origin": cp.origin, "size": cp.size, "rootHash": b64(&cp.root_hash),
                    "verified": true, "ed25519": ed_vkey, "mldsa65": mldsa_vkey,
                }));
            } else {
                println!("{} {} {}", cp.origin, cp.size, b64(&cp.root_hash));
                println!("ed25519 = \"{ed_vkey}\"\nmldsa65 = \"{mldsa_vkey}\"");
                note(
                    json,
                    &format!(
                        "{} checkpoint signed by the node's key (Ed25519 and ML-DSA-65 lines), \
                         consistent with the largest one this agent verified",
                        paint("verified", Colour::Green)
                    ),
                );
            }
        }
        LogCommand::Gossip { file, evidence } => {
            let text = String::from_utf8(read_input(Some(file))?)
                .map_err(|_| CliError::Usage(format!("{}: not UTF-8", file.display())))?;
            let (own, peer) = agent
                .gossip_checkpoint(&text)
                .await
                .map_err(|e| keep_evidence(refused(e), evidence))?;
            if json {
                print_json(&json!({"consistent": true, "own": own.size, "peer": peer.size}));
            } else {
                println!(
                    "{}: this agent's tree of {} leaves and the other client's of {} are one log",
                    paint("consistent", Colour::Green),
                    own.size,
                    peer.size
                );
            }
        }
        LogCommand::Evidence { .. } => unreachable!("checked offline before connecting"),
        LogCommand::Prove { did } => {
            let events = match did {
                Some(d) => {
                    did_arg(d)?;
                    agent.key_event_log_of(d).await?
                }
                None => agent.key_event_log(),
            };
            let bar = spinner("waiting for a checkpoint that covers the events");
            let mut proofs = Vec::new();
            for event in &events {
                let proof = agent.verify_inclusion(event).await;
                let proof = match proof {
                    Ok(p) => p,
                    Err(e) => {
                        bar.finish_and_clear();
                        return Err(e.into());
                    }
                };
                proofs.push(json!({
                    "sequence": event.event.s,
                    "leafIndex": proof.leaf_index,
                    "treeSize": proof.checkpoint.size,
                }));
            }
            bar.finish_and_clear();
            if json {
                print_json(&json!({"verified": true, "events": proofs}));
            } else {
                for p in &proofs {
                    println!(
                        "event #{} is leaf {} of {} ({})",
                        p["sequence"],
                        p["leafIndex"],
                        p["treeSize"],
                        paint("verified", Colour::Green)
                    );
                }
            }
        }
        LogCommand::Verify { file, witnesses } => {
            let policy = witnesses
                .as_deref()
                .map(|p| atp::read_witness_policy(p).map_err(|e| CliError::Usage(e.to_string())))
                .transpose()?;
            let note_bytes = read_input(Some(file))?;
            let text = String::from_utf8(note_bytes)
                .map_err(|_| CliError::Usage(format!("{}: not UTF-8", file.display())))?;
            let cp = agent.verify_checkpoint_note(&text).await.map_err(refused)?;
            let cosigned = match &policy {
                Some(policy) => {
                    Some(policy.check(&text).map_err(|e| refused(atp::Error::Protocol(e)))?)
                }
                None => None,
            };
            if json {
                print_json(&json!({
                    "origin": cp.origin, "size": cp.size, "rootHash": b64(&cp.root_hash),
                    "verified": true, "witnesses": cosigned,
                }));
            } else {
                println!("{} {} {}", paint("verified", Colour::Green), cp.origin, cp.size);
                if let (Some(n), Some(policy)) = (cosigned, &policy) {
                    println!(
                        "cosigned by {n} of {} witnesses (quorum {})",
                        policy.witnesses().len(),
                        policy.quorum()
                    );
                }
            }
        }
    }
    Ok(EXIT_OK)
}

/// Writes the evidence a split view produced (to `path`, or stdout), then fails as the SDK
/// error would (exit 3).
fn keep_evidence(e: CliError, path: &Option<PathBuf>) -> CliError {
    let CliError::Sdk(atp::Error::LogInconsistent(evidence)) = &e else { return e };
    let written =
        evidence.to_json().map_err(|j| CliError::Usage(j.to_string())).and_then(|bytes| {
            write_output(Some(path.as_deref().unwrap_or(Path::new("-"))), &bytes, false)
        });
    match written {
        Ok(()) => {
            if let Some(p) = path {
                eprintln!("evidence written to {}", p.display());
            }
            e
        }
        Err(w) => {
            // Both matter: the node misbehaved, and its evidence could not be kept.
            eprintln!("{e}");
            w
        }
    }
}

/// `atp log evidence FILE`: checks log evidence with nothing but the file.
fn log_evidence(file: &Path, json: bool) -> Result<u8, CliError> {
    use atp::core::log_evidence::{LogEvidence, Misbehaviour};
    let bytes = read_input(Some(file))?;
    let invalid = |e: atp::core::CoreError| CliError::Invalid {
        code: e.code().to_owned(),
        message: e.to_string(),
    };
    let evidence = LogEvidence::from_json(&bytes).map_err(invalid)?;
    let (found, earlier, later) = evidence.verify().map_err(invalid)?;
    // `observed` is the reporter's free text: printed without control characters, bounded.
    let observed: String =
        evidence.observed.chars().filter(|c| !c.is_control()).take(1_000).collect();
    let Misbehaviour::Fork { size } = found else {
        // Unresolved evidence is not proof: anyone can pair two honest checkpoints and leave
        // the proof out, and the order is only the reporter's word.
        return Err(CliError::Invalid {
            code: "LOG_EVIDENCE_UNRESOLVED".into(),
            message: format!(
                "not proof: both checkpoints are signed by {} (trees of {} and {} leaves), but \
                 whether one extends the other needs a consistency proof; ask the node, or any \
                 copy of its log, for one: a forked log cannot produce it (reported: {observed})",
                evidence.node_did, earlier.size, later.size
            ),
        });
    };
    if json {
        print_json(&json!({
            "verified": true, "misbehaviour": "fork", "nodeDid": evidence.node_did,
            "origin": earlier.origin, "size": size, "observed": observed,
        }));
    } else {
        println!(
            "{} {}: the node signed two different trees of {size} leaves (a fork)",
            paint("proven", Colour::Green),
            evidence.node_did
        );
        println!("reported: {observed}");
    }
    Ok(EXIT_OK)
}

/// A DID argument, checked before anything is sent: DID syntax, and for `did:atp` a canonical
/// scid, for `did:key` a supported key.
fn did_arg(did: &str) -> Result<(), CliError> {
    let bad = |e: atp::core::CoreError| CliError::Usage(format!("{did:?}: {e}"));
    atp::core::did::validate_did(did).map_err(bad)?;
    // A DID of a method ATP does not know is passed on: the node answers for it.
    match atp::core::did::method::lookup(did) {
        Some(method) => method.check(did).map_err(bad),
        None => Ok(()),
    }
}

async fn trust(agent: &Agent, command: &TrustCommand, json: bool) -> Result<u8, CliError> {
    use atp::core::evidence::{Outcome, Severity, SignedEvidence};
    let receipt_out = |r: &atp::EvidenceReceipt| {
        if json {
            print_json(&json!({
                "contentHash": hex::encode(r.content_hash),
                "duplicate": r.duplicate,
                "leafIndex": r.leaf_index,
            }));
        } else {
            println!(
                "{}{}",
                hex::encode(r.content_hash),
                if r.duplicate { " (duplicate)" } else { "" }
            );
        }
    };
    match command {
        TrustCommand::Get { did } => {
            did_arg(did)?;
            let t = agent.trust(did).await?;
            if json {
                print_json(&json!({
                    "did": did,
                    "level": t.level(),
                    "levelName": t.level_name,
                    "score": t.score(),
                    "evidenceCount": t.proof.claims.evidence_count,
                    "validUntil": t.proof.valid_until,
                    "gates": t.gates,
                    "rawScore": t.raw_score,
                    "penalty": t.penalty,
                    "computedAt": t.proof.claims.computed_at_ms,
                    "proofVerified": true,
                }));
            } else {
                println!("{} (level {}, score {:.6})", t.level_name, t.level(), t.score());
                note(
                    json,
                    &format!("{} trust proof signed by the node", paint("verified", Colour::Green)),
                );
            }
        }
        TrustCommand::Explain { did } => {
            did_arg(did)?;
            let e = agent.explain_trust(did).await?;
            if json {
                let paths: Vec<Value> = e
                    .paths
                    .iter()
                    .map(|p| json!({"contribution": p.contribution, "edges": p.edges.iter().map(|h| json!({"from": h.from_did, "to": h.to_did, "weight": h.weight})).collect::<Vec<_>>()}))
                    .collect();
                print_json(&json!({
                    "did": e.did,
                    "level": e.level,
                    "score": e.score,
                    "rawScore": e.raw_score,
                    "penalty": e.penalty,
                    "computedAt": e.computed_at_unix_ms,
                    "gates": e.gates,
                    "paths": paths,
                }));
            } else {
                println!("level {} score {:.6} gates {:?}", e.level, e.score, e.gates);
                for p in &e.paths {
                    let hops: Vec<&str> = p.edges.iter().map(|h| h.from_did.as_str()).collect();
                    println!("  {:.6}: {} -> {}", p.contribution, hops.join(" -> "), e.did);
                }
            }
        }
        TrustCommand::Endorse { did, capability } => {
            did_arg(did)?;
            receipt_out(&agent.endorse(did, capability.as_deref()).await.map_err(rule_refused)?);
        }
        TrustCommand::Report { did, severity, capability } => {
            did_arg(did)?;
            let severity = match severity {
                SeverityArg::Low => Severity::Low,
                SeverityArg::Medium => Severity::Medium,
                SeverityArg::High => Severity::High,
            };
            receipt_out(
                &agent
                    .report_incident(did, severity, capability.as_deref())
                    .await
                    .map_err(rule_refused)?,
            );
        }
        TrustCommand::Receipt(ReceiptCommand::Start { with, capability, outcome, output }) => {
            did_arg(with)?;
            let outcome = match outcome {
                OutcomeArg::Success => Outcome::Success,
                OutcomeArg::Failure => Outcome::Failure,
            };
            let r = agent.start_receipt(with, capability, outcome).await?;
            let text = r.to_json().map_err(atp::Error::from)?;
            write_output(output.as_deref(), format!("{text}\n").as_bytes(), false)?;
        }
        TrustCommand::Receipt(ReceiptCommand::Countersign { file, output }) => {
            let bytes = read_input(Some(file))?;
            let r = SignedEvidence::from_json(&bytes)
                .map_err(|e| CliError::Usage(format!("{}: {e}", file.display())))?;
            let signed = agent.countersign_receipt(r).await.map_err(refused)?;
            let text = signed.to_json().map_err(atp::Error::from)?;
            write_output(output.as_deref(), format!("{text}\n").as_bytes(), false)?;
        }
        TrustCommand::Receipt(ReceiptCommand::Submit { file }) => {
            let bytes = read_input(Some(file))?;
            let r = SignedEvidence::from_json(&bytes)
                .map_err(|e| CliError::Usage(format!("{}: {e}", file.display())))?;
            receipt_out(&agent.submit_evidence(&r).await?);
        }
    }
    Ok(EXIT_OK)
}
