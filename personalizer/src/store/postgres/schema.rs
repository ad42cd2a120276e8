//! The PostgreSQL schema, its roles and its migrations. Everything lives in the schema `vsc` of
//! the database the location names; `vsc.schema_version` holds the version. PostgreSQL stores
//! begin at version 3 (the first version with this backend); a later version adds its
//! migration here and in the SQLite backend alike.
//!
//! The rules a station must not be able to break are the database's, not only this program's:
//! the audit log is append-only (triggers refuse UPDATE, DELETE and TRUNCATE, for every role, and
//! the roles below are never granted them); a card is personalized at most once (a personalized
//! card never changes, only a claimed card becomes personalized, cards are never deleted, and one
//! `personalized` or `confirmed` audit line per card, which needs the card personalized).

/// Each migration: the version it starts from and the statements that take it to the next.
pub(super) const MIGRATIONS: [(u32, &str); 1] = [(0, V3)];

/// Version 3, from nothing. It also creates the roles it grants to, where they are missing
/// (roles are the cluster's, not the database's): `vsc_station` (claims, renewals, endings and
/// audit lines, never an UPDATE or DELETE of the audit log), `vsc_preparation` (cards and PIN
/// mailer files in) and `vsc_auditor` (reads). Log-in roles are made members of them by the
/// database's administrator (docs/store.md).
const V3: &str = r#"
CREATE SCHEMA vsc;
CREATE TABLE vsc.schema_version (version integer NOT NULL);
INSERT INTO vsc.schema_version VALUES (3);

CREATE TABLE vsc.dictionaries (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    profile_id       text NOT NULL,
    profile_version  integer NOT NULL,
    kind             text NOT NULL CHECK (kind IN ('pre-initialization', 'personalization')),
    text             bytea NOT NULL,
    digest           text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX dictionaries_profile ON vsc.dictionaries (profile_id, profile_version, kind);

CREATE TABLE vsc.cards (
    uid               text PRIMARY KEY CHECK (uid ~ '^[0-9A-F]{16}$'),
    profile_id        text NOT NULL,
    profile_version   integer NOT NULL,
    status            text NOT NULL
                      CHECK (status IN ('prepared', 'claimed', 'personalized', 'failed')),
    claimed_by        text,
    claim_reader      text,
    claim_host        text,
    claimed_at        timestamptz,
    claim_expires     timestamptz,
    failed_step       integer,
    failure           text,
    image             bytea NOT NULL,
    preinit_sealed    boolean NOT NULL,
    preinit           bytea NOT NULL,
    preinit_digest    text NOT NULL,
    perso_sealed      boolean NOT NULL,
    perso             bytea NOT NULL,
    perso_digest      text NOT NULL,
    preinit_dictionary bigint REFERENCES vsc.dictionaries (id),
    perso_dictionary  bigint REFERENCES vsc.dictionaries (id),
    mailer_file       text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CHECK ((status = 'claimed') = (claimed_by IS NOT NULL AND claim_expires IS NOT NULL))
);
CREATE INDEX cards_status ON vsc.cards (status);

CREATE TABLE vsc.audit (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    uid               text NOT NULL,
    station           text NOT NULL,
    host              text NOT NULL,
    reader            text NOT NULL,
    transcript_digest text,
    result            text NOT NULL CHECK (result IN ('personalized', 'confirmed', 'failed',
                                                      'refused', 'released', 'abandoned')),
    failed_step       integer,
    reason            text,
    started_at        timestamptz NOT NULL,
    duration_ms       bigint NOT NULL CHECK (duration_ms >= 0)
);
CREATE INDEX audit_uid ON vsc.audit (uid);
CREATE INDEX audit_station ON vsc.audit (station, started_at);
CREATE INDEX audit_started ON vsc.audit (started_at);
CREATE UNIQUE INDEX audit_personalized_once ON vsc.audit (uid)
    WHERE result IN ('personalized', 'confirmed');

CREATE TABLE vsc.mailer_files (
    name        text PRIMARY KEY,
    run         text NOT NULL,
    folder      text NOT NULL,
    state       text NOT NULL CHECK (state IN ('pending', 'stored', 'orphan')),
    uids        text[] NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION vsc.audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only' USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON vsc.audit
    FOR EACH ROW EXECUTE FUNCTION vsc.audit_append_only();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON vsc.audit
    FOR EACH STATEMENT EXECUTE FUNCTION vsc.audit_append_only();

-- Checked when the transaction commits, so that a card's ending (its status, then its line)
-- may be one statement.
CREATE FUNCTION vsc.audit_personalized_needs_the_card() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM vsc.cards WHERE uid = NEW.uid AND status = 'personalized') THEN
        RAISE EXCEPTION 'card % is not personalized: no % line', NEW.uid, NEW.result
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER audit_personalized_needs_the_card AFTER INSERT ON vsc.audit
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    WHEN (NEW.result IN ('personalized', 'confirmed'))
    EXECUTE FUNCTION vsc.audit_personalized_needs_the_card();

CREATE FUNCTION vsc.cards_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'UPDATE' THEN
        RAISE EXCEPTION 'cards are never deleted' USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF OLD.status = 'personalized' THEN
        RAISE EXCEPTION 'card % is personalized: it never changes again', OLD.uid
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF NEW.status = 'personalized' AND OLD.status <> 'claimed' THEN
        RAISE EXCEPTION 'card % is %: only a claimed card becomes personalized',
            OLD.uid, OLD.status USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF (NEW.uid, NEW.profile_id, NEW.profile_version, NEW.image, NEW.preinit, NEW.perso,
        NEW.preinit_digest, NEW.perso_digest, NEW.preinit_dictionary, NEW.perso_dictionary)
       IS DISTINCT FROM
       (OLD.uid, OLD.profile_id, OLD.profile_version, OLD.image, OLD.preinit, OLD.perso,
        OLD.preinit_digest, OLD.perso_digest, OLD.preinit_dictionary, OLD.perso_dictionary) THEN
        RAISE EXCEPTION 'card %: what preparation made never changes', OLD.uid
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER cards_guard BEFORE UPDATE OR DELETE ON vsc.cards
    FOR EACH ROW EXECUTE FUNCTION vsc.cards_guard();
CREATE TRIGGER cards_no_truncate BEFORE TRUNCATE ON vsc.cards
    FOR EACH STATEMENT EXECUTE FUNCTION vsc.cards_guard();

DO $$
DECLARE
    role text;
BEGIN
    FOREACH role IN ARRAY ARRAY['vsc_station', 'vsc_preparation', 'vsc_auditor'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = role) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN', role);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL; -- made meanwhile by a migration of another database
            END;
        END IF;
    END LOOP;
END $$;

GRANT USAGE ON SCHEMA vsc TO vsc_station, vsc_preparation, vsc_auditor;
GRANT SELECT ON ALL TABLES IN SCHEMA vsc TO vsc_auditor;
GRANT SELECT ON vsc.schema_version, vsc.dictionaries, vsc.mailer_files TO vsc_station;
GRANT SELECT, INSERT ON vsc.audit TO vsc_station;
GRANT SELECT ON vsc.cards TO vsc_station;
GRANT UPDATE (status, claimed_by, claim_reader, claim_host, claimed_at, claim_expires,
              failed_step, failure, updated_at) ON vsc.cards TO vsc_station;
GRANT SELECT ON vsc.schema_version, vsc.audit TO vsc_preparation;
GRANT SELECT, INSERT ON vsc.cards, vsc.dictionaries TO vsc_preparation;
GRANT SELECT, INSERT, UPDATE ON vsc.mailer_files TO vsc_preparation;
"#;
