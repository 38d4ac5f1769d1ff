//! The guard, robots.txt and the crawler against a real HTTP server on 127.0.0.1:0.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use fetch::{
    AddressPolicy, Conditional, CrawlLimits, FetchConfig, FetchError, GuardedClient, crawl, refetch,
};
use sha2::{Digest, Sha256};

/// Every request the server saw: (path, user agent).
type Hits = Arc<Mutex<Vec<(String, String)>>>;

struct Site {
    base: String,
    port: u16,
    hits: Hits,
}

impl Site {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
    fn hit_paths(&self) -> BTreeSet<String> {
        self.hits.lock().unwrap().iter().map(|(p, _)| p.clone()).collect()
    }
}

fn page(title: &str, body: &str, links: &[&str]) -> Html<String> {
    let links: String = links.iter().map(|l| format!("<li><a href=\"{l}\">{l}</a></li>")).collect();
    Html(format!(
        "<!doctype html><html><head><title>{title}</title></head><body>\
         <nav><ul>{links}</ul><p>NAVIGATION-CHROME menu</p></nav>\
         <main><article><h1>{title}</h1><p>{body}</p><p>{body} Further sentences make this a real article \
         with enough words for a readability scorer to consider it the main content of the page.</p></article></main>\
         <footer>FOOTER-CHROME</footer></body></html>"
    ))
}

async fn spawn_site() -> Site {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits: Hits = Arc::default();
    let offsite = format!("http://localhost:{port}/offsite");
    let to_localhost = format!("http://localhost:{port}/a");
    let app = Router::new()
        .route("/robots.txt", get(|| async { "User-agent: *\nDisallow: /private\n\nUser-agent: EchoForgeBot\nDisallow: /private\nDisallow: /bot-blocked\n" }))
        .route(
            "/",
            get(move || {
                let offsite = offsite.clone();
                async move {
                    page("Home", "HOME-CONTENT welcome to the test site.", &[
                        "/a", "/a#section", "b", "/private/secret", "/bot-blocked", &offsite, "/redirect-ten",
                        "/missing", "mailto:someone@example.com",
                    ])
                }
            }),
        )
        .route("/a", get(|| async { page("Page A", "A-CONTENT about the first topic.", &["/a/deeper", "/"]) }))
        .route("/a/deeper", get(|| async { page("Deeper", "DEEPER-CONTENT two hops down.", &["/a/deeper/deepest"]) }))
        .route("/a/deeper/deepest", get(|| async { page("Deepest", "DEEPEST-CONTENT three hops down.", &[]) }))
        .route(
            "/b",
            get(|headers: HeaderMap| async move {
                if headers.get(header::IF_NONE_MATCH).is_some_and(|v| v == "\"v1\"") {
                    return StatusCode::NOT_MODIFIED.into_response();
                }
                ([(header::ETAG, "\"v1\""), (header::LAST_MODIFIED, "Wed, 21 Oct 2015 07:28:00 GMT")], page("Page B", "B-CONTENT second topic.", &[]))
                    .into_response()
            }),
        )
        .route("/private/secret", get(|| async { "SECRET" }))
        .route("/bot-blocked", get(|| async { "NOT FOR BOTS" }))
        .route("/offsite", get(|| async { page("Offsite", "OFFSITE-CONTENT", &[]) }))
        .route("/redirect-ten", get(|| async { Redirect::temporary("http://10.0.0.1/") }))
        .route("/redirect-metadata", get(|| async { Redirect::temporary("http://169.254.169.254/latest/meta-data/") }))
        .route("/redirect-localhost", get(move || {
            let to = to_localhost.clone();
            async move { Redirect::temporary(&to) }
        }))
        .route("/loop", get(|| async { Redirect::temporary("/loop") }))
        .route(
            "/huge",
            get(|| async {
                // 20 MiB streamed without Content-Length: only counting while streaming catches it.
                let chunks = futures::stream::iter((0..20).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b'x'; 1024 * 1024]))));
                Response::builder().header(header::CONTENT_TYPE, "text/plain").body(Body::from_stream(chunks)).unwrap()
            }),
        )
        .layer(middleware::from_fn_with_state(hits.clone(), record))
        .with_state(());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Site { base: format!("http://127.0.0.1:{port}"), port, hits }
}

async fn record(State(hits): State<Hits>, request: Request, next: Next) -> Response {
    let agent = request
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    hits.lock().unwrap().push((request.uri().path().to_string(), agent));
    next.run(request).await
}

/// What a test deployment configures: only the loopback address the server listens on.
fn local_only() -> FetchConfig {
    FetchConfig {
        policy: AddressPolicy {
            allowed_cidrs: vec!["127.0.0.1/32".parse().unwrap()],
            ..Default::default()
        },
        max_response_bytes: 1024 * 1024,
        ..Default::default()
    }
}

#[tokio::test]
async fn the_guard_refuses_internal_addresses_unless_allowed() {
    let site = spawn_site().await;
    let client = GuardedClient::new(FetchConfig::default()).unwrap();
    for url in [
        site.url("/"),
        format!("http://[::1]:{}/", site.port),
        "http://10.0.0.1/".to_string(),
        "http://169.254.169.254/latest/meta-data/".to_string(),
        "http://[fd00:ec2::254]/".to_string(),
        format!("http://[::ffff:127.0.0.1]:{}/", site.port),
        // Obfuscated spellings of 127.0.0.1 parse to the same address.
        format!("http://2130706433:{}/", site.port),
        format!("http://0x7f.1:{}/", site.port),
        // A name is checked on the addresses it resolves to, at connect time.
        format!("http://localhost:{}/", site.port),
    ] {
        let err = client.get(&url).await.unwrap_err();
        assert!(matches!(err, FetchError::BlockedAddress { .. }), "{url}: {err:?}");
        assert!(err.to_string().starts_with("blocked address"), "{err}");
    }
    // Webhooks go through the same guard.
    let err =
        client.post(&site.url("/hook"), "application/json", b"{}".to_vec()).await.unwrap_err();
    assert!(matches!(err, FetchError::BlockedAddress { .. }), "{err:?}");
    for url in ["file:///etc/passwd", "ftp://example.com/x", "gopher://127.0.0.1/"] {
        assert!(
            matches!(client.get(url).await.unwrap_err(), FetchError::UnsupportedScheme(_)),
            "{url}"
        );
    }
    assert!(site.hit_paths().is_empty(), "nothing may reach the server: {:?}", site.hit_paths());
}

#[tokio::test]
async fn the_allowlist_lets_tests_reach_the_local_server_as_echoforgebot() {
    let site = spawn_site().await;
    let client = GuardedClient::new(local_only()).unwrap();
    let page = client.get(&site.url("/a")).await.unwrap();
    assert_eq!(page.status, 200);
    assert!(page.content_type.as_deref().unwrap().starts_with("text/html"));
    assert!(String::from_utf8_lossy(&page.bytes).contains("A-CONTENT"));
    let doc = page.extract(extract::Limits::default()).await.unwrap();
    assert_eq!(doc.title.as_deref(), Some("Page A"));
    assert!(
        doc.markdown.contains("A-CONTENT") && !doc.markdown.contains("NAVIGATION-CHROME"),
        "{}",
        doc.markdown
    );
    let hits = site.hits.lock().unwrap().clone();
    assert!(hits.iter().all(|(_, ua)| ua == "EchoForgeBot/0.1"), "{hits:?}");
    let open = GuardedClient::new(FetchConfig {
        policy: AddressPolicy { allow_private: true, ..Default::default() },
        ..Default::default()
    })
    .unwrap();
    assert_eq!(open.get(&site.url("/b")).await.unwrap().status, 200);
    let err = client.get(&site.url("/missing")).await.unwrap_err();
    assert_eq!(err.to_string(), format!("HTTP 404 from {}", site.url("/missing")));
}

#[tokio::test]
async fn redirects_into_private_or_metadata_addresses_are_refused() {
    let site = spawn_site().await;
    let client = GuardedClient::new(local_only()).unwrap();
    let err = client.get(&site.url("/redirect-ten")).await.unwrap_err();
    assert!(
        matches!(err, FetchError::BlockedAddress { ip, .. } if ip.to_string() == "10.0.0.1"),
        "{err:?}"
    );
    // Even allow_private keeps metadata endpoints closed.
    let open = GuardedClient::new(FetchConfig {
        policy: AddressPolicy { allow_private: true, ..Default::default() },
        ..Default::default()
    })
    .unwrap();
    let err = open.get(&site.url("/redirect-metadata")).await.unwrap_err();
    assert!(
        matches!(err, FetchError::BlockedAddress { ip, .. } if ip.to_string() == "169.254.169.254"),
        "{err:?}"
    );
    // Only the literal host 127.0.0.1 is allowed here: a redirect to a *name* that resolves to
    // loopback is caught by the resolver when the redirected connection is made.
    let by_literal = GuardedClient::new(FetchConfig {
        policy: AddressPolicy { allowed_hosts: vec!["127.0.0.1".into()], ..Default::default() },
        ..Default::default()
    })
    .unwrap();
    assert_eq!(by_literal.get(&site.url("/a")).await.unwrap().status, 200);
    let err = by_literal.get(&site.url("/redirect-localhost")).await.unwrap_err();
    assert!(
        matches!(&err, FetchError::BlockedAddress { host, .. } if host == "localhost"),
        "{err:?}"
    );
    let err = client.get(&site.url("/loop")).await.unwrap_err();
    assert!(matches!(err, FetchError::TooManyRedirects(5)), "{err:?}");
}

#[tokio::test]
async fn the_size_cap_is_enforced_while_streaming() {
    let site = spawn_site().await;
    let client = GuardedClient::new(local_only()).unwrap();
    let err = client.get(&site.url("/huge")).await.unwrap_err();
    assert!(matches!(err, FetchError::TooLarge { limit } if limit == 1024 * 1024), "{err:?}");
}

#[tokio::test]
async fn robots_txt_disallow_is_honoured_and_the_page_never_requested() {
    let site = spawn_site().await;
    let client = GuardedClient::new(local_only()).unwrap();
    for path in ["/private/secret", "/bot-blocked"] {
        let err = client.get(&site.url(path)).await.unwrap_err();
        assert!(matches!(err, FetchError::RobotsDisallowed(_)), "{path}: {err:?}");
    }
    let hits = site.hit_paths();
    assert!(hits.contains("/robots.txt"));
    assert!(!hits.contains("/private/secret") && !hits.contains("/bot-blocked"), "{hits:?}");
}

fn paths(report: &fetch::CrawlReport) -> BTreeSet<String> {
    report.pages.iter().map(|p| p.url.path().to_string()).collect()
}

#[tokio::test]
async fn a_crawl_follows_links_to_the_given_depth_on_the_same_site_only() {
    let site = spawn_site().await;
    let client = GuardedClient::new(local_only()).unwrap();
    let start = site.url("/");
    let limits = |max_depth| CrawlLimits { max_depth, max_pages: 50, max_bytes: 10 * 1024 * 1024 };

    let depth0 = crawl(&client, &[&start], &limits(0)).await.unwrap();
    assert_eq!(paths(&depth0), BTreeSet::from(["/".to_string()]));

    let depth1 = crawl(&client, &[&start], &limits(1)).await.unwrap();
    assert_eq!(paths(&depth1), ["/", "/a", "/b"].map(String::from).into());
    let failed: BTreeSet<(String, &str)> =
        depth1.failed.iter().map(|(u, e)| (u.path().to_string(), e.code())).collect();
    assert!(failed.contains(&("/private/secret".into(), "robots_disallowed")), "{failed:?}");
    assert!(failed.contains(&("/bot-blocked".into(), "robots_disallowed")), "{failed:?}");
    assert!(failed.contains(&("/redirect-ten".into(), "blocked_address")), "{failed:?}");
    assert!(failed.contains(&("/missing".into(), "http_status")), "{failed:?}");
    let hits = site.hit_paths();
    assert!(!hits.contains("/offsite") && !hits.contains("/private/secret"), "{hits:?}");
    assert_eq!(
        site.hits.lock().unwrap().iter().filter(|(p, _)| p == "/a").count(),
        1,
        "/a and /a#section are one URL"
    );

    let depth2 = crawl(&client, &[&start], &limits(2)).await.unwrap();
    assert!(paths(&depth2).contains("/a/deeper") && !paths(&depth2).contains("/a/deeper/deepest"));
    let depth3 = crawl(&client, &[&start], &limits(3)).await.unwrap();
    assert!(paths(&depth3).contains("/a/deeper/deepest"));
}

#[tokio::test]
async fn a_crawl_stops_at_its_page_and_byte_budgets() {
    let site = spawn_site().await;
    let client = GuardedClient::new(local_only()).unwrap();
    let start = site.url("/");
    let report = crawl(
        &client,
        &[&start],
        &CrawlLimits { max_depth: 3, max_pages: 2, max_bytes: 10 * 1024 * 1024 },
    )
    .await
    .unwrap();
    assert_eq!(report.pages.len(), 2);
    assert!(report.truncated);
    let home_len = client.get(&start).await.unwrap().bytes.len() as u64;
    let budget = home_len + 100;
    let report =
        crawl(&client, &[&start], &CrawlLimits { max_depth: 3, max_pages: 50, max_bytes: budget })
            .await
            .unwrap();
    assert!(report.bytes_fetched <= budget, "{} > {budget}", report.bytes_fetched);
    assert_eq!(paths(&report), BTreeSet::from(["/".to_string()]));
    assert!(
        report.failed.iter().any(|(_, e)| matches!(e, FetchError::TooLarge { .. }))
            || report.truncated
    );
}

#[tokio::test]
async fn crawled_pages_carry_title_main_content_and_change_validators() {
    let site = spawn_site().await;
    let client = GuardedClient::new(local_only()).unwrap();
    let report =
        crawl(&client, &[&site.url("/")], &CrawlLimits { max_depth: 1, ..Default::default() })
            .await
            .unwrap();
    let b = report.pages.iter().find(|p| p.url.path() == "/b").expect("page b crawled");
    assert_eq!(b.title.as_deref(), Some("Page B"));
    assert_eq!(b.etag.as_deref(), Some("\"v1\""));
    assert_eq!(b.last_modified.as_deref(), Some("Wed, 21 Oct 2015 07:28:00 GMT"));
    assert_eq!(b.content_hash, hex::encode(Sha256::digest(&b.bytes)));
    let text = &b.extracted.as_ref().expect("HTML is extracted").markdown;
    assert!(text.contains("B-CONTENT"), "{text}");
    assert!(
        !text.contains("NAVIGATION-CHROME") && !text.contains("FOOTER-CHROME"),
        "page chrome removed: {text}"
    );
    let unchanged = refetch(
        &client,
        &site.url("/b"),
        &Conditional { etag: b.etag.clone(), last_modified: None },
    )
    .await
    .unwrap();
    assert!(unchanged.is_none(), "304 means unchanged");
    let changed = refetch(
        &client,
        &site.url("/a"),
        &Conditional { etag: Some("\"old\"".into()), last_modified: None },
    )
    .await
    .unwrap();
    assert!(changed.is_some());
}
