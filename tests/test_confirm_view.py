"""Selection vs confirmation in the HTML report and the model card, on hand-built studies with
confirmation runs written file by file (no Ray): the tiny study of test_review.py plus, per
seed pair, a run of the confirmed trial's configuration and one of the baseline's, tagged
``role: confirm`` and evaluated on fresh prompts (``v0``..``v3``), as ``study/confirm.py``
leaves them (see ``polychromic.review.leaderboard.add_confirmation``).

Confirming bbbb2222 (λ=1; selection pass@1 0.30 vs the baseline's 0.40, Δ = −0.1) with pass@1
of the pairs (trial, baseline) = (0.35, 0.40), (0.30, 0.40), (0.35, 0.45): the confirmation
delta is the mean of −0.05, −0.10, −0.10 = −1/12, so the shrinkage is −1/12 + 0.1 = +1/60
and 83% of the selection delta was kept.
"""

from __future__ import annotations

import dataclasses
import html.parser
import json
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import TRIALS, load_cli, tiny_generations, write_json_file, write_tiny_study

from polychromic.core import columns
from polychromic.review import confirmation as cv
from polychromic.review.study import load_study

#: pass@1 of (trial run, baseline run) of each seed pair confirming bbbb2222
PAIRS = ((0.35, 0.40), (0.30, 0.40), (0.35, 0.45))
HOSTILE = "x<img src=x onerror=alert(1)>\"'&amp;"


def write_confirm_run(study: Path, run_id: str, of: str, lam: float, seed: int, pass1: float,
                      gen_seed: int, status: str = "finished", same_embeddings: bool = False) -> None:
    """One confirmation run's folder: config.json (``role: confirm``, ``confirm_of``, the
    seed, ``eval_split: validation``), and when finished its fresh-prompt generations,
    result.json and status.json. ``same_embeddings``: every sample has one embedding (the
    run's semantic diversity is 0)."""
    from polychromic.core.config import TrialConfig
    from polychromic.metrics.aggregate import aggregate

    tdir = study / "trials" / run_id
    cfg = TrialConfig.from_dict({"model": "tiny", "lambda_": lam, "steps": 6, "n_eval_prompts": 4,
                                 "n_eval_samples": 5, "lora_r": 8, "seed": seed,
                                 "eval_split": "validation", "role": "confirm",
                                 "confirm_of": of}).to_dict()
    write_json_file(tdir / "config.json", cfg)
    if status != "finished":
        write_json_file(tdir / "status.json", {"status": status, "error": ""})
        return
    gens = tiny_generations(pass1, gen_seed)
    gens["prompt_id"] = "v" + gens["prompt_index"].astype(str)  # fresh prompts
    if same_embeddings:
        one = np.eye(8, dtype=np.float32)[0]
        gens["embedding"] = [one] * len(gens)
    gens.to_parquet(tdir / "generations.parquet", index=False)
    result = {k: v for k, v in aggregate(gens).items() if k != "metric_errors"}
    write_json_file(tdir / "result.json", {**result, "status": "finished", "error": "", "step": 6})
    write_json_file(tdir / "status.json", {"status": "finished", "error": ""})


def confirm(study: Path, of: str, pairs: tuple[tuple[float, float], ...] = PAIRS,
            lam: float = 1.0, prefix: str = "conf", **kwargs: Any) -> Path:
    for r, (trial_p1, base_p1) in enumerate(pairs):
        write_confirm_run(study, f"{prefix}{r}t", of, lam, 1 + r, trial_p1, 10 + r, **kwargs)
        write_confirm_run(study, f"{prefix}{r}b", of, 0.0, 1 + r, base_p1, 20 + r)
    return study


@pytest.fixture(scope="module")
def confirmed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return confirm(write_tiny_study(tmp_path_factory.mktemp("studies")), "bbbb2222")


def section(page: str) -> str:
    """The report's "Selection vs confirmation" section."""
    return page[page.index("<h2>Selection vs confirmation</h2>"):page.index("<h2>Leaderboard</h2>")]


def metric_row(sec: str, metric: str) -> list[str]:
    """The text of each cell of ``metric``'s row (SVG left out)."""
    row = re.search(rf'<tr><td class="l" title="{re.escape(metric)};.*?</tr>', sec, flags=re.S)
    assert row, metric
    cells = re.findall(r"<td[^>]*>(.*?)</td>", re.sub(r"<svg.*?</svg>", "", row[0], flags=re.S))
    return [re.sub(r"<[^>]+>", " ", c).strip() for c in cells]


# --- the HTML report ------------------------------------------------------------------------------


def test_report_puts_selection_and_confirmation_side_by_side(confirmed: Path, tmp_path: Path) -> None:
    cli = load_cli("leaderboard")
    out = tmp_path / "report.html"
    assert cli.main([str(confirmed), "--format", "csv", "-o", str(tmp_path / "x.csv"),
                     "--html", str(out)]) == 0
    page = out.read_text()
    sec = section(page)
    row = load_study(str(confirmed)).frame.set_index("trial_id").loc["bbbb2222"]
    # the confirmation runs are no rows of their own; the numbers of the hand-built pairs
    assert row["confirm_seeds"] == 3 and row["confirm_prompts"] == 4 and row["confirm_runs"] == 6
    assert row["delta_pass@1"] == pytest.approx(-0.1)
    assert row["confirm_delta_pass@1"] == pytest.approx(-1 / 12)
    assert 'id="confirm-bbbb2222"' in sec and 'href="#trial-bbbb2222"' in sec and "(λ=1)" in sec
    assert sec.count("<h3") == 1  # only the confirmed trial
    # where each delta comes from, in words
    assert "one training seed on 4 test prompts" in sec
    assert "best of 3 finished trials" in sec
    assert "3 new seed pair(s) × 4 fresh prompts" in sec and "two-level 95% CI" in sec
    assert "winner's curse" in sec
    metric, sel, con, shrink, _, state = metric_row(sec, "pass@1")
    assert metric == "pass@1 ↑ pass@1"
    assert sel == "-0.1 [-0.2, 0]"
    lo, hi = row["confirm_delta_pass@1_ci_low"], row["confirm_delta_pass@1_ci_high"]
    assert con == f"-0.0833 [{lo:+.3g}, {hi:+.3g}]"
    assert shrink == "+0.0167 (kept 83%)"  # −1/12 − (−0.1) = +1/60
    assert hi < 0 and row["confirmed_pass@1"] is True
    assert state == "confirmed (loss)"  # a confirmed drop of a higher-is-better metric
    # every headline metric of the study, named from the column catalog, with its definition
    shown = re.findall(r'<td class="l" title="([^;"]+);', sec)
    assert shown == ["semantic_diversity", "pass@1", "quality_mean",
                     *columns.HEADLINE_DIVERSITY]
    for m in shown:
        cells = metric_row(sec, m)
        assert cells[0].startswith(columns.short(m)), cells
        sel_d, con_d = row[f"delta_{m}"], row[f"confirm_delta_{m}"]
        assert cells[1].startswith(cv.signed(sel_d)) and cells[2].startswith(cv.signed(con_d))
        assert cells[3].startswith(cv.signed(con_d - sel_d))
        want = {True: "confirmed", False: "not confirmed"}[bool(row[f"confirmed_{m}"])]
        assert cells[5].split(" (")[0] == want
    assert 'title="self_bleu_per_prompt; Self-BLEU-4' in sec and "self-BLEU ↓" in sec
    assert "lies entirely on the same side of 0 as the selection delta" in sec  # the rule
    svgs = re.findall(r"<svg.*?</svg>", sec, flags=re.S)
    assert len(svgs) == 6
    for svg in svgs:
        ET.fromstring(svg)
    assert page.index("<h2>Verdict</h2>") < page.index("<h2>Selection vs confirmation</h2>")


def test_report_without_confirmation_says_how_to_run_it(tmp_path: Path) -> None:
    from polychromic.review.html_report import render_report

    study = load_study(str(write_tiny_study(tmp_path)))
    sec = section(render_report(study, study.frame))
    assert "No confirmation yet" in sec and "<table" not in sec
    assert f"<code>python study/confirm.py {study.path} --best --seeds 3</code>" in sec
    assert len(re.findall(r"<p", sec)) == 1  # one line


def test_report_of_an_unfinished_confirmation(tmp_path: Path) -> None:
    """Only the trial's run of the first pair finished: no pair to compare, said so."""
    from polychromic.review.html_report import render_report

    study_dir = write_tiny_study(tmp_path)
    write_confirm_run(study_dir, "conf0t", "aaaa1111", 0.1, 1, 0.45, 10)
    write_confirm_run(study_dir, "conf0b", "aaaa1111", 0.0, 1, 0.40, 20, status="running")
    study = load_study(str(study_dir))
    sec = section(render_report(study, study.frame))
    assert 'id="confirm-aaaa1111"' in sec and "<table" not in sec
    assert "1 of 2 run(s) finished, 0 complete seed pair(s) so far" in sec
    assert f"python study/confirm.py {study.path} --trial aaaa1111 --seeds 3" in sec


class _Tags(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.attrs: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attrs.update(name for name, _ in attrs)


def test_hostile_trial_id_and_study_name_are_escaped(tmp_path: Path) -> None:
    from polychromic.review.html_report import render_report

    trials = {("base0000" if k == "base0000" else HOSTILE if k == "bbbb2222" else k): v
              for k, v in TRIALS.items()}
    study_dir = confirm(write_tiny_study(tmp_path, name="s<script>alert(1)",
                                         trials=trials), HOSTILE, prefix="<marquee>run")
    study = load_study(str(study_dir))
    page = render_report(study, study.frame)
    parser = _Tags()
    parser.feed(page)
    assert not parser.tags & {"img", "script", "marquee"}
    assert "onerror" not in parser.attrs
    sec = section(page)
    assert f'id="confirm-{HOSTILE}"' not in sec
    assert "x&lt;img src=x onerror=alert(1)&gt;&quot;&#x27;&amp;amp;" in sec
    assert "Selection vs confirmation" in page and sec.count("<h3") == 1
    # the model card names the trial in markdown code, where nothing is interpreted
    row = study.frame[study.frame["trial_id"] == HOSTILE].iloc[0]
    card = _card(study, row)
    assert f"Trial `{HOSTILE}` (λ=1)" in card
    # no confirmation: the command in the hint is quoted for a shell, then escaped
    plain = load_study(str(write_tiny_study(tmp_path, name="a b<i>")))
    sec = section(render_report(plain, plain.frame))
    assert "<i>" not in sec and "&#x27;" in sec and "a b&lt;i&gt;&#x27; --best" in sec


# --- the model card ---------------------------------------------------------------------------------


def _card(study: Any, row: pd.Series) -> str:
    from polychromic.core.config import TrialConfig
    from polychromic.export.card import model_card, trial_record
    from polychromic.store.records import read_json

    cfg = TrialConfig.from_dict(read_json(study.trial_dir(str(row["trial_id"])) / "config.json"))
    record = trial_record(study, row, cfg, "adapter", Path("/nowhere/adapter"),
                          {"prompt": "Hi", "new_tokens": 8, "output": "hello"}, [])
    return model_card(study, row, cfg, "adapter", record)


def test_model_card_has_the_comparison_and_says_why_this_trial(confirmed: Path) -> None:
    from polychromic.review.study import choose_trial

    study = load_study(str(confirmed))
    row = choose_trial(study)  # the best by the objective: bbbb2222, its gain not confirmed
    assert row["trial_id"] == "bbbb2222"
    card = _card(study, row)
    assert ("**Why this trial:** best by semantic_diversity; its gain was not confirmed on "
            "fresh prompts and seeds.") in card
    block = card[card.index("### Selection vs confirmation"):card.index("### Headroom")]
    assert "Trial `bbbb2222` (λ=1). Selection: one training seed on 4 test prompts, this trial " \
           "picked as the best of 3 finished trials. Confirmation: 3 new seed pair(s) × 4 fresh " \
           "prompts" in block
    assert ("| metric | better | selection Δ [95% CI] | confirmation Δ [95% CI] | "
            "shrinkage (confirmation − selection) | |") in block
    frame = study.frame.set_index("trial_id").loc["bbbb2222"]
    lo, hi = frame["confirm_delta_pass@1_ci_low"], frame["confirm_delta_pass@1_ci_high"]
    assert (f"| pass@1 | ↑ | -0.1 [-0.2, 0] | -0.0833 [{lo:+.3g}, {hi:+.3g}] | "
            "+0.0167 (kept 83%) | confirmed (loss) |") in block
    assert "| self_bleu_per_prompt | ↓ |" in block
    assert "lies entirely on the same side of 0 as the selection delta" in block
    named = choose_trial(study, "aaaa")  # named by hand, never confirmed
    card = _card(study, named)
    assert ("**Why this trial:** named with --trial; not confirmed on fresh prompts and seeds "
            f"(run `python study/confirm.py {study.path} --trial aaaa1111 --seeds 3`).") in card
    record = json.loads(json.dumps(_record(study, named), default=str))
    assert record["chosen_because"].startswith("named with --trial; not confirmed")


def _record(study: Any, row: pd.Series) -> dict[str, Any]:
    from polychromic.core.config import TrialConfig
    from polychromic.export.card import trial_record
    from polychromic.store.records import read_json

    cfg = TrialConfig.from_dict(read_json(study.trial_dir(str(row["trial_id"])) / "config.json"))
    return trial_record(study, row, cfg, "adapter", Path("/nowhere/adapter"),
                        {"prompt": "Hi", "new_tokens": 8, "output": "hello"}, [])


def test_model_card_without_confirmation_says_how(tmp_path: Path) -> None:
    study = load_study(str(write_tiny_study(tmp_path)))
    card = _card(study, study.frame.iloc[0])
    block = card[card.index("### Selection vs confirmation"):card.index("### Headroom")]
    tid = study.frame["trial_id"].iloc[0]  # the card names its own trial, not --best
    assert f"`python study/confirm.py {study.path} --trial {tid} --seeds 3`" in block
    assert "| metric | better |" not in block


def test_export_prefers_a_confirmed_gain_never_a_confirmed_loss(tmp_path: Path) -> None:
    """cccc3333 (third by the objective, semantic_diversity, with a positive selection delta)
    is confirmed: its baseline runs' samples all share one embedding, so the confirmation
    delta is large and positive. bbbb2222 (first, negative selection delta) is "confirmed"
    too, but as a loss: its own runs' samples share one embedding. The export takes cccc3333
    and the card says why."""
    from polychromic.review.study import choose_trial

    study_dir = write_tiny_study(tmp_path)
    confirm(study_dir, "bbbb2222", prefix="lossy", same_embeddings=True)
    for r in range(3):  # cccc3333: λ=3 runs with random embeddings, baselines collapsed
        write_confirm_run(study_dir, f"gain{r}t", "cccc3333", 3.0, 1 + r, 0.3, 30 + r)
        write_confirm_run(study_dir, f"gain{r}b", "cccc3333", 0.0, 1 + r, 0.4, 40 + r,
                          same_embeddings=True)
    study = load_study(str(study_dir))
    frame = study.frame.set_index("trial_id")
    assert frame.loc["bbbb2222", "delta_semantic_diversity"] < 0
    assert frame.loc["bbbb2222", "confirmed_semantic_diversity"] is True  # a confirmed loss
    assert frame.loc["cccc3333", "delta_semantic_diversity"] > 0
    assert frame.loc["cccc3333", "confirmed_semantic_diversity"] is True
    row = choose_trial(study)
    assert row["trial_id"] == "cccc3333"
    card = _card(study, row)
    why = re.search(r"\*\*Why this trial:\*\* (.*)", card)[1]
    assert why.startswith("confirmed on fresh prompts and seeds (semantic_diversity;")
    assert why.endswith("preferred over the unconfirmed top trial bbbb2222.")
    block = card[card.index("### Selection vs confirmation"):card.index("### Headroom")]
    assert block.index("Trial `cccc3333`") < block.index("Trial `bbbb2222`")  # exported first
    gain = re.search(r"\| semantic_diversity \| ↑ \|.*", block[:block.index("Trial `bbbb2222`")])
    assert gain[0].endswith("| confirmed (gain) |")
    loss = re.search(r"\| semantic_diversity \| ↑ \|.*", block[block.index("Trial `bbbb2222`"):])
    assert loss[0].endswith("| confirmed (loss) |")


# --- study/score.py ---------------------------------------------------------------------------------


def test_score_prints_the_default_terminal_view(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    study_dir = write_tiny_study(tmp_path)
    assert load_cli("score").main([str(study_dir)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("rescored study tiny: rewrote 4 result.json and leaderboard.parquet; "
                          f"the previous files are in {study_dir / 'rescores'}/")
    assert "study tiny: 7 of 7 trials" in out  # the title of polychromic.review.terminal's view
    assert "vs the λ=0 baseline (trial base0000):" in out and "λ=0.1:" in out
    assert "sem div ↑" in out and "study tiny (rescored)" not in out  # not the old table
    assert out.rstrip().endswith(f"leaderboard: {(study_dir / 'leaderboard.parquet').resolve()}")
    assert max(len(line) for line in out.splitlines()[1:-1]) <= 100  # the view


def test_confirm_view_of_a_frame_without_confirmation_columns(tmp_path: Path) -> None:
    """An older leaderboard (no confirm_* columns): nothing to compare, no error."""
    study = load_study(str(write_tiny_study(tmp_path)))
    old = study.frame.drop(columns=[c for c in study.frame.columns if "confirm" in c])
    assert cv.comparisons(dataclasses.replace(study, frame=old)) == []
    assert cv.confirmed_state(np.bool_(True)) == cv.CONFIRMED
    assert cv.confirmed_state(0.0) == cv.NOT_CONFIRMED
    assert cv.confirmed_state(float("nan")) == cv.NOT_JUDGED
    shutil.rmtree(tmp_path / "tiny")


def test_export_and_confirm_best_take_the_same_lambda_trial_when_the_baseline_ranks_first(
        tmp_path: Path) -> None:
    """On a diversity objective the λ=0 baseline can rank first (the demo study did). "Best"
    is one rule (``choose_trial``) for ``export --best``, ``confirm --best``, the review's
    caption and the model card: the best λ>0 trial, with one line saying that the baseline
    beat it, its delta with the interval, and how to export the baseline instead."""
    from conftest import TRIALS

    from polychromic.review.format import captions
    from polychromic.review.study import choose_trial

    trials = dict(TRIALS)
    trials["base0000"] = (0.0, 0.40, 0.95, 0.30, "finished", False, 1800.0)  # most diverse
    study = load_study(str(write_tiny_study(tmp_path, trials=trials)))
    assert bool(study.frame["is_baseline"].iloc[0])  # the baseline ranks first
    exported, confirmed = choose_trial(study), choose_trial(study, action="confirm")
    others = study.frame[~study.frame["is_baseline"].astype(bool)]
    assert exported["trial_id"] == confirmed["trial_id"] == others["trial_id"].iloc[0]
    assert not bool(exported["is_baseline"])
    d = study.frame.set_index("trial_id").loc[exported["trial_id"]]
    delta = (f"Δ semantic_diversity {d['delta_semantic_diversity']:+.2g} "
             f"[{d['delta_semantic_diversity_ci_low']:+.2g}, "
             f"{d['delta_semantic_diversity_ci_high']:+.2g}]")
    assert exported["chosen_because"] == (
        "no λ>0 trial beat the λ=0 baseline in the study's order (Pareto rank on "
        "semantic_diversity, pass@1, then semantic_diversity); exporting trial "
        f"{exported['trial_id']}, the best λ>0 trial ({delta}); pass --trial base0000 to "
        "export the baseline")
    assert confirmed["chosen_because"].startswith("no λ>0 trial beat the λ=0 baseline")
    assert "confirming trial" in confirmed["chosen_because"]
    # confirm.py's first line names the trial once, then why, then on what
    from polychromic.review.study import confirm_intro

    tid = confirmed["trial_id"]
    assert confirm_intro(confirmed, "base0000", 2, 24, 4) == (
        f"confirming trial {tid} (no λ>0 trial beat the λ=0 baseline in the study's order "
        "(Pareto rank on semantic_diversity, pass@1, then semantic_diversity); the best λ>0 "
        f"trial ({delta})) against baseline base0000: 2 seed pairs × 24 fresh prompts (4 runs)")
    best = [c for c in captions(study, study.frame) if c.startswith("best λ>0 trial")]
    assert best == [f"best λ>0 trial (export/confirm --best): {exported['trial_id']}; no λ>0 "
                    "trial beat the λ=0 baseline in the study's order (Pareto rank on "
                    f"semantic_diversity, pass@1, then semantic_diversity) ({delta})"]
    # the card of that trial: every Δ has an interval, and one confirm command, --trial ID
    card = _card(study, exported)
    assert "**Why this trial:** no λ>0 trial beat the λ=0 baseline" in card
    table = card[card.index("| metric | this trial |"):card.index("MDE = minimum")]
    rows = [r for r in table.splitlines()[2:] if r.startswith("| ")]
    assert rows and all("[" in r.split(" | ")[3] for r in rows if "pass@5" not in r), rows
    commands = set(re.findall(r"python study/confirm\.py [^`]*", card))
    assert commands == {f"python study/confirm.py {study.path} --trial "
                        f"{exported['trial_id']} --seeds 3"}, commands
    plain = load_study(str(write_tiny_study(tmp_path, name="plain")))  # baseline not first
    assert choose_trial(plain)["chosen_because"] == "best by semantic_diversity"
    assert choose_trial(plain, by="pass@1")["chosen_because"] == "best λ>0 trial by pass@1"


# --- the gains against the baseline's temperature frontier (issue 20) ---------------------------

#: pass@1 of the study's baseline at each frontier temperature (its eval temperature 1.0 too)
STUDY_FRONTIER = {0.5: 0.6, 0.7: 0.5, 1.0: 0.4, 1.2: 0.2}
GAIN = "frontier_gain_semantic_diversity_per_prompt_at_pass@1"


def write_frontier(tdir: Path, pass1: dict[float, float], seed: int, fresh: bool) -> None:
    """``frontier.parquet`` of one λ=0 run: ``tiny_generations`` at each temperature (``fresh``:
    on the confirmation prompts v0..v3)."""
    parts = []
    for i, (t, p1) in enumerate(pass1.items()):
        g = tiny_generations(p1, seed + i).assign(eval_temperature=t)
        if fresh:
            g["prompt_id"] = "v" + g["prompt_index"].astype(str)
        parts.append(g)
    pd.concat(parts, ignore_index=True).to_parquet(tdir / "frontier.parquet", index=False)


@pytest.fixture(scope="module")
def confirmed_frontier(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The confirmed study, the study's baseline and each confirmation baseline run with a
    temperature frontier (the confirmation's on the fresh prompts, around that run's pass@1)."""
    study = confirm(write_tiny_study(tmp_path_factory.mktemp("frontier")), "bbbb2222")
    write_frontier(study / "trials" / "base0000", STUDY_FRONTIER, 40, fresh=False)
    for r, (_, base_p1) in enumerate(PAIRS):
        write_frontier(study / "trials" / f"conf{r}b",
                       {0.5: base_p1 + 0.2, 0.7: base_p1 + 0.1, 1.0: base_p1,
                        1.2: base_p1 - 0.2}, 60 + 10 * r, fresh=True)
    return study


def test_confirmation_gain_is_the_mean_of_each_pairs_gain_against_its_own_frontier(
        confirmed_frontier: Path) -> None:
    from polychromic.metrics.aggregate import aggregate
    from polychromic.stats.frontier import frontier_at

    row = load_study(str(confirmed_frontier)).frame.set_index("trial_id").loc["bbbb2222"]
    by_hand = []
    for r in range(len(PAIRS)):  # each pair's trial against its own baseline's frontier
        front = pd.read_parquet(confirmed_frontier / "trials" / f"conf{r}b" / "frontier.parquet")
        pts = [aggregate(g.drop(columns="eval_temperature"))
               for _, g in front.groupby("eval_temperature")]
        trial = aggregate(pd.read_parquet(confirmed_frontier / "trials" / f"conf{r}t"
                                          / "generations.parquet"))
        hull = frontier_at(np.array([p["pass@1"] for p in pts]),
                           np.array([p["semantic_diversity_per_prompt"] for p in pts]),
                           np.array(trial["pass@1"]))
        by_hand.append(trial["semantic_diversity_per_prompt"] - float(hull))
    c = f"confirm_{GAIN}"
    assert row[c] == pytest.approx(np.mean(by_hand))
    assert row[f"{c}_ci_low"] < row[c] < row[f"{c}_ci_high"]
    # the trial's pass@1 lies well inside every pair's range: defined in every resample
    assert row["confirm_frontier_defined_semantic_diversity_per_prompt_at_pass@1"] == 1.0
    assert row["confirm_frontier"] == "T = 0.5, 0.7, 1, 1.2 in each of 3 seed pair(s)"
    # pass@1 against each pair baseline's best temperature (T=0.5: its pass@1 + 0.2)
    assert row["confirm_delta_pass@1_vs_best_T"] == pytest.approx(
        np.mean([t - (b + 0.2) for t, b in PAIRS]))
    # the confirmation rule of every metric, against the study's selection gain
    sel = row[GAIN]
    assert np.isfinite(sel)
    want = row[f"{c}_ci_low"] > 0 if sel > 0 else row[f"{c}_ci_high"] < 0
    assert row[f"confirmed_{GAIN}"] == want
    # the gain in pass@1 at equal semantic diversity: outside two pairs' ranges, no number
    other = "pass@1_at_semantic_diversity_per_prompt"
    assert np.isnan(row[f"confirm_frontier_gain_{other}"])
    assert np.isnan(row[f"confirmed_frontier_gain_{other}"])
    assert row[f"confirm_frontier_range_{other}"].startswith(
        "outside the baseline's range in 2 of 3 seed pair(s)")
    # the Optuna attributes and trial.json carry the study's frontier columns, not the
    # confirmation's (like every other confirm_* column)
    from polychromic.review.frontier import frontier_columns

    carried = frontier_columns(row.index)
    assert GAIN in carried and "delta_pass@1_vs_best_T" in carried
    assert not [c for c in carried if c.startswith("confirm")]


def test_report_and_card_show_the_frontier_gains_beside_the_other_metrics(
        confirmed_frontier: Path) -> None:
    from polychromic.review.html_report import render_report

    study = load_study(str(confirmed_frontier))
    row = study.frame.set_index("trial_id").loc["bbbb2222"]
    sec = section(render_report(study, study.frame))
    shown = re.findall(r'<td class="l" title="([^;"]+);', sec)
    assert shown[-4:] == [GAIN, "frontier_gain_distinct_2_per_prompt_at_pass@1",
                          "frontier_gain_self_bleu_per_prompt_at_pass@1", "pass@1_vs_best_T"]
    cells = metric_row(sec, GAIN)
    assert cells[0].startswith("sem div @ pass@1 vs T")
    assert cells[1].startswith(cv.signed(row[GAIN]))
    assert cells[2] == cv.interval(row[f"confirm_{GAIN}"], row[f"confirm_{GAIN}_ci_low"],
                                   row[f"confirm_{GAIN}_ci_high"])
    assert cells[5].split(" (")[0] == cv.confirmed_state(row[f"confirmed_{GAIN}"])
    cells = metric_row(sec, "pass@1_vs_best_T")
    assert cells[1].startswith(cv.signed(row["delta_pass@1_vs_best_T"]))
    assert cells[2].startswith(cv.signed(row["confirm_delta_pass@1_vs_best_T"]))
    assert "against each seed pair&#x27;s own λ=0 temperature frontier" in sec
    assert "Rows vs T: Δ = the gain against the λ=0 baseline" in sec
    assert "frontier: not measured" not in sec
    block = _card(study, study.frame[study.frame["trial_id"] == "bbbb2222"].iloc[0])
    block = block[block.index("### Selection vs confirmation"):block.index("### Headroom")]
    assert f"| {GAIN} | ↑ | {cv.interval(row[GAIN], row[f'{GAIN}_ci_low'], row[f'{GAIN}_ci_high'])}" \
        in block
    assert "| pass@1_vs_best_T | ↑ |" in block and "Rows vs T: Δ = the gain" in block
    # the card's own section against the study's frontier: the --trial rows
    card = _card(study, study.frame[study.frame["trial_id"] == "bbbb2222"].iloc[0])
    frontier = card[card.index("### Against the baseline's temperature frontier"):
                    card.index("### Selection vs confirmation")]
    assert "sampled at T = 0.5, 0.7, 1, 1.2" in frontier
    assert (f"| sem div at equal pass@1 | {cv.signed(row[GAIN]):s} |" in frontier
            or f"| sem div at equal pass@1 | {row[GAIN]:+.3g} |" in frontier)
    assert "| pass@1 vs best T | " in frontier and "baseline's best: 0.6 at T=0.5" in frontier


def test_a_study_without_frontiers_says_not_measured_in_the_confirmation(
        confirmed: Path) -> None:
    """Old studies: neither the study's baseline nor the confirmation's λ=0 runs have a
    frontier; the confirmation line, the report's section and the card say so, and no frontier
    row is shown."""
    from polychromic.review.html_report import render_report

    study = load_study(str(confirmed))
    row = study.frame.set_index("trial_id").loc["bbbb2222"]
    assert row["confirm_frontier"].startswith("not measured (the confirmation's λ=0 runs")
    assert row["confirmation"].endswith("; frontier: not measured")
    assert np.isnan(row[f"confirm_{GAIN}"]) and np.isnan(row[f"confirmed_{GAIN}"])
    sec = section(render_report(study, study.frame))
    assert "frontier: not measured (the confirmation&#x27;s λ=0 runs" in sec
    assert "vs T" not in sec
    block = _card(study, study.frame[study.frame["trial_id"] == "bbbb2222"].iloc[0])
    block = block[block.index("### Selection vs confirmation"):block.index("### Headroom")]
    assert "frontier: not measured (the confirmation's λ=0 runs" in block
    assert "frontier_gain" not in block
    card = _card(study, study.frame[study.frame["trial_id"] == "bbbb2222"].iloc[0])
    frontier = card[card.index("### Against the baseline's temperature frontier"):
                    card.index("### Selection vs confirmation")]
    assert "frontier: not measured (the λ=0 baseline has no frontier.parquet" in frontier


def test_a_confirmation_frontier_without_the_studys_is_not_judged(tmp_path: Path) -> None:
    """An old study (its baseline has no frontier) confirmed after the frontier existed: the
    confirmation's gains have numbers, the selection has none, and the view says why."""
    study_dir = confirm(write_tiny_study(tmp_path), "bbbb2222")
    for r, (_, base_p1) in enumerate(PAIRS):
        write_frontier(study_dir / "trials" / f"conf{r}b",
                       {0.5: base_p1 + 0.2, 1.0: base_p1, 1.2: base_p1 - 0.2}, 60 + r, fresh=True)
    study = load_study(str(study_dir))
    t = cv.comparisons(study)[0]
    m = next(m for m in t.metrics if m.metric == GAIN)
    assert np.isnan(m.selection) and np.isfinite(m.confirmation)
    assert cv.state_text(m) == "not judged (the study's frontier: not measured)"
    block = _card(study, study.frame[study.frame["trial_id"] == "bbbb2222"].iloc[0])
    assert "not judged (the study's frontier: not measured)" in block
    assert "frontier: not measured (the λ=0 baseline has no frontier.parquet" in block


def test_trial_view_shows_the_confirmation_beside_the_frontier_gains(
        confirmed_frontier: Path) -> None:
    """``--trial``: the table against the frontier gets a confirm column (the two-level gain
    and its state); a trial without a confirmation gets none."""
    import os

    from rich.console import Console

    from polychromic.review.confirm_frontier import cell
    from polychromic.review.terminal import print_trial

    study = load_study(str(confirmed_frontier))
    row = study.frame.set_index("trial_id").loc["bbbb2222"]

    def shown(tid: str) -> str:
        console = Console(width=250, record=True, file=open(os.devnull, "w"))  # noqa: SIM115
        print_trial(study, tid, console=console)
        return console.export_text()

    out = shown("bbbb2222")
    c = f"confirm_{GAIN}"
    text = cell(row, GAIN)
    assert text == (f"{row[c]:+.3g} [{row[f'{c}_ci_low']:+.3g}, {row[f'{c}_ci_high']:+.3g}] "
                    + cv.confirmed_state(row[f"confirmed_{GAIN}"]))
    line = next(li for li in out.splitlines() if "sem div at equal pass@1" in li)
    assert text in line
    assert cell(row, "frontier_gain_pass@1_at_semantic_diversity_per_prompt") == (
        "outside the baseline's range in 2 of 3 seed pair(s)")
    def header(out: str) -> str:
        return next(li for li in out.splitlines() if "against the frontier" in li)

    assert header(out).split()[-1] == "confirm"
    assert "confirm" not in header(shown("aaaa1111"))
