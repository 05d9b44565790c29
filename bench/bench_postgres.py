"""PostgreSQL in and out (make bench): what the database path costs against the file path, in one run.

A real server (tests/postgres_server.py: initdb into a temporary folder, loopback, fsync off as in
the tests) and a local[2] session with the JDBC driver. N generated rows (default 200,000) shaped
as the published table (uuid identifier, provider, ten doubles, a crawls array, a timestamp):

  1. Out: the rows written as Parquet (the baseline: what publish writes anyway), then loaded into
     PostgreSQL by imagerank.postgres.stage_tables over 1 and 2 connections (load, row count, primary
     key, ANALYZE), then swapped in. Reported: seconds and rows per second of each, as ratios to the
     Parquet write.
  2. In: a catalog table of N rows of Openverse's image columns read by imagerank.catalog.read's
     database path in 4 slices against the same rows dumped to CSV and read by its file path (the
     baseline). Reported: seconds of each (read, checked and counted), the ratio.

    .venv/bin/python bench/bench_postgres.py [--rows 200000]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))
sys.path.insert(0, str(ROOT / "tests"))
RESULTS = ROOT / "bench" / "results" / "bench_postgres.json"


def timed(fn):
    started = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000)
    args = parser.parse_args()
    from postgres_server import PASSWORD, USER, PostgresServer, binaries

    if binaries() is None:
        print("bench_postgres: no PostgreSQL server binaries (initdb, pg_ctl); install Debian's postgresql")
        return 0
    from pyspark.sql import functions as F

    from imagerank import postgres
    from imagerank.catalog.read import read_catalog
    from imagerank.spark import get_spark

    os.environ.update({"PGUSER": USER, "PGPASSWORD": PASSWORD})
    server = PostgresServer(binaries()).start()
    spark = get_spark("bench-postgres", master="local[2]", packages=(postgres.DRIVER_PACKAGE,),
                      extra={"spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "4"})
    spark.sparkContext.setLogLevel("ERROR")
    n = args.rows
    results: dict = {"rows": n, "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                     "spark": spark.version, "cores": 2}
    try:
        work = Path(tempfile.mkdtemp(prefix="bench-postgres-"))
        db = postgres.database(server.url(), spark)
        published = (spark.range(n, numPartitions=4).select(
            F.expr("uuid()").alias("identifier"), (F.col("id") % 7).cast("string").alias("provider"),
            *[(F.rand(i) * 1e-3).alias(f"v{i}") for i in range(10)],
            F.array(F.lit("CC-MAIN-2099-01")).alias("crawls"), F.current_timestamp().alias("computed_at")))
        _, parquet = timed(lambda: published.write.parquet(str(work / "published")))
        table = spark.read.parquet(str(work / "published"))
        out = {"parquet_write_s": round(parquet, 2)}
        for connections in (1, 2):
            run = f"20990101T00000{connections}Z-bench{connections}"
            staged, seconds = timed(lambda: postgres.stage_tables(
                spark, db, [postgres.Table("bench_authority", table, n, ("identifier",), ("identifier",))], run,
                "file:///bench", connections))
            _, swap = timed(lambda: staged.swap({"seq": connections}))
            out[f"load_{connections}_connections_s"] = round(seconds, 2)
            out[f"load_{connections}_connections_rows_per_s"] = round(n / seconds)
            out[f"load_{connections}_connections_vs_parquet"] = round(seconds / parquet, 2)
            out[f"swap_{connections}_s"] = round(swap, 3)
        results["out"] = out

        server.execute("openverse", "CREATE TABLE image (identifier uuid PRIMARY KEY, provider text, url text, "
                       "foreign_landing_url text, meta_data jsonb, removed_from_source boolean DEFAULT false, "
                       "created_on timestamptz, updated_on timestamptz)",
                       f"INSERT INTO image SELECT gen_random_uuid(), 'p' || (i % 7), 'https://example.org/' || i || "
                       f"'.jpg', 'https://example.org/' || i, jsonb_build_object('views', i), i % 50 = 0, now(), "
                       f"now() FROM generate_series(1, {n}) i", "ANALYZE image")
        dump = work / "dump.csv"  # the rows a reader keeps, as Openverse's CSV dumps hold them
        connection = server.connect()
        with open(dump, "w", encoding="utf-8") as stream:
            connection.cursor().execute(
                "COPY (SELECT identifier, provider, url, foreign_landing_url, meta_data, created_on, updated_on "
                "FROM image WHERE NOT removed_from_source) TO STDOUT WITH (FORMAT csv, HEADER)", stream=stream)
        connection.close()
        spark.conf.set(postgres.ROWS_PER_TASK_SETTING, str(n // 4 + 1))
        (_, csv_report), csv_s = timed(lambda: read_catalog(spark, str(dump)))
        (_, db_report), db_s = timed(lambda: read_catalog(spark, server.url()))
        results["in"] = {"csv_s": round(csv_s, 2), "postgres_s": round(db_s, 2), "postgres_vs_csv": round(db_s / csv_s, 2),
                         "slices": db_report["slices"], "rows_usable": [csv_report["rows_usable"],
                                                                         db_report["rows_usable"]]}
    finally:
        spark.stop()
        server.stop()
    print(json.dumps(results, indent=2))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
