//! HTTPS to a server with a private CA: trusted with `add_root_certificate_pem` (the pool
//! resile builds keeps all its settings), refused with a typed TLS error without it.
#![cfg(any(
    feature = "rustls",
    feature = "rustls-native-roots",
    feature = "native-tls"
))]

mod common;
#[path = "common/tls.rs"]
mod tls;

use common::fast_policy;
use resile::{Error, LastCause, TransportError};

#[tokio::test]
async fn a_private_ca_given_is_trusted_and_without_it_the_call_fails_as_tls() {
    let server = tls::tls_server();
    let trusting = resile::Client::builder()
        .engine(fast_policy())
        .add_root_certificate_pem(tls::CA_PEM)
        .build()
        .unwrap();
    let response = trusting
        .get(format!("{}/hello", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text(), "ok");
    // By name too: the certificate is for localhost as well as 127.0.0.1.
    let url = format!("https://localhost:{}/", server.addr.port());
    assert_eq!(trusting.get(url).send().await.unwrap().status(), 200);

    let default = resile::Client::builder()
        .engine(fast_policy())
        .build()
        .unwrap();
    let e = default
        .get(format!("{}/hello", server.url()))
        .send()
        .await
        .unwrap_err();
    // Not retried: a certificate refused would be refused again.
    let Error::NotRetried {
        last: Some(LastCause::Transport { kind, message }),
        attempts: 1,
        ..
    } = &e
    else {
        panic!("{e:?}");
    };
    assert_eq!(*kind, TransportError::Tls, "{message}");
    assert!(e.to_string().to_lowercase().contains("certificate"), "{e}");
    assert_eq!(
        default.stats().attempts,
        1,
        "a certificate refused is not retried"
    );
}

#[test]
fn text_that_holds_no_certificate_is_refused_when_the_client_is_built() {
    for bad in [
        "",
        "not a certificate",
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    ] {
        let e = resile::Client::builder()
            .add_root_certificate_pem(bad)
            .build()
            .unwrap_err();
        assert!(
            matches!(&e, Error::Config { field: Some(f), .. } if f == "root_certificates_pem"),
            "{bad:?}: {e:?}"
        );
    }
    let e = resile::ClientConfig::from_json(r#"{"root_certificates_pem": ["junk"]}"#).unwrap_err();
    assert!(e.to_string().contains("root_certificates_pem"), "{e}");
}
