//! Object storage for certificate PDFs (`object_store`): a local directory by default, any
//! S3-compatible store by configuration, or memory (tests).

use std::sync::Arc;

use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;

use crate::config::StoreOptions;

/// Opens the store named by `KEPATUHAN_CERTIFICATE_STORE`, with the options of an `s3://` store
/// (see [`crate::config::Settings`]).
pub fn open(spec: &str, options: &StoreOptions) -> Result<Arc<dyn ObjectStore>, String> {
    if spec == "memory:" {
        return Ok(Arc::new(InMemory::new()));
    }
    let path = spec.strip_prefix("file://").unwrap_or(spec);
    if !spec.contains("://") || spec.starts_with("file://") {
        std::fs::create_dir_all(path).map_err(|e| format!("certificate store {path}: {e}"))?;
        let store = LocalFileSystem::new_with_prefix(path)
            .map_err(|e| format!("certificate store {path}: {e}"))?;
        return Ok(Arc::new(store));
    }
    let url = spec
        .parse()
        .map_err(|e| format!("certificate store `{spec}`: {e}"))?;
    let (store, prefix) = object_store::parse_url_opts(&url, options.0.iter().cloned())
        .map_err(|e| format!("certificate store `{spec}`: {e}"))?;
    if prefix.as_ref().is_empty() {
        Ok(Arc::from(store))
    } else {
        Ok(Arc::new(object_store::prefix::PrefixStore::new(
            store, prefix,
        )))
    }
}
