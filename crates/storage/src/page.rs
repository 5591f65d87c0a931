//! Keyset pagination: a page is "the next `limit` rows after this key", never an OFFSET.

use serde::Serialize;

/// The largest page any list returns, whatever the caller asks for.
pub const MAX_PAGE: u32 = 500;

/// Which page to read: the rows after `after` (the `next` of the previous page), at most `limit` of them.
#[derive(Debug, Clone)]
pub struct PageRequest<K> {
    pub after: Option<K>,
    pub limit: u32,
}

impl<K> PageRequest<K> {
    pub fn first(limit: u32) -> Self {
        Self { after: None, limit }
    }

    pub fn after(after: K, limit: u32) -> Self {
        Self { after: Some(after), limit }
    }

    /// The limit clamped to 1..=MAX_PAGE, as the `LIMIT` parameter.
    pub(crate) fn sql_limit(&self) -> i64 {
        i64::from(self.limit.clamp(1, MAX_PAGE))
    }
}

/// A page of rows and the key to ask for the next one (`None` on the last page).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Page<T, K> {
    pub items: Vec<T>,
    pub next: Option<K>,
}

impl<T, K> Page<T, K> {
    /// A full page has a next key (the key of its last row); a short page is the last one.
    pub(crate) fn from_items(items: Vec<T>, request_limit: i64, key: impl Fn(&T) -> K) -> Self {
        let full = i64::try_from(items.len()).unwrap_or(i64::MAX) >= request_limit;
        let next = if full { items.last().map(key) } else { None };
        Self { items, next }
    }
}
