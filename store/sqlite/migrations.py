"""Schema versions, applied in order; ``PRAGMA user_version`` records the last one.

Never edit a released step: add a new one.
"""

from store.sqlite.jobs import job_table_sql
from store.sqlite.stats import site_counter_sql

MIGRATIONS: list[tuple[int, list[str]]] = [
    (1, [
        """CREATE TABLE users (
            id TEXT PRIMARY KEY,
            email TEXT,
            email_lc TEXT UNIQUE,
            username TEXT NOT NULL,
            username_lc TEXT NOT NULL UNIQUE,
            password_hash TEXT,
            role TEXT NOT NULL,
            is_guest INTEGER NOT NULL,
            is_active INTEGER NOT NULL,
            remaining_imports INTEGER,
            remaining_messages INTEGER,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            last_login_at TEXT
        )""",
        """CREATE TABLE projects (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            description TEXT NOT NULL DEFAULT '',
            color TEXT,
            owner_id TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )""",
        """CREATE TABLE project_members (
            project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            role TEXT NOT NULL,
            added_at TEXT NOT NULL,
            PRIMARY KEY (project_id, user_id)
        )""",
        "CREATE INDEX project_members_user ON project_members(user_id)",
        """CREATE TABLE refresh_tokens (
            token_hash TEXT PRIMARY KEY,
            user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            family_id TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            created_at TEXT NOT NULL,
            used_at TEXT,
            revoked INTEGER NOT NULL DEFAULT 0
        )""",
        "CREATE INDEX refresh_tokens_family ON refresh_tokens(family_id)",
        "CREATE INDEX refresh_tokens_user ON refresh_tokens(user_id)",
    ]),
    (2, [
        """CREATE TABLE files (
            id TEXT PRIMARY KEY,
            project_id TEXT NOT NULL,
            name TEXT NOT NULL,
            size INTEGER NOT NULL,
            mime TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            uploader_id TEXT NOT NULL,
            storage_key TEXT NOT NULL,
            created_at TEXT NOT NULL
        )""",
        "CREATE INDEX files_project ON files(project_id, id)",
    ]),
    (3, [
        """CREATE TABLE data_tables (
            id TEXT PRIMARY KEY,
            project_id TEXT NOT NULL,
            name TEXT NOT NULL,
            columns TEXT NOT NULL,
            created_by TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            UNIQUE (project_id, name)
        )""",
        """CREATE TABLE data_rows (
            id TEXT PRIMARY KEY,
            table_id TEXT NOT NULL REFERENCES data_tables(id) ON DELETE CASCADE,
            vals TEXT NOT NULL,
            version INTEGER NOT NULL,
            author_id TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            updated_by TEXT NOT NULL
        )""",
        "CREATE INDEX data_rows_table ON data_rows(table_id, id)",
        """CREATE TABLE row_changes (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            table_id TEXT NOT NULL REFERENCES data_tables(id) ON DELETE CASCADE,
            row_id TEXT NOT NULL,
            version INTEGER NOT NULL,
            op TEXT NOT NULL,
            user_id TEXT NOT NULL,
            at TEXT NOT NULL,
            before TEXT,
            after TEXT,
            author_id TEXT NOT NULL
        )""",
        "CREATE INDEX row_changes_row ON row_changes(table_id, row_id, seq)",
        "CREATE INDEX row_changes_table ON row_changes(table_id, seq)",
        """CREATE TABLE ticks (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at TEXT NOT NULL,
            value REAL NOT NULL,
            producer TEXT NOT NULL
        )""",
    ]),
    (4, [  # PCAP analysis
        """CREATE TABLE pcap_jobs (
            file_id TEXT PRIMARY KEY,
            cap INTEGER NOT NULL UNIQUE,
            project_id TEXT NOT NULL,
            state TEXT NOT NULL,
            attempt INTEGER NOT NULL DEFAULT 0,
            owner TEXT,
            lease_until REAL,
            progress TEXT NOT NULL DEFAULT '{}',
            error TEXT,
            requested_by TEXT NOT NULL,
            queue_key TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            started_at TEXT,
            finished_at TEXT
        )""",
        "CREATE INDEX pcap_jobs_state ON pcap_jobs(state, queue_key)",
        "CREATE INDEX pcap_jobs_project ON pcap_jobs(project_id)",
        # Packets live in one table per capture, pcap_packets_<cap> (store/sqlite/pcap.py):
        # filled without indexes, indexed in one sort when the ingest is done, dropped whole.
        """CREATE TABLE pcap_stats (
            file_id TEXT NOT NULL,
            name TEXT NOT NULL,
            part INTEGER NOT NULL,
            data TEXT NOT NULL,
            PRIMARY KEY (file_id, name, part)
        )""",
    ]),
    (5, [  # AI chat (4 is PCAP's)
        """CREATE TABLE conversations (
            id TEXT PRIMARY KEY,
            project_id TEXT,
            owner_id TEXT NOT NULL,
            title TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            generating_id TEXT,
            lease_until TEXT
        )""",
        "CREATE INDEX conversations_project ON conversations(project_id, id)",
        "CREATE INDEX conversations_owner ON conversations(owner_id, project_id, id)",
        "CREATE INDEX conversations_generating ON conversations(generating_id)"
        " WHERE generating_id IS NOT NULL",
        """CREATE TABLE chat_messages (
            id TEXT PRIMARY KEY,
            conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
            role TEXT NOT NULL,
            content TEXT NOT NULL,
            status TEXT NOT NULL,
            author_id TEXT,
            attachments TEXT NOT NULL,
            metadata TEXT NOT NULL,
            delta_index INTEGER NOT NULL DEFAULT -1,
            instance TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )""",
        "CREATE INDEX chat_messages_conversation ON chat_messages(conversation_id, id)",
        """CREATE TABLE chat_file_context (
            file_id TEXT PRIMARY KEY,
            project_id TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            kind TEXT NOT NULL,
            data TEXT NOT NULL,
            created_at TEXT NOT NULL
        )""",
        "CREATE INDEX chat_file_context_project ON chat_file_context(project_id)",
    ]),
    (6, [  # imported chats (store/sqlite/imported_chats.py)
        """CREATE TABLE imported_chats (
            num INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            project_id TEXT NOT NULL,
            file_id TEXT NOT NULL,
            attempt INTEGER NOT NULL,
            state TEXT NOT NULL,
            publishing INTEGER NOT NULL DEFAULT 0,
            indexed INTEGER NOT NULL DEFAULT 0,
            name TEXT NOT NULL,
            platform TEXT NOT NULL,
            participants TEXT NOT NULL DEFAULT '[]',
            message_count INTEGER NOT NULL DEFAULT 0,
            system_count INTEGER NOT NULL DEFAULT 0,
            first_time INTEGER,
            last_time INTEGER,
            imported_by TEXT NOT NULL,
            created_at TEXT NOT NULL
        )""",
        "CREATE INDEX imported_chats_project ON imported_chats(project_id, state, id)",
        "CREATE INDEX imported_chats_file ON imported_chats(file_id, attempt)",
        # key = chat num << 32 | seq: a chat's lines are one rowid range.
        """CREATE TABLE chat_lines (
            key INTEGER PRIMARY KEY,
            time INTEGER NOT NULL,
            author TEXT NOT NULL,
            author_id TEXT,
            text TEXT NOT NULL,
            kind TEXT NOT NULL,
            source_id TEXT,
            reply_source TEXT,
            reply_to INTEGER,
            extra TEXT
        )""",
        # Filled at publish, in (author, key) order: an author's page is one range scan.
        """CREATE TABLE chat_author_keys (
            chat INTEGER NOT NULL,
            author TEXT NOT NULL,
            key INTEGER NOT NULL,
            PRIMARY KEY (chat, author, key)
        ) WITHOUT ROWID""",
        """CREATE TABLE chat_days (
            chat INTEGER NOT NULL,
            day INTEGER NOT NULL,
            messages INTEGER NOT NULL,
            first_key INTEGER NOT NULL,
            last_key INTEGER NOT NULL,
            PRIMARY KEY (chat, day)
        ) WITHOUT ROWID""",
        # columnsize=0: no per-line size rows (a tenth of the build); search ranks the
        # lines it found itself (store/chat_text.py), not with bm25().
        "CREATE VIRTUAL TABLE chat_fts USING fts5(text, content='chat_lines',"
        " content_rowid='key', tokenize='unicode61 remove_diacritics 2', columnsize=0)",
    ]),
    (7, [*job_table_sql("chat_import_jobs"),  # chat-history import jobs (6 is the chats')
         "ALTER TABLE pcap_jobs ADD COLUMN params TEXT"]),
    (8, [  # sessions and accounts (issue 16): when a user was last seen, the audit log
        "ALTER TABLE users ADD COLUMN last_seen_at TEXT",
        "CREATE INDEX users_idle_guests ON users(coalesce(last_seen_at, created_at))"
        " WHERE is_guest=1",
        """CREATE TABLE audit_log (
            id TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            actor_id TEXT,
            target_id TEXT,
            ip TEXT,
            details TEXT NOT NULL,
            at TEXT NOT NULL
        )""",
        "CREATE INDEX audit_actor ON audit_log(actor_id, id)",
        "CREATE INDEX audit_target ON audit_log(target_id, id)",
        "CREATE INDEX audit_kind ON audit_log(kind, id)",
    ]),
    (9, site_counter_sql()),  # admin:metrics without counting big tables
    (10, [  # imported chats indexed as their lines arrive (store/sqlite/imported_chats.py)
        # Per chat, author and kind: the lines indexed so far, for publish's counts.
        """CREATE TABLE chat_tally (
            chat INTEGER NOT NULL,
            author TEXT NOT NULL,
            kind TEXT NOT NULL,
            n INTEGER NOT NULL,
            first_time INTEGER NOT NULL,
            last_time INTEGER NOT NULL,
            PRIMARY KEY (chat, author, kind)
        ) WITHOUT ROWID""",
        # Hidden chats of imports under way keep their counts (visible ones need none).
        "INSERT INTO chat_tally (chat, author, kind, n, first_time, last_time)"
        " SELECT c.num, l.author, l.kind, count(*), min(l.time), max(l.time)"
        " FROM imported_chats c JOIN chat_lines l"
        " ON l.key BETWEEN (c.num << 32) + 1 AND (c.num << 32) + c.indexed"
        " WHERE c.state='hidden' GROUP BY c.num, l.author, l.kind",
        # Whether a line of the chat answers another (publish resolves replies only then).
        "ALTER TABLE imported_chats ADD COLUMN replies INTEGER NOT NULL DEFAULT 1",
    ]),
]
