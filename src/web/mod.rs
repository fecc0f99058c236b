//! The web layer: routes, form and body parsing, the mapping of errors to responses, templates,
//! security headers and static files.

pub mod error;
pub mod forms;
pub mod request;
pub mod routes;
pub mod security_headers;
pub mod static_files;
pub mod templates;
