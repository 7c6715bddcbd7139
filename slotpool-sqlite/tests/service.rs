#![cfg(not(feature = "loom"))]
//! The example service (`examples/service/`): started on a loopback port,
//! checked through its item routes and its `/health`, `/stats` and `/metrics`
//! endpoints with a minimal HTTP/1.1 client.

#[path = "../examples/service/app.rs"]
mod app;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The bound on every request and on the whole test.
const LIMIT: Duration = Duration::from_secs(20);

/// One HTTP response: status, lower-cased headers, body.
struct Response {
    status: u16,
    headers: HashMap<String, String>,
    body: String,
}

impl Response {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", String::as_str)
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|err| panic!("not JSON ({err}): {}", self.body))
    }
}

/// Sends one request with `Connection: close` and reads the whole response.
async fn request(addr: SocketAddr, method: &str, path: &str, json_body: Option<&str>) -> Response {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let mut head =
            format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
        if let Some(body) = json_body {
            head += &format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            );
        }
        head += "\r\n";
        head += json_body.unwrap_or("");
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.unwrap();
        String::from_utf8(raw).unwrap()
    };
    let raw = tokio::time::timeout(LIMIT, exchange)
        .await
        .unwrap_or_else(|_| panic!("{method} {path}: no response within {LIMIT:?}"));
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .expect("a complete response head");
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: HashMap<String, String> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    assert!(
        !headers.contains_key("transfer-encoding"),
        "bodies have a known length: {head}"
    );
    assert_eq!(
        headers
            .get("content-length")
            .map(|n| n.parse::<usize>().unwrap()),
        Some(body.len()),
        "{head}"
    );
    Response {
        status,
        headers,
        body: body.to_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_serves_items_and_monitoring_endpoints() {
    tokio::time::timeout(2 * LIMIT, scenario())
        .await
        .expect("the scenario finishes in time");
}

async fn scenario() {
    let dir = tempfile::tempdir().unwrap();
    let pool = Arc::new(app::build_pool(&dir.path().join("service.db")).unwrap());
    assert_eq!(app::seed(&pool).await.unwrap(), 3);
    assert_eq!(
        app::seed(&pool).await.unwrap(),
        0,
        "seeding twice adds nothing"
    );

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    assert!(addr.ip().is_loopback());
    let server = tokio::spawn(axum::serve(listener, app::router(Arc::clone(&pool))).into_future());

    // Items: a real query through get_async.
    let item = request(addr, "GET", "/items/1", None).await;
    assert_eq!(item.status, 200, "{}", item.body);
    assert!(item.header("content-type").starts_with("application/json"));
    assert_eq!(item.json(), serde_json::json!({ "id": 1, "name": "anvil" }));

    let missing = request(addr, "GET", "/items/999", None).await;
    assert_eq!(missing.status, 404, "{}", missing.body);
    assert_eq!(missing.json()["error"], "no item 999");

    let created = request(addr, "POST", "/items", Some(r#"{"name":"tongs"}"#)).await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(
        created.json(),
        serde_json::json!({ "id": 4, "name": "tongs" })
    );
    let fetched = request(addr, "GET", "/items/4", None).await;
    assert_eq!(fetched.json()["name"], "tongs");

    // /health: a HealthReport, 200 while healthy or degraded.
    let health = request(addr, "GET", "/health", None).await;
    assert_eq!(health.status, 200, "{}", health.body);
    assert!(
        health
            .header("content-type")
            .starts_with("application/json")
    );
    let report = health.json();
    assert_eq!(report["pool"], "service");
    assert!(
        matches!(report["status"].as_str(), Some("healthy" | "degraded")),
        "{report}"
    );
    assert!(report["findings"].is_array() && report["summary"].is_object());

    // /stats: the Stats snapshot; it counts the item requests above.
    let stats = request(addr, "GET", "/stats", None).await;
    assert_eq!(stats.status, 200, "{}", stats.body);
    assert!(stats.header("content-type").starts_with("application/json"));
    let stats = stats.json();
    assert_eq!(stats["pool"], "service");
    assert!(stats["gauges"].is_object(), "{stats}");
    assert_eq!(stats["gauges"]["max"], 4);
    assert_eq!(
        stats["gauges"]["in_use"], 0,
        "handlers return their connections"
    );
    let gets = stats["counters"]["gets"].as_u64().expect("counters.gets");
    assert!(gets >= 6, "2 seeds + 4 item requests, got {gets}");

    // /metrics: Prometheus text format, which a Prometheus parser accepts.
    let metrics = request(addr, "GET", "/metrics", None).await;
    assert_eq!(metrics.status, 200, "{}", metrics.body);
    assert_eq!(metrics.header("content-type"), app::PROMETHEUS_CONTENT_TYPE);
    assert!(
        metrics
            .body
            .contains("# TYPE slotpool_connections_active gauge"),
        "{}",
        metrics.body
    );
    assert!(
        metrics
            .body
            .contains("slotpool_connections_active{pool=\"service\"} 0\n"),
        "{}",
        metrics.body
    );
    let scrape =
        prometheus_parse::Scrape::parse(metrics.body.lines().map(|line| Ok(line.to_owned())))
            .expect("valid exposition");
    assert!(
        scrape
            .samples
            .iter()
            .any(|s| s.metric == "slotpool_connections_max"
                && s.labels.get("pool") == Some("service")),
        "slotpool_connections_max{{pool=\"service\"}} is exported"
    );

    // A closed pool: item routes answer 503 with the pool's error.
    let _ = pool.close_timeout(Duration::ZERO);
    let closed = request(addr, "GET", "/items/1", None).await;
    assert_eq!(closed.status, 503, "{}", closed.body);
    let message = closed.json()["error"].as_str().unwrap().to_owned();
    assert!(message.contains("closed"), "{message}");

    server.abort();
    let _ = server.await;
}
