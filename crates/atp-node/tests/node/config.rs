//! Configuration: sources and their precedence, the file format, enterprise sections,
//! validation. `NodeConfig::load` takes the arguments and the environment explicitly, so no test
//! here touches the process environment.
#![allow(missing_docs)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use atp_node::NodeError;
use atp_node::config::{LogFormat, NodeConfig, default_log_origin};

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

fn load(args: &[&str], vars: &[(&str, &str)]) -> Result<NodeConfig, NodeError> {
    let mut argv = vec!["atp-node"];
    argv.extend_from_slice(args);
    NodeConfig::load(argv, &env(vars))
}

fn load_ok(args: &[&str], vars: &[(&str, &str)]) -> NodeConfig {
    match load(args, vars) {
        Ok(c) => c,
        Err(e) => panic!("load({args:?}, {vars:?}) failed: {e}"),
    }
}

fn load_err(args: &[&str], vars: &[(&str, &str)]) -> NodeError {
    match load(args, vars) {
        Ok(c) => panic!("load({args:?}, {vars:?}) succeeded: {c:?}"),
        Err(e) => e,
    }
}

fn write_config(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write config");
    path
}

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("address")
}

fn invalid_option(e: &NodeError) -> &str {
    match e {
        NodeError::InvalidConfig { option, .. } => option,
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
}

#[test]
fn no_sources_give_the_documented_defaults() {
    let c = load_ok(&[], &[]);
    assert_eq!(c, NodeConfig::default());
    assert_eq!(c.data_dir, PathBuf::from("./atp-data"));
    assert_eq!(c.listen, addr("127.0.0.1:7443"));
    assert!(!c.tls.enabled());
    assert!(!c.tls.require_pq);
    assert!(!c.insecure_plaintext);
    assert_eq!(c.log.format, LogFormat::Text);
    assert_eq!(c.log.filter, "info");
    assert_eq!(c.limits.max_message_bytes, 4 * 1024 * 1024);
    assert_eq!(c.limits.max_page_size, 1000);
    assert_eq!(c.limits.default_page_size, 100);
    assert_eq!(c.limits.request_timeout, Duration::from_secs(10));
    assert_eq!(c.limits.rate_limit_per_second, 500);
    assert_eq!(c.limits.rate_limit_burst, 1000);
    assert_eq!(c.limits.replay_cache_capacity, 100_000);
    assert_eq!(c.limits.resolution_cache_capacity, 10_000);
    assert_eq!(c.limits.envelope_max_skew, Duration::from_secs(60));
    assert_eq!(c.limits.envelope_max_lifetime, Duration::from_secs(300));
    assert_eq!(c.checkpoint_interval, Duration::from_secs(1));
    assert_eq!(c.log_origin, None);
    assert!(c.key_passphrase.is_none());
    assert_eq!(c.advertised_endpoint().as_deref(), Some("http://127.0.0.1:7443"));
}

/// One option in all its spellings, with three distinct values (for the file, the environment
/// and the flag) and how to read it back.
struct Case {
    flag: &'static str,
    var: &'static str,
    /// `(section, key)`; section "" is the top level.
    toml: (&'static str, &'static str),
    /// The values as TOML literals, environment strings and flag strings.
    file: &'static str,
    env: &'static str,
    flag_value: &'static str,
    get: fn(&NodeConfig) -> String,
    /// What `get` returns for the file, env and flag values, and for the default.
    expect: [&'static str; 4],
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            flag: "--data-dir",
            var: "ATP_DATA_DIR",
            toml: ("", "data_dir"),
            file: "\"/srv/file\"",
            env: "/srv/env",
            flag_value: "/srv/flag",
            get: |c| c.data_dir.display().to_string(),
            expect: ["/srv/file", "/srv/env", "/srv/flag", "./atp-data"],
        },
        Case {
            flag: "--listen",
            var: "ATP_LISTEN",
            toml: ("", "listen"),
            file: "\"127.0.0.1:1001\"",
            env: "127.0.0.1:1002",
            flag_value: "[::1]:1003",
            get: |c| c.listen.to_string(),
            expect: ["127.0.0.1:1001", "127.0.0.1:1002", "[::1]:1003", "127.0.0.1:7443"],
        },
        Case {
            flag: "--public-url",
            var: "ATP_PUBLIC_URL",
            toml: ("", "public_url"),
            file: "\"https://file.example\"",
            env: "https://env.example",
            flag_value: "http://flag.example:80",
            get: |c| format!("{:?}", c.public_url),
            expect: [
                "Some(\"https://file.example\")",
                "Some(\"https://env.example\")",
                "Some(\"http://flag.example:80\")",
                "None",
            ],
        },
        Case {
            flag: "--insecure-plaintext",
            var: "ATP_INSECURE_PLAINTEXT",
            toml: ("", "insecure_plaintext"),
            file: "true",
            env: "false",
            flag_value: "true",
            get: |c| c.insecure_plaintext.to_string(),
            expect: ["true", "false", "true", "false"],
        },
        Case {
            flag: "--log-format",
            var: "ATP_LOG_FORMAT",
            toml: ("log", "format"),
            file: "\"json\"",
            env: "text",
            flag_value: "json",
            get: |c| c.log.format.to_string(),
            expect: ["json", "text", "json", "text"],
        },
        Case {
            flag: "--log",
            var: "ATP_LOG",
            toml: ("log", "filter"),
            file: "\"warn\"",
            env: "debug",
            flag_value: "info,atp_node=trace",
            get: |c| c.log.filter.clone(),
            expect: ["warn", "debug", "info,atp_node=trace", "info"],
        },
        Case {
            flag: "--max-message-size",
            var: "ATP_MAX_MESSAGE_SIZE",
            toml: ("limits", "max_message_size"),
            file: "\"1MiB\"",
            env: "65536",
            flag_value: "8MiB",
            get: |c| c.limits.max_message_bytes.to_string(),
            expect: ["1048576", "65536", "8388608", "4194304"],
        },
        Case {
            flag: "--max-page-size",
            var: "ATP_MAX_PAGE_SIZE",
            toml: ("limits", "max_page_size"),
            file: "500",
            env: "600",
            flag_value: "700",
            get: |c| c.limits.max_page_size.to_string(),
            expect: ["500", "600", "700", "1000"],
        },
        Case {
            flag: "--default-page-size",
            var: "ATP_DEFAULT_PAGE_SIZE",
            toml: ("limits", "default_page_size"),
            file: "10",
            env: "20",
            flag_value: "30",
            get: |c| c.limits.default_page_size.to_string(),
            expect: ["10", "20", "30", "100"],
        },
        Case {
            flag: "--request-timeout",
            var: "ATP_REQUEST_TIMEOUT",
            toml: ("limits", "request_timeout"),
            file: "\"2s\"",
            env: "1500ms",
            flag_value: "1m",
            get: |c| format!("{:?}", c.limits.request_timeout),
            expect: ["2s", "1.5s", "60s", "10s"],
        },
        Case {
            flag: "--rate-limit",
            var: "ATP_RATE_LIMIT",
            toml: ("limits", "rate_limit"),
            file: "10",
            env: "0",
            flag_value: "30",
            get: |c| c.limits.rate_limit_per_second.to_string(),
            expect: ["10", "0", "30", "500"],
        },
        Case {
            flag: "--rate-limit-burst",
            var: "ATP_RATE_LIMIT_BURST",
            toml: ("limits", "rate_limit_burst"),
            file: "11",
            env: "21",
            flag_value: "31",
            get: |c| c.limits.rate_limit_burst.to_string(),
            expect: ["11", "21", "31", "1000"],
        },
        Case {
            flag: "--replay-cache-capacity",
            var: "ATP_REPLAY_CACHE_CAPACITY",
            toml: ("limits", "replay_cache_capacity"),
            file: "12",
            env: "22",
            flag_value: "32",
            get: |c| c.limits.replay_cache_capacity.to_string(),
            expect: ["12", "22", "32", "100000"],
        },
        Case {
            flag: "--resolution-cache-capacity",
            var: "ATP_RESOLUTION_CACHE_CAPACITY",
            toml: ("limits", "resolution_cache_capacity"),
            file: "13",
            env: "23",
            flag_value: "33",
            get: |c| c.limits.resolution_cache_capacity.to_string(),
            expect: ["13", "23", "33", "10000"],
        },
        Case {
            flag: "--envelope-max-skew",
            var: "ATP_ENVELOPE_MAX_SKEW",
            toml: ("limits", "envelope_max_skew"),
            file: "\"5s\"",
            env: "6s",
            flag_value: "7s",
            get: |c| format!("{:?}", c.limits.envelope_max_skew),
            expect: ["5s", "6s", "7s", "60s"],
        },
        Case {
            flag: "--envelope-max-lifetime",
            var: "ATP_ENVELOPE_MAX_LIFETIME",
            toml: ("limits", "envelope_max_lifetime"),
            file: "\"1m\"",
            env: "2m",
            flag_value: "1h",
            get: |c| format!("{:?}", c.limits.envelope_max_lifetime),
            expect: ["60s", "120s", "3600s", "300s"],
        },
        Case {
            flag: "--checkpoint-interval",
            var: "ATP_CHECKPOINT_INTERVAL",
            toml: ("", "checkpoint_interval"),
            file: "\"250ms\"",
            env: "2s",
            flag_value: "1h",
            get: |c| format!("{:?}", c.checkpoint_interval),
            expect: ["250ms", "2s", "3600s", "1s"],
        },
        Case {
            flag: "--log-origin",
            var: "ATP_LOG_ORIGIN",
            toml: ("", "log_origin"),
            file: "\"file.example/log\"",
            env: "env.example/log",
            flag_value: "flag.example/log",
            get: |c| format!("{:?}", c.log_origin),
            expect: [
                "Some(\"file.example/log\")",
                "Some(\"env.example/log\")",
                "Some(\"flag.example/log\")",
                "None",
            ],
        },
    ]
}

#[test]
fn flags_override_env_which_overrides_the_file_which_overrides_defaults() {
    let dir = tempfile::tempdir().expect("tempdir");
    for case in cases() {
        let (section, key) = case.toml;
        let text = if section.is_empty() {
            format!("{key} = {}\n", case.file)
        } else {
            format!("[{section}]\n{key} = {}\n", case.file)
        };
        let path = write_config(dir.path(), "node.toml", &text);
        let path = path.to_str().expect("utf-8 path");
        let flag = format!("{}={}", case.flag, case.flag_value);
        let [from_file, from_env, from_flag, default] = case.expect;
        let get = case.get;

        assert_eq!(get(&load_ok(&[], &[])), default, "{}: default", case.flag);
        assert_eq!(get(&load_ok(&["--config", path], &[])), from_file, "{}: file", case.flag);
        assert_eq!(
            get(&load_ok(&["--config", path], &[(case.var, case.env)])),
            from_env,
            "{}: env over file",
            case.flag
        );
        assert_eq!(
            get(&load_ok(&["--config", path, &flag], &[(case.var, case.env)])),
            from_flag,
            "{}: flag over env and file",
            case.flag
        );
        assert_eq!(get(&load_ok(&[&flag], &[])), from_flag, "{}: flag alone", case.flag);
        assert_eq!(get(&load_ok(&[], &[(case.var, case.env)])), from_env, "{}: env", case.flag);
    }
}

#[test]
fn every_option_is_covered_by_the_precedence_table_or_the_tls_test() {
    let mut covered: Vec<String> =
        cases().iter().map(|c| c.flag.trim_start_matches("--").to_owned()).collect();
    // Every limit: every_limit_is_documented_and_read_in_precedence_order.
    covered.extend(atp_node::config::Limits::SPECS.iter().map(|spec| spec.flag()));
    let tls = ["tls-cert", "tls-key", "tls-self-signed", "tls-require-pq", "tls-client-ca"];
    for arg in NodeConfig::command().get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        if ["help", "version", "config"].contains(&long) {
            continue;
        }
        assert!(
            covered.iter().any(|c| c == long) || tls.contains(&long),
            "--{long} has no precedence test"
        );
    }
}

#[test]
fn tls_options_follow_the_same_precedence() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pem = |name: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, "-----BEGIN CERTIFICATE-----\n").expect("write");
        p.to_str().expect("utf-8").to_owned()
    };
    let (c1, k1, ca1) = (pem("c1.pem"), pem("k1.pem"), pem("ca1.pem"));
    let (c2, k2) = (pem("c2.pem"), pem("k2.pem"));
    let (c3, k3) = (pem("c3.pem"), pem("k3.pem"));
    let file = write_config(
        dir.path(),
        "node.toml",
        &format!("[tls]\ncert = {c1:?}\nkey = {k1:?}\nrequire_pq = true\nclient_ca = {ca1:?}\n"),
    );
    let file = file.to_str().expect("utf-8");

    let c = load_ok(&["--config", file], &[]);
    assert_eq!(c.tls.cert.as_deref(), Some(Path::new(&c1)));
    assert_eq!(c.tls.key.as_deref(), Some(Path::new(&k1)));
    assert_eq!(c.tls.client_ca.as_deref(), Some(Path::new(&ca1)));
    assert!(c.tls.require_pq && c.tls.enabled());
    assert_eq!(c.advertised_endpoint().as_deref(), Some("https://127.0.0.1:7443"));

    let vars = [("ATP_TLS_CERT", c2.as_str()), ("ATP_TLS_KEY", &k2), ("ATP_TLS_REQUIRE_PQ", "0")];
    let c = load_ok(&["--config", file], &vars);
    assert_eq!(c.tls.cert.as_deref(), Some(Path::new(&c2)));
    assert_eq!(c.tls.key.as_deref(), Some(Path::new(&k2)));
    assert!(!c.tls.require_pq);

    let c = load_ok(
        &["--config", file, "--tls-cert", &c3, "--tls-key", &k3, "--tls-require-pq"],
        &vars,
    );
    assert_eq!(c.tls.cert.as_deref(), Some(Path::new(&c3)));
    assert_eq!(c.tls.key.as_deref(), Some(Path::new(&k3)));
    assert!(c.tls.require_pq);

    // Self-signed: env turns it on, the flag turns it off again.
    let c = load_ok(&[], &[("ATP_TLS_SELF_SIGNED", "yes")]);
    assert!(c.tls.self_signed && c.tls.enabled());
    let c = load_ok(&["--tls-self-signed=false"], &[("ATP_TLS_SELF_SIGNED", "yes")]);
    assert!(!c.tls.self_signed);
}

#[test]
fn the_config_file_can_be_named_by_the_environment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_config(dir.path(), "node.toml", "listen = \"127.0.0.1:9\"\n");
    let c = load_ok(&[], &[("ATP_CONFIG", path.to_str().expect("utf-8"))]);
    assert_eq!(c.listen, addr("127.0.0.1:9"));
    assert_eq!(c.config_file.as_deref(), Some(path.as_path()));
}

#[test]
fn a_named_config_file_must_exist() {
    let e = load_err(&["--config", "/nonexistent/atp/node.toml"], &[]);
    assert!(matches!(e, NodeError::ConfigRead { .. }), "{e:?}");
    assert!(e.to_string().contains("/nonexistent/atp/node.toml"), "{e}");
}

#[test]
fn relative_paths_in_the_file_resolve_against_its_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_config(dir.path(), "node.toml", "data_dir = \"data\"\n");
    let c = load_ok(&["--config", path.to_str().expect("utf-8")], &[]);
    assert_eq!(c.data_dir, dir.path().join("data"));
    // Flags and environment are relative to the working directory, as usual.
    let c = load_ok(&["--config", path.to_str().expect("utf-8"), "--data-dir", "here"], &[]);
    assert_eq!(c.data_dir, PathBuf::from("here"));
}

#[test]
fn unknown_toml_keys_fail() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (text, key) in [
        ("listn = \"127.0.0.1:1\"\n", "listn"),
        ("[limits]\nmax_pagesize = 5\n", "max_pagesize"),
        ("[tls]\nrequire_pqc = true\n", "require_pqc"),
        ("[logging]\nformat = \"json\"\n", "logging"),
    ] {
        let path = write_config(dir.path(), "node.toml", text);
        let e = load_err(&["--config", path.to_str().expect("utf-8")], &[]);
        assert!(matches!(e, NodeError::ConfigParse { .. }), "{text}: {e:?}");
        let msg = e.to_string();
        assert!(msg.contains(key) && msg.contains("unknown field"), "{text}: {msg}");
    }
}

#[test]
fn wrongly_typed_or_malformed_file_values_fail() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (text, needle) in [
        ("listen = 7443\n", "listen"),
        ("listen = \"localhost\"\n", "listen"),
        ("[limits]\nrequest_timeout = 10\n", "request_timeout"),
        ("[limits]\nrequest_timeout = \"10\"\n", "has no unit"),
        ("[limits]\nmax_message_size = \"4MB\"\n", "unknown unit"),
        ("[log]\nformat = \"xml\"\n", "xml"),
        ("this is not toml", "node.toml"),
    ] {
        let path = write_config(dir.path(), "node.toml", text);
        let e = load_err(&["--config", path.to_str().expect("utf-8")], &[]);
        assert!(matches!(e, NodeError::ConfigParse { .. }), "{text}: {e:?}");
        assert!(e.to_string().contains(needle), "{text}: {e}");
    }
}

#[test]
fn enterprise_sections_are_refused_with_the_exact_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The sections of the features built into this binary are accepted (tests/enterprise_*.rs).
    let built_in = atp_node::enterprise_features();
    let unavailable = atp_node::config::UNAVAILABLE_ENTERPRISE_SECTIONS;
    for section in atp_node::config::ENTERPRISE_SECTIONS
        .iter()
        .filter(|s| !built_in.contains(s) && !unavailable.contains(s))
    {
        for text in [
            format!("[{section}]\nenabled = true\n"),
            format!("listen = \"127.0.0.1:1\"\n[{section}]\n"),
            format!("{section} = {{ x = 1 }}\n"),
        ] {
            let path = write_config(dir.path(), "node.toml", &text);
            let e = load_err(&["--config", path.to_str().expect("utf-8")], &[]);
            assert!(matches!(e, NodeError::EnterpriseRequired { .. }), "{text}: {e:?}");
            assert_eq!(
                e.to_string(),
                format!(
                    "`{section}` requires the ATP enterprise edition (build with \
                     `--features enterprise`)"
                ),
            );
        }
    }
    // Sections no build implements yet are refused as such, in the community and the
    // enterprise build alike (never "build with --features enterprise", which would not help).
    for section in unavailable {
        let path = write_config(dir.path(), "node.toml", &format!("[{section}]\n"));
        let e = load_err(&["--config", path.to_str().expect("utf-8")], &[]);
        assert!(matches!(e, NodeError::EnterpriseFeatureUnavailable { .. }), "{section}: {e:?}");
        assert_eq!(
            e.to_string(),
            format!("`{section}` is an enterprise feature that is not available yet, in any build")
        );
    }
}

#[test]
fn page_sizes_are_validated() {
    let e = load_err(&["--max-page-size", "0"], &[]);
    assert!(invalid_option(&e).contains("--max-page-size"), "{e}");
    assert!(e.to_string().contains("between 1 and"), "{e}");

    let e = load_err(&["--default-page-size", "0"], &[]);
    assert!(invalid_option(&e).contains("--default-page-size"), "{e}");

    let e = load_err(&["--max-page-size", "50"], &[]);
    assert!(invalid_option(&e).contains("--default-page-size"), "{e}");
    assert!(e.to_string().contains("maximum page size (50)"), "{e}");

    let c = load_ok(&["--max-page-size", "50", "--default-page-size", "50"], &[]);
    assert_eq!(c.limits.default_page_size, 50);
}

#[test]
fn other_limits_are_validated() {
    for (args, option) in [
        (&["--max-message-size", "1KiB"][..], "--max-message-size"),
        (&["--max-message-size", "1GiB"][..], "--max-message-size"),
        (&["--request-timeout", "0s"][..], "--request-timeout"),
        (&["--request-timeout", "2h"][..], "--request-timeout"),
        (&["--rate-limit-burst", "0"][..], "--rate-limit-burst"),
        (&["--replay-cache-capacity", "0"][..], "--replay-cache-capacity"),
        (&["--resolution-cache-capacity", "0"][..], "--resolution-cache-capacity"),
        (&["--envelope-max-skew", "2h"][..], "--envelope-max-skew"),
        (&["--envelope-max-lifetime", "0ms"][..], "--envelope-max-lifetime"),
        (&["--checkpoint-interval", "10ms"][..], "--checkpoint-interval"),
        (&["--log", "info,[[["][..], "--log"),
        (&["--log-origin", " padded "][..], "--log-origin"),
        (&["--public-url", "ftp://x"][..], "--public-url"),
        (&["--public-url", "https://a b"][..], "--public-url"),
    ] {
        let e = load_err(args, &[]);
        assert!(invalid_option(&e).contains(option), "{args:?}: {e}");
    }
    // Rate limit 0 turns the limit off; the burst does not matter then.
    let c = load_ok(&["--rate-limit", "0", "--rate-limit-burst", "0"], &[]);
    assert_eq!(c.limits.rate_limit_per_second, 0);
}

#[test]
fn malformed_flag_values_are_usage_errors() {
    for args in [
        &["--listen", "localhost:7443"][..],
        &["--request-timeout", "10"][..],
        &["--max-page-size", "-1"][..],
        &["--log-format", "xml"][..],
        &["--insecure-plaintext", "true"][..],
        &["--no-such-flag"][..],
    ] {
        let e = load_err(args, &[]);
        assert!(matches!(e, NodeError::Usage(_)), "{args:?}: {e:?}");
    }
}

#[test]
fn a_bad_environment_value_names_its_variable() {
    let e = load_err(&[], &[("ATP_LISTEN", "not-an-address")]);
    match &e {
        NodeError::Env { var, value, .. } => {
            assert_eq!(var, "ATP_LISTEN");
            assert_eq!(value, "not-an-address");
        }
        other => panic!("expected Env, got {other:?}"),
    }
    assert!(e.to_string().starts_with("environment variable ATP_LISTEN="), "{e}");

    let e = load_err(&[], &[("ATP_REQUEST_TIMEOUT", "10")]);
    assert!(e.to_string().contains("ATP_REQUEST_TIMEOUT") && e.to_string().contains("unit"));
    let e = load_err(&[], &[("ATP_TLS_SELF_SIGNED", "maybe")]);
    assert!(e.to_string().contains("ATP_TLS_SELF_SIGNED"), "{e}");
    // A bad environment value is an error even when a flag would override it.
    let e = load_err(&["--max-page-size", "5"], &[("ATP_MAX_PAGE_SIZE", "many")]);
    assert!(e.to_string().contains("ATP_MAX_PAGE_SIZE"), "{e}");
}

#[test]
fn an_empty_environment_variable_counts_as_unset() {
    let c = load_ok(&[], &[("ATP_LISTEN", ""), ("ATP_TLS_CERT", "")]);
    assert_eq!(c.listen, addr("127.0.0.1:7443"));
    assert!(c.tls.cert.is_none());
}

#[test]
fn later_flags_override_earlier_ones() {
    let c = load_ok(&["--listen", "127.0.0.1:1", "--listen", "127.0.0.1:2"], &[]);
    assert_eq!(c.listen, addr("127.0.0.1:2"));
}

#[test]
fn plaintext_on_a_non_loopback_address_needs_insecure_plaintext() {
    for listen in ["0.0.0.0:7443", "[::]:7443", "192.0.2.1:7443"] {
        let e = load_err(&["--listen", listen], &[]);
        assert!(matches!(e, NodeError::PlaintextNonLoopback { .. }), "{listen}: {e:?}");
        let msg = e.to_string();
        assert!(msg.contains("--insecure-plaintext") && msg.contains("--tls-cert"), "{msg}");

        let c = load_ok(&["--listen", listen, "--insecure-plaintext"], &[]);
        assert!(c.insecure_plaintext);
        let c = load_ok(&["--listen", listen], &[("ATP_INSECURE_PLAINTEXT", "true")]);
        assert!(c.insecure_plaintext);
        let c = load_ok(&["--listen", listen, "--tls-self-signed"], &[]);
        assert!(c.tls.enabled());
    }
    for listen in ["127.0.0.1:7443", "127.0.0.2:1", "[::1]:7443", "127.0.0.1:0"] {
        load_ok(&["--listen", listen], &[]);
    }
}

#[test]
fn tls_options_must_be_consistent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("x.pem");
    std::fs::write(&f, "x").expect("write");
    let f = f.to_str().expect("utf-8");
    let missing = dir.path().join("missing.pem");
    let missing = missing.to_str().expect("utf-8");

    for (args, option) in [
        (vec!["--tls-cert", f], "--tls-cert"),
        (vec!["--tls-key", f], "--tls-key"),
        (vec!["--tls-cert", f, "--tls-key", f, "--tls-self-signed"], "--tls-self-signed"),
        (vec!["--tls-require-pq"], "--tls-require-pq"),
        (vec!["--tls-client-ca", f], "--tls-client-ca"),
        (vec!["--tls-cert", missing, "--tls-key", f], "--tls-cert"),
        (vec!["--tls-self-signed", "--tls-client-ca", missing], "--tls-client-ca"),
    ] {
        let e = load_err(&args, &[]);
        assert!(invalid_option(&e).contains(option), "{args:?}: {e}");
    }
    let c = load_ok(&["--tls-self-signed", "--tls-require-pq", "--tls-client-ca", f], &[]);
    assert!(c.tls.require_pq && c.tls.client_ca.is_some());
}

#[test]
fn the_passphrase_comes_from_the_environment_only_and_is_never_printed() {
    let secret = "correct horse battery staple";
    let c = load_ok(&[], &[("ATP_KEY_PASSPHRASE", secret)]);
    let p = c.key_passphrase.as_ref().expect("passphrase");
    assert_eq!(p.as_bytes(), secret.as_bytes());
    assert!(!format!("{c:?}").contains(secret));
    assert!(c.unknown_env.is_empty());

    let e = load_err(&["--key-passphrase", secret], &[]);
    assert!(matches!(e, NodeError::Usage(_)));
    let help = NodeConfig::command().render_long_help().to_string();
    assert!(!help.contains("--key-passphrase") && !help.contains("--passphrase"));

    let e = load_err(&[], &[("ATP_KEY_PASSPHRASE", "")]);
    assert!(e.to_string().contains("ATP_KEY_PASSPHRASE"), "{e}");
}

#[test]
fn unknown_atp_variables_are_reported_and_others_ignored() {
    let c = load_ok(
        &[],
        &[
            ("ATP_LISTN", "127.0.0.1:1"),
            ("ATP_TEST_VECTORS", "/x"),
            ("HOME", "/root"),
            ("ATP_LISTEN", "127.0.0.1:2"),
        ],
    );
    assert_eq!(c.unknown_env, vec!["ATP_LISTN".to_owned()]);
    assert_eq!(c.listen, addr("127.0.0.1:2"));
}

#[test]
fn help_documents_every_option_with_its_variable_default_and_toml_key() {
    let cmd = NodeConfig::command();
    let help = cmd.clone().render_long_help().to_string();
    let mut vars = Vec::new();
    for arg in cmd.get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        if ["help", "version"].contains(&long) {
            continue;
        }
        assert!(help.contains(&format!("--{long}")), "--{long} missing from --help");
        let var = arg.get_env().and_then(|v| v.to_str()).expect("every option has a variable");
        assert!(var.starts_with("ATP_"), "{var}");
        assert!(help.contains(var), "{var} missing from --help");
        vars.push(var.to_owned());
        let doc = arg.get_long_help().or(arg.get_help()).expect("documented").to_string();
        if long != "config" {
            assert!(doc.contains("[toml: "), "--{long} does not name its TOML key");
        }
    }
    let mut unique = vars.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), vars.len(), "duplicate environment variables");
    assert!(help.contains("ATP_KEY_PASSPHRASE"));
}

#[test]
fn help_and_version_are_reported_as_usage() {
    for flag in ["--help", "--version"] {
        let e = load_err(&[flag], &[]);
        let NodeError::Usage(e) = e else { panic!("{flag}: not a usage error") };
        assert_eq!(e.exit_code(), 0, "{flag}");
    }
    let NodeError::Usage(e) = load_err(&["--help"], &[]) else { unreachable!() };
    assert!(e.to_string().contains("[env: ATP_LISTEN]"));
}

#[test]
fn log_origin_defaults_to_the_node_did() {
    let c = load_ok(&[], &[]);
    assert_eq!(c.effective_log_origin("did:atp:zQmAbc"), "atp-node/zQmAbc");
    assert_eq!(default_log_origin("did:atp:zQmAbc"), "atp-node/zQmAbc");
    let c = load_ok(&["--log-origin", "atp.example.com/log"], &[]);
    assert_eq!(c.effective_log_origin("did:atp:zQmAbc"), "atp.example.com/log");
}

#[test]
fn the_advertised_endpoint_is_derived_only_when_meaningful() {
    let c = load_ok(&["--listen", "127.0.0.1:0"], &[]);
    assert_eq!(c.advertised_endpoint(), None);
    let c = load_ok(&["--listen", "0.0.0.0:7443", "--insecure-plaintext"], &[]);
    assert_eq!(c.advertised_endpoint(), None);
    let c = load_ok(
        &["--listen", "0.0.0.0:7443", "--insecure-plaintext", "--public-url", "https://n.example"],
        &[],
    );
    assert_eq!(c.advertised_endpoint().as_deref(), Some("https://n.example"));
    let c = load_ok(&["--listen", "[::1]:8443", "--tls-self-signed"], &[]);
    assert_eq!(c.advertised_endpoint().as_deref(), Some("https://[::1]:8443"));
}

#[test]
fn durations_and_sizes_parse_strictly() {
    use atp_node::config::{parse_duration, parse_size};
    assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
    assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
    assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
    assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
    for bad in ["", "10", "s", "1.5s", "-1s", "10 sec", "99999999999999999999s"] {
        assert!(parse_duration(bad).is_err(), "{bad:?}");
    }
    assert_eq!(parse_size("4096"), Ok(4096));
    assert_eq!(parse_size("4MiB"), Ok(4 << 20));
    assert_eq!(parse_size("64KiB"), Ok(64 << 10));
    assert_eq!(parse_size("1GiB"), Ok(1 << 30));
    for bad in ["", "MiB", "4MB", "4 mib", "-1", "1.5MiB"] {
        assert!(parse_size(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn the_trust_section_sets_every_constant_and_is_validated() {
    let dir = tempfile::tempdir().expect("tempdir");
    let defaults = load_ok(&[], &[]).trust;
    assert_eq!(defaults.recompute_interval, Duration::from_secs(30));
    assert_eq!(defaults.proof_ttl, Duration::from_secs(300));
    assert_eq!(defaults.model, atp_trust::TrustConfig::default());

    let text = "[trust]\nrecompute_interval = \"5m\"\nproof_ttl = \"60s\"\ndamping = 0.8\n\
                max_iterations = 50\ntolerance = 1e-8\nhalf_life = \"240h\"\n\
                endorsement_weight = 1.5\nreceipt_weight = 0.1\ncredential_weight = 3.0\n\
                incident_weights = [1.0, 2.0, 4.0]\nnegative_multiplier = 5.0\n\
                issuer_prior_weight = 0.5\nscore_half_units = 0.25\n\
                level_thresholds = [0.1, 0.3, 0.6, 0.9]\nincident_open = \"48h\"\n\
                incident_reporter_min_level = 2\nexplain_max_depth = 6\nexplain_max_steps = 500\n";
    let path = write_config(dir.path(), "node.toml", text);
    let t = load_ok(&["--config", path.to_str().expect("utf-8")], &[]).trust;
    assert_eq!(t.recompute_interval, Duration::from_secs(300));
    assert_eq!(t.proof_ttl, Duration::from_secs(60));
    let expected = atp_trust::TrustConfig {
        damping: 0.8,
        max_iterations: 50,
        tolerance: 1e-8,
        half_life_ms: 240 * 3_600_000,
        endorsement_weight: 1.5,
        receipt_weight: 0.1,
        credential_weight: 3.0,
        incident_weights: [1.0, 2.0, 4.0],
        negative_multiplier: 5.0,
        issuer_prior_weight: 0.5,
        score_half_units: 0.25,
        level_thresholds: [0.1, 0.3, 0.6, 0.9],
        incident_open_ms: 48 * 3_600_000,
        incident_reporter_min_level: 2,
        explain_max_depth: 6,
        explain_max_steps: 500,
    };
    assert_eq!(t.model, expected);

    for (text, option) in [
        ("[trust]\ndamping = 1.0\n", "[trust]"),
        ("[trust]\nnegative_multiplier = 0.5\n", "[trust]"),
        ("[trust]\nlevel_thresholds = [0.5, 0.3, 0.6, 0.9]\n", "[trust]"),
        ("[trust]\nproof_ttl = \"0s\"\n", "trust.proof_ttl"),
        ("[trust]\nproof_ttl = \"25h\"\n", "trust.proof_ttl"),
        ("[trust]\nrecompute_interval = \"25h\"\n", "trust.recompute_interval"),
    ] {
        let path = write_config(dir.path(), "node.toml", text);
        let e = load_err(&["--config", path.to_str().expect("utf-8")], &[]);
        assert_eq!(invalid_option(&e), option, "{text}");
    }
    let path = write_config(dir.path(), "node.toml", "[trust]\nhalf_lif = \"1h\"\n");
    let e = load_err(&["--config", path.to_str().expect("utf-8")], &[]);
    assert!(e.to_string().contains("unknown field"), "{e}");
}

/// Every limit has its row in docs/operations.md, with the flag, variable and key the node
/// derives from its one declaration, and each one is read from each of the three sources, in
/// the order flag > variable > file > default.
#[test]
fn every_limit_is_documented_and_read_in_precedence_order() {
    let ops = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/operations.md"),
    )
    .expect("docs/operations.md");
    let dir = tempfile::tempdir().expect("tempdir");
    let defaults = NodeConfig::default().limits;
    for spec in atp_node::config::Limits::SPECS {
        let (flag, var) = (format!("--{}", spec.flag()), spec.env());
        let row = format!("| `{flag} {}` | `{var}` | `limits.{}` |", spec.value_name, spec.key);
        assert!(ops.contains(&row), "docs/operations.md has no row starting {row}");

        // A value other than the default that the node accepts: one end of the range (the
        // other end may conflict with another limit's default, e.g. the page sizes).
        let (low, high) = (spec.range)();
        let (value, from_flag) = [low, high]
            .into_iter()
            .find_map(|v| {
                let c = load(&[flag.as_str(), v.as_str()], &[]).ok()?;
                (c.limits != defaults).then_some((v, c))
            })
            .unwrap_or_else(|| panic!("{}: neither end of the range is accepted", spec.key));
        let from_env = load_ok(&[], &[(var.as_str(), value.as_str())]);
        let toml_value = if spec.text { format!("{value:?}") } else { value.clone() };
        let text = format!("[limits]\n{} = {toml_value}\n", spec.key);
        let path = write_config(dir.path(), "node.toml", &text);
        let from_file = load_ok(&["--config", path.to_str().expect("utf-8")], &[]);
        assert_eq!(from_env.limits, from_flag.limits, "{} from {var}", spec.key);
        assert_eq!(from_file.limits, from_flag.limits, "{} from the file", spec.key);

        // Precedence, with the default written out as the competing value.
        let default = (spec.default)();
        let file = ["--config", path.to_str().expect("utf-8")];
        let env_over_file = load_ok(&file, &[(var.as_str(), default.as_str())]);
        assert_eq!(env_over_file.limits, defaults, "{}: variable over file", spec.key);
        let flag_over_env = load_ok(
            &[file[0], file[1], flag.as_str(), value.as_str()],
            &[(var.as_str(), default.as_str())],
        );
        assert_eq!(flag_over_env.limits, from_flag.limits, "{}: flag over variable", spec.key);
    }
}

/// `[[witness]]`: the URL and both cosigner keys are checked at load, so a typo stops the node.
#[test]
fn witness_tables_are_checked_when_the_node_starts() {
    use atp_crypto::{AlgorithmId, SigningKey};
    let key = SigningKey::generate(AlgorithmId::MlDsa65Ed25519).expect("key");
    let cosigner =
        atp_core::witness::CosignerKey::from_composite("w.example/1", key.public_key_ref())
            .expect("cosigner");
    let [ed, ml] = cosigner.vkeys();
    let dir = tempfile::tempdir().expect("tempdir");
    let table = |url: &str, ed: &str, ml: &str| {
        format!("[[witness]]\nurl = \"{url}\"\ned25519 = \"{ed}\"\nmldsa65 = \"{ml}\"\n")
    };
    let good = write_config(dir.path(), "good.toml", &table("http://127.0.0.1:7381", &ed, &ml));
    let c = load_ok(&["--config", good.to_str().expect("utf-8")], &[]);
    assert_eq!(c.witnesses.len(), 1);
    assert_eq!(c.witnesses[0].cosigner, cosigner);
    assert!(NodeConfig::default().witnesses.is_empty(), "no witnesses by default");
    let mut broken_ed = ed.clone();
    broken_ed.pop();
    for (what, text) in [
        ("https (not built)", table("https://w.example", &ed, &ml)),
        ("no host", table("http:///x", &ed, &ml)),
        ("a broken key", table("http://127.0.0.1:1", &broken_ed, &ml)),
        ("the same key twice", table("http://127.0.0.1:1", &ed, &ed)),
        ("nine witnesses", table("http://127.0.0.1:1", &ed, &ml).repeat(9)),
    ] {
        let path = write_config(dir.path(), "bad.toml", &text);
        let e = load_err(&["--config", path.to_str().expect("utf-8")], &[]);
        assert!(e.to_string().contains("witness"), "{what}: {e}");
    }
}
