//! The daemon's URL: `https://`, or plain `http://` only to this machine, so that a
//! token or the master password never crosses a network in clear.

use std::net::IpAddr;

use reqwest::Url;

use crate::error::{Error, Result};

/// Parses and checks a daemon base URL: `https://…` anywhere, `http://` only to
/// `localhost` or a loopback address; no credentials in it; query and fragment dropped.
pub fn check_base_url(text: &str) -> Result<Url> {
    let mut url =
        Url::parse(text.trim()).map_err(|e| Error::InvalidInput(format!("the daemon URL is not a URL: {e}")))?;
    if !url.username().is_empty() || url.password().is_some() {
        // Not echoed: it carries a credential.
        return Err(Error::InvalidInput("the daemon URL must not carry credentials".into()));
    }
    match url.scheme() {
        "https" => {}
        "http" if is_local(&url) => {}
        "http" => {
            return Err(Error::InsecureUrl(format!(
                "{url} is plain HTTP to another host; tokens would cross the network in clear (use https://)"
            )))
        }
        other => return Err(Error::InvalidInput(format!("the daemon URL has an unsupported scheme {other:?}"))),
    }
    url.set_query(None);
    url.set_fragment(None);
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

/// `localhost` or a loopback address.
fn is_local(url: &Url) -> bool {
    let host = url.host_str().unwrap_or("");
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost") || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// `base` with `segments` appended, each percent-encoded (an id cannot add a path).
pub(crate) fn endpoint(base: &Url, segments: &[&str]) -> Result<Url> {
    let mut url = base.clone();
    url.path_segments_mut()
        .map_err(|()| Error::InvalidInput("the daemon URL cannot take a path".into()))?
        .pop_if_empty()
        .extend(segments);
    Ok(url)
}

/// Sets the query to `pairs` (none: no query).
pub(crate) fn set_query(url: &mut Url, pairs: &[(&str, String)]) {
    if !pairs.is_empty() {
        url.query_pairs_mut().extend_pairs(pairs.iter().map(|(key, value)| (*key, value.as_str())));
    }
}

/// `base` and a path (and query) beginning with `/`, on the same host.
pub(crate) fn join_raw(base: &Url, path_and_query: &str) -> Result<Url> {
    if !path_and_query.starts_with('/') || path_and_query.starts_with("//") {
        return Err(Error::InvalidInput(format!("{path_and_query:?} is not a path beginning with one /")));
    }
    let url = Url::parse(&format!("{}{}", base.as_str().trim_end_matches('/'), path_and_query))
        .map_err(|e| Error::InvalidInput(format!("{path_and_query:?}: {e}")))?;
    if url.origin() != base.origin() {
        return Err(Error::InvalidInput(format!("{path_and_query:?} leaves the daemon")));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn only_https_or_local_http_is_accepted() {
        for ok in [
            "https://mandate.example.com",
            "https://10.0.0.5:3100/",
            "http://127.0.0.1:3100",
            "http://localhost:3100",
            "http://LOCALHOST",
            "http://[::1]:3100",
            "http://127.0.0.2",
        ] {
            assert!(check_base_url(ok).is_ok(), "{ok}");
        }
        for insecure in
            ["http://mandate.example.com", "http://10.0.0.5:3100", "http://localhost.evil.com", "http://[::2]"]
        {
            assert!(matches!(check_base_url(insecure), Err(Error::InsecureUrl(_))), "{insecure}");
        }
        for invalid in ["ftp://localhost", "file:///etc/passwd", "not a url", "https://user:pw@example.com"] {
            assert!(matches!(check_base_url(invalid), Err(Error::InvalidInput(_))), "{invalid}");
        }
        // A refusal of a URL with credentials does not echo them.
        let refused = check_base_url("https://operator:hunter2@example.com").unwrap_err().to_string();
        assert!(!refused.contains("hunter2"), "{refused}");
    }

    #[test]
    fn paths_are_appended_and_ids_cannot_escape() {
        let base = check_base_url("https://example.com/mandate?x=1#f").unwrap();
        assert_eq!(base.as_str(), "https://example.com/mandate/");
        let url = endpoint(&base, &["v1", "wallets", "../admin?x", "balance"]).unwrap();
        assert_eq!(url.as_str(), "https://example.com/mandate/v1/wallets/..%2Fadmin%3Fx/balance");
        let mut url = endpoint(&base, &["v1", "audit", "tail"]).unwrap();
        set_query(&mut url, &[("n", "5".into())]);
        assert_eq!(url.as_str(), "https://example.com/mandate/v1/audit/tail?n=5");
        assert_eq!(join_raw(&base, "/v1/health?x=1").unwrap().as_str(), "https://example.com/mandate/v1/health?x=1");
        assert!(join_raw(&base, "//evil.com/v1").is_err());
        assert!(join_raw(&base, "v1/health").is_err());
        assert!(join_raw(&check_base_url("http://127.0.0.1:3100").unwrap(), "@evil.com/").is_err());
    }
}
