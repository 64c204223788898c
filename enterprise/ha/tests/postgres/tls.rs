//! TLS to the database: `[ha] tls = "verify-full"` against a real PostgreSQL server that serves
//! a certificate made here. The connection is encrypted (`pg_stat_ssl`), and a server whose
//! certificate chains to another CA, or names another host, is refused before any query.
#![allow(clippy::unwrap_used)]

use atp_enterprise_ha::{DbTls, HaConfig, HaError};
use atp_test_node::postgres::{Durability, PgServer};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

/// A CA: its certificate (PEM) and what signs with it.
fn ca(name: &str) -> (String, Issuer<'static, KeyPair>) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(rcgen::DnType::CommonName, name);
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), Issuer::new(params, key))
}

/// A server certificate for `names` (DNS names or IP addresses), and its key, both PEM.
fn server_cert(issuer: &Issuer<'_, KeyPair>, names: &[&str]) -> (String, String) {
    // rcgen makes an IP address SAN of a name that parses as one.
    let params =
        CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn config(server: &PgServer, database: &str, ca_file: &std::path::Path) -> HaConfig {
    let toml = format!(
        "hosts = [\"127.0.0.1:{}\"]\ndatabase = \"{database}\"\nuser = \"postgres\"\n\
         connect_timeout_ms = 2000\ntls = \"verify-full\"\ntls_ca_file = \"{}\"\n",
        server.port(),
        ca_file.display()
    );
    toml::from_str(&toml).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_connection_is_tls_with_the_server_checked() {
    // `None` outside CI when PostgreSQL is not installed (`PgServer::start` printed a SKIP).
    let Some(server) = PgServer::start(Durability::Relaxed) else { return };
    let database = server.create_database().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let (ca_pem, issuer) = ca("ATP test database CA");
    let (other_ca_pem, _) = ca("another CA");
    let ca_file = tmp.path().join("ca.pem");
    let other_ca_file = tmp.path().join("other-ca.pem");
    std::fs::write(&ca_file, &ca_pem).unwrap();
    std::fs::write(&other_ca_file, &other_ca_pem).unwrap();

    // The server's certificate names another host: refused, whatever the CA.
    let (cert, key) = server_cert(&issuer, &["db.example.internal"]);
    server.enable_tls(&cert, &key).unwrap();
    let wrong_name = config(&server, &database, &ca_file).connect().await.unwrap_err();
    assert!(matches!(wrong_name, HaError::NoPrimary { .. }), "{wrong_name}");
    assert!(wrong_name.to_string().contains("certificate"), "{wrong_name}");
    eprintln!("tls: another host name refused with: {wrong_name}");

    // A certificate for 127.0.0.1, signed by the configured CA: connected, over TLS.
    let (cert, key) = server_cert(&issuer, &["127.0.0.1", "localhost"]);
    server.enable_tls(&cert, &key).unwrap();
    let good = config(&server, &database, &ca_file);
    assert_eq!(good.tls_mode().unwrap(), DbTls::VerifyFull);
    let store = good.connect().await.unwrap();
    let encrypted: bool =
        sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .fetch_one(&store.pool())
            .await
            .unwrap();
    assert!(encrypted, "the store's connection is not TLS");
    atp_store::Store::log_size(&store).await.unwrap();

    // The same server, checked against another CA: refused.
    let other = config(&server, &database, &other_ca_file).connect().await.unwrap_err();
    let message = other.to_string();
    assert!(matches!(other, HaError::NoPrimary { .. }), "{message}");
    assert!(message.contains("certificate"), "{message}");
    eprintln!("tls: another CA refused with: {message}");
}
