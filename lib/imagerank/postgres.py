"""PostgreSQL as a store: Openverse's catalog read from its database, tables published into one.

A database is named by pgJDBC's URL, ``jdbc:postgresql://HOST[:PORT]/DB[?param=value&...]``
(``sslmode=require`` and pgJDBC's other connection parameters pass through). Credentials never
come from the command line (a ``password`` in the URL is refused: it would sit in the job's
report and the scheduler's logs). The user is ``$PGUSER``, else the URL's ``user``, else the
properties file's, else the login name; the password is ``$PGPASSWORD``, else the properties
file's, else the first matching line of the password file (``$PGPASSFILE``, else ``~/.pgpass``;
libpq's format ``host:port:database:user:password`` with ``*`` and ``\\:``; a file others can
read is refused, naming the fix). The properties file, ``spark.imagerank.postgres.properties``
(a path on the driver), holds Java-properties lines: ``user``, ``password`` and any pgJDBC
property. Spark hands user and password to its executors inside the JDBC options, which it
redacts from plans, its UI and its event log.

Reading (:func:`read_rows`): Spark's JDBC source with one predicate per task, each a bounded slice
of the table: ranges of the ``uuid`` key where the key column is a uuid (an index range scan
each), else a hash of the key (each task scans the table: slower, still bounded in memory). The
number of tasks is the table's row estimate over ``spark.imagerank.postgres.rowsPerTask`` (default
a million rows a task). Only the columns asked for are
read, each as text (a ``jsonb`` as its JSON text), so the rows are those a CSV dump of the table
gives. Each task reads in its own transaction: a table written to during the read gives no
snapshot of one instant (read a replica, or a copy, for that).

Publishing (:func:`stage_tables`, then :meth:`Staged.swap` once the run is committed): each
table is loaded into a fresh table named for the run (``NAME__<run>``) over at most
``connections`` connections, its row count checked against the rows written, then its primary
key built and ``ANALYZE`` run; after the stage's commit one transaction renames the current table
to ``NAME__previous`` (dropping the one before it) and the new one to ``NAME``, so a reader sees
the old table or the new one, never a half-written one, and a failed or killed load leaves the
current table as it was. A swap never replaces a table holding a later commit of the same output,
nor one imagerank did not publish, nor one with views over it (they would follow the old table).
The new table gets the grants the old one had. The table's comment names its run, commit and
output; every row carries ``run``.
"""

from __future__ import annotations

import configparser
import hashlib
import getpass
import math
import os
import re
import socket
import ssl
import stat
import uuid as uuid_module
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

SCHEME = "jdbc:postgresql:"
DRIVER_CLASS = "org.postgresql.Driver"
DRIVER_PACKAGE = "org.postgresql:postgresql:42.7.14"  # conf/jvm-packages.txt: POSTGRES_JDBC
PROPERTIES_SETTING = "spark.imagerank.postgres.properties"
DEFAULT_PORT = 5432
ROWS_PER_TASK = 1_000_000
ROWS_PER_TASK_SETTING = "spark.imagerank.postgres.rowsPerTask"
MAX_TASKS = 10_000
CONNECT_TIMEOUT = 15  # seconds
PREVIOUS = "__previous"
NAME = re.compile(r"[a-z_][a-z0-9_]*")
MAX_NAME = 63 - len("__20261204t161500z_abcdef")  # PostgreSQL's 63-byte names, less the staging suffix


class PostgresError(ValueError):
    """A database that cannot be used as asked; the message names it (never its password) and the fix."""


def is_postgres(path: str | None) -> bool:
    return bool(path) and path.strip().lower().startswith(SCHEME)


def packages_for(texts: list[str]) -> tuple[str, ...]:
    """The JVM packages a local session needs for these arguments (or configuration texts): the
    JDBC driver where one names a PostgreSQL database."""
    return (DRIVER_PACKAGE,) if any(SCHEME in text.lower() for text in texts) else ()


def check_logins(texts: list[str]) -> None:
    """Log in once to each database these arguments name, before a local session starts, so a wrong
    password or an unreachable server fails in a second, not after the JVM has started: a
    :class:`PostgresError`, the line the job would give. Only where the login cannot depend on
    Spark's settings: the user from the URL or ``$PGUSER``, the password from ``$PGPASSWORD``
    (:func:`database` puts both before the properties file); any other database is left to the job."""
    for text in dict.fromkeys(texts):  # a URL named twice (catalog and target): one login
        if not is_postgres(text):
            continue
        db = database(text)
        user_given = "user" in dict(parse_qsl(urlsplit(text.strip()[len("jdbc:"):]).query)) or os.environ.get("PGUSER")
        if user_given and os.environ.get("PGPASSWORD"):
            db.connect().close()


def _pgpass_fields(line: str) -> list[str]:
    fields, current, escaped = [], "", False
    for char in line:
        if escaped:
            current, escaped = current + char, False
        elif char == "\\":
            escaped = True
        elif char == ":":
            fields.append(current)
            current = ""
        else:
            current += char
    return fields + [current]


def pgpass_password(host: str, port: int, database: str, user: str, path: Path | None = None) -> str | None:
    """The password of the first line of the password file that matches, as libpq reads it."""
    path = path or Path(os.environ.get("PGPASSFILE") or Path.home() / ".pgpass").expanduser()
    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    if not stat.S_ISREG(mode):
        return None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):  # libpq ignores such a file; a silent login failure helps no one
        raise PostgresError(f"password file {path} can be read by others (mode {stat.S_IMODE(mode):o}); "
                            f"chmod 600 it, as libpq requires")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise PostgresError(f"password file {path}: cannot read it ({error}); fix it or unset PGPASSFILE") from None
    for line in lines:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = _pgpass_fields(line)
        if len(fields) < 5:
            continue
        wanted = (host, str(port), database, user)
        if all(f == "*" or f == w for f, w in zip(fields[:4], wanted)):
            return fields[4]
    return None


def _properties_file(spark: SparkSession | None) -> dict[str, str]:
    path = spark.conf.get(PROPERTIES_SETTING, None) if spark is not None else None
    if not path:
        return {}
    try:
        text = Path(path).expanduser().read_text(encoding="utf-8")
    except OSError as error:
        raise PostgresError(f"{PROPERTIES_SETTING}={path}: cannot read it ({error.strerror}); give a properties "
                            f"file on the driver (user=..., password=...)") from None
    parser = configparser.ConfigParser(delimiters=("=", ":"), comment_prefixes=("#", "!"), interpolation=None)
    parser.optionxform = str
    parser.read_string("[p]\n" + text)
    return dict(parser["p"])


@dataclass(frozen=True)
class Database:
    """A PostgreSQL database and how to log in to it (:func:`database`)."""

    url: str  # the JDBC URL as given (refused where it holds a password)
    host: str
    port: int
    name: str
    user: str
    password: str | None = field(repr=False)
    params: dict = field(default_factory=dict)  # pgJDBC connection parameters: the URL's and the properties file's

    @property
    def where(self) -> str:
        return f"{self.user}@{self.host}:{self.port}/{self.name}"

    def jdbc_properties(self) -> dict[str, str]:
        """Spark's JDBC options: the driver class, the credentials and the connection parameters."""
        found = {**self.params, "driver": DRIVER_CLASS, "user": self.user}
        if self.password is not None:
            found["password"] = self.password
        return found

    @property
    def spark_url(self) -> str:
        """The URL handed to Spark, bare: user, password and the connection parameters go with
        :meth:`jdbc_properties` (one login for the driver and every task)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"jdbc:postgresql://{host}:{self.port}/{self.name}"

    def _ssl(self):
        """pg8000's ssl_context for pgJDBC's ``sslmode`` (default prefer; ``ssl=true`` alone: verify-full)."""
        ssl_flag = str(self.params.get("ssl", "")).lower()
        mode = self.params.get("sslmode") or ("verify-full" if ssl_flag in ("true", "1", "") and "ssl" in self.params
                                              else "prefer")
        if mode in ("disable", "allow"):
            return False
        if mode == "prefer":
            return None  # pg8000 asks for TLS and goes on without it where the server has none
        root = self.params.get("sslrootcert") or str(Path.home() / ".postgresql" / "root.crt")
        context = ssl.create_default_context(cafile=root if mode != "require" and Path(root).is_file() else None)
        if mode != "verify-full":
            context.check_hostname = False
        if mode == "require":
            context.verify_mode = ssl.CERT_NONE
        if self.params.get("sslcert"):
            context.load_cert_chain(self.params["sslcert"], self.params.get("sslkey"))
        return context

    def connect(self):
        """A connection on the driver (pg8000), or :class:`PostgresError` in one line. The connect
        times out after CONNECT_TIMEOUT seconds; statements on it (an index build, ANALYZE) do not."""
        import pg8000.dbapi

        try:
            sock = socket.create_connection((self.host, self.port), CONNECT_TIMEOUT)
        except OSError as error:
            reason = error.strerror or str(error) or type(error).__name__
            raise PostgresError(f"cannot reach PostgreSQL at {self.host}:{self.port} ({reason}); check the host and "
                                f"port in the URL, and that the server accepts connections from here") from None
        try:
            sock.settimeout(CONNECT_TIMEOUT)  # the TLS and login exchange; then no limit
            connection = pg8000.dbapi.connect(user=self.user, password=self.password, host=self.host,
                                              database=self.name, ssl_context=self._ssl(), sock=sock,
                                              application_name="imagerank")
            sock.settimeout(None)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            return connection
        except pg8000.dbapi.DatabaseError as error:
            sock.close()
            raise PostgresError(f"PostgreSQL {self.where}: {_server_message(error)}{_hint(error)}") from None
        except (AttributeError, OSError, pg8000.dbapi.InterfaceError) as error:
            sock.close()
            if self.password is None:  # pg8000 fails on a password request it has no password for
                raise PostgresError(f"PostgreSQL {self.where} asks for a password and none was found: set PGPASSWORD, "
                                    f"a line in ~/.pgpass (PGPASSFILE) or {PROPERTIES_SETTING}") from None
            reason = getattr(error, "strerror", None) or str(error).splitlines()[0]
            raise PostgresError(f"PostgreSQL {self.where}: the connection failed ({reason}); check sslmode and "
                                f"that the server accepts connections from here") from None


@contextmanager
def session(db: Database):
    """A driver-side connection, closed after the block; a database error in the block becomes a
    :class:`PostgresError` in one line (the server's message, the database, never a password)."""
    import pg8000.dbapi

    connection = db.connect()
    try:
        yield connection
    except pg8000.dbapi.DatabaseError as error:
        raise PostgresError(f"PostgreSQL {db.where}: {_server_message(error)}{_hint(error)}") from None
    finally:
        try:
            connection.close()
        except Exception:  # noqa: BLE001 - a connection the server already dropped
            pass


def _server_message(error: Exception) -> str:
    info = error.args[0] if error.args and isinstance(error.args[0], dict) else {}
    return info.get("M") or str(error).splitlines()[0]


def _hint(error: Exception) -> str:
    info = error.args[0] if error.args and isinstance(error.args[0], dict) else {}
    code = info.get("C", "")
    if code in ("28P01", "28000"):
        return "; check PGUSER and PGPASSWORD, the password file or " + PROPERTIES_SETTING
    if code == "3D000":
        return "; check the database name in the URL"
    if code == "42501":
        return f"; grant the user {'CREATE on the schema' if 'schema' in _server_message(error) else 'the privilege'}"
    return ""


def database(url: str, spark: SparkSession | None = None) -> Database:
    """The database a ``jdbc:postgresql://`` URL names, with its credentials (module docstring)."""
    text = url.strip()
    if not is_postgres(text):
        raise PostgresError(f"{url}: not a PostgreSQL URL; give jdbc:postgresql://HOST[:PORT]/DB")
    parts = urlsplit(text[len("jdbc:"):])
    if parts.password is not None or parts.username is not None:
        raise PostgresError("a user or password inside the URL: give credentials with PGUSER and PGPASSWORD, "
                            "a .pgpass file or " + PROPERTIES_SETTING)
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    if "password" in params or "sslpassword" in params:
        raise PostgresError(f"{text.split('?')[0]}: a password in the URL would be on the command line and in the "
                            f"job's report; give it with PGPASSWORD, a .pgpass file or {PROPERTIES_SETTING}")
    name = parts.path.lstrip("/")
    if not parts.hostname or not name:
        raise PostgresError(f"{text}: give jdbc:postgresql://HOST[:PORT]/DB (a host and a database)")
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError:
        raise PostgresError(f"{text}: the port is not a number") from None
    from_file = _properties_file(spark)
    # as libpq: the URL's own user first, then the environment, then the file, then the login name
    user = params.pop("user", None) or os.environ.get("PGUSER") or from_file.pop("user", None) or getpass.getuser()
    password = os.environ.get("PGPASSWORD") or from_file.pop("password", None)
    from_file.pop("user", None)
    host = parts.netloc.rsplit("@", 1)[-1].rsplit(":", 1)[0].strip("[]") if parts.port else parts.netloc.strip("[]")
    if password is None:
        password = pgpass_password(host, port, name, user)
    return Database(url=text, host=host, port=port, name=name, user=user, password=password,
                    params={**from_file, **params})


def qualified_name(name: str, what: str) -> tuple[str, str]:
    """(schema, table) of ``[schema.]table``, plain lower-case names only (quoted as given)."""
    parts = name.strip().split(".")
    if len(parts) == 1:
        parts = ["public", parts[0]]
    if len(parts) != 2 or not all(NAME.fullmatch(p) for p in parts):
        raise PostgresError(f"{what} {name!r}: give [schema.]table in lower-case letters, digits and _")
    return parts[0], parts[1]


def quoted(schema: str, table: str) -> str:
    return f'"{schema}"."{table}"'


# --- reading -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class TableShape:
    columns: dict  # name -> PostgreSQL type, in table order
    rows: int  # the planner's estimate (or a count where the table was never analyzed)


def table_shape(db: Database, schema: str, table: str) -> TableShape:
    """The table's columns and row estimate; :class:`PostgresError` where there is no such table."""
    with session(db) as connection:
        cursor = connection.cursor()
        cursor.execute("SELECT to_regclass(%s)::oid", (quoted(schema, table),))
        oid = cursor.fetchone()[0]
        if oid is None:
            raise PostgresError(f"PostgreSQL {db.where}: no table {schema}.{table}; check --catalog-table")
        cursor.execute("SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
                       "WHERE attrelid = %s AND attnum > 0 AND NOT attisdropped ORDER BY attnum", (oid,))
        columns = {name: kind for name, kind in cursor.fetchall()}
        cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = %s", (oid,))
        rows = cursor.fetchone()[0]
        if rows is None or rows < 0:  # never vacuumed nor analyzed: count once
            cursor.execute(f"SELECT count(*) FROM {quoted(schema, table)}")
            rows = cursor.fetchone()[0]
        return TableShape(columns, int(rows))


def uuid_ranges(n: int) -> list[tuple[str | None, str | None]]:
    """``n`` contiguous ranges [low, high) covering the uuid space (None: unbounded)."""
    bounds = [str(uuid_module.UUID(int=(i << 128) // n)) for i in range(1, n)]
    return list(zip([None, *bounds], [*bounds, None]))


def slice_predicates(key: str, kind: str, n: int) -> list[str]:
    """One WHERE clause per task, together covering every row once (rows with a null key: the first)."""
    if n <= 1:
        return ["TRUE"]
    if kind == "uuid":
        clauses = []
        for low, high in uuid_ranges(n):
            parts = ([f"{key} >= '{low}'"] if low else []) + ([f"{key} < '{high}'"] if high else [])
            clauses.append(" AND ".join(parts))
        clauses[0] = f"({clauses[0]}) OR {key} IS NULL"
        return clauses
    bucket = f"mod(hashtext({key}::text)::bigint + 2147483648, {n})"
    return [f"{bucket} = {i}" + (f" OR {key} IS NULL" if i == 0 else "") for i in range(n)]


def read_rows(spark: SparkSession, db: Database, table: str, wanted: tuple[str, ...], required: tuple[str, ...],
              key: str = "identifier", removed: str | None = "removed_from_source") -> tuple[DataFrame, dict]:
    """The table's ``wanted`` columns that exist (``required`` ones must), each as text, plus
    ``_removed`` (the ``removed`` column, false where null or absent), read in parallel slices
    (module docstring); and what was read: the slices and the table's estimate."""
    schema, name = qualified_name(table, "--catalog-table")
    shape = table_shape(db, schema, name)
    missing = [c for c in required if c not in shape.columns]
    if missing:
        raise PostgresError(f"PostgreSQL {db.where}: table {schema}.{name} lacks required column(s) {missing}; "
                            f"it has {list(shape.columns)[:40]}")
    present = [c for c in dict.fromkeys(wanted) if c in shape.columns]
    selected = [(f"(\"{c}\" AT TIME ZONE 'UTC')::text" if shape.columns[c] == "timestamp with time zone"
                 else f'"{c}"::text') + f' AS "{c}"' for c in present]  # as a dump in UTC prints them
    removed_flag = f'coalesce("{removed}", false)' if removed and removed in shape.columns else "false"
    setting = spark.conf.get(ROWS_PER_TASK_SETTING, str(ROWS_PER_TASK))
    if not setting.strip().isdigit() or int(setting) < 1:
        raise PostgresError(f"{ROWS_PER_TASK_SETTING}={setting}: give a positive whole number of rows")
    rows_per_task = int(setting)
    tasks = max(1, min(MAX_TASKS, math.ceil(shape.rows / rows_per_task)))
    query = (f'(SELECT {", ".join(selected)}, {removed_flag} AS _removed, "{key}" AS _slice_key '
             f"FROM {quoted(schema, name)}) AS catalog")
    predicates = slice_predicates("_slice_key", shape.columns.get(key, "text"), tasks)
    properties = {**db.jdbc_properties(), "fetchsize": "10000"}
    try:
        frame = spark.read.jdbc(url=db.spark_url, table=query, predicates=predicates, properties=properties)
    except Exception as error:  # noqa: BLE001 - py4j wraps the JVM's
        raise _jvm_error(db, error) from None
    return frame.drop("_slice_key"), {"table": f"{schema}.{name}", "slices": len(predicates),
                                      "rows_estimated": shape.rows}


def _jvm_error(db: Database, error: Exception) -> Exception:
    text = str(error)
    if DRIVER_CLASS in text or "No suitable driver" in text:
        return PostgresError(f"the PostgreSQL JDBC driver is not on Spark's classpath; add --packages "
                             f"{DRIVER_PACKAGE} (conf/jvm-packages.txt: POSTGRES_JDBC)")
    for line in text.splitlines():
        if "PSQLException" in line or "FATAL" in line:
            return PostgresError(f"PostgreSQL {db.where}: {line.split('PSQLException:')[-1].strip()}")
    return error


# --- publishing --------------------------------------------------------------------------------

PG_TYPES = {T.StringType: "text", T.IntegerType: "integer", T.LongType: "bigint", T.ShortType: "smallint",
            T.DoubleType: "double precision", T.FloatType: "real", T.BooleanType: "boolean",
            T.TimestampType: "timestamptz", T.DateType: "date"}


def pg_type(kind: T.DataType) -> str:
    if isinstance(kind, T.ArrayType) and isinstance(kind.elementType, T.StringType):
        return "text[]"
    if isinstance(kind, T.DecimalType):
        return f"numeric({kind.precision},{kind.scale})"
    for spark_type, name in PG_TYPES.items():
        if isinstance(kind, spark_type):
            return name
    raise PostgresError(f"no PostgreSQL column type for Spark's {kind.simpleString()}")


@dataclass(frozen=True)
class PublishTarget:
    """Where publish writes its table: the database URL, the table names (``constants_table``
    None: not written) and how many connections load them at once."""

    url: str
    table: str = "image_authority"
    constants_table: str | None = "image_authority_provider_constants"
    connections: int = 8

    def __post_init__(self):
        if self.constants_table is not None and self.constants_table.lower() == "none":
            object.__setattr__(self, "constants_table", None)
        for name in (self.table, self.constants_table):
            if name is not None:
                _, table = qualified_name(name, "table name")
                if len(table) > MAX_NAME:
                    raise PostgresError(f"table name {table!r}: at most {MAX_NAME} characters (PostgreSQL's limit, "
                                        f"less the run suffix of the table loaded before the swap)")


@dataclass(frozen=True)
class Table:
    """A table to publish: ``frame`` (its rows, ``rows`` of them), its name and primary key, and
    which key columns hold uuids."""

    name: str
    frame: DataFrame
    rows: int
    key: tuple[str, ...]
    uuid_columns: tuple[str, ...] = ()


def run_suffix(run: str) -> str:
    return "__" + re.sub(r"[^a-z0-9]", "_", run.lower())


class Staged:
    """Tables loaded under their run's names, waiting for :meth:`swap` (or :meth:`drop`)."""

    def __init__(self, db: Database, run: str, output: str, names: list[tuple[str, str]]):
        self.db, self.run, self.output, self.names = db, run, output, names  # (schema, table) each
        self.swapped = False

    def staging(self, table: str) -> str:
        return table + run_suffix(self.run)

    def swap(self, entry: dict) -> dict:
        """In one transaction: each current table becomes NAME__previous, each staged one NAME.
        Refused (nothing changed) where a table holds a later commit of the same output
        (``entry``: this run's commit, :func:`imagerank.commit.commit`), or was not published by
        imagerank."""
        seq = int(entry["seq"])
        with session(self.db) as connection:
            cursor = connection.cursor()
            cursor.execute("SET lock_timeout = '60s'")
            replaced = {}
            for schema, table in self.names:
                current = _comment(cursor, schema, table)
                if current is not None:
                    cursor.execute(f"LOCK TABLE {quoted(schema, table)} IN ACCESS EXCLUSIVE MODE")
                    current = _comment(cursor, schema, table)
                    refusal = None
                    if current["run"] is None:
                        refusal = "was not published by imagerank (its comment names no run); choose another name"
                    elif current["output"] == self.output and current["seq"] > seq:
                        refusal = (f"holds run {current['run']} (commit {current['seq']} of {self.output}), later "
                                   f"than this run {self.run} (commit {seq}); left as it is")
                    previous = _comment(cursor, schema, table + PREVIOUS)
                    if refusal is None and previous is not None and previous["run"] is None:
                        refusal = f"cannot become {table + PREVIOUS}: a table not published by imagerank has that name"
                    views = _views_on(cursor, current["oid"]) + (_views_on(cursor, previous["oid"]) if previous else [])
                    if refusal is None and views:
                        refusal = (f"has views over it or over {table + PREVIOUS} ({', '.join(views[:3])}): a view "
                                   f"would follow the table it was made on, not the new one; read {table} directly, "
                                   f"or drop the views")
                    if refusal:
                        connection.rollback()
                        raise PostgresError(f"PostgreSQL {self.db.where}: {schema}.{table} {refusal}")
                    cursor.execute(f"DROP TABLE IF EXISTS {quoted(schema, table + PREVIOUS)}")
                    cursor.execute(f'ALTER TABLE {quoted(schema, table)} RENAME TO "{table + PREVIOUS}"')
                staging = quoted(schema, self.staging(table))
                if current is not None:  # the readers' grants carry over to the new table
                    for grant in _grants(cursor, current["oid"], staging):
                        cursor.execute(grant)
                cursor.execute(f"COMMENT ON TABLE {staging} IS " + _literal(_describe(self.run, seq, self.output)))
                cursor.execute(f'ALTER TABLE {staging} RENAME TO "{table}"')
                replaced[f"{schema}.{table}"] = (current or {}).get("run")
            connection.commit()
            self.swapped = True
        for schema, table in self.names:  # runs started before this one can no longer commit
            _drop_stale(self.db, schema, table, self.run)
        return replaced

    def drop(self) -> None:
        """Remove the staged tables (a failed run); best effort, never raises."""
        if self.swapped:
            return
        try:
            with session(self.db) as connection:
                cursor = connection.cursor()
                for schema, table in self.names:
                    cursor.execute(f"DROP TABLE IF EXISTS {quoted(schema, self.staging(table))}")
                connection.commit()
        except Exception:  # noqa: BLE001 - the run failed already; a later publish removes what is left
            pass


def _comment(cursor, schema: str, table: str) -> dict | None:
    """What the table's comment says of the run that published it; None where there is no such table."""
    cursor.execute("SELECT to_regclass(%s)::oid", (quoted(schema, table),))
    oid = cursor.fetchone()[0]
    if oid is None:
        return None
    cursor.execute("SELECT obj_description(%s, 'pg_class')", (oid,))
    text = cursor.fetchone()[0] or ""
    found = re.fullmatch(r"imagerank run (\S+)(?: commit (\d+))? of (.*)", text.strip())
    if not found:
        return {"run": None, "seq": None, "output": None, "oid": oid}
    return {"run": found.group(1), "seq": int(found.group(2) or -1), "output": found.group(3), "oid": oid}


def _describe(run: str, seq: int | None, output: str) -> str:
    """The comment on a published table (read back by :func:`_comment`)."""
    return f"imagerank run {run}" + (f" commit {seq}" if seq is not None else "") + f" of {output}"


def _views_on(cursor, oid: int) -> list[str]:
    cursor.execute("SELECT DISTINCT v.oid::regclass::text FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid "
                   "JOIN pg_class v ON v.oid = r.ev_class WHERE d.refobjid = %s AND v.oid <> %s", (oid, oid))
    return [name for (name,) in cursor.fetchall()]


def _grants(cursor, oid: int, target: str) -> list[str]:
    """GRANT statements giving ``target`` the privileges others hold on table ``oid`` (not its owner's)."""
    cursor.execute("SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(r.rolname) END, a.privilege_type "
                   "FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) a LEFT JOIN pg_roles r ON r.oid = a.grantee "
                   "WHERE c.oid = %s AND a.grantee <> c.relowner", (oid,))
    return [f"GRANT {privilege} ON {target} TO {grantee}" for grantee, privilege in cursor.fetchall()]


def _drop_stale(db: Database, schema: str, table: str, run: str) -> None:
    """Drop staged tables of NAME left by runs older than ``run`` (killed, or beaten to the commit);
    best effort: one still locked, or any error, is left for a later publish."""
    try:
        with session(db) as connection:
            connection.autocommit = True
            cursor = connection.cursor()
            cursor.execute("SET lock_timeout = '5s'")
            cursor.execute("SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                           "WHERE n.nspname = %s AND c.relkind = 'r' AND c.relname LIKE %s",
                           (schema, table + "\\_\\_%"))
            started = run_suffix(run)[:18]  # __YYYYMMDDtHHMMSSz: runs started in an earlier second
            for (name,) in cursor.fetchall():
                suffix = name[len(table):]
                if suffix != PREVIOUS and re.fullmatch(r"__\d{8}t\d{6}z_[0-9a-f]+", suffix) and suffix[:18] < started:
                    try:
                        cursor.execute(f"DROP TABLE IF EXISTS {quoted(schema, name)}")
                    except Exception:  # noqa: BLE001 - still in use: the next publish tries again
                        pass
    except Exception:  # noqa: BLE001 - the swap is done; cleaning up is not worth failing the run for
        pass


def stage_tables(spark: SparkSession, db: Database, tables: list[Table], run: str, output: str,
                 connections: int = 8) -> Staged:
    """Load each table into NAME__<run> (module docstring), check its rows, then build its primary
    key and analyze it. On a failure the staged tables are dropped and the error raised."""
    names = [qualified_name(t.name, "table name") for t in tables]
    staged = Staged(db, run, output, names)
    try:
        for spec, (schema, table) in zip(tables, names):
            _load(spark, db, spec, schema, staged.staging(table), run, output, connections)
    except BaseException:
        staged.drop()
        raise
    return staged


def _load(spark: SparkSession, db: Database, spec: Table, schema: str, staging: str, run: str, output: str,
          connections: int) -> None:
    frame = spec.frame.withColumn("run", F.lit(run))
    columns = []
    for f in frame.schema.fields:
        kind = "uuid" if f.name in spec.uuid_columns else pg_type(f.dataType)
        columns.append(f'"{f.name}" {kind}' + (" NOT NULL" if f.name in spec.key else ""))
    target = quoted(schema, staging)
    with session(db) as connection:
        cursor = connection.cursor()
        cursor.execute(f"DROP TABLE IF EXISTS {target}")  # a killed attempt of this same run
        cursor.execute(f"CREATE TABLE {target} ({', '.join(columns)})")
        cursor.execute(f"COMMENT ON TABLE {target} IS " + _literal(_describe(run, None, output)))
        connection.commit()
    properties = {**db.jdbc_properties(), "stringtype": "unspecified", "reWriteBatchedInserts": "true",
                  "batchsize": "5000", "numPartitions": str(connections)}
    try:
        frame.write.mode("append").jdbc(url=db.spark_url, table=f"{schema}.{staging}", properties=properties)
    except Exception as error:  # noqa: BLE001
        raise _jvm_error(db, error) from None
    with session(db) as connection:
        cursor = connection.cursor()
        cursor.execute(f"SELECT count(*) FROM {target}")
        loaded = cursor.fetchone()[0]
        if loaded > spec.rows:  # a task that wrote its rows and was run again (lost executor, speculation)
            key = ", ".join(f'"{k}"' for k in spec.key)
            cursor.execute(f"DELETE FROM {target} WHERE ctid IN (SELECT ctid FROM (SELECT ctid, row_number() OVER "
                           f"(PARTITION BY {key}) AS copy FROM {target}) c WHERE copy > 1)")
            cursor.execute(f"SELECT count(*) FROM {target}")
            loaded = cursor.fetchone()[0]
        if loaded != spec.rows:
            raise PostgresError(f"PostgreSQL {db.where}: {schema}.{staging} holds {loaded:,} rows after the load, "
                                f"the table written {spec.rows:,}; nothing was swapped in")
        constraint = "pk_" + hashlib.md5(staging.encode()).hexdigest()[:24]  # unique, under 63 bytes
        cursor.execute(f'ALTER TABLE {target} ADD CONSTRAINT "{constraint}" PRIMARY KEY '
                       f"({', '.join(chr(34) + k + chr(34) for k in spec.key)})")
        cursor.execute(f"ANALYZE {target}")
        connection.commit()


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
