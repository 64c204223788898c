//! Challenge-response authentication and session tokens (docs/protocol.md Part F, items 2 and
//! 3): the exact byte layouts `ATPAUT1\0` (what an agent signs to authenticate) and `ATPTOK1\0`
//! (the token the node signs), both under ctx `atp/session/v1`, and their limits. The node
//! parses and checks them; the SDK builds them. The two magics keep the layouts apart under the
//! shared context.

use base64::Engine as _;

/// The longest DID accepted in requests and signed layouts, in bytes.
pub const MAX_DID_BYTES: usize = 512;
/// The longest audience, in bytes.
pub const MAX_AUDIENCE_BYTES: usize = 512;
/// The length of a challenge.
pub const CHALLENGE_LEN: usize = 32;
/// The longest session token lifetime the protocol allows, in milliseconds.
pub const MAX_SESSION_LIFETIME_MS: i64 = 3_600_000;
/// Magic of the authentication response.
pub const AUTH_MAGIC: [u8; 8] = *b"ATPAUT1\0";
/// Magic of the session token.
pub const TOKEN_MAGIC: [u8; 8] = *b"ATPTOK1\0";

/// A parsed authentication response (`ATPAUT1\0`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authentication {
    /// The authenticating DID.
    pub did: String,
    /// The `s` of the KEL event that established the signing key.
    pub key_seq: u64,
    /// The node DID it names.
    pub node_did: String,
    /// The audience.
    pub audience: String,
    /// The challenge.
    pub challenge: [u8; CHALLENGE_LEN],
}

/// The layouts' reader: a parser of this module answers only whether the bytes are the layout.
type Reader<'a> = crate::wire::Reader<'a, ()>;

/// A length-prefixed UTF-8 string of at most `max` bytes.
fn string(r: &mut Reader<'_>, max: usize) -> Option<String> {
    let len = r.len("length").ok()?;
    if len > max {
        return None;
    }
    String::from_utf8(r.take(len, "string").ok()?.to_vec()).ok()
}

impl Authentication {
    /// Parses the exact layout (docs/protocol.md Part F, item 2); `None` for anything else.
    pub fn parse(bytes: &[u8]) -> Option<Self> {
        let mut r = Reader::new(bytes, |_| ());
        if r.take(8, "magic").ok()? != AUTH_MAGIC {
            return None;
        }
        let did = string(&mut r, MAX_DID_BYTES)?;
        let key_seq = r.u64("key_seq").ok()?;
        let node_did = string(&mut r, MAX_DID_BYTES)?;
        let audience = string(&mut r, MAX_AUDIENCE_BYTES)?;
        let mut challenge = [0u8; CHALLENGE_LEN];
        challenge.copy_from_slice(r.take(CHALLENGE_LEN, "challenge").ok()?);
        if !r.rest().is_empty()
            || did.is_empty()
            || node_did.is_empty()
            || !valid_audience(&audience)
        {
            return None;
        }
        Some(Authentication { did, key_seq, node_did, audience, challenge })
    }

    /// The signed bytes of this authentication response.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&AUTH_MAGIC);
        put_str(&mut out, &self.did);
        out.extend_from_slice(&self.key_seq.to_be_bytes());
        put_str(&mut out, &self.node_did);
        put_str(&mut out, &self.audience);
        out.extend_from_slice(&self.challenge);
        out
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    // Callers bound every string to 512 bytes.
    out.extend_from_slice(&u32::try_from(s.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// A session token's fields (`ATPTOK1\0`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionToken {
    /// The node's DID.
    pub issuer: String,
    /// The node's key event that established its signing key.
    pub issuer_key_seq: u64,
    /// The authenticated DID.
    pub subject: String,
    /// The subject's key that signed the authentication.
    pub subject_key_seq: u64,
    /// The audience.
    pub audience: String,
    /// Unix milliseconds.
    pub issued_at: i64,
    /// Unix milliseconds.
    pub expires_at: i64,
    /// Random token id.
    pub token_id: [u8; 16],
}

impl SessionToken {
    /// The signed bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&TOKEN_MAGIC);
        put_str(&mut out, &self.issuer);
        out.extend_from_slice(&self.issuer_key_seq.to_be_bytes());
        put_str(&mut out, &self.subject);
        out.extend_from_slice(&self.subject_key_seq.to_be_bytes());
        put_str(&mut out, &self.audience);
        out.extend_from_slice(&self.issued_at.to_be_bytes());
        out.extend_from_slice(&self.expires_at.to_be_bytes());
        out.extend_from_slice(&self.token_id);
        out
    }

    /// Parses the exact layout; `None` for anything else.
    pub fn parse(bytes: &[u8]) -> Option<Self> {
        let mut r = Reader::new(bytes, |_| ());
        if r.take(8, "magic").ok()? != TOKEN_MAGIC {
            return None;
        }
        let issuer = string(&mut r, MAX_DID_BYTES)?;
        let issuer_key_seq = r.u64("issuer_key_seq").ok()?;
        let subject = string(&mut r, MAX_DID_BYTES)?;
        let subject_key_seq = r.u64("subject_key_seq").ok()?;
        let audience = string(&mut r, MAX_AUDIENCE_BYTES)?;
        let issued_at = r.i64("issued_at").ok()?;
        let expires_at = r.i64("expires_at").ok()?;
        let token_id: [u8; 16] = r.array("token_id").ok()?;
        if !r.rest().is_empty() {
            return None;
        }
        Some(SessionToken {
            issuer,
            issuer_key_seq,
            subject,
            subject_key_seq,
            audience,
            issued_at,
            expires_at,
            token_id,
        })
    }
}

/// The session token string sent to the client: `b64u(token) "." b64u(signature)`.
pub fn join_session_token(token: &[u8], signature: &[u8]) -> String {
    let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!("{}.{}", e.encode(token), e.encode(signature))
}

/// Splits a session token string `b64u(token) "." b64u(signature)`.
pub fn split_session_token(token: &str) -> Option<(Vec<u8>, Vec<u8>)> {
    let (a, b) = token.split_once('.')?;
    let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    Some((e.decode(a).ok()?, e.decode(b).ok()?))
}

/// Whether `a` is a valid audience: 1 to [`MAX_AUDIENCE_BYTES`] bytes of printable ASCII
/// without spaces.
pub fn valid_audience(a: &str) -> bool {
    !a.is_empty() && a.len() <= MAX_AUDIENCE_BYTES && a.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn auth() -> Authentication {
        Authentication {
            did: "did:atp:zAgent".into(),
            key_seq: 3,
            node_did: "did:atp:zNode".into(),
            audience: "https://api.example".into(),
            challenge: [7u8; CHALLENGE_LEN],
        }
    }

    #[test]
    fn authentication_layout_is_exact() {
        let bytes = auth().to_bytes();
        let mut expected = b"ATPAUT1\0".to_vec();
        expected.extend_from_slice(&14u32.to_be_bytes());
        expected.extend_from_slice(b"did:atp:zAgent");
        expected.extend_from_slice(&3u64.to_be_bytes());
        expected.extend_from_slice(&13u32.to_be_bytes());
        expected.extend_from_slice(b"did:atp:zNode");
        expected.extend_from_slice(&19u32.to_be_bytes());
        expected.extend_from_slice(b"https://api.example");
        expected.extend_from_slice(&[7u8; 32]);
        assert_eq!(bytes, expected);
        assert_eq!(Authentication::parse(&bytes), Some(auth()));
    }

    #[test]
    fn authentication_refuses_anything_else() {
        let bytes = auth().to_bytes();
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert_eq!(Authentication::parse(&trailing), None);
        assert_eq!(Authentication::parse(&bytes[..bytes.len() - 1]), None);
        let mut token_magic = bytes.clone();
        token_magic[..8].copy_from_slice(&TOKEN_MAGIC);
        assert_eq!(Authentication::parse(&token_magic), None);
        let spaced = Authentication { audience: "a b".into(), ..auth() };
        assert_eq!(Authentication::parse(&spaced.to_bytes()), None);
        let long = Authentication { did: "d".repeat(MAX_DID_BYTES + 1), ..auth() };
        assert_eq!(Authentication::parse(&long.to_bytes()), None);
    }

    #[test]
    fn session_token_round_trip_and_split() {
        let token = SessionToken {
            issuer: "did:atp:zNode".into(),
            issuer_key_seq: 0,
            subject: "did:atp:zAgent".into(),
            subject_key_seq: 3,
            audience: "aud".into(),
            issued_at: 1_000,
            expires_at: 61_000,
            token_id: [9u8; 16],
        };
        let bytes = token.to_bytes();
        assert_eq!(&bytes[..8], b"ATPTOK1\0");
        assert_eq!(SessionToken::parse(&bytes), Some(token));
        assert_eq!(Authentication::parse(&bytes), None);
        let wire = join_session_token(&bytes, b"sig");
        assert_eq!(split_session_token(&wire), Some((bytes, b"sig".to_vec())));
        assert_eq!(split_session_token("no-dot"), None);
    }
}
