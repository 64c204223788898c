//! The `atp` command's integration tests, in one test binary so that they link the node's whole
//! stack once rather than once per file (CI time, issue 15): the README walk-through and bad
//! input (`cli`), `atp login` / `atp logout` against a real OpenID provider (`login`),
//! `atp admin roles` (`roles`) and `atp audit` (`audit`), each against a real in-process node.
//! Each former test file is a module under `tests/commands/`; `support` starts the node they
//! share.

mod support;

#[path = "commands/audit.rs"]
mod audit;
#[path = "commands/cli.rs"]
mod cli;
#[path = "commands/login.rs"]
mod login;
#[path = "commands/roles.rs"]
mod roles;
