//! Which roots HTTPS trusts, from the crate's TLS features. reqwest picks the backend (native-tls
//! when that feature is on, else rustls); this adds the webpki roots where they are asked for.
//!
//! | features | backend | roots |
//! |---|---|---|
//! | `rustls` (default) | rustls | Mozilla's, built in ([`webpki_root_certs`]) |
//! | `rustls-native-roots` | rustls | the platform's (rustls-platform-verifier) |
//! | both of the above | rustls | the platform's and Mozilla's |
//! | `native-tls` (with or without the others) | native-tls | the platform's |
//! | none | — | plain HTTP only |
//!
//! The private CAs of [`ClientConfig::root_certificates_pem`] are trusted on top, whatever the
//! backend.

use crate::ClientConfig;

/// Sets the roots of a client resile builds itself (never of one the caller brings): the
/// features' roots, then the config's private CAs.
pub(crate) fn roots(
    builder: reqwest::ClientBuilder,
    config: &ClientConfig,
) -> Result<reqwest::ClientBuilder, String> {
    #[cfg(all(feature = "rustls", not(feature = "native-tls")))]
    let builder = {
        let webpki = webpki_root_certs::TLS_SERVER_ROOT_CERTS
            .iter()
            .filter_map(|der| reqwest::Certificate::from_der(der).ok());
        if cfg!(feature = "rustls-native-roots") {
            builder.tls_certs_merge(webpki)
        } else {
            builder.tls_certs_only(webpki)
        }
    };
    #[cfg(any(
        feature = "rustls",
        feature = "rustls-native-roots",
        feature = "native-tls"
    ))]
    let builder = builder.tls_certs_merge(certificates(&config.root_certificates_pem)?);
    #[cfg(not(any(
        feature = "rustls",
        feature = "rustls-native-roots",
        feature = "native-tls"
    )))]
    check(&config.root_certificates_pem)?;
    Ok(builder)
}

/// Whether every entry is PEM text with at least one certificate; the error says which is not.
pub(crate) fn check(pems: &[String]) -> Result<(), String> {
    #[cfg(any(
        feature = "rustls",
        feature = "rustls-native-roots",
        feature = "native-tls"
    ))]
    {
        verify(pems)
    }
    #[cfg(not(any(
        feature = "rustls",
        feature = "rustls-native-roots",
        feature = "native-tls"
    )))]
    {
        if pems.is_empty() {
            Ok(())
        } else {
            Err(
                "this build of resile has no TLS: enable the crate's `rustls`, \
                 `rustls-native-roots` or `native-tls` feature"
                    .into(),
            )
        }
    }
}

/// The certificates of PEM texts, each one or more `CERTIFICATE` blocks.
#[cfg(any(
    feature = "rustls",
    feature = "rustls-native-roots",
    feature = "native-tls"
))]
fn certificates(pems: &[String]) -> Result<Vec<reqwest::Certificate>, String> {
    let mut all = Vec::new();
    for (i, pem) in pems.iter().enumerate() {
        all.extend(entry(i, pem)?);
    }
    Ok(all)
}

#[cfg(any(
    feature = "rustls",
    feature = "rustls-native-roots",
    feature = "native-tls"
))]
fn entry(i: usize, pem: &str) -> Result<Vec<reqwest::Certificate>, String> {
    let certs = reqwest::Certificate::from_pem_bundle(pem.as_bytes()).map_err(|e| {
        format!(
            "entry {i} is not PEM certificates: {}",
            crate::transport::error_text(&e)
        )
    })?;
    if certs.is_empty() {
        return Err(format!(
            "entry {i} holds no `-----BEGIN CERTIFICATE-----` block"
        ));
    }
    Ok(certs)
}

/// Every entry's certificates, read by the TLS backend: it reads them only when a client is
/// built, so one is built with each entry alone and a block that is no certificate is refused
/// by its entry, once, when the config is checked.
#[cfg(any(
    feature = "rustls",
    feature = "rustls-native-roots",
    feature = "native-tls"
))]
fn verify(pems: &[String]) -> Result<(), String> {
    for (i, pem) in pems.iter().enumerate() {
        reqwest::Client::builder()
            .tls_certs_only(entry(i, pem)?)
            .build()
            .map_err(|e| {
                format!(
                    "entry {i} is not a certificate the TLS backend takes: {}",
                    crate::transport::error_text(&e)
                )
            })?;
    }
    Ok(())
}

#[cfg(all(test, feature = "rustls", not(feature = "native-tls")))]
mod tests {
    #[test]
    fn every_webpki_root_is_a_certificate_reqwest_takes() {
        let roots = webpki_root_certs::TLS_SERVER_ROOT_CERTS;
        assert!(roots.len() > 100, "{} roots", roots.len());
        for der in roots {
            reqwest::Certificate::from_der(der).unwrap();
        }
        super::roots(reqwest::Client::builder(), &crate::ClientConfig::default())
            .unwrap()
            .build()
            .unwrap();
    }
}
