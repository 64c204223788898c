//! The compiled contract: the descriptor set that reflection serves holds every service and RPC
//! of `atp.v1`, every element of the contract is documented, and `proto/README.md` lists the
//! services and the node-level reason codes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use atp_grpc::{FILE_DESCRIPTOR_SET, SERVICE_NAMES, reasons};
use prost::Message;
use prost_types::{DescriptorProto, FileDescriptorProto, FileDescriptorSet};

/// The services and RPCs that issue 3 defines. Adding an RPC means adding it here too.
const EXPECTED: &[(&str, &[&str])] = &[
    (
        "atp.v1.AuditService",
        &["ListAuditEvents", "ListAuditBatches", "HashAuditValue", "GetComplianceReport"],
    ),
    ("atp.v1.IdentityService", &["SubmitEvent", "Resolve", "GetKeyEventLog", "ListIdentities"]),
    (
        "atp.v1.CredentialService",
        &[
            "IssueCredential",
            "VerifyCredential",
            "VerifyPresentation",
            "UpdateStatus",
            "GetStatusList",
            "HostStatusList",
        ],
    ),
    ("atp.v1.MessageService", &["VerifyEnvelope", "CreateChallenge", "Authenticate"]),
    (
        "atp.v1.LogService",
        &["GetCheckpoint", "GetInclusionProof", "GetConsistencyProof", "GetEntries"],
    ),
    (
        "atp.v1.AdminService",
        &[
            "GetNodeInfo",
            "SetTrustAnchors",
            "ListTrustAnchors",
            "ListRoleBindings",
            "AddRoleBinding",
            "RemoveRoleBinding",
            "RecomputeTrust",
            "EraseSubject",
            "GetTrustConfig",
        ],
    ),
    ("atp.v1.TrustService", &["SubmitEvidence", "GetTrust", "ExplainTrust", "ListEvidence"]),
];

fn descriptor_set() -> FileDescriptorSet {
    FileDescriptorSet::decode(FILE_DESCRIPTOR_SET).expect("FILE_DESCRIPTOR_SET decodes")
}

/// The files of the contract itself (the set may also hold imported well-known types).
fn atp_files(set: &FileDescriptorSet) -> Vec<&FileDescriptorProto> {
    set.file.iter().filter(|f| f.package() == "atp.v1").collect()
}

#[test]
fn descriptor_set_holds_every_service_and_rpc() {
    let set = descriptor_set();
    let mut found: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in atp_files(&set) {
        for service in &file.service {
            let methods = service.method.iter().map(|m| m.name().to_owned()).collect();
            found.insert(format!("atp.v1.{}", service.name()), methods);
        }
    }
    let expected: BTreeMap<String, BTreeSet<String>> = EXPECTED
        .iter()
        .map(|(s, ms)| (s.to_string(), ms.iter().map(|m| m.to_string()).collect()))
        .collect();
    assert_eq!(found, expected);

    let names: BTreeSet<&str> = SERVICE_NAMES.iter().copied().collect();
    let expected_names: BTreeSet<&str> = EXPECTED.iter().map(|(s, _)| *s).collect();
    assert_eq!(names, expected_names, "atp_grpc::SERVICE_NAMES");
}

#[test]
fn rpcs_are_unary_with_their_own_request_and_response() {
    let set = descriptor_set();
    for file in atp_files(&set) {
        for service in &file.service {
            for m in &service.method {
                assert!(
                    !m.client_streaming() && !m.server_streaming(),
                    "{} is streaming",
                    m.name()
                );
                assert_eq!(m.input_type(), format!(".atp.v1.{}Request", m.name()));
                assert_eq!(m.output_type(), format!(".atp.v1.{}Response", m.name()));
            }
        }
    }
}

#[test]
fn contract_files_are_package_atp_v1_and_import_nothing_external() {
    let set = descriptor_set();
    let files = atp_files(&set);
    let names: BTreeSet<&str> = files.iter().map(|f| f.name()).collect();
    for required in ["common", "identity", "credential", "message", "log", "admin"] {
        assert!(names.contains(format!("atp/v1/{required}.proto").as_str()), "{required}.proto");
    }
    for file in set.file.iter() {
        assert!(
            file.name().starts_with("atp/v1/") || file.name().starts_with("google/protobuf/"),
            "unexpected file {} in the descriptor set",
            file.name()
        );
        assert_eq!(file.syntax(), "proto3", "{}", file.name());
        for dep in &file.dependency {
            assert!(
                dep.starts_with("atp/v1/") || dep.starts_with("google/protobuf/"),
                "{} imports {dep}",
                file.name()
            );
        }
    }
}

/// The path of a descriptor element in `SourceCodeInfo` (descriptor.proto field numbers).
mod path {
    pub(crate) const FILE_MESSAGE: i32 = 4;
    pub(crate) const FILE_ENUM: i32 = 5;
    pub(crate) const FILE_SERVICE: i32 = 6;
    pub(crate) const MESSAGE_FIELD: i32 = 2;
    pub(crate) const MESSAGE_NESTED: i32 = 3;
    pub(crate) const MESSAGE_ENUM: i32 = 4;
    pub(crate) const MESSAGE_ONEOF: i32 = 8;
    pub(crate) const ENUM_VALUE: i32 = 2;
    pub(crate) const SERVICE_METHOD: i32 = 2;
}

fn idx(i: usize) -> i32 {
    i32::try_from(i).expect("index fits i32")
}

struct DocCheck<'a> {
    documented: BTreeSet<&'a [i32]>,
    missing: Vec<String>,
}

impl DocCheck<'_> {
    fn expect(&mut self, path: &[i32], what: String) {
        if !self.documented.contains(path) {
            self.missing.push(what);
        }
    }

    fn enumeration(&mut self, path: Vec<i32>, e: &prost_types::EnumDescriptorProto, scope: &str) {
        let name = format!("{scope}.{}", e.name());
        self.expect(&path, format!("enum {name}"));
        for (j, v) in e.value.iter().enumerate() {
            let mut p = path.clone();
            p.extend([path::ENUM_VALUE, idx(j)]);
            self.expect(&p, format!("enum value {name}.{}", v.name()));
        }
    }

    fn message(&mut self, path: Vec<i32>, m: &DescriptorProto, scope: &str) {
        let name = format!("{scope}.{}", m.name());
        self.expect(&path, format!("message {name}"));
        for (j, f) in m.field.iter().enumerate() {
            let mut p = path.clone();
            p.extend([path::MESSAGE_FIELD, idx(j)]);
            self.expect(&p, format!("field {name}.{}", f.name()));
        }
        for (j, o) in m.oneof_decl.iter().enumerate() {
            // proto3 `optional` creates a synthetic oneof `_<field>`; it has no source.
            if o.name().starts_with('_') {
                continue;
            }
            let mut p = path.clone();
            p.extend([path::MESSAGE_ONEOF, idx(j)]);
            self.expect(&p, format!("oneof {name}.{}", o.name()));
        }
        for (j, n) in m.nested_type.iter().enumerate() {
            let mut p = path.clone();
            p.extend([path::MESSAGE_NESTED, idx(j)]);
            self.message(p, n, &name);
        }
        for (j, e) in m.enum_type.iter().enumerate() {
            let mut p = path.clone();
            p.extend([path::MESSAGE_ENUM, idx(j)]);
            self.enumeration(p, e, &name);
        }
    }
}

/// Every message, field, oneof, enum, enum value, service and RPC has a leading comment. The
/// comments are the specification for every language, so this is checked on the descriptors
/// (which other languages' generators read), not only through rustdoc's `missing_docs`.
#[test]
fn every_element_of_the_contract_is_documented() {
    let set = descriptor_set();
    let mut missing = Vec::new();
    for file in atp_files(&set) {
        let info = file.source_code_info.as_ref().expect("descriptor set has source info");
        let documented = info
            .location
            .iter()
            .filter(|l| l.leading_comments().trim().len() > 3)
            .map(|l| l.path.as_slice())
            .collect();
        let mut check = DocCheck { documented, missing: Vec::new() };
        let scope = format!("{} atp.v1", file.name());
        for (i, m) in file.message_type.iter().enumerate() {
            check.message(vec![path::FILE_MESSAGE, idx(i)], m, &scope);
        }
        for (i, e) in file.enum_type.iter().enumerate() {
            check.enumeration(vec![path::FILE_ENUM, idx(i)], e, &scope);
        }
        for (i, s) in file.service.iter().enumerate() {
            let service = format!("{scope}.{}", s.name());
            check.expect(&[path::FILE_SERVICE, idx(i)], format!("service {service}"));
            for (j, m) in s.method.iter().enumerate() {
                check.expect(
                    &[path::FILE_SERVICE, idx(i), path::SERVICE_METHOD, idx(j)],
                    format!("rpc {service}.{}", m.name()),
                );
            }
        }
        missing.extend(check.missing);
    }
    assert!(
        missing.is_empty(),
        "undocumented elements of the contract:\n  {}",
        missing.join("\n  ")
    );
}

/// Enums follow the proto style that keeps every language happy: values prefixed with the enum
/// name in UPPER_SNAKE_CASE, and 0 is `<PREFIX>_UNSPECIFIED`.
#[test]
fn enums_have_prefixed_values_and_an_unspecified_zero() {
    let set = descriptor_set();
    for file in atp_files(&set) {
        for e in &file.enum_type {
            let prefix = upper_snake(e.name());
            let zero = e.value.iter().find(|v| v.number() == 0).expect("a zero value");
            assert_eq!(zero.name(), format!("{prefix}_UNSPECIFIED"), "enum {}", e.name());
            for v in &e.value {
                assert!(v.name().starts_with(&format!("{prefix}_")), "{}.{}", e.name(), v.name());
            }
        }
    }
}

fn upper_snake(camel: &str) -> String {
    let mut out = String::new();
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// proto/README.md is the prose half of the contract: it must name every service and every
/// node-level reason code.
#[test]
fn readme_lists_every_service_and_reason_code() {
    let readme = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto/README.md");
    let text = std::fs::read_to_string(&readme).expect("proto/README.md");
    for (service, _) in EXPECTED {
        let short = service.trim_start_matches("atp.v1.");
        assert!(text.contains(short), "proto/README.md does not mention {short}");
    }
    for code in reasons::ALL {
        assert!(text.contains(&format!("`{code}`")), "proto/README.md does not list `{code}`");
    }
    let unique: BTreeSet<&str> = reasons::ALL.iter().copied().collect();
    assert_eq!(unique.len(), reasons::ALL.len(), "duplicate reason code");
}

/// The method list the node's observation and the metrics rely on is read from the descriptor
/// set: every service has its methods there, all unary, and nothing else is listed.
#[test]
fn method_types_list_every_method_of_every_service() {
    let types = atp_grpc::method_types();
    assert_eq!(types.get("atp.v1.IdentityService/Resolve"), Some(&"unary"));
    assert_eq!(types.get("atp.v1.MessageService/VerifyEnvelope"), Some(&"unary"));
    for service in atp_grpc::SERVICE_NAMES {
        let count = types.keys().filter(|m| m.starts_with(&format!("{service}/"))).count();
        assert!(count > 0, "{service} has no method in the descriptor set");
    }
    assert!(types.keys().all(|m| atp_grpc::SERVICE_NAMES.iter().any(|s| m.starts_with(s))));
    assert!(types.values().all(|kind| *kind == "unary"), "{types:?}");
    assert!(!types.contains_key("atp.v1.IdentityService/NoSuchMethod"));
}
