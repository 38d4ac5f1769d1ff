//! A polite same-site crawler: breadth-first from the start URLs, following links found in
//! HTML up to a depth, deduplicating normalised URLs, honouring robots.txt, and stopping at a
//! page or byte budget. Each page comes back with validators and a content hash (for re-syncs)
//! and, for documents we can read, the extracted main content.

use std::collections::{HashSet, VecDeque};
use std::time::Duration;

use bytes::Bytes;
use sha2::{Digest, Sha256};
use url::Url;

use crate::FetchError;
use crate::client::{Conditional, GuardedClient};
use crate::robots::RobotsCache;

/// Longest pause between requests we accept from a robots.txt `Crawl-delay`.
const MAX_CRAWL_DELAY_SECS: f32 = 5.0;

/// Budget of one crawl.
#[derive(Debug, Clone)]
pub struct CrawlLimits {
    /// Link hops followed from a start URL: 0 = only the start pages, 1 = also the pages they
    /// link to, up to 3.
    pub max_depth: u8,
    /// Most pages fetched successfully.
    pub max_pages: usize,
    /// Most body bytes fetched in total.
    pub max_bytes: u64,
}

impl Default for CrawlLimits {
    fn default() -> Self {
        Self { max_depth: 2, max_pages: 100, max_bytes: 50 * 1024 * 1024 }
    }
}

/// One crawled page.
#[derive(Debug, Clone)]
pub struct CrawledPage {
    /// The normalised URL that was requested (what links pointed to).
    pub url: Url,
    /// Where the request ended after redirects.
    pub final_url: Url,
    /// Link hops from the start URL.
    pub depth: u8,
    /// HTTP status.
    pub status: u16,
    /// Title from the extracted document (`<title>`/Readability, PDF metadata…).
    pub title: Option<String>,
    /// `Content-Type` header.
    pub content_type: Option<String>,
    /// `ETag` header.
    pub etag: Option<String>,
    /// `Last-Modified` header.
    pub last_modified: Option<String>,
    /// SHA-256 of the body, hex; compare on re-sync when the server gives no validators.
    pub content_hash: String,
    /// The raw body.
    pub bytes: Bytes,
    /// The main content as extracted by the `extract` crate, when the type is supported.
    pub extracted: Option<extract::Extracted>,
    /// Why extraction failed or was not attempted, when `extracted` is `None`.
    pub extract_error: Option<String>,
}

/// Everything a crawl produced.
#[derive(Debug, Default)]
pub struct CrawlReport {
    /// Pages fetched, in crawl order.
    pub pages: Vec<CrawledPage>,
    /// URLs that could not be fetched (blocked, disallowed, 404, too large…), with the reason.
    pub failed: Vec<(Url, FetchError)>,
    /// Total body bytes fetched.
    pub bytes_fetched: u64,
    /// True when the page or byte budget stopped the crawl before the frontier was empty.
    pub truncated: bool,
}

/// Crawls from `start_urls`, staying on each start URL's site (same registrable domain, or
/// the same host for IP addresses and single-label names). Start URLs that fail the guard are
/// reported in `failed`; an error is returned only when no start URL is usable.
pub async fn crawl(
    client: &GuardedClient,
    start_urls: &[&str],
    limits: &CrawlLimits,
) -> Result<CrawlReport, FetchError> {
    let robots = RobotsCache::new();
    let max_depth = limits.max_depth.min(3);
    let mut report = CrawlReport::default();
    let mut seen: HashSet<String> = HashSet::new();
    let mut frontier: VecDeque<(Url, u8)> = VecDeque::new();
    let mut sites: HashSet<String> = HashSet::new();
    let mut first_error = None;
    for raw in start_urls {
        match client.check_url(raw) {
            Ok(url) => {
                let url = normalise(url);
                sites.insert(site_of(&url));
                if seen.insert(url.to_string()) {
                    frontier.push_back((url, 0));
                }
            }
            Err(e) => {
                first_error.get_or_insert(e.clone());
                if let Ok(url) = Url::parse(raw) {
                    report.failed.push((url, e));
                }
            }
        }
    }
    if frontier.is_empty() {
        return Err(first_error.unwrap_or_else(|| FetchError::InvalidUrl(start_urls.join(" "))));
    }
    let per_page_cap = client.config().max_response_bytes;
    while let Some((url, depth)) = frontier.pop_front() {
        if report.pages.len() >= limits.max_pages || report.bytes_fetched >= limits.max_bytes {
            report.truncated = true;
            break;
        }
        if client.config().respect_robots {
            match robots.allowed(client, &url).await {
                Ok(true) => {}
                Ok(false) => {
                    report
                        .failed
                        .push((url.clone(), FetchError::RobotsDisallowed(url.to_string())));
                    continue;
                }
                Err(e) => {
                    report.failed.push((url, e));
                    continue;
                }
            }
        }
        // Honour a Crawl-delay, capped so one site cannot stall ingestion for long.
        if !report.pages.is_empty()
            && let Some(delay) = robots.crawl_delay(&url).await
        {
            tokio::time::sleep(Duration::from_secs_f32(delay.clamp(0.0, MAX_CRAWL_DELAY_SECS)))
                .await;
        }
        let remaining = limits.max_bytes - report.bytes_fetched;
        let page = match client.get_raw(&url, per_page_cap.min(remaining)).await {
            Ok(page) => page,
            Err(e) => {
                report.failed.push((url, e));
                continue;
            }
        };
        report.bytes_fetched += page.bytes.len() as u64;
        // A redirect off the site is fetched (the guard allowed it) but not followed further.
        let on_site = sites.contains(&site_of(&page.final_url));
        let is_html = page.content_type.as_deref().is_none_or(|ct| ct.contains("html"));
        if is_html && on_site && depth < max_depth {
            for link in links(&page.bytes, &page.final_url) {
                if sites.contains(&site_of(&link)) && seen.insert(link.to_string()) {
                    frontier.push_back((link, depth + 1));
                }
            }
        }
        let (extracted, extract_error) = extract_page(&page).await;
        report.pages.push(CrawledPage {
            url,
            final_url: page.final_url,
            depth,
            status: page.status,
            title: extracted.as_ref().and_then(|d| d.title.clone()),
            content_type: page.content_type,
            etag: page.etag,
            last_modified: page.last_modified,
            content_hash: hex::encode(Sha256::digest(&page.bytes)),
            bytes: page.bytes,
            extracted,
            extract_error,
        });
    }
    Ok(report)
}

/// Re-fetches one page with validators from an earlier crawl; `Ok(None)` means unchanged (304).
pub async fn refetch(
    client: &GuardedClient,
    url: &str,
    previous: &Conditional,
) -> Result<Option<crate::FetchedPage>, FetchError> {
    let page = client.get_with(url, previous, &RobotsCache::new()).await?;
    Ok((page.status != 304).then_some(page))
}

async fn extract_page(page: &crate::FetchedPage) -> (Option<extract::Extracted>, Option<String>) {
    match page.extract(extract::Limits::default()).await {
        Ok(doc) => (Some(doc), None),
        Err(e) => (None, Some(e.to_string())),
    }
}

/// Strips the fragment and an empty query; `url` already lowercases the host and drops
/// default ports.
pub fn normalise(mut url: Url) -> Url {
    url.set_fragment(None);
    if url.query() == Some("") {
        url.set_query(None);
    }
    url
}

/// The site a URL belongs to: its registrable domain, or its host when there is none.
fn site_of(url: &Url) -> String {
    let host = url.host_str().unwrap_or("").to_ascii_lowercase();
    match url.host() {
        Some(url::Host::Domain(_)) => psl::domain_str(&host).map(str::to_string).unwrap_or(host),
        _ => host,
    }
}

/// Absolute http(s) links of an HTML page (honouring `<base href>`), normalised; `nofollow`
/// links are skipped.
fn links(html: &[u8], page_url: &Url) -> Vec<Url> {
    let text = String::from_utf8_lossy(html);
    let doc = dom_query::Document::from(text.as_ref());
    let base = doc
        .select("base[href]")
        .attr("href")
        .and_then(|b| page_url.join(&b).ok())
        .unwrap_or_else(|| page_url.clone());
    let mut out = Vec::new();
    for a in doc.select("a[href]").iter() {
        if a.attr("rel")
            .is_some_and(|r| r.split_whitespace().any(|r| r.eq_ignore_ascii_case("nofollow")))
        {
            continue;
        }
        let Some(href) = a.attr("href") else { continue };
        if let Ok(url) = base.join(href.trim())
            && matches!(url.scheme(), "http" | "https")
        {
            out.push(normalise(url));
        }
    }
    out
}
