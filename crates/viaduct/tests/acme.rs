//! Automatic certificates over ACME against Pebble, Let's Encrypt's test CA: HTTP-01, TLS-ALPN-01 and DNS-01 (the
//! `exec` provider publishing through Pebble's fake DNS), `tls.domains` with SANs, a wildcard, renewal of a
//! short-lived certificate, Pebble's bad-nonce rejections, external account binding, failures, `preferredChain`
//! among Pebble's alternate chains.

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report

mod common;
#[path = "acme/pebble.rs"]
mod pebble;
#[path = "acme/support.rs"]
mod support;

use std::time::Duration;

use common::echo_service;
use pebble::{served_chain, wait_certificate, Pebble, PebbleOptions};
use support::{
    dynamic_config, resolver_routers, start_proxy, start_proxy_under_test, static_config, stop,
    stored, Setup, HTTP01, ISSUE_TIMEOUT,
};
use viaduct_testkit::EchoBackend;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs pebble"]
async fn tls_alpn01_issues_for_tls_domains_with_sans_and_an_rsa_key() {
    let setup = Setup::start(PebbleOptions::default()).await;
    let acme = "      keyType: RSA2048\n      tlsChallenge: {}";
    let dynamic = dynamic_config(
        "Host(`alpn.test.example`) || Host(`www.alpn.test.example`)",
        "{certResolver: le, domains: [{main: alpn.test.example, sans: [www.alpn.test.example]}]}",
    );
    let proxy = setup.start_proxy(acme, &dynamic).await;
    let (leaf, _) = setup
        .wait_certificate("alpn.test.example", ISSUE_TIMEOUT)
        .await;
    let (san_leaf, status) = setup
        .wait_certificate("www.alpn.test.example", ISSUE_TIMEOUT)
        .await;
    assert_eq!(
        leaf, san_leaf,
        "one certificate serves the main domain and its SAN"
    );
    assert!(status.contains(" 200"), "{status}");
    let (_, parsed) = x509_parser::parse_x509_certificate(leaf.as_ref()).unwrap();
    assert_eq!(
        parsed.public_key().algorithm.algorithm,
        x509_parser::oid_registry::OID_PKCS1_RSAENCRYPTION
    );
    let json = stored(&setup.storage);
    assert_eq!(
        json["le"]["Certificates"][0]["domain"]["sans"][0],
        "www.alpn.test.example"
    );
    stop(proxy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs pebble"]
async fn dns01_exec_provider_issues_a_wildcard() {
    let setup = Setup::start(PebbleOptions::default()).await;
    // lego's exec provider reads EXEC_PATH from the environment, which the proxy inherits.
    std::env::set_var("EXEC_PATH", setup.pebble.dns_hook());
    // Propagation is checked against Pebble's fake DNS before validation is asked for.
    let acme = format!(
        "      keyType: EC384\n      dnsChallenge:\n        provider: exec\n        resolvers: [\"127.0.0.1:{}\"]",
        setup.pebble.dns_port
    );
    let dynamic = dynamic_config(
        "HostRegexp(`^.+\\\\.wild\\\\.test\\\\.example$`)",
        "{certResolver: le, domains: [{main: \"*.wild.test.example\"}]}",
    );
    let proxy = setup.start_proxy(&acme, &dynamic).await;
    let (_, status) = setup
        .wait_certificate("a.wild.test.example", ISSUE_TIMEOUT)
        .await;
    assert!(status.contains(" 200"), "{status}");
    setup
        .wait_certificate("b.wild.test.example", Duration::from_secs(5))
        .await;
    stop(proxy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs pebble"]
async fn short_lived_certificate_is_renewed() {
    // 10-minute certificates with `certificatesDuration: 1` (hours): renewed within 20 minutes of expiry, so at once.
    let setup = Setup::start(PebbleOptions {
        validity: Some(600),
        ..PebbleOptions::default()
    })
    .await;
    let acme =
        "      keyType: EC256\n      certificatesDuration: 1\n      httpChallenge:\n        entryPoint: web";
    let static_yaml = setup.static_config(acme);
    let dynamic = dynamic_config("Host(`renew.test.example`)", "{certResolver: le}");
    let proxy = start_proxy(&setup.pebble, &static_yaml, &dynamic, &setup.echo).await;
    let root = setup.root();
    let (first, _) = setup
        .wait_certificate("renew.test.example", ISSUE_TIMEOUT)
        .await;
    stop(proxy).await;

    // At start the renewal check runs first: the stored certificate serves until its replacement is in.
    let proxy = start_proxy(&setup.pebble, &static_yaml, &dynamic, &setup.echo).await;
    let (served, _) = setup
        .wait_certificate("renew.test.example", Duration::from_secs(5))
        .await;
    let renewed = viaduct_testkit::wait_until("the renewed certificate", ISSUE_TIMEOUT, || {
        let root = root.clone();
        let first = first.clone();
        async move {
            match pebble::verified_get(setup.pebble.tls_port, "renew.test.example", &root).await {
                Ok((leaf, _)) if leaf != first => Ok(Some(leaf)),
                Ok(_) => Err("still the first certificate".to_string()),
                Err(e) => Err(e),
            }
        }
    })
    .await
    .unwrap();
    assert!(served == first || served == renewed);
    assert!(proxy.logs().contains("renewing certificate"));
    let json = stored(&setup.storage);
    assert_eq!(
        json["le"]["Certificates"].as_array().unwrap().len(),
        1,
        "replaced, not added"
    );
    stop(proxy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs pebble"]
async fn bad_nonce_rejections_are_retried() {
    // Pebble's own default: 5% of nonces are rejected, and clients must retry.
    let setup = Setup::start(PebbleOptions {
        nonce_reject: 5,
        ..PebbleOptions::default()
    })
    .await;
    let acme = HTTP01;
    let dynamic = &resolver_routers(&["one.test.example", "two.test.example"]);
    let proxy = setup.start_proxy(acme, dynamic).await;
    setup
        .wait_certificate("one.test.example", ISSUE_TIMEOUT)
        .await;
    setup
        .wait_certificate("two.test.example", ISSUE_TIMEOUT)
        .await;
    stop(proxy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs pebble"]
async fn http01_challenge_is_answered_ahead_of_user_routers() {
    let setup = Setup::start(PebbleOptions::default()).await;
    let acme = HTTP01;
    // A catch-all plain router on `web` at the highest priority would swallow the validation requests.
    let dynamic = concat!(
        r#"
http:
  routers:
    catchall:
      rule: "PathPrefix(`/`)"
      priority: 1000000
      entryPoints: [web]
      service: echo
    app:
      rule: "Host(`first.test.example`)"
      entryPoints: [websecure]
      service: echo
      tls: {certResolver: le}
"#,
        echo_service!()
    );
    let proxy = setup.start_proxy(acme, dynamic).await;
    setup
        .wait_certificate("first.test.example", ISSUE_TIMEOUT)
        .await;
    // An unknown token is a 404 from the challenge handler, not the catch-all router.
    let client = viaduct_testkit::HttpClient::http1();
    let url = format!(
        "http://127.0.0.1:{}/.well-known/acme-challenge/unknown",
        setup.pebble.http_port
    );
    let reply = client.get_host(&url, "first.test.example").await.unwrap();
    assert_eq!(reply.status, 404);
    stop(proxy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs pebble"]
async fn external_account_binding_registers_with_a_ca_that_requires_it() {
    let key = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W";
    let setup = Setup::start(PebbleOptions {
        eab: Some(("kid-1".into(), key.into())),
        ..PebbleOptions::default()
    })
    .await;
    let acme = format!(
        "      keyType: EC256\n      eab:\n        kid: kid-1\n        hmacEncoded: {key}\n      httpChallenge:\n        entryPoint: web"
    );
    let dynamic = dynamic_config("Host(`eab.test.example`)", "{certResolver: le}");
    let proxy = setup.start_proxy(&acme, &dynamic).await;
    setup
        .wait_certificate("eab.test.example", ISSUE_TIMEOUT)
        .await;
    stop(proxy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs pebble"]
async fn a_failed_challenge_is_logged_with_the_domain_and_the_default_certificate_serves() {
    let setup = Setup::start(PebbleOptions::default()).await;
    // HTTP-01 answered on the TLS entry point: Pebble's validation on the plain port gets 404.
    let acme = "      keyType: EC256\n      httpChallenge:\n        entryPoint: websecure";
    let dynamic = dynamic_config("Host(`fail.test.example`)", "{certResolver: le}");
    let proxy = setup.start_proxy(acme, &dynamic).await;
    proxy
        .wait_for_log("cannot obtain a certificate", ISSUE_TIMEOUT)
        .await
        .unwrap();
    let logs = proxy.logs();
    let line = logs
        .lines()
        .find(|line| line.contains("cannot obtain a certificate"))
        .unwrap();
    assert!(line.contains("fail.test.example"), "{line}");
    assert!(line.contains("retry_in") && line.contains("30s"), "{line}");
    assert!(
        line.contains("404") || line.contains("unauthorized"),
        "the CA's reason: {line}"
    );
    // Still served, with the default certificate.
    let root = setup.root();
    let error = pebble::verified_get(setup.pebble.tls_port, "fail.test.example", &root)
        .await
        .unwrap_err();
    assert!(
        error.contains("UnknownIssuer") || error.contains("invalid peer certificate"),
        "{error}"
    );
    stop(proxy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs pebble"]
async fn an_ip_address_host_gets_an_ip_certificate() {
    let setup = Setup::start(PebbleOptions::default()).await;
    let acme = HTTP01;
    let dynamic = dynamic_config("Host(`127.0.0.1`)", "{certResolver: le}");
    let proxy = setup.start_proxy(acme, &dynamic).await;
    // Clients connecting by IP send no SNI: the certificate whose IP SAN is the local address is served.
    let (_, status) = setup.wait_certificate("127.0.0.1", ISSUE_TIMEOUT).await;
    assert!(status.contains(" 200"), "{status}");
    stop(proxy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs pebble"]
async fn preferred_chain_picks_the_alternate_chain_of_the_named_root() {
    // Root 0 issues the default chain, root 1 an alternate one, offered in a `Link: rel="alternate"` header. Traefik
    // passes too (VIADUCT_E2E_PROXY=traefik), including the stored chain.
    let pebble = Pebble::start(PebbleOptions {
        alternate_roots: 1,
        ..PebbleOptions::default()
    })
    .await;
    let echo = EchoBackend::start("echo").await.unwrap();
    let (default_root, alternate_root) = (pebble.root(0), pebble.root(1));
    let (default_name, alternate_name) = (subject_cn(&default_root), subject_cn(&alternate_root));
    assert_ne!(default_name, alternate_name);
    let cases = [
        (
            alternate_name.as_str(),
            &alternate_root,
            "alternate.test.example",
        ),
        ("No Such Root CA", &default_root, "default.test.example"),
    ];
    for (preferred, root, host) in cases {
        let scratch = tempfile::tempdir().unwrap();
        let storage = scratch.path().join("acme.json");
        let acme = format!(
            "      keyType: EC256\n      tlsChallenge: {{}}\n      preferredChain: \"{preferred}\""
        );
        let dynamic = dynamic_config(&format!("Host(`{host}`)"), "{certResolver: le}");
        let proxy = start_proxy_under_test(
            &pebble,
            &static_config(&pebble, &storage, &acme),
            &dynamic,
            &echo,
        )
        .await;
        // Verified against that root alone: the served intermediate is the one it issued.
        wait_certificate(pebble.tls_port, host, root, ISSUE_TIMEOUT).await;
        let chain = served_chain(pebble.tls_port, host, root).await.unwrap();
        assert_eq!(chain.len(), 2, "{preferred}: leaf and intermediate");
        let (_, top) = x509_parser::parse_x509_certificate(chain[1].as_ref()).unwrap();
        let issuer = top.issuer().iter_common_name().next().unwrap();
        assert_eq!(issuer.as_str().unwrap(), subject_cn(root), "{preferred}");
        // What is stored is the chosen chain, so a restart serves it too.
        let stored = stored(&storage);
        let encoded = stored["le"]["Certificates"][0]["certificate"]
            .as_str()
            .unwrap();
        use base64::Engine as _;
        let pem = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap();
        use rustls::pki_types::pem::PemObject;
        let stored_chain: Vec<_> = rustls::pki_types::CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(stored_chain, chain, "{preferred}: stored and served chains");
        stop(proxy).await;
    }
}

fn subject_cn(certificate: &rustls::pki_types::CertificateDer<'_>) -> String {
    let (_, parsed) = x509_parser::parse_x509_certificate(certificate.as_ref()).unwrap();
    let name = parsed.subject().iter_common_name().next().unwrap();
    name.as_str().unwrap().to_string()
}
