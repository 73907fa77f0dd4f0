//! Keyset pagination: `limit` plus an opaque `cursor` returned as `next_cursor`.

use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult};

/// Default page size.
pub const DEFAULT_LIMIT: i64 = 50;
/// Largest page size.
pub const MAX_LIMIT: i64 = 500;

/// A page of items.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Checks a requested limit: 1–500, default 50.
pub fn limit(requested: Option<i64>) -> ApiResult<i64> {
    match requested {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(n) => Err(ApiError::field(
            "limit",
            format!("must be between 1 and {MAX_LIMIT}, got {n}"),
        )),
    }
}

/// Encodes a cursor key (opaque to clients).
pub fn encode<K: Serialize>(key: &K) -> String {
    hex::encode(serde_json::to_vec(key).unwrap_or_default())
}

/// Decodes a cursor key, refusing anything this server did not produce.
pub fn decode<K: for<'de> Deserialize<'de>>(cursor: Option<&str>) -> ApiResult<Option<K>> {
    cursor
        .map(|c| {
            hex::decode(c)
                .ok()
                .filter(|b| !crate::extract::has_nul(b))
                .and_then(|b| serde_json::from_slice(&b).ok())
                .ok_or_else(|| ApiError::field("cursor", "is not a cursor returned by this API"))
        })
        .transpose()
}

/// Splits a fetched `limit + 1` rows into a page, computing the next cursor from the last item.
pub fn page<T, K: Serialize>(mut rows: Vec<T>, limit: i64, key: impl Fn(&T) -> K) -> Page<T> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let next_cursor = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(|last| encode(&key(last)))
    } else {
        None
    };
    Page {
        items: rows,
        next_cursor,
    }
}

/// Decodes an offset cursor (used where results are sorted by a choice of keys).
pub fn offset(cursor: Option<&str>) -> ApiResult<i64> {
    match decode::<i64>(cursor)? {
        None => Ok(0),
        Some(n) if n >= 0 => Ok(n),
        Some(_) => Err(ApiError::field(
            "cursor",
            "is not a cursor returned by this API",
        )),
    }
}

/// Splits `limit + 1` rows fetched at `offset` into a page whose cursor is the next offset.
pub fn offset_page<T>(rows: Vec<T>, limit: i64, offset: i64) -> Page<T> {
    let mut page = page(rows, limit, |_| 0i64);
    page.next_cursor = page.next_cursor.map(|_| encode(&(offset + limit)));
    page
}
