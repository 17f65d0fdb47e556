//! The four ways a collection can be paged, as configuration.

use serde::{Deserialize, Serialize};

/// How a collection is paged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "style", rename_all = "snake_case")]
pub enum PageStyle {
    /// RFC 8288 `Link` headers with `rel="next"`.
    Link,
    /// An opaque cursor in the body, sent back as a query parameter.
    Cursor {
        /// JSON pointer to the cursor in the page body, e.g. `/next_cursor`.
        pointer: String,
        /// The query parameter that carries it, e.g. `cursor`.
        param: String,
    },
    /// `offset` and `limit` query parameters.
    Offset {
        /// Items per page.
        limit: u64,
        /// Parameter names.
        #[serde(default = "offset_name")]
        offset_param: String,
        /// Parameter names.
        #[serde(default = "limit_name")]
        limit_param: String,
    },
    /// `page` and `per_page` query parameters (pages count from 1).
    Page {
        /// Items per page.
        per_page: u64,
        /// Parameter names.
        #[serde(default = "page_name")]
        page_param: String,
        /// Parameter names.
        #[serde(default = "per_page_name")]
        per_page_param: String,
    },
}

fn offset_name() -> String {
    "offset".into()
}
fn limit_name() -> String {
    "limit".into()
}
fn page_name() -> String {
    "page".into()
}
fn per_page_name() -> String {
    "per_page".into()
}

impl PageStyle {
    /// Cursor paging with the cursor at `pointer`, sent as `param`.
    pub fn cursor(pointer: &str, param: &str) -> Self {
        PageStyle::Cursor {
            pointer: pointer.into(),
            param: param.into(),
        }
    }

    /// Offset paging with the usual parameter names.
    pub fn offset(limit: u64) -> Self {
        PageStyle::Offset {
            limit,
            offset_param: offset_name(),
            limit_param: limit_name(),
        }
    }

    /// Page-number paging with the usual parameter names.
    pub fn page(per_page: u64) -> Self {
        PageStyle::Page {
            per_page,
            page_param: page_name(),
            per_page_param: per_page_name(),
        }
    }
}

impl PageStyle {
    /// The query parameters this style sets (none for [`PageStyle::Link`]: its next URL comes
    /// whole from the server).
    pub fn params(&self) -> Vec<&str> {
        match self {
            PageStyle::Link => vec![],
            PageStyle::Cursor { param, .. } => vec![param.as_str()],
            PageStyle::Offset {
                offset_param,
                limit_param,
                ..
            } => vec![offset_param.as_str(), limit_param.as_str()],
            PageStyle::Page {
                page_param,
                per_page_param,
                ..
            } => vec![page_param.as_str(), per_page_param.as_str()],
        }
    }
}
