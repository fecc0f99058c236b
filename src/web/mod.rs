//! The web layer: routes, the extractors every request passes through, form and body parsing,
//! the turning of answers into responses, templates, security headers and static files.

pub mod assets;
pub mod error;
pub mod extract;
pub mod forms;
pub mod members;
pub mod messages;
pub mod metrics;
pub mod request;
pub mod respond;
pub mod routes;
pub mod security_headers;
pub mod session;
pub mod static_files;
pub mod templates;
pub mod visitor;
