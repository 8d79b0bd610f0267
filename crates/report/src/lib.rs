//! leadscore-report: how scores look to people, shared by the dashboard (HTTP crate) and the
//! CLI's HTML reports and CRM exports: self-contained HTML pages and SVG charts ([`charts`]),
//! points and reasons in words ([`words`]), text in links ([`url`]). Pure formatting: no I/O, no store, no HTTP.

pub mod charts;
pub mod url;
pub mod words;

pub use url::percent_encode;
pub use words::{format_points, top_reasons};
