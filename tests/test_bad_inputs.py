"""Hostile input to every command of ``study/``: each bad input is exactly one line
``error: <file>: <field>: <what>`` on stderr and exit status 2, never a traceback, never a hang,
well under 10 s, and nothing is written: every file under the test's folders (the study
folder included) has the same SHA-256 before and after, and no file appears or disappears.

Covered classes: search spaces (duplicate keys, aliases and alias bombs, deep nesting, huge
files, non-UTF-8 and compressed files, folders/devices/FIFOs, numbers beyond a float or 64
bits, lists typed element by element), ``--set`` values, data files (non-UTF-8, compressed,
duplicate columns or keys, nested JSON, truncated Parquet, folders/devices/FIFOs, ``~user``,
over-long names, a held-out split smaller than ``n_eval_prompts``), study names and folders,
and the arguments of run.py, score.py, leaderboard.py and export.py. Then the study-damage
cases: export into/over the study, a rescore that fails half-way, corrupt trial files shown
as ``corrupt`` while the other trials stay, and ``export --best`` that never falls back
silently past a corrupt trial.

The commands run in-process through their ``main(argv)`` (as in test_review.py); a few run
as real subprocesses to prove the same from the outside."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import time
import warnings
import zipfile
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from conftest import load_cli, write_tiny_study

from polychromic.tasks.base import split_of

ROOT = Path(__file__).resolve().parent.parent
LIMIT_S = 10.0
CLI = "command line"
LONG = "x" * 300  # one file name over the 255-byte limit
#: a valid space on the tiny test model; each case below breaks exactly one thing
SETTINGS: dict[str, Any] = {
    "model": "tiny", "task": "chitchat", "steps": 2, "batch_size": 2, "report_every": 1,
    "n_generations": 2, "compute_every_n_steps": 1, "max_examples_for_diversity": 1,
    "max_new_tokens": 4, "n_eval_prompts": 2, "n_eval_samples": 10, "eval_max_new_tokens": 4,
    "eval_batch_prompts": 2, "max_failures": 0}
VALID: dict[str, Any] = {
    "description": "valid tiny space (the base of the bad-input cases)",
    "settings": SETTINGS,
    "params": {"lambda_": {"distribution": "log_uniform", "low": 0.1, "high": 10.0}},
    "objectives": [{"metric": "semantic_diversity", "mode": "max"}],
    "scheduler": {"enabled": False},
    "num_trials": 2,
}
VALID_TEXT = yaml.safe_dump(VALID, sort_keys=False)


# --- helpers ---------------------------------------------------------------------------------


def snapshot(root: Path) -> dict[str, str]:
    """Every entry under ``root`` → SHA-256 of a regular file's bytes, a link's target, or the
    kind of anything else (FIFOs and devices are never opened)."""
    out: dict[str, str] = {}
    for folder, dirs, files in os.walk(root, followlinks=False):
        for name in dirs + files:
            path = Path(folder) / name
            mode = os.lstat(path).st_mode
            key = str(path.relative_to(root))
            if stat.S_ISLNK(mode):
                out[key] = "link:" + os.readlink(path)
            elif stat.S_ISREG(mode):
                out[key] = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                out[key] = "dir" if stat.S_ISDIR(mode) else f"special:{stat.S_IFMT(mode)}"
    return out


def call(cli: Any, argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str,
                                                                                   float]:
    """``cli.main(argv)`` in-process: (exit status, stdout, stderr, seconds)."""
    capsys.readouterr()
    t0 = time.monotonic()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            code = cli.main(argv)
        except SystemExit as done:  # run.py's parser exits like argparse
            code = done.code
    seconds = time.monotonic() - t0
    out, err = capsys.readouterr()
    return code, out, err, seconds


def assert_refused(cli: Any, argv: list[str], source: str, field: str,
                   capsys: pytest.CaptureFixture[str], watched: list[Path],
                   says: str = "") -> str:
    """Exit 2, exactly one stderr line ``error: <source>: <field>: …`` (with ``says`` in it),
    no traceback, under ``LIMIT_S``, and every watched folder byte-identical."""
    before = [snapshot(w) for w in watched]
    code, out, err, seconds = call(cli, argv, capsys)
    lines = err.strip().splitlines()
    assert code == 2, (code, err[-3000:])
    assert len(lines) == 1, err[-3000:]
    head = f"error: {source}: {field}: "
    assert lines[0].startswith(head), lines[0]
    assert len(lines[0]) > len(head) + 3, lines[0]  # it says what is wrong
    assert says in lines[0], lines[0]
    assert "Traceback" not in err + out
    assert seconds < LIMIT_S, f"{seconds:.1f} s: {lines[0]}"
    for w, snap in zip(watched, before, strict=True):
        assert snapshot(w) == snap, f"{w} changed"
    return lines[0]


@pytest.fixture(scope="module")
def clis() -> dict[str, Any]:
    return {name: load_cli(name) for name in ("run", "score", "leaderboard", "export")}


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny study of conftest.py (7 trials: finished, failed, early-stopped, running)."""
    return write_tiny_study(tmp_path_factory.mktemp("pristine"))


@pytest.fixture(scope="module", autouse=True)
def warm(pristine: Path) -> None:
    """Import torch, the tasks and the leaderboard once, so each case's time is its own."""
    import peft  # noqa: F401 — export.py imports peft and transformers before a checkpoint
    import transformers  # noqa: F401

    from polychromic.review.leaderboard import build_leaderboard
    from polychromic.tuning.space import parse_space

    parse_space(VALID, "warm.yaml", "warm")
    build_leaderboard(pristine)


@pytest.fixture
def study(pristine: Path, tmp_path: Path) -> Path:
    """A fresh copy of the tiny study under ``tmp_path/studies`` (its space file stays where
    ``study.json`` names it)."""
    dest = tmp_path / "studies" / "tiny"
    shutil.copytree(pristine, dest)
    return dest


# --- search spaces --------------------------------------------------------------------------


def _alias_bomb() -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\nobjectives: *i\n"


def _replace(old: str, new: str) -> str:
    assert old in VALID_TEXT, old
    return VALID_TEXT.replace(old, new, 1)


def _settings(**changes: Any) -> str:
    return yaml.safe_dump({**VALID, "settings": {**SETTINGS, **changes}}, sort_keys=False)


# (case id, file content: text, bytes or a callable making the path, field named)
BAD_SPACE_FILES: list[tuple[str, Any, str]] = [
    ("duplicate-top-level-settings", VALID_TEXT + "settings: {model: tiny}\n", "settings"),
    ("duplicate-nested-key", _replace("  steps: 2\n", "  steps: 2\n  steps: 3\n"),
     "settings.steps"),
    ("duplicate-key-in-block-mapping",
     _replace("    low: 0.1\n", "    low: 0.1\n    low: 0.2\n"), "params.lambda_.low"),
    ("duplicate-key-in-flow-mapping", VALID_TEXT + "points: [{lambda_: 1, lambda_: 2}]\n",
     "points[0].lambda_"),
    ("duplicate-key-in-list-item", VALID_TEXT.replace(
        "- metric: semantic_diversity\n", "- metric: semantic_diversity\n  metric: pass@1\n"),
     "objectives[0].metric"),
    ("alias-bomb", _alias_bomb(), "(yaml)"),
    ("one-alias", VALID_TEXT + "points: &p []\nx: *p\n", "(yaml)"),
    ("merge-key", _replace("settings:\n", "settings:\n  <<: {seed: 3}\n"), "settings"),
    ("deep-nesting", "a: " + "[" * 5000 + "]" * 5000 + "\n", "(yaml)"),
    ("int-with-5000-digits", VALID_TEXT + "max_concurrent_trials: " + "9" * 5000 + "\n",
     "(yaml)"),
    ("int-with-5000-digits-in-settings", _replace("  steps: 2\n", "  steps: " + "9" * 5000 + "\n"),
     "(yaml)"),
    ("unhashable-key", VALID_TEXT + "? [1, 2]\n: 3\n", "(yaml)"),
    ("not-utf8", VALID_TEXT.encode() + b"# \xff\xfe\n", "(file)"),
    # characters YAML's reader refuses, raised when the loader is built (before parsing)
    ("nul-byte", VALID_TEXT + "# \x00\n", "(file)"),
    ("nul-byte-in-a-value", _replace("  steps: 2\n", "  steps: 2\x00\n"), "(file)"),
    ("bell-control-character", VALID_TEXT + "x: \x07\n", "(file)"),
    ("escape-character", VALID_TEXT + "# \x1b[31m\n", "(file)"),
    ("gzip", gzip.compress(VALID_TEXT.encode()), "(file)"),
    ("zip-magic", b"PK\x03\x04" + VALID_TEXT.encode(), "(file)"),
    ("two-megabytes", VALID_TEXT + "#" * (2 << 20) + "\n", "(file)"),
    ("bound-overflows-a-float", _replace("high: 10.0", "high: 1.0e999"), "params.lambda_.high"),
    ("bound-beyond-64-bits", _replace("high: 10.0", "high: " + "1" + "0" * 30),
     "params.lambda_.high"),
    ("steps-beyond-64-bits", _settings(steps=10**30), "settings.steps"),
    ("seed-beyond-64-bits", _settings(seed=2**64), "settings.seed"),
    ("temperature-nan", _replace("  max_failures: 0\n", "  max_failures: 0\n  temperature: .nan\n"),
     "settings.temperature"),
    ("learning-rate-inf", _replace("  max_failures: 0\n",
                                   "  max_failures: 0\n  learning_rate: .inf\n"),
     "settings.learning_rate"),
    ("lora-targets-numbers", _settings(lora_target_modules=[1, 2]),
     "settings.lora_target_modules"),
    ("lora-targets-nested-list", _settings(lora_target_modules=[["q_proj"]]),
     "settings.lora_target_modules"),
    ("lora-targets-mapping", _settings(lora_target_modules=[{"x": 1}]),
     "settings.lora_target_modules"),
    ("lora-targets-null", _settings(lora_target_modules=[None]), "settings.lora_target_modules"),
    ("worker-resources-inf", _settings(worker_resources={"node": float("inf")}),
     "settings.worker_resources"),
    ("model-with-nul-byte", _replace("  model: tiny\n", '  model: "ti\\0ny"\n'), "settings.model"),
    ("model-ten-thousand-chars", _settings(model="m" * 10_000), "settings.model"),
    ("reduction-factor-inf", _replace("  enabled: false\n",
                                      "  enabled: false\n  reduction_factor: .inf\n"),
     "scheduler.reduction_factor"),
    ("num-trials-a-trillion", VALID_TEXT.replace("num_trials: 2", "num_trials: 1000000000000"),
     "num_trials"),
    ("data-of-unknown-user", _settings(task="replies", data="~no_such_user_xyz/r.jsonl"),
     "settings.data"),
    # the baseline's temperature frontier: a list of distinct temperatures in (0, 2]
    ("frontier-temperature-above-2", _settings(frontier_temperatures=[0.5, 2.5]),
     "settings.frontier_temperatures"),
    ("frontier-temperature-zero", _settings(frontier_temperatures=[0, 0.7]),
     "settings.frontier_temperatures"),
    ("frontier-temperature-negative", _settings(frontier_temperatures=[-0.5]),
     "settings.frontier_temperatures"),
    ("frontier-temperature-twice", _settings(frontier_temperatures=[0.7, 1.0, 0.7]),
     "settings.frontier_temperatures"),
    ("frontier-temperature-twice-spelled-differently",
     _settings(frontier_temperatures=[1, 1.0]), "settings.frontier_temperatures"),
    ("frontier-temperature-a-word", _settings(frontier_temperatures=[0.5, "hot"]),
     "settings.frontier_temperatures"),
    ("frontier-temperature-a-bool", _settings(frontier_temperatures=[True]),
     "settings.frontier_temperatures"),
    ("frontier-temperature-null", _settings(frontier_temperatures=[None]),
     "settings.frontier_temperatures"),
    ("frontier-temperature-nested", _settings(frontier_temperatures=[[0.5]]),
     "settings.frontier_temperatures"),
    ("frontier-temperatures-a-number", _settings(frontier_temperatures=0.7),
     "settings.frontier_temperatures"),
    ("frontier-temperatures-a-mapping", _settings(frontier_temperatures={"t": 0.7}),
     "settings.frontier_temperatures"),
    ("frontier-temperatures-null", _settings(frontier_temperatures=None),
     "settings.frontier_temperatures"),
    ("frontier-temperature-nan", _replace("  max_failures: 0\n",
                                          "  max_failures: 0\n  frontier_temperatures: [.nan]\n"),
     "settings.frontier_temperatures"),
    ("frontier-temperature-overflows", _replace(
        "  max_failures: 0\n", "  max_failures: 0\n  frontier_temperatures: [1.0e999]\n"),
     "settings.frontier_temperatures"),
    ("frontier-temperatures-too-many",
     _settings(frontier_temperatures=[round(0.1 * i, 1) for i in range(1, 21)]),
     "settings.frontier_temperatures"),
    ("frontier-for-unknown", _settings(frontier_for="best"), "settings.frontier_for"),
    ("frontier-for-searched", yaml.safe_dump({**VALID, "params": {
        **VALID["params"], "frontier_for": {"distribution": "choice",
                                            "values": ["baseline", "all"]}}}),
     "params.frontier_for"),
    ("eval-placement-unknown", _settings(eval_placement="gpu"), "settings.eval_placement"),
    ("eval-placement-searched", yaml.safe_dump({**VALID, "params": {
        **VALID["params"], "eval_placement": {"distribution": "choice",
                                              "values": ["worker", "actors"]}}}),
     "params.eval_placement"),
]


@pytest.mark.parametrize(("content", "field"), [c[1:] for c in BAD_SPACE_FILES],
                         ids=[c[0] for c in BAD_SPACE_FILES])
def test_bad_space_file(clis: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str],
                        content: Any, field: str) -> None:
    space = tmp_path / "space.yaml"
    if isinstance(content, bytes):
        space.write_bytes(content)
    else:
        space.write_text(content, encoding="utf-8")
    assert_refused(clis["run"], ["--space", str(space), "--storage-path",
                                 str(tmp_path / "studies"), "--no-wandb"],
                   str(space), field, capsys, [tmp_path])


def _sparse(path: Path) -> Path:
    with path.open("wb") as f:  # 50 MB on paper, nothing on disk: refused by its size
        f.truncate(50 << 20)
    return path


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def _folder(path: Path) -> Path:
    path.mkdir()
    return path


# (case id, makes the path in tmp_path or names one, field)
SPECIAL_SPACE_PATHS: list[tuple[str, Any, str]] = [
    ("fifty-megabytes", lambda d: _sparse(d / "big.yaml"), "(file)"),
    ("a-fifo", lambda d: _fifo(d / "fifo.yaml"), "(file)"),
    ("a-folder", lambda d: _folder(d / "folder.yaml"), "(file)"),
    ("dev-zero", lambda d: Path("/dev/zero"), "(file)"),
    ("dev-urandom", lambda d: Path("/dev/urandom"), "(file)"),
]


@pytest.mark.parametrize(("make", "field"), [c[1:] for c in SPECIAL_SPACE_PATHS],
                         ids=[c[0] for c in SPECIAL_SPACE_PATHS])
def test_space_path_that_is_not_a_small_file(clis: dict[str, Any], tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str], make: Any,
                                             field: str) -> None:
    space = make(tmp_path)
    assert_refused(clis["run"], ["--space", str(space), "--storage-path",
                                 str(tmp_path / "studies"), "--no-wandb"],
                   str(space), field, capsys, [tmp_path])


# --- --set and the run.py command line -------------------------------------------------------


def _model_folder(tmp: Path, config: str | None) -> str:
    folder = tmp / "model"
    folder.mkdir()
    if config is not None:
        (folder / "config.json").write_text(config)
    return str(folder)


# (case id, arguments after --space VALID (a callable gets tmp_path), field in "command line")
BAD_COMMAND_LINES: list[tuple[str, Any, str]] = [
    ("set-steps-1e400", ["--set", "steps=1e400"], "--set steps"),
    ("set-steps-beyond-64-bits", ["--set", "steps=" + "9" * 30], "--set steps"),
    ("set-seed-5000-digits", ["--set", "seed=" + "9" * 5000], "--set seed"),
    ("set-temperature-nan", ["--set", "temperature=.nan"], "--set temperature"),
    ("set-top-p-inf", ["--set", "top_p=.inf"], "--set top_p"),
    ("set-model-empty", ["--set", "model="], "--set model"),
    ("set-model-unknown-user", ["--set", "model=~no_such_user_xyz/m"], "--set model"),
    ("set-model-folder-without-config", lambda d: ["--set", f"model={_model_folder(d, None)}"],
     "--set model"),
    ("set-model-garbage-config", lambda d: ["--set", f"model={_model_folder(d, '{nope')}"],
     "--set model"),
    ("set-model-config-not-object", lambda d: ["--set", f"model={_model_folder(d, '[1]')}"],
     "--set model"),
    ("set-model-over-long-name", ["--set", f"model=./{LONG}"], "--set model"),
    ("set-lora-targets-numbers", ["--set", "lora_target_modules=[1, 2]"],
     "--set lora_target_modules"),
    ("set-lora-targets-nested", ["--set", "lora_target_modules=[[a]]"],
     "--set lora_target_modules"),
    ("set-worker-resources-inf", ["--set", "worker_resources={a: .inf}"],
     "--set worker_resources"),
    ("set-steps-a-list", ["--set", "steps=[1]"], "--set steps"),
    ("set-given-twice", ["--set", "steps=3", "--set", "steps=4"], "--set steps"),
    ("set-alias", ["--set", "lora_target_modules=&a [q_proj, *a]"],
     "--set lora_target_modules"),
    ("set-deep-nesting", ["--set", "worker_resources=" + "[" * 3000 + "]" * 3000],
     "--set worker_resources"),
    ("set-data-unknown-user", ["--set", "task=replies", "--set", "data=~no_such_user_xyz/r.jsonl"],
     "--set data"),
    ("set-data-over-long-name", ["--set", "task=replies", "--set", f"data={LONG}.jsonl"],
     "--set data"),
    ("set-frontier-temperature-above-2", ["--set", "frontier_temperatures=[0.5, 3]"],
     "--set frontier_temperatures"),
    ("set-frontier-temperature-twice", ["--set", "frontier_temperatures=0.7,0.7"],
     "--set frontier_temperatures"),
    ("set-frontier-for-unknown", ["--set", "frontier_for=everything"], "--set frontier_for"),
    ("set-eval-placement-unknown", ["--set", "eval_placement=node"], "--set eval_placement"),
    ("name-dotdot", ["--name", "../../etc"], "--name"),
    ("name-empty", ["--name", ""], "--name"),
    ("name-with-slash", ["--name", "a/b"], "--name"),
    ("name-over-long", ["--name", LONG], "--name"),
    ("storage-path-is-a-file", lambda d: ["--storage-path", str(_touch(d / "f"))],
     "--storage-path"),
    ("unknown-option", ["--bogus"], "arguments"),
    ("plan-price-nan", ["--plan", "--gpu-hour-price", "nan"], "--gpu-hour-price"),
    ("plan-price-negative", ["--plan", "--gpu-hour-price", "-2"], "--gpu-hour-price"),
    ("local-dir-is-a-file", lambda d: ["--local-dir", str(_touch(d / "f"))], "--local-dir"),
]


def _touch(path: Path) -> Path:
    path.write_text("not a folder")
    return path


@pytest.mark.parametrize(("args", "field"), [c[1:] for c in BAD_COMMAND_LINES],
                         ids=[c[0] for c in BAD_COMMAND_LINES])
def test_bad_command_line(clis: dict[str, Any], tmp_path: Path,
                          capsys: pytest.CaptureFixture[str], args: Any, field: str) -> None:
    space = tmp_path / "space.yaml"
    space.write_text(VALID_TEXT)
    extra = args(tmp_path) if callable(args) else args
    argv = ["--space", str(space), "--storage-path", str(tmp_path / "studies"), "--no-wandb",
            *extra]
    if "--storage-path" in extra:
        argv = ["--space", str(space), "--no-wandb", *extra]
    assert_refused(clis["run"], argv, CLI, field, capsys, [tmp_path])


@pytest.mark.parametrize(("args", "field"), [
    (["--space", f"~no_such_user_xyz/{LONG[:5]}.yaml"], "--space"),
    (["--space", LONG], "--space"),
    (["--space", f"{LONG}.yaml"], "--space"),
    (["--resume", "../x"], "--resume"),
    (["--resume", ""], "--space"),  # no study named: --space or --resume is required
], ids=["space-unknown-user", "space-over-long-name", "space-over-long-file", "resume-dotdot",
        "resume-empty"])
def test_bad_space_or_study_name(clis: dict[str, Any], tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str], args: list[str],
                                 field: str) -> None:
    assert_refused(clis["run"], [*args, "--storage-path", str(tmp_path / "studies")], CLI, field,
                   capsys, [tmp_path])


# --- data files ------------------------------------------------------------------------------


def _rows(n: int = 200) -> list[dict[str, str]]:
    return [{"prompt": f"how was day {i}?", "response": f"day {i} was fine"} for i in range(n)]


def _jsonl_text(rows: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def _parquet(path: Path, table: pa.Table) -> Path:
    pq.write_table(table, path)
    return path


def _truncated_parquet(path: Path) -> Path:
    pq.write_table(pa.Table.from_pylist(_rows()), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _train_only(path: Path) -> Path:
    rows = [r for r in _rows(400) if split_of(r["prompt"]) == "train"]
    path.write_text(_jsonl_text(rows))
    return path


def _write(path: Path, data: str | bytes) -> Path:
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data)
    return path


def _zip_csv(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("r.csv", "prompt,response\na,b\n")
    return path


# (case id, makes the data file in a folder, field named in "<data file>: <field>: ...")
BAD_DATA: list[tuple[str, Any, str]] = [
    ("not-utf8-jsonl", lambda d: _write(d / "r.jsonl", _jsonl_text(_rows(3)).encode()
                                        + b'{"prompt": "\xff", "response": "x"}\n'), "data"),
    ("gzip-jsonl", lambda d: _write(d / "r.jsonl", gzip.compress(_jsonl_text(_rows()).encode())),
     "data"),
    ("zip-csv", lambda d: _zip_csv(d / "r.csv"), "data"),
    ("duplicate-parquet-columns", lambda d: _parquet(d / "r.parquet", pa.table(
        [pa.array(["a", "b"]), pa.array(["c", "d"]), pa.array(["e", "f"])],
        names=["prompt", "prompt", "response"])), "prompt_field"),
    ("duplicate-csv-columns",
     lambda d: _write(d / "r.csv", "prompt,prompt,response\na,b,c\n"), "prompt_field"),
    ("deeply-nested-json", lambda d: _write(
        d / "r.jsonl", '{"prompt": ' + "[" * 100_000 + "]" * 100_000 + ', "response": "x"}\n'),
     "data"),
    ("duplicate-json-key", lambda d: _write(
        d / "r.jsonl", '{"prompt": "a", "prompt": "b", "response": "c"}\n'), "data"),
    ("truncated-parquet", lambda d: _truncated_parquet(d / "r.parquet"), "data"),
    ("garbage-parquet", lambda d: _write(d / "r.parquet", os.urandom(4096)), "data"),
    ("data-is-a-folder", lambda d: _folder(d / "r.jsonl"), "data"),
    ("data-is-dev-zero", lambda d: _link(d / "r.jsonl", "/dev/zero"), "data"),
    ("data-is-a-fifo", lambda d: _fifo(d / "r.jsonl"), "data"),
]


def _link(path: Path, target: str) -> Path:
    path.symlink_to(target)
    return path


@pytest.mark.parametrize(("make", "field"), [c[1:] for c in BAD_DATA],
                         ids=[c[0] for c in BAD_DATA])
def test_bad_data_file(clis: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str],
                       make: Any, field: str) -> None:
    space = _write(tmp_path / "space.yaml", VALID_TEXT)
    data = make(tmp_path)
    assert_refused(clis["run"], ["--space", str(space), "--storage-path",
                                 str(tmp_path / "studies"), "--no-wandb", "--set", "task=replies",
                                 "--set", f"data={data}"], str(data), field, capsys, [tmp_path])


def test_check_refuses_data_with_too_few_held_out_prompts(clis: dict[str, Any], tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]
                                                         ) -> None:
    """Every prompt hashes to train: --check must not pass a study that would evaluate 0."""
    data = _train_only(tmp_path / "r.jsonl")
    space = _write(tmp_path / "space.yaml",
                   _settings(task="replies", data=str(data), n_eval_prompts=2))
    line = assert_refused(clis["run"], ["--space", str(space), "--check"], str(space),
                          "settings.n_eval_prompts", capsys, [tmp_path], says="gives only 0")
    assert str(data) in line
    # the same file with enough held-out rows passes
    _write(data, _jsonl_text(_rows()))
    code, out, err, _ = call(clis["run"], ["--space", str(space), "--check"], capsys)
    assert code == 0, err
    assert out.startswith("ok: ")


# --- leaderboard.py --------------------------------------------------------------------------


BAD_LEADERBOARD: list[tuple[str, Any, str]] = [
    ("gpus-per-trial-negative", ["--gpus-per-trial", "-1"], "--gpus-per-trial"),
    ("gpus-per-trial-nan", ["--gpus-per-trial", "nan"], "--gpus-per-trial"),
    ("gpus-per-trial-inf", ["--gpus-per-trial", "inf"], "--gpus-per-trial"),
    ("gpu-hour-price-negative", ["--gpu-hour-price", "-1"], "--gpu-hour-price"),
    ("gpu-hour-price-nan", ["--gpu-hour-price", "nan"], "--gpu-hour-price"),
    ("gpu-hour-price-inf", ["--gpu-hour-price", "inf"], "--gpu-hour-price"),
    ("top-not-a-number", ["--top", "abc"], "arguments"),
    ("unknown-format", ["--format", "xml"], "arguments"),
    ("html-to-a-folder", lambda s, d: ["--html", str(_folder(d / "report.html"))], "--html"),
    ("output-to-a-folder", lambda s, d: ["--format", "csv", "-o", str(d)], "--output"),
    ("output-over-a-study-file", lambda s, d: ["--format", "json", "-o", str(s / "study.json")],
     "--output"),
    ("output-into-trials", lambda s, d: ["--format", "csv", "-o", str(s / "trials" / "x.csv")],
     "--output"),
    ("html-over-a-result", lambda s, d: [
        "--html", str(s / "trials" / "base0000" / "result.json")], "--html"),
]


@pytest.mark.parametrize(("args", "field"), [c[1:] for c in BAD_LEADERBOARD],
                         ids=[c[0] for c in BAD_LEADERBOARD])
def test_bad_leaderboard_arguments(clis: dict[str, Any], study: Path, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str], args: Any,
                                   field: str) -> None:
    extra = args(study, tmp_path) if callable(args) else args
    assert_refused(clis["leaderboard"], [str(study), *extra], CLI, field, capsys, [tmp_path])


def _study_args(kind: str, tmp: Path) -> list[str]:
    if kind == "a-file":
        return [str(_touch(tmp / "f"))]
    if kind == "not-a-study":
        (tmp / "etc").mkdir()
        return [str(tmp / "etc")]
    return {"empty": [""], "unknown-user": ["~no_such_user_xyz/s"], "over-long": [LONG],
            "dotdot-name": ["../../etc", "--storage-path", str(tmp)]}[kind]


@pytest.mark.parametrize("cli_name", ["leaderboard", "score"])
@pytest.mark.parametrize("kind", ["a-file", "not-a-study", "empty", "unknown-user", "over-long",
                                  "dotdot-name"])
def test_bad_study_folder(clis: dict[str, Any], tmp_path: Path,
                          capsys: pytest.CaptureFixture[str], cli_name: str, kind: str) -> None:
    argv = _study_args(kind, tmp_path)
    assert_refused(clis[cli_name], argv, CLI, "study", capsys, [tmp_path])


# --- export.py ---------------------------------------------------------------------------------


BAD_EXPORT: list[tuple[str, Any, str, str]] = [
    ("out-is-the-study", lambda s, d: ["--out", str(s), "--force"], "--out", "inside the study"),
    ("out-is-trials", lambda s, d: ["--out", str(s / "trials"), "--force"], "--out",
     "inside the study"),
    ("out-inside-a-trial", lambda s, d: ["--out", str(s / "trials" / "base0000" / "x")], "--out",
     "inside the study"),
    ("out-is-the-storage-root", lambda s, d: ["--out", str(s.parent), "--force"], "--out",
     "contains the study"),
    ("out-is-a-link-to-the-study", lambda s, d: ["--out", str(_link(d / "ln", str(s))), "--force"],
     "--out", "inside the study"),
    ("out-is-root", lambda s, d: ["--out", "/", "--force"], "--out", "refusing"),
    ("out-is-home", lambda s, d: ["--out", "~", "--force"], "--out", "refusing"),
    ("out-is-a-file", lambda s, d: ["--out", str(_touch(d / "f"))], "--out", "not a folder"),
    ("out-unknown-user", lambda s, d: ["--out", "~no_such_user_xyz/x"], "--out", "no such user"),
    ("out-over-long", lambda s, d: ["--out", str(d / LONG)], "--out", "255"),
    ("device-unknown", lambda s, d: ["--out", str(d / "x"), "--device", "gpu9"], "--device",
     "unknown device"),
    ("by-with-trial", lambda s, d: ["--out", str(d / "x"), "--trial", "bbbb", "--by", "pass@1"],
     "--by", "cannot"),
    ("unknown-trial", lambda s, d: ["--out", str(d / "x"), "--trial", "zzzz"], "--trial",
     "does not exist"),
    ("no-out", lambda s, d: [], "arguments", "--out"),
]


@pytest.mark.parametrize(("args", "field", "says"), [c[1:] for c in BAD_EXPORT],
                         ids=[c[0] for c in BAD_EXPORT])
def test_bad_export_arguments(clis: dict[str, Any], study: Path, tmp_path: Path,
                              capsys: pytest.CaptureFixture[str], args: Any, field: str,
                              says: str) -> None:
    assert_refused(clis["export"], [str(study), *args(study, tmp_path)], CLI, field, capsys,
                   [tmp_path], says=says)


# --- score.py ---------------------------------------------------------------------------------


def _corrupt(study: Path, kind: str) -> tuple[str, str]:
    """Break one file of the study; (source, field) of the expected error."""
    trials = study / "trials"
    if kind == "truncated-generations":  # not the first trial: the old code rescored two
        path = trials / "cccc3333" / "generations.parquet"
        path.write_bytes(path.read_bytes()[:300])
        return str(study), "trial cccc3333"
    if kind == "garbage-generations":
        (trials / "bbbb2222" / "generations.parquet").write_bytes(os.urandom(2000))
        return str(study), "trial bbbb2222"
    if kind == "invalid-result-json":
        (trials / "cccc3333" / "result.json").write_text('{"pass@1": 0.3,')
        return str(study), "trial cccc3333"
    if kind == "config-not-an-object":
        (trials / "cccc3333" / "config.json").write_text("[1, 2]")
        return str(study), "trial cccc3333"
    if kind == "result-is-a-fifo":
        (trials / "cccc3333" / "result.json").unlink()
        os.mkfifo(trials / "cccc3333" / "result.json")
        return str(study), "trial cccc3333"
    if kind == "missing-space-file":
        meta = json.loads((study / "study.json").read_text())
        (study / "study.json").write_text(json.dumps({**meta, "space": str(study / "gone.yaml")}))
        return str(study / "study.json"), "space"
    if kind == "study-json-not-an-object":
        (study / "study.json").write_text("[]")
        return str(study / "study.json"), "space"
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["truncated-generations", "garbage-generations",
                                  "invalid-result-json", "config-not-an-object",
                                  "result-is-a-fifo", "missing-space-file",
                                  "study-json-not-an-object"])
def test_failed_rescore_leaves_the_study_byte_identical(clis: dict[str, Any], study: Path,
                                                        capsys: pytest.CaptureFixture[str],
                                                        kind: str) -> None:
    source, field = _corrupt(study, kind)
    assert_refused(clis["score"], [str(study), "--threshold", "0.7"], source, field, capsys,
                   [study.parent.parent])


@pytest.mark.parametrize(("args", "field"), [
    (["--threshold", "nan"], "--threshold"),
    (["--threshold", "2"], "--threshold"),
    (["--threshold", "abc"], "arguments"),
    (["--bogus"], "arguments"),
], ids=["threshold-nan", "threshold-above-1", "threshold-not-a-number", "unknown-option"])
def test_bad_score_arguments(clis: dict[str, Any], study: Path,
                             capsys: pytest.CaptureFixture[str], args: list[str],
                             field: str) -> None:
    assert_refused(clis["score"], [str(study), *args], CLI, field, capsys, [study.parent.parent])


def test_rescore_failing_while_writing_rolls_everything_back(
        study: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A failure after the new files were renamed into place (here: the leaderboard build)
    puts every original back: the study is byte for byte what it was, no temporary left."""
    import polychromic.tuning.rescore as R
    from polychromic.core.errors import ConfigError
    from polychromic.tuning.rescore import rescore_study

    before = snapshot(study)

    def boom(*_: Any, **__: Any) -> Any:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(R, "build_leaderboard", boom)  # the name rescore calls
    with pytest.raises(ConfigError, match="disk on fire"):
        rescore_study(study, threshold=0.7)
    assert snapshot(study) == before


def test_rescore_succeeds_and_leaves_no_temporary_files(study: Path) -> None:
    from polychromic.tuning.rescore import rescore_study

    before = snapshot(study)
    path = rescore_study(study, threshold=0.7)
    after = snapshot(study)
    assert path == study / "leaderboard.parquet" and path.is_file()
    history = {k for k in after if k.startswith("rescores")}
    # no .tmp, no .bak: the new leaderboard and the history of what was replaced
    assert set(after) == set(before) | {"leaderboard.parquet"} | history
    result = json.loads((study / "trials" / "bbbb2222" / "result.json").read_text())
    assert result["rescored"]["threshold"] == 0.7


def test_score_dry_run_changes_no_byte_and_a_real_rescore_can_be_undone(
        clis: dict[str, Any], study: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--dry-run`` prints old → new per trial and writes nothing (hashes before/after); a
    real run says in one line what it rewrote and where the previous files are; ``--undo``
    puts every byte back; ``--help`` says all of it."""
    score = clis["score"]
    assert score.main([str(study)]) == 0  # a first rescore writes the leaderboard
    capsys.readouterr()
    original = snapshot(study)
    assert score.main([str(study), "--threshold", "0.95", "--dry-run"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert snapshot(study) == original
    line = next(x for x in out if x.startswith("trial bbbb2222: "))
    old = json.loads((study / "trials" / "bbbb2222" / "result.json").read_text())["pass@1"]
    assert f"pass@1 {old:.4g} → 0" in line and "quality_mean" in line
    assert out[-1] == ("would rewrite 4 result.json, 4 generations.parquet and "
                       "leaderboard.parquet; nothing was written (--dry-run)")

    assert score.main([str(study), "--threshold", "0.95"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    history = sorted((study / "rescores").iterdir())[-1]  # the first rescore is [0]
    assert first == (f"rescored study tiny (threshold 0.95): rewrote 4 result.json, 4 "
                     f"generations.parquet and leaderboard.parquet; the previous files are in "
                     f"{history} (undo: python study/score.py {study} --undo)")
    assert json.loads((study / "trials" / "bbbb2222" / "result.json").read_text())["pass@1"] == 0
    kept = json.loads((history / "trials" / "bbbb2222" / "result.json").read_text())
    assert kept["pass@1"] == old  # the previous numbers are kept
    assert score.main([str(study), "--undo"]) == 0
    assert "put back 9 file(s)" in capsys.readouterr().out
    assert snapshot(study) == original  # byte for byte, the history gone with it
    assert score.main([str(study), "--undo"]) == 0 and not (study / "rescores").exists()
    capsys.readouterr()
    assert score.main([str(study), "--undo"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: command line: --undo: no rescore") and err.count("\n") == 1
    assert snapshot(study) != original  # that undid the first rescore: no leaderboard
    assert score.main(["--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    for needle in ("REWRITES, in place", "--dry-run", "--undo", "rescores/<UTC time>/",
                   "where named studies live"):
        assert needle in text, needle


# --- corrupt trials in the leaderboard and export --best ----------------------------------------


def test_corrupt_trials_show_as_corrupt_and_the_others_stay(study: Path) -> None:
    from polychromic.review.study import load_study

    trials = study / "trials"
    (trials / "cccc3333" / "result.json").write_text("{truncated")
    path = trials / "aaaa1111" / "generations.parquet"
    path.write_bytes(path.read_bytes()[:200])
    (trials / "eeee5555" / "config.json").write_text('"a string"')
    df = load_study(str(study)).frame.set_index("trial_id")
    assert len(df) == 7  # nothing vanished
    for tid, needle in (("cccc3333", "result.json"), ("aaaa1111", "generations.parquet"),
                        ("eeee5555", "config.json")):
        assert df.loc[tid, "status"] == "corrupt", tid
        assert needle in df.loc[tid, "error"], df.loc[tid, "error"]
        assert df.loc[tid, "status_text"].startswith("corrupt: ")
    assert df.loc["bbbb2222", "status"] == "finished"
    assert df.loc["base0000", "status"] == "finished"
    assert df.loc["dddd4444", "status"] == "error"


def test_leaderboard_cli_lists_a_corrupt_trial(clis: dict[str, Any], study: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    (study / "trials" / "bbbb2222" / "result.json").write_text("[1, 2]")
    code, out, err, _ = call(clis["leaderboard"], [str(study), "--format", "json"], capsys)
    assert code == 0, err
    rows = {r["trial_id"]: r for r in json.loads(out)}
    assert len(rows) == 7
    assert rows["bbbb2222"]["status"] == "corrupt"
    assert "result.json: not a JSON object" in rows["bbbb2222"]["error"]


def test_export_best_never_falls_back_past_a_corrupt_trial(clis: dict[str, Any], study: Path,
                                                           tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]
                                                           ) -> None:
    # bbbb2222 is the best trial; its result.json is cut: the runner-up must not be exported
    (study / "trials" / "bbbb2222" / "result.json").write_text('{"pass@1": 0.3, "sem')
    line = assert_refused(clis["export"], [str(study), "--out", str(tmp_path / "x")], CLI,
                          "--best", capsys, [tmp_path], says="bbbb2222")
    assert "corrupt" in line and "--trial" in line
    # naming a trial goes past the choice (this one has no checkpoint: a different refusal)
    line = assert_refused(clis["export"], [str(study), "--out", str(tmp_path / "x"), "--trial",
                                           "dddd4444"], CLI, "--trial", capsys, [tmp_path])
    assert "no checkpoint" in line


def test_html_report_write_failure_leaves_no_temporary_file(study: Path, tmp_path: Path) -> None:
    from polychromic.review.html_report import write_report
    from polychromic.review.study import load_study

    loaded = load_study(str(study))
    (tmp_path / "out").mkdir()
    target = _folder(tmp_path / "out" / "report.html")
    (target / "keep").write_text("mine")
    with pytest.raises(OSError):
        write_report(loaded, loaded.frame, target)
    assert sorted(p.name for p in target.parent.iterdir()) == ["report.html"]
    assert (target / "keep").read_text() == "mine"


# --- the same from the outside: real processes ---------------------------------------------------


def _run(script: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "WANDB_MODE": "disabled", "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, str(ROOT / "study" / script), *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=timeout)


def _one_line(proc: subprocess.CompletedProcess[str], head: str) -> str:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert len(lines) == 1 and lines[0].startswith(head), proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr + proc.stdout
    return lines[0]


def test_processes_refuse_in_one_line(study: Path, tmp_path: Path) -> None:
    before = snapshot(study)
    bomb = _write(tmp_path / "bomb.yaml", _alias_bomb())
    _one_line(_run("run.py", "--space", str(bomb), "--check"), f"error: {bomb}: (yaml): ")
    fifo = _fifo(tmp_path / "fifo.yaml")
    _one_line(_run("run.py", "--space", str(fifo), "--check", timeout=60),
              f"error: {fifo}: (file): ")
    _one_line(_run("export.py", str(study), "--out", str(study / "trials"), "--force"),
              "error: command line: --out: ")
    assert snapshot(study) == before
    _corrupt(study, "truncated-generations")
    before = snapshot(study)
    _one_line(_run("score.py", str(study), "--threshold", "0.7"),
              f"error: {study}: trial cccc3333: ")
    assert snapshot(study) == before
    proc = _run("leaderboard.py", str(study), "--format", "csv")
    assert proc.returncode == 0, proc.stderr
    row = next(line for line in proc.stdout.splitlines() if line.startswith("cccc3333,"))
    assert ",corrupt," in row
    assert "Traceback" not in proc.stderr


def test_rescore_rescores_the_frontier_too_and_undo_restores_it(study: Path) -> None:
    """A trial's ``frontier.parquet`` (its samples at every frontier temperature) gets the same
    new threshold as its generations, in the same all-or-nothing rescore; ``--undo`` puts the
    original back byte for byte."""
    import pandas as pd

    from polychromic.tuning.rescore import rescore_study, undo_last

    tdir = study / "trials" / "base0000"
    gens = pd.read_parquet(tdir / "generations.parquet")
    front = pd.concat([gens.assign(eval_temperature=t) for t in (0.5, 1.0)], ignore_index=True)
    pq.write_table(pa.Table.from_pandas(front, preserve_index=False), tdir / "frontier.parquet")
    before = snapshot(study)
    rescore_study(study, threshold=0.95)  # above the tiny study's 0.9: nothing passes now
    new = pd.read_parquet(tdir / "frontier.parquet")
    assert len(new) == len(front) and front["passed"].any()
    assert not new["passed"].any()
    assert (new["quality_threshold"] == 0.95).all()
    undo_last(study)
    assert snapshot(study) == before
