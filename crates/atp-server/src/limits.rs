//! [`Limits`]: every request and cache limit the server enforces, in one declaration.
//!
//! Each limit is written once, in the [`limits!`] table below: its field, its kind (a count, a
//! size in bytes or a duration), its default, its allowed range and its documentation. From that
//! one entry come the struct field, the default, the range check, and the [`LimitSpec`] the node
//! turns into a flag (`--<key with dashes>`), an environment variable (`ATP_<KEY>`) and a key of
//! the configuration file's `[limits]` table. Adding a limit is one entry here plus its line in
//! docs/operations.md (a tidy test checks that every key is documented there).

use std::fmt::Write as _;
use std::time::Duration;

/// How a limit's value is written and shown: a whole number, a size or a duration.
pub trait LimitKind {
    /// The Rust type of the value.
    type Value: Copy + PartialOrd;
    /// The placeholder in usage text (`N`, `SIZE`, `DURATION`).
    const VALUE_NAME: &'static str;
    /// Whether the configuration file may write the value as a string (`"4MiB"`, `"10s"`), and
    /// not only as an integer.
    const TEXT: bool;
    /// Parses a flag, variable or file value.
    fn parse(text: &str) -> Result<Self::Value, String>;
    /// Writes a value the way [`LimitKind::parse`] reads it.
    fn show(value: Self::Value) -> String;
}

/// A count: a whole number of entries, requests or peers.
#[derive(Debug)]
pub struct Count<T>(std::marker::PhantomData<T>);

macro_rules! count_kind {
    ($($t:ty),+) => {$(
        impl LimitKind for Count<$t> {
            type Value = $t;
            const VALUE_NAME: &'static str = "N";
            const TEXT: bool = false;
            fn parse(text: &str) -> Result<$t, String> {
                text.trim().parse().map_err(|_| format!("{text:?} is not a whole number in range"))
            }
            fn show(value: $t) -> String {
                value.to_string()
            }
        }
    )+};
}
count_kind!(u32, usize);

/// A size in bytes: an integer, or a string with `B`, `KiB`, `MiB` or `GiB`.
#[derive(Debug)]
pub struct Bytes;

impl LimitKind for Bytes {
    type Value = usize;
    const VALUE_NAME: &'static str = "SIZE";
    const TEXT: bool = true;
    fn parse(text: &str) -> Result<usize, String> {
        parse_size(text)
    }
    fn show(value: usize) -> String {
        for (unit, shift) in [("GiB", 30), ("MiB", 20), ("KiB", 10)] {
            if value != 0 && value.trailing_zeros() >= shift {
                return format!("{}{unit}", value >> shift);
            }
        }
        value.to_string()
    }
}

/// A duration: a whole number with a unit (`500ms`, `10s`, `5m`, `1h`).
#[derive(Debug)]
pub struct Time;

impl LimitKind for Time {
    type Value = Duration;
    const VALUE_NAME: &'static str = "DURATION";
    const TEXT: bool = true;
    fn parse(text: &str) -> Result<Duration, String> {
        parse_duration(text)
    }
    fn show(value: Duration) -> String {
        let ms = value.as_millis();
        for (unit, per) in [("h", 3_600_000), ("m", 60_000), ("s", 1000)] {
            if ms != 0 && ms.is_multiple_of(per) {
                return format!("{}{unit}", ms / per);
            }
        }
        format!("{ms}ms")
    }
}

/// What the node needs to offer one limit as a flag, a variable and a file key.
#[derive(Clone, Copy, Debug)]
pub struct LimitSpec {
    /// The key in the file's `[limits]` table; the flag is `--` and the key with dashes, the
    /// variable `ATP_` and the key in capitals.
    pub key: &'static str,
    /// The documentation, one line per doc-comment line.
    pub doc: &'static str,
    /// The placeholder in usage text.
    pub value_name: &'static str,
    /// Whether the file may write the value as a string.
    pub text: bool,
    /// Parses a value without keeping it (flags and variables are checked as they are read).
    pub check: fn(&str) -> Result<(), String>,
    /// The default, written as it would be given.
    pub default: fn() -> String,
    /// The smallest and the largest value allowed, written as they would be given.
    pub range: fn() -> (String, String),
}

impl LimitSpec {
    /// The command-line flag, without the leading dashes.
    pub fn flag(&self) -> String {
        self.key.replace('_', "-")
    }

    /// The environment variable.
    pub fn env(&self) -> String {
        format!("ATP_{}", self.key.to_ascii_uppercase())
    }
}

/// A limit that is out of its range, or inconsistent with another one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimitError {
    /// The key of the offending limit ([`LimitSpec::key`]).
    pub key: &'static str,
    /// Why, in words, with the allowed range.
    pub reason: String,
}

fn out_of_range<K: LimitKind>(
    key: &'static str,
    value: K::Value,
    low: K::Value,
    high: K::Value,
) -> Result<(), LimitError> {
    if low <= value && value <= high {
        return Ok(());
    }
    let mut reason = format!("{} is out of range: it must be ", K::show(value));
    let _ = write!(reason, "between {} and {}", K::show(low), K::show(high));
    Err(LimitError { key, reason })
}

macro_rules! limits {
    ($(
        $(#[doc = $doc:literal])+
        $field:ident: $kind:ty = $default:expr, key $key:literal, range $low:expr, $high:expr;
    )+) => {
        /// Request and cache limits: what the node enforces on every call and holds in memory.
        /// Each field documents its flag, variable and file key (see [`LimitSpec`]).
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub struct Limits {
            $(
                $(#[doc = $doc])+
                #[doc = concat!("\n\nFlag, variable and file key: `", $key, "`.")]
                pub $field: <$kind as LimitKind>::Value,
            )+
        }

        impl Default for Limits {
            fn default() -> Self {
                Limits { $($field: $default,)+ }
            }
        }

        impl Limits {
            /// Every limit, in declaration order.
            pub const SPECS: &'static [LimitSpec] = &[$(
                LimitSpec {
                    key: $key,
                    doc: concat!($($doc, "\n"),+),
                    value_name: <$kind as LimitKind>::VALUE_NAME,
                    text: <$kind as LimitKind>::TEXT,
                    check: |text| <$kind as LimitKind>::parse(text).map(|_| ()),
                    default: || <$kind as LimitKind>::show($default),
                    range: || (<$kind as LimitKind>::show($low), <$kind as LimitKind>::show($high)),
                },
            )+];

            /// Sets the limit named `key` from its written form. `Err` names what is wrong;
            /// an unknown key is an error too.
            pub fn set(&mut self, key: &str, text: &str) -> Result<(), String> {
                match key {
                    $($key => self.$field = <$kind as LimitKind>::parse(text)?,)+
                    _ => return Err(format!("unknown limit `{key}`")),
                }
                Ok(())
            }

            fn check_ranges(&self) -> Result<(), LimitError> {
                $(out_of_range::<$kind>($key, self.$field, $low, $high)?;)+
                Ok(())
            }
        }
    };
}

const MIB: usize = 1024 * 1024;
const HOUR: Duration = Duration::from_secs(3600);

limits! {
    /// Largest gRPC message (request or response), in bytes. At least 64 KiB, because a key
    /// event alone may be that large.
    max_message_bytes: Bytes = 4 * MIB, key "max_message_size", range 64 * 1024, 256 * MIB;
    /// Largest page a list call may ask for; larger requests are clamped.
    max_page_size: Count<u32> = 1000, key "max_page_size", range 1, 100_000;
    /// Page size of a list call that asks for none (at most the largest page).
    default_page_size: Count<u32> = 100, key "default_page_size", range 1, 100_000;
    /// Deadline of every request.
    request_timeout: Time = Duration::from_secs(10), key "request_timeout",
        range Duration::from_millis(1), HOUR;
    /// Requests per second allowed per peer (client IP address); beyond it the node answers
    /// `RESOURCE_EXHAUSTED` (HTTP 429). `0` turns the limit off.
    rate_limit_per_second: Count<u32> = 500, key "rate_limit", range 0, 10_000_000;
    /// Requests a peer may send at once above its rate (at least 1 while the rate limit is on).
    rate_limit_burst: Count<u32> = 1000, key "rate_limit_burst", range 0, 10_000_000;
    /// The most peers (client IP addresses) the rate limiter tracks at once. A new peer beyond
    /// it makes the limiter forget the peers whose bucket has refilled, else the least recently
    /// seen one (which starts again with a full burst). That pass scans every tracked peer under
    /// the limiter's lock, hence the upper bound.
    rate_limit_max_peers: Count<usize> = 10_000, key "rate_limit_max_peers", range 1, 1_000_000;
    /// Capacity of the envelope replay cache, in entries (about 110 bytes each). At least 1:
    /// without a replay cache every envelope could be replayed.
    replay_cache_capacity: Count<usize> = 100_000, key "replay_cache_capacity",
        range 1, 100_000_000;
    /// Capacity of the cache of verified key event logs (resolution and verification), in
    /// entries.
    resolution_cache_capacity: Count<usize> = 10_000, key "resolution_cache_capacity",
        range 1, 10_000_000;
    /// Clock skew tolerated on envelope times, signed updates and tokens.
    envelope_max_skew: Time = Duration::from_secs(60), key "envelope_max_skew",
        range Duration::ZERO, HOUR;
    /// Longest validity window an envelope may claim.
    envelope_max_lifetime: Time = Duration::from_secs(300), key "envelope_max_lifetime",
        range Duration::from_millis(1), 24 * HOUR;
}

/// Internal limits that no configuration changes.
impl Limits {
    /// The lifetime of issued session tokens, in milliseconds (one hour).
    pub const SESSION_TOKEN_LIFETIME_MS: i64 = 3_600_000;

    /// Checks every range, then the limits that depend on each other.
    pub fn validate(&self) -> Result<(), LimitError> {
        self.check_ranges()?;
        if self.default_page_size > self.max_page_size {
            return Err(LimitError {
                key: "default_page_size",
                reason: format!(
                    "{} is out of range: it must be between 1 and the maximum page size ({})",
                    self.default_page_size, self.max_page_size
                ),
            });
        }
        if self.rate_limit_per_second > 0 && self.rate_limit_burst == 0 {
            return Err(LimitError {
                key: "rate_limit_burst",
                reason: "must be at least 1 while the rate limit is on (set the rate limit to 0 \
                         to turn it off)"
                    .into(),
            });
        }
        Ok(())
    }

    /// The effective page size for a requested one (0: default; clamped to the maximum).
    pub fn page_size(&self, requested: u32) -> u32 {
        match requested {
            0 => self.default_page_size.min(self.max_page_size),
            n => n.min(self.max_page_size),
        }
    }

    /// [`Limits::envelope_max_skew`] in milliseconds, as the protocol's checks take it.
    pub fn clock_skew_ms(&self) -> i64 {
        i64::try_from(self.envelope_max_skew.as_millis()).unwrap_or(i64::MAX)
    }

    /// [`Limits::envelope_max_lifetime`] in milliseconds.
    pub fn max_envelope_lifetime_ms(&self) -> i64 {
        i64::try_from(self.envelope_max_lifetime.as_millis()).unwrap_or(i64::MAX)
    }
}

/// Parse a duration with a unit: `500ms`, `10s`, `5m`, `1h`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    if digits.is_empty() {
        return Err(format!("{s:?} is not a duration: write a whole number and a unit, e.g. 10s"));
    }
    let n: u64 = digits.parse().map_err(|_| format!("{s:?} is too large"))?;
    let secs = |mul: u64| {
        n.checked_mul(mul).map(Duration::from_secs).ok_or_else(|| format!("{s:?} is too large"))
    };
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => secs(1),
        "m" => secs(60),
        "h" => secs(3600),
        "" => Err(format!("{s:?} has no unit: write e.g. {n}s (units: ms, s, m, h)")),
        other => Err(format!("{s:?} has an unknown unit {other:?} (units: ms, s, m, h)")),
    }
}

/// Parse a size: a number of bytes, optionally with `B`, `KiB`, `MiB` or `GiB`.
pub fn parse_size(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    if digits.is_empty() {
        return Err(format!("{s:?} is not a size: write a number of bytes, or e.g. 4MiB"));
    }
    let n: usize = digits.parse().map_err(|_| format!("{s:?} is too large"))?;
    let mul: usize = match unit.trim_start() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        other => {
            return Err(format!("{s:?} has an unknown unit {other:?} (units: B, KiB, MiB, GiB)"));
        }
    };
    n.checked_mul(mul).ok_or_else(|| format!("{s:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_is_in_range_and_reads_back() {
        let defaults = Limits::default();
        defaults.validate().expect("the defaults are valid");
        for spec in Limits::SPECS {
            let mut read = Limits::default();
            read.set(spec.key, &(spec.default)()).expect(spec.key);
            assert_eq!(read, defaults, "{}", spec.key);
        }
    }

    #[test]
    fn set_reads_each_kind_and_refuses_unknown_keys() {
        let mut l = Limits::default();
        l.set("max_message_size", "1MiB").expect("size");
        assert_eq!(l.max_message_bytes, MIB);
        l.set("request_timeout", "250ms").expect("duration");
        assert_eq!(l.request_timeout, Duration::from_millis(250));
        l.set("rate_limit", "7").expect("count");
        assert_eq!(l.rate_limit_per_second, 7);
        assert!(l.set("rate_limit", "-1").is_err());
        assert!(l.set("request_timeout", "10").expect_err("no unit").contains("no unit"));
        assert!(l.set("max_pagesize", "5").expect_err("unknown").contains("unknown limit"));
    }

    #[test]
    fn ranges_and_dependencies_are_checked() {
        let bad = |f: fn(&mut Limits)| {
            let mut l = Limits::default();
            f(&mut l);
            l.validate().expect_err("out of range").key
        };
        assert_eq!(bad(|l| l.max_message_bytes = 1024), "max_message_size");
        assert_eq!(bad(|l| l.replay_cache_capacity = 0), "replay_cache_capacity");
        assert_eq!(bad(|l| l.envelope_max_skew = 2 * HOUR), "envelope_max_skew");
        assert_eq!(bad(|l| l.default_page_size = 2000), "default_page_size");
        assert_eq!(bad(|l| l.rate_limit_burst = 0), "rate_limit_burst");
        let mut off = Limits { rate_limit_per_second: 0, rate_limit_burst: 0, ..Limits::default() };
        off.validate().expect("a burst of 0 is fine with the limit off");
        off.max_page_size = 0;
        assert_eq!(off.validate().expect_err("zero page").key, "max_page_size");
    }

    #[test]
    fn shown_values_are_the_shortest_exact_unit() {
        assert_eq!(Bytes::show(4 * MIB), "4MiB");
        assert_eq!(Bytes::show(65_537), "65537");
        assert_eq!(Time::show(Duration::from_secs(300)), "5m");
        assert_eq!(Time::show(Duration::from_millis(1500)), "1500ms");
        assert_eq!(Time::show(Duration::ZERO), "0ms");
    }
}
