//! The verifier: [`KeyEventLog`] checks a log event by event (inception, links, pre-rotation, signatures, limits) and appends to a verified one.

use super::*;

impl KeyEventLog {
    /// The default verifier: composite keys only, default limits.
    pub fn new() -> Self {
        Self::default()
    }

    /// A verifier with other limits.
    pub fn with_limits(limits: KelLimits) -> Self {
        KeyEventLog { limits, ..Self::default() }
    }

    /// A verifier with another algorithm policy. Non-composite algorithms are refused even if
    /// the provider lists them.
    pub fn with_provider(provider: CryptoProvider) -> Self {
        KeyEventLog { provider, ..Self::default() }
    }

    /// The signature policy in force: the one provider a node passes on to the other
    /// verifications (envelopes, session authentication) so that they all apply the same list.
    pub fn provider(&self) -> &CryptoProvider {
        &self.provider
    }

    /// The limits in force.
    pub fn limits(&self) -> &KelLimits {
        &self.limits
    }

    /// Verify a complete log from its inception and return the resulting state.
    pub fn verify(&self, events: &[SignedEvent]) -> Result<KelState, CoreError> {
        self.verify_keeping(events, None).map(|(latest, _)| latest)
    }

    /// One pass over a complete log: the final state, and the state after event `keep` if it
    /// exists.
    fn verify_keeping(
        &self,
        events: &[SignedEvent],
        keep: Option<usize>,
    ) -> Result<(KelState, Option<KelState>), CoreError> {
        if events.len() > self.limits.max_events {
            return Err(CoreError::KelLimit {
                what: "events",
                limit: self.limits.max_events,
                actual: events.len(),
            });
        }
        let mut iter = events.iter();
        let first = iter
            .next()
            .ok_or(CoreError::KelMalformed { index: 0, reason: "the log is empty".into() })?;
        let mut state = self.check_event(0, None, first)?;
        let mut kept = (keep == Some(0)).then(|| state.clone());
        for (i, ev) in iter.enumerate() {
            state = self.check_event(i + 1, Some(&state), ev)?;
            if keep == Some(i + 1) {
                kept = Some(state.clone());
            }
        }
        Ok((state, kept))
    }

    /// Verify a complete log and check that it is the log of `did`.
    pub fn verify_did(&self, did: &str, events: &[SignedEvent]) -> Result<KelState, CoreError> {
        let state = self.verify(events)?;
        check_did(did, &state)?;
        Ok(state)
    }

    /// Verify a complete log and return the state after event `version` and the latest state.
    pub fn verify_at(
        &self,
        events: &[SignedEvent],
        version: u64,
    ) -> Result<(KelState, KelState), CoreError> {
        // One pass: every signature is checked once, whichever version is asked for.
        let keep = usize::try_from(version).ok();
        let (latest, at) = self.verify_keeping(events, keep)?;
        match at {
            Some(at) => Ok((at, latest)),
            None => Err(CoreError::DidVersionNotFound { version, latest: latest.sequence }),
        }
    }

    /// Verify one more event against a verified state (incremental verification).
    pub fn append(&self, state: &KelState, event: &SignedEvent) -> Result<KelState, CoreError> {
        let index = self.next_index(Some(state))?;
        self.check_event(index, Some(state), event)
    }

    /// Check an incoming event against a verified log for a fork (duplicity).
    ///
    /// - `Ok(ForkCheck::New)`: its sequence number is beyond the log.
    /// - `Ok(ForkCheck::Duplicate)`: the log holds the same body at that sequence number.
    /// - `Err(KelFork)`: a *different*, validly signed event claims a sequence number that the
    ///   log already uses. The error carries both digests as evidence. Only an event that
    ///   verifies against the log prefix before it counts as a fork; anything else returns the
    ///   precise verification error instead (it is merely invalid, not evidence of duplicity).
    /// - A different inception (sequence 0) belongs to a different DID: `KelDidMismatch`.
    ///
    /// On a conflict the prefix of `verified_log` is verified again, so the check never trusts
    /// the caller's claim that the log is verified.
    pub fn detect_fork(
        &self,
        verified_log: &[SignedEvent],
        incoming: &SignedEvent,
    ) -> Result<ForkCheck, CoreError> {
        let Some(existing) = usize::try_from(incoming.event.s)
            .ok()
            .and_then(|i| verified_log.get(i).map(|e| (i, e)))
        else {
            return Ok(ForkCheck::New);
        };
        let (index, existing) = existing;
        if existing == incoming
            || existing.event.canonical_bytes()? == incoming.event.canonical_bytes()?
        {
            return Ok(ForkCheck::Duplicate);
        }
        if index == 0 {
            let ours = self.check_event(0, None, existing)?;
            return Err(CoreError::KelDidMismatch {
                index: 0,
                expected: ours.did,
                found: format!("{DID_ATP_PREFIX}{}", incoming.event.scid()?),
            });
        }
        let prefix = self.verify(&verified_log[..index])?;
        self.check_event(index, Some(&prefix), incoming)?;
        Err(CoreError::KelFork {
            sequence: incoming.event.s,
            existing_digest: existing.digest()?,
            incoming_digest: incoming.digest()?,
        })
    }

    /// Verify that `events` is the log of `did` and report the validity window of the key
    /// established by event `seq`: from that event's `ts` until the `ts` of the next event
    /// (rotation or deactivation), if any. `Ok(None)` when `seq` is not an inception or
    /// rotation of this log.
    ///
    /// The DID is checked because the log usually comes from elsewhere (a node, a cache): a
    /// valid log of *another* DID must never lend its keys to `did` (`KelDidMismatch`).
    pub fn key_validity(
        &self,
        did: &str,
        events: &[SignedEvent],
        seq: u64,
    ) -> Result<Option<KeyValidity>, CoreError> {
        self.verify_did(did, events)?;
        key_validity_in_verified_log(events, seq)
    }

    /// The single verification routine for one event at position `index`.
    fn check_event(
        &self,
        index: usize,
        prev: Option<&KelState>,
        signed: &SignedEvent,
    ) -> Result<KelState, CoreError> {
        self.check_event_keeping_bytes(index, prev, signed).map(|(state, _)| state)
    }

    /// The index an event appended after `head` takes, within the event limit.
    pub(crate) fn next_index(&self, head: Option<&KelState>) -> Result<usize, CoreError> {
        let Some(state) = head else { return Ok(0) };
        let index = usize::try_from(state.sequence).unwrap_or(usize::MAX).saturating_add(1);
        if index >= self.limits.max_events {
            return Err(CoreError::KelLimit {
                what: "events",
                limit: self.limits.max_events,
                actual: index.saturating_add(1),
            });
        }
        Ok(index)
    }

    /// [`KeyEventLog::check_event`], also returning the canonical signed event (`JCS`), which
    /// the checks compute anyway and a store persists.
    pub(crate) fn check_event_keeping_bytes(
        &self,
        index: usize,
        prev: Option<&KelState>,
        signed: &SignedEvent,
    ) -> Result<(KelState, Vec<u8>), CoreError> {
        let ev = &signed.event;
        let malformed = |reason: &str| CoreError::KelMalformed { index, reason: reason.to_owned() };
        if prev.is_some_and(|st| st.deactivated) {
            return Err(CoreError::KelEventAfterDeactivation { index });
        }
        if ev.v != EVENT_VERSION {
            return Err(malformed("v must be \"atp/kel/1\""));
        }
        // Size first: everything after this works on bounded input.
        let signed_bytes = signed.canonical_bytes()?;
        if signed_bytes.len() > self.limits.max_event_bytes {
            return Err(CoreError::KelLimit {
                what: "event bytes",
                limit: self.limits.max_event_bytes,
                actual: signed_bytes.len(),
            });
        }
        if let Some(services) = &ev.services {
            if services.len() > self.limits.max_services {
                return Err(CoreError::KelLimit {
                    what: "services",
                    limit: self.limits.max_services,
                    actual: services.len(),
                });
            }
            for (i, s) in services.iter().enumerate() {
                s.check().map_err(|r| malformed(&r))?;
                if services[..i].iter().any(|o| o.id == s.id) {
                    return Err(malformed(&format!("duplicate service id {}", s.id)));
                }
            }
        }

        // Shape, sequence, DID and hash link.
        match (ev.t, prev) {
            (EventType::Inception, None) => {
                if ev.s != 0 {
                    return Err(CoreError::KelBadSequence { index, expected: 0, found: ev.s });
                }
                if ev.d.is_some() || ev.p.is_some() {
                    return Err(malformed("an inception event carries neither d nor p"));
                }
                if ev.n.is_none() {
                    return Err(malformed("an inception event must carry n"));
                }
            }
            (EventType::Inception, Some(_)) => {
                return Err(malformed("an inception event may only be the first event"));
            }
            (_, None) if ev.s != 0 => {
                return Err(CoreError::KelBadSequence { index, expected: 0, found: ev.s });
            }
            (_, None) => return Err(malformed("a log must begin with an inception event")),
            (t, Some(st)) => {
                let expected = st.sequence.saturating_add(1);
                if ev.s != expected {
                    return Err(CoreError::KelBadSequence { index, expected, found: ev.s });
                }
                let d = ev.d.as_deref().ok_or_else(|| malformed("d is missing"))?;
                if d != st.did {
                    return Err(CoreError::KelDidMismatch {
                        index,
                        expected: st.did.clone(),
                        found: trunc(d),
                    });
                }
                let p = ev.p.as_deref().ok_or_else(|| malformed("p is missing"))?;
                if p != st.last_digest {
                    return Err(CoreError::KelBrokenHashLink {
                        index,
                        expected: st.last_digest.clone(),
                        found: trunc(p),
                    });
                }
                match t {
                    EventType::Rotation if ev.n.is_none() => {
                        return Err(malformed("a rotation must carry n"));
                    }
                    EventType::Deactivation if ev.n.is_some() || ev.services.is_some() => {
                        return Err(malformed("a deactivation carries neither n nor services"));
                    }
                    _ => {}
                }
            }
        }

        // Key, algorithm policy and commitments.
        let k = ev.k.as_ref().ok_or_else(|| malformed("k is missing"))?;
        let key = k.parse(index)?;
        if !key.algorithm().is_composite() || !self.provider.accepts(key.algorithm()) {
            return Err(CoreError::KelAlgorithmNotAllowed {
                index,
                algorithm: key.algorithm().name().to_owned(),
            });
        }
        let k_commitment = k.commitment()?;
        if let Some(st) = prev {
            // Pre-rotation: the revealed key must be the committed one.
            if st.next_commitment.as_deref() != Some(k_commitment.as_str()) {
                return Err(CoreError::KelRotationNotCommitted { index });
            }
        }
        if let Some(n) = &ev.n {
            if !is_sha256_multihash_b58(n) {
                return Err(malformed("n is not a base58btc SHA-256 multihash"));
            }
            if *n == k_commitment {
                return Err(malformed("n commits to the current key; the next key must differ"));
            }
        }

        // Time.
        let ts = parse_event_time(&ev.ts).map_err(|r| malformed(&r))?;
        if let Some(st) = prev {
            let prev_ts = parse_event_time(&st.updated).map_err(|r| malformed(&r))?;
            if ts < prev_ts {
                return Err(CoreError::KelTimestampRegression {
                    index,
                    previous: st.updated.clone(),
                    found: ev.ts.clone(),
                });
            }
        }

        // Signature last: it is the expensive check.
        let body = ev.canonical_bytes()?;
        let sig = URL_SAFE_NO_PAD.decode(&signed.sig).map_err(|e| CoreError::KelBadSignature {
            index,
            reason: format!("sig is not base64url without padding: {e}"),
        })?;
        self.provider.verify(&key, &body, SigningContext::Kel.as_bytes(), &sig).map_err(
            |e| match e {
                CryptoError::AlgorithmNotAllowed(a) => {
                    CoreError::KelAlgorithmNotAllowed { index, algorithm: a.to_owned() }
                }
                e => CoreError::KelBadSignature { index, reason: e.to_string() },
            },
        )?;

        let last_digest = sha256_multihash_b58(&signed_bytes);
        let state = match (ev.t, prev) {
            (EventType::Inception, _) | (_, None) => KelState {
                did: format!("{DID_ATP_PREFIX}{}", sha256_multihash_b58(&body)),
                current_key: key,
                key_sequence: 0,
                next_commitment: ev.n.clone(),
                sequence: 0,
                deactivated: false,
                services: ev.services.clone().unwrap_or_default(),
                last_digest,
                created: ev.ts.clone(),
                updated: ev.ts.clone(),
            },
            (EventType::Rotation, Some(st)) => KelState {
                did: st.did.clone(),
                current_key: key,
                key_sequence: ev.s,
                next_commitment: ev.n.clone(),
                sequence: ev.s,
                deactivated: false,
                services: ev.services.clone().unwrap_or_else(|| st.services.clone()),
                last_digest,
                created: st.created.clone(),
                updated: ev.ts.clone(),
            },
            (EventType::Deactivation, Some(st)) => KelState {
                did: st.did.clone(),
                current_key: st.current_key.clone(),
                key_sequence: st.key_sequence,
                next_commitment: None,
                sequence: ev.s,
                deactivated: true,
                services: Vec::new(),
                last_digest,
                created: st.created.clone(),
                updated: ev.ts.clone(),
            },
        };
        Ok((state, signed_bytes))
    }
}

/// [`KeyEventLog::key_validity`] for a log that this process already verified as the log of its
/// DID (the node's cache of verified logs holds only such logs), without verifying it again.
/// Given an unverified log it would report keys nobody vouched for: never call it on input.
pub fn key_validity_in_verified_log(
    events: &[SignedEvent],
    seq: u64,
) -> Result<Option<KeyValidity>, CoreError> {
    let Some(i) = usize::try_from(seq).ok().filter(|i| *i < events.len()) else {
        return Ok(None);
    };
    let ev = &events[i].event;
    let Some(k) = ev.k.as_ref().filter(|_| ev.t != EventType::Deactivation) else {
        return Ok(None);
    };
    let valid_until = match events.get(i + 1) {
        Some(next) => Some(parse_timestamp(&next.event.ts)?),
        None => None,
    };
    Ok(Some(KeyValidity { key: k.parse(i)?, valid_from: parse_timestamp(&ev.ts)?, valid_until }))
}
