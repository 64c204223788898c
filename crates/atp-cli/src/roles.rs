//! `atp admin roles …`: the RBAC role bindings of an enterprise node (`[rbac]`), kept in its
//! store, through the AdminService binding RPCs; import and export in Casbin's CSV form.
//!
//! The CSV here is syntax only: `p, role, domain, object, action` lines (the built-in
//! permissions, which the node reports) and `g, subject, role, domain` lines (the bindings).
//! The node checks what a valid binding is, so an import is refused, as a whole, with the
//! node's reason and field.

use std::fmt::Write as _;
use std::path::PathBuf;

use atp::Agent;
use atp::grpc::v1 as pb;
use clap::Subcommand;
use serde_json::json;

use crate::EXIT_OK;
use crate::output::{CliError, note, print_json, read_input, write_output};

/// `atp admin roles …`
#[derive(Debug, Subcommand)]
pub enum RolesCommand {
    /// List the role bindings (`g, subject, role, domain`) and the policy revision.
    List,
    /// Bind a subject to a role (idempotent).
    Add {
        /// `group:<name>` (a group of the token) or `user:<sub>`.
        subject: String,
        /// `viewer`, `operator`, `admin` or `auditor` (`role:` may be written).
        role: String,
        /// The tenant, or `*` for every tenant.
        #[arg(long, default_value = "*")]
        domain: String,
    },
    /// Remove a binding (idempotent).
    Remove {
        /// `group:<name>` or `user:<sub>`.
        subject: String,
        /// The role.
        role: String,
        /// The tenant, or `*`.
        #[arg(long, default_value = "*")]
        domain: String,
    },
    /// Write the policy as Casbin CSV (`p` lines, then `g` lines).
    Export {
        /// The file; stdout without it (or with `-`).
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// Add the bindings of a Casbin CSV file, all or none; `p` lines must be built-in.
    Import {
        /// The file; `-` reads stdin.
        #[arg(long)]
        file: PathBuf,
    },
}

/// The most bindings one import sends (the node's per-call limit).
pub const MAX_IMPORT_BINDINGS: usize = 1000;

fn role_name(role: &str) -> String {
    if role.starts_with("role:") { role.to_owned() } else { format!("role:{role}") }
}

fn binding(subject: &str, role: &str, domain: &str) -> pb::RoleBinding {
    pb::RoleBinding {
        subject: subject.to_owned(),
        role: role_name(role),
        domain: domain.to_owned(),
    }
}

/// The policy as Casbin CSV: a comment, the permissions (`p`), then the bindings (`g`).
pub fn policy_csv(permissions: &[pb::RolePermission], bindings: &[pb::RoleBinding]) -> String {
    let mut out =
        String::from("# ATP RBAC policy (Casbin CSV): built-in permissions, then bindings\n");
    for p in permissions {
        let _ = writeln!(out, "p, {}, {}, {}, {}", p.role, p.domain, p.object, p.action);
    }
    for b in bindings {
        let _ = writeln!(out, "g, {}, {}, {}", b.subject, b.role, b.domain);
    }
    out
}

/// The bindings of Casbin CSV text; `p` lines must be among `permissions` (roles are built
/// in); empty lines and `#` comments are skipped. Errors name the line.
pub fn parse_policy_csv(
    text: &str,
    permissions: &[pb::RolePermission],
) -> Result<Vec<pb::RoleBinding>, CliError> {
    let mut out = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |why: &str| CliError::Usage(format!("line {}: {why}: {line:?}", n + 1));
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        match fields.as_slice() {
            ["p", role, domain, object, action] => {
                let known = permissions.iter().any(|p| {
                    (p.role.as_str(), p.domain.as_str(), p.object.as_str(), p.action.as_str())
                        == (*role, *domain, *object, *action)
                });
                if !known {
                    return Err(bad(
                        "not a built-in permission of this node (roles cannot be changed)",
                    ));
                }
            }
            ["g", subject, role, domain] => out.push(pb::RoleBinding {
                subject: (*subject).to_owned(),
                role: (*role).to_owned(),
                domain: (*domain).to_owned(),
            }),
            _ => {
                return Err(bad(
                    "not `g, subject, role, domain` or `p, role, domain, object, action`",
                ));
            }
        }
    }
    Ok(out)
}

/// Runs `atp admin roles …` (the caller has set the bearer token).
pub(crate) async fn run(agent: &Agent, command: &RolesCommand, json: bool) -> Result<u8, CliError> {
    match command {
        RolesCommand::List => {
            let listed = agent.role_bindings().await?;
            if json {
                let bindings: Vec<_> = listed
                    .bindings
                    .iter()
                    .map(|b| json!({"subject": b.subject, "role": b.role, "domain": b.domain}))
                    .collect();
                print_json(&json!({"revision": listed.revision, "bindings": bindings}));
            } else {
                for b in &listed.bindings {
                    println!("g, {}, {}, {}", b.subject, b.role, b.domain);
                }
                note(json, &format!("revision {}", listed.revision));
            }
        }
        RolesCommand::Add { subject, role, domain } => {
            let r = agent.add_role_bindings(vec![binding(subject, role, domain)]).await?;
            report(json, "added", r.added, r.revision);
        }
        RolesCommand::Remove { subject, role, domain } => {
            let r = agent.remove_role_bindings(vec![binding(subject, role, domain)]).await?;
            report(json, "removed", r.removed, r.revision);
        }
        RolesCommand::Export { file } => {
            let listed = agent.role_bindings().await?;
            let csv = policy_csv(&listed.permissions, &listed.bindings);
            write_output(file.as_deref(), csv.as_bytes(), false)?;
            if file.as_deref().is_some_and(|p| p.as_os_str() != "-") {
                if json {
                    print_json(
                        &json!({"revision": listed.revision, "bindings": listed.bindings.len()}),
                    );
                } else {
                    note(
                        json,
                        &format!(
                            "exported {} binding(s), revision {}",
                            listed.bindings.len(),
                            listed.revision
                        ),
                    );
                }
            }
        }
        RolesCommand::Import { file } => {
            let bytes = read_input(Some(file))?;
            let text = String::from_utf8(bytes)
                .map_err(|_| CliError::Usage(format!("{}: not UTF-8", file.display())))?;
            let permissions = agent.role_bindings().await?.permissions;
            let bindings = parse_policy_csv(&text, &permissions)?;
            if bindings.is_empty() {
                return Err(CliError::Usage(format!("{}: no `g` line", file.display())));
            }
            if bindings.len() > MAX_IMPORT_BINDINGS {
                return Err(CliError::Usage(format!(
                    "{}: at most {MAX_IMPORT_BINDINGS} bindings per import",
                    file.display()
                )));
            }
            let r = agent.add_role_bindings(bindings).await?;
            report(json, "added", r.added, r.revision);
        }
    }
    Ok(EXIT_OK)
}

fn report(json: bool, what: &str, count: u64, revision: u64) {
    if json {
        print_json(&json!({ what: count, "revision": revision }));
    } else {
        println!("{what} {count} binding(s), revision {revision}");
    }
}
