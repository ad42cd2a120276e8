//! From a PostgreSQL location to a driver configuration and its TLS connector, with libpq's
//! meaning of each option where the driver's differs: `sslmode` `verify-ca` and `verify-full`
//! (the driver knows only `disable`, `prefer` and `require`), `sslrootcert`, `sslcert` and
//! `sslkey`, and the defaults libpq takes from the environment (`PGHOST`, `PGUSER`, …) or its
//! socket folder. docs/store.md, *Connecting and TLS*, says it for users.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ::postgres::Config;
use ::postgres::config::{Host, SslMode};
use openssl::ssl::{SslConnector, SslFiletype, SslMethod, SslVerifyMode};
use percent_encoding::percent_decode_str;
use postgres_openssl::MakeTlsConnector;

use crate::store::PostgresConfig;

/// The options this module reads itself, not the driver.
const OWN_OPTIONS: [&str; 4] = ["sslmode", "sslrootcert", "sslcert", "sslkey"];

/// libpq options the driver cannot honour: refused, rather than silently ignored.
const UNSUPPORTED: [&str; 8] = [
    "passfile",
    "client_encoding",
    "sslcrl",
    "sslpassword",
    "service",
    "gssencmode",
    "require_auth",
    "sslcompression",
];

/// The socket folders libpq looks in when no host is given (Debian's, then the default).
const SOCKET_FOLDERS: [&str; 2] = ["/var/run/postgresql", "/tmp"];

/// How to connect: the driver's configuration and the TLS connector for its `sslmode`.
pub(super) struct Connector {
    pub config: Config,
    pub tls: MakeTlsConnector,
}

/// libpq's `sslmode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Mode {
    Disable,
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl Mode {
    fn parse(text: &str) -> Result<Mode, String> {
        Ok(match text {
            "disable" => Mode::Disable,
            "allow" => Mode::Allow,
            "prefer" => Mode::Prefer,
            "require" => Mode::Require,
            "verify-ca" => Mode::VerifyCa,
            "verify-full" => Mode::VerifyFull,
            other => {
                return Err(format!(
                    "sslmode {other:?} is not one of disable, allow, prefer, require, verify-ca, \
                     verify-full"
                ));
            }
        })
    }
}

/// The TLS settings read from the location.
#[derive(Debug, Default)]
struct Tls {
    mode: Option<Mode>,
    root_cert: Option<String>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
}

impl Tls {
    fn take(&mut self, key: &str, value: &str) -> Result<(), String> {
        match key {
            "sslmode" => self.mode = Some(Mode::parse(value)?),
            "sslrootcert" => self.root_cert = Some(value.to_string()),
            "sslcert" => self.cert = Some(PathBuf::from(value)),
            "sslkey" => self.key = Some(PathBuf::from(value)),
            _ => {}
        }
        Ok(())
    }
}

/// The driver's configuration and TLS connector for `location`; `lock_timeout` bounds TCP
/// waits that the location leaves open (connecting, unacknowledged data).
pub(super) fn connector(
    location: &PostgresConfig,
    lock_timeout: Duration,
) -> Result<Connector, String> {
    let mut tls = Tls::default();
    let mut config = match location {
        PostgresConfig::Keywords(pairs) => {
            let mut rest = Vec::new();
            for (key, value) in pairs {
                check_supported(key)?;
                if OWN_OPTIONS.contains(&key.as_str()) {
                    tls.take(key, value)?;
                } else {
                    rest.push(format!("{key}='{}'", quote(value)));
                }
            }
            rest.join(" ")
                .parse::<Config>()
                .map_err(|e| driver_message(&e))?
        }
        PostgresConfig::Url(url) => {
            let (base, query) = url.split_once('?').unwrap_or((url, ""));
            let mut rest = Vec::new();
            for pair in query.split('&').filter(|p| !p.is_empty()) {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                let key = percent_decode_str(key).decode_utf8_lossy();
                check_supported(&key)?;
                if OWN_OPTIONS.contains(&key.as_ref()) {
                    tls.take(&key, &percent_decode_str(value).decode_utf8_lossy())?;
                } else {
                    rest.push(pair);
                }
            }
            let url = if rest.is_empty() {
                base.to_string()
            } else {
                format!("{base}?{}", rest.join("&"))
            };
            url.parse::<Config>().map_err(|e| driver_message(&e))?
        }
    };
    apply_environment(&mut config, &mut tls)?;
    let tcp = config
        .get_hosts()
        .iter()
        .any(|host| matches!(host, Host::Tcp(_)))
        || !config.get_hostaddrs().is_empty();
    if tcp {
        // A station cut off from its server must find out within its wait, not after the
        // kernel's TCP timeout (about 15 minutes).
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(lock_timeout.clamp(Duration::from_secs(1), Duration::MAX));
        }
        if config.get_tcp_user_timeout().is_none() {
            config.tcp_user_timeout(lock_timeout.clamp(Duration::from_secs(1), Duration::MAX));
        }
        config.keepalives_idle(Duration::from_secs(10));
    }
    let mode = tls.mode.unwrap_or(Mode::Prefer);
    config.ssl_mode(match mode {
        Mode::Disable => SslMode::Disable,
        // libpq's `allow` tries without TLS first; the driver cannot, and TLS when offered is
        // no worse.
        Mode::Allow | Mode::Prefer => SslMode::Prefer,
        Mode::Require | Mode::VerifyCa | Mode::VerifyFull => SslMode::Require,
    });
    let tls = tls_connector(mode, &tls)?;
    Ok(Connector { config, tls })
}

fn check_supported(key: &str) -> Result<(), String> {
    if UNSUPPORTED.contains(&key) {
        return Err(format!(
            "the connection option {key:?} is not supported by this program's PostgreSQL driver"
        ));
    }
    Ok(())
}

/// A value in libpq's keyword syntax, inside single quotes.
fn quote(value: &str) -> String {
    value.replace('\\', "\\\\").replace('\'', "\\'")
}

/// The driver's message, which never holds the password.
fn driver_message(error: &::postgres::Error) -> String {
    let text = error.to_string();
    match std::error::Error::source(error) {
        Some(cause) if !text.contains(&cause.to_string()) => format!("{text}: {cause}"),
        _ => text,
    }
}

/// What the location leaves out, from the environment as libpq takes it; no host at all means
/// the local server's socket.
fn apply_environment(config: &mut Config, tls: &mut Tls) -> Result<(), String> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    if config.get_hosts().is_empty() && config.get_hostaddrs().is_empty() {
        match env("PGHOST") {
            Some(hosts) => {
                for host in hosts.split(',') {
                    config.host(host);
                }
            }
            None => {
                let folder = SOCKET_FOLDERS
                    .iter()
                    .find(|folder| Path::new(folder).is_dir())
                    .unwrap_or(&SOCKET_FOLDERS[1]);
                config.host(folder);
            }
        }
    }
    if config.get_ports().is_empty()
        && let Some(port) = env("PGPORT")
    {
        config.port(
            port.parse()
                .map_err(|_| format!("PGPORT {port:?} is not a port"))?,
        );
    }
    if config.get_user().is_none()
        && let Some(user) = env("PGUSER")
    {
        config.user(&user);
    }
    if config.get_password().is_none()
        && let Some(password) = env("PGPASSWORD")
    {
        config.password(&password);
    }
    if config.get_dbname().is_none()
        && let Some(dbname) = env("PGDATABASE")
    {
        config.dbname(&dbname);
    }
    if config.get_application_name().is_none() {
        config.application_name("vsc-personalizer");
    }
    if tls.mode.is_none()
        && let Some(mode) = env("PGSSLMODE")
    {
        tls.mode = Some(Mode::parse(&mode)?);
    }
    if tls.root_cert.is_none() {
        tls.root_cert = env("PGSSLROOTCERT");
    }
    Ok(())
}

/// The libpq file `name` in `~/.postgresql`.
fn libpq_file(name: &str) -> Option<PathBuf> {
    std::env::var_os("HOME").map(|home| Path::new(&home).join(".postgresql").join(name))
}

/// The TLS connector for `mode`: no verification for `prefer` and `require` (libpq's meaning)
/// unless a root certificate is given, the chain for `verify-ca`, the chain and the host name
/// for `verify-full`.
fn tls_connector(mode: Mode, tls: &Tls) -> Result<MakeTlsConnector, String> {
    let ssl = |e: openssl::error::ErrorStack| format!("TLS: {e}");
    let mut builder = SslConnector::builder(SslMethod::tls_client()).map_err(ssl)?;
    let verify = matches!(mode, Mode::VerifyCa | Mode::VerifyFull) || tls.root_cert.is_some();
    if verify {
        match tls.root_cert.as_deref() {
            Some("system") => builder.set_default_verify_paths().map_err(ssl)?,
            Some(file) => builder
                .set_ca_file(file)
                .map_err(|e| format!("sslrootcert {file}: {e}"))?,
            None => {
                let default = libpq_file("root.crt").filter(|path| path.is_file());
                let Some(file) = default else {
                    return Err(format!(
                        "sslmode {} needs the server's root certificate: give sslrootcert=FILE \
                         (or sslrootcert=system for the system's), or put it in \
                         ~/.postgresql/root.crt",
                        if mode == Mode::VerifyCa {
                            "verify-ca"
                        } else {
                            "verify-full"
                        }
                    ));
                };
                builder
                    .set_ca_file(&file)
                    .map_err(|e| format!("{}: {e}", file.display()))?;
            }
        }
        builder.set_verify(SslVerifyMode::PEER);
    } else {
        builder.set_verify(SslVerifyMode::NONE);
    }
    let cert = tls
        .cert
        .clone()
        .or_else(|| libpq_file("postgresql.crt").filter(|path| path.is_file()));
    if let Some(cert) = cert {
        let key = tls
            .key
            .clone()
            .or_else(|| libpq_file("postgresql.key"))
            .unwrap_or_default();
        builder
            .set_certificate_chain_file(&cert)
            .map_err(|e| format!("sslcert {}: {e}", cert.display()))?;
        builder
            .set_private_key_file(&key, SslFiletype::PEM)
            .map_err(|e| format!("sslkey {}: {e}", key.display()))?;
    }
    let mut connector = MakeTlsConnector::new(builder.build());
    if mode != Mode::VerifyFull {
        // The host name is checked for verify-full only (libpq's rule).
        connector.set_callback(|config, _| {
            config.set_verify_hostname(false);
            Ok(())
        });
    }
    Ok(connector)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreLocation;

    fn connect(text: &str) -> Result<Connector, String> {
        let StoreLocation::Postgres(config) = StoreLocation::parse(text).unwrap() else {
            panic!("{text} is not a PostgreSQL location")
        };
        connector(&config, Duration::from_secs(5))
    }

    #[test]
    fn keyword_strings_and_urls_give_the_same_configuration() {
        let keywords =
            connect("host=/var/run/postgresql user=vsc dbname=store sslmode=disable").unwrap();
        let url =
            connect("postgres://vsc@%2Fvar%2Frun%2Fpostgresql/store?sslmode=disable").unwrap();
        for connector in [&keywords, &url] {
            assert_eq!(
                connector.config.get_hosts(),
                [Host::Unix("/var/run/postgresql".into())]
            );
            assert_eq!(connector.config.get_user(), Some("vsc"));
            assert_eq!(connector.config.get_dbname(), Some("store"));
            assert_eq!(connector.config.get_ssl_mode(), SslMode::Disable);
            assert!(connector.config.get_tcp_user_timeout().is_none());
        }
        let tcp = connect("postgresql://vsc:pw@127.0.0.1:5432/store?sslmode=prefer").unwrap();
        assert_eq!(tcp.config.get_ssl_mode(), SslMode::Prefer);
        assert!(tcp.config.get_tcp_user_timeout().is_some());
    }

    #[test]
    fn tls_modes_follow_libpq() {
        for (mode, driver) in [
            ("disable", SslMode::Disable),
            ("allow", SslMode::Prefer),
            ("prefer", SslMode::Prefer),
            ("require", SslMode::Require),
        ] {
            let connector = connect(&format!("host=db.example sslmode={mode}")).unwrap();
            assert_eq!(connector.config.get_ssl_mode(), driver, "{mode}");
        }
        let verify = connect("host=db.example sslmode=verify-full sslrootcert=system").unwrap();
        assert_eq!(verify.config.get_ssl_mode(), SslMode::Require);
        let missing = connect("host=db.example sslmode=verify-ca sslrootcert=/nonexistent.crt");
        assert!(missing.err().unwrap().contains("/nonexistent.crt"));
        assert!(
            connect("host=db.example sslmode=maybe")
                .err()
                .unwrap()
                .contains("sslmode \"maybe\"")
        );
        assert!(
            connect("postgres://db.example/vsc?sslmode=verify-everything")
                .err()
                .unwrap()
                .contains("verify-everything")
        );
    }

    #[test]
    fn options_the_driver_cannot_honour_are_refused() {
        let error = connect("host=/tmp service=vsc").err().unwrap();
        assert!(error.contains("\"service\" is not supported"), "{error}");
        let error = connect("postgres:///vsc?passfile=/x").err().unwrap();
        assert!(error.contains("\"passfile\""), "{error}");
    }

    #[test]
    fn no_host_means_the_local_socket() {
        let connector = connect("dbname=vsc").unwrap();
        assert!(matches!(
            connector.config.get_hosts(),
            [Host::Unix(_)] | [Host::Tcp(_), ..]
        ));
    }
}
