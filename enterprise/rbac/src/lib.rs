//! ATP enterprise edition: role-based access control with domains, on Casbin.
//!
//! - [`ACCESS_TABLE`]: every `atp.v1` RPC and HTTP route with the seam operation it authorizes
//!   and its (object, action), or [`Access::Public`]. A test walks the proto descriptors and
//!   fails if a method is missing; an operation that is not in the table is denied.
//! - Built-in roles, in every domain ([`BUILTIN_POLICY`]): `viewer` reads, `operator` issues
//!   and revokes credentials and manages evidence, `admin` may do everything (trust anchors,
//!   role bindings, configuration), `auditor` reads the log and the audit reports.
//! - Bindings map OIDC groups (`group:<name>`) and subjects (`user:<sub>`) to roles within a
//!   domain, the tenant, or `*` for every tenant: `g, group:atp-admins, role:admin, *`.
//! - **The policy lives in the store** ([`RbacAuthorizer::open`]): the store's bindings are
//!   the policy of every node on the same database. `[rbac] bindings` only *seed* a store
//!   whose policy was never written (revision 0); afterwards the store wins and the
//!   configuration's bindings are ignored (a warning names the difference). The AdminService
//!   binding RPCs write the store and tell this node at once ([`RolePolicy::bindings_changed`]);
//!   other nodes notice the store's new revision on their first guarded call after
//!   `refresh_interval_seconds` (one point read), so a change is in force cluster-wide within
//!   that interval.
//! - The policy imports from and exports to Casbin's CSV form ([`parse_policy_csv`],
//!   [`policy_csv`]): `p, role, domain, object, action` lines for the built-in permissions and
//!   `g, subject, role, domain` lines for the bindings.
//! - [`RbacAuthorizer`] implements the `atp-server` [`Authorizer`] seam. The node's admin token
//!   ([`Principal::Admin`]) keeps every right (break-glass); anonymous callers get
//!   `AUTH_REQUIRED`; everyone else needs a binding that allows the operation's
//!   (object, action) in the domain.
//!
//! **Tenants.** The node has no tenant field on its objects. The domain of a call is the tenant
//! of the resource the server authorizes on, by `[rbac.tenants]`: each tenant lists resource
//! prefixes (a status list URL for `UpdateStatus`, an issuer DID for `HostStatusList`, …);
//! the longest matching prefix wins, and a resource of no tenant is in the domain `*`
//! ([`DEFAULT_DOMAIN`]), which only `*` bindings match. [`RbacAuthorizer::check`] takes an
//! explicit domain for library callers.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::collections::BTreeMap;
use std::fmt;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use atp_server::ServerError;
use atp_server::admin::{
    OP_RBAC_BINDINGS_READ, OP_RBAC_BINDINGS_WRITE, OP_SUBJECT_ERASE, OP_TRUST_CONFIG_READ,
    OP_TRUST_RECOMPUTE,
};
use atp_server::audit_service::OP_AUDIT_READ;
use atp_server::extensions::{Authorizer, Principal, RolePolicy, SeamFuture};
use atp_store::{RoleBinding, Store};
use casbin::{CoreApi as _, DefaultModel, Enforcer, MemoryAdapter, MgmtApi as _, RbacApi as _};
use serde::Deserialize;

/// The domain the seam authorizes in (no tenant).
pub const DEFAULT_DOMAIN: &str = "*";

/// The built-in roles.
pub const ROLES: &[&str] = &["role:viewer", "role:operator", "role:admin", "role:auditor"];

/// What a method needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// No authorization (the call authenticates itself, or returns public data).
    Public,
    /// The seam operation, and the (object, action) it needs.
    Guarded {
        /// The operation name the server passes to the authorizer.
        operation: &'static str,
        /// The object.
        object: &'static str,
        /// The action.
        action: &'static str,
    },
}

const fn guarded(operation: &'static str, object: &'static str, action: &'static str) -> Access {
    Access::Guarded { operation, object, action }
}

/// Every RPC (`atp.v1.Service/Method`) and HTTP route (`METHOD /template`) of the node.
pub const ACCESS_TABLE: &[(&str, Access)] = &[
    ("atp.v1.AdminService/GetNodeInfo", Access::Public),
    ("atp.v1.AdminService/SetTrustAnchors", guarded("trust_anchors.set", "trust_anchors", "write")),
    (
        "atp.v1.AdminService/ListTrustAnchors",
        guarded("trust_anchors.list", "trust_anchors", "read"),
    ),
    (
        "atp.v1.CredentialService/IssueCredential",
        guarded("credential.issue", "credentials", "issue"),
    ),
    ("atp.v1.CredentialService/VerifyCredential", Access::Public),
    ("atp.v1.CredentialService/VerifyPresentation", Access::Public),
    ("atp.v1.CredentialService/UpdateStatus", guarded("status.update", "credentials", "revoke")),
    (
        "atp.v1.CredentialService/HostStatusList",
        guarded("status_list.host", "credentials", "manage"),
    ),
    ("atp.v1.CredentialService/GetStatusList", Access::Public),
    ("atp.v1.IdentityService/SubmitEvent", Access::Public),
    ("atp.v1.IdentityService/Resolve", Access::Public),
    ("atp.v1.IdentityService/GetKeyEventLog", Access::Public),
    ("atp.v1.IdentityService/ListIdentities", Access::Public),
    ("atp.v1.LogService/GetCheckpoint", Access::Public),
    ("atp.v1.LogService/GetInclusionProof", Access::Public),
    ("atp.v1.LogService/GetConsistencyProof", Access::Public),
    ("atp.v1.LogService/GetEntries", Access::Public),
    ("atp.v1.MessageService/VerifyEnvelope", Access::Public),
    ("atp.v1.MessageService/CreateChallenge", Access::Public),
    ("atp.v1.MessageService/Authenticate", Access::Public),
    ("atp.v1.TrustService/SubmitEvidence", Access::Public),
    ("atp.v1.TrustService/GetTrust", Access::Public),
    ("atp.v1.TrustService/ExplainTrust", Access::Public),
    ("atp.v1.TrustService/ListEvidence", Access::Public),
    ("GET /1.0/identifiers/{did}", Access::Public),
    ("GET /.well-known/did.json", Access::Public),
    ("POST /credentials/issue", guarded("credential.issue", "credentials", "issue")),
    ("POST /credentials/verify", Access::Public),
    ("POST /presentations/verify", Access::Public),
    ("GET /status/{list_id}", Access::Public),
    (
        "atp.v1.AdminService/ListRoleBindings",
        guarded(OP_RBAC_BINDINGS_READ, "role_bindings", "read"),
    ),
    (
        "atp.v1.AdminService/AddRoleBinding",
        guarded(OP_RBAC_BINDINGS_WRITE, "role_bindings", "write"),
    ),
    (
        "atp.v1.AdminService/RemoveRoleBinding",
        guarded(OP_RBAC_BINDINGS_WRITE, "role_bindings", "write"),
    ),
    ("atp.v1.AdminService/RecomputeTrust", guarded(OP_TRUST_RECOMPUTE, "trust", "compute")),
    ("atp.v1.AdminService/GetTrustConfig", guarded(OP_TRUST_CONFIG_READ, "trust_config", "read")),
    ("atp.v1.AdminService/EraseSubject", guarded(OP_SUBJECT_ERASE, "subjects", "erase")),
    ("atp.v1.AuditService/ListAuditEvents", guarded(OP_AUDIT_READ, "audit", "read")),
    ("atp.v1.AuditService/ListAuditBatches", guarded(OP_AUDIT_READ, "audit", "read")),
    ("atp.v1.AuditService/HashAuditValue", guarded(OP_AUDIT_READ, "audit", "read")),
    ("atp.v1.AuditService/GetComplianceReport", guarded(OP_AUDIT_READ, "audit", "read")),
    // The /metrics admin listener of the enterprise edition.
    ("GET /metrics", guarded("metrics.read", "metrics", "read")),
];

/// The (object, action) of a seam operation, if the table knows it.
pub fn permission_of(operation: &str) -> Option<(&'static str, &'static str)> {
    ACCESS_TABLE.iter().find_map(|(_, access)| match access {
        Access::Guarded { operation: op, object, action } if *op == operation => {
            Some((*object, *action))
        }
        _ => None,
    })
}

/// The built-in role permissions, valid in every domain (`*`).
pub const BUILTIN_POLICY: &[[&str; 4]] = &[
    ["role:viewer", "*", "trust_anchors", "read"],
    ["role:viewer", "*", "metrics", "read"],
    ["role:viewer", "*", "trust_config", "read"],
    ["role:operator", "*", "trust_anchors", "read"],
    ["role:operator", "*", "trust_config", "read"],
    ["role:operator", "*", "trust", "compute"],
    ["role:operator", "*", "metrics", "read"],
    ["role:operator", "*", "credentials", "issue"],
    ["role:operator", "*", "credentials", "revoke"],
    ["role:operator", "*", "credentials", "manage"],
    ["role:operator", "*", "evidence", "write"],
    ["role:admin", "*", "*", "*"],
    ["role:auditor", "*", "log", "read"],
    ["role:auditor", "*", "audit", "read"],
    ["role:auditor", "*", "metrics", "read"],
];

/// The Casbin model: RBAC with domains; a `*` domain in a binding or a permission matches every
/// domain, a `*` object or action every object or action.
const MODEL: &str = r#"
[request_definition]
r = sub, dom, obj, act

[policy_definition]
p = sub, dom, obj, act

[role_definition]
g = _, _, _

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = (g(r.sub, p.sub, r.dom) || g(r.sub, p.sub, "*")) && (p.dom == "*" || p.dom == r.dom) && (p.obj == "*" || p.obj == r.obj) && (p.act == "*" || p.act == r.act)
"#;

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RbacError {
    /// The `[rbac]` configuration or a binding is unusable.
    #[error("[rbac] {0}")]
    Config(String),
    /// Casbin failed.
    #[error("casbin: {0}")]
    Casbin(String),
    /// A CSV policy line is unusable (1-based line number).
    #[error("policy CSV line {line}: {reason}")]
    Csv {
        /// The line number.
        line: usize,
        /// Why.
        reason: String,
    },
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] atp_store::StoreError),
}

impl From<casbin::Error> for RbacError {
    fn from(e: casbin::Error) -> Self {
        RbacError::Casbin(e.to_string())
    }
}

/// A role binding: `subject` (`group:<name>` or `user:<sub>`) has `role` in `domain`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Binding {
    /// `group:<name>` or `user:<sub>`.
    pub subject: String,
    /// One of [`ROLES`].
    pub role: String,
    /// A tenant, or `*`.
    pub domain: String,
}

impl Binding {
    /// Parses a CSV policy line `g, <subject>, <role>, <domain>`.
    pub fn parse_csv_line(line: &str) -> Result<Self, RbacError> {
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let [kind, subject, role, domain] = fields.as_slice() else {
            return Err(RbacError::Config(format!("not `g, subject, role, domain`: {line:?}")));
        };
        if *kind != "g" {
            return Err(RbacError::Config(format!("only `g` lines are bindings: {line:?}")));
        }
        let b = Binding {
            subject: (*subject).to_owned(),
            role: (*role).to_owned(),
            domain: (*domain).to_owned(),
        };
        b.validate()?;
        Ok(b)
    }

    /// The CSV policy line.
    pub fn to_csv_line(&self) -> String {
        format!("g, {}, {}, {}", self.subject, self.role, self.domain)
    }

    /// Checks the binding: `Err((field, reason))` with the field `subject`, `role` or
    /// `domain`.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        let clean = |s: &str| {
            !s.is_empty()
                && s.len() <= atp_store::MAX_ROLE_BINDING_FIELD_BYTES
                && s.trim() == s
                && !s.chars().any(|c| c == ',' || c == '#' || c.is_control())
        };
        let ok_subject = (self.subject.starts_with("group:") || self.subject.starts_with("user:"))
            && self.subject.split_once(':').is_some_and(|(_, n)| !n.trim().is_empty());
        if !ok_subject || !clean(&self.subject) {
            return Err((
                "subject",
                format!(
                    "{:?} is not `group:<name>` or `user:<sub>` (at most {} bytes, no comma, `#` \
                     or control character)",
                    self.subject,
                    atp_store::MAX_ROLE_BINDING_FIELD_BYTES
                ),
            ));
        }
        if !ROLES.contains(&self.role.as_str()) {
            return Err(("role", format!("unknown role {:?} (one of {ROLES:?})", self.role)));
        }
        let ok_domain = self.domain == DEFAULT_DOMAIN
            || (clean(&self.domain)
                && self.domain.bytes().all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b)));
        if !ok_domain {
            return Err((
                "domain",
                format!(
                    "{:?} is not `*` or a tenant name of letters, digits and `._:-`",
                    self.domain
                ),
            ));
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), RbacError> {
        self.check().map_err(|(field, reason)| RbacError::Config(format!("{field}: {reason}")))
    }
}

impl From<RoleBinding> for Binding {
    fn from(b: RoleBinding) -> Self {
        Binding { subject: b.subject, role: b.role, domain: b.domain }
    }
}

impl From<Binding> for RoleBinding {
    fn from(b: Binding) -> Self {
        RoleBinding { subject: b.subject, role: b.role, domain: b.domain }
    }
}

/// The policy as Casbin CSV: the built-in permissions (`p, role, domain, object, action`),
/// then `bindings` (`g, subject, role, domain`), one per line.
pub fn policy_csv(bindings: &[Binding]) -> String {
    let mut out =
        String::from("# ATP RBAC policy (Casbin CSV): built-in permissions, then bindings\n");
    for [role, domain, object, action] in BUILTIN_POLICY {
        let _ = writeln!(out, "p, {role}, {domain}, {object}, {action}");
    }
    for b in bindings {
        out.push_str(&b.to_csv_line());
        out.push('\n');
    }
    out
}

/// Parses Casbin CSV policy text into bindings: `g` lines are bindings; `p` lines must be
/// built-in permissions (the roles are part of the software: a custom permission is refused,
/// never dropped silently); empty lines and `#` comments are skipped. Every line is checked;
/// the first bad one is the error.
pub fn parse_policy_csv(csv: &str) -> Result<Vec<Binding>, RbacError> {
    let mut out = Vec::new();
    for (n, raw) in csv.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        match fields.first() {
            Some(&"p") => {
                let known = BUILTIN_POLICY.iter().any(|p| fields[1..] == p[..]);
                if !known {
                    return Err(RbacError::Csv {
                        line: n + 1,
                        reason: format!(
                            "{line:?} is not a built-in permission (roles cannot be changed)"
                        ),
                    });
                }
            }
            _ => out.push(
                Binding::parse_csv_line(line)
                    .map_err(|e| RbacError::Csv { line: n + 1, reason: e.to_string() })?,
            ),
        }
    }
    Ok(out)
}

/// The `[rbac]` section of the node configuration.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RbacConfig {
    /// Bindings that seed a store whose policy was never written, as CSV policy lines
    /// (`g, group:atp-admins, role:admin, *`). Once the store holds the policy they are
    /// ignored.
    #[serde(default)]
    pub bindings: Vec<String>,
    /// How often (at most) a node reads the store's policy revision to pick up changes made
    /// through another node; 0 reads it on every guarded call. Default 5, at most 300.
    #[serde(default = "default_refresh_interval_seconds")]
    pub refresh_interval_seconds: u64,
    /// Tenants: each lists resource prefixes (status list URLs, issuer DIDs, …); a call on a
    /// resource is authorized in the domain of the tenant with the longest matching prefix, or
    /// in `*`.
    #[serde(default)]
    pub tenants: BTreeMap<String, Vec<String>>,
}

/// The longest `refresh_interval_seconds`.
pub const MAX_REFRESH_INTERVAL_SECONDS: u64 = 300;

fn default_refresh_interval_seconds() -> u64 {
    5
}

impl Default for RbacConfig {
    fn default() -> Self {
        RbacConfig {
            bindings: Vec::new(),
            refresh_interval_seconds: default_refresh_interval_seconds(),
            tenants: BTreeMap::new(),
        }
    }
}

impl RbacConfig {
    /// The bindings, checked.
    pub fn parsed_bindings(&self) -> Result<Vec<Binding>, RbacError> {
        self.bindings.iter().map(|l| Binding::parse_csv_line(l)).collect()
    }

    /// The resource prefixes and their tenants, longest prefix first, checked.
    fn tenant_prefixes(&self) -> Result<Vec<(String, String)>, RbacError> {
        let mut out = Vec::new();
        for (tenant, prefixes) in &self.tenants {
            let probe = Binding {
                subject: "user:probe".into(),
                role: ROLES[0].into(),
                domain: tenant.clone(),
            };
            if tenant == DEFAULT_DOMAIN || probe.check().is_err() {
                return Err(RbacError::Config(format!(
                    "tenants: {tenant:?} is not a tenant name of letters, digits and `._:-`"
                )));
            }
            for prefix in prefixes {
                if prefix.is_empty() {
                    return Err(RbacError::Config(format!("tenants.{tenant}: an empty prefix")));
                }
                if let Some((_, other)) = out.iter().find(|(p, _)| p == prefix) {
                    return Err(RbacError::Config(format!(
                        "tenants: the prefix {prefix:?} is in {other:?} and {tenant:?}"
                    )));
                }
                out.push((prefix.clone(), tenant.clone()));
            }
        }
        out.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        Ok(out)
    }
}

/// Where the authorizer's bindings come from, and how it notices changes.
struct StoreSource {
    store: Arc<dyn Store>,
    refresh_interval: Duration,
    /// The store revision the enforcer holds.
    loaded_revision: AtomicU64,
    /// When the revision was last read.
    last_check: std::sync::Mutex<Instant>,
    /// One reload at a time.
    reload: tokio::sync::Mutex<()>,
}

/// The RBAC authorizer.
pub struct RbacAuthorizer {
    enforcer: tokio::sync::RwLock<Enforcer>,
    source: Option<StoreSource>,
    /// (resource prefix, tenant), longest prefix first.
    tenants: Vec<(String, String)>,
}

impl fmt::Debug for RbacAuthorizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RbacAuthorizer")
    }
}

async fn enforcer_with(bindings: &[Binding]) -> Result<Enforcer, RbacError> {
    let model = DefaultModel::from_str(MODEL).await?;
    let mut enforcer = Enforcer::new(model, MemoryAdapter::default()).await?;
    let policy: Vec<Vec<String>> =
        BUILTIN_POLICY.iter().map(|p| p.iter().map(|s| (*s).to_owned()).collect()).collect();
    enforcer.add_policies(policy).await?;
    let grouping: Vec<Vec<String>> = bindings
        .iter()
        .map(|b| vec![b.subject.clone(), b.role.clone(), b.domain.clone()])
        .collect();
    if !grouping.is_empty() {
        enforcer.add_grouping_policies(grouping).await?;
    }
    Ok(enforcer)
}

/// The stored bindings the policy can hold; a stored binding it cannot (say a role of another
/// software version) grants nothing and is reported.
fn usable(stored: Vec<RoleBinding>) -> Vec<Binding> {
    stored
        .into_iter()
        .map(Binding::from)
        .filter(|b| match b.check() {
            Ok(()) => true,
            Err((field, reason)) => {
                tracing::warn!(binding = %b.to_csv_line(), field, reason, "RBAC: stored binding ignored");
                false
            }
        })
        .collect()
}

impl RbacAuthorizer {
    /// The built-in roles and `bindings`, in memory only (no store).
    pub async fn new(bindings: &[Binding]) -> Result<Self, RbacError> {
        for b in bindings {
            b.validate()?;
        }
        Ok(RbacAuthorizer {
            enforcer: tokio::sync::RwLock::new(enforcer_with(bindings).await?),
            source: None,
            tenants: Vec::new(),
        })
    }

    /// From the `[rbac]` section, in memory only (no store).
    pub async fn from_config(config: &RbacConfig) -> Result<Self, RbacError> {
        let mut this = Self::new(&config.parsed_bindings()?).await?;
        this.tenants = config.tenant_prefixes()?;
        Ok(this)
    }

    /// The policy of `store`: seeds it with `[rbac] bindings` if its policy was never written,
    /// then loads the stored bindings. The store is the policy from then on (see the crate
    /// documentation).
    pub async fn open(store: Arc<dyn Store>, config: &RbacConfig) -> Result<Self, RbacError> {
        let configured = config.parsed_bindings()?;
        let tenants = config.tenant_prefixes()?;
        if config.refresh_interval_seconds > MAX_REFRESH_INTERVAL_SECONDS {
            return Err(RbacError::Config(format!(
                "refresh_interval_seconds is at most {MAX_REFRESH_INTERVAL_SECONDS}"
            )));
        }
        let seeded = store
            .seed_role_bindings(configured.iter().cloned().map(RoleBinding::from).collect())
            .await?;
        let stored = store.list_role_bindings().await?;
        match seeded {
            Some(change) if change.changed > 0 => {
                tracing::info!(
                    bindings = change.changed,
                    "RBAC: store seeded from [rbac] bindings"
                );
            }
            Some(_) => {}
            None => {
                let in_store: std::collections::BTreeSet<Binding> =
                    stored.bindings.iter().cloned().map(Binding::from).collect();
                let ignored = configured.iter().filter(|b| !in_store.contains(*b)).count();
                if ignored > 0 {
                    tracing::warn!(
                        ignored,
                        revision = stored.revision,
                        "RBAC: the store holds the policy; [rbac] bindings not in it are ignored \
                         (manage them with `atp admin roles`)"
                    );
                }
            }
        }
        let bindings = usable(stored.bindings);
        Ok(RbacAuthorizer {
            enforcer: tokio::sync::RwLock::new(enforcer_with(&bindings).await?),
            source: Some(StoreSource {
                store,
                refresh_interval: Duration::from_secs(config.refresh_interval_seconds),
                loaded_revision: AtomicU64::new(stored.revision),
                last_check: std::sync::Mutex::new(Instant::now()),
                reload: tokio::sync::Mutex::new(()),
            }),
            tenants,
        })
    }

    /// The store revision of the loaded policy (`None` without a store).
    pub fn loaded_revision(&self) -> Option<u64> {
        self.source.as_ref().map(|s| s.loaded_revision.load(Ordering::Acquire))
    }

    /// Reloads the bindings from the store when its revision differs from the loaded one
    /// (`force`: whatever the interval), else when `refresh_interval` has passed since the last
    /// look. Without a store: nothing.
    pub async fn refresh(&self, force: bool) -> Result<(), RbacError> {
        let Some(src) = &self.source else { return Ok(()) };
        if !force {
            let last = *src.last_check.lock().unwrap_or_else(|p| p.into_inner());
            if last.elapsed() < src.refresh_interval {
                return Ok(());
            }
        }
        let _one = src.reload.lock().await;
        if !force {
            // Another call may have looked while this one waited.
            let last = *src.last_check.lock().unwrap_or_else(|p| p.into_inner());
            if last.elapsed() < src.refresh_interval {
                return Ok(());
            }
        }
        let revision = src.store.role_bindings_revision().await?;
        *src.last_check.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
        if revision == src.loaded_revision.load(Ordering::Acquire) {
            return Ok(());
        }
        let stored = src.store.list_role_bindings().await?;
        let enforcer = enforcer_with(&usable(stored.bindings)).await?;
        *self.enforcer.write().await = enforcer;
        src.loaded_revision.store(stored.revision, Ordering::Release);
        tracing::info!(revision = stored.revision, "RBAC: policy reloaded from the store");
        Ok(())
    }

    /// Adds a binding to the in-memory policy (not to the store: use the AdminService RPCs or
    /// [`Store::add_role_bindings`]); it applies from the next call. `false` if it already
    /// existed.
    pub async fn add_binding(&self, b: &Binding) -> Result<bool, RbacError> {
        b.validate()?;
        let mut e = self.enforcer.write().await;
        Ok(e.add_role_for_user(&b.subject, &b.role, Some(&b.domain)).await?)
    }

    /// Removes a binding from the in-memory policy; it applies from the next call. `false` if
    /// there was none.
    pub async fn remove_binding(&self, b: &Binding) -> Result<bool, RbacError> {
        let mut e = self.enforcer.write().await;
        Ok(e.delete_role_for_user(&b.subject, &b.role, Some(&b.domain)).await?)
    }

    /// Every binding, sorted.
    pub async fn bindings(&self) -> Vec<Binding> {
        let e = self.enforcer.read().await;
        let mut out: Vec<Binding> = e
            .get_grouping_policy()
            .into_iter()
            .filter_map(|g| match g.as_slice() {
                [subject, role, domain] => Some(Binding {
                    subject: subject.clone(),
                    role: role.clone(),
                    domain: domain.clone(),
                }),
                _ => None,
            })
            .collect();
        out.sort();
        out
    }

    /// The loaded policy as Casbin CSV ([`policy_csv`]).
    pub async fn export_csv(&self) -> String {
        policy_csv(&self.bindings().await)
    }

    /// Adds the bindings of Casbin CSV text ([`parse_policy_csv`]) to the in-memory policy.
    /// All lines are checked before any is added.
    pub async fn import_csv(&self, csv: &str) -> Result<usize, RbacError> {
        let bindings = parse_policy_csv(csv)?;
        let mut added = 0;
        for b in &bindings {
            added += usize::from(self.add_binding(b).await?);
        }
        Ok(added)
    }

    /// The domain a call on `resource` is authorized in: the tenant with the longest matching
    /// resource prefix, else `*`.
    pub fn domain_of<'a>(&'a self, resource: &str) -> &'a str {
        self.tenants
            .iter()
            .find(|(prefix, _)| resource.starts_with(prefix.as_str()))
            .map_or(DEFAULT_DOMAIN, |(_, tenant)| tenant.as_str())
    }

    /// Whether `subjects` (the `user:` and `group:` names of one caller) may do `operation` in
    /// `domain`. An operation outside [`ACCESS_TABLE`] is denied.
    pub async fn check(&self, subjects: &[String], operation: &str, domain: &str) -> bool {
        let Some((object, action)) = permission_of(operation) else {
            tracing::warn!(operation, "RBAC: an operation without a mapping is denied");
            return false;
        };
        let e = self.enforcer.read().await;
        subjects.iter().any(|s| {
            e.enforce((s.as_str(), domain, object, action)).unwrap_or_else(|err| {
                tracing::warn!(error = %err, "RBAC: enforcement failed; denied");
                false
            })
        })
    }
}

/// The Casbin subjects of a principal: `user:<id>` and `group:<g>` for each of its groups.
pub fn subjects_of(principal: &Principal) -> Vec<String> {
    match principal {
        Principal::User { id, roles } => user_subjects(id, roles),
        _ => Vec::new(),
    }
}

fn user_subjects(id: &str, roles: &[String]) -> Vec<String> {
    std::iter::once(format!("user:{id}"))
        .chain(roles.iter().map(|g| format!("group:{g}")))
        .collect()
}

impl Authorizer for RbacAuthorizer {
    fn authorize_user<'a>(
        &'a self,
        id: &'a str,
        roles: &'a [String],
        operation: &'a str,
        resource: &'a str,
    ) -> SeamFuture<'a, Result<(), ServerError>> {
        Box::pin(async move {
            // A policy that may be stale beyond the interval never decides.
            self.refresh(false)
                .await
                .map_err(|e| ServerError::Unavailable(format!("RBAC policy unreadable: {e}")))?;
            let domain = self.domain_of(resource);
            if self.check(&user_subjects(id, roles), operation, domain).await {
                Ok(())
            } else {
                Err(ServerError::PermissionDenied(format!(
                    "{operation}: no role of {id} allows it in domain {domain}"
                )))
            }
        })
    }

    fn role_policy(&self) -> Option<&dyn RolePolicy> {
        // Only a store-backed policy can be managed through the RPCs.
        self.source.as_ref().map(|_| self as &dyn RolePolicy)
    }
}

impl RolePolicy for RbacAuthorizer {
    fn check_binding(&self, binding: &RoleBinding) -> Result<(), ServerError> {
        Binding::from(binding.clone())
            .check()
            .map_err(|(field, reason)| ServerError::field(format!("bindings.{field}"), reason))
    }

    fn permissions(&self) -> Vec<[String; 4]> {
        BUILTIN_POLICY.iter().map(|p| p.map(str::to_owned)).collect()
    }

    fn bindings_changed(&self, revision: u64) -> SeamFuture<'_, Result<(), ServerError>> {
        Box::pin(async move {
            tracing::debug!(revision, "RBAC: bindings changed on this node");
            self.refresh(true)
                .await
                .map_err(|e| ServerError::Unavailable(format!("RBAC policy reload: {e}")))
        })
    }
}
