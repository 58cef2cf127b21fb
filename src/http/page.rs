//! Paging as GitLab does it: `page` and `per_page` in, `X-Total`, `X-Total-Pages`,
//! `X-Page`, `X-Per-Page`, `X-Next-Page`, `X-Prev-Page` and `Link` out.

use axum::http::{HeaderMap, HeaderValue};

use super::ApiError;

/// `page` (from 1, default 1) and `per_page` (1 to 100, default 20), checked.
pub fn checked(page: Option<u32>, per_page: Option<u32>) -> Result<(u32, u32), ApiError> {
    let page = page.unwrap_or(1);
    let per_page = per_page.unwrap_or(20);
    if page == 0 {
        return Err(ApiError::bad_request("page", "starts at 1"));
    }
    if !(1..=100).contains(&per_page) {
        return Err(ApiError::bad_request("per_page", "must be 1 to 100"));
    }
    Ok((page, per_page))
}

/// An id filter. Ids are below 2^63 in the store: a larger one is a 400, never clamped
/// onto another id.
pub fn id_filter(field: &str, id: Option<u64>) -> Result<Option<u64>, ApiError> {
    id.map(|id| crate::directory::stored_id(id, field))
        .transpose()
        .map_err(ApiError::bad_request_from)
}

/// What a query value keeps as is: RFC 3986's unreserved characters.
const UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A query value, percent-encoded for a `Link` URL.
pub fn encode(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, UNRESERVED).to_string()
}

/// The headers of one page of `total` items at `path`; `query` holds the filters as
/// `name=value`, already encoded.
pub fn headers(path: &str, query: &[String], page: u32, per_page: u32, total: u64) -> HeaderMap {
    let per_page = u64::from(per_page);
    let page = u64::from(page);
    let pages = total.div_ceil(per_page).max(1);
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    };
    let or_empty = |present: bool, page: u64| {
        if present {
            page.to_string()
        } else {
            String::new()
        }
    };
    set("x-total", total.to_string());
    set("x-total-pages", pages.to_string());
    set("x-page", page.to_string());
    set("x-per-page", per_page.to_string());
    set("x-next-page", or_empty(page < pages, page + 1));
    set("x-prev-page", or_empty(page > 1, page.saturating_sub(1)));
    let link = |rel: &str, page: u64| {
        let mut params = query.to_vec();
        params.push(format!("page={page}"));
        params.push(format!("per_page={per_page}"));
        format!("<{path}?{}>; rel=\"{rel}\"", params.join("&"))
    };
    let mut links = Vec::new();
    if page > 1 {
        links.push(link("prev", page - 1));
    }
    if page < pages {
        links.push(link("next", page + 1));
    }
    links.push(link("first", 1));
    links.push(link("last", pages));
    set("link", links.join(", "));
    headers
}
