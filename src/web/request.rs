//! Facts about the request that depend on trust: the client's address and the site's origin,
//! read from `X-Forwarded-*` headers only when the socket peer is a trusted proxy.

use std::net::IpAddr;

use actix_web::HttpRequest;
use actix_web::http::header;
use ipnet::IpNet;

/// IPv4-mapped IPv6 addresses are unmapped so one client has one form.
fn unmap(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn trusted(ip: IpAddr, proxies: &[IpNet]) -> bool {
    proxies.iter().any(|net| net.contains(&ip))
}

/// Whether the socket peer is one of `--trusted-proxies`, whose `X-Forwarded-*` and
/// `X-Original-URL` headers are believed.
pub fn peer_is_trusted(req: &HttpRequest, proxies: &[IpNet]) -> bool {
    req.peer_addr()
        .is_some_and(|p| trusted(unmap(p.ip()), proxies))
}

/// The client address: the socket peer, or, when the peer is a trusted proxy, the right-most
/// `X-Forwarded-For` entry that is not itself a trusted proxy.
pub fn client_ip(req: &HttpRequest, proxies: &[IpNet]) -> Option<IpAddr> {
    let peer = unmap(req.peer_addr()?.ip());
    if !trusted(peer, proxies) {
        warn_untrusted_forwarding(req, peer);
        return Some(peer);
    }
    let forwarded: Vec<IpAddr> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse::<IpAddr>().ok())
        .map(unmap)
        .collect();
    Some(
        forwarded
            .into_iter()
            .rev()
            .find(|ip| !trusted(*ip, proxies))
            .unwrap_or(peer),
    )
}

/// A proxy on this host or the LAN that is not in `--trusted-proxies` would put every user
/// behind one address (one throttle bucket): say so, once.
fn warn_untrusted_forwarding(req: &HttpRequest, peer: IpAddr) {
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    let local = match peer {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_private() || v4.is_link_local(),
        IpAddr::V6(v6) => v6.is_loopback() || v6.is_unique_local() || v6.is_unicast_link_local(),
    };
    if local
        && req.headers().contains_key("x-forwarded-for")
        && !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed)
    {
        tracing::warn!(
            %peer,
            "requests carry X-Forwarded-For from {peer}, which is not in --trusted-proxies: \
             every client behind that proxy shares one address for throttling"
        );
    }
}

/// The site's origin for the `Origin` check: `--public-url` when set, else the request's
/// scheme and host.
pub fn site_origin(req: &HttpRequest, public_url: Option<&str>, proxies: &[IpNet]) -> String {
    if let Some(url) = public_url {
        return url.trim_end_matches('/').to_owned();
    }
    let from_proxy = peer_is_trusted(req, proxies);
    let forwarded = |name: &str| {
        from_proxy
            .then(|| req.headers().get(name).and_then(|v| v.to_str().ok()))
            .flatten()
            .and_then(|v| v.split(',').next())
            .map(|v| v.trim().to_owned())
    };
    let scheme =
        forwarded("x-forwarded-proto").unwrap_or_else(|| req.connection_info().scheme().to_owned());
    let host = forwarded("x-forwarded-host")
        .or_else(|| {
            req.headers()
                .get(header::HOST)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        })
        .or_else(|| req.uri().authority().map(|a| a.to_string()))
        .unwrap_or_default();
    format!("{scheme}://{host}")
}

pub fn user_agent(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|ua| ua.chars().filter(|c| !c.is_control()).take(256).collect())
}

pub use crate::user_agent::describe as describe_user_agent;

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn nets(s: &[&str]) -> Vec<IpNet> {
        s.iter().map(|n| n.parse().unwrap()).collect()
    }

    #[test]
    fn untrusted_peer_headers_are_ignored() {
        let req = TestRequest::default()
            .peer_addr("203.0.113.7:5000".parse().unwrap())
            .insert_header(("x-forwarded-for", "1.2.3.4"))
            .insert_header(("x-forwarded-host", "evil.example"))
            .insert_header((header::HOST, "site.example"))
            .to_http_request();
        assert_eq!(
            client_ip(&req, &nets(&["10.0.0.0/8"])),
            Some("203.0.113.7".parse().unwrap())
        );
        assert_eq!(
            site_origin(&req, None, &nets(&["10.0.0.0/8"])),
            "http://site.example"
        );
    }

    #[test]
    fn trusted_proxy_gives_rightmost_untrusted_entry() {
        let req = TestRequest::default()
            .peer_addr("10.0.0.2:5000".parse().unwrap())
            .insert_header(("x-forwarded-for", "6.6.6.6, 198.51.100.9, 10.0.0.3"))
            .insert_header(("x-forwarded-proto", "https"))
            .insert_header(("x-forwarded-host", "login.example"))
            .to_http_request();
        let p = nets(&["10.0.0.0/8"]);
        assert_eq!(client_ip(&req, &p), Some("198.51.100.9".parse().unwrap()));
        assert_eq!(site_origin(&req, None, &p), "https://login.example");
        assert_eq!(
            site_origin(&req, Some("https://pub.example/"), &p),
            "https://pub.example"
        );
    }

    #[test]
    fn user_agents_read_naturally() {
        let chrome = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/156.0.0.0 Safari/537.36";
        assert_eq!(describe_user_agent(chrome), "Chrome 156 on Linux");
        let safari = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1";
        assert_eq!(describe_user_agent(safari), "Safari 17 on iOS");
        let firefox =
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:120.0) Gecko/20100101 Firefox/120.0";
        assert_eq!(describe_user_agent(firefox), "Firefox 120 on Windows");
        assert_eq!(describe_user_agent("curl/8.5.0"), "curl 8");
        assert_eq!(describe_user_agent("reqwest"), "reqwest");
        assert_eq!(describe_user_agent(""), "Unknown");
    }

    #[test]
    fn mapped_ipv6_is_unmapped() {
        let req = TestRequest::default()
            .peer_addr("[::ffff:192.0.2.1]:80".parse().unwrap())
            .to_http_request();
        assert_eq!(client_ip(&req, &[]), Some("192.0.2.1".parse().unwrap()));
    }
}
