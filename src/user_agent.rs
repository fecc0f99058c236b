//! A browser named by family and system ("Chrome 156 on Linux") from its `User-Agent`: for the
//! sessions list on `/account` and for mails, which never carry the raw header.

/// A short description of a user agent for the sessions list, e.g. "Chrome 156 on Linux".
pub fn describe(ua: &str) -> String {
    let version_after = |token: &str| -> Option<String> {
        let start = ua.find(token)? + token.len();
        let v: String = ua[start..]
            .chars()
            .take_while(|c| c.is_ascii_digit())
            .collect();
        Some(v)
    };
    let browser = [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("Chrome/", "Chrome"),
        ("Version/", "Safari"),
        ("curl/", "curl"),
    ]
    .iter()
    .find_map(|(token, name)| {
        version_after(token).map(|v| {
            if v.is_empty() {
                name.to_string()
            } else {
                format!("{name} {v}")
            }
        })
    });
    let os = [
        ("Android", "Android"),
        ("iPhone", "iOS"),
        ("iPad", "iPadOS"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("CrOS", "ChromeOS"),
        ("Linux", "Linux"),
    ]
    .iter()
    .find(|(token, _)| ua.contains(token))
    .map(|(_, name)| *name);
    match (browser, os) {
        (Some(b), Some(o)) => format!("{b} on {o}"),
        (Some(b), None) => b,
        (None, Some(o)) => format!("A browser on {o}"),
        (None, None) => ua
            .split_whitespace()
            .next()
            .unwrap_or("Unknown")
            .chars()
            .take(40)
            .collect(),
    }
}
