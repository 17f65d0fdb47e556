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
    pem::trust(builder, &config.root_certificates_pem)
}

pub(crate) use pem::check;

/// The config's private CAs, with a TLS backend: read by it.
#[cfg(any(
    feature = "rustls",
    feature = "rustls-native-roots",
    feature = "native-tls"
))]
mod pem {
    /// `builder` trusting the CAs of `pems` as well as its roots.
    pub(super) fn trust(
        builder: reqwest::ClientBuilder,
        pems: &[String],
    ) -> Result<reqwest::ClientBuilder, String> {
        let mut all = Vec::new();
        for (i, pem) in pems.iter().enumerate() {
            all.extend(entry(i, pem)?);
        }
        Ok(builder.tls_certs_merge(all))
    }

    /// Whether every entry is PEM text with at least one certificate the TLS backend takes; the
    /// error says which is not. The backend reads certificates only when a client is built, so
    /// one is built with each entry alone and a block that is no certificate is refused by its
    /// entry, once, when the config is checked.
    pub(crate) fn check(pems: &[String]) -> Result<(), String> {
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

    /// The certificates of entry `i`: one or more `CERTIFICATE` blocks.
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
}

/// The config's private CAs, in a build without TLS: none can be trusted.
#[cfg(not(any(
    feature = "rustls",
    feature = "rustls-native-roots",
    feature = "native-tls"
)))]
mod pem {
    /// `builder`, if `pems` is empty (see [`check`]).
    pub(super) fn trust(
        builder: reqwest::ClientBuilder,
        pems: &[String],
    ) -> Result<reqwest::ClientBuilder, String> {
        check(pems).map(|()| builder)
    }

    /// Whether `pems` is empty: a build without TLS cannot trust a CA.
    pub(crate) fn check(pems: &[String]) -> Result<(), String> {
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
