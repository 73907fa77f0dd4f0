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

/// Removes certificate PDFs that no certificate records (stored by a render whose recording then
/// failed, or by a worker that crashed in between) and that are older than `grace`, so a batch
/// still being recorded is never touched; returns how many. The worker's schedule runs it.
pub async fn sweep_orphan_pdfs(
    store: &dyn ObjectStore,
    pool: &sqlx::PgPool,
    grace: std::time::Duration,
) -> crate::error::AppResult<usize> {
    use futures::TryStreamExt;
    let cutoff = chrono::Utc::now()
        - chrono::Duration::from_std(grace).unwrap_or_else(|_| chrono::Duration::hours(1));
    let listed: Vec<object_store::ObjectMeta> = store
        .list(Some(&object_store::path::Path::from("certificates")))
        .try_collect()
        .await
        .map_err(|e| crate::error::AppError::Storage(e.to_string()))?;
    let candidates: Vec<String> = listed
        .into_iter()
        .filter(|o| o.last_modified < cutoff)
        .map(|o| o.location.to_string())
        .collect();
    let recorded: std::collections::HashSet<String> = sqlx::query_scalar!(
        "SELECT object_key FROM certificates WHERE object_key = ANY($1)",
        &candidates
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .collect();
    let mut removed = 0;
    for key in candidates.iter().filter(|k| !recorded.contains(*k)) {
        store
            .delete(&object_store::path::Path::from(key.as_str()))
            .await
            .map_err(|e| crate::error::AppError::Storage(e.to_string()))?;
        tracing::info!(key = %key, "orphan certificate PDF removed");
        removed += 1;
    }
    Ok(removed)
}
