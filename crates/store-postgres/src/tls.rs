//! TLS to PostgreSQL, asked for in the URL as libpq does: `sslmode=require`, `verify-ca` or
//! `verify-full` (`prefer` counts as `require`: refreshd never falls back to plain TCP once
//! TLS is asked for), with `sslrootcert=PATH` for a CA of one's own (a managed database's,
//! say). refreshd always verifies the server's certificate and name: against that CA alone
//! when `sslrootcert` is given, else against the Mozilla roots; `require` is as strict as
//! `verify-full`. Without `sslmode` (or with `disable`) connections are plain TCP, for a local
//! database or a private network (libpq's default would be to try TLS).

use refreshd_store::StoreError;
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio_postgres_rustls::MakeRustlsConnect;

fn bad(message: String) -> StoreError {
    StoreError::Unavailable(message)
}

/// The URL as `tokio-postgres` reads it (without `sslrootcert`, the `verify-*` modes as
/// `require`), and the TLS connector it asks for, if any.
pub(super) fn of_url(url: &str) -> Result<(String, Option<MakeRustlsConnect>), StoreError> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_owned(), None));
    };
    let (mut mode, mut root_cert, mut kept) = (None, None, Vec::new());
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        match pair.split_once('=') {
            Some(("sslmode", value)) => mode = Some(value.to_owned()),
            Some(("sslrootcert", value)) => root_cert = Some(percent_decoded(value)?),
            _ => kept.push(pair.to_owned()),
        }
    }
    let tls = match mode.as_deref() {
        None | Some("disable") if root_cert.is_some() => {
            return Err(bad(
                "sslrootcert is given but TLS is not asked for: add sslmode=verify-full".into(),
            ));
        }
        None | Some("disable") => None,
        Some("prefer" | "require" | "verify-ca" | "verify-full") => {
            Some(connector(root_cert.as_deref())?)
        }
        Some(other) => return Err(bad(format!("unsupported sslmode {other:?}"))),
    };
    if tls.is_some() {
        // The connector verifies; tokio-postgres must only refuse to go on without TLS.
        kept.push("sslmode=require".to_owned());
    }
    let url = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((url, tls))
}

fn percent_decoded(value: &str) -> Result<String, StoreError> {
    let mut bytes = Vec::with_capacity(value.len());
    let mut rest = value.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        if b == b'%' && tail.len() >= 2 {
            let hex = std::str::from_utf8(&tail[..2]).ok();
            let byte = hex.and_then(|h| u8::from_str_radix(h, 16).ok());
            bytes.push(byte.ok_or_else(|| bad("bad percent-escape in sslrootcert".into()))?);
            rest = &tail[2..];
        } else {
            bytes.push(b);
            rest = tail;
        }
    }
    String::from_utf8(bytes).map_err(|_| bad("sslrootcert is not UTF-8".into()))
}

/// rustls trusting the CA certificates in `root_cert` (PEM) if given, else the Mozilla roots.
fn connector(root_cert: Option<&str>) -> Result<MakeRustlsConnect, StoreError> {
    let mut roots = rustls::RootCertStore::empty();
    if root_cert.is_none() {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    if let Some(path) = root_cert {
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| bad(format!("sslrootcert {path}: {e}")))?;
        for cert in certs {
            let cert = cert.map_err(|e| bad(format!("sslrootcert {path}: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| bad(format!("sslrootcert {path}: {e}")))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_unless_the_url_asks_for_tls() {
        let (url, tls) = of_url("postgres://u@db/x").unwrap();
        assert_eq!(url, "postgres://u@db/x");
        assert!(tls.is_none());
        let (url, tls) = of_url("postgres://u@db/x?sslmode=disable&application_name=r").unwrap();
        assert_eq!(url, "postgres://u@db/x?application_name=r");
        assert!(tls.is_none());
    }

    #[test]
    fn libpq_modes_become_verified_tls() {
        let (url, tls) = of_url("postgres://u@db/x?sslmode=verify-full&connect_timeout=3").unwrap();
        assert_eq!(url, "postgres://u@db/x?connect_timeout=3&sslmode=require");
        assert!(tls.is_some());
        assert!(of_url("postgres://u@db/x?sslmode=allow").is_err());
        // `prefer` never falls back to plain TCP; empty pairs and `=` in values are kept apart.
        let (url, tls) = of_url("postgres://u@db/x?sslmode=prefer&&options=-c%20a%3Db").unwrap();
        assert_eq!(url, "postgres://u@db/x?options=-c%20a%3Db&sslmode=require");
        assert!(tls.is_some());
        let (url, _) = of_url("postgres://u@db/x?options=-c a=b&sslmode=require&").unwrap();
        assert_eq!(url, "postgres://u@db/x?options=-c a=b&sslmode=require");
        let stray = of_url("postgres://u@db/x?sslrootcert=%2Fca.pem")
            .err()
            .unwrap();
        assert!(
            stray.to_string().contains("TLS is not asked for"),
            "{stray}"
        );
        let missing = of_url("postgres://u@db/x?sslmode=require&sslrootcert=%2Fno%2Fsuch.pem");
        let message = missing.err().unwrap().to_string();
        assert!(message.contains("/no/such.pem"), "{message}");
    }
}
