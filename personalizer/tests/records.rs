//! Record sources: CSV, JSON Lines and SQLite give the same cards for the same holders; bad
//! records are rejected one by one, naming line (or row), field and rule, and the stream goes
//! on; synthetic holders resolve.
// Helpers outside #[test] functions unwrap too: a failure there is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::path::Path;

use common::{demo_profile, demo_records, fingerprint, resolve_all};
use vsc_personalizer::content::Resolver;
use vsc_personalizer::files::Overwrite;
use vsc_personalizer::profile::ProfileError;
use vsc_personalizer::records::{
    self, CsvSource, JsonLinesSource, Position, Problem, RecordError, RecordSource, Selection,
    SqliteSource,
};
use vsc_personalizer::synthetic;

/// The demo holders as (header, rows of strings).
fn demo_rows() -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader = csv::Reader::from_path(demo_records()).unwrap();
    let header = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_string)
        .collect();
    let rows = reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect();
    (header, rows)
}

fn write_csv(path: &Path, header: &[String], rows: &[Vec<String>]) {
    let mut writer = csv::Writer::from_path(path).unwrap();
    writer.write_record(header).unwrap();
    for row in rows {
        writer.write_record(row).unwrap();
    }
    writer.flush().unwrap();
}

fn problem_at(
    result: &Result<impl std::fmt::Debug, RecordError>,
) -> (Position, Option<&str>, &Problem) {
    match result {
        Err(error) => (error.position, error.field.as_deref(), &error.problem),
        Ok(content) => panic!("expected an error, got {content:?}"),
    }
}

#[test]
fn csv_jsonl_and_sqlite_give_the_same_cards() {
    let profile = demo_profile();
    let (header, rows) = demo_rows();
    let dir = tempfile::tempdir().unwrap();

    let jsonl = dir.path().join("holders.jsonl");
    let mut file = std::fs::File::create(&jsonl).unwrap();
    for (i, row) in rows.iter().enumerate() {
        // Keys in reverse order, PINs as JSON numbers, a blank line now and then.
        let mut object = String::from("{");
        for (j, (name, value)) in header.iter().zip(row).enumerate().rev() {
            let value = if name == "pin" {
                value.clone()
            } else {
                serde_json::to_string(value).unwrap()
            };
            object += &format!("{}:{value}", serde_json::to_string(name).unwrap());
            if j > 0 {
                object.push(',');
            }
        }
        object.push('}');
        writeln!(file, "{object}").unwrap();
        if i % 7 == 3 {
            writeln!(file, "   ").unwrap();
        }
    }
    drop(file);

    let db = dir.path().join("holders.db");
    let connection = rusqlite::Connection::open(&db).unwrap();
    let columns: Vec<String> = header
        .iter()
        .map(|n| format!("\"{n}\" {}", if n == "pin" { "INTEGER" } else { "TEXT" }))
        .collect();
    connection
        .execute(
            &format!("CREATE TABLE holders ({})", columns.join(", ")),
            [],
        )
        .unwrap();
    let marks = vec!["?"; header.len()].join(", ");
    for row in &rows {
        let mut values: Vec<rusqlite::types::Value> = Vec::new();
        for (name, value) in header.iter().zip(row) {
            values.push(if name == "pin" {
                rusqlite::types::Value::Integer(value.parse().unwrap())
            } else {
                rusqlite::types::Value::Text(value.clone())
            });
        }
        connection
            .execute(
                &format!("INSERT INTO holders VALUES ({marks})"),
                rusqlite::params_from_iter(values),
            )
            .unwrap();
    }
    drop(connection);

    let db_text = db.to_str().unwrap();
    let sources: Vec<Box<dyn RecordSource>> = vec![
        records::open(demo_records().to_str().unwrap()).unwrap(),
        records::open(jsonl.to_str().unwrap()).unwrap(),
        records::open(&format!("sqlite:{db_text}?table=holders")).unwrap(),
        records::open(&format!(
            "sqlite:{db_text}?query=SELECT * FROM holders WHERE pin <> '?' ORDER BY rowid"
        ))
        .unwrap(),
    ];
    let mut results = Vec::new();
    for mut source in sources {
        let cards = resolve_all(&profile, source.as_mut(), 42);
        assert_eq!(cards.len(), rows.len());
        let prints: Vec<String> = cards
            .iter()
            .map(|card| match card {
                Ok(card) => fingerprint(card),
                Err(error) => panic!("{error}"),
            })
            .collect();
        results.push((cards, prints));
    }
    for (cards, prints) in &results[1..] {
        assert_eq!(prints, &results[0].1);
        assert_eq!(cards.len(), results[0].0.len());
    }
    // Positions: CSV lines from 2, JSON Lines counting the blank lines, SQLite rows from 1.
    let position = |set: usize, i: usize| results[set].0[i].as_ref().unwrap().position;
    assert_eq!(position(0, 0), Position::Line(2));
    assert_eq!(position(0, 23), Position::Line(25));
    assert_eq!(position(1, 3), Position::Line(4));
    assert_eq!(position(1, 4), Position::Line(6));
    assert_eq!(position(2, 23), Position::Row(24));
}

#[test]
fn the_demo_holders_resolve_to_the_profiles_bytes() {
    let profile = demo_profile();
    let mut source = CsvSource::open(&demo_records()).unwrap();
    let cards = resolve_all(&profile, &mut source, 1);
    assert_eq!(cards.len(), 24);
    let first = cards[0].as_ref().unwrap();
    let print = fingerprint(first);
    let expect = |line: &str| assert!(print.contains(line), "{line} not in\n{print}");
    expect("uid 5653434400001001");
    expect(&format!("public ef 0: {}", hex::encode("D20240007")));
    expect(&format!(
        "public ef 1: {} {}",
        hex::encode("HARTMANN"),
        hex::encode("Zoë")
    ));
    expect(&format!("public ef 2: {}", hex::encode("19850307")));
    // 7F61's value: 5F20 "HARTMANN<<Zoë", 5F2B 19850307 in BCD, 5F35 "F".
    expect(&format!(
        "public do 0: 5f200e{}5f2b04198503075f350146",
        hex::encode("HARTMANN<<Zoë")
    ));
    expect(&format!("public do 1: {}", hex::encode("DEU")));
    expect(&format!(
        "public do 2: {}",
        hex::encode("https://issuer.example/vsc-demo")
    ));
    expect(&format!(
        "private ef 0: {} {}",
        hex::encode("Heidestraße 17"),
        hex::encode("51147 Köln")
    ));
    expect("private ef 3: empty");
    expect(&format!("pin {}", hex::encode("483920")));
    // Holder 5 has no portrait and no phone: those EFs stay empty.
    let fifth = fingerprint(cards[4].as_ref().unwrap());
    assert!(fifth.contains("public ef 3: empty"), "{fifth}");
    assert!(fifth.contains("private ef 1: empty"), "{fifth}");
    // The derived key (reference 2) comes from the deriver, with the card's UID.
    let (reference, key) = &first.keys[1];
    assert_eq!(reference.value(), 2);
    assert_eq!(&key.expose()[..8], first.uid.bytes());
}

/// The demo CSV with the bad rows the brief lists, each followed by good ones.
#[test]
fn bad_csv_rows_are_rejected_one_by_one() {
    let profile = demo_profile();
    let (header, rows) = demo_rows();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let line = |row: &[String]| {
        let mut writer = csv::WriterBuilder::new()
            .terminator(csv::Terminator::Any(b'\n'))
            .from_writer(Vec::new());
        writer.write_record(row).unwrap();
        let mut bytes = writer.into_inner().unwrap();
        bytes.pop();
        bytes
    };
    let good = |i: usize| line(&rows[i]);
    let with = |i: usize, name: &str, value: &str| {
        let mut row = rows[i].clone();
        row[col(name)] = value.to_string();
        row
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.csv");
    let mut lines: Vec<Vec<u8>> = vec![header.join(",").into_bytes()];
    lines.push(good(0)); // line 2
    let mut short = rows[1].clone();
    short.pop();
    lines.push(line(&short)); // line 3: a column missing
    lines.push([good(1), b",extra".to_vec()].concat()); // line 4: a column too many
    let mut invalid = line(&with(2, "family_name", "NXRGAARD"));
    let at = invalid.windows(8).position(|w| w == b"NXRGAARD").unwrap();
    invalid[at + 1] = 0xD8; // a lone Latin-1 "Ø"
    lines.push(invalid); // line 5
    lines.push(line(&with(3, "document_number", "D2024000700000000"))); // line 6
    lines.push(line(&with(4, "date_of_birth", "1985-02-30"))); // line 7
    lines.push(line(&with(5, "photo", "FFD8ZZ"))); // line 8
    lines.push(line(&with(6, "uid", &rows[0][col("uid")]))); // line 9
    lines.push(line(&with(7, "pin", "12a456"))); // line 10
    lines.push(line(&with(8, "sex", ""))); // line 11
    lines.push(line(&with(9, "uid", "56534344"))); // line 12
    lines.push(good(10)); // line 13
    lines.push(good(11)); // line 14
    std::fs::write(&path, lines.join(&b"\n"[..])).unwrap();

    let mut source = CsvSource::open(&path).unwrap();
    let cards = resolve_all(&profile, &mut source, 3);
    assert_eq!(cards.len(), 13);
    assert!(cards[0].is_ok());
    let expected: [(u64, Option<&str>, Problem); 10] = [
        (
            3,
            None,
            Problem::ColumnCount {
                expected: 12,
                found: 11,
            },
        ),
        (
            4,
            None,
            Problem::ColumnCount {
                expected: 12,
                found: 13,
            },
        ),
        (5, Some("family_name"), Problem::InvalidUtf8),
        (
            6,
            Some("document_number"),
            Problem::TooLong { len: 17, max: 16 },
        ),
        (
            7,
            Some("date_of_birth"),
            Problem::NotADate {
                format: "[year]-[month]-[day]".into(),
            },
        ),
        (8, Some("photo"), Problem::NotHex),
        (
            9,
            Some("uid"),
            Problem::DuplicateUid {
                first: Position::Line(2),
            },
        ),
        (10, Some("pin"), Problem::Password { min: 6, max: 8 }),
        (11, Some("sex"), Problem::Empty),
        (
            12,
            Some("uid"),
            Problem::WrongLength {
                len: 4,
                expected: 8,
            },
        ),
    ];
    for (result, (line, field, problem)) in cards[1..11].iter().zip(&expected) {
        assert_eq!(problem_at(result), (Position::Line(*line), *field, problem));
    }
    assert!(
        cards[11].is_ok() && cards[12].is_ok(),
        "the records after the bad ones resolve"
    );
    let message = cards[5].as_ref().unwrap_err().to_string();
    assert_eq!(
        message,
        "line 7, field `date_of_birth` (for public EF 5003 \"date-of-birth\"): \
         is not a date of the form [year]-[month]-[day]"
    );
    let message = cards[4].as_ref().unwrap_err().to_string();
    assert_eq!(
        message,
        "line 6, field `document_number` (for public EF 5001 \"document-number\"): \
         is 17 bytes encoded, at most 16 fit"
    );
    assert_eq!(
        cards[8].as_ref().unwrap_err().to_string(),
        "line 10, field `pin`: must be 6 to 8 digits"
    );
}

#[test]
fn bad_json_lines_are_rejected_one_by_one() {
    let profile = demo_profile();
    let (header, rows) = demo_rows();
    let object = |row: &[String], skip: Option<&str>, extra: Option<&str>| {
        let mut map = serde_json::Map::new();
        for (name, value) in header.iter().zip(row) {
            if Some(name.as_str()) != skip {
                map.insert(name.clone(), serde_json::Value::String(value.clone()));
            }
        }
        if let Some(extra) = extra {
            map.insert(extra.to_string(), serde_json::Value::String("1".into()));
        }
        serde_json::to_string(&map).unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.jsonl");
    let mut lines: Vec<Vec<u8>> = vec![
        object(&rows[0], None, None).into_bytes(),              // 1
        b"{\"uid\": \"56\", ".to_vec(),                         // 2: cut short
        b"[1, 2, 3]".to_vec(),                                  // 3: not an object
        b"\"123456\"".to_vec(),                                 // 4: not an object
        object(&rows[1], Some("pin"), None).into_bytes(),       // 5: a field missing
        object(&rows[2], None, Some("shoe_size")).into_bytes(), // 6: a field too many
        object(&rows[3], None, None)
            .replace("\"sex\":\"M\"", "\"sex\":true")
            .into_bytes(), // 7: not text
    ];
    let mut invalid = object(&rows[4], None, None).into_bytes();
    let at = invalid.windows(3).position(|w| w == b"\xC3\x86R").unwrap(); // "ÆR"
    invalid[at] = 0xC6; // Latin-1 "Æ"
    invalid.remove(at + 1);
    lines.push(invalid); // 8
    lines.push(
        object(&rows[5], None, None)
            .replacen("{", "{\"pin\":\"1\",", 1)
            .into_bytes(),
    ); // 9: pin twice
    lines.push(object(&rows[6], None, None).into_bytes()); // 10
    std::fs::write(&path, lines.join(&b"\n"[..])).unwrap();

    let mut source = JsonLinesSource::open(&path).unwrap();
    let cards = resolve_all(&profile, &mut source, 3);
    assert_eq!(cards.len(), 10);
    assert!(cards[0].is_ok() && cards[9].is_ok());
    assert!(matches!(
        problem_at(&cards[1]),
        (Position::Line(2), None, Problem::InvalidJson { .. })
    ));
    assert_eq!(
        problem_at(&cards[2]),
        (Position::Line(3), None, &Problem::NotAnObject)
    );
    assert_eq!(
        problem_at(&cards[3]),
        (Position::Line(4), None, &Problem::NotAnObject)
    );
    assert_eq!(
        problem_at(&cards[4]),
        (Position::Line(5), Some("pin"), &Problem::MissingField)
    );
    assert_eq!(
        problem_at(&cards[5]),
        (
            Position::Line(6),
            Some("shoe_size"),
            &Problem::UnexpectedField
        )
    );
    assert_eq!(
        problem_at(&cards[6]),
        (Position::Line(7), Some("sex"), &Problem::NotTextOrNumber)
    );
    assert_eq!(
        problem_at(&cards[7]),
        (Position::Line(8), None, &Problem::InvalidUtf8)
    );
    assert_eq!(
        problem_at(&cards[8]),
        (Position::Line(9), Some("pin"), &Problem::DuplicateField)
    );
    // The rejected lines' values appear in no message.
    for card in &cards[1..9] {
        let message = card.as_ref().unwrap_err().to_string();
        assert!(
            !message.contains("123456") && !message.contains("HARTMANN"),
            "{message}"
        );
    }
}

#[test]
fn a_first_json_line_that_is_no_object_stops_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.jsonl");
    std::fs::write(&path, "\n[\"uid\"]\n{\"uid\": \"1\"}\n").unwrap();
    let error = JsonLinesSource::open(&path).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("line 2: the first record must be a JSON object"),
        "{error}"
    );
    std::fs::write(&path, "\n\n").unwrap();
    assert!(
        JsonLinesSource::open(&path)
            .unwrap_err()
            .to_string()
            .contains("empty")
    );
}

#[test]
fn sqlite_rejects_blobs_and_reads_null_as_empty() {
    let profile = demo_profile();
    let (header, rows) = demo_rows();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("h.db");
    let connection = rusqlite::Connection::open(&db).unwrap();
    let columns: Vec<String> = header.iter().map(|n| format!("\"{n}\"")).collect();
    connection
        .execute(&format!("CREATE TABLE h ({})", columns.join(", ")), [])
        .unwrap();
    let marks = vec!["?"; header.len()].join(", ");
    let insert = |values: Vec<rusqlite::types::Value>| {
        connection
            .execute(
                &format!("INSERT INTO h VALUES ({marks})"),
                rusqlite::params_from_iter(values),
            )
            .unwrap();
    };
    let text = |row: &[String]| -> Vec<rusqlite::types::Value> {
        row.iter()
            .map(|v| rusqlite::types::Value::Text(v.clone()))
            .collect()
    };
    let photo = header.iter().position(|h| h == "photo").unwrap();
    let phone = header.iter().position(|h| h == "phone").unwrap();
    let family = header.iter().position(|h| h == "family_name").unwrap();
    let mut blob = text(&rows[0]);
    blob[photo] = rusqlite::types::Value::Blob(vec![0xFF, 0xD8]);
    insert(blob);
    let mut null_optional = text(&rows[1]);
    null_optional[phone] = rusqlite::types::Value::Null;
    insert(null_optional);
    let mut null_required = text(&rows[2]);
    null_required[family] = rusqlite::types::Value::Null;
    insert(null_required);
    insert(text(&rows[3]));
    drop(connection);

    let mut source = SqliteSource::open(&db, Selection::Table("h".into())).unwrap();
    let cards = resolve_all(&profile, &mut source, 5);
    assert_eq!(cards.len(), 4);
    assert_eq!(
        problem_at(&cards[0]),
        (Position::Row(1), Some("photo"), &Problem::Blob)
    );
    assert!(cards[1].is_ok(), "an optional NULL is just absent");
    assert_eq!(
        problem_at(&cards[2]),
        (Position::Row(3), Some("family_name"), &Problem::Empty)
    );
    assert!(cards[3].is_ok());
}

#[test]
fn source_specs_and_failures() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("h.db");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute("CREATE TABLE h (uid TEXT)", [])
        .unwrap();
    let db = db.to_str().unwrap();
    for (spec, needle) in [
        ("holders.xlsx", "give a .csv"),
        ("sqlite:h.db", "?table=NAME"),
        ("sqlite:?table=h", "path is empty"),
        ("sqlite:h.db?tabel=h", "?table=NAME"),
        ("sqlite:h.db?table=", "table name is empty"),
    ] {
        let error = records::open(spec).err().unwrap();
        assert!(error.to_string().contains(needle), "{spec}: {error}");
    }
    for (spec, needle) in [
        (format!("sqlite:{db}?table=missing"), "no such table"),
        (format!("sqlite:{db}?query=DELETE FROM h"), "must only read"),
        (
            format!("sqlite:{db}?query=SELECT uid, uid FROM h"),
            "appears twice",
        ),
        (
            "sqlite:/nonexistent/h.db?table=h".to_string(),
            "unable to open",
        ),
        ("/nonexistent/h.csv".to_string(), "cannot read"),
    ] {
        let error = records::open(&spec).err().unwrap();
        assert!(error.to_string().contains(needle), "{spec}: {error}");
    }
    let csv = dir.path().join("dup.csv");
    std::fs::write(&csv, "uid,uid\n1,2\n").unwrap();
    assert!(
        CsvSource::open(&csv)
            .unwrap_err()
            .to_string()
            .contains("appears twice")
    );
    std::fs::write(&csv, "").unwrap();
    assert!(
        CsvSource::open(&csv)
            .unwrap_err()
            .to_string()
            .contains("empty")
    );
    // A byte order mark is not part of the first field's name.
    std::fs::write(&csv, "\u{feff}uid,pin\n1,2\n").unwrap();
    assert_eq!(
        CsvSource::open(&csv).unwrap().header().column("uid"),
        Some(0)
    );
}

#[test]
fn a_profile_field_the_source_lacks_fails_before_the_first_record() {
    let profile = demo_profile();
    let (mut header, mut rows) = demo_rows();
    let pin = header.iter().position(|h| h == "pin").unwrap();
    header.remove(pin);
    rows.iter_mut().for_each(|row| _ = row.remove(pin));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no-pin.csv");
    write_csv(&path, &header, &rows);
    let source = CsvSource::open(&path).unwrap();
    let error = Resolver::new(&profile, source.header(), rand::rngs::OsRng).unwrap_err();
    assert!(matches!(error, ProfileError::MissingFields(_)));
    assert_eq!(
        error.to_string(),
        "the records lack field `pin` (read by [pin])"
    );
}

#[test]
fn synthetic_holders_resolve_and_are_deterministic() {
    let profile = demo_profile();
    let dir = tempfile::tempdir().unwrap();
    for name in ["holders.csv", "holders.jsonl"] {
        let path = dir.path().join(name);
        synthetic::write(&profile, 2000, &path, 11, Overwrite::Refuse).unwrap();
        let mut source = records::open(path.to_str().unwrap()).unwrap();
        let cards = resolve_all(&profile, source.as_mut(), 1);
        assert_eq!(cards.len(), 2000);
        for card in &cards {
            if let Err(error) = card {
                panic!("{name}: {error}");
            }
        }
        let again = dir.path().join(format!("again-{name}"));
        synthetic::write(&profile, 2000, &again, 11, Overwrite::Replace).unwrap();
        assert_eq!(
            std::fs::read(&path).unwrap(),
            std::fs::read(&again).unwrap()
        );
        synthetic::write(&profile, 2000, &again, 12, Overwrite::Replace).unwrap();
        assert_ne!(
            std::fs::read(&path).unwrap(),
            std::fs::read(&again).unwrap()
        );
    }
    let csv = std::fs::read_to_string(dir.path().join("holders.csv")).unwrap();
    assert!(!csv.is_ascii(), "sample names carry accents");
    let error =
        synthetic::write(&profile, 1, &dir.path().join("h.xml"), 1, Overwrite::Refuse).unwrap_err();
    assert!(error.to_string().contains(".csv, .jsonl or .ndjson"));
}
