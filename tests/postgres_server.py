"""A real PostgreSQL server for the tests: initdb into a fresh folder, started on a free loopback port
with password (SCRAM) authentication, stopped at the end. The server runs as the ``postgres`` user
where the tests run as root (PostgreSQL refuses root). Debian's ``postgresql`` package provides the
binaries (``make test`` installs it where it runs as root with apt)."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

USER = "imagerank_test"
PASSWORD = "s3cret-Pa55"  # the tests check that no message ever shows it


def binaries() -> Path | None:
    """The folder holding initdb and pg_ctl, or None."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(os.path.realpath(found)).parent
    folders = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))
    return Path(folders[-1]) if folders and Path(folders[-1], "initdb").exists() else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    def __init__(self, bin_dir: Path):
        self.bin = bin_dir
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="imagerank-pg-"))
        self.data = self.root / "data"
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            account = pwd.getpwnam("postgres")
            os.chmod(self.root, 0o755)
            os.chown(self.root, account.pw_uid, account.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"]

    def _run(self, *command: str) -> None:
        result = subprocess.run([*self.as_user, *command], capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"{command[0]} failed: {result.stdout[-2000:]} {result.stderr[-2000:]}")

    def start(self) -> "PostgresServer":
        pwfile = self.root / "pw"
        pwfile.write_text(PASSWORD)
        if self.as_user:
            shutil.chown(pwfile, "postgres")
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", USER, f"--pwfile={pwfile}",
                  "--auth=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync")
        pwfile.unlink()
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.root} "
                   f"-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=60")
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.root / "log"),
                  "-w", "-t", "60", "start")
        self.execute("postgres", "CREATE DATABASE openverse")
        return self

    def url(self, database: str = "openverse", host: str = "127.0.0.1", port: int | None = None) -> str:
        return f"jdbc:postgresql://{host}:{port or self.port}/{database}"

    def connect(self, database: str = "openverse"):
        import pg8000.dbapi

        return pg8000.dbapi.connect(user=USER, password=PASSWORD, host="127.0.0.1", port=self.port,
                                    database=database)

    def execute(self, database: str, *statements: str) -> None:
        connection = self.connect(database)
        connection.autocommit = True
        try:
            for statement in statements:
                connection.cursor().execute(statement)
        finally:
            connection.close()

    def query(self, sql: str, params=(), database: str = "openverse") -> list[tuple]:
        connection = self.connect(database)
        try:
            cursor = connection.cursor()
            cursor.execute(sql, params)
            return [tuple(r) for r in cursor.fetchall()]
        finally:
            connection.close()

    def stop(self) -> None:
        try:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        except Exception:  # noqa: BLE001 - already gone
            pass
        time.sleep(0.1)
        shutil.rmtree(self.root, ignore_errors=True)
