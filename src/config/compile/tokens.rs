//! Rules for a tenant's `tokens:`: how long a personal access token may live, and how many requests
//! one bearer token may make. Both are written as text (`30d`, `600/min`, `off`), so a typo is an error
//! naming the key, never a silent default.

use std::time::Duration;

use super::values::{self, Bad};
use crate::config::diagnose::Cx;
use crate::config::model::{RateLimit, TokenSettings};
use crate::config::raw::{RawTokens, Val};

const LIFETIME_HINT: &str =
    "how long a personal token may live at most, e.g. `personal: 30d`, or `off`";
const RATE_HINT: &str =
    "requests per token and instance, e.g. `600/min`, `20/s`, `5000/h`, or `off`";

/// `tokens:`: the defaults when absent, `None` when broken (every problem reported).
pub(super) fn tokens(raw: Option<&Val<RawTokens>>, cx: &mut Cx<'_>) -> Option<TokenSettings> {
    let Some(val) = raw else {
        return Some(TokenSettings::default());
    };
    let raw = val.get()?;
    let personal = values::optional(cx, "personal", raw.personal.as_ref(), None, |text| {
        personal_lifetime(text)
    });
    let rate_limit = values::optional(
        cx,
        "rate_limit",
        raw.rate_limit.as_ref(),
        Some(TokenSettings::DEFAULT_RATE_LIMIT),
        rate_limit,
    );
    Some(TokenSettings {
        personal: personal?,
        rate_limit: rate_limit?,
    })
}

/// `personal:` a lifetime of at least a minute and at most [`TokenSettings::MAX_PERSONAL_LIFETIME`],
/// or `off`.
fn personal_lifetime(text: &str) -> Result<Option<Duration>, Bad> {
    if text.trim() == "off" {
        return Ok(None);
    }
    let lifetime = values::duration(text).map_err(|bad| Bad::new(bad.message, LIFETIME_HINT))?;
    if lifetime < Duration::from_secs(60) {
        return Err(Bad::new(
            "a personal token lives at least a minute",
            LIFETIME_HINT,
        ));
    }
    if lifetime > TokenSettings::MAX_PERSONAL_LIFETIME {
        return Err(Bad::new(
            format!(
                "`{text}` is longer than a personal token may live (366d): a token that never needs renewing is one nobody notices leaking"
            ),
            LIFETIME_HINT,
        ));
    }
    Ok(Some(lifetime))
}

/// `rate_limit:` `<count>/<s|sec|min|m|h>` with a count of at least one, or `off`.
fn rate_limit(text: &str) -> Result<Option<RateLimit>, Bad> {
    let text = text.trim();
    if text == "off" {
        return Ok(None);
    }
    let bad = || Bad::new(format!("`{text}` is not a rate"), RATE_HINT);
    let (count, unit) = text.split_once('/').ok_or_else(bad)?;
    let requests: u32 = count.trim().parse().map_err(|_| bad())?;
    if requests == 0 {
        return Err(Bad::new(
            "a rate of zero would refuse every request; say `off` for no limit",
            RATE_HINT,
        ));
    }
    let per = match unit.trim() {
        "s" | "sec" | "second" => Duration::from_secs(1),
        "m" | "min" | "minute" => Duration::from_secs(60),
        "h" | "hour" => Duration::from_secs(3600),
        _ => return Err(bad()),
    };
    Ok(Some(RateLimit { requests, per }))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{BASE, table};
    use super::*;
    use crate::config::MemorySource;

    #[test]
    fn token_rules() {
        let tenant = |extra: &str| format!("{BASE}{extra}");
        let cases = [
            (
                "personal tokens for a quarter, twenty a second",
                tenant("    tokens: { personal: 90d, rate_limit: 20/s }\n"),
            ),
            ("no limit", tenant("    tokens: { rate_limit: off }\n")),
            (
                "a lifetime too long and a rate of nothing",
                tenant("    tokens: { personal: 2y, rate_limit: 0/min }\n"),
            ),
            ("a misspelt key", tenant("    tokens: { personel: 30d }\n")),
        ];
        insta::assert_snapshot!(table(&MemorySource::default(), &cases));
    }

    #[test]
    fn rates_and_lifetimes_read_as_written() {
        assert_eq!(
            rate_limit("20/s").unwrap(),
            Some(RateLimit {
                requests: 20,
                per: Duration::from_secs(1)
            })
        );
        assert_eq!(rate_limit("off").unwrap(), None);
        for bad in ["0/min", "ten/min", "10/day", "10", ""] {
            assert!(rate_limit(bad).is_err(), "{bad}");
        }
        assert_eq!(
            personal_lifetime("30d").unwrap(),
            Some(Duration::from_secs(30 * 86_400))
        );
        assert_eq!(personal_lifetime("off").unwrap(), None);
        for bad in ["2y", "30s", "soon"] {
            assert!(personal_lifetime(bad).is_err(), "{bad}");
        }
    }
}
