//! Loading profiles: the demo loads, and every validation rule refuses what breaks it with an
//! error that names the item.
// Helpers outside #[test] functions unwrap too: a failure there is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use vsc_core::fs::{Condition, Fid, Operation};
use vsc_core::security::{KeyAlgorithm, KeyUsage};
use vsc_personalizer::profile::{
    EfStructure, KeySource, PasswordSource, Profile, ProfileError, UidSource,
};
use vsc_personalizer::records::Header;

/// A small valid profile; each case below changes one thing in it.
const BASE: &str = r#"
id = "test"
version = 3

[uid]
source = "field"
field = "uid"

[public]
label = "pub"
data_access = { get = "always", put = "never" }

[[public.ef]]
name = "doc"
fid = "5001"
sfi = 1
type = "transparent"
size = 16
read = "always"
update = "never"
value = { field = "doc", encoding = "ascii" }

[[public.data_object]]
tag = "5F20"
value = { field = "name" }

[private]
label = "priv"
data_access = { get = "pin", put = "never" }

[[private.ef]]
name = "addr"
fid = "6001"
type = "linear-variable"
record_length = 32
record_count = 2
read = "pin"
update = "pin"
records = [{ field = "street" }]

[pin]
min_length = 4
max_length = 8
tries = 3
field = "pin"

[puk]
min_length = 8
max_length = 8
tries = 10
generate = 8

[[key]]
reference = 1
algorithm = "aes-128"
usage = ["internal-authenticate"]
source = "generated"
"#;

/// BASE with `old` replaced by `new` (which must be there).
fn changed(old: &str, new: &str) -> String {
    assert!(BASE.contains(old), "BASE lacks {old:?}");
    BASE.replacen(old, new, 1)
}

fn error_of(text: &str) -> ProfileError {
    match Profile::from_toml(text) {
        Ok(_) => panic!("the profile loaded, an error was expected"),
        Err(error) => error,
    }
}

/// Asserts the error matches and its message names everything in `mentions`.
macro_rules! assert_error {
    ($text:expr, $pattern:pat, $($mention:expr),+) => {{
        let error = error_of(&$text);
        assert!(matches!(error, $pattern), "unexpected error: {error:?}");
        let message = error.to_string();
        $(assert!(message.contains($mention), "{message:?} should mention {:?}", $mention);)+
    }};
}

const PUBLIC_EF: &str = "public EF 5001 \"doc\"";

#[test]
fn the_base_and_the_demo_load() {
    let base = Profile::from_toml(BASE).unwrap();
    assert_eq!((base.id(), base.version()), ("test", 3));
    let demo = common::demo_profile();
    assert_eq!(demo.id(), "vsc-demo-id");
    assert_eq!(demo.file_system().unwrap().public().fid, Fid::DF_PUBLIC);
    assert_eq!(demo.file_system().unwrap().private().fid, Fid::DF_PRIVATE);
    assert_eq!(
        demo.file_system().unwrap().public().aid.as_bytes(),
        [0xF0, 0x56, 0x53, 0x43, 0x00, 0x01]
    );
    assert_eq!(demo.file_system().unwrap().public().efs.len(), 4);
    assert_eq!(demo.file_system().unwrap().private().efs.len(), 4);
    let portrait = &demo.file_system().unwrap().public().efs[3];
    assert_eq!(portrait.fid, Fid::new(0x5004).unwrap());
    assert_eq!(portrait.structure, EfStructure::Transparent { size: 4096 });
    let secret = &demo.file_system().unwrap().private().efs[2];
    assert_eq!(secret.rules.get(Operation::ReadOrDeleteChild).byte(), 0xB2);
    assert_eq!(
        secret.rules.get(Operation::UpdateOrCreateEf),
        Condition::NEVER
    );
    assert_eq!(secret.rules.get(Operation::Delete), Condition::NEVER);
    assert_eq!(
        demo.file_system().unwrap().private().data_rules.get,
        Condition::USER_PIN
    );
    assert_eq!(
        demo.file_system().unwrap().public().dir_record(),
        hex::decode("6117 4F06F05653430001 500D56534320494420707562 6C6963".replace(' ', ""))
            .unwrap()
    );
    assert!(matches!(demo.uid(), UidSource::Field(_)));
    assert!(matches!(
        demo.file_system().unwrap().pin().source,
        PasswordSource::Field(_)
    ));
    assert_eq!(
        demo.file_system().unwrap().puk().source,
        PasswordSource::Generated { length: 8 }
    );
    assert_eq!(demo.file_system().unwrap().pin().policy.max_tries, 3);
    let keys = demo.file_system().unwrap().keys();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[1].algorithm, KeyAlgorithm::Aes256);
    assert_eq!(keys[1].usage, KeyUsage::EXTERNAL_AUTHENTICATE);
    assert_eq!(keys[1].source, KeySource::Derived);
    assert!(demo.derives_keys());
    let names: Vec<&str> = demo.fields().iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "uid",
            "document_number",
            "family_name",
            "given_names",
            "date_of_birth",
            "photo",
            "sex",
            "nationality",
            "address_line1",
            "address_line2",
            "phone",
            "pin"
        ]
    );
}

#[test]
fn unknown_keys_are_refused_with_their_place() {
    assert_error!(
        changed("size = 16\n", "size = 16\ncolour = \"red\"\n"),
        ProfileError::Toml(_),
        "colour",
        "line"
    );
    assert_error!(
        changed("version = 3", "version = 3\nvendor = \"x\""),
        ProfileError::Toml(_),
        "vendor"
    );
    assert_error!(
        changed(
            "encoding = \"ascii\" }",
            "encoding = \"ascii\", trim = true }"
        ),
        ProfileError::Toml(_),
        "trim"
    );
    assert_error!(
        changed("[pin]\n", "[pin]\ncolor = 1\n"),
        ProfileError::Toml(_),
        "color"
    );
}

#[test]
fn duplicate_and_reserved_fids() {
    assert_error!(
        changed("fid = \"6001\"", "fid = \"5001\""),
        ProfileError::DuplicateFid { .. },
        "private EF 5001 \"addr\"",
        PUBLIC_EF
    );
    for reserved in [
        "3F00", "2F00", "2F02", "5000", "6000", "3FFF", "FFFF", "3fff",
    ] {
        assert_error!(
            changed("fid = \"5001\"", &format!("fid = \"{reserved}\"")),
            ProfileError::ReservedFid { .. },
            "public EF",
            "reserved"
        );
    }
    assert_error!(
        changed("fid = \"5001\"", "fid = \"501\""),
        ProfileError::Invalid { .. },
        "4 hexadecimal digits"
    );
}

#[test]
fn sfi_clashes_and_range() {
    let second = r#"
[[public.ef]]
name = "other"
fid = "5002"
sfi = 1
type = "transparent"
size = 4
read = "always"
update = "never"

[[public.data_object]]"#;
    assert_error!(
        changed("\n[[public.data_object]]", second),
        ProfileError::SfiClash { sfi: 1, .. },
        "public EF 5002 \"other\"",
        PUBLIC_EF
    );
    for sfi in ["0", "31"] {
        assert_error!(
            changed("sfi = 1", &format!("sfi = {sfi}")),
            ProfileError::OutOfRange { what: "sfi", .. },
            PUBLIC_EF
        );
    }
}

#[test]
fn unknown_encodings() {
    assert_error!(
        changed("encoding = \"ascii\"", "encoding = \"ebcdic\""),
        ProfileError::UnknownEncoding { .. },
        PUBLIC_EF,
        "ebcdic"
    );
    assert_error!(
        changed(
            "{ field = \"name\" }",
            "{ field = \"name\", encoding = \"latin1\" }"
        ),
        ProfileError::UnknownEncoding { .. },
        "public data object 5F20"
    );
}

#[test]
fn sizes_out_of_range() {
    for (old, new, what) in [
        ("size = 16", "size = 0", "size"),
        ("size = 16", "size = 32768", "size"),
        ("record_length = 32", "record_length = 0", "record_length"),
        (
            "record_length = 32",
            "record_length = 65536",
            "record_length",
        ),
        ("record_count = 2", "record_count = 0", "record_count"),
        ("record_count = 2", "record_count = 255", "record_count"),
    ] {
        let error = error_of(&changed(old, new));
        match &error {
            ProfileError::OutOfRange { what: w, .. } => assert_eq!(*w, what),
            other => panic!("{new}: unexpected {other:?}"),
        }
        assert!(error.to_string().contains(" EF "), "{error}");
    }
    assert_error!(
        changed("tag = \"5F20\"", "tag = \"5F20\"\nmax_length = 40000"),
        ProfileError::OutOfRange {
            what: "max_length",
            ..
        },
        "public data object 5F20"
    );
    // Nine EFs of 32 767 bytes do not fit in the card's 256 KB.
    let mut big = String::new();
    for i in 0..9 {
        big += &format!(
            "[[public.ef]]\nname = \"big{i}\"\nfid = \"51{i:02}\"\ntype = \"transparent\"\n\
             size = 32767\nread = \"always\"\nupdate = \"never\"\n\n"
        );
    }
    assert_error!(
        changed("[[public.data_object]]", &(big + "[[public.data_object]]")),
        ProfileError::Memory { .. },
        "262144"
    );
}

#[test]
fn access_rules_that_do_not_parse() {
    for rule in [
        "pin or",
        "key 16",
        "sometimes",
        "pin or key 1 and key 2",
        "",
    ] {
        assert_error!(
            changed("read = \"always\"", &format!("read = \"{rule}\"")),
            ProfileError::AccessRule { .. },
            PUBLIC_EF,
            "read"
        );
    }
    assert_error!(
        changed("get = \"pin\"", "get = \"pine\""),
        ProfileError::AccessRule { .. },
        "private DF",
        "data_access.get"
    );
}

#[test]
fn data_object_tags_must_be_ber_tags() {
    for tag in [
        "5F", "0101", "5F1E", "4220", "FF", "00", "5F2000", "zz", "5F80",
    ] {
        assert_error!(
            changed("tag = \"5F20\"", &format!("tag = \"{tag}\"")),
            ProfileError::BadTag { .. },
            "public data object",
            tag
        );
    }
    let twice = "[[public.data_object]]\ntag = \"5f20\"\nvalue = { constant = \"x\" }\n\n[private]";
    assert_error!(
        changed("\n[private]", &format!("\n{twice}")),
        ProfileError::DuplicateTag { .. },
        "public DF",
        "5F20"
    );
    assert_error!(
        changed("tag = \"5F20\"", "tag = \"7F61\""),
        ProfileError::Invalid { .. },
        "7F61",
        "constructed"
    );
    let template = "value = { template = [{ tag = \"5F\", field = \"name\" }] }\n\n[private]";
    assert_error!(
        changed(
            "tag = \"5F20\"\nvalue = { field = \"name\" }\n\n[private]",
            &format!("tag = \"7F61\"\n{template}")
        ),
        ProfileError::BadTag { .. },
        "public data object 7F61, item 5F"
    );
}

#[test]
fn password_limits() {
    for (min, max) in [(0, 8), (4, 17), (9, 8)] {
        let text = changed(
            "min_length = 4\nmax_length = 8",
            &format!("min_length = {min}\nmax_length = {max}"),
        );
        assert_error!(text, ProfileError::PasswordLength { .. }, "[pin]");
    }
    for tries in [0, 16] {
        assert_error!(
            changed("tries = 10", &format!("tries = {tries}")),
            ProfileError::Tries { .. },
            "[puk]"
        );
    }
    assert_error!(
        changed("generate = 8", "generate = 7"),
        ProfileError::OutOfRange {
            what: "generate",
            ..
        },
        "[puk]"
    );
    assert_error!(
        changed("field = \"pin\"", "field = \"pin\"\ngenerate = 6"),
        ProfileError::Invalid { .. },
        "[pin]",
        "exactly one"
    );
}

#[test]
fn key_references() {
    for reference in [0, 32, 300] {
        assert_error!(
            changed("reference = 1", &format!("reference = {reference}")),
            ProfileError::KeyReference { .. },
            &format!("key {reference}")
        );
    }
    let second = "\n[[key]]\nreference = 1\nname = \"again\"\nalgorithm = \"aes-256\"\n\
                  usage = [\"encipher\"]\nsource = \"derived\"\n";
    assert_error!(
        format!("{BASE}{second}"),
        ProfileError::DuplicateKey { reference: 1, .. },
        "key 1 \"again\""
    );
    assert_error!(
        changed("\"aes-128\"", "\"des3\""),
        ProfileError::Invalid { .. },
        "key 1",
        "des3"
    );
    assert_error!(
        changed("[\"internal-authenticate\"]", "[\"sign\"]"),
        ProfileError::Invalid { .. },
        "key 1",
        "sign"
    );
    assert_error!(
        changed("source = \"generated\"", "source = \"typed\""),
        ProfileError::Invalid { .. },
        "key 1"
    );
}

#[test]
fn constants_must_fit() {
    assert_error!(
        changed(
            "{ field = \"doc\", encoding = \"ascii\" }",
            "{ constant = \"ABCDEFGHIJKLMNOPQ\" }"
        ),
        ProfileError::ConstantTooLong {
            len: 17,
            max: 16,
            ..
        },
        PUBLIC_EF
    );
    // Fits exactly.
    Profile::from_toml(&changed(
        "{ field = \"doc\", encoding = \"ascii\" }",
        "{ constant = \"ABCDEFGHIJKLMNOP\" }",
    ))
    .unwrap();
    assert_error!(
        changed(
            "records = [{ field = \"street\" }]",
            "records = [{ concat = [{ constant = \"0123456789ABCDEF\" }, { random = 17 }] }]"
        ),
        ProfileError::ConstantTooLong {
            len: 33,
            max: 32,
            ..
        },
        "private EF 6001 \"addr\" record 1"
    );
    assert_error!(
        changed(
            "{ field = \"doc\", encoding = \"ascii\" }",
            "{ constant = \"0G\", encoding = \"hex\" }"
        ),
        ProfileError::Invalid { .. },
        PUBLIC_EF,
        "hexadecimal"
    );
}

#[test]
fn value_sources_are_checked() {
    for (new, reason) in [
        ("{ field = \"doc\", constant = \"x\" }", "exactly one"),
        ("{ encoding = \"ascii\" }", "exactly one"),
        ("{ random = 4, encoding = \"hex\" }", "encoding applies"),
        ("{ constant = \"x\", optional = true }", "optional applies"),
        (
            "{ field = \"doc\", date_input = \"[day]\" }",
            "need encoding",
        ),
        (
            "{ field = \"doc\", encoding = \"date\", date_input = \"[hour]\" }",
            "year, month",
        ),
        (
            "{ field = \"doc\", encoding = \"date\", date_input = \"[year\" }",
            "not a date format",
        ),
        (
            "{ field = \"doc\", encoding = \"date\", date_output = \"[hour]\" }",
            "more than a date",
        ),
        // 18 bytes for every date, where 16 fit: no record could ever be written (found by the
        // profile fuzz target).
        (
            "{ field = \"doc\", encoding = \"date\", date_output = \"[year]-[month]-[day]/[year]-[month]\" }",
            "up to 18 bytes",
        ),
        ("{ field = \"doc\", pad = \"2020\" }", "one byte"),
        (
            "{ field = \"doc\", tag = \"5F20\" }",
            "only to template items",
        ),
        ("{ field = \"\" }", "field name is empty"),
    ] {
        assert_error!(
            changed("{ field = \"doc\", encoding = \"ascii\" }", new),
            ProfileError::Invalid { .. },
            PUBLIC_EF,
            reason
        );
    }
    // A field read as a date in two date_input formats, or as a date and as text, fits no
    // record: the profile fuzz target found one that validated and then no synthetic holder
    // resolved.
    let as_date = |ef: &str, data_object: &str| {
        changed("{ field = \"doc\", encoding = \"ascii\" }", ef).replacen(
            "{ field = \"name\" }",
            data_object,
            1,
        )
    };
    for (ef, reason) in [
        (
            "{ field = \"doc\", encoding = \"date\", date_input = \"[day].[month].[year]\" }",
            "another date_input",
        ),
        (
            "{ field = \"doc\", encoding = \"ascii\" }",
            "a date in one place",
        ),
    ] {
        assert_error!(
            as_date(ef, "{ field = \"doc\", encoding = \"date\" }"),
            ProfileError::Invalid { .. },
            "public data object 5F20",
            "`doc`",
            reason
        );
    }
    let same = as_date(
        "{ field = \"doc\", encoding = \"date\" }",
        "{ field = \"doc\", encoding = \"date\", date_output = \"bcd\" }",
    );
    Profile::from_toml(&same).unwrap();
    assert_error!(
        changed("{ field = \"name\" }", "{ field = \"name\", pad = \"00\" }"),
        ProfileError::Invalid { .. },
        "public data object 5F20",
        "give `length`"
    );
}

#[test]
fn dfs_and_uid_are_checked() {
    assert_error!(
        changed("label = \"pub\"", "label = \"pub\"\naid = \"F0 01\""),
        ProfileError::Invalid { .. },
        "public DF",
        "5 to 16 bytes"
    );
    assert_error!(
        changed("label = \"pub\"", "label = \"a label far too long\""),
        ProfileError::Invalid { .. },
        "public DF",
        "label"
    );
    assert_error!(
        changed(
            "label = \"priv\"",
            "label = \"priv\"\naid = \"F0 56 53 43 00 01\""
        ),
        ProfileError::Invalid { .. },
        "private DF",
        "AID"
    );
    assert_error!(
        changed("source = \"field\"", "source = \"counter\""),
        ProfileError::Invalid { .. },
        "[uid]",
        "field, random or serial"
    );
    let serial = "source = \"serial\"\nprefix = \"56 53 43\"\nfirst = 1099511627776";
    assert_error!(
        changed("source = \"field\"\nfield = \"uid\"", serial),
        ProfileError::Invalid { .. },
        "[uid]",
        "first does not fit"
    );
    let serial = Profile::from_toml(&changed(
        "source = \"field\"\nfield = \"uid\"",
        "source = \"serial\"\nprefix = \"56 53 43\"\nfirst = 100",
    ))
    .unwrap();
    assert_eq!(
        serial.uid(),
        &UidSource::Serial {
            prefix: vec![0x56, 0x53, 0x43],
            first: 100
        }
    );
}

#[test]
fn a_field_the_records_lack_fails_the_whole_run() {
    let profile = Profile::from_toml(BASE).unwrap();
    let header =
        |names: &[&str]| Header::new(names.iter().map(|s| s.to_string()).collect()).unwrap();
    profile
        .bind(&header(&["uid", "doc", "name", "street", "pin", "extra"]))
        .unwrap();
    let error = profile.bind(&header(&["uid", "doc", "name"])).unwrap_err();
    match &error {
        ProfileError::MissingFields(missing) => {
            let fields: Vec<&str> = missing.iter().map(|m| m.field.as_str()).collect();
            assert_eq!(fields, ["street", "pin"]);
        }
        other => panic!("unexpected {other:?}"),
    }
    let message = error.to_string();
    assert!(
        message.contains("`street` (read by private EF 6001 \"addr\" record 1)"),
        "{message}"
    );
    assert!(message.contains("`pin` (read by [pin])"), "{message}");
}
