//! The "Access tokens" page, `GET /shell/tokens`: where a signed-in user mints, lists and revokes their
//! personal access tokens (`auth::personal`). The shell's profile menu links it when the tenant has
//! `tokens.personal` on.
//!
//! The page is rendered here in the tenant's branding and the request's language, with the session's
//! CSRF token in a `<meta>`; `web/shell/tokens.js` does the rest through the JSON API at
//! `/auth/tokens`. It is a page of its own, not a view in the shell's frame: a new token is shown once,
//! and a top-level page that keeps nothing (`no-store`, cleared when left) is where it is least likely
//! to linger. This module must not mint, list or revoke tokens itself, and the page it renders never
//! holds a token's secret: only the API's answer to the page's own request does, in the browser.

use askama::Template;
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};

use crate::auth::SignedIn;
use crate::auth::personal::PersonalError;
use crate::http::{AppError, RequestContext};
use crate::i18n::{LanguageLink, Locale, Texts};

/// Where the page lives (the profile menu's entry links it).
pub(crate) const PATH: &str = "/shell/tokens";

/// The page's policy: its own script and stylesheet, requests to this origin only (the API), and the
/// logo from wherever branding names it. No inline script or style, no frame may hold it, and no form
/// is ever sent natively: the script sends the JSON itself.
const TOKENS_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

#[derive(Template)]
#[template(path = "tokens.html")]
struct TokensView<'a> {
    t: Texts,
    title: &'a str,
    logo: String,
    favicon: String,
    languages: Vec<LanguageLink>,
    csrf_token: &'a str,
}

/// `GET /shell/tokens`: the page, for a signed-in user of a tenant with personal tokens (a user who
/// is not signed in is sent to sign in and comes back here; a tenant without them answers 404).
pub(super) async fn page_get(
    context: RequestContext,
    signed_in: SignedIn,
    locale: Locale,
) -> Result<Response, AppError> {
    let tenant = &context.tenant;
    tenant.tokens.personal.ok_or(PersonalError::Disabled)?;
    let branding = &tenant.branding;
    let logo = branding.logo_href();
    let view = TokensView {
        t: locale.texts(),
        title: &branding.title,
        favicon: branding.page_favicon(),
        languages: LanguageLink::all(locale, PATH),
        csrf_token: &signed_in.session.csrf_token,
        logo: logo.clone(),
    };
    let page = view.render()?;
    let csp = format!(
        "{TOKENS_CSP}; img-src 'self' data:{}",
        image_origin(&logo)
            .into_iter()
            .chain(image_origin(&branding.page_favicon()))
            .map(|origin| format!(" {origin}"))
            .collect::<String>()
    );
    let mut response = Html(page).into_response();
    let headers = response.headers_mut();
    // The CSP is built from config only (origins checked below), so it is always a header value.
    if let Ok(csp) = HeaderValue::from_str(&csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    for (name, value) in [
        (header::CACHE_CONTROL, "no-store"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    Ok(response)
}

/// The origin of a branding image that config names by an absolute URL (`https://cdn.example/…`),
/// for `img-src`; `None` for this origin's own paths and data URLs, and for anything that is not
/// plainly a scheme and a host, which must not reach the policy.
fn image_origin(href: &str) -> Option<String> {
    let (scheme, rest) = href.split_once("://")?;
    let host = rest.split(['/', '?', '#']).next()?;
    let plain = |text: &str, extra: &[char]| {
        !text.is_empty()
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || extra.contains(&c))
    };
    (matches!(scheme, "http" | "https") && plain(host, &['.', '-', ':', '[', ']']))
        .then(|| format!("{scheme}://{host}"))
}

#[cfg(test)]
mod tests {
    use super::image_origin;

    #[test]
    fn only_plain_absolute_image_urls_widen_the_policy() {
        assert_eq!(
            image_origin("https://cdn.example:8443/brand/logo.svg").as_deref(),
            Some("https://cdn.example:8443")
        );
        assert_eq!(image_origin("/shell/brand/logo?v=1"), None);
        assert_eq!(image_origin("data:image/svg+xml;base64,AAAA"), None);
        assert_eq!(image_origin("https://evil.example;script-src *"), None);
        assert_eq!(image_origin("javascript://x"), None);
    }
}
