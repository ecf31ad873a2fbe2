//! The languages portico speaks to people: which one a request gets, and portico's own texts in it.
//!
//! The language is chosen per request by [`Locale`] (an extractor): the user's pick in the profile menu
//! (the `portico_lang` cookie, set by `GET /shell/language`), else the browser's `Accept-Language`,
//! else English. The texts live in `web/shell/i18n/<locale>.json`, one file per language, nested by
//! area; the browser loads the same files (`web/shell/i18n.js`) for the shell and its views, and the
//! pages rendered here (sign-in, signed out, error pages, the shell page) read them through
//! [`Texts`]. A text missing in one language falls back to English, then to its key: never a blank.
//!
//! Labels written in config (`label: { en: …, de: … }`) are `config::Text`s, resolved with the same
//! [`Locale`]. This module must not know about config, tenants or access.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::LazyLock;

use axum::extract::FromRequestParts;
use axum::http::header::{ACCEPT_LANGUAGE, COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use serde_json::Value;

/// The cookie that keeps a user's pick of language (`GET /shell/language?set=de`). Not a secret, but
/// nothing in the browser needs to read it; starting `portico_`, it is never forwarded to an app.
pub(crate) const LANGUAGE_COOKIE: &str = "portico_lang";

/// A language portico has texts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub(crate) enum Locale {
    #[default]
    En,
    De,
}

impl Locale {
    /// Every language, English (the fallback) first.
    pub(crate) const ALL: [Locale; 2] = [Locale::En, Locale::De];

    /// The BCP 47 tag: `<html lang>`, the file name under `/shell/i18n/`, the key in config labels.
    pub(crate) fn tag(self) -> &'static str {
        match self {
            Locale::En => "en",
            Locale::De => "de",
        }
    }

    /// The language's own name, for the language menu.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Locale::En => "English",
            Locale::De => "Deutsch",
        }
    }

    /// The language a tag names (`de`, `de-CH`, `DE_at` → German), if portico speaks it.
    pub(crate) fn from_tag(tag: &str) -> Option<Locale> {
        let primary = tag.split(['-', '_']).next().unwrap_or("").trim();
        Locale::ALL
            .into_iter()
            .find(|locale| primary.eq_ignore_ascii_case(locale.tag()))
    }

    /// The language of a request: the `portico_lang` cookie, else the best of `Accept-Language`, else
    /// English.
    pub(crate) fn of(headers: &HeaderMap) -> Locale {
        picked(headers)
            .or_else(|| {
                headers
                    .get(ACCEPT_LANGUAGE)
                    .and_then(|value| value.to_str().ok())
                    .and_then(from_accept_language)
            })
            .unwrap_or_default()
    }

    /// This language's texts.
    pub(crate) fn texts(self) -> Texts {
        Texts(self)
    }
}

impl std::fmt::Display for Locale {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.tag())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Locale {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Locale::of(&parts.headers))
    }
}

/// The user's own pick, from the language cookie.
fn picked(headers: &HeaderMap) -> Option<Locale> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|line| line.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == LANGUAGE_COOKIE)
        .and_then(|(_, value)| Locale::from_tag(value))
}

/// The supported language the browser prefers most (RFC 9110 §12.5.4: highest `q` first, then order;
/// `q=0` means "not this one"). `*` counts as English.
fn from_accept_language(header: &str) -> Option<Locale> {
    let mut best: Option<(u16, Locale)> = None;
    for item in header.split(',') {
        let mut parts = item.split(';');
        let tag = parts.next().unwrap_or("").trim();
        let quality = parts
            .filter_map(|param| param.trim().strip_prefix("q="))
            .map(parse_quality)
            .next()
            .unwrap_or(Some(1000));
        let (Some(quality), false) = (quality, tag.is_empty()) else {
            continue;
        };
        let locale = if tag == "*" {
            Some(Locale::En)
        } else {
            Locale::from_tag(tag)
        };
        if let Some(locale) = locale
            && quality > 0
            && best.is_none_or(|(top, _)| quality > top)
        {
            best = Some((quality, locale));
        }
    }
    best.map(|(_, locale)| locale)
}

/// A `q` value in thousandths (`0.8` → 800); `None` when it is not one.
fn parse_quality(text: &str) -> Option<u16> {
    let value: f32 = text.trim().parse().ok()?;
    (0.0..=1.0)
        .contains(&value)
        .then(|| (value * 1000.0).round() as u16)
}

/// The text files, as the browser gets them too.
const SOURCES: [(Locale, &str); 2] = [
    (Locale::En, include_str!("../web/shell/i18n/en.json")),
    (Locale::De, include_str!("../web/shell/i18n/de.json")),
];

/// Every language's texts by dotted key (`page.error.backToPortal`), flattened once.
static TABLES: LazyLock<HashMap<Locale, HashMap<String, String>>> = LazyLock::new(|| {
    SOURCES
        .iter()
        .map(|(locale, source)| {
            let mut table = HashMap::new();
            // The files are compiled in and checked by the tests below; a broken one leaves only keys.
            if let Ok(value) = serde_json::from_str::<Value>(source) {
                flatten("", &value, &mut table);
            }
            (*locale, table)
        })
        .collect()
});

fn flatten(prefix: &str, value: &Value, into: &mut HashMap<String, String>) {
    match value {
        Value::Object(entries) => {
            for (key, value) in entries {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                flatten(&path, value, into);
            }
        }
        Value::String(text) => {
            into.insert(prefix.to_owned(), text.clone());
        }
        _ => {}
    }
}

/// portico's own texts in one language, for the pages rendered on the server (templates call
/// `t.get("page.error.backToPortal")` and `t.fill(…)`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Texts(Locale);

impl Texts {
    /// The language, for `<html lang>`.
    pub(crate) fn locale(&self) -> Locale {
        self.0
    }

    /// The text of `key`: this language's, else English's, else the key.
    pub(crate) fn get<'k>(&self, key: &'k str) -> &'k str {
        self.find(key).unwrap_or(key)
    }

    /// The text of `key` in this language, else in English; `None` when there is none.
    pub(crate) fn find(&self, key: &str) -> Option<&'static str> {
        let find = |locale: Locale| {
            TABLES
                .get(&locale)
                .and_then(|table| table.get(key))
                .map(String::as_str)
        };
        find(self.0).or_else(|| find(Locale::En))
    }

    /// The text of `key` with its `{name}` placeholders filled in from `values`.
    pub(crate) fn fill(&self, key: &str, values: &[(&str, &str)]) -> String {
        let mut text = self.get(key).to_owned();
        for (name, value) in values {
            text = text.replace(&format!("{{{name}}}"), value);
        }
        text
    }
}

/// A link that switches the page to another language (`GET /shell/language?set=de&return_to=…`),
/// for the pages rendered here; the shell offers the same in its profile menu.
#[derive(Debug, Clone)]
pub(crate) struct LanguageLink {
    pub tag: &'static str,
    pub name: &'static str,
    pub href: String,
    /// The page is in this language already (shown, not linked).
    pub current: bool,
}

impl LanguageLink {
    /// One link per language, each coming back to `return_to` (a path on this origin).
    pub(crate) fn all(current: Locale, return_to: &str) -> Vec<LanguageLink> {
        let back =
            percent_encoding::utf8_percent_encode(return_to, percent_encoding::NON_ALPHANUMERIC);
        Locale::ALL
            .into_iter()
            .map(|locale| LanguageLink {
                tag: locale.tag(),
                name: locale.name(),
                href: format!("/shell/language?set={}&return_to={back}", locale.tag()),
                current: locale == current,
            })
            .collect()
    }
}

/// `Set-Cookie` for the user's pick of language: a year, the whole origin.
pub(crate) fn language_cookie(locale: Locale, https: bool) -> HeaderValue {
    let secure = if https { "; Secure" } else { "" };
    let cookie = format!(
        "{LANGUAGE_COOKIE}={}; Path=/; Max-Age=31536000; HttpOnly; SameSite=Lax{secure}",
        locale.tag()
    );
    HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static(""))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    #[test]
    fn the_browsers_preferred_language_wins_by_quality_then_order() {
        let of = |accept: &str| Locale::of(&headers(&[("accept-language", accept)]));
        assert_eq!(of("de-DE,de;q=0.9,en;q=0.8"), Locale::De);
        assert_eq!(of("en-US,en;q=0.9,de;q=0.8"), Locale::En);
        assert_eq!(of("fr-FR, de;q=0.5, en;q=0.4"), Locale::De);
        assert_eq!(of("en;q=0.2, de-CH;q=0.7"), Locale::De);
        assert_eq!(of("de;q=0, en"), Locale::En);
        assert_eq!(of("fr, it"), Locale::En, "nothing spoken: English");
        assert_eq!(of("*"), Locale::En);
        assert_eq!(of("de;q=nonsense, en;q=0.1"), Locale::En);
        assert_eq!(of(""), Locale::En);
        assert_eq!(Locale::of(&HeaderMap::new()), Locale::En);
    }

    #[test]
    fn the_users_pick_beats_the_browser() {
        let picked = headers(&[
            ("accept-language", "en"),
            ("cookie", "portico_session=x; portico_lang=de"),
        ]);
        assert_eq!(Locale::of(&picked), Locale::De);
        let unknown = headers(&[("accept-language", "de"), ("cookie", "portico_lang=xx")]);
        assert_eq!(
            Locale::of(&unknown),
            Locale::De,
            "an unknown pick is ignored"
        );
    }

    #[test]
    fn a_missing_text_falls_back_to_english_then_to_its_key() {
        let de = Locale::De.texts();
        assert_eq!(de.get("page.error.backToPortal"), "Zurück zum Portal");
        assert_eq!(
            Locale::En.texts().get("page.error.backToPortal"),
            "Back to the portal"
        );
        assert_eq!(de.get("no.such.key"), "no.such.key");
        assert_eq!(
            de.fill("page.signIn.heading", &[("title", "Acme")]),
            "Bei Acme anmelden"
        );
    }

    fn placeholders(text: &str) -> BTreeSet<String> {
        text.split('{')
            .skip(1)
            .filter_map(|rest| rest.split_once('}'))
            .map(|(name, _)| name.to_owned())
            .collect()
    }

    /// Every language has every English text, with the same placeholders, and nothing English lacks:
    /// a translator who drops `{name}` or misspells a key finds out here, not from a user.
    #[test]
    fn every_language_has_every_text_with_the_same_placeholders() {
        for (_, source) in SOURCES {
            serde_json::from_str::<Value>(source).expect("a text file is JSON");
        }
        let english = &TABLES[&Locale::En];
        assert!(english.len() > 50, "English has the texts");
        for locale in Locale::ALL {
            let table = &TABLES[&locale];
            let missing: Vec<_> = english.keys().filter(|k| !table.contains_key(*k)).collect();
            let extra: Vec<_> = table.keys().filter(|k| !english.contains_key(*k)).collect();
            assert!(missing.is_empty(), "{locale} lacks {missing:?}");
            assert!(
                extra.is_empty(),
                "{locale} has keys English lacks: {extra:?}"
            );
            for (key, text) in table {
                assert_eq!(
                    placeholders(text),
                    placeholders(&english[key]),
                    "{locale}: `{key}` has other placeholders than English"
                );
                assert!(!text.trim().is_empty(), "{locale}: `{key}` is blank");
            }
        }
    }
}
