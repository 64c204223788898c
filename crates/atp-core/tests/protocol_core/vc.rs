//! VC Data Model 2.0 verifier rules: every rule violation gives its precise error.
#![allow(clippy::unwrap_used)]

use atp_core::CoreError;
use atp_core::vc::{
    self, CredentialBuilder, DateTimeStamp, PresentationBuilder, VC_V2_CONTEXT, check_credential,
    check_presentation, verify_credential, verify_presentation,
};
use serde_json::{Value, json};

fn base() -> Value {
    json!({
        "@context": [VC_V2_CONTEXT, "https://www.w3.org/ns/credentials/examples/v2"],
        "id": "urn:uuid:58172aac-d8ba-11ed-83dd-0b3aef56cc33",
        "type": ["VerifiableCredential", "AlumniCredential"],
        "issuer": "https://vc.example/issuers/5678",
        "validFrom": "2023-01-01T00:00:00Z",
        "validUntil": "2030-01-01T00:00:00Z",
        "credentialSubject": {"id": "did:example:abcdefgh", "alumniOf": "The School of Examples"},
        "unknownExtension": {"kept": true}
    })
}

fn with(f: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Value {
    let mut v = base();
    f(v.as_object_mut().unwrap());
    v
}

/// Assert the error class (code) and the property the error names.
#[track_caller]
fn assert_err(r: Result<impl std::fmt::Debug, CoreError>, code: &str, property: &str) {
    let e = r.unwrap_err();
    assert_eq!(e.code(), code, "{e}");
    match &e {
        CoreError::VcMalformedValue { property: p, .. }
        | CoreError::VcRange { property: p, .. } => {
            assert_eq!(p, property, "{e}")
        }
        other => panic!("expected a property error, got {other:?}"),
    }
}

const T_2024: i64 = 1_704_067_200; // 2024-01-01T00:00:00Z

#[test]
fn valid_credential_passes_and_keeps_unknown_properties() {
    let vc = base();
    let info = verify_credential(&vc, T_2024).unwrap();
    assert_eq!(info.issuer, "https://vc.example/issuers/5678");
    assert_eq!(info.types, ["VerifiableCredential", "AlumniCredential"]);
    assert_eq!(info.subject_ids, ["did:example:abcdefgh"]);
    assert_eq!(info.valid_from.unwrap().unix_seconds(), 1_672_531_200);
    // The verifier does not touch the document.
    assert_eq!(vc["unknownExtension"]["kept"], true);
}

#[test]
fn vector_credentials_pass_structure() {
    for rel in [
        "vc-di-eddsa/TestVectors/unsigned.json",
        "vc-di-eddsa/TestVectors/eddsa-jcs-2022/signedJCS.json",
        "di-quantum-safe/testVectors/inputs/employmentAuth.json",
        "di-quantum-safe/testVectors/mldsa44-jcs-2024/signed-mldsa44-jcs-2024.json",
    ] {
        let Some(vc) = atp_test_vectors::read_json(rel) else { return };
        check_credential(&vc).unwrap_or_else(|e| panic!("{rel}: {e}"));
    }
}

#[test]
fn not_an_object_is_parsing_error() {
    for v in [json!([]), json!("vc"), json!(null), json!(1)] {
        let e = check_credential(&v).unwrap_err();
        assert_eq!(e.code(), "PARSING_ERROR");
        let e = check_presentation(&v).unwrap_err();
        assert_eq!(e.code(), "PARSING_ERROR");
    }
}

#[test]
fn context_rules() {
    let m = "MALFORMED_VALUE_ERROR";
    assert_err(check_credential(&with(|o| drop(o.remove("@context")))), m, "@context");
    assert_err(
        check_credential(&with(|o| {
            o.insert("@context".into(), json!(["https://www.w3.org/2018/credentials/v1"]));
        })),
        m,
        "@context",
    );
    // Not first.
    assert_err(
        check_credential(&with(|o| {
            o.insert(
                "@context".into(),
                json!(["https://www.w3.org/ns/credentials/examples/v2", VC_V2_CONTEXT]),
            );
        })),
        m,
        "@context",
    );
    assert_err(
        check_credential(&with(|o| drop(o.insert("@context".into(), json!([]))))),
        m,
        "@context",
    );
    assert_err(
        check_credential(&with(|o| drop(o.insert("@context".into(), json!(5))))),
        m,
        "@context",
    );
    assert_err(
        check_credential(&with(|o| drop(o.insert("@context".into(), json!([VC_V2_CONTEXT, 7]))))),
        m,
        "@context[1]",
    );
    assert_err(
        check_credential(&with(|o| {
            o.insert("@context".into(), json!([VC_V2_CONTEXT, "not a url"]));
        })),
        m,
        "@context[1]",
    );
    // A single string and inline context objects are fine.
    check_credential(&with(|o| drop(o.insert("@context".into(), json!(VC_V2_CONTEXT))))).unwrap();
    check_credential(&with(|o| {
        o.insert("@context".into(), json!([VC_V2_CONTEXT, {"ex": "https://example.org/#"}]));
    }))
    .unwrap();
}

#[test]
fn type_rules() {
    let m = "MALFORMED_VALUE_ERROR";
    assert_err(check_credential(&with(|o| drop(o.remove("type")))), m, "type");
    assert_err(
        check_credential(&with(|o| drop(o.insert("type".into(), json!(["AlumniCredential"]))))),
        m,
        "type",
    );
    assert_err(check_credential(&with(|o| drop(o.insert("type".into(), json!([]))))), m, "type");
    assert_err(check_credential(&with(|o| drop(o.insert("type".into(), json!([1]))))), m, "type");
    check_credential(&with(|o| drop(o.insert("type".into(), json!("VerifiableCredential")))))
        .unwrap();
}

#[test]
fn id_and_issuer_rules() {
    let m = "MALFORMED_VALUE_ERROR";
    assert_err(
        check_credential(&with(|o| drop(o.insert("id".into(), json!("no scheme"))))),
        m,
        "id",
    );
    assert_err(check_credential(&with(|o| drop(o.insert("id".into(), json!(["urn:a"]))))), m, "id");
    assert_err(check_credential(&with(|o| drop(o.remove("issuer")))), m, "issuer");
    assert_err(
        check_credential(&with(|o| drop(o.insert("issuer".into(), json!("issuer"))))),
        m,
        "issuer",
    );
    assert_err(
        check_credential(&with(|o| drop(o.insert("issuer".into(), json!(42))))),
        m,
        "issuer",
    );
    assert_err(
        check_credential(&with(|o| drop(o.insert("issuer".into(), json!({"name": "x"}))))),
        m,
        "issuer.id",
    );
    assert_err(
        check_credential(&with(|o| drop(o.insert("issuer".into(), json!({"id": "x y:z"}))))),
        m,
        "issuer.id",
    );
    let info = check_credential(&with(|o| {
        o.insert("issuer".into(), json!({"id": "did:example:issuer", "name": "Example"}));
    }))
    .unwrap();
    assert_eq!(info.issuer, "did:example:issuer");
}

#[test]
fn subject_rules() {
    let m = "MALFORMED_VALUE_ERROR";
    let p = "credentialSubject";
    assert_err(check_credential(&with(|o| drop(o.remove(p)))), m, p);
    assert_err(check_credential(&with(|o| drop(o.insert(p.into(), json!([]))))), m, p);
    assert_err(check_credential(&with(|o| drop(o.insert(p.into(), json!("did:example:a"))))), m, p);
    assert_err(check_credential(&with(|o| drop(o.insert(p.into(), json!({}))))), m, p);
    assert_err(
        check_credential(&with(|o| drop(o.insert(p.into(), json!([{"a": 1}, 3]))))),
        m,
        "credentialSubject[1]",
    );
    assert_err(
        check_credential(&with(|o| drop(o.insert(p.into(), json!({"id": "nope", "a": 1}))))),
        m,
        "credentialSubject.id",
    );
    assert_err(
        check_credential(&with(|o| drop(o.insert(p.into(), json!([{"a": 1}, {"id": 5}]))))),
        m,
        "credentialSubject[1].id",
    );
    let info = check_credential(&with(|o| {
        o.insert(p.into(), json!([{"id": "did:example:a", "x": 1}, {"y": 2}]));
    }))
    .unwrap();
    assert_eq!(info.subject_ids, ["did:example:a"]);
}

#[test]
fn validity_period_rules() {
    let m = "MALFORMED_VALUE_ERROR";
    let r = "RANGE_ERROR";
    for bad in [
        "2023-01-01",
        "2023-01-01T00:00:00",  // no time zone
        "2023-01-01t00:00:00Z", // lower-case t
        "2023-01-01T00:00:00z", // lower-case z
        "2023-02-29T00:00:00Z", // not a leap year
        "2023-13-01T00:00:00Z",
        "2023-00-10T00:00:00Z",
        "2023-01-01T25:00:00Z",
        "2023-01-01T24:00:01Z",
        "2023-01-01T00:60:00Z",
        "2023-01-01T00:00:60Z", // no leap seconds
        "2023-01-01T00:00:00.Z",
        "2023-01-01T00:00:00+15:00",
        "2023-01-01T00:00:00+14:30",
        "2023-01-01T00:00:00+0100",
        "23-01-01T00:00:00Z",
        "02023-01-01T00:00:00Z",
        "2023-01-01T00:00:00Z ",
        " 2023-01-01T00:00:00Z",
        "2023-1-01T00:00:00Z",
    ] {
        assert_err(
            check_credential(&with(|o| drop(o.insert("validFrom".into(), json!(bad))))),
            m,
            "validFrom",
        );
        assert_err(
            check_credential(&with(|o| drop(o.insert("validUntil".into(), json!(bad))))),
            m,
            "validUntil",
        );
    }
    assert_err(
        check_credential(&with(|o| drop(o.insert("validFrom".into(), json!(0))))),
        m,
        "validFrom",
    );
    // validFrom after validUntil.
    assert_err(
        check_credential(&with(|o| {
            o.insert("validFrom".into(), json!("2031-01-01T00:00:00Z"));
        })),
        r,
        "validFrom",
    );
    // The window, bounds included.
    let vc = base();
    let from = 1_672_531_200; // 2023-01-01T00:00:00Z
    let until = 1_893_456_000; // 2030-01-01T00:00:00Z
    verify_credential(&vc, from).unwrap();
    verify_credential(&vc, until).unwrap();
    assert_err(verify_credential(&vc, from - 1), r, "validFrom");
    assert_err(verify_credential(&vc, until + 1), r, "validUntil");
    // Offsets are honoured: 01:00+01:00 is midnight UTC.
    let vc = with(|o| {
        o.insert("validFrom".into(), json!("2023-01-01T01:00:00+01:00"));
    });
    verify_credential(&vc, from).unwrap();
    assert_err(verify_credential(&vc, from - 1), r, "validFrom");
}

#[test]
fn datetime_parser() {
    let p = |s: &str| DateTimeStamp::parse(s).unwrap();
    assert_eq!(p("1970-01-01T00:00:00Z").unix_seconds(), 0);
    assert_eq!(p("2000-02-29T12:34:56Z").unix_seconds(), 951_827_696);
    assert_eq!(p("2023-02-24T23:36:38Z").unix_seconds(), 1_677_281_798);
    assert_eq!(p("2023-01-01T00:00:00-05:30").unix_seconds(), 1_672_531_200 + 5 * 3600 + 1800);
    assert_eq!(p("2023-01-01T24:00:00Z"), p("2023-01-02T00:00:00Z"));
    assert_eq!(p("1969-12-31T23:59:59Z").unix_seconds(), -1);
    assert_eq!(p("0000-01-01T00:00:00Z").unix_seconds(), -62_167_219_200);
    assert_eq!(p("-0001-01-01T00:00:00Z").unix_seconds(), -62_167_219_200 - 365 * 86_400);
    assert_eq!(p("10000-01-01T00:00:00Z").unix_seconds(), 253_402_300_800);
    let frac = p("2023-01-01T00:00:00.123456789123Z");
    assert_eq!((frac.unix_seconds(), frac.nanos()), (1_672_531_200, 123_456_789));
    assert!(p("2023-01-01T00:00:00.5Z") > p("2023-01-01T00:00:00Z"));
    // Display round-trips.
    for s in [
        "1970-01-01T00:00:00Z",
        "2024-02-29T23:59:59.25Z",
        "-0044-03-15T12:00:00Z",
        "9999-12-31T23:59:59Z",
    ] {
        assert_eq!(p(s).to_string(), s);
    }
    assert_eq!(DateTimeStamp::from_unix(1_767_225_600).to_string(), "2026-01-01T00:00:00Z");
    assert!(DateTimeStamp::parse(&"9".repeat(100)).is_err());
    assert!(DateTimeStamp::parse("2023-01-01T00:00:00\u{FF3A}").is_err());
}

#[test]
fn status_schema_and_other_typed_objects() {
    let m = "MALFORMED_VALUE_ERROR";
    let status = json!({
        "id": "https://example.com/credentials/status/3#94567",
        "type": "BitstringStatusListEntry",
        "statusPurpose": "revocation",
        "statusListIndex": "94567",
        "statusListCredential": "https://example.com/credentials/status/3"
    });
    check_credential(&with(|o| drop(o.insert("credentialStatus".into(), status.clone())))).unwrap();
    check_credential(&with(|o| {
        o.insert("credentialStatus".into(), json!([status.clone(), status.clone()]));
    }))
    .unwrap();
    let mut no_type = status.clone();
    no_type.as_object_mut().unwrap().remove("type");
    assert_err(
        check_credential(&with(|o| drop(o.insert("credentialStatus".into(), no_type.clone())))),
        m,
        "credentialStatus.type",
    );
    assert_err(
        check_credential(&with(|o| {
            o.insert("credentialStatus".into(), json!([status.clone(), no_type.clone()]));
        })),
        m,
        "credentialStatus[1].type",
    );
    let mut bad_id = status.clone();
    bad_id["id"] = json!("94567");
    assert_err(
        check_credential(&with(|o| drop(o.insert("credentialStatus".into(), bad_id)))),
        m,
        "credentialStatus.id",
    );
    assert_err(
        check_credential(&with(|o| drop(o.insert("credentialStatus".into(), json!("x"))))),
        m,
        "credentialStatus",
    );
    assert_err(
        check_credential(&with(|o| drop(o.insert("credentialStatus".into(), json!([]))))),
        m,
        "credentialStatus",
    );
    // credentialSchema needs id and type.
    assert_err(
        check_credential(&with(|o| {
            o.insert("credentialSchema".into(), json!({"type": "JsonSchema"}));
        })),
        m,
        "credentialSchema.id",
    );
    check_credential(&with(|o| {
        o.insert(
            "credentialSchema".into(),
            json!({"id": "https://example.org/schema.json", "type": "JsonSchema"}),
        );
    }))
    .unwrap();
    for p in ["termsOfUse", "evidence", "refreshService"] {
        assert_err(
            check_credential(&with(|o| drop(o.insert(p.into(), json!({"id": "urn:x"}))))),
            m,
            &format!("{p}.type"),
        );
    }
    // name / description.
    check_credential(&with(|o| {
        o.insert("name".into(), json!([{"@value": "Diplom", "@language": "de"}, "Diploma"]));
    }))
    .unwrap();
    assert_err(check_credential(&with(|o| drop(o.insert("name".into(), json!(3))))), m, "name");
    assert_err(
        check_credential(&with(|o| {
            drop(o.insert("description".into(), json!({"@language": "en"})))
        })),
        m,
        "description",
    );
}

#[test]
fn presentation_rules() {
    let m = "MALFORMED_VALUE_ERROR";
    let vp = json!({
        "@context": [VC_V2_CONTEXT],
        "type": ["VerifiablePresentation"],
        "holder": "did:example:holder",
        "verifiableCredential": [base(), {
            "@context": [VC_V2_CONTEXT],
            "type": "EnvelopedVerifiableCredential",
            "id": "data:application/vc+jwt,eyJ..."
        }]
    });
    let info = verify_presentation(&vp, T_2024).unwrap();
    assert_eq!(info.holder.as_deref(), Some("did:example:holder"));
    assert_eq!(info.credentials.len(), 1);
    assert_eq!(info.enveloped_credentials, 1);

    let mut bad = vp.clone();
    bad["type"] = json!(["VerifiableCredential"]);
    assert_err(check_presentation(&bad), m, "type");
    let mut bad = vp.clone();
    bad["holder"] = json!("holder");
    assert_err(check_presentation(&bad), m, "holder");
    let mut bad = vp.clone();
    bad["@context"] = json!(["https://example.org"]);
    assert_err(check_presentation(&bad), m, "@context");
    let mut bad = vp.clone();
    bad["verifiableCredential"][0]["issuer"] = json!(1);
    assert_err(check_presentation(&bad), m, "verifiableCredential[0].issuer");
    let mut bad = vp.clone();
    bad["verifiableCredential"][1]["id"] = json!("https://example.org/vc");
    assert_err(check_presentation(&bad), m, "verifiableCredential[1].id");
    let mut bad = vp.clone();
    bad["verifiableCredential"] = json!(["a"]);
    assert_err(check_presentation(&bad), m, "verifiableCredential[0]");
    // An embedded credential outside its window.
    assert_err(
        verify_presentation(&vp, 1_893_456_001),
        "RANGE_ERROR",
        "verifiableCredential[0].validUntil",
    );
}

#[test]
fn builders() {
    let vc = CredentialBuilder::new("did:atp:issuer")
        .id("urn:uuid:1")
        .context("https://www.w3.org/ns/credentials/examples/v2")
        .add_type("AgentOperatorCredential")
        .subject(json!({"id": "did:atp:agent", "operator": "Example Corp"}))
        .valid_from_unix(T_2024)
        .valid_until("2025-01-01T00:00:00Z")
        .status(json!({"type": "BitstringStatusListEntry", "statusPurpose": "revocation"}))
        .property("name", json!("Operator"))
        .build()
        .unwrap();
    assert_eq!(vc["@context"][0], VC_V2_CONTEXT);
    assert_eq!(vc["type"], json!(["VerifiableCredential", "AgentOperatorCredential"]));
    assert_eq!(vc["validFrom"], "2024-01-01T00:00:00Z");
    assert_eq!(vc["credentialSubject"]["operator"], "Example Corp");
    assert_eq!(vc["credentialStatus"]["type"], "BitstringStatusListEntry");
    verify_credential(&vc, T_2024).unwrap();

    // The builder runs the rules.
    let e = CredentialBuilder::new("did:atp:issuer").build().unwrap_err();
    assert_eq!(e.code(), "MALFORMED_VALUE_ERROR");
    let e = CredentialBuilder::new("not a url").subject(json!({"a": 1})).build().unwrap_err();
    assert_eq!(e.code(), "MALFORMED_VALUE_ERROR");
    let e = CredentialBuilder::new("did:atp:i")
        .subject(json!({"a": 1}))
        .property("issuer", json!("did:atp:other"))
        .build()
        .unwrap_err();
    assert_eq!(e.code(), "MALFORMED_VALUE_ERROR");

    let vp = PresentationBuilder::new().holder("did:atp:agent").credential(vc).build().unwrap();
    assert_eq!(vp["type"], json!(["VerifiablePresentation"]));
    check_presentation(&vp).unwrap();
}

#[test]
fn problem_details_shape() {
    let e = check_credential(&with(|o| drop(o.remove("issuer")))).unwrap_err();
    let pd = vc::problem_details(&e).unwrap();
    assert_eq!(pd["type"], "https://www.w3.org/TR/vc-data-model#MALFORMED_VALUE_ERROR");
    assert_eq!(pd["code"], -66);
    assert_eq!(pd["title"], "MALFORMED_VALUE_ERROR");
    assert!(pd["detail"].as_str().unwrap().contains("issuer"));
    let e = verify_credential(&base(), 0).unwrap_err();
    assert_eq!(vc::problem_details(&e).unwrap()["code"], -67);
    let e = check_credential(&json!(1)).unwrap_err();
    assert_eq!(vc::problem_details(&e).unwrap()["code"], -64);
}

#[test]
fn url_check() {
    for ok in ["https://example.org", "did:atp:abc", "urn:uuid:1", "data:,x", "did:key:z6Mk#z6Mk"] {
        assert!(vc::is_url(ok), "{ok}");
    }
    for bad in
        ["", "example", ":x", "1http://x", "https://exa mple.org", "https:", "a:b\n", "x:<y>"]
    {
        assert!(!vc::is_url(bad), "{bad}");
    }
}
