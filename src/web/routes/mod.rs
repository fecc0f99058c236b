//! HTTP routes, one module per resource. Handlers stay thin: take what the extractors of
//! [`crate::web::extract`] checked, call a flow in [`crate::accounts`] or the store, answer
//! through [`crate::web::respond`]. No route module uses another's items.

use actix_web::{HttpRequest, web};

use crate::web::error::AppError;
use crate::web::respond;

pub mod account;
pub mod api;
pub mod forward_auth;
pub mod home;
pub mod passkeys;
pub mod password_reset;
pub mod sign_in;
pub mod sign_out;
pub mod sign_up;
pub mod verify_email;

/// A handler answering 405 with the resource's `Allow` header.
fn not_allowed(allow: &'static str) -> actix_web::Route {
    web::to(move |req: HttpRequest| async move {
        let e = AppError::MethodNotAllowed {
            method: req.method().to_string(),
            allow,
        };
        respond::error(&req, &e)
    })
}

/// `GET` (and `HEAD`) only.
macro_rules! get_only {
    ($cfg:expr, $path:expr, $handler:expr) => {
        $cfg.service(
            web::resource($path)
                .route(web::get().to($handler))
                .route(web::head().to($handler))
                .default_service(not_allowed("GET, HEAD")),
        )
    };
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    get_only!(cfg, "/", home::index);
    get_only!(cfg, "/welcome", home::welcome);
    get_only!(cfg, "/healthz", home::healthz);
    get_only!(cfg, "/account", account::show);
    get_only!(cfg, "/static/{name}", crate::web::static_files::serve);
    get_only!(cfg, "/favicon.ico", crate::web::static_files::favicon_ico);
    get_only!(cfg, "/robots.txt", crate::web::static_files::robots_txt);
    cfg.service(
        web::resource("/sign-up")
            .route(web::get().to(sign_up::form))
            .route(web::head().to(sign_up::form))
            .route(web::post().to(sign_up::submit))
            .default_service(not_allowed("GET, HEAD, POST")),
    )
    .service(
        web::resource("/sign-in")
            .route(web::get().to(sign_in::form))
            .route(web::head().to(sign_in::form))
            .route(web::post().to(sign_in::submit))
            .default_service(not_allowed("GET, HEAD, POST")),
    )
    .service(
        web::resource("/sign-in/code")
            .route(web::get().to(sign_in::code::form))
            .route(web::head().to(sign_in::code::form))
            .route(web::post().to(sign_in::code::submit))
            .default_service(not_allowed("GET, HEAD, POST")),
    )
    .service(
        web::resource("/sign-out")
            .route(web::get().to(sign_out::form))
            .route(web::head().to(sign_out::form))
            .route(web::post().to(sign_out::submit))
            .default_service(not_allowed("GET, HEAD, POST")),
    )
    .service(
        web::resource("/password-reset")
            .route(web::get().to(password_reset::ask_form))
            .route(web::head().to(password_reset::ask_form))
            .route(web::post().to(password_reset::ask))
            .default_service(not_allowed("GET, HEAD, POST")),
    )
    .service(
        web::resource("/password-reset/{token}")
            .route(web::get().to(password_reset::show))
            .route(web::head().to(password_reset::show))
            .route(web::post().to(password_reset::submit))
            .default_service(not_allowed("GET, HEAD, POST")),
    )
    .service(
        web::resource("/verify-email/{token}")
            .route(web::get().to(verify_email::show))
            .route(web::head().to(verify_email::show))
            .route(web::post().to(verify_email::confirm))
            .default_service(not_allowed("GET, HEAD, POST")),
    )
    .service(
        web::resource("/sign-in/verify-email")
            .route(web::post().to(verify_email::resend_without_session))
            .default_service(not_allowed("POST")),
    )
    .service(
        web::resource("/account/verify-email")
            .route(web::post().to(verify_email::resend))
            .default_service(not_allowed("POST")),
    )
    .service(
        web::resource("/account/password")
            .route(web::post().to(account::change_password))
            .default_service(not_allowed("POST")),
    )
    .service(
        web::resource("/account/profile")
            .route(web::post().to(account::profile))
            .default_service(not_allowed("POST")),
    )
    .service(
        web::resource("/account/two-step/setup")
            .route(web::post().to(account::two_step::start))
            .default_service(not_allowed("POST")),
    )
    .service(
        web::resource("/account/two-step/confirm")
            .route(web::post().to(account::two_step::confirm))
            .default_service(not_allowed("POST")),
    )
    .service(
        web::resource("/account/two-step/recovery-codes")
            .route(web::post().to(account::two_step::renew))
            .default_service(not_allowed("POST")),
    )
    .service(
        web::resource("/account/two-step/off")
            .route(web::post().to(account::two_step::off))
            .default_service(not_allowed("POST")),
    )
    .service(
        web::resource("/account/delete")
            .route(web::post().to(account::delete))
            .default_service(not_allowed("POST")),
    )
    .service(
        web::resource("/account/sessions/revoke-others")
            .route(web::post().to(account::revoke_others))
            .default_service(not_allowed("POST")),
    )
    .service(
        web::resource("/account/sessions/{id}/revoke")
            .route(web::post().to(account::revoke))
            .default_service(not_allowed("POST")),
    )
    .service(
        web::resource("/api/users")
            .route(web::post().to(api::create_user))
            .default_service(not_allowed("POST")),
    )
    .service(
        web::resource("/api/session")
            .route(web::post().to(api::create_session))
            .route(web::delete().to(api::delete_session))
            .default_service(not_allowed("POST, DELETE")),
    );
    cfg.service(
        web::resource("/api/password-reset")
            .route(web::post().to(api::request_reset))
            .default_service(not_allowed("POST")),
    );
    cfg.service(
        web::resource("/api/password-reset/{token}")
            .route(web::post().to(api::reset_password))
            .default_service(not_allowed("POST")),
    );
    cfg.service(
        web::resource("/api/me")
            .route(web::get().to(api::me))
            .route(web::head().to(api::me))
            .route(web::delete().to(api::delete_me))
            .route(web::patch().to(api::patch_me))
            .default_service(not_allowed("GET, HEAD, DELETE, PATCH")),
    );
    passkey_routes(cfg);
    // Any method: a proxy asks with the method of the request it guards.
    cfg.service(web::resource("/auth/request").to(forward_auth::request))
        .service(web::resource("/auth/forward").to(forward_auth::forward));
    cfg.default_service(web::to(|req: HttpRequest| async move {
        respond::error(&req, &AppError::NotFound)
    }));
}

/// Passkeys (docs/behaviour.md §13.2): the ceremonies' JSON endpoints and `/account`'s forms.
fn passkey_routes(cfg: &mut web::ServiceConfig) {
    let post_only = |path: &str, route: actix_web::Route| {
        web::resource(path)
            .route(route)
            .default_service(not_allowed("POST"))
    };
    cfg.service(post_only(
        "/sign-in/passkey/options",
        web::post().to(passkeys::sign_in_options),
    ))
    .service(post_only(
        "/sign-in/passkey",
        web::post().to(passkeys::sign_in),
    ))
    .service(post_only(
        "/account/passkeys/options",
        web::post().to(passkeys::register_options),
    ))
    .service(post_only(
        "/account/passkeys",
        web::post().to(passkeys::register),
    ))
    .service(post_only(
        "/account/passkeys/{id}/rename",
        web::post().to(passkeys::rename),
    ))
    .service(post_only(
        "/account/passkeys/{id}/remove",
        web::post().to(passkeys::remove),
    ));
}
