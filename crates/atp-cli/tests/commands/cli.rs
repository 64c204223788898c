//! The `atp` binary: the README walk-through run verbatim against a real node (in-process,
//! 127.0.0.1:0), `atp crypto verify` against Python `cryptography` in both directions, and bad
//! input: one-line errors and the documented exit codes (docs/cli.md).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use crate::support::{start_node, workspace_root};

const ATP: &str = env!("CARGO_BIN_EXE_atp");

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `atp` (or another program) with `args` in `cwd`, with a 120 s bound.
async fn run(program: &Path, args: &[&str], cwd: &Path, env: &[(&str, &str)], stdin: &[u8]) -> Run {
    use tokio::io::AsyncWriteExt as _;
    let mut command = tokio::process::Command::new(program);
    command
        .args(args)
        .current_dir(cwd)
        .env_remove("ATP_NODE")
        .env_remove("ATP_AGENT")
        .env_remove("ATP_HOME")
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("spawn");
    let mut input = child.stdin.take().expect("stdin");
    input.write_all(stdin).await.expect("write stdin");
    drop(input);
    let out: Output = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .expect("took more than 120 s")
        .expect("output");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

async fn atp(args: &[&str], cwd: &Path, env: &[(&str, &str)]) -> Run {
    run(Path::new(ATP), args, cwd, env, b"").await
}

/// The fenced `sh` block between the walk-through markers of README.md.
fn readme_walkthrough() -> String {
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).expect("README.md");
    let begin = readme.find("<!-- cli-walkthrough:begin -->").expect("walk-through begin marker");
    let end = readme.find("<!-- cli-walkthrough:end -->").expect("walk-through end marker");
    let section = &readme[begin..end];
    let start = section.find("```sh\n").expect("```sh block") + "```sh\n".len();
    let stop = section[start..].find("```").expect("end of block") + start;
    section[start..stop].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_walkthrough_runs_verbatim_against_a_real_node() {
    let node = start_node().await;
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("atp-home");
    let script = readme_walkthrough();
    assert!(script.contains("atp "), "the walk-through runs atp commands:\n{script}");
    let bin_dir = Path::new(ATP).parent().unwrap();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let out = run(
        Path::new("bash"),
        &["-euo", "pipefail", "-c", &script],
        dir.path(),
        &[("PATH", &path), ("ATP_NODE", &node.url), ("ATP_HOME", home.to_str().unwrap())],
        b"",
    )
    .await;
    let report = format!(
        "exit {}\nscript:\n{script}\nstdout:\n{}\nstderr:\n{}",
        out.code, out.stdout, out.stderr
    );
    assert_eq!(out.code, 0, "{report}");
    assert!(out.stdout.contains("invoice #42 approved"), "{report}");
    assert!(out.stderr.contains("verified from did:atp:"), "{report}");
    assert!(out.stdout.contains("\"deactivated\""), "the resolution is printed: {report}");
    assert!(out.stdout.contains("verified"), "{report}");
    // Two agents, each with its keys under $ATP_HOME.
    for agent in ["alice", "bob"] {
        assert!(home.join("agents").join(agent).join("kel.json").exists(), "{agent}: {report}");
    }
}

fn python() -> Option<PathBuf> {
    atp_test_vectors::python_with(
        "import cryptography\nfrom cryptography.hazmat.primitives.asymmetric import mldsa, ed25519",
        "`cryptography` with ML-DSA",
    )
}

/// Python `cryptography`: `sign ALG CTX_HEX MSG_FILE` prints `pk_hex sig_hex`;
/// `verify ALG PK_HEX CTX_HEX SIG_HEX MSG_FILE` prints `valid` or `invalid`.
const PY: &str = r#"
import sys
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519, mldsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
cmd, alg = sys.argv[1], sys.argv[2]
raw = (Encoding.Raw, PublicFormat.Raw)
if cmd == "sign":
    ctx, msg = bytes.fromhex(sys.argv[3]), open(sys.argv[4], "rb").read()
    if alg == "ed25519":
        assert ctx == b""
        k = ed25519.Ed25519PrivateKey.generate(); sig = k.sign(msg)
    else:
        k = mldsa.MLDSA65PrivateKey.generate(); sig = k.sign(msg, ctx)
    print(k.public_key().public_bytes(*raw).hex(), sig.hex())
else:
    pk, ctx, sig = bytes.fromhex(sys.argv[3]), bytes.fromhex(sys.argv[4]), bytes.fromhex(sys.argv[5])
    msg = open(sys.argv[6], "rb").read()
    try:
        if alg == "ed25519":
            ed25519.Ed25519PublicKey.from_public_bytes(pk).verify(sig, msg)
        else:
            mldsa.MLDSA65PublicKey.from_public_bytes(pk).verify(sig, msg, ctx)
        print("valid")
    except InvalidSignature:
        print("invalid")
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crypto_verify_agrees_with_python_cryptography_both_directions() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("interop.py"), PY).unwrap();
    std::fs::write(d.join("msg"), b"interop message \x00\xff").unwrap();
    std::fs::write(d.join("other"), b"interop message \x00\xfe").unwrap();
    let py = |args: Vec<String>| {
        let python = python.clone();
        let d = d.to_path_buf();
        async move {
            let mut all = vec!["interop.py".to_owned()];
            all.extend(args);
            let refs: Vec<&str> = all.iter().map(String::as_str).collect();
            let out = run(&python, &refs, &d, &[], b"").await;
            assert_eq!(out.code, 0, "python {all:?}: {}", out.stderr);
            out.stdout.trim().to_owned()
        }
    };
    for (alg, ctx) in [("ed25519", ""), ("ml-dsa-65", "6174702f696e7465726f70")] {
        // Rust signs, Python verifies (and refuses another message).
        let key = format!("{alg}.key");
        let keygen =
            atp(&["crypto", "keygen", "--alg", alg, "--out", &key, "--json"], d, &[]).await;
        assert_eq!(keygen.code, 0, "{}", keygen.stderr);
        let info: serde_json::Value = serde_json::from_str(&keygen.stdout).unwrap();
        let pk = info["publicKeyHex"].as_str().unwrap().to_owned();
        let signed = atp(
            &["crypto", "sign", "--alg", alg, "--key", &key, "--ctx", ctx, "--in", "msg"],
            d,
            &[],
        )
        .await;
        assert_eq!(signed.code, 0, "{}", signed.stderr);
        let sig = signed.stdout.trim().to_owned();
        let args = |m: &str| {
            vec!["verify".into(), alg.into(), pk.clone(), ctx.into(), sig.clone(), m.into()]
        };
        assert_eq!(py(args("msg")).await, "valid", "{alg}: Python refused a Rust signature");
        assert_eq!(py(args("other")).await, "invalid", "{alg}: Python accepted a wrong message");
        // The Multikey form of the same key verifies too.
        let mk = info["publicKeyMultibase"].as_str().unwrap();
        let v = atp(
            &[
                "crypto", "verify", "--alg", alg, "--pub", mk, "--ctx", ctx, "--sig", &sig, "--in",
                "msg",
            ],
            d,
            &[],
        )
        .await;
        assert_eq!(v.code, 0, "{alg} multikey: {} {}", v.stdout, v.stderr);

        // Python signs, Rust verifies: 0 valid, 1 invalid (wrong message, flipped bit, wrong ctx).
        let out = py(vec!["sign".into(), alg.into(), ctx.into(), "msg".into()]).await;
        let (pk, sig) = out.split_once(' ').unwrap();
        let verify = |m: &'static str, s: String, c: &'static str| {
            let pk = pk.to_owned();
            async move {
                atp(
                    &[
                        "crypto", "verify", "--alg", alg, "--pub", &pk, "--ctx", c, "--sig", &s,
                        "--in", m,
                    ],
                    d,
                    &[],
                )
                .await
            }
        };
        let ok = verify("msg", sig.to_owned(), ctx).await;
        assert_eq!((ok.code, ok.stdout.trim()), (0, "valid"), "{alg}: {}", ok.stderr);
        assert_eq!(verify("other", sig.to_owned(), ctx).await.code, 1, "{alg}: wrong message");
        let mut flipped = hex::decode(sig).unwrap();
        flipped[10] ^= 1;
        assert_eq!(verify("msg", hex::encode(flipped), ctx).await.code, 1, "{alg}: flipped bit");
        if !ctx.is_empty() {
            assert_eq!(verify("msg", sig.to_owned(), "00").await.code, 1, "{alg}: another ctx");
        }
    }
}

fn one_line_error(run: &Run, what: &str) {
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{what}: stderr must be one line:\n{}", run.stderr);
    assert!(
        lines[0].starts_with("atp: error: ") || lines[0].starts_with("error: "),
        "{what}: {}",
        run.stderr
    );
    assert!(!run.stderr.contains("panicked") && !run.stderr.contains("RUST_BACKTRACE"), "{what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gives_one_line_errors_and_documented_exit_codes() {
    let node = start_node().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let home = d.join("home");
    let env = [("ATP_NODE", node.url.as_str()), ("ATP_HOME", home.to_str().unwrap())];
    std::fs::write(d.join("msg"), b"m").unwrap();
    std::fs::write(d.join("garbage.atp"), b"ATPENV1\0garbage").unwrap();
    std::fs::write(d.join("notjson.key"), b"{not json").unwrap();
    let ok = atp(&["crypto", "keygen", "--alg", "ed25519", "--out", "ed.key"], d, &[]).await;
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    let sig = "00".repeat(64);
    let ed_hex = "11".repeat(32);

    let cases: Vec<(Vec<&str>, i32, &str)> = vec![
        (
            vec![
                "crypto",
                "verify",
                "--alg",
                "ed25519",
                "--pub",
                "z6MkNOTAKEY",
                "--sig",
                &sig,
                "--in",
                "msg",
            ],
            2,
            "malformed multikey",
        ),
        (
            vec![
                "crypto", "verify", "--alg", "ed25519", "--pub", "abcd", "--sig", &sig, "--in",
                "msg",
            ],
            2,
            "wrong-size hex key",
        ),
        (
            vec![
                "crypto", "verify", "--alg", "ed25519", "--pub", &ed_hex, "--sig", "xyz", "--in",
                "msg",
            ],
            2,
            "signature not hex",
        ),
        (
            vec![
                "crypto",
                "verify",
                "--alg",
                "ml-dsa-65",
                "--pub",
                "z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp",
                "--sig",
                &sig,
                "--in",
                "msg",
            ],
            2,
            "key of another algorithm",
        ),
        (
            vec!["crypto", "verify", "--alg", "rsa", "--pub", "00", "--sig", "00"],
            2,
            "unknown algorithm",
        ),
        (
            vec![
                "crypto",
                "verify",
                "--alg",
                "ed25519",
                "--pub",
                "z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp",
                "--sig",
                &sig,
                "--in",
                "missing-file",
            ],
            4,
            "missing message file",
        ),
        (
            vec!["crypto", "sign", "--alg", "ed25519", "--key", "notjson.key", "--in", "msg"],
            2,
            "malformed key file",
        ),
        (
            vec!["crypto", "sign", "--alg", "ml-dsa-65", "--key", "ed.key", "--in", "msg"],
            2,
            "key of another algorithm",
        ),
        (
            vec![
                "crypto", "sign", "--alg", "ed25519", "--key", "ed.key", "--ctx", "00", "--in",
                "msg",
            ],
            2,
            "Ed25519 takes no context",
        ),
        (vec!["seal", "--to", "not-a-did", "--in", "msg", "--out", "x"], 2, "malformed DID"),
        (vec!["id", "resolve", "did:atp:notascid"], 2, "malformed did:atp"),
        (vec!["open", "garbage.atp"], 1, "malformed envelope"),
        (vec!["--agent", "../x", "id", "show"], 2, "bad agent name"),
        (
            vec!["--node", "http://127.0.0.1:1", "--agent", "offline", "id", "show"],
            3,
            "node unreachable",
        ),
        (vec!["id", "deactivate"], 2, "deactivation without --yes"),
        (vec!["admin", "anchors", "list"], 2, "admin without a token"),
    ];
    for (args, code, what) in cases {
        let out = atp(&args, d, &env).await;
        assert_eq!(
            out.code, code,
            "{what}: {args:?}\nstdout: {}\nstderr: {}",
            out.stdout, out.stderr
        );
        one_line_error(&out, what);
    }

    // A key file others can read is refused.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(d.join("ed.key"), std::fs::Permissions::from_mode(0o644)).unwrap();
        let out =
            atp(&["crypto", "sign", "--alg", "ed25519", "--key", "ed.key", "--in", "msg"], d, &[])
                .await;
        assert_eq!(out.code, 2, "{}", out.stderr);
        one_line_error(&out, "world-readable key file");
        assert!(out.stderr.contains("chmod 600"), "{}", out.stderr);
    }

    // Unreachable node: the message says what to do; --json errors are JSON.
    let out = atp(
        &["--node", "http://127.0.0.1:1", "--agent", "offline", "--json", "id", "show"],
        d,
        &env,
    )
    .await;
    assert_eq!(out.code, 3);
    let err: serde_json::Value = serde_json::from_str(out.stderr.trim()).expect("JSON error");
    assert_eq!(err["error"]["code"], "NODE_UNREACHABLE");
    assert!(err["error"]["message"].as_str().unwrap().contains("is `atp-node` running?"));

    // The admin commands with the token; the node-issued credential lifecycle.
    std::fs::write(d.join("admin.token"), crate::support::ADMIN_TOKEN).unwrap();
    let token_file = d.join("admin.token");
    let admin = [&env[..], &[("ATP_ADMIN_TOKEN_FILE", token_file.to_str().unwrap())]].concat();
    let me = atp(&["--agent", "ops", "id", "new"], d, &admin).await;
    assert_eq!(me.code, 0, "{}", me.stderr);
    let did = me.stdout.trim();
    let set = atp(&["--agent", "ops", "admin", "anchors", "set", did], d, &admin).await;
    assert_eq!(set.code, 0, "{}", set.stderr);
    let list = atp(&["--agent", "ops", "--json", "admin", "anchors", "list"], d, &admin).await;
    let listed: serde_json::Value = serde_json::from_str(&list.stdout).unwrap();
    assert_eq!(listed["anchors"][0]["did"], did, "{}", list.stderr);

    let unsigned = serde_json::json!({
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "type": ["VerifiableCredential"],
        "credentialSubject": {"id": did},
    });
    std::fs::write(d.join("vc.json"), unsigned.to_string()).unwrap();
    let issued = atp(
        &["--agent", "ops", "vc", "issue", "--node-issuer", "--status", "revocation", "vc.json"],
        d,
        &admin,
    )
    .await;
    assert_eq!(issued.code, 0, "{}", issued.stderr);
    std::fs::write(d.join("signed.json"), &issued.stdout).unwrap();
    let status = atp(&["--agent", "ops", "vc", "status", "signed.json"], d, &admin).await;
    assert_eq!((status.code, status.stdout.trim()), (0, "valid"), "{}", status.stderr);
    let revoke = atp(&["--agent", "ops", "vc", "revoke", "signed.json"], d, &admin).await;
    assert_eq!(revoke.code, 0, "{}", revoke.stderr);
    let status = atp(&["--agent", "ops", "vc", "status", "signed.json"], d, &admin).await;
    assert_eq!((status.code, status.stdout.trim()), (0, "revoked"), "{}", status.stderr);
    let verify =
        atp(&["--agent", "ops", "vc", "verify", "--online", "signed.json"], d, &admin).await;
    assert_eq!(verify.code, 1, "a revoked credential fails online verification: {}", verify.stderr);
    one_line_error(&verify, "revoked credential");

    let completions = atp(&["completions", "bash"], d, &[]).await;
    assert_eq!(completions.code, 0);
    assert!(completions.stdout.contains("_atp()"), "bash completion function");
}

/// The trust commands a careful operator checks the model with: `admin trust recompute` waits
/// for a new snapshot, `trust get` and `trust explain` report its unrounded raw score, penalty
/// and time, `admin trust config` prints the constants as a `[trust]` section, and a refused
/// self-endorsement exits 3 with the node's code.
#[tokio::test(flavor = "multi_thread")]
async fn trust_commands_report_the_computation_and_its_constants_and_erase() {
    let node = start_node().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let home = d.join("home");
    std::fs::write(d.join("admin.token"), crate::support::ADMIN_TOKEN).unwrap();
    let token_file = d.join("admin.token");
    let env = [
        ("ATP_NODE", node.url.as_str()),
        ("ATP_HOME", home.to_str().unwrap()),
        ("ATP_ADMIN_TOKEN_FILE", token_file.to_str().unwrap()),
    ];
    let anchor = atp(&["--agent", "anchor", "id", "new"], d, &env).await;
    assert_eq!(anchor.code, 0, "{}", anchor.stderr);
    let anchor = anchor.stdout.trim().to_owned();
    let alice = atp(&["--agent", "alice", "id", "new"], d, &env).await;
    assert_eq!(alice.code, 0, "{}", alice.stderr);
    let alice = alice.stdout.trim().to_owned();
    let set = atp(&["--agent", "anchor", "admin", "anchors", "set", &anchor], d, &env).await;
    assert_eq!(set.code, 0, "{}", set.stderr);
    let endorse = atp(&["--agent", "anchor", "trust", "endorse", &alice], d, &env).await;
    assert_eq!(endorse.code, 0, "{}", endorse.stderr);

    // Self-evidence: the node's rule and code, exit 3 (docs/cli.md), nothing submitted.
    let own = atp(&["--agent", "alice", "--json", "trust", "endorse", &alice], d, &env).await;
    assert_eq!(own.code, 3, "{}", own.stderr);
    let err: serde_json::Value = serde_json::from_str(own.stderr.trim()).unwrap();
    assert_eq!(err["error"]["code"], "EVIDENCE_SELF", "{}", own.stderr);

    let recompute = atp(&["--agent", "anchor", "--json", "admin", "trust", "recompute"], d, &env);
    let recompute = recompute.await;
    assert_eq!(recompute.code, 0, "{}", recompute.stderr);
    let r: serde_json::Value = serde_json::from_str(&recompute.stdout).unwrap();
    let levels: Vec<u64> =
        r["levelCounts"].as_array().unwrap().iter().map(|n| n.as_u64().unwrap()).collect();
    assert_eq!(levels.len(), 5, "{r}");
    assert_eq!(levels.iter().sum::<u64>(), r["agents"].as_u64().unwrap(), "{r}");
    assert!(r["agents"].as_u64().unwrap() >= 2 && r["edges"].as_u64().unwrap() >= 1, "{r}");
    assert_eq!(levels[4], 1, "the anchor is the one DID at level 4: {r}");

    let get = atp(&["--agent", "anchor", "--json", "trust", "get", &alice], d, &env).await;
    assert_eq!(get.code, 0, "{}", get.stderr);
    let g: serde_json::Value = serde_json::from_str(&get.stdout).unwrap();
    let raw = g["rawScore"].as_f64().unwrap();
    assert!(raw > 0.0 && g["penalty"].as_f64().unwrap() == 0.0, "{g}");
    assert_eq!(g["computedAt"], r["computedAt"], "the proof states the recomputed snapshot");
    let explain = atp(&["--agent", "anchor", "--json", "trust", "explain", &alice], d, &env).await;
    assert_eq!(explain.code, 0, "{}", explain.stderr);
    let e: serde_json::Value = serde_json::from_str(&explain.stdout).unwrap();
    assert_eq!((e["rawScore"].as_f64(), &e["penalty"]), (Some(raw), &g["penalty"]), "{e}");
    assert_eq!(e["computedAt"], r["computedAt"]);

    // The constants as a [trust] section: TOML, with the keys and units of the node's file.
    let config = atp(&["--agent", "anchor", "admin", "trust", "config"], d, &env).await;
    assert_eq!(config.code, 0, "{}", config.stderr);
    let section: toml::Table = toml::from_str(&config.stdout).unwrap();
    let trust = section["trust"].as_table().unwrap();
    assert_eq!(trust["damping"].as_float(), Some(0.85), "{}", config.stdout);
    assert_eq!(trust["half_life"].as_str(), Some("15552000000ms"), "180 days");
    assert_eq!(trust.len(), 18, "every key: {}", config.stdout);
    let json = atp(&["--agent", "anchor", "--json", "admin", "trust", "config"], d, &env).await;
    let c: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(c["level_thresholds"], serde_json::json!([0.05, 0.25, 0.5, 0.8]), "{c}");

    // Erasure: alice's evidence is destroyed and counted; nothing more about her is accepted;
    // a second erasure changes nothing; a subject that is not a DID is a usage error.
    let erase = ["--agent", "anchor", "--json", "admin", "erase", "--subject", alice.as_str()];
    let erased = atp(&erase, d, &env).await;
    assert_eq!(erased.code, 0, "{}", erased.stderr);
    let e: serde_json::Value = serde_json::from_str(&erased.stdout).unwrap();
    assert_eq!(
        (e["subject"].as_str(), e["evidenceErased"].as_u64()),
        (Some(alice.as_str()), Some(1))
    );
    assert_eq!(e["alreadyErased"], false, "{e}");
    let again = atp(&["--agent", "anchor", "--json", "trust", "endorse", &alice], d, &env).await;
    assert_eq!(again.code, 3, "{}", again.stderr);
    let err: serde_json::Value = serde_json::from_str(again.stderr.trim()).unwrap();
    assert_eq!(err["error"]["code"], "SUBJECT_ERASED", "{}", again.stderr);
    let twice = atp(&erase, d, &env).await;
    let t: serde_json::Value = serde_json::from_str(&twice.stdout).unwrap();
    assert_eq!((&t["alreadyErased"], &t["logIndex"]), (&serde_json::json!(true), &e["logIndex"]));
    let bad = atp(&["--agent", "anchor", "admin", "erase", "--subject", "alice"], d, &env).await;
    assert_eq!(bad.code, 2, "{}", bad.stderr);

    // With a wrong admin token the node refuses both before computing or answering anything.
    std::fs::write(d.join("wrong.token"), "not-the-admin-token").unwrap();
    let wrong_file = d.join("wrong.token");
    let wrong = [&env[..2], &[("ATP_ADMIN_TOKEN_FILE", wrong_file.to_str().unwrap())]].concat();
    for command in ["recompute", "config"] {
        let out = atp(&["--agent", "anchor", "--json", "admin", "trust", command], d, &wrong).await;
        assert_eq!(out.code, 3, "{command}: {}", out.stderr);
        let err: serde_json::Value = serde_json::from_str(out.stderr.trim()).unwrap();
        assert_eq!(err["error"]["code"], "AUTH_INVALID", "{command}: {}", out.stderr);
    }
}

/// Log evidence for a node key made here: checkpoints of `sizes` (with different roots) signed
/// by it; equal sizes are a fork.
fn signed_evidence(sizes: (u64, u64)) -> atp::core::log_evidence::LogEvidence {
    use atp::core::checkpoint::{Checkpoint, sign_note};
    use atp::crypto::{AlgorithmId, SigningKey};
    let key = SigningKey::generate(AlgorithmId::MlDsa65Ed25519).unwrap();
    let next = SigningKey::generate(AlgorithmId::MlDsa65Ed25519).unwrap();
    let icp = atp::core::kel::incept(&key, next.public_key_ref(), vec![], "2026-01-01T00:00:00Z")
        .unwrap();
    let did = format!("did:atp:{}", icp.event.scid().unwrap());
    let (mldsa, ed) = key.components().unwrap();
    let origin = "fork.example/log";
    let note =
        |size, root| sign_note(&Checkpoint::new(origin, size, root), origin, ed, mldsa).unwrap();
    atp::core::log_evidence::LogEvidence::new(
        &did,
        vec![icp],
        &note(sizes.0, [1; 32]),
        &note(sizes.1, [2; 32]),
        None,
        "test: two trees\u{1b}[31m",
    )
}

#[tokio::test]
async fn log_checkpoints_are_kept_gossiped_and_evidence_checks_offline() {
    let node = start_node().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let home = d.join("home");
    let env = [("ATP_NODE", node.url.as_str()), ("ATP_HOME", home.to_str().unwrap())];

    // Agent one keeps its checkpoint; agent two gossips it against its own view: one log.
    let saved = atp(&["log", "checkpoint", "--out", "one.note"], d, &env).await;
    assert_eq!(saved.code, 0, "{}", saved.stderr);
    // The two verifier keys a witness's [[log]] table needs, as TOML lines.
    let origin = saved.stdout.split(' ').next().unwrap().to_owned();
    for (key, line) in ["ed25519", "mldsa65"].iter().zip(saved.stdout.lines().skip(1)) {
        assert!(line.starts_with(&format!("{key} = \"{origin}+")), "{line}");
    }
    assert!(std::fs::read_to_string(d.join("one.note")).unwrap().contains("\n— "));
    let kept = std::fs::read_dir(home.join("agents/default/checkpoints")).unwrap().count();
    assert_eq!(kept, 1, "the agent keeps the checkpoint it verified");
    let two = [env[0], env[1], ("ATP_AGENT", "two")];
    let gossip = atp(&["--json", "log", "gossip", "one.note"], d, &two).await;
    assert_eq!(gossip.code, 0, "{}", gossip.stderr);
    let v: serde_json::Value = serde_json::from_str(&gossip.stdout).unwrap();
    assert_eq!(v["consistent"], true, "{v}");

    // A 2-of-3 witness policy: the node's note alone is refused; cosigned by two, verified.
    let note = std::fs::read_to_string(d.join("one.note")).unwrap();
    let body = atp::core::checkpoint::SignedNote::parse(&note).unwrap().text;
    let checkpoint = atp::core::checkpoint::Checkpoint::parse_body(&body).unwrap();
    let mut policy = String::from("quorum 2\n");
    let mut cosigned = note.clone();
    for i in 0..3 {
        let key =
            atp::crypto::SigningKey::generate(atp::crypto::AlgorithmId::MlDsa65Ed25519).unwrap();
        let name = format!("witness.test/w{i}");
        let [ed, ml] = atp::core::witness::CosignerKey::from_composite(&name, key.public_key_ref())
            .unwrap()
            .vkeys();
        policy.push_str(&format!("witness {ed} {ml}\n"));
        if i > 0 {
            cosigned.push_str(&atp::core::witness::cosign(&checkpoint, &name, 1, &key).unwrap());
        }
    }
    std::fs::write(d.join("policy"), policy).unwrap();
    std::fs::write(d.join("cosigned.note"), cosigned).unwrap();
    let alone = atp(&["log", "verify", "one.note", "--witnesses", "policy"], d, &env).await;
    assert_eq!(alone.code, 1, "{}", alone.stderr);
    assert!(alone.stderr.contains("WITNESS_QUORUM_NOT_MET"), "{}", alone.stderr);
    let quorum =
        atp(&["--json", "log", "verify", "cosigned.note", "--witnesses", "policy"], d, &env).await;
    assert_eq!(quorum.code, 0, "{}", quorum.stderr);
    let v: serde_json::Value = serde_json::from_str(&quorum.stdout).unwrap();
    assert_eq!(v["witnesses"], 2, "{v}");
    std::fs::write(d.join("bad-policy"), "quorum 4\n").unwrap();
    let bad = atp(&["log", "verify", "cosigned.note", "--witnesses", "bad-policy"], d, &env).await;
    assert_eq!(bad.code, 2, "{}", bad.stderr);

    // Evidence checks offline: the node is not needed (nothing listens at port 1).
    let evidence = signed_evidence((3, 3));
    std::fs::write(d.join("fork.json"), evidence.to_json().unwrap()).unwrap();
    let offline = [("ATP_NODE", "http://127.0.0.1:1"), env[1]];
    let checked = atp(&["--json", "log", "evidence", "fork.json"], d, &offline).await;
    assert_eq!(checked.code, 0, "{}", checked.stderr);
    let v: serde_json::Value = serde_json::from_str(&checked.stdout).unwrap();
    assert_eq!((v["misbehaviour"].as_str(), v["size"].as_u64()), (Some("fork"), Some(3)));
    assert_eq!(v["observed"], "test: two trees[31m", "control characters are not printed");
    // Two signed trees of different sizes without a proof are not proof (exit 1).
    std::fs::write(d.join("sizes.json"), signed_evidence((3, 5)).to_json().unwrap()).unwrap();
    let unresolved = atp(&["log", "evidence", "sizes.json"], d, &offline).await;
    assert_eq!(unresolved.code, 1, "{}", unresolved.stderr);
    assert!(unresolved.stderr.contains("LOG_EVIDENCE_UNRESOLVED"), "{}", unresolved.stderr);
    // One edited byte: the signature no longer verifies (exit 1, with the code).
    let mut edited = evidence.clone();
    edited.later = edited.later.replacen("\n3\n", "\n4\n", 1);
    std::fs::write(d.join("edited.json"), edited.to_json().unwrap()).unwrap();
    let refused = atp(&["log", "evidence", "edited.json"], d, &offline).await;
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(refused.stderr.contains("CHECKPOINT_SIGNATURE_INVALID"), "{}", refused.stderr);
    // A note of another log is not gossip about this node's log.
    std::fs::write(d.join("other.note"), &evidence.earlier).unwrap();
    let other = atp(&["log", "gossip", "other.note"], d, &env).await;
    assert_eq!(other.code, 1, "{}", other.stderr);
    assert!(other.stderr.contains("CHECKPOINT_SIGNATURE"), "{}", other.stderr);
}
