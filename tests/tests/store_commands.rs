//! `vsc-personalizer store status|migrate|release|audit` through the binary, on both backends:
//! a SQLite file and a PostgreSQL database of this test (which needs the machine's server, and
//! fails saying so without it).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use vsc_personalizer::store::{self, Access, Claimant, OpenOptions, StoreLocation, Uid};
use vsc_tests::{TestDatabase, workspace_binary};

fn demo(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../personalizer/profiles")
        .join(file)
}

fn personalizer(args: &[&str]) -> Output {
    Command::new(workspace_binary("vsc-personalizer", "vsc-personalizer").unwrap())
        .args(args)
        .output()
        .unwrap()
}

fn ok(output: &Output) -> String {
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Every store command against the store at `location`, which `prepare` creates.
fn the_store_commands_work_on(location: &str, folder: &Path) {
    let key = folder.join("issuer.key");
    ok(&personalizer(&[
        "keys",
        "init",
        "--out",
        key.to_str().unwrap(),
    ]));
    // A reading command never creates the store.
    let missing = personalizer(&["store", "status", "--store", location]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("no store at"),
        "{missing:?}"
    );
    let records = folder.join("records.csv");
    let text = std::fs::read_to_string(demo("demo-records.csv")).unwrap();
    std::fs::write(
        &records,
        text.lines().take(4).collect::<Vec<_>>().join("\n") + "\n",
    )
    .unwrap();
    ok(&personalizer(&[
        "prepare",
        "--profile",
        demo("demo.toml").to_str().unwrap(),
        "--records",
        records.to_str().unwrap(),
        "--key-file",
        key.to_str().unwrap(),
        "--store",
        location,
        "--no-pin-mailer",
    ]));
    let uids: Vec<Uid> = text
        .lines()
        .skip(1)
        .take(3)
        .map(|l| Uid::parse(l.split(',').next().unwrap()).unwrap())
        .collect();
    assert!(
        ok(&personalizer(&["store", "migrate", "--store", location])).contains("schema version 3")
    );

    // A station claims a card and dies.
    let parsed = StoreLocation::parse(location).unwrap();
    let mut store = store::open(&parsed, &OpenOptions::new(Access::Existing))
        .unwrap()
        .store;
    let dead = Claimant {
        station: "bench-7".into(),
        host: "h7".into(),
        reader: "Virtual PCD 00 01".into(),
    };
    store
        .claim(uids[0], &dead, Duration::from_secs(600))
        .unwrap()
        .unwrap();
    let status: serde_json::Value = serde_json::from_str(&ok(&personalizer(&[
        "store", "status", "--json", "--store", location,
    ])))
    .unwrap();
    assert_eq!(status["schema_version"], 3);
    assert_eq!(
        status["cards"],
        serde_json::json!([
            ["prepared", 2],
            ["claimed", 1],
            ["personalized", 0],
            ["failed", 0]
        ])
    );
    assert_eq!(status["profiles"][0]["profile"], "vsc-demo-id");
    assert_eq!(status["claims"][0]["lease"]["station"], "bench-7");
    let left = status["claims"][0]["remaining_ms"].as_i64().unwrap();
    assert!((500_000..=600_000).contains(&left), "{left}");
    let plain = ok(&personalizer(&["store", "status", "--store", location]));
    assert!(plain.contains("claimed: "), "{plain}");
    assert!(
        plain.contains("by bench-7 at Virtual PCD 00 01 (lease ends in"),
        "{plain}"
    );

    // Released by hand, audited.
    let released = ok(&personalizer(&[
        "store",
        "release",
        &uids[0].to_string(),
        "--by",
        "operator-1",
        "--store",
        location,
    ]));
    assert!(released.contains("the claim of bench-7"), "{released}");
    let again = ok(&personalizer(&[
        "store",
        "release",
        &uids[0].to_string(),
        "--store",
        location,
    ]));
    assert!(again.contains("is not claimed"), "{again}");
    let lines: Vec<serde_json::Value> = ok(&personalizer(&[
        "store", "audit", "--json", "--store", location,
    ]))
    .lines()
    .map(|l| serde_json::from_str(l).unwrap())
    .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["result"], "released");
    assert_eq!(lines[0]["station"], "operator-1");
    assert_eq!(lines[0]["reader"], "Virtual PCD 00 01");
    let csv = ok(&personalizer(&[
        "store", "audit", "--csv", "--store", location,
    ]));
    let rows: Vec<&str> = csv.lines().collect();
    assert!(
        rows[0].starts_with("started_at,uid,station,host,reader,result"),
        "{csv}"
    );
    assert_eq!(rows.len(), 2);
    for (filter, value, expected) in [
        ("--uid", uids[0].to_string(), 1),
        ("--uid", uids[1].to_string(), 0),
        ("--station", "operator-1".to_string(), 1),
        ("--station", "bench-7".to_string(), 0),
        ("--since", "2999-01-01T00:00:00+02:00".to_string(), 0),
        ("--since", "2000-01-01T00:00:00Z".to_string(), 1),
    ] {
        let shown = ok(&personalizer(&[
            "store", "audit", "--json", filter, &value, "--store", location,
        ]));
        assert_eq!(shown.lines().count(), expected, "{filter} {value}");
    }
    let bad = personalizer(&[
        "store",
        "audit",
        "--since",
        "yesterday",
        "--store",
        location,
    ]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("RFC 3339"));
    let status: serde_json::Value = serde_json::from_str(&ok(&personalizer(&[
        "store", "status", "--json", "--store", location,
    ])))
    .unwrap();
    assert_eq!(status["cards"][3], serde_json::json!(["failed", 1]));
    assert_eq!(
        status["stations"],
        serde_json::json!([{"station": "operator-1", "result": "released", "attempts": 1}])
    );
}

#[test]
fn the_store_commands_work_on_a_sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vsc.db");
    the_store_commands_work_on(path.to_str().unwrap(), dir.path());
}

#[test]
fn the_store_commands_work_on_a_postgresql_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDatabase::create("store_commands").unwrap();
    the_store_commands_work_on(&db.location(), dir.path());
}
