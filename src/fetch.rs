//! Remote images: load an http(s) URL without letting a client aim the server at itself,
//! its network or a cloud metadata endpoint (SSRF).
//!
//! The guard sits where the address is chosen, not beside it: IP-literal hosts are judged
//! before a request is sent, and names are resolved by our own resolver, which judges
//! every address and hands the connector only those, so nothing can re-resolve a name to
//! another address between the check and the connect (DNS rebinding). Redirects are
//! followed by hand so that every hop passes the same checks.

use std::error::Error as StdError;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{ACCEPT, LOCATION};
use reqwest::{redirect, Client, Response, StatusCode, Url};

/// Why a URL could not be loaded. Each maps to one HTTP error in `crate::error`.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FetchError {
    /// The URL, or a redirect, leads somewhere the guard refuses.
    #[error("{0}")]
    Forbidden(String),
    /// The origin could not be reached, failed, or answered with a non-2xx status.
    #[error("{0}")]
    Failed(String),
    #[error("the remote image is larger than the limit of {0} bytes")]
    TooLarge(u64),
    /// The client's URL is malformed or not http(s).
    #[error("{0}")]
    BadUrl(String),
}

/// Names of cloud metadata services, refused even when they resolve to a public address.
const FORBIDDEN_HOSTS: &[&str] = &["metadata.google.internal", "metadata"];

const fn v4(a: u8, b: u8, c: u8, d: u8, len: u8) -> Ipv4Net {
    Ipv4Net::new_assert(Ipv4Addr::new(a, b, c, d), len)
}

const fn v6(segments: [u16; 8], len: u8) -> Ipv6Net {
    let [a, b, c, d, e, f, g, h] = segments;
    Ipv6Net::new_assert(Ipv6Addr::new(a, b, c, d, e, f, g, h), len)
}

/// IPv4 ranges that are not the public internet (IANA special-purpose registry).
const FORBIDDEN_V4: &[Ipv4Net] = &[
    v4(0, 0, 0, 0, 8),       // "this network", incl. the unspecified 0.0.0.0
    v4(10, 0, 0, 0, 8),      // RFC 1918
    v4(100, 64, 0, 0, 10),   // carrier-grade NAT
    v4(127, 0, 0, 0, 8),     // loopback
    v4(169, 254, 0, 0, 16),  // link-local, incl. the 169.254.169.254 metadata service
    v4(172, 16, 0, 0, 12),   // RFC 1918
    v4(192, 0, 0, 0, 24),    // IETF protocol assignments
    v4(192, 0, 2, 0, 24),    // documentation (TEST-NET-1)
    v4(192, 88, 99, 0, 24),  // deprecated 6to4 relay anycast
    v4(192, 168, 0, 0, 16),  // RFC 1918
    v4(198, 18, 0, 0, 15),   // benchmarking
    v4(198, 51, 100, 0, 24), // documentation (TEST-NET-2)
    v4(203, 0, 113, 0, 24),  // documentation (TEST-NET-3)
    v4(224, 0, 0, 0, 4),     // multicast
    v4(240, 0, 0, 0, 4),     // reserved, incl. the broadcast 255.255.255.255
];

/// IPv6 ranges refused outright. Forms that embed an IPv4 address are judged by that
/// address instead (see [`embedded_v4`]).
const FORBIDDEN_V6: &[Ipv6Net] = &[
    v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48),  // local-use NAT64
    v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64),      // discard-only
    v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 23), // IETF protocol assignments: Teredo 2001::/32, benchmarking, ORCHID
    v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32), // documentation
    v6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20), // documentation
    v6([0x5f00, 0, 0, 0, 0, 0, 0, 0], 16), // SRv6 segment identifiers
    v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7),  // unique local
    v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10), // link-local
    v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10), // site-local (deprecated)
    v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8),  // multicast
];

/// Everything routable on the public IPv6 internet lies in 2000::/3; outside it nothing
/// is (the list above names the notable classes, this catches the unallocated rest).
const GLOBAL_UNICAST_V6: Ipv6Net = v6([0x2000, 0, 0, 0, 0, 0, 0, 0], 3);

/// Whether the guard refuses to connect to `ip`: loopback, private, link-local, shared,
/// reserved, documentation, benchmarking, multicast, and IPv6 forms wrapping any of those.
pub fn is_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => is_forbidden_v4(ip),
        IpAddr::V6(ip) => is_forbidden_v6(ip),
    }
}

fn is_forbidden_v4(ip: Ipv4Addr) -> bool {
    FORBIDDEN_V4.iter().any(|net| net.contains(&ip))
}

fn is_forbidden_v6(ip: Ipv6Addr) -> bool {
    if ip.is_loopback() || ip.is_unspecified() {
        return true;
    }
    if let Some(inner) = embedded_v4(ip) {
        return is_forbidden_v4(inner);
    }
    !GLOBAL_UNICAST_V6.contains(&ip) || FORBIDDEN_V6.iter().any(|net| net.contains(&ip))
}

/// The IPv4 address an IPv6 address stands for, where the stack or a translator would
/// deliver packets to that IPv4 address: mapped `::ffff:a.b.c.d`, SIIT-translated
/// `::ffff:0:a.b.c.d`, compatible `::a.b.c.d`, NAT64 `64:ff9b::a.b.c.d` and 6to4
/// `2002:aabb:ccdd::/48`.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let o = ip.octets();
    let low = Ipv4Addr::new(o[12], o[13], o[14], o[15]);
    match s {
        [0, 0, 0, 0, 0, 0xffff, _, _]
        | [0, 0, 0, 0, 0xffff, 0, _, _]
        | [0, 0, 0, 0, 0, 0, _, _] => Some(low),
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(low),
        [0x2002, ..] => Some(Ipv4Addr::new(o[2], o[3], o[4], o[5])),
        _ => None,
    }
}

/// Whether `host` (a DNS name) is a cloud metadata service name.
pub fn is_forbidden_host(host: &str) -> bool {
    let host = normalise_host(host);
    FORBIDDEN_HOSTS.contains(&host.as_str())
}

/// Lowercase, without the trailing dot of a fully qualified name.
fn normalise_host(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// What the operator allowed despite the guard (`--fetch-allow`).
#[derive(Debug, Default)]
struct Allowlist {
    nets: Vec<IpNet>,
    hosts: Vec<String>,
}

impl Allowlist {
    /// Entries are CIDRs (`10.0.0.0/8`), bare addresses (one host) or host names (exact,
    /// case-insensitive). A malformed entry fails startup rather than silently allowing
    /// nothing, or more than meant.
    fn parse(entries: &[String]) -> anyhow::Result<Self> {
        let mut allow = Allowlist::default();
        for entry in entries.iter().map(|e| e.trim()).filter(|e| !e.is_empty()) {
            if let Ok(net) = entry.parse::<IpNet>() {
                allow.nets.push(net.trunc());
            } else if let Ok(ip) = entry.trim_matches(['[', ']']).parse::<IpAddr>() {
                allow.nets.push(IpNet::from(ip));
            } else if is_host_name(entry) {
                allow.hosts.push(normalise_host(entry));
            } else {
                anyhow::bail!(
                    "fetch allowlist entry `{entry}` is neither a host name, an IP address nor a CIDR"
                );
            }
        }
        Ok(allow)
    }

    fn allows_host(&self, host: &str) -> bool {
        let host = normalise_host(host);
        self.hosts.contains(&host)
    }

    /// Whether a connection to `ip` may be made: public, or inside an allowed CIDR.
    fn permits(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        !is_forbidden(ip) || self.nets.iter().any(|net| net.contains(&ip))
    }
}

fn is_host_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
}

/// Refusal raised inside the resolver; found again in the reqwest error's source chain.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Blocked(String);

/// Resolves with the system resolver, then refuses the whole name if any of its
/// addresses is forbidden: a name that mixes public and private addresses is an attack
/// (or a misconfiguration) either way, and picking the public ones would hide it.
struct GuardedResolver {
    allow: Arc<Allowlist>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(resolve_checked(
            self.allow.clone(),
            name.as_str().to_owned(),
        ))
    }
}

async fn resolve_checked(
    allow: Arc<Allowlist>,
    host: String,
) -> Result<Addrs, Box<dyn StdError + Send + Sync>> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
    let refused = is_forbidden_host(&host) || addrs.iter().any(|a| !allow.permits(a.ip()));
    if refused && !allow.allows_host(&host) {
        return Err(Box::new(Blocked(forbidden_name(&host))));
    }
    Ok(Box::new(addrs.into_iter()))
}

/// Names the host but not the addresses it resolved to: the client need not learn
/// what the internal DNS says.
fn forbidden_name(host: &str) -> String {
    format!(
        "`{host}` leads to a loopback, private, link-local, metadata or reserved address, \
         which remote fetch may not reach"
    )
}

/// Loads remote images under the guard, the redirect limit, the byte limit and one
/// overall timeout.
pub struct Fetcher {
    client: Client,
    allow: Arc<Allowlist>,
    timeout: Duration,
    max_redirects: usize,
    max_bytes: u64,
}

impl Fetcher {
    pub fn new(
        allow: &[String],
        timeout: Duration,
        max_redirects: usize,
        max_bytes: u64,
    ) -> anyhow::Result<Self> {
        let allow = Arc::new(Allowlist::parse(allow)?);
        let client = Client::builder()
            .dns_resolver(Arc::new(GuardedResolver {
                allow: allow.clone(),
            }))
            // Redirects are followed in `fetch`, so each hop is checked; and a proxy
            // would make the connection (and the address check) happen elsewhere.
            .redirect(redirect::Policy::none())
            .no_proxy()
            .connect_timeout(timeout)
            .user_agent(concat!("progimage/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Fetcher {
            client,
            allow,
            timeout,
            max_redirects,
            max_bytes,
        })
    }

    /// The body of `url`, after at most `max_redirects` checked redirects.
    pub async fn fetch(&self, url: &str) -> Result<Bytes, FetchError> {
        let url = parse_url(url)?;
        match tokio::time::timeout(self.timeout, self.follow(url)).await {
            Ok(result) => result,
            Err(_) => Err(FetchError::Failed(format!(
                "the remote image did not arrive within {} s",
                self.timeout.as_secs_f64()
            ))),
        }
    }

    async fn follow(&self, mut url: Url) -> Result<Bytes, FetchError> {
        let mut redirects = 0;
        loop {
            self.check_destination(&url)?;
            let response = self
                .client
                .get(url.clone())
                .header(ACCEPT, "image/*,*/*;q=0.8")
                .send()
                .await
                .map_err(send_error)?;
            let status = response.status();
            if !is_redirect(status) {
                if !status.is_success() {
                    return Err(FetchError::Failed(format!(
                        "the origin answered {status} for {url}"
                    )));
                }
                return self.read_body(response).await;
            }
            if redirects == self.max_redirects {
                return Err(FetchError::Failed(format!(
                    "more than {} redirects",
                    self.max_redirects
                )));
            }
            redirects += 1;
            url = redirect_target(&url, &response)?;
        }
    }

    /// Judge what can be judged before sending: IP literals never reach the resolver.
    fn check_destination(&self, url: &Url) -> Result<(), FetchError> {
        let host = url.host_str().unwrap_or_default();
        if let Ok(ip) = host.trim_matches(['[', ']']).parse::<IpAddr>() {
            if !self.allow.permits(ip) {
                return Err(FetchError::Forbidden(format!(
                    "{ip} is a loopback, private, link-local or reserved address, \
                     which remote fetch may not reach"
                )));
            }
        } else if is_forbidden_host(host) && !self.allow.allows_host(host) {
            return Err(FetchError::Forbidden(forbidden_name(host)));
        }
        Ok(())
    }

    async fn read_body(&self, mut response: Response) -> Result<Bytes, FetchError> {
        if response
            .content_length()
            .is_some_and(|n| n > self.max_bytes)
        {
            return Err(FetchError::TooLarge(self.max_bytes));
        }
        let mut body = BytesMut::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| {
            FetchError::Failed(format!("reading the remote image failed: {}", chain(&e)))
        })? {
            if body.len() as u64 + chunk.len() as u64 > self.max_bytes {
                return Err(FetchError::TooLarge(self.max_bytes));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    }
}

/// The last path segment of `url` (still percent-encoded), as the upload's file name.
pub fn url_file_name(url: &str) -> Option<String> {
    let url = Url::parse(url.trim()).ok()?;
    let last = url.path_segments()?.next_back()?;
    (!last.is_empty()).then(|| last.to_owned())
}

/// The client's URL: absolute, http or https, without credentials. Anything else is a
/// malformed request (400), not a refused address (403).
fn parse_url(raw: &str) -> Result<Url, FetchError> {
    let url = Url::parse(raw.trim())
        .map_err(|e| FetchError::BadUrl(format!("`url` is not an absolute URL: {e}")))?;
    check_scheme(&url).map_err(FetchError::BadUrl)?;
    Ok(url)
}

fn check_scheme(url: &Url) -> Result<(), String> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "only http and https URLs can be fetched, not `{}:`",
            url.scheme()
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("URLs with credentials (user:password@) are not fetched".into());
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("the URL has no host".into());
    }
    Ok(())
}

fn is_redirect(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::MOVED_PERMANENTLY
            | StatusCode::FOUND
            | StatusCode::SEE_OTHER
            | StatusCode::TEMPORARY_REDIRECT
            | StatusCode::PERMANENT_REDIRECT
    )
}

/// The next hop. A `Location` that is not http(s) is a destination the guard refuses
/// (403), like a private address; one that cannot be read is the origin's fault (502).
fn redirect_target(current: &Url, response: &Response) -> Result<Url, FetchError> {
    let location = response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            FetchError::Failed(format!(
                "the origin answered {} without a readable Location",
                response.status()
            ))
        })?;
    let next = current
        .join(location)
        .map_err(|e| FetchError::Failed(format!("the origin redirected to a bad URL: {e}")))?;
    check_scheme(&next).map_err(|m| FetchError::Forbidden(format!("refused redirect: {m}")))?;
    Ok(next)
}

/// A failed send: refused by the resolver's guard, or the origin was unreachable.
fn send_error(e: reqwest::Error) -> FetchError {
    let mut source: Option<&(dyn StdError + 'static)> = Some(&e);
    while let Some(err) = source {
        if let Some(blocked) = err.downcast_ref::<Blocked>() {
            return FetchError::Forbidden(blocked.0.clone());
        }
        source = err.source();
    }
    FetchError::Failed(format!("could not reach the origin: {}", chain(&e)))
}

/// The error and its causes on one line ("connect error: Connection refused").
fn chain(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(err) = source {
        text.push_str(": ");
        text.push_str(&err.to_string());
        source = err.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn assert_forbidden(class: &str, addrs: &[&str]) {
        for a in addrs {
            assert!(is_forbidden(ip(a)), "{class}: {a} must be refused");
        }
    }

    #[test]
    fn loopback_is_forbidden() {
        assert_forbidden(
            "loopback",
            &["127.0.0.1", "127.0.0.53", "127.255.255.254", "::1"],
        );
    }

    #[test]
    fn unspecified_and_this_network_are_forbidden() {
        assert_forbidden(
            "unspecified",
            &["0.0.0.0", "0.1.2.3", "0.255.255.255", "::"],
        );
    }

    #[test]
    fn rfc1918_is_forbidden() {
        assert_forbidden(
            "private",
            &[
                "10.0.0.1",
                "10.255.255.255",
                "172.16.0.1",
                "172.20.1.1",
                "172.31.255.255",
                "192.168.0.1",
                "192.168.255.255",
            ],
        );
        // The neighbours of 172.16/12 are public.
        assert!(!is_forbidden(ip("172.15.255.255")));
        assert!(!is_forbidden(ip("172.32.0.0")));
    }

    #[test]
    fn link_local_and_metadata_addresses_are_forbidden() {
        assert_forbidden(
            "link-local",
            &[
                "169.254.169.254",
                "169.254.0.1",
                "169.254.255.255",
                "fe80::1",
                "fe80::a9fe:a9fe",
                "febf:ffff::1",
            ],
        );
    }

    #[test]
    fn shared_and_special_v4_ranges_are_forbidden() {
        assert_forbidden(
            "CGNAT",
            &["100.64.0.1", "100.100.100.200", "100.127.255.255"],
        );
        assert!(!is_forbidden(ip("100.63.255.255")));
        assert!(!is_forbidden(ip("100.128.0.0")));
        assert_forbidden("IETF", &["192.0.0.1", "192.0.0.170", "192.0.0.255"]);
        assert_forbidden("benchmarking", &["198.18.0.1", "198.19.255.255"]);
        assert!(!is_forbidden(ip("198.20.0.1")));
        assert_forbidden("6to4 relay", &["192.88.99.1"]);
    }

    #[test]
    fn documentation_ranges_are_forbidden() {
        assert_forbidden(
            "documentation",
            &[
                "192.0.2.1",
                "198.51.100.7",
                "203.0.113.255",
                "2001:db8::1",
                "2001:db8:ffff::1",
                "3fff::1",
            ],
        );
    }

    #[test]
    fn multicast_broadcast_and_reserved_are_forbidden() {
        assert_forbidden(
            "multicast",
            &[
                "224.0.0.1",
                "239.255.255.250",
                "ff02::1",
                "ff05::2",
                "ff0e::1",
            ],
        );
        assert_forbidden("reserved", &["240.0.0.1", "250.1.2.3", "255.255.255.255"]);
    }

    #[test]
    fn unique_local_and_site_local_are_forbidden() {
        assert_forbidden("ULA", &["fc00::1", "fd00::1", "fd12:3456:789a::1"]);
        assert_forbidden("site-local", &["fec0::1", "feff::1"]);
    }

    #[test]
    fn ipv4_mapped_and_compatible_are_judged_as_ipv4() {
        assert_forbidden(
            "mapped",
            &[
                "::ffff:127.0.0.1",
                "::ffff:10.0.0.1",
                "::ffff:169.254.169.254",
            ],
        );
        assert_forbidden(
            "translated",
            &["::ffff:0:127.0.0.1", "::ffff:0:192.168.1.1"],
        );
        assert_forbidden("compatible", &["::127.0.0.1", "::10.1.2.3", "::0.0.0.2"]);
        assert!(!is_forbidden(ip("::ffff:8.8.8.8")));
        assert!(!is_forbidden(ip("::1.1.1.1")));
    }

    #[test]
    fn nat64_and_6to4_are_judged_by_the_embedded_ipv4() {
        assert_forbidden(
            "NAT64",
            &[
                "64:ff9b::127.0.0.1",
                "64:ff9b::a9fe:a9fe",
                "64:ff9b::10.0.0.1",
            ],
        );
        assert!(!is_forbidden(ip("64:ff9b::8.8.8.8")));
        assert_forbidden("local NAT64", &["64:ff9b:1::8.8.8.8"]);
        // 2002:7f00:0001:: wraps 127.0.0.1; 2002:c0a8:0101:: wraps 192.168.1.1.
        assert_forbidden(
            "6to4",
            &["2002:7f00:1::1", "2002:c0a8:101::", "2002:a9fe:a9fe::1"],
        );
        assert!(!is_forbidden(ip("2002:808:808::1")));
    }

    #[test]
    fn teredo_and_other_protocol_ranges_are_forbidden() {
        assert_forbidden(
            "Teredo",
            &[
                "2001::1",
                "2001:0:4136:e378:8000:63bf:3fff:fdd2",
                "2001:0:ffff::1",
            ],
        );
        assert_forbidden("benchmarking v6", &["2001:2::1"]);
        assert_forbidden("discard", &["100::1"]);
        assert_forbidden("unallocated", &["4000::1", "1234::1", "8000::1"]);
    }

    #[test]
    fn public_addresses_pass() {
        for a in [
            "8.8.8.8",
            "1.1.1.1",
            "93.184.215.14",
            "151.101.1.69",
            "172.32.0.1",
            "192.0.3.1",
            "223.255.255.255",
            "2606:4700::1111",
            "2001:4860:4860::8888",
            "2a00:1450:4001:80b::200e",
        ] {
            assert!(!is_forbidden(ip(a)), "{a} is public");
        }
    }

    #[test]
    fn metadata_names_are_forbidden() {
        assert!(is_forbidden_host("metadata.google.internal"));
        assert!(is_forbidden_host("METADATA.Google.Internal."));
        assert!(is_forbidden_host("metadata"));
        assert!(!is_forbidden_host("metadata.example.com"));
        assert!(!is_forbidden_host("example.com"));
    }

    fn allowlist(entries: &[&str]) -> Allowlist {
        let entries: Vec<String> = entries.iter().map(|s| s.to_string()).collect();
        Allowlist::parse(&entries).expect("valid allowlist")
    }

    #[test]
    fn allowlist_takes_cidrs_addresses_and_names() {
        let allow = allowlist(&["10.1.0.0/16", "127.0.0.1", "::1", "Images.Internal.", ""]);
        assert!(allow.permits(ip("10.1.2.3")));
        assert!(!allow.permits(ip("10.2.0.1")));
        assert!(allow.permits(ip("127.0.0.1")));
        assert!(allow.permits(ip("::ffff:127.0.0.1")));
        assert!(!allow.permits(ip("127.0.0.2")));
        assert!(allow.permits(ip("::1")));
        assert!(
            allow.permits(ip("8.8.8.8")),
            "public addresses need no entry"
        );
        assert!(allow.allows_host("images.internal"));
        assert!(allow.allows_host("IMAGES.internal."));
        assert!(!allow.allows_host("other.internal"));
        assert!(!allow.allows_host("x.images.internal"));
    }

    #[test]
    fn malformed_allowlist_entries_fail() {
        for bad in ["10.0.0.0/33", "http://x", "a b", "::1/200"] {
            assert!(
                Allowlist::parse(&[bad.to_owned()]).is_err(),
                "{bad} must be rejected"
            );
        }
    }

    #[test]
    fn only_plain_http_urls_are_accepted() {
        for ok in ["http://example.com/a.png", "https://example.com:8443/x?y=1"] {
            assert!(parse_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "ftp://example.com/a.png",
            "file:///etc/passwd",
            "gopher://example.com/",
            "data:image/png;base64,AAAA",
            "http://user:pw@example.com/a.png",
            "http://user@example.com/a.png",
            "/relative.png",
            "not a url",
            "",
        ] {
            assert!(
                matches!(parse_url(bad), Err(FetchError::BadUrl(_))),
                "{bad} must be a bad URL"
            );
        }
    }

    fn fetcher(allow: &[&str]) -> Fetcher {
        let allow: Vec<String> = allow.iter().map(|s| s.to_string()).collect();
        Fetcher::new(&allow, Duration::from_secs(5), 5, 1024).expect("fetcher")
    }

    #[test]
    fn ip_literals_are_judged_before_sending() {
        let f = fetcher(&[]);
        for url in [
            "http://127.0.0.1/",
            "http://2130706433/", // 127.0.0.1 as one number
            "http://0x7f.1/",     // 127.0.0.1 in hex shorthand
            "http://[::1]/",
            "http://[::ffff:169.254.169.254]/",
            "http://169.254.169.254/latest/meta-data/",
            "http://metadata.google.internal/computeMetadata/v1/",
            "http://metadata./",
        ] {
            let url = parse_url(url).expect("parses");
            assert!(
                matches!(f.check_destination(&url), Err(FetchError::Forbidden(_))),
                "{url} must be refused"
            );
        }
        let url = parse_url("http://8.8.8.8/").expect("parses");
        assert!(f.check_destination(&url).is_ok());
        let allowed = fetcher(&["127.0.0.0/8", "metadata"]);
        for url in ["http://127.0.0.1/", "http://metadata/"] {
            let url = parse_url(url).expect("parses");
            assert!(allowed.check_destination(&url).is_ok(), "{url}");
        }
    }

    #[test]
    fn redirects_to_other_schemes_are_refused() {
        let current = parse_url("http://example.com/a/b.png").expect("parses");
        for (location, refused) in [
            ("file:///etc/passwd", true),
            ("ftp://example.com/x", true),
            ("http://u:p@example.com/x", true),
            ("/c.png", false),
            ("c.png", false),
            ("//other.example/c.png", false),
        ] {
            let next = current.join(location).expect("joins");
            assert_eq!(check_scheme(&next).is_err(), refused, "{location}");
        }
    }
}
