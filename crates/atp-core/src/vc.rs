//! W3C Verifiable Credentials Data Model 2.0: the verifier's structural rules, the validity
//! period, builders, and the spec's error classes.
//!
//! Credentials are open-world JSON: every function here works on a [`serde_json::Value`] and
//! keeps properties it does not know. The checks are the data model's normative statements
//! that a verifier can test without JSON-LD processing:
//!
//! * `@context` is an ordered set whose first entry is [`VC_V2_CONTEXT`]; later entries are
//!   URLs or objects.
//! * `type` contains `VerifiableCredential` (or `VerifiablePresentation`).
//! * `id`, when present, is one URL; `issuer` is a URL or an object with an `id` URL;
//!   `credentialSubject` is an object or a non-empty array of objects, each with at least one
//!   claim; `holder`, when present, is a URL or an object with an `id` URL.
//! * `validFrom` / `validUntil` are XML Schema `dateTimeStamp`s (a time zone is required),
//!   `validFrom` is not after `validUntil`, and the caller's `now` lies in the window.
//! * `credentialStatus`, `credentialSchema`, `termsOfUse`, `evidence` and `refreshService` are
//!   objects (or arrays of objects) with a `type`; `credentialSchema` entries also need an `id`.
//! * `name` and `description` are strings or language value objects.
//!
//! Errors use the spec's classes (§7.1 and the VC-API): [`CoreError::VcParsing`]
//! (`PARSING_ERROR`, -64), [`CoreError::VcCryptographicSecurity`]
//! (`CRYPTOGRAPHIC_SECURITY_ERROR`, -65), [`CoreError::VcMalformedValue`]
//! (`MALFORMED_VALUE_ERROR`, -66) and [`CoreError::VcRange`] (`RANGE_ERROR`, -67). The
//! malformed-value and range errors name the offending property, and [`problem_details`] turns
//! any of them into a problem-details object for the VC-API.
//!
//! Proofs are checked by [`crate::data_integrity`]; this module never looks at `proof`.
use std::fmt;

use serde_json::{Map, Value, json};

use crate::CoreError;

/// The base context every VC 2.0 credential and presentation starts with.
pub const VC_V2_CONTEXT: &str = "https://www.w3.org/ns/credentials/v2";
/// The type every credential carries.
pub const VERIFIABLE_CREDENTIAL: &str = "VerifiableCredential";
/// The type every presentation carries.
pub const VERIFIABLE_PRESENTATION: &str = "VerifiablePresentation";
/// The type of a credential embedded in a presentation through an enveloping proof.
pub const ENVELOPED_VERIFIABLE_CREDENTIAL: &str = "EnvelopedVerifiableCredential";

/// The longest `dateTimeStamp` accepted, in bytes.
const MAX_DATETIME_LEN: usize = 64;

// ------------------------------------------------------------------------------------------
// Errors
// ------------------------------------------------------------------------------------------

fn malformed(property: impl Into<String>, reason: impl Into<String>) -> CoreError {
    CoreError::VcMalformedValue { property: property.into(), reason: reason.into() }
}

fn range(property: impl Into<String>, reason: impl Into<String>) -> CoreError {
    CoreError::VcRange { property: property.into(), reason: reason.into() }
}

/// Prefix the property path of a malformed-value or range error (for embedded credentials).
fn prefixed(prefix: &str, e: CoreError) -> CoreError {
    match e {
        CoreError::VcMalformedValue { property, reason } => {
            CoreError::VcMalformedValue { property: format!("{prefix}{property}"), reason }
        }
        CoreError::VcRange { property, reason } => {
            CoreError::VcRange { property: format!("{prefix}{property}"), reason }
        }
        other => other,
    }
}

/// A VC-API / RFC 9457 problem-details object for one of the VC 2.0 error classes:
/// `{"type": "https://www.w3.org/TR/vc-data-model#MALFORMED_VALUE_ERROR", "code": -66,
/// "title": …, "detail": …}`. `None` for errors outside those classes.
///
/// [`CoreError::ProofGeneration`] is reported with the Data Integrity type
/// `https://w3id.org/security#PROOF_GENERATION_ERROR` and no numeric code.
pub fn problem_details(err: &CoreError) -> Option<Value> {
    let (title, code): (&str, Option<i32>) = match err {
        CoreError::VcParsing(_) => ("PARSING_ERROR", Some(-64)),
        CoreError::VcCryptographicSecurity { .. } => ("CRYPTOGRAPHIC_SECURITY_ERROR", Some(-65)),
        CoreError::VcMalformedValue { .. } => ("MALFORMED_VALUE_ERROR", Some(-66)),
        CoreError::VcRange { .. } => ("RANGE_ERROR", Some(-67)),
        CoreError::ProofGeneration(_) => ("PROOF_GENERATION_ERROR", None),
        _ => return None,
    };
    let mut out = Map::new();
    let ty = match code {
        Some(_) => format!("https://www.w3.org/TR/vc-data-model#{title}"),
        None => format!("https://w3id.org/security#{title}"),
    };
    out.insert("type".into(), Value::String(ty));
    if let Some(c) = code {
        out.insert("code".into(), json!(c));
    }
    out.insert("title".into(), Value::String(title.into()));
    out.insert("detail".into(), Value::String(err.to_string()));
    Some(Value::Object(out))
}

// ------------------------------------------------------------------------------------------
// dateTimeStamp
// ------------------------------------------------------------------------------------------

/// An XML Schema 1.1 `dateTimeStamp`: a date and time with a mandatory time zone, held as an
/// instant (seconds since the Unix epoch plus nanoseconds). Ordering is chronological.
///
/// The parser is strict: `[-]YYYY-MM-DDThh:mm:ss[.s+](Z|±hh:mm)` with upper-case `T` and `Z`,
/// a real calendar date (leap years included, proleptic Gregorian, year `0000` allowed as
/// XML Schema 1.1 does), hours `00`–`23` (or `24:00:00` for the end of a day), no leap
/// seconds, and offsets up to `±14:00`. Fractions beyond nanoseconds are truncated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DateTimeStamp {
    unix_seconds: i64,
    nanos: u32,
}

fn is_leap(year: i64) -> bool {
    year.rem_euclid(4) == 0 && (year.rem_euclid(100) != 0 || year.rem_euclid(400) == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// A cursor over the ASCII bytes of a timestamp.
struct Cursor<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn expect(&mut self, b: u8, what: &'static str) -> Result<(), &'static str> {
        if self.peek() == Some(b) {
            self.pos += 1;
            Ok(())
        } else {
            Err(what)
        }
    }

    /// Exactly `n` ASCII digits as a number.
    fn digits(&mut self, n: usize, what: &'static str) -> Result<i64, &'static str> {
        let end = self.pos + n;
        let slice = self.s.get(self.pos..end).ok_or(what)?;
        if !slice.iter().all(u8::is_ascii_digit) {
            return Err(what);
        }
        self.pos = end;
        Ok(slice.iter().fold(0i64, |acc, d| acc * 10 + i64::from(d - b'0')))
    }

    /// A run of ASCII digits (possibly empty).
    fn digit_run(&mut self) -> &[u8] {
        let start = self.pos;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
        &self.s[start..self.pos]
    }
}

/// The two accepted lexical forms: one parser, two profiles.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Profile {
    /// XML Schema 1.1 `dateTimeStamp` (credentials and proofs).
    XmlSchema,
    /// The RFC 3339 UTC subset used by key event logs: `YYYY-MM-DDThh:mm:ss[.f{1,9}]Z`.
    Rfc3339Utc,
}

impl DateTimeStamp {
    /// Parse an XML Schema 1.1 `dateTimeStamp`; the error says what is wrong.
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        Self::parse_profile(s, Profile::XmlSchema)
    }

    /// Parse the strict RFC 3339 UTC form of key event timestamps:
    /// `YYYY-MM-DDThh:mm:ssZ` with an optional fraction of 1 to 9 digits (`.123Z`), a
    /// four-digit year (`0000`–`9999`), upper-case `T` and `Z`, hours `00`–`23`, no leap
    /// seconds and no other offset. It is a subset of [`DateTimeStamp::parse`].
    pub fn parse_rfc3339_utc(s: &str) -> Result<Self, &'static str> {
        Self::parse_profile(s, Profile::Rfc3339Utc)
    }

    fn parse_profile(s: &str, profile: Profile) -> Result<Self, &'static str> {
        let utc_only = profile == Profile::Rfc3339Utc;
        if s.len() > MAX_DATETIME_LEN {
            return Err("too long");
        }
        if !s.is_ascii() {
            return Err("contains non-ASCII characters");
        }
        let mut c = Cursor { s: s.as_bytes(), pos: 0 };
        let negative = c.peek() == Some(b'-');
        if negative {
            if utc_only {
                return Err("the year must be four digits without a sign");
            }
            c.pos += 1;
        }
        let year_digits = c.digit_run();
        if year_digits.len() < 4 {
            return Err("the year must have at least four digits");
        }
        if year_digits.len() > 9 {
            return Err("the year is out of range");
        }
        if utc_only && year_digits.len() != 4 {
            return Err("the year must be four digits");
        }
        if year_digits.len() > 4 && year_digits[0] == b'0' {
            return Err("a year of more than four digits must not start with 0");
        }
        let mut year = year_digits.iter().fold(0i64, |acc, d| acc * 10 + i64::from(d - b'0'));
        if negative {
            year = -year;
        }
        c.expect(b'-', "expected '-' after the year")?;
        let month = c.digits(2, "the month must be two digits")?;
        if !(1..=12).contains(&month) {
            return Err("the month must be 01 to 12");
        }
        c.expect(b'-', "expected '-' after the month")?;
        let day = c.digits(2, "the day must be two digits")?;
        if day < 1 || day > days_in_month(year, month) {
            return Err("the day does not exist in that month");
        }
        c.expect(b'T', "expected 'T' between date and time")?;
        let hour = c.digits(2, "the hour must be two digits")?;
        c.expect(b':', "expected ':' after the hour")?;
        let minute = c.digits(2, "the minutes must be two digits")?;
        c.expect(b':', "expected ':' after the minutes")?;
        let second = c.digits(2, "the seconds must be two digits")?;
        let mut nanos: u32 = 0;
        let mut fraction_zero = true;
        if c.peek() == Some(b'.') {
            c.pos += 1;
            let frac = c.digit_run();
            if frac.is_empty() {
                return Err("a '.' must be followed by digits");
            }
            if utc_only && frac.len() > 9 {
                return Err("the fraction must have at most nine digits");
            }
            fraction_zero = frac.iter().all(|d| *d == b'0');
            for i in 0..9 {
                nanos = nanos * 10 + frac.get(i).map_or(0, |d| u32::from(d - b'0'));
            }
        }
        if hour == 24 && !utc_only {
            if minute != 0 || second != 0 || !fraction_zero {
                return Err("24:00:00 is the only time allowed with hour 24");
            }
        } else if hour > 23 {
            return Err("the hour must be 00 to 23");
        }
        if minute > 59 {
            return Err("the minutes must be 00 to 59");
        }
        if second > 59 {
            return Err("the seconds must be 00 to 59 (no leap seconds)");
        }
        let offset_seconds = match c.peek() {
            Some(b'Z') => {
                c.pos += 1;
                0
            }
            Some(b'+' | b'-') if utc_only => return Err("the time zone must be Z"),
            Some(sign @ (b'+' | b'-')) => {
                c.pos += 1;
                let oh = c.digits(2, "the zone hours must be two digits")?;
                c.expect(b':', "expected ':' in the time zone")?;
                let om = c.digits(2, "the zone minutes must be two digits")?;
                if om > 59 || oh > 14 || (oh == 14 && om != 0) {
                    return Err("the time zone offset must be within ±14:00");
                }
                let off = oh * 3600 + om * 60;
                if sign == b'-' { -off } else { off }
            }
            None => return Err("a time zone (Z or ±hh:mm) is required"),
            Some(_) => return Err("expected a time zone (Z or ±hh:mm)"),
        };
        if c.pos != s.len() {
            return Err("unexpected characters after the time zone");
        }
        let days = days_from_civil(year, month, day);
        let unix_seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_seconds;
        Ok(DateTimeStamp { unix_seconds, nanos })
    }

    /// The instant `unix_seconds` after the epoch (formatted in UTC).
    pub fn from_unix(unix_seconds: i64) -> Self {
        DateTimeStamp { unix_seconds, nanos: 0 }
    }

    /// Seconds since 1970-01-01T00:00:00Z (rounded down).
    pub fn unix_seconds(&self) -> i64 {
        self.unix_seconds
    }

    /// The sub-second part, in nanoseconds.
    pub fn nanos(&self) -> u32 {
        self.nanos
    }

    /// Milliseconds since 1970-01-01T00:00:00Z (sub-millisecond digits truncated), saturating
    /// at the ends of `i64`.
    pub fn unix_millis(&self) -> i64 {
        self.unix_seconds.saturating_mul(1000).saturating_add(i64::from(self.nanos / 1_000_000))
    }
}

/// Formats as `YYYY-MM-DDThh:mm:ss[.fffffffff]Z` in UTC (fraction without trailing zeros).
impl fmt::Display for DateTimeStamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.unix_seconds.div_euclid(86_400);
        let secs = self.unix_seconds.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        if year < 0 {
            write!(f, "-{:04}", -year)?;
        } else {
            write!(f, "{year:04}")?;
        }
        write!(
            f,
            "-{month:02}-{day:02}T{:02}:{:02}:{:02}",
            secs / 3600,
            secs % 3600 / 60,
            secs % 60
        )?;
        if self.nanos != 0 {
            let frac = format!("{:09}", self.nanos);
            write!(f, ".{}", frac.trim_end_matches('0'))?;
        }
        f.write_str("Z")
    }
}

/// Parse the `dateTimeStamp` in `property`, as a [`CoreError::VcMalformedValue`] on failure.
pub fn parse_datetime_property(property: &str, value: &Value) -> Result<DateTimeStamp, CoreError> {
    let s = value.as_str().ok_or_else(|| malformed(property, "must be a dateTimeStamp string"))?;
    DateTimeStamp::parse(s)
        .map_err(|why| malformed(property, format!("{s:?} is not a dateTimeStamp: {why}")))
}

// ------------------------------------------------------------------------------------------
// Shared value checks
// ------------------------------------------------------------------------------------------

/// Whether `s` is an absolute URL (RFC 3986 `scheme ":" rest`, such as `https://…`, `did:…`
/// or `urn:uuid:…`) with no whitespace, controls or characters that URLs never contain.
pub fn is_url(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once(':') else {
        return false;
    };
    let mut sc = scheme.chars();
    let scheme_ok = sc.next().is_some_and(|c| c.is_ascii_alphabetic())
        && sc.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    scheme_ok
        && !rest.is_empty()
        && !s.chars().any(|c| {
            c.is_whitespace()
                || c.is_control()
                || matches!(c, '<' | '>' | '"' | '{' | '}' | '|' | '\\' | '^' | '`')
        })
}

fn check_url_value(property: &str, v: &Value) -> Result<String, CoreError> {
    match v {
        Value::String(s) if is_url(s) => Ok(s.clone()),
        Value::String(s) => Err(malformed(property, format!("{s:?} is not a URL"))),
        _ => Err(malformed(property, "must be a URL string")),
    }
}

/// `obj[key]` as one or more objects (`None` if absent).
fn objects<'a>(
    property: &str,
    v: Option<&'a Value>,
) -> Result<Option<Vec<&'a Map<String, Value>>>, CoreError> {
    match v {
        None => Ok(None),
        Some(Value::Object(o)) => Ok(Some(vec![o])),
        Some(Value::Array(items)) => {
            if items.is_empty() {
                return Err(malformed(property, "must not be an empty array"));
            }
            items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    item.as_object()
                        .ok_or_else(|| malformed(format!("{property}[{i}]"), "must be an object"))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some)
        }
        Some(_) => Err(malformed(property, "must be an object or an array of objects")),
    }
}

fn item_path(property: &str, i: usize, n: usize) -> String {
    if n == 1 { property.to_owned() } else { format!("{property}[{i}]") }
}

/// The `type` values: a non-empty string or a non-empty array of non-empty strings.
pub fn types_of(property: &str, v: Option<&Value>) -> Result<Vec<String>, CoreError> {
    let bad = || malformed(property, "must be a string or a non-empty array of strings");
    match v {
        None => Err(malformed(property, "is missing")),
        Some(Value::String(s)) if !s.is_empty() => Ok(vec![s.clone()]),
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .map(|t| match t {
                Value::String(s) if !s.is_empty() => Ok(s.clone()),
                _ => Err(bad()),
            })
            .collect(),
        Some(_) => Err(bad()),
    }
}

fn check_context(obj: &Map<String, Value>) -> Result<Vec<Value>, CoreError> {
    const P: &str = "@context";
    let first_wrong = || malformed(P, format!("the first entry must be {VC_V2_CONTEXT:?}"));
    match obj.get(P) {
        None => Err(malformed(P, "is missing")),
        Some(Value::String(s)) if s == VC_V2_CONTEXT => Ok(vec![Value::String(s.clone())]),
        Some(Value::String(_)) => Err(first_wrong()),
        Some(Value::Array(items)) => {
            match items.first() {
                Some(Value::String(s)) if s == VC_V2_CONTEXT => {}
                _ => return Err(first_wrong()),
            }
            for (i, item) in items.iter().enumerate().skip(1) {
                match item {
                    Value::String(s) if is_url(s) => {}
                    Value::Object(_) => {}
                    _ => {
                        return Err(malformed(
                            format!("{P}[{i}]"),
                            "must be a URL or a context object",
                        ));
                    }
                }
            }
            Ok(items.clone())
        }
        Some(_) => Err(malformed(P, "must be an ordered set (array) of URLs and objects")),
    }
}

fn check_optional_id(obj: &Map<String, Value>, prefix: &str) -> Result<Option<String>, CoreError> {
    obj.get("id").map(|v| check_url_value(&format!("{prefix}id"), v)).transpose()
}

/// A URL, or an object whose `id` is a URL (for `issuer` and `holder`).
fn check_party(property: &str, v: &Value) -> Result<String, CoreError> {
    match v {
        Value::String(_) => check_url_value(property, v),
        Value::Object(o) => match o.get("id") {
            Some(id) => check_url_value(&format!("{property}.id"), id),
            None => Err(malformed(format!("{property}.id"), "is missing")),
        },
        _ => Err(malformed(property, "must be a URL or an object with an id")),
    }
}

/// `name` / `description`: a string, a language value object, or an array of those.
fn check_language_value(property: &str, v: &Value) -> Result<(), CoreError> {
    let one = |p: &str, v: &Value| -> Result<(), CoreError> {
        match v {
            Value::String(_) => Ok(()),
            Value::Object(o) => {
                if !o.get("@value").is_some_and(Value::is_string) {
                    return Err(malformed(p, "a language value object needs a string @value"));
                }
                for key in ["@language", "@direction"] {
                    if o.get(key).is_some_and(|x| !x.is_string()) {
                        return Err(malformed(format!("{p}.{key}"), "must be a string"));
                    }
                }
                Ok(())
            }
            _ => Err(malformed(p, "must be a string or a language value object")),
        }
    };
    match v {
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                one(&format!("{property}[{i}]"), item)?;
            }
            Ok(())
        }
        other => one(property, other),
    }
}

/// Objects with a required `type` and an optional (or required) URL `id`.
fn check_typed_objects(
    obj: &Map<String, Value>,
    property: &str,
    id_required: bool,
) -> Result<(), CoreError> {
    let Some(items) = objects(property, obj.get(property))? else {
        return Ok(());
    };
    let n = items.len();
    for (i, item) in items.into_iter().enumerate() {
        let p = item_path(property, i, n);
        types_of(&format!("{p}.type"), item.get("type"))?;
        match item.get("id") {
            Some(id) => {
                check_url_value(&format!("{p}.id"), id)?;
            }
            None if id_required => return Err(malformed(format!("{p}.id"), "is missing")),
            None => {}
        }
    }
    Ok(())
}

fn check_common(obj: &Map<String, Value>) -> Result<(), CoreError> {
    for key in ["name", "description"] {
        if let Some(v) = obj.get(key) {
            check_language_value(key, v)?;
        }
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------
// Credentials
// ------------------------------------------------------------------------------------------

/// What a verifier learns from a credential that passed the structural rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialInfo {
    /// The credential's `id`, if any.
    pub id: Option<String>,
    /// Its `type` values (including `VerifiableCredential`).
    pub types: Vec<String>,
    /// The issuer's URL (the `issuer` string, or the `id` of the `issuer` object).
    pub issuer: String,
    /// The subjects' `id`s, for the subjects that have one.
    pub subject_ids: Vec<String>,
    /// `validFrom`, if present.
    pub valid_from: Option<DateTimeStamp>,
    /// `validUntil`, if present.
    pub valid_until: Option<DateTimeStamp>,
}

/// Check the VC 2.0 structural rules of a credential (not its proof, not the time).
///
/// Fails with [`CoreError::VcParsing`] when `vc` is not an object, with
/// [`CoreError::VcMalformedValue`] naming the property for a broken rule, and with
/// [`CoreError::VcRange`] when `validFrom` is after `validUntil`.
pub fn check_credential(vc: &Value) -> Result<CredentialInfo, CoreError> {
    let obj = vc.as_object().ok_or_else(|| {
        CoreError::VcParsing("a verifiable credential must be a JSON object".into())
    })?;
    check_context(obj)?;
    let id = check_optional_id(obj, "")?;
    let types = types_of("type", obj.get("type"))?;
    if !types.iter().any(|t| t == VERIFIABLE_CREDENTIAL) {
        return Err(malformed("type", format!("must include {VERIFIABLE_CREDENTIAL:?}")));
    }
    let issuer = match obj.get("issuer") {
        Some(v) => check_party("issuer", v)?,
        None => return Err(malformed("issuer", "is missing")),
    };
    let subjects = objects("credentialSubject", obj.get("credentialSubject"))?
        .ok_or_else(|| malformed("credentialSubject", "is missing"))?;
    let n = subjects.len();
    let mut subject_ids = Vec::new();
    for (i, subject) in subjects.into_iter().enumerate() {
        let p = item_path("credentialSubject", i, n);
        if subject.is_empty() {
            return Err(malformed(p, "must make at least one claim"));
        }
        if let Some(sid) = check_optional_id(subject, &format!("{p}."))? {
            subject_ids.push(sid);
        }
    }
    let valid_from =
        obj.get("validFrom").map(|v| parse_datetime_property("validFrom", v)).transpose()?;
    let valid_until =
        obj.get("validUntil").map(|v| parse_datetime_property("validUntil", v)).transpose()?;
    if let (Some(from), Some(until)) = (valid_from, valid_until)
        && from > until
    {
        return Err(range("validFrom", format!("{from} is after validUntil {until}")));
    }
    check_typed_objects(obj, "credentialStatus", false)?;
    check_typed_objects(obj, "credentialSchema", true)?;
    check_typed_objects(obj, "termsOfUse", false)?;
    check_typed_objects(obj, "evidence", false)?;
    check_typed_objects(obj, "refreshService", false)?;
    check_common(obj)?;
    Ok(CredentialInfo { id, types, issuer, subject_ids, valid_from, valid_until })
}

/// Check that `now` (Unix seconds) lies in the credential's validity period, bounds included.
pub fn check_validity_period(info: &CredentialInfo, now: i64) -> Result<(), CoreError> {
    let now = DateTimeStamp::from_unix(now);
    if let Some(from) = info.valid_from
        && now < from
    {
        return Err(range("validFrom", format!("the credential is not valid before {from}")));
    }
    if let Some(until) = info.valid_until
        && now > until
    {
        return Err(range("validUntil", format!("the credential expired at {until}")));
    }
    Ok(())
}

/// [`check_credential`] and [`check_validity_period`] at `now` (Unix seconds).
pub fn verify_credential(vc: &Value, now: i64) -> Result<CredentialInfo, CoreError> {
    let info = check_credential(vc)?;
    check_validity_period(&info, now)?;
    Ok(info)
}

// ------------------------------------------------------------------------------------------
// Presentations
// ------------------------------------------------------------------------------------------

/// What a verifier learns from a presentation that passed the structural rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PresentationInfo {
    /// The presentation's `id`, if any.
    pub id: Option<String>,
    /// Its `type` values (including `VerifiablePresentation`).
    pub types: Vec<String>,
    /// The holder's URL, if any.
    pub holder: Option<String>,
    /// The embedded credentials, in order (enveloped credentials are not in this list).
    pub credentials: Vec<CredentialInfo>,
    /// How many `EnvelopedVerifiableCredential`s it carries (their content is opaque here).
    pub enveloped_credentials: usize,
}

/// Check the VC 2.0 structural rules of a presentation and of every credential it embeds.
///
/// Errors about an embedded credential name its path, such as
/// `verifiableCredential[1].issuer`.
pub fn check_presentation(vp: &Value) -> Result<PresentationInfo, CoreError> {
    let obj = vp.as_object().ok_or_else(|| {
        CoreError::VcParsing("a verifiable presentation must be a JSON object".into())
    })?;
    check_context(obj)?;
    let id = check_optional_id(obj, "")?;
    let types = types_of("type", obj.get("type"))?;
    if !types.iter().any(|t| t == VERIFIABLE_PRESENTATION) {
        return Err(malformed("type", format!("must include {VERIFIABLE_PRESENTATION:?}")));
    }
    let holder = obj.get("holder").map(|h| check_party("holder", h)).transpose()?;
    let mut credentials = Vec::new();
    let mut enveloped_credentials = 0;
    if let Some(vcs) = objects("verifiableCredential", obj.get("verifiableCredential"))? {
        for (i, vc) in vcs.into_iter().enumerate() {
            let prefix = format!("verifiableCredential[{i}].");
            let vc_types = types_of(&format!("{prefix}type"), vc.get("type"))?;
            if vc_types.iter().any(|t| t == ENVELOPED_VERIFIABLE_CREDENTIAL) {
                match vc.get("id") {
                    Some(Value::String(s)) if s.starts_with("data:") => {}
                    _ => {
                        return Err(malformed(
                            format!("{prefix}id"),
                            "an enveloped credential's id must be a data: URL",
                        ));
                    }
                }
                enveloped_credentials += 1;
            } else {
                let v = Value::Object(vc.clone());
                credentials.push(check_credential(&v).map_err(|e| prefixed(&prefix, e))?);
            }
        }
    }
    check_typed_objects(obj, "termsOfUse", false)?;
    check_common(obj)?;
    Ok(PresentationInfo { id, types, holder, credentials, enveloped_credentials })
}

/// [`check_presentation`], then the validity period of every embedded credential at `now`.
pub fn verify_presentation(vp: &Value, now: i64) -> Result<PresentationInfo, CoreError> {
    let info = check_presentation(vp)?;
    for (i, c) in info.credentials.iter().enumerate() {
        check_validity_period(c, now)
            .map_err(|e| prefixed(&format!("verifiableCredential[{i}]."), e))?;
    }
    Ok(info)
}

mod builder;
pub use builder::*;
