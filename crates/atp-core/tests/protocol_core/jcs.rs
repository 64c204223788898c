//! RFC 8785 (JCS) against the cyberphone test data and the ES6 number-serialisation files.
#![allow(clippy::unwrap_used)]

use atp_core::jcs;
use serde_json::{Value, json};

const PAIRS: [&str; 6] = ["arrays", "french", "structures", "unicode", "values", "weird"];

fn parse_hex_bytes(text: &str) -> Vec<u8> {
    text.split_whitespace().map(|h| u8::from_str_radix(h, 16).unwrap()).collect()
}

#[test]
fn rfc8785_testdata_pairs() {
    let mut checked = 0;
    for name in PAIRS {
        let Some(input) =
            atp_test_vectors::read_text(&format!("jcs-rfc8785/testdata/input/{name}.json"))
        else {
            return;
        };
        let Some(path) =
            atp_test_vectors::vector_path(&format!("jcs-rfc8785/testdata/output/{name}.json"))
        else {
            return;
        };
        let expected = std::fs::read(path).unwrap();
        let Some(outhex) =
            atp_test_vectors::read_text(&format!("jcs-rfc8785/testdata/outhex/{name}.txt"))
        else {
            return;
        };
        let value: Value = serde_json::from_str(&input).unwrap();
        let got = jcs::canonicalize(&value).unwrap();
        assert_eq!(got, expected, "{name}: canonical bytes differ from output/{name}.json");
        assert_eq!(got, parse_hex_bytes(&outhex), "{name}: canonical bytes differ from outhex");
        assert_eq!(jcs::to_canonical_string(&value).unwrap().as_bytes(), &expected[..]);
        // Canonicalisation is idempotent.
        let again: Value = serde_json::from_slice(&got).unwrap();
        assert_eq!(jcs::canonicalize(&again).unwrap(), expected, "{name}: not idempotent");
        checked += 1;
    }
    assert_eq!(checked, PAIRS.len());
}

/// Every line `hex-ieee754,expected` must serialise exactly; returns the number checked.
fn check_es6_file(rel: &str, expected_lines: usize) {
    let Some(text) = atp_test_vectors::read_text(rel) else { return };
    let mut checked = 0;
    let mut mismatches = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let (hex, expected) = line.split_once(',').unwrap_or_else(|| panic!("{rel}:{n}: {line:?}"));
        let bits = u64::from_str_radix(hex, 16).unwrap();
        let f = f64::from_bits(bits);
        // The files hold no NaN or infinities (JCS forbids them): fail loudly if one appears.
        assert!(f.is_finite(), "{rel}:{}: non-finite value {hex}", n + 1);
        // Path 1: the f64 through serde_jcs directly.
        let direct = String::from_utf8(jcs::canonicalize_serializable(&f).unwrap()).unwrap();
        // Path 2: as a number inside a JSON array value, brackets stripped.
        let arr = json!([f]);
        let in_array = jcs::to_canonical_string(&arr).unwrap();
        let stripped = &in_array[1..in_array.len() - 1];
        if direct != expected || stripped != expected {
            mismatches
                .push(format!("line {}: {hex} -> {direct} / {stripped}, want {expected}", n + 1));
        }
        checked += 1;
    }
    assert!(
        mismatches.is_empty(),
        "{rel}: {} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    assert_eq!(checked, expected_lines, "{rel}: unexpected line count");
}

#[test]
fn es6_numbers_10k() {
    check_es6_file("jcs-rfc8785/es6testfile10k.txt", 10_000);
}

#[test]
fn es6_numbers_1k() {
    check_es6_file("jcs-rfc8785/es6testfile1k.txt", 1_000);
}

#[test]
fn rfc8785_examples() {
    // RFC 8785 §3.2.2.3 numbers and sorting by UTF-16 code units (not UTF-8 bytes).
    let v: Value =
        serde_json::from_str(r#"{"\ud83d\ude00":1,"\ufb33":2,"a":-0.0,"b":1e21,"c":1e-7}"#)
            .unwrap();
    assert_eq!(
        jcs::to_canonical_string(&v).unwrap(),
        "{\"a\":0,\"b\":1e+21,\"c\":1e-7,\"\u{1F600}\":1,\"\u{FB33}\":2}"
    );
    // Integers that are exact doubles keep their value, however large.
    let big: Value = serde_json::from_str("[9007199254740992,-9007199254740992,1e21]").unwrap();
    assert_eq!(
        jcs::to_canonical_string(&big).unwrap(),
        "[9007199254740992,-9007199254740992,1e+21]"
    );
}

/// Regression: JCS writes every number as a double, so an integer that no double equals
/// (beyond 2^53) used to be rounded, and `9007199254740993` had the canonical form (and so
/// the hash and signature) of `9007199254740992` while the application read the exact value.
/// Such integers are now refused, for `Value`s and for typed values alike.
#[test]
fn integers_that_would_be_rounded_are_refused() {
    for text in ["[9007199254740993]", "[-9007199254740993]", "{\"n\":18446744073709551615}"] {
        let v: Value = serde_json::from_str(text).unwrap();
        assert_eq!(jcs::canonicalize(&v).unwrap_err().code(), "JCS_INVALID", "{text}");
    }
    let a: Value = serde_json::from_str(r#"{"amount":9007199254740993}"#).unwrap();
    let b: Value = serde_json::from_str(r#"{"amount":9007199254740992}"#).unwrap();
    assert_ne!(jcs::canonicalize(&a).ok(), jcs::canonicalize(&b).ok());
    assert_eq!(jcs::canonicalize_serializable(&(u64::MAX - 1)).unwrap_err().code(), "JCS_INVALID");
    assert_eq!(jcs::canonicalize_serializable(&i128::MAX).unwrap_err().code(), "JCS_INVALID");
    assert_eq!(jcs::canonicalize_serializable(&u128::MAX).unwrap_err().code(), "JCS_INVALID");
    jcs::canonicalize_serializable(&(1u64 << 53)).unwrap();
    jcs::canonicalize_serializable(&((1u64 << 53) - 1)).unwrap();
    jcs::canonicalize_serializable(&i64::MIN).unwrap(); // -2^63 is a double
}

#[test]
fn non_finite_is_rejected() {
    for f in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let e = jcs::canonicalize_serializable(&f).unwrap_err();
        assert_eq!(e.code(), "JCS_INVALID");
        let e = jcs::canonicalize_serializable(&vec![f]).unwrap_err();
        assert_eq!(e.code(), "JCS_INVALID");
        // Nested in a struct-like map, too (serde_json alone would write `null`).
        let mut m = std::collections::BTreeMap::new();
        m.insert("score", vec![Some(0.5), Some(f)]);
        let e = jcs::canonicalize_serializable(&m).unwrap_err();
        assert_eq!(e.code(), "JCS_INVALID");
    }
}

#[test]
fn serializable_matches_value() {
    #[derive(serde::Serialize)]
    struct S {
        z: u8,
        a: Vec<f64>,
        m: Option<&'static str>,
    }
    let s = S { z: 1, a: vec![1.0, 0.1, 1e21], m: None };
    let bytes = jcs::canonicalize_serializable(&s).unwrap();
    assert_eq!(bytes, br#"{"a":[1,0.1,1e+21],"m":null,"z":1}"#);
    assert_eq!(bytes, jcs::canonicalize(&serde_json::to_value(&s).unwrap()).unwrap());
    // Maps with non-string keys have no JSON form.
    let mut m = std::collections::BTreeMap::new();
    m.insert(vec![1u8], 1);
    assert_eq!(jcs::canonicalize_serializable(&m).unwrap_err().code(), "JCS_INVALID");
}

#[test]
fn depth_limit() {
    let mut v = json!(1);
    for _ in 0..jcs::MAX_DEPTH {
        v = json!([v]);
    }
    assert_eq!(jcs::depth(&v), jcs::MAX_DEPTH);
    assert!(jcs::canonicalize(&v).is_ok());
    let deeper = json!({ "x": v });
    let e = jcs::canonicalize(&deeper).unwrap_err();
    assert_eq!(e.code(), "JCS_TOO_DEEP");
    // Far deeper than any stack would allow for a recursive check: still a clean error.
    let mut huge = json!(null);
    for _ in 0..100_000 {
        huge = Value::Array(vec![huge]);
    }
    assert_eq!(jcs::check_depth(&huge).unwrap_err().code(), "JCS_TOO_DEEP");
    // Dropping a 100 000-deep value recurses in serde_json; avoid it in the test thread.
    std::mem::forget(huge);
}
