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

/// Sets the roots of a client resile builds itself (never of one the caller brings).
pub(crate) fn roots(builder: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
    #[cfg(all(feature = "rustls", not(feature = "native-tls")))]
    {
        let webpki = webpki_root_certs::TLS_SERVER_ROOT_CERTS
            .iter()
            .filter_map(|der| reqwest::Certificate::from_der(der).ok());
        if cfg!(feature = "rustls-native-roots") {
            builder.tls_certs_merge(webpki)
        } else {
            builder.tls_certs_only(webpki)
        }
    }
    #[cfg(not(all(feature = "rustls", not(feature = "native-tls"))))]
    {
        builder
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
        super::roots(reqwest::Client::builder()).build().unwrap();
    }
}
