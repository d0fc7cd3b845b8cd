//! Where a Redis tier is: one server (`redis://`, `rediss://`, `unix://`) or
//! a Redis Cluster named by seed nodes
//! (`redis+cluster://[:password@]host:port[,host:port…]`, or
//! `rediss+cluster://` for TLS). The `redis` crate has no URL form for a
//! cluster, so the list is split here and each seed parsed as a plain URL.

use redis::{ConnectionAddr, ConnectionInfo, IntoConnectionInfo};

/// A parsed `REDIS_URL` or `ENTERPRISE_REDIS_URL`.
#[derive(Clone, Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "parsed once at start; boxing would only add noise to every match"
)]
pub enum RedisTarget {
    Single(ConnectionInfo),
    /// At least one seed; every seed carries the same credentials.
    Cluster(Vec<ConnectionInfo>),
}

const CLUSTER: &str = "redis+cluster://";
const CLUSTER_TLS: &str = "rediss+cluster://";

impl RedisTarget {
    /// Parses a URL. The error names what is wrong, never the URL itself
    /// (it may carry a password).
    pub fn parse(url: &str) -> Result<Self, String> {
        let (scheme, rest) = if let Some(rest) = url.strip_prefix(CLUSTER) {
            ("redis", rest)
        } else if let Some(rest) = url.strip_prefix(CLUSTER_TLS) {
            ("rediss", rest)
        } else {
            return url
                .into_connection_info()
                .map(Self::Single)
                .map_err(|e| e.category().to_string());
        };
        let (authority, tail) = match rest.find(['/', '?']) {
            Some(at) => rest.split_at(at),
            None => (rest, ""),
        };
        let (userinfo, hosts) = match authority.rsplit_once('@') {
            Some((user, hosts)) => (format!("{user}@"), hosts),
            None => (String::new(), authority),
        };
        let path = tail.split('?').next().unwrap_or("");
        if !matches!(path, "" | "/" | "/0") {
            return Err("a cluster has database 0 only".into());
        }
        let mut seeds = Vec::new();
        for host in hosts.split(',') {
            if host.is_empty() {
                return Err("empty seed node in the cluster url".into());
            }
            let info = format!("{scheme}://{userinfo}{host}{tail}")
                .into_connection_info()
                .map_err(|e| format!("cluster seed: {}", e.category()))?;
            if !matches!(
                info.addr(),
                ConnectionAddr::Tcp(..) | ConnectionAddr::TcpTls { .. }
            ) {
                return Err("cluster seeds are host:port".into());
            }
            seeds.push(info);
        }
        Ok(Self::Cluster(seeds))
    }

    pub fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster(_))
    }

    /// `host:port` (a cluster: its seeds, comma-separated), safe to log.
    pub fn addr(&self) -> String {
        match self {
            Self::Single(info) => info.addr().to_string(),
            Self::Cluster(seeds) => seeds
                .iter()
                .map(|s| s.addr().to_string())
                .collect::<Vec<_>>()
                .join(","),
        }
    }

    /// The connection settings of another node of the same deployment
    /// (a cluster primary from `CLUSTER SLOTS`): the seeds' credentials and
    /// TLS settings at `host:port`.
    pub(crate) fn node(&self, host: &str, port: u16) -> ConnectionInfo {
        let base = match self {
            Self::Single(info) => info,
            Self::Cluster(seeds) => &seeds[0],
        };
        let addr = match base.addr() {
            ConnectionAddr::TcpTls {
                insecure,
                tls_params,
                ..
            } => ConnectionAddr::TcpTls {
                host: host.to_owned(),
                port,
                insecure: *insecure,
                tls_params: tls_params.clone(),
            },
            _ => ConnectionAddr::Tcp(host.to_owned(), port),
        };
        base.clone().set_addr(addr)
    }
}

/// A URL as `check-config` shows it: a cluster's seeds, without user name or
/// password (`[redacted]` in their place); `None` for a single-server URL
/// (shown by the caller's own rules) or one that does not parse.
pub fn display_cluster_url(url: &str) -> Option<String> {
    let (scheme, rest) = if let Some(rest) = url.strip_prefix(CLUSTER) {
        (CLUSTER, rest)
    } else {
        (CLUSTER_TLS, url.strip_prefix(CLUSTER_TLS)?)
    };
    let target = RedisTarget::parse(url).ok()?;
    let secret = rest
        .split(['/', '?'])
        .next()
        .is_some_and(|authority| authority.contains('@'));
    let who = if secret { "[redacted]@" } else { "" };
    Some(format!("{scheme}{who}{}", target.addr()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_urls_name_their_seeds_with_shared_credentials() {
        let target =
            RedisTarget::parse("redis+cluster://:s3cret@10.0.0.1:7000,10.0.0.2:7001").unwrap();
        let RedisTarget::Cluster(seeds) = &target else {
            panic!("not a cluster: {target:?}")
        };
        assert_eq!(seeds.len(), 2);
        assert_eq!(target.addr(), "10.0.0.1:7000,10.0.0.2:7001");
        for seed in seeds {
            assert_eq!(seed.redis_settings().password(), Some("s3cret"));
        }
        let node = target.node("10.0.0.3", 7002);
        assert_eq!(node.addr().to_string(), "10.0.0.3:7002");
        assert_eq!(node.redis_settings().password(), Some("s3cret"));
    }

    #[test]
    fn tls_clusters_keep_tls_for_every_node() {
        let target = RedisTarget::parse("rediss+cluster://db.example:7000").unwrap();
        assert!(target.is_cluster());
        assert!(matches!(
            target.node("db2.example", 7001).addr(),
            ConnectionAddr::TcpTls { host, port: 7001, .. } if host == "db2.example"
        ));
    }

    #[test]
    fn single_urls_stay_single_and_bad_ones_say_why_without_the_url() {
        assert!(!RedisTarget::parse("redis://:pw@h:6379/2")
            .unwrap()
            .is_cluster());
        for bad in [
            "redis+cluster://",
            "redis+cluster://:pw@h:1,,h:2",
            "redis+cluster://:pw@h:1/3",
            "nonsense",
        ] {
            let error = RedisTarget::parse(bad).unwrap_err();
            assert!(!error.contains("pw"), "{bad}: {error}");
        }
    }

    #[test]
    fn check_config_shows_seeds_never_passwords() {
        assert_eq!(
            display_cluster_url("redis+cluster://:hunter2@a:7000,b:7001").as_deref(),
            Some("redis+cluster://[redacted]@a:7000,b:7001")
        );
        assert_eq!(
            display_cluster_url("rediss+cluster://a:7000").as_deref(),
            Some("rediss+cluster://a:7000")
        );
        assert_eq!(display_cluster_url("redis://:x@a:1"), None);
    }
}
