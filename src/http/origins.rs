//! Origins, parsed as URLs (the `url` crate) on both sides: the server's
//! own (`--public-url`, `--allowed-origin`, the loopback names) and the
//! browser's `Origin` header. Compared as origins, not as text, so
//! `https://app.example:443` and `https://app.example` are one origin (a
//! browser omits the default port), hosts compare without regard to case,
//! and `http://[::1]:7007` is an IPv6 host with a port.

use url::{Origin, Url};

/// The origins allowed to open WebSockets and to send cookie-authorized
/// changes (`docs/protocol.md`, "Allowed origins").
#[derive(Debug, Clone, Default)]
pub struct AllowedOrigins(Vec<Origin>);

impl AllowedOrigins {
    pub(crate) fn new(origins: Vec<Origin>) -> AllowedOrigins {
        AllowedOrigins(origins)
    }

    /// Whether an `Origin` header names one of the allowed origins. A
    /// header that is not a serialised http(s) origin (`null`, a list, a
    /// path, user info) names none.
    pub(crate) fn allows(&self, header: &str) -> bool {
        match Url::parse(header) {
            Ok(url) if is_bare_origin(&url) => self.0.contains(&url.origin()),
            _ => false,
        }
    }
}

/// The origin of an http(s) URL (`--public-url` may carry a path).
pub(crate) fn origin_of(text: &str) -> Result<Origin, String> {
    let url = http_url(text)?;
    Ok(url.origin())
}

/// `--public-url`: an absolute http(s) URL without user info, query or
/// fragment, in its normal form (scheme and host in lower case, so
/// `HTTPS://…` still gives `Secure` cookies).
pub(crate) fn parse_public_url(text: &str) -> Result<String, String> {
    let url = http_url(text)?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "{text:?} has a query or fragment; give the server's base URL"
        ));
    }
    Ok(url.to_string())
}

/// `--allowed-origin`: `scheme://host[:port]`, nothing after it. Kept as
/// the browser serialises it (`https://App.Example:443/` is
/// `https://app.example`), which is also how logs show it.
pub(crate) fn parse_allowed_origin(text: &str) -> Result<String, String> {
    let url = http_url(text)?;
    if !is_bare_origin(&url) {
        return Err(format!(
            "{text:?} is not an origin: write scheme://host[:port], without a path"
        ));
    }
    Ok(url.origin().ascii_serialization())
}

/// An absolute `http` or `https` URL without user info.
fn http_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text.trim()).map_err(|e| format!("{text:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{text:?} is not an http or https URL"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("{text:?} carries user info"));
    }
    Ok(url)
}

/// An http(s) URL that is nothing but an origin.
fn is_bare_origin(url: &Url) -> bool {
    matches!(url.scheme(), "http" | "https")
        && url.username().is_empty()
        && url.password().is_none()
        && url.path() == "/"
        && url.query().is_none()
        && url.fragment().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_compare_as_browsers_serialise_them() {
        let allowed = AllowedOrigins::new(vec![
            origin_of("https://app.example:443").unwrap(),
            origin_of("http://[::1]:7007").unwrap(),
            origin_of("https://docs.example/keystrate/").unwrap(),
        ]);
        for ok in [
            "https://app.example",
            "https://APP.example",
            "http://[::1]:7007",
            "https://docs.example",
        ] {
            assert!(allowed.allows(ok), "{ok}");
        }
        for bad in [
            "null",
            "",
            "http://app.example",
            "https://app.example:8443",
            "https://app.example/path",
            "https://user@app.example",
            "http://[::1]:7008",
            "https://app.example,https://docs.example",
            "app.example",
        ] {
            assert!(!allowed.allows(bad), "{bad}");
        }
    }

    #[test]
    fn flags_take_origins_and_urls() {
        assert_eq!(
            parse_allowed_origin("https://App.Example:443/").unwrap(),
            "https://app.example"
        );
        assert_eq!(
            parse_allowed_origin("http://[::1]:7007").unwrap(),
            "http://[::1]:7007"
        );
        for bad in [
            "app.example",
            "https://app.example/path",
            "ftp://app.example",
            "https://u:p@app.example",
            "null",
        ] {
            assert!(parse_allowed_origin(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_public_url("https://keys.example/base/").unwrap(),
            "https://keys.example/base/"
        );
        assert_eq!(
            parse_public_url("HTTPS://Keys.Example").unwrap(),
            "https://keys.example/"
        );
        for bad in [
            "keys.example",
            "https://keys.example/?x=1",
            "wss://keys.example",
        ] {
            assert!(parse_public_url(bad).is_err(), "{bad}");
        }
    }
}
