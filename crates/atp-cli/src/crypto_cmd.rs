//! `atp crypto …`: raw primitives, like `openssl pkeyutl`.

use std::path::Path;

use atp_crypto::keyfile::{self, KdfParams};
use atp_crypto::{AlgorithmId, CryptoError, PublicKey, SigningKey};
use serde_json::json;

use crate::output::{CliError, print_json, read_input};
use crate::{AlgArg, CryptoCommand, EXIT_INVALID, EXIT_OK};

fn hex_arg(what: &str, text: &str) -> Result<Vec<u8>, CliError> {
    hex::decode(text.trim()).map_err(|e| CliError::Usage(format!("--{what}: not hex ({e})")))
}

fn describe(key: &PublicKey) -> serde_json::Value {
    let mut v = json!({
        "algorithm": key.algorithm().name(),
        "publicKeyHex": hex::encode(key.as_bytes()),
    });
    if let Ok(mk) = key.to_multikey() {
        v["publicKeyMultibase"] = mk.into();
    }
    v
}

fn print_key(json: bool, key: &PublicKey) {
    if json {
        print_json(&describe(key));
    } else {
        // The Multikey where one exists (single algorithms); composites have none: hex.
        println!("{}", key.to_multikey().unwrap_or_else(|_| hex::encode(key.as_bytes())));
    }
}

/// Parses `--pub`: a Multikey (`z…`, `u…`) of exactly `alg`, or the raw key in hex.
pub(crate) fn parse_public_key(alg: AlgorithmId, text: &str) -> Result<PublicKey, CliError> {
    let text = text.trim();
    let key = if text.starts_with('z') || text.starts_with('u') {
        PublicKey::from_multikey(text).map_err(|e| CliError::Usage(format!("--pub: {e}")))?
    } else {
        let bytes = hex_arg("pub", text)?;
        PublicKey::from_bytes(alg, &bytes).map_err(|e| CliError::Usage(format!("--pub: {e}")))?
    };
    if key.algorithm() != alg {
        return Err(CliError::Usage(format!(
            "--pub: a {} key, but --alg is {}",
            key.algorithm().name(),
            alg.name()
        )));
    }
    Ok(key)
}

fn load_key(alg: AlgorithmId, path: &Path) -> Result<SigningKey, CliError> {
    let passphrase = std::env::var("ATP_KEY_PASSPHRASE").ok().filter(|p| !p.is_empty());
    let key = keyfile::read(path, passphrase.as_deref().map(str::as_bytes))
        .map_err(|e| CliError::Usage(format!("--key {}: {e}", path.display())))?;
    if key.algorithm() != alg {
        return Err(CliError::Usage(format!(
            "--key {}: a {} key, but --alg is {}",
            path.display(),
            key.algorithm().name(),
            alg.name()
        )));
    }
    Ok(key)
}

/// Runs one `atp crypto` command; returns the exit code.
pub(crate) fn run(command: CryptoCommand, json: bool) -> Result<u8, CliError> {
    match command {
        CryptoCommand::Keygen { alg, out } => {
            let key = SigningKey::generate(alg.algorithm()).map_err(usage)?;
            let passphrase = std::env::var("ATP_KEY_PASSPHRASE").ok().filter(|p| !p.is_empty());
            keyfile::write(
                &out,
                &key,
                passphrase.as_deref().map(str::as_bytes),
                KdfParams::DEFAULT,
            )
            .map_err(|e| CliError::Usage(format!("--out {}: {e}", out.display())))?;
            print_key(json, key.public_key_ref());
            Ok(EXIT_OK)
        }
        CryptoCommand::Pubkey { key } => {
            let passphrase = std::env::var("ATP_KEY_PASSPHRASE").ok().filter(|p| !p.is_empty());
            let key = keyfile::read(&key, passphrase.as_deref().map(str::as_bytes))
                .map_err(|e| CliError::Usage(format!("--key {}: {e}", key.display())))?;
            print_key(json, key.public_key_ref());
            Ok(EXIT_OK)
        }
        CryptoCommand::Sign { alg, key, ctx, input } => {
            let ctx = hex_arg("ctx", &ctx)?;
            let key = load_key(alg.algorithm(), &key)?;
            let message = read_input(input.as_deref())?;
            let signature = key.sign(&message, &ctx).map_err(usage)?;
            if json {
                print_json(
                    &json!({"algorithm": alg_name(alg), "signature": hex::encode(signature)}),
                );
            } else {
                println!("{}", hex::encode(signature));
            }
            Ok(EXIT_OK)
        }
        CryptoCommand::Verify { alg, public_key, ctx, sig, input } => {
            let key = parse_public_key(alg.algorithm(), &public_key)?;
            let ctx = hex_arg("ctx", &ctx)?;
            let signature = hex_arg("sig", &sig)?;
            let message = read_input(input.as_deref())?;
            let outcome = key.verify(&message, &ctx, &signature);
            let (valid, reason) = match &outcome {
                Ok(()) => (true, None),
                Err(
                    e @ (CryptoError::InvalidSignature { .. }
                    | CryptoError::CompositeComponentInvalid { .. }
                    | CryptoError::SignatureLength { .. }),
                ) => (false, Some(e.to_string())),
                Err(e) => return Err(CliError::Usage(e.to_string())),
            };
            if json {
                print_json(&json!({"valid": valid, "algorithm": alg_name(alg), "reason": reason}));
            } else if valid {
                println!("valid");
            } else {
                println!("invalid: {}", reason.unwrap_or_default());
            }
            Ok(if valid { EXIT_OK } else { EXIT_INVALID })
        }
    }
}

fn alg_name(alg: AlgArg) -> &'static str {
    alg.algorithm().name()
}

fn usage(e: CryptoError) -> CliError {
    CliError::Usage(e.to_string())
}
