"""URI storage (polychromic.store.remote) through pyarrow's filesystem layer, on ``file://`` URIs:
the same calls ``s3://`` and ``gs://`` take, on a filesystem this machine has."""

from __future__ import annotations

from pathlib import Path

import pytest

from polychromic.store import remote
from polychromic.store.checkpoint import latest_checkpoint
from polychromic.store.records import append_jsonl, read_json, write_json
from polychromic.tuning.resume import snapshot_trial_ids


def test_uri_rules() -> None:
    assert remote.is_uri("s3://b/x") and remote.is_uri("gs://b") and remote.is_uri("file:///t")
    for local in ("studies", "/mnt/studies", "./a:b/studies", "s3:/collapsed", "C:\\x"):
        assert not remote.is_uri(local)
    assert remote.join("s3://b/studies/", "s", "/trials/") == "s3://b/studies/s/trials"
    assert remote.with_scheme("s3://b/studies", "b/studies/s/ckpt") == "s3://b/studies/s/ckpt"
    assert remote.with_scheme("file:///t/b", "/t/b/ckpt") == "file:///t/b/ckpt"
    assert remote.with_scheme("/local", "/local/ckpt") == "/local/ckpt"


def test_study_locations_split_records_and_ray_files(tmp_path: Path) -> None:
    root, storage_uri = remote.study_locations("s3://bucket/studies", tmp_path / "heads", "s1")
    assert root == (tmp_path / "heads" / "s1").resolve() and storage_uri == "s3://bucket/studies/s1"
    root, storage_uri = remote.study_locations(tmp_path / "shared", "ignored", "s1")
    assert root == (tmp_path / "shared" / "s1").resolve() and storage_uri is None


def test_records_round_trip_without_ray_folders(tmp_path: Path) -> None:
    local = tmp_path / "head" / "s1"
    write_json(local / "study.json", {"space": "smoke", "ok": True})
    write_json(local / "trials" / "t1" / "result.json", {"status": "finished"})
    append_jsonl(local / "trials" / "t1" / "history.jsonl", {"step": 2})
    (local / "trials" / "t1" / "train" / "checkpoint_x").mkdir(parents=True)
    (local / "trials" / "t1" / "train" / "checkpoint_x" / "state.pt").write_bytes(b"big")
    (local / "tune").mkdir()
    (local / "tune" / "experiment_state-1.json").write_text("{}")
    (local / "trials" / "t1" / ".result.json.123.tmp").write_text("half")
    uri = f"file://{tmp_path / 'bucket' / 's1'}"

    remote.upload_records(local, uri)
    bucket = tmp_path / "bucket" / "s1"
    assert read_json(bucket / "study.json") == {"space": "smoke", "ok": True}
    assert (bucket / "trials" / "t1" / "history.jsonl").read_text().strip() == '{"step": 2}'
    assert not (bucket / "tune").exists() and not (bucket / "trials" / "t1" / "train").exists()
    assert not (bucket / "trials" / "t1" / ".result.json.123.tmp").exists()

    seen: dict = {}
    remote.upload_records(local, uri, seen)
    (bucket / "study.json").unlink()  # unchanged locally: not sent again
    remote.upload_records(local, uri, seen)
    assert not (bucket / "study.json").exists()
    write_json(local / "study.json", {"space": "smoke", "ok": False})  # changed: sent
    remote.upload_records(local, uri, seen)
    assert read_json(bucket / "study.json") == {"space": "smoke", "ok": False}
    write_json(local / "study.json", {"space": "smoke", "ok": True})
    remote.upload_records(local, uri, seen)

    fresh = tmp_path / "new-head" / "s1"
    remote.fetch_records(uri, fresh)
    assert read_json(fresh / "trials" / "t1" / "result.json") == {"status": "finished"}
    assert remote.list_dir(uri) == ["study.json", "trials"]
    assert remote.read_text(remote.join(uri, "nope.json")) is None
    assert remote.exists(uri) and not remote.exists(remote.join(uri, "nope"))


def test_download_and_checkpoint_lookup_through_a_uri(tmp_path: Path) -> None:
    train = tmp_path / "bucket" / "trials" / "t1" / "train"
    for name, complete in (("checkpoint_2026-01-01_00-00-01", True),
                           ("checkpoint_2026-01-01_00-00-02", True),
                           ("checkpoint_2026-01-01_00-00-03", False)):  # cut short
        (train / name / "adapter").mkdir(parents=True)
        if complete:
            (train / name / "adapter" / "adapter_model.safetensors").write_bytes(name.encode())
            (train / name / "state.pt").write_bytes(b"s")
            (train / name / "history.json").write_text("[]")
    uri = f"file://{train}"
    found = latest_checkpoint(uri)
    assert found == f"{uri}/checkpoint_2026-01-01_00-00-02"
    copy = remote.download(remote.join(found, "adapter"))
    assert (copy / "adapter_model.safetensors").read_bytes() == b"checkpoint_2026-01-01_00-00-02"
    assert copy.resolve() != (train / "checkpoint_2026-01-01_00-00-02" / "adapter").resolve()
    assert remote.download(str(train)) == train  # a local path is used where it is


def test_snapshot_ids_from_a_uri(tmp_path: Path) -> None:
    tune = tmp_path / "bucket" / "tune"
    tune.mkdir(parents=True)
    assert snapshot_trial_ids(f"file://{tune}") is None
    (tune / "experiment_state-2026-01-01_00-00-00.json").write_text(
        '{"trial_data": [["{\\"trial_id\\": \\"old\\"}", "{}"]]}')
    (tune / "experiment_state-2026-01-02_00-00-00.json").write_text(
        '{"trial_data": [["{\\"trial_id\\": \\"a\\"}", "{}"], ["{\\"trial_id\\": \\"b\\"}", "{}"]]}')
    assert snapshot_trial_ids(f"file://{tune}") == {"a", "b"}


def test_unreachable_uri_is_a_config_error() -> None:
    from polychromic.core.errors import ConfigError

    with pytest.raises(ConfigError, match="--storage-path.*nosuchfs://x"):
        remote.reachable("nosuchfs://x/y")
