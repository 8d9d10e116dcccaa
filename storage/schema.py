"""Schema, versioned by PRAGMA user_version; each migration runs once, in order.

Indexes exist for the console's and status's questions (drift by kind, failed/dead/held
ops, due ops, overdue terminations, one person's history) so that they stay fast at a
million people: every such query is an index range scan, never a table scan.
"""

from __future__ import annotations

import sqlite3

MIGRATIONS: list[str] = [
    # 1: the initial schema
    """
    CREATE TABLE people (
        employee_id     TEXT PRIMARY KEY,
        status          TEXT,            -- canonical status, or 'invalid'
        in_scope        INTEGER NOT NULL DEFAULT 0,
        manager_id      TEXT,            -- to revisit reports when their manager's account appears
        record          TEXT,            -- Person JSON (last valid)
        desired         TEXT,            -- desired Account JSON (in scope only)
        desired_digest  BLOB,
        locator         TEXT,            -- where the record came from, e.g. file:line
        effective_at    TEXT,            -- scheduled termination time (UTC), if any
        first_seen_at   TEXT NOT NULL,
        last_seen_at    TEXT NOT NULL,
        missing_since   TEXT,            -- vanished from full feeds since
        missing_pulls   INTEGER NOT NULL DEFAULT 0,
        dirty           INTEGER NOT NULL DEFAULT 0,  -- needs re-evaluation next run
        updated_at      TEXT NOT NULL
    );
    CREATE INDEX people_dirty ON people(dirty) WHERE dirty = 1;
    CREATE INDEX people_missing ON people(missing_since) WHERE missing_since IS NOT NULL;
    CREATE INDEX people_effective ON people(effective_at) WHERE effective_at IS NOT NULL;
    CREATE INDEX people_manager ON people(manager_id) WHERE manager_id IS NOT NULL;

    -- The last accepted full snapshot, narrow so a million rows load in one scan.
    CREATE TABLE snapshot_rows (
        employee_id TEXT PRIMARY KEY,
        digest      BLOB NOT NULL,
        null_mask   INTEGER NOT NULL DEFAULT 0,
        active      INTEGER NOT NULL DEFAULT 0
    ) WITHOUT ROWID;

    -- The same digests packed in two blobs: loading a million keys from one row is several
    -- times faster than from a million rows. Valid only for the snapshot it names.
    CREATE TABLE snapshot_index (
        id          INTEGER PRIMARY KEY CHECK (id = 1),
        snapshot_id INTEGER NOT NULL,
        keys        BLOB NOT NULL,       -- employee_ids joined by newlines, UTF-8
        digests     BLOB NOT NULL        -- 8 bytes per key, same order
    );

    CREATE TABLE snapshots (
        id          INTEGER PRIMARY KEY,
        run_id      INTEGER,
        created_at  TEXT NOT NULL,
        mode        TEXT NOT NULL,
        accepted    INTEGER NOT NULL,
        rows        INTEGER NOT NULL,
        active      INTEGER NOT NULL,
        null_counts TEXT NOT NULL,
        reasons     TEXT NOT NULL DEFAULT '[]',
        fingerprint TEXT
    );

    CREATE TABLE accounts (
        lms_id       TEXT PRIMARY KEY,
        external_key TEXT,
        user_name    TEXT,
        email        TEXT,
        active       INTEGER NOT NULL,
        data         TEXT NOT NULL,      -- Account JSON as last read or written
        digest       BLOB,
        seen_at      TEXT NOT NULL
    );
    CREATE INDEX accounts_key ON accounts(external_key);
    CREATE INDEX accounts_email ON accounts(email COLLATE NOCASE);
    CREATE INDEX accounts_user ON accounts(user_name COLLATE NOCASE);
    CREATE INDEX accounts_active ON accounts(active);

    CREATE TABLE drift (
        id            INTEGER PRIMARY KEY,
        subject       TEXT NOT NULL,     -- employee_id, or the LMS key of an orphan
        lms_id        TEXT,
        kind          TEXT NOT NULL,
        detail        TEXT NOT NULL DEFAULT '{}',
        owner         TEXT,
        first_seen_at TEXT NOT NULL,
        last_seen_at  TEXT NOT NULL,
        resolved_at   TEXT
    );
    CREATE UNIQUE INDEX drift_open ON drift(subject, kind) WHERE resolved_at IS NULL;
    CREATE INDEX drift_open_kind ON drift(kind, first_seen_at) WHERE resolved_at IS NULL;
    CREATE INDEX drift_subject ON drift(subject, first_seen_at);

    CREATE TABLE ops (
        id                INTEGER PRIMARY KEY,
        employee_id       TEXT NOT NULL,
        lms_id            TEXT,
        kind              TEXT NOT NULL,
        payload           TEXT NOT NULL DEFAULT '{}',
        idem_key          TEXT NOT NULL,
        status            TEXT NOT NULL,
        reason            TEXT,          -- why it was planned (terminated, vanished, ...)
        depth             INTEGER NOT NULL DEFAULT 0,  -- manager depth: managers first
        attempts          INTEGER NOT NULL DEFAULT 0,
        max_attempts      INTEGER NOT NULL DEFAULT 6,
        last_error        TEXT,
        error_class       TEXT,
        http_status       INTEGER,
        next_attempt_at   TEXT,          -- not before (scheduled terminations, retries)
        run_id            INTEGER,
        hold_reason       TEXT,
        suppressed_reason TEXT,
        suppressed_until  TEXT,
        suppressed_by     TEXT,
        approved_by       TEXT,
        created_at        TEXT NOT NULL,
        updated_at        TEXT NOT NULL,
        finished_at       TEXT
    );
    CREATE INDEX ops_status ON ops(status, next_attempt_at);
    CREATE INDEX ops_person ON ops(employee_id, id);
    CREATE INDEX ops_run ON ops(run_id, status);
    CREATE UNIQUE INDEX ops_open_key ON ops(idem_key)
        WHERE status IN ('pending', 'running', 'failed', 'held', 'suppressed');

    CREATE TABLE op_attempts (
        op_id        INTEGER NOT NULL REFERENCES ops(id),
        attempt      INTEGER NOT NULL,
        started_at   TEXT NOT NULL,
        finished_at  TEXT,
        outcome      TEXT,
        error_class  TEXT,
        http_status  INTEGER,
        error        TEXT,
        PRIMARY KEY (op_id, attempt)
    );

    CREATE TABLE runs (
        id          INTEGER PRIMARY KEY,
        kind        TEXT NOT NULL,       -- full | delta | resync | retry
        trigger     TEXT NOT NULL,       -- cli | schedule | console | event
        dry_run     INTEGER NOT NULL DEFAULT 0,
        status      TEXT NOT NULL,       -- running | succeeded | partial | held | rejected | quarantined | failed
        started_at  TEXT NOT NULL,
        finished_at TEXT,
        counts      TEXT NOT NULL DEFAULT '{}',
        message     TEXT
    );
    CREATE INDEX runs_started ON runs(started_at);

    CREATE TABLE sources (
        name            TEXT PRIMARY KEY,  -- 'hris' | 'lms'
        description     TEXT,
        last_success_at TEXT,
        last_attempt_at TEXT,
        last_error      TEXT,
        watermark       TEXT
    );

    CREATE TABLE suppressions (
        id          INTEGER PRIMARY KEY,
        employee_id TEXT NOT NULL,
        reason      TEXT NOT NULL,
        until       TEXT,
        created_by  TEXT NOT NULL,
        created_at  TEXT NOT NULL,
        lifted_at   TEXT,
        lifted_by   TEXT
    );
    CREATE INDEX suppressions_active ON suppressions(employee_id) WHERE lifted_at IS NULL;

    CREATE TABLE audit (
        id        INTEGER PRIMARY KEY,
        at        TEXT NOT NULL,
        actor     TEXT NOT NULL,
        action    TEXT NOT NULL,
        target    TEXT,
        detail    TEXT NOT NULL DEFAULT '{}',
        prev_hash TEXT NOT NULL,
        hash      TEXT NOT NULL
    );
    CREATE INDEX audit_target ON audit(target, id);
    -- Append-only: the database itself refuses to rewrite history.
    CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;

    CREATE TABLE lease (
        name        TEXT PRIMARY KEY,
        holder      TEXT NOT NULL,
        pid         INTEGER,
        host        TEXT,
        acquired_at TEXT NOT NULL,
        expires_at  TEXT NOT NULL
    );

    CREATE TABLE job_state (
        name   TEXT PRIMARY KEY,
        state  TEXT NOT NULL,            -- active | paused | quarantined
        reason TEXT,
        since  TEXT NOT NULL,
        actor  TEXT
    );
    """,
    # 2: the packed index is rewritten only now and then; in between, each accepted
    # snapshot adds its few changed keys here (a 1%-change reconcile of a million people
    # writes 14k small rows, not a 16 MB blob). snapshot_index_head names the snapshot
    # that the blob plus these rows describe.
    """
    CREATE TABLE snapshot_index_delta (
        employee_id TEXT PRIMARY KEY,
        digest      BLOB                 -- NULL: the key left the snapshot
    ) WITHOUT ROWID;

    -- Which snapshot the blob plus the delta rows describe. Kept apart from the blob's
    -- row: updating any column of that row would rewrite its 16 MB.
    CREATE TABLE snapshot_index_head (
        id          INTEGER PRIMARY KEY CHECK (id = 1),
        snapshot_id INTEGER NOT NULL
    );
    """,
    # 3: real-time intake and alerting (events received, alert states).
    """
    -- One row per accepted webhook request; the signature's hash is unique, so a
    -- replayed request is refused even inside the timestamp window.
    CREATE TABLE webhook_deliveries (
        id             INTEGER PRIMARY KEY,
        source         TEXT NOT NULL,     -- bamboohr | generic
        signature_hash TEXT NOT NULL,
        received_at    TEXT NOT NULL,
        events         INTEGER NOT NULL
    );
    CREATE UNIQUE INDEX webhook_deliveries_sig ON webhook_deliveries(source, signature_hash);
    CREATE INDEX webhook_deliveries_at ON webhook_deliveries(received_at);

    CREATE TABLE events_received (
        id          INTEGER PRIMARY KEY,
        delivery_id INTEGER NOT NULL REFERENCES webhook_deliveries(id) ON DELETE CASCADE,
        source      TEXT NOT NULL,
        employee_id TEXT NOT NULL,
        action      TEXT,                -- as the sender named it (Updated, terminated, ...)
        received_at TEXT NOT NULL,
        status      TEXT NOT NULL,       -- queued | synced | coalesced | gated | batched | ignored | failed
        detail      TEXT,
        run_id      INTEGER,
        done_at     TEXT
    );
    CREATE INDEX events_received_at ON events_received(received_at);
    CREATE INDEX events_received_open ON events_received(status) WHERE status IN ('queued', 'gated');
    CREATE INDEX events_received_person ON events_received(employee_id, id);

    -- One row per alert condition (quarantine, held, sla, stale:hris, stale:lms): its
    -- current state and the last state a notice was delivered for.
    CREATE TABLE alert_state (
        key           TEXT PRIMARY KEY,
        active        INTEGER NOT NULL,
        since         TEXT NOT NULL,
        detail        TEXT,
        notified      INTEGER,          -- the state last announced (NULL: never)
        notified_at   TEXT,
        last_error    TEXT
    );
    """,
    # 4: audiences (rules' desired and actual memberships).
    """
    CREATE TABLE audience_members (
        audience_id TEXT NOT NULL,       -- the [[audiences]] id
        lms_id      TEXT NOT NULL,       -- the member's LMS account
        employee_id TEXT,                -- NULL: an account no person is linked to
        seen_at     TEXT NOT NULL,
        PRIMARY KEY (audience_id, lms_id)
    ) WITHOUT ROWID;
    CREATE INDEX audience_members_person ON audience_members(employee_id);

    CREATE TABLE audience_people (
        employee_id TEXT PRIMARY KEY,
        desired     TEXT NOT NULL DEFAULT '{}',  -- audience id -> the rule that placed them
        frozen      TEXT NOT NULL DEFAULT '{}',  -- audience id -> why it is left alone
        due_at      TEXT,                -- when time alone changes membership (onboarding)
        updated_at  TEXT NOT NULL
    );
    CREATE INDEX audience_people_due ON audience_people(due_at) WHERE due_at IS NOT NULL;

    CREATE TABLE audience_desired (
        audience_id TEXT NOT NULL,
        employee_id TEXT NOT NULL,
        PRIMARY KEY (audience_id, employee_id)
    ) WITHOUT ROWID;
    CREATE INDEX audience_desired_person ON audience_desired(employee_id);
    """,
    # 5: reports and retention. Reports ask history by time (terminations, drift opened
    # and resolved, failures, audit entries); retention deletes by age. The checkpoint
    # table keeps the audit chain verifiable after its oldest entries are pruned: each row
    # names the last pruned entry and its hash, which the first kept entry links to.
    """
    CREATE INDEX ops_terminations ON ops(kind, created_at)
        WHERE kind IN ('deactivate', 'delete');
    CREATE INDEX ops_finished ON ops(finished_at) WHERE finished_at IS NOT NULL;
    CREATE INDEX op_attempts_finished ON op_attempts(finished_at);
    CREATE INDEX drift_seen ON drift(first_seen_at);
    CREATE INDEX drift_resolved ON drift(resolved_at) WHERE resolved_at IS NOT NULL;
    CREATE INDEX audit_at ON audit(at);
    CREATE TABLE audit_checkpoints (
        id           INTEGER PRIMARY KEY,
        at           TEXT NOT NULL,
        through_id   INTEGER NOT NULL,   -- the last pruned audit entry
        through_hash TEXT NOT NULL,      -- its hash: the kept chain starts from it
        through_at   TEXT NOT NULL,
        pruned       INTEGER NOT NULL,   -- entries removed by this prune
        actor        TEXT NOT NULL
    );
    CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
        BEGIN SELECT RAISE(ABORT, 'audit checkpoints are append-only'); END;
    CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
        BEGIN SELECT RAISE(ABORT, 'audit checkpoints are append-only'); END;
    """,
    # 6: webhook refusals (status reports them from any process) and alert delivery per
    # channel (a notice one channel took and another did not is re-sent only to the other).
    """
    -- Refused requests, counted per minute, source and answer: a flood of forged
    -- requests adds at most one row a minute, not one row a request.
    CREATE TABLE webhook_refusals (
        minute   TEXT NOT NULL,          -- UTC, truncated to the minute
        source   TEXT NOT NULL,          -- bamboohr | event
        status   INTEGER NOT NULL,       -- the HTTP answer (400, 401, 409, ...)
        refused  INTEGER NOT NULL,
        last_at  TEXT NOT NULL,
        last_why TEXT NOT NULL,
        PRIMARY KEY (minute, source, status)
    ) WITHOUT ROWID;

    -- The state each channel last took a notice for, per alert condition.
    CREATE TABLE alert_deliveries (
        key         TEXT NOT NULL,       -- the alert condition (alert_state.key)
        channel     TEXT NOT NULL,       -- the channel's identity (type and a digest)
        notified    INTEGER,             -- the state last announced here (NULL: never)
        notified_at TEXT,
        last_error  TEXT,
        PRIMARY KEY (key, channel)
    ) WITHOUT ROWID;
    """,
    # 7: operator decisions on disputed and unlinked matches (storage/match_decisions.py),
    # and the error class of a failed run and of a source's last failure, so that an HRIS
    # that cannot be reached is told apart from a feed the gate rejected.
    """
    CREATE TABLE match_decisions (
        id          INTEGER PRIMARY KEY,
        employee_id TEXT NOT NULL,
        decision    TEXT NOT NULL,       -- link | create | ignore
        lms_id      TEXT,                -- link: the account the operator chose
        reason      TEXT,
        decided_by  TEXT NOT NULL,
        decided_at  TEXT NOT NULL,
        ended_at    TEXT,                -- NULL: in force
        ended_by    TEXT,
        ended_how   TEXT,                -- superseded | cleared
        ended_why   TEXT
    );
    CREATE UNIQUE INDEX match_decisions_active ON match_decisions(employee_id)
        WHERE ended_at IS NULL;
    CREATE INDEX match_decisions_person ON match_decisions(employee_id, id);

    ALTER TABLE runs ADD COLUMN error_class TEXT;
    -- The class of the source's current failure and since when failures of that class
    -- have run unbroken (cleared by a success).
    ALTER TABLE sources ADD COLUMN error_class TEXT;
    ALTER TABLE sources ADD COLUMN failing_since TEXT;
    """,
    # 8: the run each attempt was made in. An op planned by one run is often tried (and
    # fails) in a later retry sweep; a run's failures are the attempts made in it. NULL for
    # attempts recorded before this column: those count for the run that planned the op.
    """
    ALTER TABLE op_attempts ADD COLUMN run_id INTEGER;
    CREATE INDEX op_attempts_run ON op_attempts(run_id) WHERE run_id IS NOT NULL;
    """,
    # 9: who in the feed holds a login or e-mail (sync.feed_conflicts): the uniqueness
    # check looks up the values of the people it evaluates, never scans everyone.
    """
    CREATE INDEX people_user_name ON people(lower(json_extract(desired, '$.user_name')));
    CREATE INDEX people_email ON people(lower(json_extract(desired, '$.email')));
    """,
    # 10: the source columns each feed offered (a JSON list; NULL when the source cannot
    # tell): a column that appears or disappears between accepted feeds is reported.
    """
    ALTER TABLE snapshots ADD COLUMN columns TEXT;
    """,
    # 11: the keyed audit chain (storage/audit.py). Each entry records the real uid's user
    # name beside the name it was taken as; checkpoints carry an HMAC (NULL on those
    # written before a key was used), and the first signed one ('seal') closes the old
    # unkeyed prefix, naming where its kept part starts.
    """
    ALTER TABLE audit ADD COLUMN os_user TEXT;
    ALTER TABLE audit_checkpoints ADD COLUMN kind TEXT NOT NULL DEFAULT 'prune';
    ALTER TABLE audit_checkpoints ADD COLUMN start_id INTEGER;
    ALTER TABLE audit_checkpoints ADD COLUMN start_hash TEXT;
    ALTER TABLE audit_checkpoints ADD COLUMN mac TEXT;
    """,
    # 12: when a person must be read from the HRIS again though nothing reports a change:
    # a future-dated change entered in HR takes effect without editing anything, so no
    # delta feed lists it (BambooHR's scheduled rows). A delta run re-reads those due.
    """
    ALTER TABLE people ADD COLUMN revisit_on TEXT;
    CREATE INDEX people_revisit ON people(revisit_on) WHERE revisit_on IS NOT NULL;
    """,
    # 13: several `serve` nodes on one database (sync/leadership.py). Each lease carries a
    # fencing token that only grows (a release expires the row and keeps it) and the node
    # that holds it; a scheduled job's run is claimed by (job, fire time) before it runs,
    # so that no job runs twice across nodes.
    """
    ALTER TABLE lease ADD COLUMN token INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE lease ADD COLUMN node TEXT;
    CREATE TABLE job_claims (
        job        TEXT NOT NULL,
        fire_time  TEXT NOT NULL,
        node       TEXT,
        claimed_at TEXT NOT NULL,
        PRIMARY KEY (job, fire_time)
    );
    """,
]


def migrate(conn: sqlite3.Connection, path: object) -> int:
    """Bring the database at ``path`` (named in errors) to the newest schema; returns the
    version. Takes the connection, not the Store, so that storage.db can import this
    module without this one importing it back."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > len(MIGRATIONS):
        raise RuntimeError(
            f"{path}: database schema version {version} is newer than this "
            f"rostersync ({len(MIGRATIONS)}); upgrade rostersync")
    for number in range(version, len(MIGRATIONS)):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(MIGRATIONS[number]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number + 1}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    return len(MIGRATIONS)


def _statements(script: str) -> list[str]:
    """Split a migration into statements (executescript would commit on its own)."""
    out: list[str] = []
    buf = ""
    for line in script.splitlines(keepends=True):
        stripped = line.split("--", 1)[0] if "'" not in line.split("--", 1)[0] else line
        buf += stripped
        if sqlite3.complete_statement(buf):
            if buf.strip():
                out.append(buf.strip())
            buf = ""
    if buf.strip():
        out.append(buf.strip())
    return out
