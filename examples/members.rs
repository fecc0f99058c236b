//! A small app with Gatehouse inside (docs/behaviour.md §10.3): Gatehouse's sign-up, sign-in
//! and account pages, plus the app's own members-only page and members-only JSON route, built
//! on the crate's public API alone.
//!
//! ```text
//! cargo run --example members -- --bind 127.0.0.1:8080 --database members.database
//! ```
//!
//! Open <http://127.0.0.1:8080/dashboard>: you are sent to sign in (or sign up) and come back
//! to the dashboard. `curl http://127.0.0.1:8080/api/notes` answers 401 until the request
//! carries a session cookie. Every `gatehouse` setting works here too (`--help` lists them,
//! each with its `GATEHOUSE_*` variable).

use std::process::ExitCode;

use actix_web::{HttpResponse, HttpServer, web};
use gatehouse::{Config, Gatehouse, SignedIn};

/// The app's own page: only signed-in users reach this handler.
async fn dashboard(user: SignedIn) -> HttpResponse {
    let name = escape(user.full_name().unwrap_or(user.username()));
    let groups = if user.groups().is_empty() {
        "none".to_owned()
    } else {
        escape(&user.groups().join(", "))
    };
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        // A page with a user's data: no cache may keep it.
        .insert_header(("Cache-Control", "no-store"))
        .body(format!(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <title>Dashboard</title></head><body>\
             <h1>Hello, {name}</h1>\
             <p>Signed in as <b id=\"username\">{username}</b> (user {id}, groups: {groups}).</p>\
             <p><a href=\"/api/notes\">Your notes as JSON</a> · <a href=\"/account\">Account</a> · \
             <a href=\"/sign-out\">Sign out</a></p></body></html>\n",
            username = escape(user.username()),
            id = user.user_id(),
        ))
}

/// The app's own JSON route: anonymous callers get a 401 JSON answer, since it is under /api/.
async fn notes(user: SignedIn) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(serde_json::json!({
            "username": user.username(),
            "user_id": user.user_id(),
            "groups": user.groups(),
            "notes": [format!("Welcome back, {}.", user.username())],
        }))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[actix_web::main]
async fn main() -> ExitCode {
    let config = Config::from_args();
    gatehouse::init_logging(&config.log_level);
    match serve(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("members: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> Result<(), Box<dyn std::error::Error>> {
    // The database's one-server lock, the key, the password pool: as `gatehouse serve`.
    let gatehouse = Gatehouse::open(&config)?;
    let site = gatehouse.site();
    let server = HttpServer::new(move || {
        site.app()
            .route("/dashboard", web::get().to(dashboard))
            .route("/api/notes", web::get().to(notes))
    })
    .workers(config.workers)
    .tcp_nodelay(true)
    .bind(config.bind)?;
    for addr in server.addrs() {
        tracing::info!("listening on http://{addr}");
    }
    gatehouse.serve(server.run()).await?;
    Ok(())
}
