//! Security headers on every answer: no framing (clickjacking), no content sniffing, no
//! referrer sent to other sites, and a Content-Security-Policy that lets only our own
//! scripts run (the pages' inline hydration scripts by their per-request nonce, the
//! WASM by 'wasm-unsafe-eval') and lets nothing a workflow produced run at all.

use axum::http::{header, HeaderValue};
use axum::response::Response;

/// The policy of everything but a page (JSON, files, the Gantt SVG sets its own).
const DEFAULT_POLICY: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
     object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The policy of a page, whose inline scripts carry `nonce`. It may embed our own
/// documents (the Gantt chart's SVG is an `<object>`), which run no script themselves.
pub fn page_policy(nonce: &str) -> String {
    format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
         style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
         object-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
}

pub async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers
        .entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(DEFAULT_POLICY));
    // Framed by no one, unless the answer says otherwise (the Gantt SVG, in our pages).
    headers
        .entry(header::X_FRAME_OPTIONS)
        .or_insert(HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    response
}
