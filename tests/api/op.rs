//! A real OpenID Provider for tests (the npm package `oidc-provider`, run by tests/support/op.mjs) and
//! a browser-like HTTP driver that signs in through it: no redirects followed automatically, one cookie
//! jar per origin, every step bounded in time.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use serde_json::{Value, json};

/// A running `oidc-provider`; stopped when dropped (its stdin closes and it is killed).
pub(crate) struct RealOp {
    pub issuer: String,
    child: Child,
    stdin: std::sync::Mutex<ChildStdin>,
    /// The OP's stdout lines after the first: answers to test controls.
    answers: std::sync::Mutex<std::sync::mpsc::Receiver<String>>,
}

impl RealOp {
    /// Starts the OP with the given options (see tests/support/op.mjs for what they mean).
    pub(crate) fn start(options: Value) -> RealOp {
        let root = env!("CARGO_MANIFEST_DIR");
        let mut child = Command::new("node")
            .arg(format!("{root}/tests/support/op.mjs"))
            .arg(options.to_string())
            .current_dir(root)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node must be installed to run the test OpenID Provider");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if sender.send(line).is_err() {
                    return;
                }
            }
        });
        let line = receiver
            .recv_timeout(Duration::from_secs(20))
            .expect("the test OP did not start within 20 s");
        let started: Value =
            serde_json::from_str(&line).unwrap_or_else(|_| panic!("OP said: {line}"));
        RealOp {
            issuer: started["issuer"].as_str().unwrap().to_owned(),
            child,
            stdin: std::sync::Mutex::new(stdin),
            answers: std::sync::Mutex::new(receiver),
        }
    }

    /// Sends a test control (see tests/support/op.mjs: `stop`, `start`, `rotate`) and waits for it to
    /// be done.
    fn control(&self, command: &str) {
        use std::io::Write;
        writeln!(self.stdin.lock().unwrap(), "{command}").unwrap();
        let answer = self
            .answers
            .lock()
            .unwrap()
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("the test OP did not answer `{command}` within 20 s"));
        let answer: Value = serde_json::from_str(&answer).unwrap();
        assert_eq!(answer["ok"], command, "the test OP says: {answer}");
    }

    /// The IdP goes down: its port refuses connections. Its state (grants, keys) is kept.
    pub(crate) fn stop(&self) {
        self.control("stop");
    }

    /// The IdP comes back on the same port, with the state it had.
    pub(crate) fn restart(&self) {
        self.control("start");
    }

    /// The IdP rotates its signing key: new tokens name a key it did not publish before.
    pub(crate) fn rotate_keys(&self) {
        self.control("rotate");
    }

    /// Changes an account's groups at the OP, as an IdP admin would.
    pub(crate) async fn set_groups(&self, account: &str, groups: &[&str]) {
        let response = client()
            .post(format!("{}/__test/accounts/{account}/groups", self.issuer))
            .json(&json!(groups))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 204);
    }

    /// How many refresh_token grants the OP answered so far: (granted, refused).
    pub(crate) async fn refreshes(&self) -> (u64, u64) {
        let counts: Value = client()
            .get(format!("{}/__test/refreshes", self.issuer))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (
            counts["granted"].as_u64().unwrap(),
            counts["refused"].as_u64().unwrap(),
        )
    }
}

impl Drop for RealOp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free loopback port for portico, found before the OP starts (the OP must know the redirect URI).
pub(crate) fn reserve_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// What a browser keeps: cookies per origin (`scheme://host:port`).
#[derive(Default)]
pub(crate) struct Browser {
    jars: HashMap<String, HashMap<String, String>>,
    /// Host names resolved to a fixed address, like `/etc/hosts` entries (the URL's port is used).
    resolve: Vec<(String, SocketAddr)>,
    /// Every `Set-Cookie` received, as (URL of the response, header value), oldest first.
    pub set_cookies: Vec<(String, String)>,
}

/// One response as the browser saw it.
pub(crate) struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub body: String,
}

fn origin_of(url: &str) -> String {
    let parsed = reqwest::Url::parse(url).unwrap();
    format!("{}://{}", parsed.scheme(), parsed.authority())
}

impl Browser {
    /// A browser that resolves each of `hosts` to `addr` (e.g. `acme.test` to 127.0.0.1).
    pub(crate) fn resolving(hosts: &[&str], addr: SocketAddr) -> Browser {
        Browser {
            resolve: hosts
                .iter()
                .map(|host| ((*host).to_owned(), addr))
                .collect(),
            ..Browser::default()
        }
    }

    fn http(&self) -> reqwest::Client {
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(Duration::from_secs(30));
        for (host, addr) in &self.resolve {
            builder = builder.resolve(host, *addr);
        }
        builder.build().unwrap()
    }

    fn cookie_header(&self, url: &str) -> Option<String> {
        let jar = self.jars.get(&origin_of(url))?;
        (!jar.is_empty()).then(|| {
            jar.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }

    fn remember(&mut self, url: &str, response: &reqwest::Response) {
        let jar = self.jars.entry(origin_of(url)).or_default();
        for value in response.headers().get_all(SET_COOKIE) {
            let text = value.to_str().unwrap();
            self.set_cookies.push((url.to_owned(), text.to_owned()));
            let (pair, attributes) = text.split_once(';').unwrap_or((text, ""));
            let (name, value) = pair.split_once('=').unwrap();
            let attributes = attributes.to_ascii_lowercase();
            let deleted = value.is_empty()
                || attributes.contains("max-age=0")
                || attributes.contains("expires=thu, 01 jan 1970");
            if deleted {
                jar.remove(name.trim());
            } else {
                jar.insert(name.trim().to_owned(), value.trim().to_owned());
            }
        }
    }

    /// The session cookie portico set for `origin`, if any.
    pub(crate) fn session(&self, origin: &str) -> Option<String> {
        self.cookie(origin, "portico_session")
    }

    /// The value of the cookie `name` this browser holds for `origin`, if any.
    pub(crate) fn cookie(&self, origin: &str, name: &str) -> Option<String> {
        self.jars.get(origin)?.get(name).cloned()
    }

    pub(crate) async fn get(&mut self, url: &str) -> Page {
        let mut request = self
            .http()
            .get(url)
            .header("accept", "text/html")
            .header("sec-fetch-mode", "navigate");
        if let Some(cookies) = self.cookie_header(url) {
            request = request.header(COOKIE, cookies);
        }
        self.finish(url, request).await
    }

    pub(crate) async fn post_form(
        &mut self,
        url: &str,
        form: &[(&str, &str)],
        origin: &str,
    ) -> Page {
        let body = form
            .iter()
            .map(|(k, v)| format!("{k}={}", urlencode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let mut request = self
            .http()
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "text/html")
            .header("origin", origin)
            .body(body);
        if let Some(cookies) = self.cookie_header(url) {
            request = request.header(COOKIE, cookies);
        }
        self.finish(url, request).await
    }

    /// Opens the OP's logout confirmation page at `url` (oidc-provider's `/session/end` form) and
    /// confirms it, as a user clicking "yes" would; returns the OP's answer to the confirmation.
    pub(crate) async fn confirm_logout_at_op(&mut self, url: &str, issuer: &str) -> Page {
        let confirm = self.get(url).await;
        assert_eq!(confirm.status, 200, "{}", confirm.body);
        let xsrf = confirm
            .body
            .split("name=\"xsrf\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("the OP's logout form has an xsrf field")
            .to_owned();
        self.post_form(
            &format!("{issuer}/session/end/confirm"),
            &[("xsrf", &xsrf), ("logout", "yes")],
            issuer,
        )
        .await
    }

    /// A same-origin script call (fetch) with JSON back, as the shell's bootstrap makes it.
    pub(crate) async fn fetch(
        &mut self,
        method: &str,
        url: &str,
        csrf: Option<&str>,
    ) -> (u16, Value) {
        let mut request = self
            .http()
            .request(method.parse().unwrap(), url)
            .header("accept", "application/json")
            .header("sec-fetch-site", "same-origin")
            .header("sec-fetch-mode", "cors");
        if let Some(token) = csrf {
            request = request.header("x-portico-csrf", token);
        }
        if let Some(cookies) = self.cookie_header(url) {
            request = request.header(COOKIE, cookies);
        }
        let response = request.send().await.unwrap();
        self.remember(url, &response);
        let status = response.status().as_u16();
        let body = response.json().await.unwrap_or(Value::Null);
        (status, body)
    }

    async fn finish(&mut self, url: &str, request: reqwest::RequestBuilder) -> Page {
        let response = request.send().await.unwrap();
        self.remember(url, &response);
        let status = response.status().as_u16();
        let location = response.headers().get(LOCATION).map(|l| {
            reqwest::Url::parse(url)
                .unwrap()
                .join(l.to_str().unwrap())
                .unwrap()
                .to_string()
        });
        let body = response.text().await.unwrap_or_default();
        Page {
            status,
            location,
            body,
        }
    }

    /// Follows redirects from `url` (at most 10) until a page that is not a redirect, or until one would
    /// leave for `stop_at_origin`. Returns the last URL and page.
    pub(crate) async fn follow(&mut self, url: &str, stop_before: Option<&str>) -> (String, Page) {
        let mut current = url.to_owned();
        for _ in 0..10 {
            let page = self.get(&current).await;
            match (&page.location, page.status) {
                (Some(next), 301..=308) => {
                    if stop_before.is_some_and(|prefix| next.starts_with(prefix)) {
                        return (current, page);
                    }
                    current = next.clone();
                }
                _ => return (current, page),
            }
        }
        panic!("too many redirects from {url}");
    }

    /// Signs in at portico `base` (e.g. `http://127.0.0.1:1234`) as `account` through the real OP's
    /// login form; returns the path portico finally sent the browser to.
    pub(crate) async fn sign_in(
        &mut self,
        base: &str,
        issuer: &str,
        account: &str,
        return_to: &str,
    ) -> String {
        let callback = self.sign_in_at_op(base, issuer, account, return_to).await;
        self.land(base, &callback).await
    }

    /// The first half of [`Self::sign_in`]: starts the login at portico `base` and signs in at the OP,
    /// but stops before the callback. Returns the callback URL the OP sent the browser to.
    pub(crate) async fn sign_in_at_op(
        &mut self,
        base: &str,
        issuer: &str,
        account: &str,
        return_to: &str,
    ) -> String {
        let start = format!("{base}/auth/login?return_to={}", urlencode(return_to));
        let login = self.get(&start).await;
        assert_eq!(
            login.status, 303,
            "portico sends the browser to the IdP: {}",
            login.body
        );
        let authorize = login.location.unwrap();
        assert!(authorize.starts_with(issuer), "{authorize}");
        // The OP's interaction page.
        let (interaction, form) = self.follow(&authorize, Some(base)).await;
        if let Some(back) = form.location.as_deref().filter(|l| l.starts_with(base)) {
            // Already signed in at the OP (single sign-on): the redirect went straight back.
            return back.to_owned();
        }
        assert_eq!(form.status, 200, "login form: {}", form.body);
        let after = self
            .post_form(
                &interaction,
                &[("prompt", "login"), ("login", account), ("password", "any")],
                issuer,
            )
            .await;
        assert_eq!(after.status, 303, "login accepted: {}", after.body);
        let (_, last) = self.follow(&after.location.unwrap(), Some(base)).await;
        let back = last.location.expect("the OP redirects back to portico");
        assert!(back.starts_with(&format!("{base}/auth/callback")), "{back}");
        back
    }

    /// Opens the callback URL at portico `base`; asserts sign-in succeeded and returns where it sent the
    /// browser.
    pub(crate) async fn land(&mut self, base: &str, callback: &str) -> String {
        let done = self.get(callback).await;
        assert_eq!(done.status, 303, "callback accepted: {}", done.body);
        let target = done.location.unwrap();
        target.strip_prefix(base).unwrap_or(&target).to_owned()
    }
}

pub(crate) fn urlencode(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}
