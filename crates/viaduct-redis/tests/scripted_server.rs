//! The client against a scripted server: what a broken or silent Redis looks like.

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use viaduct_redis::{RedisClient, RedisError, RedisSettings};

/// A server that answers each command it reads with the next of `answers`, then stays silent
/// with the connection open. Returns its address.
async fn scripted(answers: Vec<&'static [u8]>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut buffer = [0u8; 4096];
        for answer in answers {
            if stream.read(&mut buffer).await.unwrap_or(0) == 0 {
                return;
            }
            stream.write_all(answer).await.unwrap();
        }
        // Silent, but open, until the client goes away.
        while stream.read(&mut buffer).await.unwrap_or(0) > 0 {}
    });
    address
}

fn client(address: String) -> RedisClient {
    let mut settings = RedisSettings::new(vec![address]);
    settings.read_timeout = Duration::from_millis(300);
    RedisClient::new(settings)
}

#[tokio::test]
async fn a_silent_subscription_is_declared_gone() {
    let address = scripted(vec![b"*3\r\n$10\r\npsubscribe\r\n$1\r\np\r\n:1\r\n"]).await;
    let mut subscription = client(address)
        .psubscribe(&["p"])
        .await
        .unwrap()
        .with_keepalive(Duration::from_millis(100));
    let outcome = tokio::time::timeout(Duration::from_secs(5), subscription.next_message())
        .await
        .expect("the dead connection is noticed");
    assert!(
        matches!(outcome, Err(RedisError::Timeout(_))),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn oversized_or_malformed_answers_are_errors() {
    for answer in [
        &b"$9999999999\r\n"[..],
        b"*99999999\r\n",
        b"!nonsense\r\n",
        b"*2\r\n$1\r\n0\r\n",
    ] {
        let address = scripted(vec![answer]).await;
        let outcome = client(address).call(&["GET", "k"]).await;
        assert!(
            outcome.is_err(),
            "{:?}: {outcome:?}",
            String::from_utf8_lossy(answer)
        );
    }
}

#[tokio::test]
async fn scan_pages_until_the_cursor_returns_to_zero() {
    let address = scripted(vec![
        b"*2\r\n$1\r\n7\r\n*2\r\n$1\r\nb\r\n$1\r\na\r\n",
        b"*2\r\n$1\r\n0\r\n*2\r\n$1\r\nc\r\n$1\r\na\r\n",
    ])
    .await;
    let keys = client(address).scan("*", 10).await.unwrap();
    assert_eq!(keys, ["a", "b", "c"]);
}

#[tokio::test]
async fn a_server_error_keeps_the_connection_usable() {
    let address = scripted(vec![b"-ERR unknown command\r\n", b"+PONG\r\n"]).await;
    let client = client(address);
    assert!(matches!(
        client.call(&["NOPE"]).await,
        Err(RedisError::Server(m)) if m.starts_with("ERR")
    ));
    // Same (only) connection, reused from the pool.
    assert_eq!(
        client.call(&["PING"]).await.unwrap(),
        viaduct_redis::Reply::Simple("PONG".into())
    );
}
