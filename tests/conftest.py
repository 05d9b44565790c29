import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("IMAGERANK_SHARED_DATA", ROOT.parent / "shared" / "data"))
WARC = SHARED / "warc"


def table(spark, output, name: str):
    """A table of the committed run of an output folder."""
    from imagerank import commit

    return commit.table(spark, str(output), name)


def run_dir(output) -> Path:
    """The local folder of the committed run of an output folder."""
    from imagerank import commit, fs

    return Path(fs.local_path(commit.current_run(str(output))))


def report_of(output) -> dict:
    from imagerank import commit

    return commit.read_report(str(output))


def write_committed(spark, output, stage: str, tables: dict, report: dict) -> None:
    """A committed output made by hand (DataFrames as its tables), as a stage would leave it."""
    from imagerank import commit, fs

    output = fs.qualify(spark, str(output))
    run, _ = commit.start_run(output, stage, {})
    for name, frame in tables.items():
        frame.write.parquet(fs.join(commit.run_folder(output, run), name))
    commit.commit(output, run, stage, {"job": stage, **report})


def shared_file(*parts: str) -> Path:
    """A file of ../shared/data, or a skip saying it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real sample data not present: {path} (../shared/data is absent outside the workspace)")
    return path


@pytest.fixture(scope="session")
def spark():
    from imagerank.spark import get_spark

    session = get_spark("imagerank-tests", master="local[2]", extra={"spark.sql.shuffle.partitions": "4"})
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def sample_crawl(tmp_path_factory):
    from imagerank.sample import write_sample

    out = tmp_path_factory.mktemp("sample")
    info = write_sample(str(out))
    info["root"] = out
    return info


@pytest.fixture(scope="session")
def sample_pipeline(spark, sample_crawl, tmp_path_factory):
    """The sample crawl taken through extract, build_graph and rank once for the whole session."""
    from imagerank.crawl.extract import run_extract
    from imagerank.graph.build import run_build_graph
    from imagerank.graph.rank import run_rank

    root = tmp_path_factory.mktemp("pipeline")
    run_extract(spark, sample_crawl["manifest"], str(root / "extract"))
    run_build_graph(spark, [str(root / "extract")], str(root / "graph"))
    report = run_rank(spark, str(root / "graph"), str(root / "rank"))
    return {"root": root, "rank_report": report, "catalog": sample_crawl["catalog"]}
