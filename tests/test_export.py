"""study/export.py on the tiny study of test_review.py, with real peft LoRA adapters saved from
the ``tiny`` model (2-layer Llama) whose LoRA B weights were perturbed, so the adapter changes
the model. Exports are reloaded the way users load them (``PeftModel.from_pretrained``,
``AutoModelForCausalLM.from_pretrained``) and generate greedily on a fixed prompt."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import load_cli, one_line_error, write_tiny_study

from polychromic.core.config import TrialConfig

PROMPT = "The weather today is"
TOKENS = 6


@pytest.fixture(scope="module")
def adapter_src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real, non-trivial LoRA adapter of the tiny model (B ≠ 0, so base + adapter ≠ base)."""
    from polychromic.models.loading import load_for_training

    model, _ = load_for_training(TrialConfig.from_dict({"model": "tiny", "lora_r": 8}),
                                 torch.device("cpu"))
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=gen) * 0.5)
    out = tmp_path_factory.mktemp("adapter") / "adapter"
    model.save_pretrained(str(out))
    return out


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory: pytest.TempPathFactory, adapter_src: Path) -> Path:
    return write_tiny_study(tmp_path_factory.mktemp("studies"),
                            adapters={"bbbb2222": adapter_src, "eeee5555": adapter_src},
                            headroom=True)


@pytest.fixture(scope="module")
def cli() -> Any:
    return load_cli("export")


def greedy_ids(model: Any, tok: Any, prompt: str = PROMPT, n: int = TOKENS) -> list[int]:
    inputs = tok(prompt, return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=n, min_new_tokens=n, do_sample=False,
                             pad_token_id=tok.pad_token_id)
    return out[0, inputs["input_ids"].shape[1]:].tolist()


def base_model() -> Any:
    from polychromic.models.loading import load_base

    model, tok = load_base(TrialConfig.from_dict({"model": "tiny"}), torch.device("cpu"))
    return model.eval(), tok


@pytest.fixture(scope="module")
def adapter_export(study_dir: Path, cli: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("exports") / "best"
    assert cli.main([str(study_dir), "--out", str(out)]) == 0
    return out


def test_best_adapter_export_reloads_and_generates(adapter_export: Path, adapter_src: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from peft import PeftModel
    from safetensors.torch import load_file

    out = adapter_export
    for name in ("adapter_config.json", "adapter_model.safetensors", "tokenizer.json",
                 "tokenizer_config.json", "README.md", "trial.json"):
        assert (out / name).is_file(), name
    record = json.loads((out / "trial.json").read_text())
    assert record["trial_id"] == "bbbb2222"  # first in the study's order and finished
    assert record["mode"] == "adapter" and record["study"] == "tiny"
    assert record["config"]["lambda_"] == 1.0 and record["baseline"]["trial_id"] == "base0000"
    assert record["metrics"]["semantic_diversity"] == pytest.approx(0.8)
    assert len(record["verification"]["ids"]) == 8
    # the adapter is the trial's checkpoint, byte for byte, and not a zero adapter
    exported = load_file(str(out / "adapter_model.safetensors"))
    source = load_file(str(adapter_src / "adapter_model.safetensors"))
    assert exported.keys() == source.keys()
    assert all(torch.equal(exported[k], source[k]) for k in source)
    assert any("lora_B" in k and exported[k].abs().sum() > 0 for k in exported)

    base, tok = base_model()
    plain = greedy_ids(base, tok, "Hi, how are you doing?", 8)
    model = PeftModel.from_pretrained(base, str(out)).eval()
    ids = greedy_ids(model, tok, "Hi, how are you doing?", 8)
    assert ids == record["verification"]["ids"]  # the export's own check saw the same
    assert ids != plain  # the perturbed adapter changes the greedy output

    card = (out / "README.md").read_text()
    today = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    # no base_model: front matter for a base that is no Hub id, and no cache path of this
    # machine in the loading code
    from polychromic.core.embedded import cache_root

    assert "base_model:" not in card.split("\n---\n")[0] and str(cache_root()) not in card
    assert "`base_model` is left out of the front matter: `tiny`" in card
    assert "BASE_MODEL = resolve_model_path('tiny')" in card
    for needle in ("library_name: peft", "# tiny / trial bbbb2222",
                   "λ = 1", "| semantic_diversity | 0.8 | 0.5 |", "definition", "## Data",
                   "Task `chitchat`", today, "PeftModel.from_pretrained", "base0000"):
        assert needle in card, needle
    # the verdict line, MDE beside each delta, the headroom of the headline diversity metrics
    assert f"**Verdict** (vs the λ = 0 baseline): {record['verdict']}" in card
    assert record["verdict"].startswith("λ=1:")
    assert "| metric | this trial | baseline | Δ vs baseline | MDE | definition |" in card
    assert "### Headroom of the diversity metrics" in card
    rows = {x.split(" | ")[0][2:]: x for x in card.splitlines() if x.count("%") >= 2}
    for metric in ("semantic_diversity_per_prompt", "distinct_2_per_prompt",
                   "self_bleu_per_prompt"):
        assert metric in rows, metric  # floor | ceiling | headroom (baseline) | (this trial)
    # the baseline's random embeddings are as diverse as unrelated texts
    assert rows["semantic_diversity_per_prompt"].endswith("at ceiling: no gain on it can be "
                                                          "shown |")
    assert record["deltas_vs_baseline"]["pass@1"]["mde"] > 0
    assert "semantic_diversity_per_prompt" in record["baseline"]["headroom"]


def test_merged_export_equals_base_plus_adapter(study_dir: Path, adapter_export: Path, cli: Any,
                                                tmp_path: Path) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    merged_dir = tmp_path / "merged"
    assert cli.main([str(study_dir), "--out", str(merged_dir), "--trial", "bbbb", "--merge"]) == 0
    assert not (merged_dir / "adapter_config.json").exists()
    config = json.loads((merged_dir / "config.json").read_text())
    assert "quantization_config" not in config
    record = json.loads((merged_dir / "trial.json").read_text())
    assert record["mode"] == "merged" and record["trial_id"] == "bbbb2222"
    assert record["verification"]["matches_base_plus_adapter"] is True
    assert record["verification"]["dtype"] == "float32"

    merged = AutoModelForCausalLM.from_pretrained(str(merged_dir)).eval()
    merged_tok = AutoTokenizer.from_pretrained(str(merged_dir))
    base, tok = base_model()
    q = "model.layers.0.self_attn.q_proj.weight"
    assert not torch.allclose(merged.state_dict()[q], base.state_dict()[q])  # really merged
    with_adapter = PeftModel.from_pretrained(base, str(adapter_export)).eval()
    expected = greedy_ids(with_adapter, tok)
    assert greedy_ids(merged, merged_tok) == expected
    assert "library_name: transformers" in (merged_dir / "README.md").read_text()


def test_refusals_are_one_line(study_dir: Path, cli: Any, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "keep.txt").write_text("mine")
    assert cli.main([str(study_dir), "--out", str(occupied)]) == 2
    assert "not empty" in one_line_error(capsys.readouterr().err)
    assert (occupied / "keep.txt").read_text() == "mine"

    assert cli.main([str(study_dir), "--out", str(tmp_path / "x"), "--trial", "zzzz9999"]) == 2
    line = one_line_error(capsys.readouterr().err)
    assert "zzzz9999" in line and "does not exist" in line and "bbbb2222" in line

    assert cli.main([str(tmp_path / "no-such-study"), "--out", str(tmp_path / "x")]) == 2
    assert "no study" in one_line_error(capsys.readouterr().err)

    # a failed trial named explicitly: no checkpoint to export
    assert cli.main([str(study_dir), "--out", str(tmp_path / "x"), "--trial", "dddd4444"]) == 2
    line = one_line_error(capsys.readouterr().err)
    assert "dddd4444" in line and "no checkpoint" in line

    # ranked by training loss the early-stopped trial wins: refused unless named
    assert cli.main([str(study_dir), "--out", str(tmp_path / "x"), "--best", "--by",
                     "final_quality_loss"]) == 2
    line = one_line_error(capsys.readouterr().err)
    assert "eeee5555" in line and "early-stopped" in line and "--trial eeee5555" in line

    assert cli.main([str(study_dir), "--out", str(tmp_path / "x"), "--trial", "bbbb2222",
                     "--by", "pass@1"]) == 2
    one_line_error(capsys.readouterr().err)
    assert cli.main([str(study_dir), "--out", str(study_dir), "--force"]) == 2
    assert "refusing" in one_line_error(capsys.readouterr().err)
    assert (study_dir / "study.json").is_file()
    assert not (tmp_path / "x").exists()  # nothing was written by any refused export


def test_force_replaces_and_explicit_early_stopped_trial_exports(
        study_dir: Path, cli: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old")
    assert cli.main([str(study_dir), "--out", str(out), "--trial", "eeee5555", "--force"]) == 0
    captured = capsys.readouterr()
    assert "warning: trial eeee5555 is early-stopped" in captured.err
    assert not (out / "old.txt").exists()
    assert json.loads((out / "trial.json").read_text())["status"] == "early_stopped"
    assert "**Warning:** this trial is early-stopped" in (out / "README.md").read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no temporary folder left behind


def test_study_moved_to_another_folder_still_exports(study_dir: Path, cli: Any,
                                                     tmp_path: Path) -> None:
    """result.json holds absolute checkpoint paths; a copied study finds its own checkpoints."""
    moved = tmp_path / "elsewhere" / "tiny"
    shutil.copytree(study_dir, moved)
    original = json.loads((moved / "trials" / "bbbb2222" / "result.json").read_text())
    result = {**original, "checkpoint_path": "/gone/trials/bbbb2222/train/"
              + Path(original["checkpoint_path"]).name}
    (moved / "trials" / "bbbb2222" / "result.json").write_text(json.dumps(result))
    out = tmp_path / "export"
    assert cli.main([str(moved), "--out", str(out)]) == 0
    source = json.loads((out / "trial.json").read_text())["source_checkpoint"]
    assert source.startswith(str(moved.resolve()))


def test_best_on_a_study_whose_baseline_ranks_first(adapter_src: Path, cli: Any, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """The baseline ranks first (most diverse): ``export --best`` exports the trial that
    ``confirm --best`` confirms (one rule, ``choose_trial``), says why in one line, and its
    card has intervals and one confirm command."""
    import re

    from conftest import TRIALS

    from polychromic.review.study import choose_trial, load_study

    trials = dict(TRIALS)
    trials["base0000"] = (0.0, 0.40, 0.95, 0.30, "finished", False, 1800.0)
    study_dir = write_tiny_study(tmp_path, trials=trials,
                                 adapters={"base0000": adapter_src, "aaaa1111": adapter_src})
    out = tmp_path / "best"
    assert cli.main([str(study_dir), "--out", str(out), "--best"]) == 0
    chosen = [x for x in capsys.readouterr().out.splitlines() if x.startswith("chosen: ")]
    confirm_pick = choose_trial(load_study(str(study_dir)), action="confirm")
    record = json.loads((out / "trial.json").read_text())
    assert record["trial_id"] == confirm_pick["trial_id"] == "aaaa1111"
    assert chosen == [f"chosen: {record['chosen_because']}"]
    assert chosen[0].startswith("chosen: no λ>0 trial beat the λ=0 baseline")
    assert "pass --trial base0000 to export the baseline" in chosen[0]
    card = (out / "README.md").read_text()
    assert re.search(r"\| semantic_diversity \| 0.55 \| 0.95 \| -[0-9.]+ \[-[0-9.]+, \+[0-9.]+\] ", card)
    assert set(re.findall(r"python study/confirm\.py [^`]*", card)) == {
        f"python study/confirm.py {record['study_path']} --trial aaaa1111 --seeds 3"}
