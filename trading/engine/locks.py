"""One engine per strategy: a PostgreSQL advisory lock, or a file lock on SQLite.

Advisory locks belong to the database session, so they vanish when the process dies
(also on SIGKILL); file locks (``flock``) are released by the kernel the same way.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from pathlib import Path

from django.conf import settings
from django.db import connection

# pg_try_advisory_lock(classid, objid): classid marks "a stocktrader strategy".
ADVISORY_CLASS = 0x5354  # "ST"


class StrategyLocks:
    """The strategies this process owns; ``acquire`` returns False when another has it."""

    def __init__(self) -> None:
        self._files: dict[int, int] = {}
        self._advisory: set[int] = set()

    @property
    def held(self) -> set[int]:
        return set(self._files) | self._advisory

    def acquire(self, strategy_id: int) -> bool:
        if strategy_id in self.held:
            return True
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [ADVISORY_CLASS, strategy_id])
                ok = bool(cursor.fetchone()[0])
            if ok:
                self._advisory.add(strategy_id)
            return ok
        directory = Path(settings.ENGINE_LOCK_DIR)
        directory.mkdir(parents=True, exist_ok=True)
        database = str(settings.DATABASES["default"]["NAME"])
        if "memory" in database:
            # an in-memory database lives in one process only: its engines share the pid
            database += f"-{os.getpid()}"
        name = hashlib.sha1(database.encode()).hexdigest()[:16]
        fd = os.open(directory / f"strategy-{strategy_id}-{name}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._files[strategy_id] = fd
        return True

    def release(self, strategy_id: int) -> None:
        if strategy_id in self._advisory:
            self._advisory.discard(strategy_id)
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [ADVISORY_CLASS, strategy_id])
            except Exception:  # the session is gone: so is the lock
                pass
        fd = self._files.pop(strategy_id, None)
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def release_all(self) -> None:
        for strategy_id in list(self.held):
            self.release(strategy_id)
