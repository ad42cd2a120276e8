//! Where a store is: the `--store` value (or `VSC_STORE`) parsed once into a typed location.
//!
//! - `PATH` or `sqlite:PATH`: a SQLite file (the embedded default, `vsc.db`);
//! - `postgres://…` or `postgresql://…`: a PostgreSQL connection URL;
//! - `host=/var/run/postgresql dbname=vsc …`: a libpq keyword/value connection string.
//!
//! A password in a connection string is never shown: [`StoreLocation`]'s `Display` replaces it
//! with `***`, so the location can name the store in every message.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// The keywords that make a `--store` value a libpq keyword/value connection string (the
/// connection parameters of the PostgreSQL manual, §34.1.2).
const LIBPQ_KEYWORDS: [&str; 24] = [
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "passfile",
    "connect_timeout",
    "client_encoding",
    "options",
    "application_name",
    "sslmode",
    "sslcert",
    "sslkey",
    "sslrootcert",
    "sslcrl",
    "sslpassword",
    "sslnegotiation",
    "service",
    "target_session_attrs",
    "keepalives",
    "keepalives_idle",
    "gssencmode",
    "require_auth",
];

/// A store's location.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL database.
    Postgres(PostgresConfig),
}

/// A PostgreSQL connection string, in one of libpq's two forms.
#[derive(Clone, PartialEq, Eq)]
pub enum PostgresConfig {
    /// `postgres://user:password@host:port/dbname?param=value`.
    Url(String),
    /// `host=/var/run/postgresql dbname=vsc`: keyword/value pairs.
    Keywords(Vec<(String, String)>),
}

/// Why a `--store` value is not a location.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LocationError {
    /// Nothing given.
    #[error("the store location is empty")]
    Empty,
    /// `sqlite:` without a path.
    #[error("sqlite: needs a path (sqlite:vsc.db)")]
    NoPath,
    /// A keyword/value string that libpq would refuse.
    #[error("{0}")]
    Keywords(String),
    /// A URL without a host or socket part libpq could read.
    #[error("{0:?} is not a PostgreSQL URL (postgres://[user[:password]@][host][:port][/dbname])")]
    Url(String),
}

impl StoreLocation {
    /// The default: `vsc.db` in the current folder.
    pub fn default_sqlite() -> StoreLocation {
        StoreLocation::Sqlite(PathBuf::from("vsc.db"))
    }

    /// Reads a `--store` value.
    pub fn parse(text: &str) -> Result<StoreLocation, LocationError> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(LocationError::Empty);
        }
        if let Some(path) = trimmed.strip_prefix("sqlite:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                return Err(LocationError::NoPath);
            }
            return Ok(StoreLocation::Sqlite(PathBuf::from(path)));
        }
        if trimmed.starts_with("postgres://") || trimmed.starts_with("postgresql://") {
            return parse_url(trimmed).map(StoreLocation::Postgres);
        }
        if looks_like_keywords(trimmed) {
            return parse_keywords(trimmed).map(StoreLocation::Postgres);
        }
        Ok(StoreLocation::Sqlite(PathBuf::from(text)))
    }

    /// The SQLite file, for a SQLite store.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match self {
            StoreLocation::Sqlite(path) => Some(path),
            StoreLocation::Postgres(_) => None,
        }
    }

    /// The backend's name, for messages: `SQLite` or `PostgreSQL`.
    pub fn backend(&self) -> &'static str {
        match self {
            StoreLocation::Sqlite(_) => "SQLite",
            StoreLocation::Postgres(_) => "PostgreSQL",
        }
    }
}

impl FromStr for StoreLocation {
    type Err = LocationError;

    fn from_str(text: &str) -> Result<Self, LocationError> {
        StoreLocation::parse(text)
    }
}

/// Whether the first word is `keyword=`, with a keyword libpq knows.
fn looks_like_keywords(text: &str) -> bool {
    let first = text.split_whitespace().next().unwrap_or_default();
    first
        .split_once('=')
        .is_some_and(|(key, _)| LIBPQ_KEYWORDS.contains(&key.trim()))
}

/// libpq's keyword/value syntax: `key = value` pairs separated by whitespace; a value may be
/// single-quoted, with `\'` and `\\` escapes inside.
fn parse_keywords(text: &str) -> Result<PostgresConfig, LocationError> {
    let mut pairs = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.next() != Some('=') {
            return Err(LocationError::Keywords(format!(
                "missing \"=\" after {key:?} in the connection string"
            )));
        }
        if !LIBPQ_KEYWORDS.contains(&key.as_str()) {
            return Err(LocationError::Keywords(format!(
                "invalid connection option {key:?}"
            )));
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'\'') {
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '\\' => match chars.next() {
                        Some(escaped) => value.push(escaped),
                        None => break,
                    },
                    '\'' => {
                        closed = true;
                        break;
                    }
                    other => value.push(other),
                }
            }
            if !closed {
                return Err(LocationError::Keywords(
                    "unterminated quoted string in the connection string".into(),
                ));
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                chars.next();
                if c == '\\' {
                    if let Some(escaped) = chars.next() {
                        value.push(escaped);
                    }
                } else {
                    value.push(c);
                }
            }
        }
        pairs.push((key, value));
    }
    Ok(PostgresConfig::Keywords(pairs))
}

/// A URL is checked for its shape only; the driver reads it whole.
fn parse_url(text: &str) -> Result<PostgresConfig, LocationError> {
    let rest = text
        .split_once("://")
        .map(|(_, rest)| rest)
        .unwrap_or_default();
    if rest.chars().any(char::is_whitespace) {
        return Err(LocationError::Url(redact_url(text)));
    }
    Ok(PostgresConfig::Url(text.to_string()))
}

/// The URL with its password (between `user:` and `@`) replaced by `***`.
fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

impl fmt::Display for StoreLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreLocation::Sqlite(path) => write!(f, "{}", path.display()),
            StoreLocation::Postgres(config) => config.fmt(f),
        }
    }
}

impl fmt::Debug for StoreLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoreLocation({self})")
    }
}

impl fmt::Display for PostgresConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PostgresConfig::Url(url) => f.write_str(&redact_url(url)),
            PostgresConfig::Keywords(pairs) => {
                for (i, (key, value)) in pairs.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" ")?;
                    }
                    if key == "password" || key == "sslpassword" {
                        write!(f, "{key}=***")?;
                    } else if value.is_empty() || value.contains([' ', '\'', '\\']) {
                        let escaped = value.replace('\\', "\\\\").replace('\'', "\\'");
                        write!(f, "{key}='{escaped}'")?;
                    } else {
                        write!(f, "{key}={value}")?;
                    }
                }
                Ok(())
            }
        }
    }
}

impl fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PostgresConfig({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_sqlite_urls_are_sqlite_files() {
        for (text, path) in [
            ("vsc.db", "vsc.db"),
            ("sqlite:vsc.db", "vsc.db"),
            ("sqlite:/var/lib/vsc/store.db", "/var/lib/vsc/store.db"),
            ("sqlite:///var/lib/vsc.db", "/var/lib/vsc.db"),
            ("./host=odd.db", "./host=odd.db"),
        ] {
            assert_eq!(
                StoreLocation::parse(text).unwrap(),
                StoreLocation::Sqlite(PathBuf::from(path)),
                "{text}"
            );
        }
        assert_eq!(StoreLocation::parse("sqlite:"), Err(LocationError::NoPath));
        assert_eq!(StoreLocation::parse("  "), Err(LocationError::Empty));
    }

    #[test]
    fn postgres_urls_keep_their_text_and_hide_the_password() {
        let location = StoreLocation::parse("postgresql://vsc:s3cret@db.example:5432/vsc").unwrap();
        assert_eq!(location.backend(), "PostgreSQL");
        assert_eq!(
            location.to_string(),
            "postgresql://vsc:***@db.example:5432/vsc"
        );
        assert!(!format!("{location:?}").contains("s3cret"));
        let socket = StoreLocation::parse("postgres:///vsc?host=/var/run/postgresql").unwrap();
        assert_eq!(
            socket.to_string(),
            "postgres:///vsc?host=/var/run/postgresql"
        );
        assert!(StoreLocation::parse("postgres://a b").is_err());
    }

    #[test]
    fn libpq_keyword_strings_are_parsed() {
        let location =
            StoreLocation::parse("host=/var/run/postgresql dbname = vsc password='it''s' user=a")
                .unwrap_err();
        assert!(
            matches!(location, LocationError::Keywords(_)),
            "{location:?}"
        );
        let location = StoreLocation::parse(
            r"host=/var/run/postgresql dbname = vsc password='a \'b\' c' application_name=st",
        )
        .unwrap();
        let StoreLocation::Postgres(PostgresConfig::Keywords(pairs)) = &location else {
            panic!("{location:?}")
        };
        assert_eq!(
            pairs,
            &[
                ("host".to_string(), "/var/run/postgresql".to_string()),
                ("dbname".to_string(), "vsc".to_string()),
                ("password".to_string(), "a 'b' c".to_string()),
                ("application_name".to_string(), "st".to_string()),
            ]
        );
        assert_eq!(
            location.to_string(),
            "host=/var/run/postgresql dbname=vsc password=*** application_name=st"
        );
        assert_eq!(
            StoreLocation::parse("host=/tmp dbnam=vsc"),
            Err(LocationError::Keywords(
                "invalid connection option \"dbnam\"".into()
            ))
        );
        assert!(StoreLocation::parse("host='/tmp").is_err());
    }
}
