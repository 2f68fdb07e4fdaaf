//! `whoami@internal`: the embedded demo service. It answers with a page describing the
//! request, like Traefik's `traefik/whoami`, so a fresh install shows that routing works.

use std::fmt::Write as _;
use std::net::SocketAddr;

use http::header::CONTENT_TYPE;
use http::request::Parts;
use http::{HeaderValue, Response};
use viaduct_upstream::{full_body, Body};

/// `hostname` is the entry point's, resolved once at start.
pub fn answer(
    request: &Parts,
    peer: SocketAddr,
    hostname: &HeaderValue,
    router: &str,
) -> Response<Body> {
    let mut page = String::with_capacity(512);
    let _ = writeln!(
        page,
        "Hostname: {}",
        String::from_utf8_lossy(hostname.as_bytes())
    );
    // Dual-stack listeners see IPv4 clients as `::ffff:a.b.c.d`; show them as IPv4.
    let peer = SocketAddr::new(crate::entrypoint::normalize(peer.ip()), peer.port());
    let _ = writeln!(page, "IP: {}", peer.ip());
    let _ = writeln!(page, "RemoteAddr: {peer}");
    let _ = writeln!(page, "Router: {router}");
    let target = request
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let _ = writeln!(page, "{} {} {:?}", request.method, target, request.version);
    if let Some(authority) = request.uri.authority() {
        let _ = writeln!(page, "Host: {authority}");
    }
    for (name, value) in &request.headers {
        let _ = writeln!(
            page,
            "{}: {}",
            title_case(name.as_str()),
            String::from_utf8_lossy(value.as_bytes())
        );
    }
    page.push_str(
        "\nServed by whoami@internal, Viaduct's built-in demo service.\n\
         To route to your own services, give Viaduct your Traefik configuration: --configFile=traefik.yml\n\
         (or traefik.yml in /etc/traefik/, $XDG_CONFIG_HOME/, $HOME/.config/ or the working directory).\n",
    );
    let mut response = Response::new(full_body(page));
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// `x-forwarded-for` → `X-Forwarded-For`, as Go prints header names.
fn title_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = true;
    for c in name.chars() {
        out.push(if upper { c.to_ascii_uppercase() } else { c });
        upper = c == '-';
    }
    out
}
