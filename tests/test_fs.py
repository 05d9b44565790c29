"""The filesystem layer: what a path means (on the driver, once), and S3 and GCS settings taken from Spark's."""

import os

import pytest

from imagerank import fs

from conftest import hadoop_conf


def test_paths_are_qualified_once_on_the_driver(spark, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert fs.qualify(spark, "out/extract") == f"file://{tmp_path}/out/extract"
    assert fs.qualify(spark, f"file://{tmp_path}/x") == f"file://{tmp_path}/x"
    assert fs.qualify(spark, "file:/a/b") == "file:///a/b"
    # no EMRFS here: Hadoop knows S3 as s3a, so s3:// is rewritten for Spark; pyarrow reads either
    assert fs.qualify(spark, "s3://bucket/key") == "s3a://bucket/key"
    assert fs.qualify(spark, "gs://bucket/key") == "gs://bucket/key"
    with pytest.raises(fs.FsError, match="empty path"):
        fs.qualify(spark, "  ")
    assert fs.local_path("file:///a/b") == fs.local_path("file:/a/b") == fs.local_path("file://localhost/a/b") == "/a/b"


def test_s3_settings_follow_the_sessions_s3a_settings(spark):
    with hadoop_conf(spark, {"fs.s3a.endpoint": "s3.amazonaws.com",  # Hadoop 3.3's default: leave it to the SDK
                             "fs.s3a.path.style.access": None, "fs.s3a.connection.ssl.enabled": None}) as conf:
        assert fs.FsSettings.from_spark(spark).s3_endpoint is None
        conf.set("fs.s3a.endpoint", "127.0.0.1:9000")
        conf.set("fs.s3a.connection.ssl.enabled", "false")
        conf.set("fs.s3a.path.style.access", "true")
        settings = fs.FsSettings.from_spark(spark)
        assert settings.s3_endpoint == "http://127.0.0.1:9000" and settings.s3_path_style


def test_gcs_settings_follow_the_sessions_gcs_connector_settings(spark):
    with hadoop_conf(spark, {"fs.gs.storage.root.url": "https://storage.googleapis.com/",  # Google's own
                             "fs.gs.auth.type": "COMPUTE_ENGINE", "fs.gs.auth.null.enable": None}) as conf:
        settings = fs.FsSettings.from_spark(spark)
        assert settings.gcs_endpoint is None and not settings.gcs_anonymous
        conf.set("fs.gs.storage.root.url", "http://127.0.0.1:4443/")  # an emulator's
        conf.set("fs.gs.auth.type", "unauthenticated")
        settings = fs.FsSettings.from_spark(spark)
        assert settings.gcs_endpoint == "http://127.0.0.1:4443" and settings.gcs_anonymous
        conf.set("fs.gs.auth.type", "COMPUTE_ENGINE")
        conf.set("fs.gs.auth.null.enable", "true")  # the 2.2 connectors' way to say the same
        assert fs.FsSettings.from_spark(spark).gcs_anonymous


def test_whole_file_writes_leave_no_temporary_files(tmp_path):
    target = f"file://{tmp_path}/a/marker.json"
    fs.write_json(target, {"run": 1})
    fs.write_json(target, {"run": 2})
    assert fs.read_json(target) == {"run": 2}
    assert os.listdir(tmp_path / "a") == ["marker.json"]
    with pytest.raises(ValueError):  # reports are strict JSON
        fs.write_json(target, {"x": float("nan")})
    assert fs.read_json(target) == {"run": 2}
