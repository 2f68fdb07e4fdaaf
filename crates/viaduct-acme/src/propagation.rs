//! DNS-01 propagation check: before asking the CA to validate, wait until the TXT record is visible through the
//! resolvers (`dnsChallenge.resolvers`, else the system's from `/etc/resolv.conf`), as lego does before validation.
//! The query is a plain DNS TXT lookup over UDP.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::UdpSocket;

/// lego's default propagation timeout and polling interval.
const PROPAGATION_TIMEOUT: Duration = Duration::from_secs(60);
const POLLING_INTERVAL: Duration = Duration::from_secs(2);
const QUERY_TIMEOUT: Duration = Duration::from_secs(3);
const TYPE_TXT: u16 = 16;

/// Waits until every resolver answers `value` among the TXT records of `fqdn`; the error says which resolver did not.
pub async fn wait_for_txt(fqdn: &str, value: &str, resolvers: &[String]) -> Result<(), String> {
    let servers = servers(resolvers);
    if servers.is_empty() {
        return Err(
            "no DNS resolver to check propagation with (set dnsChallenge.resolvers)".into(),
        );
    }
    let deadline = tokio::time::Instant::now() + PROPAGATION_TIMEOUT;
    loop {
        let mut missing = None;
        for server in &servers {
            match query_txt(*server, fqdn).await {
                Ok(values) if values.iter().any(|v| v == value) => {}
                Ok(_) => missing = Some(format!("{server} does not answer the TXT record yet")),
                Err(e) => missing = Some(format!("{server}: {e}")),
            }
        }
        let Some(reason) = missing else {
            return Ok(());
        };
        if tokio::time::Instant::now() + POLLING_INTERVAL > deadline {
            return Err(format!(
                "{fqdn} did not propagate within {PROPAGATION_TIMEOUT:?}: {reason}"
            ));
        }
        tokio::time::sleep(POLLING_INTERVAL).await;
    }
}

/// `host[:port]` entries (port 53 by default); the system's name servers when none are given.
fn servers(resolvers: &[String]) -> Vec<SocketAddr> {
    let configured: Vec<String> = if resolvers.is_empty() {
        std::fs::read_to_string("/etc/resolv.conf")
            .unwrap_or_default()
            .lines()
            .filter_map(|line| line.trim().strip_prefix("nameserver"))
            .map(|rest| rest.trim().to_string())
            .collect()
    } else {
        resolvers.to_vec()
    };
    configured
        .iter()
        .filter_map(|entry| {
            entry.parse::<SocketAddr>().ok().or_else(|| {
                entry
                    .parse::<std::net::IpAddr>()
                    .ok()
                    .map(|ip| SocketAddr::new(ip, 53))
            })
        })
        .collect()
}

/// The TXT strings of `name` as `server` answers them (each record's strings joined).
pub async fn query_txt(server: SocketAddr, name: &str) -> Result<Vec<String>, String> {
    let bind: SocketAddr = if server.is_ipv6() {
        "[::]:0".parse().map_err(|_| "bad address")?
    } else {
        "0.0.0.0:0".parse().map_err(|_| "bad address")?
    };
    let socket = UdpSocket::bind(bind).await.map_err(|e| e.to_string())?;
    let id: u16 = rand_id();
    let query = build_query(id, name)?;
    socket
        .send_to(&query, server)
        .await
        .map_err(|e| e.to_string())?;
    let mut buffer = vec![0u8; 4096];
    let deadline = tokio::time::Instant::now() + QUERY_TIMEOUT;
    loop {
        let received = tokio::time::timeout_at(deadline, socket.recv_from(&mut buffer))
            .await
            .map_err(|_| "no answer".to_string())?
            .map_err(|e| e.to_string())?;
        let (length, from) = received;
        if from != server {
            continue;
        }
        if let Some(values) = parse_txt_answer(id, &buffer[..length])? {
            return Ok(values);
        }
    }
}

fn rand_id() -> u16 {
    let mut bytes = [0u8; 2];
    // A predictable ID only risks a spoofed answer making the CA's validation fail, which it would report.
    let _ = getrandom::fill(&mut bytes);
    u16::from_be_bytes(bytes)
}

fn build_query(id: u16, name: &str) -> Result<Vec<u8>, String> {
    let mut query = Vec::with_capacity(64);
    query.extend_from_slice(&id.to_be_bytes());
    query.extend_from_slice(&[0x01, 0x00]); // recursion desired
    query.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]); // one question
    for label in name.trim_end_matches('.').split('.') {
        let length = u8::try_from(label.len())
            .ok()
            .filter(|l| (1..64).contains(l))
            .ok_or_else(|| format!("invalid DNS name {name:?}"))?;
        query.push(length);
        query.extend_from_slice(label.as_bytes());
    }
    query.push(0);
    query.extend_from_slice(&TYPE_TXT.to_be_bytes());
    query.extend_from_slice(&[0, 1]); // class IN
    Ok(query)
}

/// `None` for a datagram that is not the answer to query `id`.
fn parse_txt_answer(id: u16, message: &[u8]) -> Result<Option<Vec<String>>, String> {
    let truncated = || "truncated DNS answer".to_string();
    if message.len() < 12
        || u16::from_be_bytes([message[0], message[1]]) != id
        || message[2] & 0x80 == 0
    {
        return Ok(None);
    }
    let rcode = message[3] & 0x0f;
    // NXDOMAIN just means "not there yet".
    if rcode == 3 {
        return Ok(Some(Vec::new()));
    }
    if rcode != 0 {
        return Err(format!("DNS error code {rcode}"));
    }
    let questions = u16::from_be_bytes([message[4], message[5]]);
    let answers = u16::from_be_bytes([message[6], message[7]]);
    let mut at = 12;
    for _ in 0..questions {
        at = skip_name(message, at).ok_or_else(truncated)? + 4;
    }
    let mut values = Vec::new();
    for _ in 0..answers {
        at = skip_name(message, at).ok_or_else(truncated)?;
        let header = message.get(at..at + 10).ok_or_else(truncated)?;
        let kind = u16::from_be_bytes([header[0], header[1]]);
        let length = usize::from(u16::from_be_bytes([header[8], header[9]]));
        at += 10;
        let data = message.get(at..at + length).ok_or_else(truncated)?;
        at += length;
        if kind != TYPE_TXT {
            continue;
        }
        let mut text = Vec::new();
        let mut i = 0;
        while i < data.len() {
            let piece = usize::from(data[i]);
            text.extend_from_slice(data.get(i + 1..i + 1 + piece).ok_or_else(truncated)?);
            i += 1 + piece;
        }
        values.push(String::from_utf8_lossy(&text).into_owned());
    }
    Ok(Some(values))
}

/// The offset after the (possibly compressed) name at `at`.
fn skip_name(message: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let length = *message.get(at)?;
        if length == 0 {
            return Some(at + 1);
        }
        if length & 0xc0 == 0xc0 {
            return Some(at + 2);
        }
        at += 1 + usize::from(length);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn an_answer_with_a_compressed_name_and_split_strings_is_read() {
        let query = build_query(0x1234, "_acme-challenge.example.com.").unwrap();
        let mut answer = query.clone();
        answer[2] = 0x81; // response, recursion desired
        answer[3] = 0x80;
        answer[7] = 2; // two answers
        for (strings, _) in [(vec!["abc", "def"], ()), (vec!["other"], ())] {
            answer.extend_from_slice(&[0xc0, 12]); // the question's name
            answer.extend_from_slice(&TYPE_TXT.to_be_bytes());
            answer.extend_from_slice(&[0, 1, 0, 0, 0, 60]);
            let data: Vec<u8> = strings
                .iter()
                .flat_map(|s| std::iter::once(s.len() as u8).chain(s.bytes()))
                .collect();
            answer.extend_from_slice(&(data.len() as u16).to_be_bytes());
            answer.extend_from_slice(&data);
        }
        assert_eq!(
            parse_txt_answer(0x1234, &answer).unwrap().unwrap(),
            ["abcdef", "other"]
        );
        assert_eq!(
            parse_txt_answer(0x9999, &answer).unwrap(),
            None,
            "another query's answer"
        );
        let mut nxdomain = query;
        nxdomain[2] = 0x81;
        nxdomain[3] = 0x83;
        assert_eq!(
            parse_txt_answer(0x1234, &nxdomain).unwrap().unwrap(),
            Vec::<String>::new()
        );
    }

    #[test]
    fn resolvers_take_an_optional_port() {
        let servers = servers(&[
            "127.0.0.1:8053".into(),
            "::1".into(),
            "not an address".into(),
        ]);
        assert_eq!(
            servers,
            [
                "127.0.0.1:8053".parse::<SocketAddr>().unwrap(),
                "[::1]:53".parse().unwrap()
            ]
        );
    }
}
