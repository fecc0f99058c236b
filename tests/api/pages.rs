//! Routes, statuses and headers of the HTML pages.

use crate::common::*;

#[tokio::test]
async fn health_check_answers_ok() {
    let app = TestApp::spawn(&[]);
    let r = reqwest::get(app.url("/healthz")).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "ok");
}

#[tokio::test]
async fn root_redirects_by_state() {
    let app = TestApp::spawn(&[]);
    let c = app.client();
    let r = c.get(app.url("/")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/sign-in");
    sign_up(&app, &c, "rooty", "root-password-1").await;
    let r = c.get(app.url("/")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/welcome");
}

#[tokio::test]
async fn html_pages_carry_security_headers() {
    let app = TestApp::spawn(&[]);
    let c = app.client();
    for path in ["/sign-in", "/sign-up", "/sign-out", "/nope"] {
        let r = c.get(app.url(path)).send().await.unwrap();
        let h = r.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        for part in [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "frame-ancestors 'none'",
            "form-action 'self'",
            "base-uri 'none'",
        ] {
            assert!(csp.contains(part), "{path}: {csp}");
        }
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["referrer-policy"], "same-origin");
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h["cache-control"], "no-store", "{path}");
        let body = r.text().await.unwrap();
        assert!(
            !body.contains("<script>") && !body.contains("style="),
            "{path}: inline script/style"
        );
    }
}

#[tokio::test]
async fn forms_have_the_spec_field_names_and_autocomplete() {
    let app = TestApp::spawn(&[]);
    let c = app.client();
    let up = page_text(&app, &c, "/sign-up").await;
    for name in [
        "username",
        "password",
        "password_repeat",
        "email",
        "full_name",
        "password_digest",
        "csrf_token",
    ] {
        assert!(
            up.contains(&format!("name=\"{name}\"")),
            "sign-up lacks {name}"
        );
    }
    assert!(
        up.contains("autocomplete=\"new-password\"") && up.contains("autocomplete=\"username\"")
    );
    let inn = page_text(&app, &c, "/sign-in").await;
    for name in ["username", "password", "password_digest", "csrf_token"] {
        assert!(
            inn.contains(&format!("name=\"{name}\"")),
            "sign-in lacks {name}"
        );
    }
    assert!(inn.contains("autocomplete=\"current-password\""));
    // Every input has a label tied to it.
    for id in ["username", "password"] {
        assert!(inn.contains(&format!("<label for=\"{id}\">")));
    }
}

#[tokio::test]
async fn static_files_are_versioned_and_cached() {
    let app = TestApp::spawn(&[]);
    let html = reqwest::get(app.url("/sign-in"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for asset in ["gatehouse.js", "passkeys.js", "style.css"] {
        let start = html
            .find(&format!("/static/{asset}?v="))
            .expect("versioned URL");
        let end = html[start..].find('"').unwrap() + start;
        let url = &html[start..end];
        let r = reqwest::get(app.url(url)).await.unwrap();
        assert_eq!(r.status(), 200);
        assert!(
            r.headers()["cache-control"]
                .to_str()
                .unwrap()
                .contains("max-age=31536000")
        );
        let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(ct.starts_with(if asset.ends_with(".js") {
            "text/javascript"
        } else {
            "text/css"
        }));
        assert!(!r.bytes().await.unwrap().is_empty());
    }
    assert_eq!(
        reqwest::get(app.url("/static/nope.js"))
            .await
            .unwrap()
            .status(),
        404
    );
}

#[tokio::test]
async fn unknown_paths_are_404_pages_and_wrong_methods_405_with_allow() {
    let app = TestApp::spawn(&[]);
    let c = app.client();
    let r = c.get(app.url("/does-not-exist")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(r.text().await.unwrap().contains("Page not found"));

    for (method, path, allow) in [
        (reqwest::Method::POST, "/welcome", "GET, HEAD"),
        (reqwest::Method::DELETE, "/sign-in", "GET, HEAD, POST"),
        (reqwest::Method::PUT, "/sign-up", "GET, HEAD, POST"),
        (reqwest::Method::GET, "/account/password", "POST"),
        (reqwest::Method::GET, "/account/sessions/1/revoke", "POST"),
        (
            reqwest::Method::GET,
            "/account/sessions/revoke-others",
            "POST",
        ),
        (reqwest::Method::POST, "/healthz", "GET, HEAD"),
        (reqwest::Method::GET, "/api/users", "POST"),
        (reqwest::Method::PUT, "/api/session", "POST, DELETE"),
        (reqwest::Method::POST, "/api/me", "GET, HEAD, DELETE, PATCH"),
    ] {
        let r = c
            .request(method.clone(), app.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 405, "{method} {path}");
        assert_eq!(r.headers()["allow"], allow, "{method} {path}");
    }
}

#[tokio::test]
async fn welcome_greets_by_full_name_or_username() {
    let app = TestApp::spawn(&[]);
    let c = app.client();
    let r = submit_form(
        &app,
        &c,
        "/sign-up",
        "/sign-up",
        &[
            ("username", "Grace_H"),
            ("password", "hopper-compiler"),
            ("password_repeat", "hopper-compiler"),
            ("email", ""),
            ("full_name", "Grace <Hopper>"),
        ],
    )
    .await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/welcome");
    let html = page_text(&app, &c, "/welcome").await;
    assert!(
        html.contains("Welcome, Grace &#60;Hopper&#62;!")
            || html.contains("Welcome, Grace &lt;Hopper&gt;!"),
        "{html}"
    );
    assert!(html.contains("grace_h"), "header shows who is signed in");

    let c2 = app.client();
    sign_up(&app, &c2, "plain_user", "plain-password").await;
    let html = page_text(&app, &c2, "/welcome").await;
    assert!(html.contains("Welcome, plain_user!"));
}

#[tokio::test]
async fn sign_in_and_sign_up_are_served_when_signed_in() {
    let app = TestApp::spawn(&[]);
    let c = app.client();
    sign_up(&app, &c, "already", "already-in-1").await;
    for path in ["/sign-in", "/sign-up", "/sign-out"] {
        let r = c.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert!(
            r.text()
                .await
                .unwrap()
                .contains("Signed in as <strong>already</strong>"),
            "{path}"
        );
    }
}

#[tokio::test]
async fn get_sign_out_changes_nothing() {
    let app = TestApp::spawn(&[]);
    let c = app.client();
    sign_up(&app, &c, "stayer", "stayer-password").await;
    let r = c.get(app.url("/sign-out")).send().await.unwrap();
    assert_answer(r, 200, "<button").await;
    assert_eq!(
        c.get(app.url("/welcome")).send().await.unwrap().status(),
        200
    );
}

/// The versioned URL of `asset` as a page links it.
fn asset_url(html: &str, asset: &str) -> String {
    let start = html
        .find(&format!("/static/{asset}?v="))
        .unwrap_or_else(|| panic!("no versioned URL for {asset}"));
    let end = html[start..].find('"').unwrap() + start;
    html[start..end].to_owned()
}

/// GETs `url` with `Accept-Encoding: accept` (none when empty); returns the response.
async fn get_encoded(app: &TestApp, url: &str, accept: &str) -> reqwest::Response {
    let c = reqwest::Client::new();
    let mut req = c.get(app.url(url));
    if !accept.is_empty() {
        req = req.header("accept-encoding", accept);
    }
    req.send().await.unwrap()
}

fn header(r: &reqwest::Response, name: &str) -> String {
    r.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

fn decode(coding: &str, bytes: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    match coding {
        "" => out.extend_from_slice(bytes),
        "gzip" => {
            flate2::read::GzDecoder::new(bytes)
                .read_to_end(&mut out)
                .expect("valid gzip");
        }
        "br" => {
            brotli::Decompressor::new(bytes, 4096)
                .read_to_end(&mut out)
                .expect("valid brotli");
        }
        other => panic!("unexpected Content-Encoding {other}"),
    }
    out
}

#[tokio::test]
async fn static_files_are_compressed_when_the_client_accepts_it() {
    let app = TestApp::spawn(&[]);
    let html = page_text(&app, &app.client(), "/sign-in").await;
    for asset in ["gatehouse.js", "style.css", "favicon.svg"] {
        let url = asset_url(&html, asset);
        let plain = get_encoded(&app, &url, "").await;
        assert_eq!(plain.status(), 200, "{url}");
        assert_eq!(
            header(&plain, "content-encoding"),
            "",
            "{url}: no coding asked"
        );
        let plain_etag = header(&plain, "etag");
        let identity = plain.bytes().await.unwrap();
        assert!(!identity.is_empty());
        for (accept, coding) in [
            ("", ""),
            ("identity", ""),
            ("gzip", "gzip"),
            ("br", "br"),
            ("gzip, deflate, br, zstd", "br"),
            ("br;q=0, gzip", "gzip"),
            ("br;q=0, gzip;q=0", ""),
        ] {
            let r = get_encoded(&app, &url, accept).await;
            let what = format!("{url} with Accept-Encoding {accept:?}");
            assert_eq!(r.status(), 200, "{what}");
            assert_eq!(header(&r, "content-encoding"), coding, "{what}");
            assert_eq!(header(&r, "vary"), "Accept-Encoding", "{what}");
            assert_eq!(
                header(&r, "cache-control"),
                "public, max-age=31536000, immutable",
                "{what}"
            );
            let etag = header(&r, "etag");
            assert_eq!(
                etag == plain_etag,
                coding.is_empty(),
                "{what}: each coding has its own ETag ({etag} vs {plain_etag})"
            );
            let bytes = r.bytes().await.unwrap();
            if !coding.is_empty() {
                assert!(bytes.len() < identity.len(), "{what}: not smaller");
            }
            assert_eq!(
                decode(coding, &bytes),
                identity,
                "{what}: decodes to the file"
            );
        }
    }
    // A cached copy revalidates by its ETag.
    let url = asset_url(&html, "style.css");
    let etag = header(&get_encoded(&app, &url, "br").await, "etag");
    let r = reqwest::Client::new()
        .get(app.url(&url))
        .header("accept-encoding", "br")
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
}

#[tokio::test]
async fn html_pages_are_never_compressed() {
    let app = TestApp::spawn(&[]);
    let c = app.client();
    sign_up(&app, &c, "breach_check", "breach-password-1").await;
    let accept = "gzip, deflate, br, zstd";
    let pages = [
        "/sign-in",
        "/sign-up",
        "/sign-out",
        "/welcome",
        "/account",
        "/nope",
    ];
    for path in pages {
        let r = c
            .get(app.url(path))
            .header("accept-encoding", accept)
            .send()
            .await
            .unwrap();
        assert_eq!(header(&r, "content-encoding"), "", "{path}");
        let body = r.text().await.unwrap();
        assert!(body.starts_with("<!doctype html>"), "{path}: {body:.60}");
    }
    // Anonymous forms too (their CSRF token sits next to the reflected username).
    let r = get_encoded(&app, "/sign-in", accept).await;
    assert_eq!(header(&r, "content-encoding"), "");
}

#[tokio::test]
async fn every_page_links_the_icon_and_has_a_description() {
    let app = TestApp::spawn(&[]);
    let c = app.client();
    let mut pages = vec![];
    for path in ["/sign-in", "/sign-up", "/sign-out", "/nope"] {
        pages.push((path, page_text(&app, &c, path).await));
    }
    sign_up(&app, &c, "iconic", "iconic-password-1").await;
    for path in ["/welcome", "/account"] {
        pages.push((path, page_text(&app, &c, path).await));
    }
    for (path, html) in &pages {
        let icon = asset_url(html, "favicon.svg");
        assert!(
            html.contains(&format!(
                "<link rel=\"icon\" href=\"{icon}\" type=\"image/svg+xml\">"
            )),
            "{path}: no icon link"
        );
        let marker = "<meta name=\"description\" content=\"";
        let start = html
            .find(marker)
            .unwrap_or_else(|| panic!("{path}: no meta description"))
            + marker.len();
        let content = &html[start..start + html[start..].find('"').unwrap()];
        assert!(content.len() > 20, "{path}: description {content:?}");
    }

    let icon_url = asset_url(&pages[0].1, "favicon.svg");
    let icon = reqwest::get(app.url(&icon_url)).await.unwrap();
    assert_eq!(icon.status(), 200);
    assert_eq!(header(&icon, "content-type"), "image/svg+xml");
    let svg = icon.bytes().await.unwrap();
    assert!(svg.starts_with(b"<svg"), "an SVG");
    // Browsers and tools ask for /favicon.ico by name: the same icon answers there.
    let ico = reqwest::get(app.url("/favicon.ico")).await.unwrap();
    assert_eq!(ico.status(), 200);
    assert_eq!(header(&ico, "content-type"), "image/svg+xml");
    assert_eq!(header(&ico, "cache-control"), "public, max-age=86400");
    assert_eq!(ico.bytes().await.unwrap(), svg);
    let r = reqwest::Client::new()
        .post(app.url("/favicon.ico"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
}

#[tokio::test]
async fn robots_txt_keeps_crawlers_to_the_public_pages() {
    let app = TestApp::spawn(&[]);
    let r = reqwest::get(app.url("/robots.txt")).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-type"), "text/plain; charset=utf-8");
    let text = r.text().await.unwrap();
    let rules: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert_eq!(rules[0], "User-agent: *", "{text}");
    let disallowed: Vec<&str> = rules
        .iter()
        .filter_map(|l| l.strip_prefix("Disallow:").map(str::trim))
        .collect();
    for private in ["/api/", "/account/", "/sign-out"] {
        assert!(
            disallowed.contains(&private),
            "{private} not disallowed: {text}"
        );
    }
    // The public pages stay crawlable (robots rules are path prefixes).
    for public in ["/sign-in", "/sign-up", "/static/style.css", "/"] {
        assert!(
            !disallowed
                .iter()
                .any(|d| !d.is_empty() && public.starts_with(d) && *d != "/"),
            "{public} is disallowed: {text}"
        );
    }
}

#[tokio::test]
async fn only_sign_in_urls_with_a_next_ask_not_to_be_indexed() {
    let app = TestApp::spawn(&[]);
    let c = app.client();
    let noindex = "<meta name=\"robots\" content=\"noindex\">";
    assert!(!page_text(&app, &c, "/sign-in").await.contains(noindex));
    assert!(!page_text(&app, &c, "/sign-up").await.contains(noindex));
    let r = c.get(app.url("/account")).send().await.unwrap();
    let redirect = location(&r);
    assert!(redirect.starts_with("/sign-in?next="), "{redirect}");
    assert!(page_text(&app, &c, &redirect).await.contains(noindex));
}

#[tokio::test]
async fn sign_out_leaves_a_one_time_notice_on_the_sign_in_page() {
    const NOTICE: &str = "You are signed out.";
    let app = TestApp::spawn(&[]);
    let c = app.client();
    // A plain visit says nothing of the kind.
    assert!(!page_text(&app, &c, "/sign-in").await.contains(NOTICE));

    sign_up(&app, &c, "leaver", "leaver-password-1").await;
    let r = submit_form(&app, &c, "/sign-out", "/sign-out", &[]).await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/sign-in", "the Location stays bare");
    let flash = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|c| c.starts_with("signed_out="))
        .expect("a signed_out cookie")
        .to_owned();
    for part in [
        "signed_out=1",
        "Path=/sign-in",
        "Max-Age=60",
        "HttpOnly",
        "SameSite=Lax",
    ] {
        assert!(flash.contains(part), "{flash} lacks {part}");
    }

    // The next sign-in page says it once, and clears the cookie.
    let r = c.get(app.url("/sign-in")).send().await.unwrap();
    let cleared = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("signed_out="))
        .expect("the notice clears its cookie");
    assert!(
        cleared.contains("Max-Age=0") && cleared.contains("Path=/sign-in"),
        "{cleared}"
    );
    let html = r.text().await.unwrap();
    assert!(
        html.contains(&format!("role=\"status\">{NOTICE}</p>")),
        "no notice after signing out:\n{html}"
    );
    assert!(
        !page_text(&app, &c, "/sign-in").await.contains(NOTICE),
        "shown twice"
    );

    // With --secure-cookies the cookie keeps to HTTPS (`__Secure-`: `__Host-` needs Path=/).
    let secure = TestApp::spawn(&["--secure-cookies"]);
    let c = secure.client();
    let token = csrf_token(&secure, &c, "/sign-out").await;
    let r = post_form(&secure, &c, "/sign-out", &token, &[]).await;
    assert_eq!(location(&r), "/sign-in");
    let flash: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .filter(|c| c.contains("signed_out="))
        .collect();
    assert_eq!(flash.len(), 1, "{flash:?}");
    assert!(
        flash[0].starts_with("__Secure-signed_out=1")
            && flash[0].split(';').any(|p| p.trim() == "Secure"),
        "{flash:?}"
    );
}

#[tokio::test]
async fn form_inputs_suit_phones_and_the_footer_tells_the_truth_without_js() {
    let app = TestApp::spawn(&[]);
    let c = app.client();
    let up = page_text(&app, &c, "/sign-up").await;
    let input = |html: &str, id: &str| {
        let start = html
            .find(&format!("<input id=\"{id}\""))
            .unwrap_or_else(|| panic!("no #{id}"));
        html[start..start + html[start..].find('>').unwrap()].to_owned()
    };
    let full_name = input(&up, "full_name");
    assert!(
        full_name.contains("autocapitalize=\"words\""),
        "{full_name}"
    );
    let username = input(&up, "username");
    for attr in [
        "autocapitalize=\"none\"",
        "spellcheck=\"false\"",
        "data-check-username",
    ] {
        assert!(username.contains(attr), "{username} lacks {attr}");
    }
    // Sign-in applies no format rule to the username (docs/behaviour.md §2).
    let inn = page_text(&app, &c, "/sign-in").await;
    assert!(!input(&inn, "username").contains("data-check-username"));
    for html in [&up, &inn] {
        assert!(html.contains(
            "<noscript><p>JavaScript is off: your password is sent to the server as typed"
        ));
    }
}
