//! `GET /`: the browser playground for `Accept: text/html`, the unchanged API answer for
//! everyone else.

use reqwest::header::{ACCEPT, IF_NONE_MATCH};
use reqwest::StatusCode;

use crate::support::{assert_error, corpus, TestServer};

const CHROME_ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,\
                             image/avif,image/webp,image/apng,*/*;q=0.8";

async fn browser_get(server: &TestServer) -> reqwest::Response {
    server
        .client
        .get(server.url("/"))
        .header(ACCEPT, CHROME_ACCEPT)
        .send()
        .await
        .expect("GET /")
}

fn vary(resp: &reqwest::Response) -> Vec<String> {
    resp.headers()
        .get_all("vary")
        .iter()
        .flat_map(|v| v.to_str().unwrap().split(','))
        .map(|v| v.trim().to_ascii_lowercase())
        .collect()
}

#[tokio::test]
async fn a_browser_gets_the_playground_page() {
    let server = TestServer::start().await;
    let resp = browser_get(&server).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()["content-type"],
        "text/html; charset=utf-8",
        "{:?}",
        resp.headers()
    );
    assert!(
        vary(&resp).contains(&"accept".to_owned()),
        "{:?}",
        vary(&resp)
    );
    assert_eq!(resp.headers()["cache-control"], "no-cache");
    assert!(resp.headers().contains_key("x-request-id"));
    let etag = resp.headers()["etag"].to_str().unwrap().to_owned();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
    let page = resp.text().await.unwrap();
    assert!(page.starts_with("<!doctype html>"));
    assert!(page.contains("<title>progimage playground</title>"));
    // What the page drives: the upload form field, variants, ASCII art.
    for needle in [
        "type=\"file\"",
        "append(\"image\"",
        "/image/",
        "\"txt\"",
        "?w=",
    ] {
        assert!(page.contains(needle), "page lacks {needle}");
    }
    assert!(page.len() < 25 * 1024, "page is {} bytes", page.len());

    // Revalidation: the same ETag gives 304 without a body.
    let resp = server
        .client
        .get(server.url("/"))
        .header(ACCEPT, CHROME_ACCEPT)
        .header(IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(resp.headers()["etag"], etag.as_str());
    assert!(resp.bytes().await.unwrap().is_empty());

    // HEAD answers the same headers.
    let resp = server
        .client
        .head(server.url("/"))
        .header(ACCEPT, "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["etag"], etag.as_str());
}

#[tokio::test]
async fn the_page_is_served_with_a_policy_that_forbids_external_loads() {
    let server = TestServer::start().await;
    let resp = browser_get(&server).await;
    let csp = resp.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.starts_with("default-src 'self';"), "{csp}");
    for directive in csp.split(';').map(str::trim) {
        assert!(
            !directive.contains("http:") && !directive.contains("https:"),
            "{csp}"
        );
        assert!(!directive.contains('*'), "{csp}");
    }
    assert!(csp.contains("script-src 'sha256-"), "{csp}");
    assert!(csp.contains("style-src 'sha256-"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(resp.headers()["x-content-type-options"], "nosniff");

    let page = resp.text().await.unwrap();
    for external in [
        "http://",
        "https://",
        "//cdn",
        "src=\"//",
        "href=\"//",
        "@import",
    ] {
        assert!(
            !page.contains(external),
            "the page references {external}: it must be self-contained"
        );
    }
    // Only the one inline script and style the policy's hashes cover; no inline handlers.
    assert_eq!(page.matches("<script").count(), 1);
    assert_eq!(page.matches("<style").count(), 1);
    assert!(!page.contains(" onclick=") && !page.contains(" onload="));
    assert!(!page.contains(" style=\""));
}

#[tokio::test]
async fn api_clients_get_the_same_answer_as_before() {
    let server = TestServer::start().await;
    for accept in [None, Some("*/*"), Some("application/json")] {
        let mut req = server.client.get(server.url("/"));
        if let Some(accept) = accept {
            req = req.header(ACCEPT, accept);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.headers()["allow"], "POST", "{accept:?}");
        assert!(vary(&resp).contains(&"accept".to_owned()), "{accept:?}");
        assert!(!resp.headers().contains_key("content-security-policy"));
        assert_error(resp, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
    }
}

#[tokio::test]
async fn legacy_post_root_still_makes_ascii_art() {
    let server = TestServer::start().await;
    let part = reqwest::multipart::Part::bytes(corpus("png-palette-8bit.png")).file_name("a.png");
    let form = reqwest::multipart::Form::new()
        .part("image", part)
        .text("output", "raw");
    let resp = server
        .client
        .post(server.url("/"))
        .header(ACCEPT, CHROME_ACCEPT)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let text = resp.text().await.unwrap();
    assert!(!text.contains("<html"), "POST / must not serve the page");
    assert!(text.lines().count() > 1, "{text}");
}
