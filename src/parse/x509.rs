//! The X.509 DER walker: reads a client certificate's DER (already out of its PEM) as far as its
//! validity, for the leaf's `notAfter` and to tell a certificate from other DER. It parses no
//! request. Also PEM errors in words.

/// A PEM error in words, the line at fault shown as text (rustls prints it as a list of byte
/// values).
pub fn pem_error(e: &rustls_pki_types::pem::Error) -> String {
    use rustls_pki_types::pem::Error as E;
    let shown = |b: &[u8]| -> String {
        let text: String = String::from_utf8_lossy(b)
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .take(80)
            .collect();
        text.trim().to_owned()
    };
    match e {
        E::MissingSectionEnd { end_marker } => {
            format!(
                "a section has no end line `-----END {}-----`",
                shown(end_marker)
            )
        }
        E::IllegalSectionStart { line } => {
            format!("`{}` is not a valid section start", shown(line))
        }
        E::Base64Decode(why) => format!("a section is not valid base64 ({why})"),
        E::NoItemsFound => "it holds no PEM section".into(),
        E::SectionTooLarge => "a section is over 256 MB".into(),
        other => other.to_string(),
    }
}

/// The leaf certificate's `notAfter`, Unix ms.
pub fn not_after(der: &[u8]) -> Option<i64> {
    der_validity(der).and_then(|(_, after)| after)
}

/// Walks a DER certificate to its validity: `Certificate ::= SEQUENCE { tbsCertificate
/// SEQUENCE { [0] version OPTIONAL, serialNumber, signature, issuer, validity SEQUENCE {
/// notBefore, notAfter }, ... }, ... }`. `None` if `der` is not shaped like a certificate.
pub fn der_validity(der: &[u8]) -> Option<(Option<i64>, Option<i64>)> {
    let (tag, cert, rest) = der_item(der)?;
    if tag != 0x30 || !rest.is_empty() {
        return None;
    }
    let (tag, mut tbs, _) = der_item(cert)?;
    if tag != 0x30 {
        return None;
    }
    let (tag, _, after_version) = der_item(tbs)?;
    if tag == 0xa0 {
        tbs = after_version;
    }
    for _ in 0..3 {
        let (_, _, after) = der_item(tbs)?; // serialNumber, signature, issuer
        tbs = after;
    }
    let (tag, validity, _) = der_item(tbs)?;
    if tag != 0x30 {
        return None;
    }
    let time = |tag: u8, value: &[u8]| match tag {
        0x17 => crate::time::parse_asn1_time(value, false),
        0x18 => crate::time::parse_asn1_time(value, true),
        _ => None,
    };
    let (t1, v1, rest) = der_item(validity)?;
    let (t2, v2, _) = der_item(rest)?;
    Some((time(t1, v1), time(t2, v2)))
}

/// One DER item: (tag, contents, what follows). Definite lengths only, as DER requires.
fn der_item(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = b.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn der_walk_refuses_garbage() {
        assert_eq!(der_validity(b""), None);
        assert_eq!(der_validity(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
        assert_eq!(der_validity(&[0x30, 0x00]), None);
        assert_eq!(
            der_item(&[0x02, 0x01, 0x05]),
            Some((0x02, &[5u8][..], &[][..]))
        );
    }
}
