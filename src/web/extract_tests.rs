//! The extractors' order of answers (docs/design.md, "Extractors and responses"), each request
//! built to fail several checks at once so that only the right precedence passes.

use std::time::Duration;

use actix_web::http::{StatusCode, header};
use actix_web::test::{self, TestRequest};
use actix_web::{App, HttpResponse, web};

use super::*;
use crate::security::csrf::{self, Binding};
use crate::security::password::{Kdf, KdfParams, KdfPool};
use crate::security::secret::SecretKey;
use crate::security::session::SessionPolicy;
use crate::security::throttle::AddressGuard;
use crate::state::{AppState, Parts};
use crate::store::Store;

const SITE: &str = "http://site.example";
const FOREIGN: &str = "http://evil.example";
const FORM: &str = "application/x-www-form-urlencoded";

fn state(dir: &tempfile::TempDir, sign_up_open: bool) -> State {
    let store = Store::open(&dir.path().join("db")).unwrap();
    let kdf = Kdf::new(KdfParams {
        m_kib: 8,
        t: 1,
        p: 1,
    })
    .unwrap();
    let audit = std::sync::Arc::new(crate::audit::AuditLog::new(
        store.clone(),
        Duration::from_secs(60),
    ));
    AppState::build(Parts {
        store,
        kdf: KdfPool::new(kdf, 1, 4),
        clock: std::sync::Arc::new(crate::clock::SystemClock),
        key: SecretKey::from_bytes(&[7; 32]).unwrap(),
        sessions: SessionPolicy {
            secure: false,
            idle: Duration::from_secs(3600),
            max: Duration::from_secs(86_400),
            domain: None,
        },
        audit,
        guard: AddressGuard::new(100, Duration::from_secs(60), 100, 100),
        lock_attempts: 5,
        lock_window: Duration::from_secs(60),
        lock_capacity: 100,
        public_url: Some(SITE.into()),
        trusted_proxies: Vec::new(),
        forward: Default::default(),
        body_timeout: Duration::from_secs(10),
        sign_up_open,
        audit_retention: Duration::from_secs(86_400),
        mail: None,
        email_verification: Default::default(),
        reset: Default::default(),
    })
}

/// `resp` is a 303 to the signed sign-in URL leading back to `page`.
fn assert_leads_to_sign_in(resp: &actix_web::dev::ServiceResponse, page: &str) {
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let location = resp.headers().get(header::LOCATION).unwrap();
    let location = location.to_str().unwrap();
    let expected = format!("/sign-in?next={}&", page.replace('/', "%2F"));
    assert!(location.starts_with(&expected), "{location}");
}

async fn ok() -> HttpResponse {
    HttpResponse::Ok().body("passed")
}

/// Posts `body` to `path` of an app whose routes each take one extractor.
async fn answer(sign_up_open: bool, req: TestRequest) -> actix_web::dev::ServiceResponse {
    answer_with(sign_up_open, req).await.map_into_boxed_body()
}

async fn answer_with(
    sign_up_open: bool,
    req: TestRequest,
) -> actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody> {
    let dir = tempfile::tempdir().unwrap();
    let app = test::init_service(
        App::new()
            .app_data(state(&dir, sign_up_open))
            .wrap(actix_web::middleware::from_fn(respond::error_pages))
            .route("/form", web::post().to(|_: CsrfForm| ok()))
            .route(
                "/sign-up",
                web::post().to(|_: SignUpOpen, _: CsrfForm| ok()),
            )
            .route("/account/password", web::post().to(|_: SignedInForm| ok()))
            .route("/welcome", web::get().to(|_: SignedIn| ok()))
            .route("/api/me", web::get().to(|_: SignedIn| ok()))
            .route(
                "/api/json",
                web::post().to(|_: Then<Json<serde_json::Value>, Visitor>| ok()),
            )
            .route("/api/session", web::delete().to(|_: SameOrigin| ok()))
            .route(
                "/missing",
                web::get().to(|| async { Err::<HttpResponse, _>(AppError::NotFound) }),
            ),
    )
    .await;
    test::call_service(&app, req.to_request()).await
}

fn post(path: &str, content_type: &str, origin: &str, body: impl Into<Vec<u8>>) -> TestRequest {
    TestRequest::post()
        .uri(path)
        .peer_addr("192.0.2.1:4000".parse().unwrap())
        .insert_header((header::CONTENT_TYPE, content_type))
        .insert_header((header::ORIGIN, origin))
        .set_payload(body.into())
}

/// A valid anonymous CSRF cookie and its form token.
fn csrf_pair() -> (String, String) {
    let key = SecretKey::from_bytes(&[7; 32]).unwrap();
    let cookie = "anon-cookie-value".to_owned();
    let token = csrf::token(&key, &Binding::Anonymous(&cookie));
    (format!("csrf={cookie}"), token)
}

#[actix_web::test]
async fn form_answers_413_then_415_then_400_then_403() {
    let big = vec![b'a'; crate::web::forms::MAX_BODY + 1];
    let too_big = post("/form", "text/plain", FOREIGN, big);
    assert_eq!(
        answer(true, too_big).await.status(),
        StatusCode::PAYLOAD_TOO_LARGE
    );
    let wrong_type = post("/form", "text/plain", FOREIGN, "a=%zz");
    assert_eq!(
        answer(true, wrong_type).await.status(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    let malformed = post("/form", FORM, FOREIGN, "a=%zz");
    assert_eq!(
        answer(true, malformed).await.status(),
        StatusCode::BAD_REQUEST
    );
    let foreign = post("/form", FORM, FOREIGN, "a=1");
    assert_eq!(answer(true, foreign).await.status(), StatusCode::FORBIDDEN);
}

#[actix_web::test]
async fn form_without_a_token_is_403_with_a_fresh_csrf_cookie() {
    let resp = answer(true, post("/form", FORM, SITE, "a=1")).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(resp.headers().contains_key(header::SET_COOKIE));
    let body = test::read_body(resp).await;
    assert!(String::from_utf8_lossy(&body).contains("This form has expired"));
}

#[actix_web::test]
async fn form_with_a_valid_token_reaches_the_handler() {
    let (cookie_header, token) = csrf_pair();
    let name = SessionPolicy {
        secure: false,
        idle: Duration::ZERO,
        max: Duration::ZERO,
        domain: None,
    }
    .csrf_cookie_name();
    let cookie_header = cookie_header.replacen("csrf", name, 1);
    let req = post("/form", FORM, SITE, format!("csrf_token={token}"))
        .insert_header((header::COOKIE, cookie_header.clone()));
    let resp = answer(true, req).await;
    assert_eq!(resp.status(), StatusCode::OK);

    // The same form to a signed-in route, without a session: 303 to sign in, back to the page.
    let req = post(
        "/account/password",
        FORM,
        SITE,
        format!("csrf_token={token}"),
    )
    .insert_header((header::COOKIE, cookie_header));
    let resp = answer(true, req).await;
    assert_leads_to_sign_in(&resp, "/account");
}

#[actix_web::test]
async fn a_signed_in_form_checks_csrf_before_the_session() {
    let resp = answer(true, post("/account/password", FORM, SITE, "a=1")).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
}

#[actix_web::test]
async fn closed_sign_up_answers_before_the_body_is_read() {
    let big = vec![b'a'; crate::web::forms::MAX_BODY + 1];
    let resp = answer(false, post("/sign-up", "text/plain", FOREIGN, big)).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let body = String::from_utf8_lossy(&test::read_body(resp).await).into_owned();
    assert!(body.contains("does not take sign-ups"), "{body}");
    assert!(!body.contains("href=\"/sign-up\""), "{body}");
}

#[actix_web::test]
async fn json_answers_413_then_415_then_400_then_403_in_json() {
    let big = vec![b'{'; crate::web::forms::MAX_BODY + 1];
    let cases = [
        (post("/api/json", "text/plain", FOREIGN, big), 413),
        (post("/api/json", "text/plain", FOREIGN, "{"), 415),
        (post("/api/json", "application/json", FOREIGN, "{"), 400),
        (post("/api/json", "application/json", FOREIGN, "{}"), 403),
        (post("/api/json", "application/json", SITE, "{}"), 200),
    ];
    for (req, status) in cases {
        let resp = answer(true, req).await;
        assert_eq!(resp.status().as_u16(), status);
        if status != 200 {
            let ct = resp.headers().get(header::CONTENT_TYPE).unwrap();
            assert_eq!(ct, "application/json", "{status}");
        }
    }
}

#[actix_web::test]
async fn anonymous_is_401_json_under_api_and_303_on_pages() {
    let resp = answer(true, TestRequest::get().uri("/api/me")).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let body: serde_json::Value = test::read_body_json(resp).await;
    assert_eq!(body["error"], "Sign in to continue.");
    let resp = answer(true, TestRequest::get().uri("/welcome")).await;
    assert_leads_to_sign_in(&resp, "/welcome");
}

#[actix_web::test]
async fn a_foreign_origin_cannot_end_a_session() {
    let req = TestRequest::delete()
        .uri("/api/session")
        .insert_header((header::ORIGIN, FOREIGN));
    assert_eq!(answer(true, req).await.status(), StatusCode::FORBIDDEN);
    let req = TestRequest::delete().uri("/api/session");
    assert_eq!(answer(true, req).await.status(), StatusCode::OK);
}

#[actix_web::test]
async fn error_pages_follow_the_sign_up_setting() {
    for open in [true, false] {
        let resp = answer(open, TestRequest::get().uri("/missing")).await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        let body = String::from_utf8_lossy(&test::read_body(resp).await).into_owned();
        assert!(body.contains("Page not found"), "{body}");
        assert_eq!(body.contains("href=\"/sign-up\""), open, "{body}");
    }
}

#[test]
fn sign_in_leads_back_to_the_page_of_the_path() {
    assert_eq!(return_path("/account/password"), "/account");
    assert_eq!(return_path("/account/sessions/5/revoke"), "/account");
    assert_eq!(return_path("/account"), "/account");
    assert_eq!(return_path("/welcome"), "/welcome");
    assert_eq!(return_path("/"), "/");
    // A page keeps its whole target (a deep link); a form post goes back to its page.
    let get = TestRequest::get()
        .uri("/reports/2026?q=a%20b&x=1")
        .to_http_request();
    assert_eq!(return_target(&get), "/reports/2026?q=a%20b&x=1");
    let post = TestRequest::post()
        .uri("/account/password?x=1")
        .to_http_request();
    assert_eq!(return_target(&post), "/account");
}
