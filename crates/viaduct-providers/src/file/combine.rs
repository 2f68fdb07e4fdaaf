//! Merging the files of one file provider into one configuration.

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use viaduct_config::{DynamicConfig, HttpConfig, TcpConfig, TlsConfig, UdpConfig};

/// Merges file configurations given in path order. A name defined twice keeps its first
/// definition; the later one is ignored with a warning naming both files (as Traefik does).
///
/// One file (the common case) is its own combination: it is shared, not copied.
pub(crate) fn combine<'a>(
    files: impl IntoIterator<Item = (&'a Path, &'a Arc<DynamicConfig>)>,
) -> Arc<DynamicConfig> {
    let mut files = files.into_iter().peekable();
    let Some((first_path, first)) = files.next() else {
        return Arc::new(DynamicConfig::default());
    };
    if files.peek().is_none() {
        return Arc::clone(first);
    }
    let (merged, _) = combine_with_owners(std::iter::once((first_path, first)).chain(files));
    Arc::new(merged)
}

/// Merges as [`combine`] does, and tells which file defined each object kept, by its dotted
/// key (`http.routers.foo`).
pub(crate) fn combine_with_owners<'a>(
    files: impl IntoIterator<Item = (&'a Path, &'a Arc<DynamicConfig>)>,
) -> (DynamicConfig, BTreeMap<String, &'a Path>) {
    let mut combiner = Combiner::default();
    for (path, config) in files {
        combiner.add(path, config);
    }
    (combiner.merged, combiner.owners)
}

#[derive(Default)]
struct Combiner<'a> {
    merged: DynamicConfig,
    /// Which file defined each object, by its dotted key (`http.routers.foo`).
    owners: BTreeMap<String, &'a Path>,
}

impl<'a> Combiner<'a> {
    fn add(&mut self, path: &'a Path, config: &'a DynamicConfig) {
        if let Some(http) = &config.http {
            let into = self.merged.http.get_or_insert_with(HttpConfig::default);
            let owners = &mut self.owners;
            take_first(
                owners,
                path,
                "http.routers",
                &mut into.routers,
                &http.routers,
            );
            take_first(
                owners,
                path,
                "http.services",
                &mut into.services,
                &http.services,
            );
            take_first(
                owners,
                path,
                "http.middlewares",
                &mut into.middlewares,
                &http.middlewares,
            );
            take_first(
                owners,
                path,
                "http.serversTransports",
                &mut into.servers_transports,
                &http.servers_transports,
            );
            take_first(owners, path, "http.models", &mut into.models, &http.models);
        }
        if let Some(tcp) = &config.tcp {
            let into = self.merged.tcp.get_or_insert_with(TcpConfig::default);
            let owners = &mut self.owners;
            take_first(owners, path, "tcp.routers", &mut into.routers, &tcp.routers);
            take_first(
                owners,
                path,
                "tcp.services",
                &mut into.services,
                &tcp.services,
            );
            take_first(
                owners,
                path,
                "tcp.middlewares",
                &mut into.middlewares,
                &tcp.middlewares,
            );
            take_first(
                owners,
                path,
                "tcp.serversTransports",
                &mut into.servers_transports,
                &tcp.servers_transports,
            );
        }
        if let Some(udp) = &config.udp {
            let into = self.merged.udp.get_or_insert_with(UdpConfig::default);
            let owners = &mut self.owners;
            take_first(owners, path, "udp.routers", &mut into.routers, &udp.routers);
            take_first(
                owners,
                path,
                "udp.services",
                &mut into.services,
                &udp.services,
            );
        }
        if let Some(tls) = &config.tls {
            let into = self.merged.tls.get_or_insert_with(TlsConfig::default);
            let owners = &mut self.owners;
            take_first(owners, path, "tls.options", &mut into.options, &tls.options);
            take_first(owners, path, "tls.stores", &mut into.stores, &tls.stores);
            // The same certificate in two files is loaded once.
            for certificate in &tls.certificates {
                if !into.certificates.contains(certificate) {
                    into.certificates.push(certificate.clone());
                }
            }
        }
    }
}

fn take_first<'a, T: Clone>(
    owners: &mut BTreeMap<String, &'a Path>,
    path: &'a Path,
    section: &str,
    into: &mut BTreeMap<String, T>,
    from: &BTreeMap<String, T>,
) {
    for (name, value) in from {
        match into.entry(name.clone()) {
            Entry::Vacant(slot) => {
                slot.insert(value.clone());
                owners.insert(format!("{section}.{name}"), path);
            }
            Entry::Occupied(_) => {
                let object = format!("{section}.{name}");
                let kept = owners.get(&object).map(|p| p.display().to_string());
                tracing::warn!(
                    provider = "file",
                    object = %object,
                    kept = kept.as_deref().unwrap_or("?"),
                    ignored = %path.display(),
                    "{object} is defined in several files; keeping the first definition"
                );
            }
        }
    }
}
