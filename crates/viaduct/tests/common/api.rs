//! What the API tests share: a static configuration serving the API on the `traefik` entry
//! point (`api.insecure`), and reading the API.

use serde_json::Value;
use viaduct_testkit::{HttpClient, ProxyUnderTest, Reply};

use super::{static_config, ROUTING_TIMEOUT, TRAEFIK_ENTRY_POINT};

/// [`static_config`] with the entry point `traefik` (the API's, with `api.insecure`) and
/// `entry_points` (YAML under `entryPoints:`), and more `api` settings (YAML under `api:`).
pub fn api_static_config(api: &str, entry_points: &str) -> String {
    let entry_points = format!("{TRAEFIK_ENTRY_POINT}\n{entry_points}");
    format!(
        "{}api:\n  insecure: true\n{api}\n",
        static_config(&entry_points)
    )
}

/// GET `path` on the `traefik` entry point.
pub async fn api_get(proxy: &ProxyUnderTest, client: &HttpClient, path: &str) -> Reply {
    let url = format!("{}{path}", proxy.url("traefik"));
    client.get(&url).await.unwrap()
}

pub fn body_json(reply: &Reply) -> Value {
    serde_json::from_slice(&reply.body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", reply.text()))
}

/// Polls GET `path` on the API until `ready` accepts the answer (bounded); `what` names the
/// wait in the failure, which shows the proxy's logs.
pub async fn wait_api(
    proxy: &ProxyUnderTest,
    client: &HttpClient,
    what: &str,
    path: &str,
    ready: impl Fn(&Reply) -> Result<(), String>,
) {
    let result = proxy
        .wait_for(what, ROUTING_TIMEOUT, || async {
            ready(&api_get(proxy, client, path).await).map(Some)
        })
        .await;
    if let Err(e) = result {
        panic!("{e}\nlogs:\n{}", proxy.logs());
    }
}

/// Waits until the API shows the HTTP router `name` (qualified) enabled, from `provider`.
pub async fn wait_router_enabled(
    proxy: &ProxyUnderTest,
    client: &HttpClient,
    name: &str,
    provider: &str,
) {
    let path = format!("/api/http/routers/{name}");
    wait_api(
        proxy,
        client,
        &format!("{name} in the API"),
        &path,
        |reply| {
            if reply.status != 200 {
                return Err(format!("status {}", reply.status));
            }
            let router = body_json(reply);
            match (router["provider"].as_str(), router["status"].as_str()) {
                (Some(p), Some("enabled")) if p == provider => Ok(()),
                _ => Err(format!("{router}")),
            }
        },
    )
    .await;
}

/// Asserts that GET `path` answers the same on both proxies: status, `X-Next-Page`, and the
/// JSON once `normalise`d (what may differ between correct answers is normalised away).
/// Returns both answers.
pub async fn assert_same_json(
    (ours, theirs): (&ProxyUnderTest, &ProxyUnderTest),
    client: &HttpClient,
    path: &str,
    normalise: impl Fn(Value, &ProxyUnderTest) -> Value,
) -> (Reply, Reply) {
    let mine = api_get(ours, client, path).await;
    let reference = api_get(theirs, client, path).await;
    assert_eq!(mine.status, reference.status, "{path}: status");
    assert_eq!(
        mine.header("x-next-page"),
        reference.header("x-next-page"),
        "{path}: X-Next-Page"
    );
    let mine_json = normalise(body_json(&mine), ours);
    let reference_json = normalise(body_json(&reference), theirs);
    assert_eq!(
        mine_json,
        reference_json,
        "{path}:\nviaduct: {}\ntraefik: {}",
        serde_json::to_string_pretty(&mine_json).unwrap(),
        serde_json::to_string_pretty(&reference_json).unwrap()
    );
    (mine, reference)
}
