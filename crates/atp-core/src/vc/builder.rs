//! The credential and presentation builders.

use super::*;

// ------------------------------------------------------------------------------------------
// Builders
// ------------------------------------------------------------------------------------------

/// What both builders hold: `@context`, `id`, `type` and the free-form extra properties.
#[derive(Clone, Debug, Default)]
struct BuilderCommon {
    contexts: Vec<Value>,
    id: Option<String>,
    types: Vec<String>,
    extra: Vec<(String, Value)>,
}

impl BuilderCommon {
    fn new(base_type: &str) -> Self {
        BuilderCommon {
            contexts: vec![Value::String(VC_V2_CONTEXT.into())],
            id: None,
            types: vec![base_type.into()],
            extra: Vec::new(),
        }
    }

    /// The document's first members (`@context`, `id`, `type`) and the extra properties,
    /// which [`BuilderCommon::finish`] appends after the builder's own members.
    fn start(self) -> (Map<String, Value>, Vec<(String, Value)>) {
        let mut m = Map::new();
        m.insert("@context".into(), Value::Array(self.contexts));
        if let Some(id) = self.id {
            m.insert("id".into(), Value::String(id));
        }
        m.insert("type".into(), json!(self.types));
        (m, self.extra)
    }

    /// Append the extra properties, refusing those that a builder method sets.
    fn finish(
        mut m: Map<String, Value>,
        extra: Vec<(String, Value)>,
        managed: &[&str],
    ) -> Result<Value, CoreError> {
        for (k, v) in extra {
            if managed.contains(&k.as_str()) {
                return Err(malformed(k, "is set by the builder's own method"));
            }
            m.insert(k, v);
        }
        Ok(Value::Object(m))
    }
}

/// One value as itself, several as an array, none as nothing.
fn one_or_many(mut items: Vec<Value>) -> Option<Value> {
    match items.len() {
        0 => None,
        1 => items.pop(),
        _ => Some(Value::Array(items)),
    }
}

/// The setters that both builders share, with the document kind in their docs.
macro_rules! common_builder_methods {
    ($kind:literal, $base_type:literal) => {
        /// Append a context after the base context (a URL string or an object).
        pub fn context(mut self, context: impl Into<Value>) -> Self {
            self.common.contexts.push(context.into());
            self
        }

        #[doc = concat!("Set the ", $kind, "'s `id`.")]
        pub fn id(mut self, id: impl Into<String>) -> Self {
            self.common.id = Some(id.into());
            self
        }

        #[doc = concat!("Add a type after `", $base_type, "`.")]
        pub fn add_type(mut self, ty: impl Into<String>) -> Self {
            self.common.types.push(ty.into());
            self
        }

        #[doc = concat!("Add any other top-level property of the ", $kind, " (such as `name`).")]
        pub fn property(mut self, name: impl Into<String>, value: Value) -> Self {
            self.common.extra.push((name.into(), value));
            self
        }
    };
}

/// Builds an unsigned VC 2.0 credential; [`CredentialBuilder::build`] runs
/// [`check_credential`] on the result.
///
/// ```
/// use atp_core::vc::CredentialBuilder;
/// use serde_json::json;
///
/// let vc = CredentialBuilder::new("did:atp:issuer")
///     .add_type("AgentOperatorCredential")
///     .subject(json!({"id": "did:atp:agent", "operator": "Example Corp"}))
///     .valid_from_unix(1_767_225_600)
///     .build()
///     .unwrap();
/// assert_eq!(vc["validFrom"], "2026-01-01T00:00:00Z");
/// ```
#[derive(Clone, Debug)]
pub struct CredentialBuilder {
    common: BuilderCommon,
    issuer: Value,
    subjects: Vec<Value>,
    valid_from: Option<String>,
    valid_until: Option<String>,
    status: Vec<Value>,
}

const CREDENTIAL_MANAGED: &[&str] = &[
    "@context",
    "id",
    "type",
    "issuer",
    "credentialSubject",
    "validFrom",
    "validUntil",
    "credentialStatus",
    "proof",
];

impl CredentialBuilder {
    /// A credential from `issuer` (a URL, usually the issuer's DID).
    pub fn new(issuer: impl Into<String>) -> Self {
        Self::with_issuer_object(Value::String(issuer.into()))
    }

    /// A credential whose `issuer` is an object (it must have an `id`).
    pub fn with_issuer_object(issuer: Value) -> Self {
        CredentialBuilder {
            common: BuilderCommon::new(VERIFIABLE_CREDENTIAL),
            issuer,
            subjects: Vec::new(),
            valid_from: None,
            valid_until: None,
            status: Vec::new(),
        }
    }

    common_builder_methods!("credential", "VerifiableCredential");

    /// Add a subject (an object of claims, usually with an `id`).
    pub fn subject(mut self, subject: Value) -> Self {
        self.subjects.push(subject);
        self
    }

    /// Set `validFrom` to a `dateTimeStamp` string.
    pub fn valid_from(mut self, at: impl Into<String>) -> Self {
        self.valid_from = Some(at.into());
        self
    }

    /// Set `validFrom` to a Unix time.
    pub fn valid_from_unix(self, unix_seconds: i64) -> Self {
        self.valid_from(DateTimeStamp::from_unix(unix_seconds).to_string())
    }

    /// Set `validUntil` to a `dateTimeStamp` string.
    pub fn valid_until(mut self, at: impl Into<String>) -> Self {
        self.valid_until = Some(at.into());
        self
    }

    /// Set `validUntil` to a Unix time.
    pub fn valid_until_unix(self, unix_seconds: i64) -> Self {
        self.valid_until(DateTimeStamp::from_unix(unix_seconds).to_string())
    }

    /// Add a `credentialStatus` entry (for example a `BitstringStatusListEntry`).
    pub fn status(mut self, entry: Value) -> Self {
        self.status.push(entry);
        self
    }

    /// The credential as JSON, checked with [`check_credential`].
    pub fn build(self) -> Result<Value, CoreError> {
        let (mut m, extra) = self.common.start();
        m.insert("issuer".into(), self.issuer);
        if let Some(v) = self.valid_from {
            m.insert("validFrom".into(), Value::String(v));
        }
        if let Some(v) = self.valid_until {
            m.insert("validUntil".into(), Value::String(v));
        }
        let subjects = one_or_many(self.subjects)
            .ok_or_else(|| malformed("credentialSubject", "is missing"))?;
        m.insert("credentialSubject".into(), subjects);
        if let Some(status) = one_or_many(self.status) {
            m.insert("credentialStatus".into(), status);
        }
        let vc = BuilderCommon::finish(m, extra, CREDENTIAL_MANAGED)?;
        check_credential(&vc)?;
        Ok(vc)
    }
}

/// Builds an unsigned VC 2.0 presentation; [`PresentationBuilder::build`] runs
/// [`check_presentation`] on the result. Sign it with
/// [`crate::data_integrity`] using proof purpose `authentication`, a `challenge` and a
/// `domain`.
#[derive(Clone, Debug)]
pub struct PresentationBuilder {
    common: BuilderCommon,
    holder: Option<String>,
    credentials: Vec<Value>,
}

impl Default for PresentationBuilder {
    fn default() -> Self {
        Self::new()
    }
}

const PRESENTATION_MANAGED: &[&str] =
    &["@context", "id", "type", "holder", "verifiableCredential", "proof"];

impl PresentationBuilder {
    /// An empty presentation.
    pub fn new() -> Self {
        PresentationBuilder {
            common: BuilderCommon::new(VERIFIABLE_PRESENTATION),
            holder: None,
            credentials: Vec::new(),
        }
    }

    common_builder_methods!("presentation", "VerifiablePresentation");

    /// Set the `holder` (a URL, usually the holder's DID).
    pub fn holder(mut self, holder: impl Into<String>) -> Self {
        self.holder = Some(holder.into());
        self
    }

    /// Add a (usually secured) credential.
    pub fn credential(mut self, vc: Value) -> Self {
        self.credentials.push(vc);
        self
    }

    /// The presentation as JSON, checked with [`check_presentation`].
    pub fn build(self) -> Result<Value, CoreError> {
        let (mut m, extra) = self.common.start();
        if let Some(h) = self.holder {
            m.insert("holder".into(), Value::String(h));
        }
        if !self.credentials.is_empty() {
            m.insert("verifiableCredential".into(), Value::Array(self.credentials));
        }
        let vp = BuilderCommon::finish(m, extra, PRESENTATION_MANAGED)?;
        check_presentation(&vp)?;
        Ok(vp)
    }
}
