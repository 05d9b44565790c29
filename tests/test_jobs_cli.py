"""The jobs' command lines reach their stages with the options they name (in-process, the shared session)."""

import importlib.util
import re
from pathlib import Path

from conftest import report_of, write_committed

JOBS = Path(__file__).resolve().parents[1] / "jobs"


def _job(name):
    spec = importlib.util.spec_from_file_location(f"job_{name}", JOBS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def test_rank_popularity_publish_command_lines(spark, sample_pipeline, tmp_path, capsys):
    root, catalog = sample_pipeline["root"], sample_pipeline["catalog"]
    assert _job("rank")(["--graph", str(root / "graph"), "--output", str(tmp_path / "rank"), "--max-iter", "3",
                         "--damping", "0.5", "--harmonic-engine", "hyperanf", "--log2m", "6"]) == 0
    report = report_of(tmp_path / "rank")
    page = report["levels"]["page_rank"]["pagerank"]
    assert page["iterations"] == 3 and not page["converged"] and report["options"]["damping"] == 0.5
    assert report["levels"]["host_rank"]["harmonic_centrality"]["engine"] == "hyperanf"
    assert _job("popularity")(["--catalog", catalog, "--output", str(tmp_path / "pop"), "--percentile", "0.5"]) == 0
    popularity = report_of(tmp_path / "pop")
    assert {c["percentile"] for c in popularity["constants"]} == {0.5}
    assert _job("publish")(["--catalog", catalog, "--ranks", str(tmp_path / "rank"), "--popularity",
                            str(tmp_path / "pop"), "--output", str(tmp_path / "table")]) == 0
    printed = capsys.readouterr().out
    assert '"rows_written": 24' in printed


def test_options_are_checked_before_any_work(tmp_path, capsys):
    """--max-page-bytes -1 would skip every record, --tol 0 run 1,000 iterations, --max-iter 0 report
    an infinite change: each is refused in one line, exit 2, before a session reads anything."""
    cases = [
        ("extract", ["--input", "x.warc.gz", "--max-page-bytes", "-1"], "--max-page-bytes: must be a positive whole number"),
        ("extract", ["--input", "x.warc.gz", "--max-failed-files", "1.5"], "--max-failed-files: must be a fraction"),
        ("rank", ["--graph", "g", "--tol", "0"], "--tol: must be a positive number"),
        ("rank", ["--graph", "g", "--max-iter", "0"], "--max-iter: must be a positive whole number"),
    ]
    for job, argv, message in cases:
        try:
            code = _job(job)(argv + ["--output", str(tmp_path / job)])
        except SystemExit as exit_:
            code = exit_.code
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and message in err[-1], (job, argv, err)
        assert not (tmp_path / job).exists()


def test_a_failure_ends_in_one_line_naming_it(spark, sample_pipeline, tmp_path, capsys):
    """A graph whose vertices table holds a file that is not Parquet: Spark's error is 30 lines up a
    Java trace; the job's last line names it, and --verbose prints the trace before it. A graph
    without its vertices table at all is an input problem: exit 2, the table named."""
    import shutil

    from conftest import run_dir

    graph = tmp_path / "graph"
    shutil.copytree(sample_pipeline["root"] / "graph", graph)
    for part in (run_dir(graph) / "vertices").glob("part-*"):
        part.write_bytes(b"not parquet at all")
    argv = ["--graph", str(graph), "--output", str(tmp_path / "rank")]
    assert _job("rank")(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("rank: failed: ") and "parquet" in err[-1].lower()
    assert "previous output stays current" not in err[-1]  # a fresh output: there is no previous one
    assert not any(line.lstrip().startswith("at org.apache") for line in err)
    assert _job("rank")(argv + ["--verbose"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("rank: failed: ") and any("Traceback" in line for line in err)
    assert not (tmp_path / "rank" / "_CURRENT").exists()
    shutil.rmtree(run_dir(graph) / "vertices")
    assert _job("rank")(argv) == 2
    assert re.match(r"rank: error: \S+graph is a damaged build_graph output: its committed run \S+ has no vertices "
                    r"table; run build_graph into it again$", _last_error(capsys))


def _last_error(capsys) -> str:
    return capsys.readouterr().err.strip().splitlines()[-1]


def test_input_problems_exit_2_naming_the_input(spark, tmp_path, capsys):
    """A missing manifest, a glob that matches nothing, an extraction without its pages table, a
    --ranks folder that does not exist: input problems, exit 2, one line naming the path."""
    out = ["--output", str(tmp_path / "out")]
    assert _job("extract")(["--input", str(tmp_path / "missing.paths.gz")] + out) == 2
    line = _last_error(capsys)
    assert line.startswith("extract: error: ") and "missing.paths.gz: the manifest does not exist" in line, line
    assert _job("extract")(["--input", str(tmp_path / "nowhere" / "*.warc.gz")] + out) == 2
    line = _last_error(capsys)
    assert "nowhere/*.warc.gz: no file matches this pattern" in line, line
    assert "previous output stays current" not in line
    write_committed(spark, tmp_path / "extract", "extract", {
        "image_embeds": spark.createDataFrame([], "page_url string"),
        "page_links": spark.createDataFrame([], "src_url string")}, {})
    assert _job("build_graph")(["--input", str(tmp_path / "extract"), "--output", str(tmp_path / "graph")]) == 2
    line = _last_error(capsys)
    assert line.startswith("graph: error: ") and "damaged extract output" in line and "no pages table" in line, line
    assert _job("publish")(["--catalog", str(tmp_path / "c.csv"), "--ranks", str(tmp_path / "no-ranks"),
                            "--popularity", str(tmp_path / "pop")] + out) == 2
    line = _last_error(capsys)
    assert "no-ranks is not a committed rank output: it does not exist" in line and "_CURRENT" not in line, line
    assert not (tmp_path / "out").exists() and not (tmp_path / "graph" / "_CURRENT").exists()


def test_the_previous_output_is_said_to_stay_current_only_where_there_is_one(spark, tmp_path, capsys):
    """A zero-byte catalog is named empty (never Spark's _corrupt_record); the line says the previous
    output stays current for an output that holds a committed run, not for a fresh one."""
    good, empty = tmp_path / "good.csv", tmp_path / "empty.csv"
    good.write_text('identifier,provider,meta_data\n1,flickr,"{""views"": 1}"\n')
    empty.write_bytes(b"")
    assert _job("popularity")(["--catalog", str(empty), "--output", str(tmp_path / "fresh")]) == 2
    line = _last_error(capsys)
    assert re.search(r"popularity: error: catalog \S*empty.csv is empty", line), line
    assert "_corrupt_record" not in line and "previous output stays current" not in line
    assert _job("popularity")(["--catalog", str(good), "--output", str(tmp_path / "pop")]) == 0
    capsys.readouterr()
    assert _job("popularity")(["--catalog", str(empty), "--output", str(tmp_path / "pop")]) == 2
    line = _last_error(capsys)
    assert "is empty" in line and line.endswith("; the previous output stays current"), line
    assert report_of(tmp_path / "pop")["catalog"]["rows_read"] == 1
