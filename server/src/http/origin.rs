//! Where a request came from: the client's address and whether it reached us over HTTPS,
//! either directly (Stepline serves TLS) or through a proxy this server is told to trust,
//! whose `X-Forwarded-For` and `X-Forwarded-Proto` are then believed. Anyone else's
//! forwarded headers are ignored: a client cannot claim another address (and escape the
//! sign-in throttle) or claim HTTPS.

use axum::http::HeaderMap;
use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

/// Whether the request reached us over HTTPS (a request extension, set for every request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Https(pub bool);

/// The proxies whose forwarded headers are believed: addresses or networks
/// (`127.0.0.1, 10.0.0.0/8, ::1`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl FromStr for TrustedProxies {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        text.split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(|part| {
                part.parse::<IpNet>()
                    .or_else(|_| part.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        format!("{part:?} is neither an address nor a network (10.0.0.0/8)")
                    })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }
}

impl TrustedProxies {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn trusts(&self, address: IpAddr) -> bool {
        let address = address.to_canonical();
        self.0.iter().any(|network| network.contains(&address))
    }

    /// The client and scheme of a request that `peer` sent us (over TLS or not): the
    /// peer itself, unless it is a trusted proxy; then the nearest address in
    /// `X-Forwarded-For` that is not a trusted proxy, and the scheme the proxy says.
    pub fn resolve(&self, peer: SocketAddr, tls: bool, headers: &HeaderMap) -> (SocketAddr, Https) {
        if !self.trusts(peer.ip()) {
            return (peer, Https(tls));
        }
        let mut client = peer.ip();
        // Each proxy appends the address it heard from: read from the nearest one back.
        let forwarded: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .collect();
        for hop in forwarded.iter().rev() {
            let Ok(address) = hop.parse::<IpAddr>() else {
                break;
            };
            client = address;
            if !self.trusts(address) {
                break;
            }
        }
        let https = headers
            .get_all("x-forwarded-proto")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .next_back()
            .map_or(tls, |proto| proto.trim().eq_ignore_ascii_case("https"));
        (SocketAddr::new(client, 0), Https(https))
    }
}

/// Reads a certificate chain and its private key (PEM files) into the TLS settings the
/// server answers with (HTTP/2 and HTTP/1.1 offered).
pub fn tls_settings(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("TLS certificate {}: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "TLS certificate {}: no certificate in it",
            cert.display()
        ));
    }
    let key =
        PrivateKeyDer::from_pem_file(key).map_err(|e| format!("TLS key {}: {e}", key.display()))?;
    crate::engines::install_tls_provider();
    let mut settings = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("TLS certificate and key: {e}"))?;
    settings.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(settings))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_static(value));
        }
        headers
    }

    #[test]
    fn proxies_are_addresses_or_networks() {
        let proxies: TrustedProxies = "127.0.0.1, 10.0.0.0/8,::1".parse().unwrap();
        assert!(proxies.trusts("10.1.2.3".parse().unwrap()));
        assert!(proxies.trusts("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!proxies.trusts("192.168.0.1".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<TrustedProxies>().is_err());
        assert!("proxy.example".parse::<TrustedProxies>().is_err());
        assert!("".parse::<TrustedProxies>().unwrap().is_empty());
    }

    #[test]
    fn only_a_trusted_proxy_is_believed() {
        let proxies: TrustedProxies = "10.0.0.0/8".parse().unwrap();
        let forwarded = headers(&[
            ("x-forwarded-for", "203.0.113.9, 10.0.0.7"),
            ("x-forwarded-proto", "https"),
        ]);
        let from_proxy: SocketAddr = "10.0.0.2:5000".parse().unwrap();
        let (client, https) = proxies.resolve(from_proxy, false, &forwarded);
        assert_eq!(client.ip(), "203.0.113.9".parse::<IpAddr>().unwrap());
        assert_eq!(https, Https(true));

        let stranger: SocketAddr = "198.51.100.1:5000".parse().unwrap();
        let (client, https) = proxies.resolve(stranger, false, &forwarded);
        assert_eq!(client, stranger);
        assert_eq!(https, Https(false));
    }

    #[test]
    fn a_forged_first_hop_does_not_hide_the_client() {
        // The client wrote its own X-Forwarded-For; the proxy appended the real address.
        let proxies: TrustedProxies = "10.0.0.2".parse().unwrap();
        let forwarded = headers(&[("x-forwarded-for", "1.1.1.1, 198.51.100.77")]);
        let (client, https) = proxies.resolve("10.0.0.2:1".parse().unwrap(), true, &forwarded);
        assert_eq!(client.ip(), "198.51.100.77".parse::<IpAddr>().unwrap());
        assert_eq!(
            https,
            Https(true),
            "no forwarded scheme: as the proxy reached us"
        );
        let garbage = headers(&[("x-forwarded-for", "not an address")]);
        let (client, _) = proxies.resolve("10.0.0.2:1".parse().unwrap(), false, &garbage);
        assert_eq!(client.ip(), "10.0.0.2".parse::<IpAddr>().unwrap());
    }
}
