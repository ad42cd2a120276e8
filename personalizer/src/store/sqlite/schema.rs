//! The SQLite schema and its migrations. `PRAGMA user_version` holds the version; a new store
//! runs every migration from version 0, an older one the migrations it lacks, each in the
//! transaction that also sets the version.

/// Each migration takes the schema from its index to its index + 1.
pub(super) const MIGRATIONS: [&str; 3] = [V1, V2, V3];

/// Version 1: cards and the append-only audit log.
const V1: &str = "
CREATE TABLE cards (
    id                INTEGER PRIMARY KEY,
    uid               TEXT NOT NULL UNIQUE,
    profile_id        TEXT NOT NULL,
    profile_version   INTEGER NOT NULL,
    status            TEXT NOT NULL CHECK (status IN ('prepared', 'claimed', 'personalized', 'failed')),
    claimed_by        TEXT,
    failed_step       INTEGER,
    failure           TEXT,
    image             BLOB NOT NULL,
    preinit_sealed    INTEGER NOT NULL,
    preinit           BLOB NOT NULL,
    preinit_digest    TEXT NOT NULL,
    perso_sealed      INTEGER NOT NULL,
    perso             BLOB NOT NULL,
    perso_digest      TEXT NOT NULL,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL
);
CREATE INDEX cards_status ON cards (status);
CREATE TABLE audit (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    uid               TEXT NOT NULL,
    reader            TEXT NOT NULL,
    station           TEXT NOT NULL,
    transcript_digest TEXT NOT NULL,
    result            TEXT NOT NULL,
    failed_step       INTEGER,
    started_at        TEXT NOT NULL,
    duration_ms       INTEGER NOT NULL
);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
";

/// Version 2: leased claims (the claiming station in `claimed_by`, its reader and the lease's
/// end), the PIN mailer file of each card and the table reconciling mailer files with their
/// batches, the host and the masked reason of each audit line, and only known audit results.
/// Claims of version 1 had no lease: they are taken as ended.
const V2: &str = "
ALTER TABLE cards ADD COLUMN claim_reader TEXT;
ALTER TABLE cards ADD COLUMN claim_expires INTEGER;
ALTER TABLE cards ADD COLUMN mailer_file TEXT;
UPDATE cards SET claim_reader = '', claim_expires = 0 WHERE status = 'claimed';
ALTER TABLE audit ADD COLUMN host TEXT NOT NULL DEFAULT '';
ALTER TABLE audit ADD COLUMN reason TEXT;
CREATE INDEX audit_uid ON audit (uid);
CREATE INDEX audit_station ON audit (station, started_at);
CREATE TRIGGER audit_known_result BEFORE INSERT ON audit
    WHEN NEW.result NOT IN ('personalized', 'confirmed', 'failed', 'refused', 'released')
    BEGIN SELECT RAISE(ABORT, 'unknown audit result'); END;
CREATE TABLE mailer_files (
    name        TEXT PRIMARY KEY,
    run         TEXT NOT NULL,
    folder      TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('pending', 'stored', 'orphan')),
    uids        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
";

/// Version 3: transcripts rest compressed (zstd, against a dictionary of their profile and kind
/// kept in `dictionaries`; sealed ones compressed before sealing), older rows keep their text and stay
/// readable; a claim records its host and start (`claimed_ms`), so that a claim taken over is
/// audited `abandoned` for its station; and the database enforces that a card is personalized
/// at most once: a personalized card never changes again, only a claimed card becomes
/// personalized, cards are never deleted, and one `personalized` or `confirmed` audit line per
/// card at most, which needs the card personalized.
const V3: &str = "
CREATE TABLE dictionaries (
    id               INTEGER PRIMARY KEY,
    profile_id       TEXT NOT NULL,
    profile_version  INTEGER NOT NULL,
    kind             TEXT NOT NULL,
    text             BLOB NOT NULL,
    digest           TEXT NOT NULL,
    created_at       TEXT NOT NULL
);
CREATE INDEX dictionaries_profile ON dictionaries (profile_id, profile_version, kind);
ALTER TABLE cards ADD COLUMN preinit_dictionary INTEGER REFERENCES dictionaries (id);
ALTER TABLE cards ADD COLUMN perso_dictionary INTEGER REFERENCES dictionaries (id);
ALTER TABLE cards ADD COLUMN claim_host TEXT;
ALTER TABLE cards ADD COLUMN claimed_ms INTEGER;
DROP TRIGGER audit_known_result;
CREATE TRIGGER audit_known_result BEFORE INSERT ON audit
    WHEN NEW.result NOT IN ('personalized', 'confirmed', 'failed', 'refused', 'released',
                            'abandoned')
    BEGIN SELECT RAISE(ABORT, 'unknown audit result'); END;
CREATE UNIQUE INDEX audit_personalized_once ON audit (uid)
    WHERE result IN ('personalized', 'confirmed');
CREATE TRIGGER audit_personalized_needs_the_card BEFORE INSERT ON audit
    WHEN NEW.result IN ('personalized', 'confirmed') AND NOT EXISTS
        (SELECT 1 FROM cards WHERE uid = NEW.uid AND status = 'personalized')
    BEGIN SELECT RAISE(ABORT, 'the card is not personalized'); END;
CREATE TRIGGER cards_personalized_stays BEFORE UPDATE ON cards
    WHEN OLD.status = 'personalized'
    BEGIN SELECT RAISE(ABORT, 'the card is personalized: it never changes again'); END;
CREATE TRIGGER cards_personalized_from_a_claim BEFORE UPDATE OF status ON cards
    WHEN NEW.status = 'personalized' AND OLD.status <> 'claimed'
    BEGIN SELECT RAISE(ABORT, 'only a claimed card becomes personalized'); END;
CREATE TRIGGER cards_no_delete BEFORE DELETE ON cards
    BEGIN SELECT RAISE(ABORT, 'cards are never deleted'); END;
";

/// The version-1 schema as version 1 of this program made it, for tests of the migration.
#[cfg(test)]
pub(super) const VERSION_1: &str = V1;

/// The version-2 schema as version 2 of this program left it, for tests of the migration.
#[cfg(test)]
pub(super) const VERSION_2: [&str; 2] = [V1, V2];
