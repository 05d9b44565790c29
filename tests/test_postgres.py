"""Openverse's database in and out, on a real PostgreSQL server: the catalog read from an ``image``
table of Openverse's column types gives the tables the same rows give as a CSV file; publish's
``--to-postgres`` swaps its table in whole (a polling reader never sees a half-written or mixed
table), never replaces a table it did not publish, and a killed publish leaves the old table; bad
databases, tables and values are refused in one line or counted."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import threading
import time
import uuid

import pytest

from imagerank import postgres
from imagerank.catalog.read import read_catalog
from imagerank.postgres import PostgresError, PublishTarget

from conftest import ROOT, report_of, short_jvm_env, sql_conf, table
from postgres_server import PASSWORD, USER, PostgresServer, binaries

pytest.importorskip("pg8000", reason="pg8000 (PostgreSQL's pure-Python client, a dependency of imagerank) is missing")
if binaries() is None:
    pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl): make test installs Debian's postgresql package "
                "where it runs as root with apt", allow_module_level=True)

# Openverse's upstream catalog table (the columns its catalog DDL gives public.image), plus the two
# columns of its CSV dumps that the sample carries (ingestion_type, creator_url)
IMAGE_DDL = """CREATE TABLE {name} (
    identifier uuid PRIMARY KEY, created_on timestamptz, updated_on timestamptz, ingestion_type varchar(80),
    provider varchar(80), source varchar(80), foreign_identifier varchar(3000), foreign_landing_url varchar(1000),
    url varchar(3000), thumbnail varchar(3000), width integer, height integer, filesize integer,
    license varchar(50), license_version varchar(25), creator varchar(2000), creator_url varchar(2000),
    title varchar(5000), filetype varchar(5), category varchar(80), meta_data jsonb, tags jsonb,
    removed_from_source boolean NOT NULL DEFAULT false, standardized_popularity double precision)"""
INTEGERS = ("width", "height", "filesize")


@pytest.fixture(scope="module")
def server():
    started = PostgresServer(binaries()).start()
    yield started
    started.stop()


@pytest.fixture
def login(monkeypatch):
    monkeypatch.setenv("PGUSER", USER)
    monkeypatch.setenv("PGPASSWORD", PASSWORD)


def _insert(server: PostgresServer, name: str, rows: list[dict]) -> None:
    columns = list(rows[0])
    connection = server.connect()
    try:
        cursor = connection.cursor()
        for row in rows:
            values = [None if row[c] in ("", None) else (int(row[c]) if c in INTEGERS else row[c]) for c in columns]
            cursor.execute(f"INSERT INTO {name} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))})",
                           values)
        connection.commit()
    finally:
        connection.close()


@pytest.fixture(scope="module")
def catalog_db(spark, server, sample_pipeline):
    """public.image holding the sample catalog's usable rows (as the file reader keeps them: a uuid
    key allows no duplicate), its row without a provider, and two rows removed from their source
    (with metrics that would move the constants were they read)."""
    path = sample_pipeline["catalog"]
    usable, _ = read_catalog(spark, path)
    kept = {r["identifier"] for r in usable.select("identifier").collect()}
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    loaded = [r for r in rows if r["identifier"] in kept]
    loaded = list({r["identifier"]: r for r in loaded if r["provider"]}.values())
    for identifier in kept:  # the duplicate's kept copy is the usable one, field for field
        chosen = usable.where(f"identifier = '{identifier}'").first().asDict()
        loaded = [r if r["identifier"] != identifier else {c: chosen.get(c, r[c]) for c in r} for r in loaded]
    no_provider = next(r for r in rows if not r["provider"])
    flickr = next(r for r in loaded if r["provider"] == "flickr")
    removed = [{**flickr, "identifier": str(uuid.UUID(int=i)), "meta_data": '{"views": 99999999}'} for i in (1, 2)]
    server.execute("openverse", IMAGE_DDL.format(name="public.image"))
    _insert(server, "public.image", loaded + [no_provider] + removed)
    server.execute("openverse", "UPDATE public.image SET removed_from_source = true WHERE identifier IN "
                   f"('{removed[0]['identifier']}', '{removed[1]['identifier']}')", "ANALYZE public.image")
    return {"url": server.url(), "rows": len(loaded) + 3, "usable": len(loaded)}


def test_catalog_from_postgres_in_slices_with_only_the_columns_asked(spark, server, catalog_db, login):
    with sql_conf(spark, {postgres.ROWS_PER_TASK_SETTING: "10"}):  # 27 rows: three slices of the uuid space
        usable, report = read_catalog(spark, catalog_db["url"], columns=("title",))
    assert report["slices"] == 3 and report["table"] == "public.image" and report["format"] == "postgres"
    assert report["rows_read"] == catalog_db["rows"] and report["rows_usable"] == catalog_db["usable"]
    assert report["skipped"] == {"removed_from_source": 2, "missing_provider": 1}
    assert sorted(usable.columns) == sorted(["identifier", "provider", "meta_data", "title", "created_on", "updated_on"])
    with sql_conf(spark, {postgres.ROWS_PER_TASK_SETTING: "10"}):
        rows, _ = postgres.read_rows(spark, postgres.database(catalog_db["url"], spark), "public.image",
                                     ("identifier", "url"), ("identifier",))
    sizes = rows.rdd.glom().map(len).collect()  # one task a slice; every row in exactly one
    assert len(sizes) == 3 and all(sizes) and sum(sizes) == catalog_db["rows"] == rows.distinct().count()
    assert rows.columns == ["identifier", "url", "_removed"]
    meta = {r["identifier"]: r["meta_data"] for r in usable.collect()}
    assert all(m is None or m.startswith("{") for m in meta.values())  # jsonb arrives as its JSON text
    # each slice reads its range of the primary key: the plan's predicates are uuid ranges
    predicates = postgres.slice_predicates("k", "uuid", 3)
    assert predicates[1] == "k >= '55555555-5555-5555-5555-555555555555' AND k < 'aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa'"
    assert len(postgres.slice_predicates("k", "text", 4)) == 4


def test_postgres_catalog_gives_the_csv_tables_and_publish_swaps_its_table_in(
        spark, server, catalog_db, sample_pipeline, sample_published, login, tmp_path):
    from imagerank.catalog.popularity import run_popularity
    from imagerank.catalog.publish import run_publish

    root = sample_pipeline["root"]
    url = catalog_db["url"]
    run_popularity(spark, url, str(tmp_path / "popularity"))
    for name, key in (("popularity", ["identifier"]), ("provider_constants", ["provider"])):
        from_db = table(spark, tmp_path / "popularity", name).orderBy(*key).collect()
        from_csv = table(spark, sample_published["root"] / "popularity", name).orderBy(*key).collect()
        assert from_db == from_csv and from_db
    report = run_publish(spark, url, str(root / "rank"), str(tmp_path / "popularity"), str(tmp_path / "table"),
                         to_postgres=PublishTarget(url))
    assert report["catalog"]["skipped"] == {"removed_from_source": 2, "missing_provider": 1}
    assert report["warnings"] == []
    written = table(spark, tmp_path / "table", "authority").drop("computed_at")
    expected = table(spark, sample_published["root"] / "table", "authority").drop("computed_at")
    assert sorted(written.collect()) == sorted(expected.collect())
    # the database table: one row per catalog image, the Parquet table's columns, the run, a uuid key
    run = report["run"]
    rows = server.query("SELECT identifier::text, provider, score, authority, crawls, run FROM image_authority")
    by_id = {r["identifier"]: r for r in written.collect()}
    assert len(rows) == len(by_id) == report["rows_written"] == report["postgres"]["tables"]["image_authority"]
    for identifier, provider, score, authority, crawls, row_run in rows:
        assert (provider, score, authority, crawls, row_run) == (
            by_id[identifier]["provider"], by_id[identifier]["score"], by_id[identifier]["authority"],
            by_id[identifier]["crawls"], run)
    types = dict(server.query("SELECT column_name, data_type FROM information_schema.columns "
                              "WHERE table_name = 'image_authority'"))
    assert types["identifier"] == "uuid" and types["computed_at"] == "timestamp with time zone"
    assert set(types) == set(written.columns) | {"computed_at", "run"}
    assert server.query("SELECT indexdef FROM pg_indexes WHERE tablename = 'image_authority'")[0][0].endswith(
        "USING btree (identifier)")
    assert server.query("SELECT count(*) FROM pg_stats WHERE tablename = 'image_authority'")[0][0] > 0  # analyzed
    constants = server.query("SELECT provider, metric, constant, run FROM image_authority_provider_constants "
                             "ORDER BY provider")
    assert [(p, m, c) for p, m, c, _ in constants] == [
        (r["provider"], r["metric"], r["constant"]) for r in table(
            spark, tmp_path / "popularity", "provider_constants").orderBy("provider").collect()]
    # Openverse's data refresh joins the two on identifier (README)
    joined = server.query("SELECT count(*) FROM image i JOIN image_authority a ON a.identifier = i.identifier "
                          "WHERE NOT i.removed_from_source")
    assert joined[0][0] == len(rows)


def _published_by_stage(spark, db, output, rows: int, name: str = "swapped", constants: str | None = None) -> dict:
    """A publish-like stage: a table of ``rows`` uuid-keyed rows written, loaded, committed, swapped."""
    from pyspark.sql import functions as F

    from imagerank.stage import Stage

    with Stage(spark, "publish", str(output), {}) as stage:
        frame = (spark.range(rows).select(F.expr("uuid()").alias("identifier"), F.col("id").alias("n"),
                                          (F.col("id") % 5).cast("string").alias("provider")))
        written = stage.write("authority", frame)
        tables = [postgres.Table(name, written, rows, key=("identifier",), uuid_columns=("identifier",))]
        if constants:
            tables.append(postgres.Table(constants, written.select("provider").distinct(), 5, key=("provider",)))
        staged = postgres.stage_tables(spark, db, tables, stage.run, stage.output)
        stage.after_commit("PostgreSQL", staged.swap, staged.drop)
    return stage.report


def test_a_reader_polling_through_swaps_sees_whole_runs_and_foreign_tables_are_never_replaced(
        spark, server, catalog_db, login, tmp_path):
    db = postgres.database(catalog_db["url"], spark)
    first = _published_by_stage(spark, db, tmp_path / "out", 3000)["run"]
    server.execute("openverse", "CREATE ROLE api_reader", "GRANT SELECT ON swapped TO api_reader")
    seen, stop = [], threading.Event()

    def poll():
        connection = server.connect()
        connection.autocommit = True
        cursor = connection.cursor()
        while not stop.is_set():
            cursor.execute("SELECT count(*), count(DISTINCT run), min(run) FROM swapped")
            seen.append(tuple(cursor.fetchone()))
        connection.close()

    reader = threading.Thread(target=poll)
    reader.start()
    try:
        runs = [first] + [_published_by_stage(spark, db, tmp_path / "out", 3000)["run"] for _ in range(2)]
        time.sleep(0.2)
    finally:
        stop.set()
        reader.join()
    assert len(seen) > 20 and {(n, k) for n, k, _ in seen} == {(3000, 1)}  # never empty, never two runs
    order = [runs.index(r) for _, _, r in seen]
    assert order == sorted(order) and set(order) == {0, 1, 2}  # each run in turn, never back
    assert server.query("SELECT DISTINCT run FROM swapped__previous") == [(runs[1],)]
    assert server.query("SELECT has_table_privilege('api_reader', 'swapped', 'SELECT')") == [(True,)]  # kept
    assert server.query("SELECT relname FROM pg_class WHERE relname LIKE 'swapped%' AND relkind = 'r' "
                        "ORDER BY relname") == [("swapped",), ("swapped__previous",)]
    # a table imagerank did not publish is never replaced: the run commits, the database keeps both tables
    server.execute("openverse", "CREATE TABLE someone_elses (provider text)")
    with pytest.raises(Exception, match="is committed, but its PostgreSQL tables were not replaced.*someone_elses "
                                        "was not published by imagerank"):
        _published_by_stage(spark, db, tmp_path / "out", 3000, constants="someone_elses")
    assert server.query("SELECT DISTINCT run FROM swapped") == [(runs[2],)]
    assert server.query("SELECT count(*) FROM someone_elses") == [(0,)]
    # a swap arriving late (its run committed before another's that swapped first) changes nothing
    frame = spark.range(10).selectExpr("uuid() AS identifier")
    late, first_done = [postgres.stage_tables(spark, db, [postgres.Table("raced", frame.cache(), 10, ("identifier",),
                                                                         ("identifier",))], run, "file:///out")
                        for run in ("20261204T000001Z-aaaaaa", "20261204T000002Z-bbbbbb")]
    first_done.swap({"seq": 8})
    with pytest.raises(PostgresError, match=r"holds run 20261204T000002Z-bbbbbb \(commit 8 of file:///out\), later"):
        late.swap({"seq": 7})
    late.drop()
    assert server.query("SELECT DISTINCT run FROM raced") == [("20261204T000002Z-bbbbbb",)]
    server.execute("openverse", "CREATE VIEW recent AS SELECT * FROM swapped")  # would follow the old table
    with pytest.raises(Exception, match=r"has views over it .*public\.recent|has views over it .*recent"):
        _published_by_stage(spark, db, tmp_path / "out", 3000)
    assert server.query("SELECT DISTINCT run FROM swapped") == [(runs[2],)]
    assert server.query("SELECT relname FROM pg_class WHERE relname LIKE '%\\_\\_2%' AND relkind = 'r'") == []


def test_bad_databases_tables_and_values_are_refused_in_one_line(spark, server, catalog_db, login, monkeypatch,
                                                                tmp_path):
    url = catalog_db["url"]
    monkeypatch.setenv("PGPASSWORD", "wrong-one")
    with pytest.raises(PostgresError) as wrong:
        read_catalog(spark, url)
    message = str(wrong.value)
    assert f"{USER}@127.0.0.1:{server.port}/openverse" in message and "password authentication failed" in message
    assert "wrong-one" not in message and PASSWORD not in message and "\n" not in message
    monkeypatch.delenv("PGPASSWORD")
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "absent"))
    with pytest.raises(PostgresError, match="asks for a password and none was found: set PGPASSWORD"):
        read_catalog(spark, url)
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    with pytest.raises(PostgresError, match="a password in the URL"):
        read_catalog(spark, url + f"?password={PASSWORD}")
    from postgres_server import free_port
    with pytest.raises(PostgresError, match=r"cannot reach PostgreSQL at 127\.0\.0\.1:\d+ \(.*\); check the host"):
        read_catalog(spark, server.url(port=free_port()))
    with pytest.raises(PostgresError, match=r"no table public\.images; check --catalog-table"):
        read_catalog(spark, url, table="images")
    server.execute("openverse", "CREATE TABLE no_provider (identifier uuid PRIMARY KEY, meta_data jsonb)")
    with pytest.raises(PostgresError, match=r"no_provider lacks required column\(s\) \['provider'\]"):
        read_catalog(spark, url, table="no_provider")
    # meta_data that is not an object: counted as the file catalog counts it, per provider
    server.execute("openverse", IMAGE_DDL.format(name="odd"),
                   "INSERT INTO odd (identifier, provider, meta_data) VALUES "
                   "('00000000-0000-0000-0000-00000000000a', 'flickr', '[1, 2]'), "
                   "('00000000-0000-0000-0000-00000000000b', 'flickr', '\"views\"'), "
                   "('00000000-0000-0000-0000-00000000000c', 'flickr', '{\"views\": 7}')")
    from imagerank.catalog.popularity import run_popularity

    report = run_popularity(spark, url, str(tmp_path / "popularity"), catalog_table="odd")
    assert report["providers"]["flickr"]["bad_meta_data"] == 2 and report["providers"]["flickr"]["with_metric"] == 1
    # a password file readable by others is refused, as libpq refuses it
    monkeypatch.delenv("PGPASSWORD")
    pgpass = tmp_path / "pgpass"
    pgpass.write_text(f"127.0.0.1:{server.port}:openverse:{USER}:{PASSWORD}\n")
    monkeypatch.setenv("PGPASSFILE", str(pgpass))
    pgpass.chmod(0o644)
    with pytest.raises(PostgresError, match="chmod 600"):
        read_catalog(spark, url, table="odd")
    pgpass.chmod(0o600)
    assert read_catalog(spark, url, table="odd")[1]["rows_usable"] == 3
    # or a properties file named by a Spark setting: user, password and pgJDBC's own properties
    monkeypatch.delenv("PGUSER")
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "absent"))
    properties = tmp_path / "db.properties"
    properties.write_text(f"# the catalog's reader\nuser={USER}\npassword={PASSWORD}\nApplicationName=imagerank-test\n")
    with sql_conf(spark, {postgres.PROPERTIES_SETTING: str(properties)}):
        db = postgres.database(url, spark)
        assert (db.user, db.params) == (USER, {"ApplicationName": "imagerank-test"})
        assert read_catalog(spark, url, table="odd")[1]["rows_usable"] == 3


def test_pgpass_lines_match_as_libpq_reads_them(tmp_path):
    path = tmp_path / "pgpass"
    path.write_text("# comment\nother:5432:*:u:no\n*:5432:db:u:pa\\:ss\n*:*:*:*:fallback\n")
    path.chmod(0o600)
    assert postgres.pgpass_password("h", 5432, "db", "u", path) == "pa:ss"
    assert postgres.pgpass_password("h", 5433, "db", "u", path) == "fallback"
    assert postgres.pgpass_password("other", 5432, "x", "u", path) == "no"


@pytest.mark.slow
def test_a_publish_killed_mid_load_leaves_the_old_table_and_the_cli_names_bad_logins(
        spark, server, catalog_db, sample_pipeline, sample_published, tmp_path, monkeypatch):
    root = sample_pipeline["root"]
    url = catalog_db["url"]
    env = short_jvm_env({**os.environ, "PGUSER": USER, "PGPASSWORD": PASSWORD, "PYTHONPATH": str(ROOT / "lib")})
    args = [sys.executable, str(ROOT / "jobs" / "publish.py"), "--catalog", url, "--ranks", str(root / "rank"),
            "--popularity", str(tmp_path / "popularity"), "--output", str(tmp_path / "table"), "--to-postgres", url,
            "--postgres-table", "killed_authority", "--postgres-constants-table", "none"]
    from imagerank.catalog.popularity import run_popularity
    from imagerank.catalog.publish import run_publish

    def publish() -> str:  # what the command line above runs, in this process
        return run_publish(spark, url, str(root / "rank"), str(tmp_path / "popularity"), str(tmp_path / "table"),
                           to_postgres=PublishTarget(url, "killed_authority", None))["run"]

    monkeypatch.setenv("PGUSER", USER)
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    run_popularity(spark, url, str(tmp_path / "popularity"))
    first = publish()
    process = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and process.poll() is None:
        if server.query("SELECT relname FROM pg_class WHERE relname LIKE 'killed\\_authority\\_\\_2%' AND relkind = 'r'"):
            break  # its table is being loaded
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    counted = server.query("SELECT count(*), count(DISTINCT run), min(run) FROM killed_authority")[0]
    assert counted[1:] == (1, first) and counted[0] == report_of(tmp_path / "table")["rows_written"]
    assert server.query("SELECT relname FROM pg_class WHERE relname LIKE 'killed\\_authority\\_\\_2%' AND relkind = 'r'")  # left over
    second = publish()  # the next run swaps and removes the leftover
    assert server.query("SELECT relname FROM pg_class WHERE relname LIKE 'killed\\_authority\\_\\_2%' AND relkind = 'r'") == []
    assert server.query("SELECT DISTINCT run FROM killed_authority") == [(second,)] and second != first
    # evaluated, the database catalog's table gives the file catalog's figures
    from imagerank.evaluation.evaluate import run_evaluate

    figures = [run_evaluate(spark, str(folder), str(tmp_path / name), holdout=False)["authority_vs_popularity"]
               for folder, name in ((tmp_path / "table", "from_db"), (sample_published["root"] / "table", "from_csv"))]
    assert figures[0] == figures[1] and figures[0]
    # a wrong password from the command line: exit 2, one line naming user and host, never the password;
    # found before the Spark session started (no JVM said it picked up the tests' Java options)
    wrong = subprocess.run(args, env={**env, "PGPASSWORD": "not-this-one"}, capture_output=True, text=True)
    assert wrong.returncode == 2 and wrong.stdout == "" and "JDK_JAVA_OPTIONS" not in wrong.stderr, wrong.stderr
    last = wrong.stderr.strip().splitlines()[-1]
    assert last.startswith(f"publish: error: PostgreSQL {USER}@127.0.0.1:{server.port}/openverse: password "
                           f"authentication failed") and "not-this-one" not in wrong.stderr
