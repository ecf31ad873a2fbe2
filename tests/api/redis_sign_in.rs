//! Two portico instances sharing one real `redis-server`, behind a test balancer, signing in with the
//! real OpenID Provider: a sign-in started on one instance finishes on the other, a replayed callback
//! fails on every instance, refreshes racing on both instances spend the refresh token once (the OP
//! rotates refresh tokens and revokes the grant when a spent one comes back), and a Redis that is
//! down makes sign-in "unavailable" (503), not a panic.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};

use crate::helpers::{app, client, compile, config, oidc_client, tenant};
use crate::op::{Browser, RealOp, reserve_port};
use crate::redis_server::{RedisServer, sessions_yaml};

/// Where the balancer sends each new connection: to instance 0, instance 1, or in turn.
const ROUND_ROBIN: usize = 2;

/// A TCP balancer on the portal's public address: each connection goes to the instance the test
/// chose (the browser here opens a connection per request, so a request's instance is known).
struct Balancer {
    target: Arc<AtomicUsize>,
}

impl Balancer {
    async fn start(listener: TcpListener, instances: [SocketAddr; 2]) -> Balancer {
        let target = Arc::new(AtomicUsize::new(0));
        let turn = Arc::new(AtomicUsize::new(0));
        let chosen = target.clone();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let index = match chosen.load(Ordering::SeqCst) {
                    ROUND_ROBIN => turn.fetch_add(1, Ordering::SeqCst) % 2,
                    fixed => fixed,
                };
                let to = instances[index];
                tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(to).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Balancer { target }
    }

    fn send_to(&self, instance: usize) {
        self.target.store(instance, Ordering::SeqCst);
    }
}

/// The portal: the OP, Redis, two instances and the balancer in front of them at `base`.
struct Cluster {
    base: String,
    op: RealOp,
    redis: RedisServer,
    balancer: Balancer,
    _dir: tempfile::TempDir,
}

/// Which session store both instances are configured with.
#[derive(Clone, Copy, PartialEq)]
enum Store {
    Redis,
    /// Each instance its own memory: what scaling out looked like before Redis.
    Memory,
}

async fn cluster(store: Store, access_token_ttl: u64) -> Cluster {
    let public = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = public.local_addr().unwrap().port();
    let base = format!("http://127.0.0.1:{port}");
    let op = RealOp::start(json!({
        "clients": [{
            "client_id": "portico",
            "client_secret": "portico-secret",
            "redirect_uris": [format!("{base}/auth/callback")],
            "post_logout_redirect_uris": [format!("{base}/auth/signed-out")],
        }],
        "accessTokenTtl": access_token_ttl,
        "rotateRefreshTokens": true,
    }));
    let redis = RedisServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let signing_key = dir.path().join("signing.pem");
    {
        use p256::pkcs8::EncodePrivateKey;
        let key = p256::SecretKey::random(&mut p256::elliptic_curve::rand_core::OsRng);
        let pem = key.to_pkcs8_pem(p256::pkcs8::LineEnding::LF).unwrap();
        std::fs::write(&signing_key, pem.as_bytes()).unwrap();
    }
    let sessions = match store {
        Store::Redis => sessions_yaml(&redis.url(), "", dir.path()),
        Store::Memory => "sessions: { store: memory }".to_owned(),
    };
    let mut instances = [reserve_port(), reserve_port()];
    for listen in &mut instances {
        let yaml = config()
            .top(&format!(
                "server: {{ listen: \"{listen}\", signing_keys: [\"{}\"] }}",
                signing_key.display()
            ))
            .top(&sessions)
            .tenant(
                tenant("acme", &[&format!("127.0.0.1:{port}")])
                    .public_origin(&base)
                    .oidc(&oidc_client(&op.issuer, "portico", "portico-secret"))
                    .role("developer", &["acme-eng"])
                    .app(app("tools", &["developer"]).files("embedded:demo")),
            )
            .yaml();
        let mut config = compile(&yaml, dir.path());
        config.server.admin_listen = None;
        let app = portico::app::App::build(config)
            .await
            .expect("portico starts");
        tokio::spawn(app.run());
    }
    let balancer = Balancer::start(public, instances).await;
    let cluster = Cluster {
        base,
        op,
        redis,
        balancer,
        _dir: dir,
    };
    for instance in 0..2 {
        cluster.balancer.send_to(instance);
        wait_until_ready(&cluster.base).await;
    }
    cluster
}

/// Discovery runs in the background; wait (bounded) until sign-in redirects to the IdP.
async fn wait_until_ready(base: &str) {
    for _ in 0..300 {
        if Browser::default()
            .get(&format!("{base}/auth/login"))
            .await
            .status
            == 303
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("sign-in at {base} never became available");
}

async fn session_json(browser: &mut Browser, base: &str) -> (u16, Value) {
    browser
        .fetch("GET", &format!("{base}/auth/session"), None)
        .await
}

/// A sign-in started on one instance, with the browser coming back from the IdP to the other.
async fn cross_instance_sign_in(store: Store) {
    let cluster = cluster(store, 3600).await;
    let base = &cluster.base;
    let mut browser = Browser::default();
    cluster.balancer.send_to(0);
    let callback = browser
        .sign_in_at_op(base, &cluster.op.issuer, "dev", "/home/tools")
        .await;
    let binding = browser
        .cookie(base, "portico_login")
        .expect("the login binding cookie");

    cluster.balancer.send_to(1);
    let landed = browser.get(&callback).await;
    assert_eq!(
        landed.status, 303,
        "the callback on the other instance signs in: {}",
        landed.body
    );
    assert_eq!(
        landed.location.as_deref(),
        Some(format!("{base}/home/tools").as_str())
    );
    for instance in [1, 0] {
        cluster.balancer.send_to(instance);
        let (status, session) = session_json(&mut browser, base).await;
        assert_eq!(status, 200, "instance {instance}: {session}");
        assert_eq!(session["user"]["id"], "dev");
    }

    // The same callback again, with the binding cookie (someone who copied both): refused on every
    // instance. Tenant, binding, age and `iss` are all right, so the used state is what refuses it
    // (the audit line says "unknown or already used state"; not asserted here: a thread-local log
    // capture was seen to miss that warning line while other tests ran in parallel).
    for instance in [0, 1] {
        cluster.balancer.send_to(instance);
        let replay = client()
            .get(&callback)
            .header("cookie", format!("portico_login={binding}"))
            .header("accept", "application/json")
            .send()
            .await
            .unwrap();
        assert_eq!(replay.status(), 401, "replay on instance {instance}");
        let body: Value = replay.json().await.unwrap();
        assert_eq!(body["error"], "sign_in_failed", "{body}");
    }
}

#[tokio::test]
async fn a_sign_in_started_on_one_instance_finishes_on_the_other_and_its_state_is_single_use() {
    cross_instance_sign_in(Store::Redis).await;
}

/// What the Redis store fixes: with each instance's own memory, the callback on the other instance
/// does not find the sign-in. (Run `cross_instance_sign_in(Store::Memory)` to see it fail.)
#[tokio::test]
async fn on_the_memory_store_the_other_instance_does_not_know_the_sign_in() {
    let cluster = cluster(Store::Memory, 3600).await;
    let mut browser = Browser::default();
    cluster.balancer.send_to(0);
    let callback = browser
        .sign_in_at_op(&cluster.base, &cluster.op.issuer, "dev", "/")
        .await;
    cluster.balancer.send_to(1);
    assert_eq!(browser.get(&callback).await.status, 401);
}

/// The access token runs out while requests of one session arrive on both instances at once: one
/// instance refreshes, the other waits for its result, so the refresh token is spent once. Two
/// refreshes of one rotated token would be taken for theft by the OP, which revokes the grant.
#[tokio::test]
async fn refreshes_racing_on_two_instances_spend_the_refresh_token_once() {
    let cluster = cluster(Store::Redis, 4).await;
    let base = &cluster.base;
    let mut browser = Browser::default();
    cluster.balancer.send_to(0);
    browser.sign_in(base, &cluster.op.issuer, "dev", "/").await;
    let cookie = format!(
        "portico_session={}",
        browser.session(base).expect("a session")
    );
    for round in 1..=2u64 {
        // Refresh is due a second before the 4 s access token expires.
        tokio::time::sleep(Duration::from_millis(3300)).await;
        cluster.balancer.send_to(ROUND_ROBIN);
        let requests: Vec<_> = (0..6)
            .map(|_| {
                // A client of its own per request: a connection of its own, so the balancer
                // alternates instances.
                let request = client()
                    .get(format!("{base}/auth/session"))
                    .header("cookie", &cookie)
                    .header("accept", "application/json")
                    .send();
                tokio::spawn(request)
            })
            .collect();
        for request in requests {
            let response = request.await.unwrap().unwrap();
            assert_eq!(response.status(), 200, "round {round}");
        }
        assert_eq!(
            cluster.op.refreshes().await,
            (round, 0),
            "round {round}: one refresh, none refused"
        );
    }
    for instance in [0, 1] {
        cluster.balancer.send_to(instance);
        assert_eq!(session_json(&mut browser, base).await.0, 200);
    }
}

/// Redis stopped: starting a sign-in is "sign-in unavailable" (503, with Retry-After), and a callback
/// for a sign-in started before is a 503 too, not a failed or half-made sign-in. Redis started again:
/// sign-in works again by itself.
#[tokio::test]
async fn with_redis_down_sign_in_is_unavailable_and_comes_back_with_redis() {
    let mut cluster = cluster(Store::Redis, 3600).await;
    let base = cluster.base.clone();
    let mut browser = Browser::default();
    cluster.balancer.send_to(0);
    let callback = browser
        .sign_in_at_op(&base, &cluster.op.issuer, "dev", "/")
        .await;
    cluster.redis.stop();
    for instance in [0, 1] {
        cluster.balancer.send_to(instance);
        let start = client()
            .get(format!("{base}/auth/login"))
            .header("accept", "application/json")
            .send()
            .await
            .unwrap();
        assert_eq!(start.status(), 503, "instance {instance}");
        assert!(start.headers().contains_key("retry-after"));
        let body: Value = start.json().await.unwrap();
        assert_eq!(body["error"], "sign_in_unavailable", "{body}");
    }
    cluster.balancer.send_to(1);
    let landed = browser.get(&callback).await;
    assert_eq!(landed.status, 503, "{}", landed.body);
    assert!(browser.session(&base).is_none(), "no session cookie");

    // Redis is back: sign-in works again by itself, on both instances, with no restart of portico.
    cluster.redis.restart().await;
    for instance in [0, 1] {
        cluster.balancer.send_to(instance);
        wait_until_ready(&base).await;
    }
    let mut again = Browser::default();
    cluster.balancer.send_to(0);
    let callback = again
        .sign_in_at_op(&base, &cluster.op.issuer, "dev", "/")
        .await;
    cluster.balancer.send_to(1);
    assert_eq!(again.get(&callback).await.status, 303);
}
