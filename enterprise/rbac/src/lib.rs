//! ATP enterprise edition: role-based access control with domains, on Casbin.
//!
//! - [`ACCESS_TABLE`]: every `atp.v1` RPC and HTTP route with the seam operation it authorizes
//!   and its (object, action), or [`Access::Public`]. A test walks the proto descriptors and
//!   fails if a method is missing; an operation that is not in the table is denied.
//! - Built-in roles, in every domain ([`BUILTIN_POLICY`]): `viewer` reads, `operator` issues
//!   and revokes credentials and manages evidence, `admin` may do everything (trust anchors,
//!   role bindings, configuration), `auditor` reads the log and the audit reports.
//! - Bindings map OIDC groups (`group:<name>`) and subjects (`user:<sub>`) to roles within a
//!   domain, the tenant, or `*` for every tenant: `g, group:atp-admins, role:admin, *`. They
//!   can be added and removed at run time ([`RbacAuthorizer::add_binding`]) and take effect on
//!   the next call; they import from and export to CSV lines.
//! - [`RbacAuthorizer`] implements the `atp-server` [`Authorizer`] seam. The node's admin token
//!   ([`Principal::Admin`]) keeps every right (break-glass); anonymous callers get
//!   `AUTH_REQUIRED`; everyone else needs a binding that allows the operation's
//!   (object, action) in the domain.
//!
//! The node does not know tenants yet: the seam authorizes in the domain `*`
//! ([`DEFAULT_DOMAIN`]), which only `*` bindings match; [`RbacAuthorizer::check`] takes an
//! explicit domain for multi-tenant callers.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::fmt;

use atp_server::ServerError;
use atp_server::extensions::{Authorizer, Principal, SeamFuture};
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
    ["role:operator", "*", "trust_anchors", "read"],
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

    fn validate(&self) -> Result<(), RbacError> {
        let ok_subject = (self.subject.starts_with("group:") || self.subject.starts_with("user:"))
            && self.subject.split_once(':').is_some_and(|(_, n)| !n.is_empty());
        let clean = |s: &str| {
            !s.is_empty() && s.len() <= 256 && !s.chars().any(|c| c == ',' || c.is_control())
        };
        if !ok_subject || !clean(&self.subject) {
            return Err(RbacError::Config(format!(
                "subject {:?}: `group:<name>` or `user:<sub>`",
                self.subject
            )));
        }
        if !ROLES.contains(&self.role.as_str()) {
            return Err(RbacError::Config(format!(
                "unknown role {:?} (one of {ROLES:?})",
                self.role
            )));
        }
        if !clean(&self.domain) {
            return Err(RbacError::Config(format!("domain {:?}", self.domain)));
        }
        Ok(())
    }
}

/// The `[rbac]` section of the node configuration.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RbacConfig {
    /// Initial bindings, as CSV policy lines (`g, group:atp-admins, role:admin, *`).
    #[serde(default)]
    pub bindings: Vec<String>,
}

/// The RBAC authorizer.
pub struct RbacAuthorizer {
    enforcer: tokio::sync::RwLock<Enforcer>,
}

impl fmt::Debug for RbacAuthorizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RbacAuthorizer")
    }
}

impl RbacAuthorizer {
    /// The built-in roles and `bindings`.
    pub async fn new(bindings: &[Binding]) -> Result<Self, RbacError> {
        let model = DefaultModel::from_str(MODEL).await?;
        let mut enforcer = Enforcer::new(model, MemoryAdapter::default()).await?;
        let policy: Vec<Vec<String>> =
            BUILTIN_POLICY.iter().map(|p| p.iter().map(|s| (*s).to_owned()).collect()).collect();
        enforcer.add_policies(policy).await?;
        let this = RbacAuthorizer { enforcer: tokio::sync::RwLock::new(enforcer) };
        for b in bindings {
            this.add_binding(b).await?;
        }
        Ok(this)
    }

    /// From the `[rbac]` section.
    pub async fn from_config(config: &RbacConfig) -> Result<Self, RbacError> {
        let bindings = config
            .bindings
            .iter()
            .map(|l| Binding::parse_csv_line(l))
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(&bindings).await
    }

    /// Adds a binding; it applies from the next call. `false` if it already existed.
    pub async fn add_binding(&self, b: &Binding) -> Result<bool, RbacError> {
        b.validate()?;
        let mut e = self.enforcer.write().await;
        Ok(e.add_role_for_user(&b.subject, &b.role, Some(&b.domain)).await?)
    }

    /// Removes a binding; it applies from the next call. `false` if there was none.
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

    /// The bindings as CSV policy lines (one per line).
    pub async fn export_csv(&self) -> String {
        self.bindings().await.iter().map(|b| b.to_csv_line() + "\n").collect()
    }

    /// Adds the bindings of CSV policy lines (empty lines and `#` comments are skipped). All
    /// lines are checked before any is added.
    pub async fn import_csv(&self, csv: &str) -> Result<usize, RbacError> {
        let bindings = csv
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(Binding::parse_csv_line)
            .collect::<Result<Vec<_>, _>>()?;
        let mut added = 0;
        for b in &bindings {
            added += usize::from(self.add_binding(b).await?);
        }
        Ok(added)
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
        Principal::User { id, roles } => std::iter::once(format!("user:{id}"))
            .chain(roles.iter().map(|g| format!("group:{g}")))
            .collect(),
        _ => Vec::new(),
    }
}

impl Authorizer for RbacAuthorizer {
    fn authorize<'a>(
        &'a self,
        principal: &'a Principal,
        operation: &'a str,
        _resource: &'a str,
    ) -> SeamFuture<'a, Result<(), ServerError>> {
        Box::pin(async move {
            match principal {
                Principal::Admin => Ok(()),
                Principal::Anonymous => Err(ServerError::AuthRequired),
                _ => {
                    if self.check(&subjects_of(principal), operation, DEFAULT_DOMAIN).await {
                        Ok(())
                    } else {
                        Err(ServerError::PermissionDenied(format!(
                            "{operation}: no role of {} allows it",
                            principal.name()
                        )))
                    }
                }
            }
        })
    }
}
