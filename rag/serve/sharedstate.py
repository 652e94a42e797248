"""State that several ``rag serve`` replicas share: rate-limit buckets in one SQLite file.

With ``RAG_SHARED_STATE=1`` the rate limit of a user counts the requests every
replica answered: each replica records a request in
``<data_dir>/ratelimit.sqlite`` inside one ``BEGIN IMMEDIATE`` transaction,
SQLite's write lock across processes, so two replicas can never both let the
last allowed request through. SQLite, because it needs no extra service, is
in the standard library, and its file locking holds between processes on one
host or on a shared volume with working POSIX locks (not every NFS; put the
data dir on local or block storage shared by the replicas of one host, or run
one limiter per host). Feedback needs no database: replicas append whole lines
to ``feedback.jsonl`` under an exclusive ``flock`` (see ``service``). This
module does not decide who a user is (``auth``).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

FILE = "ratelimit.sqlite"
BUSY_MS = 5_000  # a replica waits this long for another's write lock before giving up


class SharedRateLimiter:
    """``auth.RateLimiter``'s interface over a SQLite file: at most ``per_minute`` requests per
    user in any 60-second window, counted over every process that uses the same file."""

    def __init__(self, path: Path, per_minute: int, window: float = 60.0) -> None:
        self.path = path
        self.limit = per_minute
        self.window = window
        self._local = threading.local()
        path.parent.mkdir(parents=True, exist_ok=True)
        _retry_locked(lambda: self._db().execute(
            "CREATE TABLE IF NOT EXISTS hits (user TEXT NOT NULL, t REAL NOT NULL)"))
        _retry_locked(lambda: self._db().execute("CREATE INDEX IF NOT EXISTS hits_user ON hits (user, t)"))

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=BUSY_MS / 1000, isolation_level=None)
            # switching a new file to WAL can say "locked" without waiting while another replica
            # creates it at the same moment: retry, as the busy timeout does for ordinary writes
            _retry_locked(lambda: db.execute("PRAGMA journal_mode=WAL"))
            self._local.db = db
        return db

    def check(self, user_id: str) -> float:
        """Record one request; return 0 when allowed, else the seconds to wait."""
        if self.limit <= 0:
            return 0.0
        now = time.time()  # wall clock: replicas compare each other's times
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("DELETE FROM hits WHERE user = ? AND t <= ?", (user_id, now - self.window))
            n, first = db.execute("SELECT COUNT(*), MIN(t) FROM hits WHERE user = ?", (user_id,)).fetchone()
            if n >= self.limit:
                db.execute("COMMIT")
                return max(0.1, self.window - (now - first))
            db.execute("INSERT INTO hits (user, t) VALUES (?, ?)", (user_id, now))
            if int(now) % 60 == 0:  # now and then forget idle users so the file stays small
                db.execute("DELETE FROM hits WHERE t <= ?", (now - self.window,))
            db.execute("COMMIT")
            return 0.0
        except BaseException:
            db.execute("ROLLBACK")
            raise


def _retry_locked(step: Callable[[], object], attempts: int = 100) -> None:
    """Run ``step``, retrying while SQLite says the file is locked (replicas starting together)."""
    for i in range(attempts):
        try:
            step()
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or i == attempts - 1:
                raise
            time.sleep(0.05)
