//! Who is calling: the client address that every per-address limit and
//! every log line uses. It is the peer's address, or — when the peer is a
//! `--trusted-proxy` — the address that proxy forwarded.
//!
//! Of the forwarded chain, the right-most address that is not itself a
//! trusted proxy is the client: everything left of it was written by the
//! client and may be forged. `X-Forwarded-For` is read when present (nearly
//! every proxy writes it), else `Forwarded: for=`.

use super::{App, Conn};
use ipnet::IpNet;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use warp::http::HeaderMap;
use warp::Filter;

/// The client's address; `None` only where no connection is known (unit
/// setups without the server's accept loop).
pub fn client_ip(
    app: &App,
) -> impl Filter<Extract = (Option<IpAddr>,), Error = Infallible> + Clone {
    let trusted = app.trusted_proxies.clone();
    warp::ext::optional::<Conn>()
        .and(warp::header::headers_cloned())
        .map(move |conn: Option<Conn>, headers: HeaderMap| {
            conn.map(|c| client_address(c.peer.ip(), &trusted, &headers))
        })
}

/// The peer, or the client behind it when the peer is a trusted proxy.
pub fn client_address(peer: IpAddr, trusted: &[IpNet], headers: &HeaderMap) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    let mut client = peer.to_canonical();
    if !is_trusted(&client) {
        return client;
    }
    for hop in forwarded_chain(headers).into_iter().rev() {
        match hop {
            Some(ip) if is_trusted(&ip) => client = ip,
            Some(ip) => return ip,
            // An unknown or obfuscated hop: the last trusted one stands for
            // everything behind it.
            None => return client,
        }
    }
    // Every hop is a trusted proxy: the left-most is the client.
    client
}

/// The forwarded addresses, left (client) to right (nearest proxy); `None`
/// for a hop that names no address (`unknown`, `_hidden`, garbage).
fn forwarded_chain(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let values = |name: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let xff = values("x-forwarded-for");
    if !xff.is_empty() {
        return xff.iter().map(|hop| parse_node(hop)).collect();
    }
    values("forwarded")
        .iter()
        .map(|element| {
            let node = element.split(';').find_map(|pair| {
                let (name, value) = pair.split_once('=')?;
                name.trim()
                    .eq_ignore_ascii_case("for")
                    .then(|| value.trim())
            });
            node.and_then(parse_node)
        })
        .collect()
}

/// An address as proxies write it: `1.2.3.4`, `1.2.3.4:80`, `2001:db8::1`,
/// `[2001:db8::1]:80`, optionally quoted.
fn parse_node(node: &str) -> Option<IpAddr> {
    let node = node.trim().trim_matches('"');
    let ip = node
        .parse::<IpAddr>()
        .or_else(|_| node.parse::<SocketAddr>().map(|s| s.ip()))
        .or_else(|_| node.trim_start_matches('[').trim_end_matches(']').parse())
        .ok()?;
    Some(ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(*name, value.parse().unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    #[test]
    fn untrusted_peers_are_the_client_whatever_they_claim() {
        let h = headers(&[("x-forwarded-for", "9.9.9.9")]);
        assert_eq!(client_address(ip("1.2.3.4"), &[], &h), ip("1.2.3.4"));
        let trusted = nets(&["10.0.0.0/8"]);
        assert_eq!(client_address(ip("1.2.3.4"), &trusted, &h), ip("1.2.3.4"));
    }

    #[test]
    fn the_right_most_untrusted_forwarded_address_is_the_client() {
        let trusted = nets(&["10.0.0.0/8", "fd00::/8"]);
        let peer = ip("10.0.0.1");
        for (pairs, client) in [
            // The client forged the left-most entry; the proxies appended.
            (
                vec![("x-forwarded-for", "6.6.6.6, 1.2.3.4, 10.0.0.2")],
                "1.2.3.4",
            ),
            // Several header lines read as one list.
            (
                vec![
                    ("x-forwarded-for", "6.6.6.6"),
                    ("x-forwarded-for", "1.2.3.4"),
                ],
                "1.2.3.4",
            ),
            (
                vec![("x-forwarded-for", "[2001:db8::7]:443")],
                "2001:db8::7",
            ),
            (vec![("x-forwarded-for", "1.2.3.4:5678")], "1.2.3.4"),
            (vec![("x-forwarded-for", "::ffff:1.2.3.4")], "1.2.3.4"),
            (
                vec![(
                    "forwarded",
                    r#"for=6.6.6.6, for="[2001:db8::7]:4711";proto=https"#,
                )],
                "2001:db8::7",
            ),
            (vec![("forwarded", "proto=https;For=1.2.3.4")], "1.2.3.4"),
            // X-Forwarded-For wins over Forwarded.
            (
                vec![("forwarded", "for=6.6.6.6"), ("x-forwarded-for", "1.2.3.4")],
                "1.2.3.4",
            ),
            // No header: the proxy itself.
            (vec![], "10.0.0.1"),
            // Every hop trusted: the left-most.
            (vec![("x-forwarded-for", "10.1.1.1, 10.0.0.2")], "10.1.1.1"),
            // An unreadable hop: the last trusted proxy before it.
            (
                vec![("x-forwarded-for", "1.2.3.4, unknown, 10.0.0.2")],
                "10.0.0.2",
            ),
            (vec![("forwarded", "for=_hidden")], "10.0.0.1"),
        ] {
            let h = headers(&pairs);
            assert_eq!(client_address(peer, &trusted, &h), ip(client), "{pairs:?}");
        }
    }

    #[test]
    fn ipv4_mapped_peers_match_ipv4_networks() {
        let trusted = nets(&["127.0.0.1/32"]);
        let h = headers(&[("x-forwarded-for", "1.2.3.4")]);
        assert_eq!(
            client_address(ip("::ffff:127.0.0.1"), &trusted, &h),
            ip("1.2.3.4")
        );
    }
}
