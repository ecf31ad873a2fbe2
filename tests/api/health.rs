//! Health-aware navigation through a real portal: a tenant with `health:` at 200ms probes an upstream
//! this test starts, stops and starts again; the signed-in user's `/shell/config.json` and the admin
//! listener's `/metrics` follow it. A user who cannot see the app gets no trace of it.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::http::header::CONNECTION;
use axum::response::Html;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::helpers::{Session, TestServer, compile};

/// How long a change may take to show: ten rounds and more (two failures make an app degraded).
const SHOWS_WITHIN: Duration = Duration::from_secs(8);

/// An upstream app on `addr` (port 0: any) that closes every connection after its answer, so that
/// stopping it leaves no kept-alive connection that would still answer.
async fn start_upstream(addr: SocketAddr) -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind(addr).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().fallback(|| async {
        (
            [(CONNECTION, "close")],
            Html("<!doctype html><title>Cost Insights</title><p>costs</p>"),
        )
    });
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, task)
}

async fn stop_upstream(task: JoinHandle<()>) {
    task.abort();
    let _ = task.await;
}

fn config(upstream: SocketAddr) -> String {
    format!(
        "\
version: 1
tenants:
  acme:
    hosts: [127.0.0.1]
    auth:
      dev_sign_in:
        users:
          - {{ id: dev, groups: [acme-eng] }}
          - {{ id: guest, groups: [acme-guests] }}
    roles:
      developer: {{ groups: [acme-eng] }}
      visitor: {{ groups: [acme-guests] }}
    health: {{ interval: 200ms, timeout: 2s, as: {{ groups: [acme-eng] }} }}
    apps:
      - id: cost-insights
        label: Cost Insights
        owner: team-finops
        access: {{ roles: [developer] }}
        upstream: http://{upstream}
        luigi_client: false
      - id: lobby
        label: Lobby
        owner: team-portal
        access: {{ roles: [visitor] }}
        upstream: http://{upstream}
        luigi_client: false
"
    )
}

/// `portico_app_up` of `app` on tenant `acme`: `None` when there is no such series.
async fn app_up(server: &TestServer, admin: SocketAddr, app: &str) -> Option<i64> {
    let text = server
        .client
        .get(format!("http://{admin}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let series = format!("portico_app_up{{tenant=\"acme\",app=\"{app}\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&series))
        .map(|value| value.trim().parse().unwrap())
}

/// The app entry `id` among the home node's children.
fn app_entry<'a>(config: &'a Value, id: &str) -> &'a Value {
    config["luigi"]["navigation"]["nodes"][0]["children"]
        .as_array()
        .unwrap()
        .iter()
        .find(|node| node["pathSegment"] == id)
        .unwrap_or_else(|| panic!("no entry for {id} in {config}"))
}

/// The launchpad summary of `id`.
fn summary<'a>(config: &'a Value, id: &str) -> &'a Value {
    config["luigi"]["navigation"]["nodes"][0]["context"]["apps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|app| app["id"] == id)
        .unwrap_or_else(|| panic!("no summary for {id} in {config}"))
}

/// Polls (bounded) until `done` says yes about the user's config and the metric; the last of both
/// when it never does.
async fn wait_for(
    server: &TestServer,
    admin: SocketAddr,
    session: &Session,
    what: &str,
    done: impl Fn(&Value, Option<i64>) -> bool,
) -> (Value, Option<i64>) {
    let deadline = Instant::now() + SHOWS_WITHIN;
    loop {
        let config = server.shell_config(session).await;
        let up = app_up(server, admin, "cost-insights").await;
        if done(&config, up) {
            return (config, up);
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not show within {SHOWS_WITHIN:?}: app_up {up:?}, entry {}",
            app_entry(&config, "cost-insights")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn degraded(config: &Value) -> bool {
    !app_entry(config, "cost-insights")["context"]["app"]["degraded"].is_null()
}

#[tokio::test]
async fn an_app_that_stops_answering_is_marked_degraded_then_up_again() {
    let (upstream, task) = start_upstream("127.0.0.1:0".parse().unwrap()).await;
    let dir = tempfile::tempdir().unwrap();
    let (server, admin) =
        TestServer::start_with_admin(compile(&config(upstream), dir.path())).await;
    let dev = server.sign_in("dev").await;
    let guest = server.sign_in("guest").await;

    // Healthy: probed, up, no mark anywhere.
    let (healthy, _) = wait_for(&server, admin, &dev, "a first good probe", |_, up| {
        up == Some(1)
    })
    .await;
    assert!(!degraded(&healthy));
    // An open shell reads its config again at the watch's pace (200ms, raised to the 1s floor).
    assert_eq!(healthy["portico"]["healthRefreshMs"], 1000);
    assert!(summary(&healthy, "cost-insights").get("degraded").is_none());
    assert!(
        app_entry(&healthy, "cost-insights")
            .get("statusBadge")
            .is_none()
    );
    // Only what the probe's groups see is probed: the guests' app is not.
    assert_eq!(app_up(&server, admin, "lobby").await, None);

    // Stopped: degraded after two failed probes, with a reason users may see and its owner.
    stop_upstream(task).await;
    let (down, up) = wait_for(&server, admin, &dev, "the degraded mark", |config, up| {
        degraded(config) && up == Some(0)
    })
    .await;
    assert_eq!(up, Some(0));
    let entry = app_entry(&down, "cost-insights");
    let mark = &entry["context"]["app"]["degraded"];
    assert_eq!(mark["code"], "refused", "{mark}");
    assert_eq!(mark["reason"], "no answer: connection refused");
    let since = mark["since"].as_str().unwrap();
    assert!(
        since.len() == 20 && since.ends_with('Z'),
        "RFC 3339: {since}"
    );
    assert_eq!(entry["context"]["app"]["owner"], "team-finops");
    assert_eq!(
        entry["statusBadge"],
        serde_json::json!({ "label": "Degraded", "type": "negative", "align": "right" })
    );
    assert_eq!(summary(&down, "cost-insights")["degraded"], *mark);
    // Nothing of the upstream's address reaches the browser.
    let text = down.to_string();
    assert!(!text.contains(&upstream.to_string()), "{text}");

    // The guest sees no trace of an app they cannot open, degraded or not.
    let guest_config = server.shell_config(&guest).await.to_string();
    assert!(!guest_config.contains("cost-insights"), "{guest_config}");
    assert!(!guest_config.contains("degraded"), "{guest_config}");
    assert!(!guest_config.contains("statusBadge"), "{guest_config}");

    // Started again on the same address: up after one good probe.
    let (_, restarted) = start_upstream(upstream).await;
    let (recovered, _) = wait_for(&server, admin, &dev, "the recovery", |config, up| {
        !degraded(config) && up == Some(1)
    })
    .await;
    assert!(
        summary(&recovered, "cost-insights")
            .get("degraded")
            .is_none()
    );
    assert!(
        app_entry(&recovered, "cost-insights")
            .get("statusBadge")
            .is_none()
    );
    stop_upstream(restarted).await;
}

#[tokio::test]
async fn without_health_nothing_is_probed() {
    let (upstream, task) = start_upstream("127.0.0.1:0".parse().unwrap()).await;
    let dir = tempfile::tempdir().unwrap();
    let yaml = config(upstream).replace(
        "health: { interval: 200ms, timeout: 2s, as: { groups: [acme-eng] } }",
        "health: { interval: off }",
    );
    let (server, admin) = TestServer::start_with_admin(compile(&yaml, dir.path())).await;
    let dev = server.sign_in("dev").await;
    stop_upstream(task).await;
    // Several rounds' worth of time: nothing probes, nothing is marked, no series exists.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(app_up(&server, admin, "cost-insights").await, None);
    assert!(!degraded(&server.shell_config(&dev).await));
}
