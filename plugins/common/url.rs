// Shared by the example plugins (included with `include!`): the host of a URL that hookd has
// already normalized (absolute http/https, lowercase host, no user-info).

/// The scheme and host of `url`; IPv6 hosts keep their brackets.
pub fn scheme_and_host(url: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = if authority.starts_with('[') {
        &authority[..=authority.find(']')?]
    } else {
        authority.split(':').next()?
    };
    (!host.is_empty()).then_some((scheme, host))
}
