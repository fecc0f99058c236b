//! Headers every response carries (docs/behaviour.md §6): a strict CSP without inline script or
//! style, no sniffing, no framing, same-origin referrers, and `no-store` unless a handler chose a
//! cache policy (static files do). Over HTTPS (served directly or behind a proxy, i.e.
//! `Config::secure`), also HSTS.

use actix_web::middleware::DefaultHeaders;

pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
                       frame-ancestors 'none'; form-action 'self'; base-uri 'none'";

/// [`CSP`] with one more origin a form may lead to: a sign-in page carrying a forward-auth
/// `rd` posts to itself, but its 303 goes to the app's origin, and browsers apply
/// `form-action` to the redirects that follow a form submission.
pub fn csp_with_form_target(origin: &str) -> String {
    CSP.replace(
        "form-action 'self'",
        &format!("form-action 'self' {origin}"),
    )
}

/// Two years, without `includeSubDomains`: the operator's other hosts under the same domain are
/// not ours to commit to HTTPS (see docs/design.md).
pub const HSTS: &str = "max-age=63072000";

pub fn headers(hsts: bool) -> DefaultHeaders {
    let headers = DefaultHeaders::new()
        .add(("Content-Security-Policy", CSP))
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("Referrer-Policy", "same-origin"))
        .add(("X-Frame-Options", "DENY"))
        .add(("Cache-Control", "no-store"));
    // Only when the site is known to be served over HTTPS: HSTS on a plain-HTTP deployment
    // is ignored by browsers at best and locks users out of a LAN demo at worst.
    if hsts {
        headers.add(("Strict-Transport-Security", HSTS))
    } else {
        headers
    }
}
