//! `/`, `/welcome` (the protected greeting) and `/healthz`.

use actix_web::HttpResponse;
use actix_web::http::header::ContentType;

use crate::state::State;
use crate::web::error::AppError;
use crate::web::extract::SignedIn;
use crate::web::respond::{render, see_other};
use crate::web::templates::WelcomePage;
use crate::web::visitor::Visitor;

pub async fn index(visitor: Visitor) -> HttpResponse {
    see_other(if visitor.current.is_some() {
        "/welcome"
    } else {
        "/sign-in"
    })
}

pub async fn welcome(signed_in: SignedIn) -> Result<HttpResponse, AppError> {
    let user = &signed_in.current().user;
    let page = WelcomePage {
        chrome: signed_in.visitor().chrome("Welcome"),
        name: user
            .full_name
            .clone()
            .unwrap_or_else(|| user.username.clone()),
    };
    render(&page)
}

pub async fn healthz(state: State) -> HttpResponse {
    // The store's own fixed pool: `web::block`'s pool grows to 512 threads under a flood.
    // A full queue (`Busy`) answers 503 like a failed check.
    let healthy = state.store.healthy().await;
    if healthy {
        HttpResponse::Ok()
            .content_type(ContentType::plaintext())
            .body("ok")
    } else {
        HttpResponse::ServiceUnavailable()
            .content_type(ContentType::plaintext())
            .body("database unavailable")
    }
}
