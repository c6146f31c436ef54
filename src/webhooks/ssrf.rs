//! The SSRF guard for webhook URLs: a receiver must be a public HTTPS address.
//! Checked when an endpoint is saved and again, on the resolved addresses, before
//! every delivery (DNS can change between the two).

use std::net::{IpAddr, Ipv4Addr};

use url::Url;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum UrlRejected {
    #[error("is not a valid absolute URL")]
    Invalid,
    #[error("must use https (http is allowed only for loopback receivers with --allow-insecure-webhooks)")]
    Scheme,
    #[error("must not contain credentials")]
    Credentials,
    /// The address stays out of the message: it would tell a client what our resolver sees.
    #[error("resolves to a private, loopback, link-local or otherwise internal address")]
    InternalAddress(IpAddr),
    #[error("does not resolve to any address")]
    Unresolvable,
}

/// Whether an address is reachable only inside a network (or is a cloud metadata service).
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_internal_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_internal_v4(v4);
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (first & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (first == 0x0064 && v6.segments()[1] == 0xff9b) // NAT64 64:ff9b::/96 may reach private v4
                || first == 0x2001 && v6.segments()[1] == 0x0db8 // documentation
        }
    }
}

fn is_internal_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local() // includes 169.254.169.254, the metadata service
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT 100.64.0.0/10
        || (a == 192 && b == 0 && ip.octets()[2] == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240 // reserved
}

/// Checks the form of a webhook URL (before any DNS lookup).
pub fn check_url(raw: &str, allow_insecure: bool) -> Result<Url, UrlRejected> {
    let url = Url::parse(raw.trim()).map_err(|_| UrlRejected::Invalid)?;
    if url.host_str().is_none_or(str::is_empty) {
        return Err(UrlRejected::Invalid);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UrlRejected::Credentials);
    }
    match url.scheme() {
        "https" => {}
        "http" if allow_insecure && is_loopback_host(&url) => {}
        _ => return Err(UrlRejected::Scheme),
    }
    if !allow_insecure
        && let Some(ip) = literal_ip(&url)
        && is_internal(ip)
    {
        return Err(UrlRejected::InternalAddress(ip));
    }
    Ok(url)
}

/// Even with the insecure flag, plain http is only for receivers on this machine.
fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(v4)) => v4.is_loopback(),
        Some(url::Host::Ipv6(v6)) => v6.is_loopback(),
        None => false,
    }
}

fn literal_ip(url: &Url) -> Option<IpAddr> {
    match url.host()? {
        url::Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
        url::Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
        url::Host::Domain(_) => None,
    }
}

/// Resolves the URL's host and checks every address; returns the addresses to connect to
/// (connecting to exactly these closes the DNS-rebinding gap).
pub async fn resolve_checked(url: &Url, allow_insecure: bool) -> Result<Vec<std::net::SocketAddr>, UrlRejected> {
    let host = url.host_str().ok_or(UrlRejected::Invalid)?;
    let port = url.port_or_known_default().ok_or(UrlRejected::Invalid)?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<_> = tokio::net::lookup_host((host, port)).await.map_err(|_| UrlRejected::Unresolvable)?.collect();
    if addrs.is_empty() {
        return Err(UrlRejected::Unresolvable);
    }
    if !allow_insecure && let Some(bad) = addrs.iter().find(|a| is_internal(a.ip())) {
        return Err(UrlRejected::InternalAddress(bad.ip()));
    }
    Ok(addrs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_internal_literals_and_bad_schemes() {
        for raw in [
            "https://127.0.0.1/hook",
            "https://10.0.0.1/hook",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]/hook",
            "https://[::ffff:192.168.1.1]/hook",
            "https://[fd00::1]/hook",
            "https://100.64.1.1/hook",
            "https://0.0.0.0/hook",
        ] {
            assert!(matches!(check_url(raw, false), Err(UrlRejected::InternalAddress(_))), "{raw}");
        }
        assert_eq!(check_url("http://example.com/hook", false), Err(UrlRejected::Scheme));
        assert_eq!(check_url("ftp://example.com/hook", true), Err(UrlRejected::Scheme));
        assert_eq!(check_url("https://user:pw@example.com/", false), Err(UrlRejected::Credentials));
        assert_eq!(check_url("not a url", false), Err(UrlRejected::Invalid));
        assert!(check_url("https://example.com/hook", false).is_ok());
        assert!(check_url("https://93.184.216.34/hook", false).is_ok());
        assert!(check_url("http://127.0.0.1:9000/hook", true).is_ok());
        assert!(check_url("http://[::1]:9000/hook", true).is_ok());
        assert!(check_url("http://localhost:9000/hook", true).is_ok());
        assert_eq!(check_url("http://example.com/hook", true), Err(UrlRejected::Scheme));
        assert_eq!(check_url("http://10.0.0.1/hook", true), Err(UrlRejected::Scheme));
        assert!(check_url("https://10.0.0.1/hook", true).is_ok());
    }

    #[tokio::test]
    async fn names_that_resolve_to_loopback_are_refused() {
        let url = check_url("https://localhost:8443/hook", false).unwrap();
        assert!(matches!(resolve_checked(&url, false).await, Err(UrlRejected::InternalAddress(_))));
        assert!(resolve_checked(&url, true).await.is_ok());
    }
}
