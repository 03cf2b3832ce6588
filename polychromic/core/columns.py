"""The column catalog: every metric and knob a study reports, listed once.

Each entry says when it is measured (``stage``), what it is about (``family``), which direction
is better (``better``), whether a diversity metric is measured within one prompt's samples or
over the whole corpus (``level``), a short display name and its definition. Space validation,
aggregation, the leaderboard, the review table, the HTML report and the model card read their
lists and directions from here, so adding a metric is one edit in this file (plus the function
that computes it).

Standard library only: space validation and review import it without numpy, NLTK or Ray.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: the k of pass@k that evaluation reports, besides k = n_eval_samples
PASS_KS = (1, 5, 10)


@dataclass(frozen=True)
class Column:
    """One metric or knob of the leaderboard."""

    name: str
    stage: str
    """``knob`` (a TrialConfig field), ``training`` (reported during training), ``evaluation``
    (from the held-out generations), ``review`` (computed when a study is read)."""
    family: str
    """``quality``, ``diversity``, ``length``, ``loss``, ``cost``, ``knob`` or ``other``."""
    better: str | None
    """``max`` / ``min``: which direction is better; None when neither is."""
    short: str
    definition: str
    level: str = ""
    """Diversity metrics: ``per_prompt`` (within one prompt's samples, mean over prompts: what
    the set objective is about) or ``corpus`` (all samples of all prompts together)."""
    headline: bool = False
    """Leads the terminal table and the verdict."""


_PER_PROMPT = "within each prompt's samples, mean over prompts"
_CORPUS = "over all samples of all prompts (dominated by how different the prompts are)"

_ENTRIES = (
    # --- knobs -------------------------------------------------------------------------------
    Column("lambda_", "knob", "knob", None, "λ", "weight of the polychromic term in the loss"),
    Column("n_generations", "knob", "knob", None, "n_gen",
           "samples per prompt on a diversity step"),
    Column("compute_every_n_steps", "knob", "knob", None, "every_n",
           "a diversity step every this many optimizer steps"),
    Column("max_examples_for_diversity", "knob", "knob", None, "max_ex_div",
           "prompts of the batch sampled on a diversity step"),
    Column("diversity_measure", "knob", "knob", None, "d(S)",
           "the set diversity d(S) the objective rewards"),
    Column("class_threshold", "knob", "knob", None, "class cos",
           "embedding cosine at which two samples are one equivalence class "
           "(semantic_classes, distinct_classes)"),
    Column("generation_backend", "knob", "knob", None, "gen",
           "who samples completions: hf (transformers generate), vllm, or auto (vLLM where "
           "CUDA and vLLM are present, else HF)"),
    Column("lora_r", "knob", "knob", None, "lora_r", "LoRA rank"),
    Column("learning_rate", "knob", "knob", None, "lr", "AdamW learning rate"),
    # --- training reports ----------------------------------------------------------------------
    Column("quality_loss", "training", "loss", "min", "CE", "SFT cross-entropy on reply tokens"),
    Column("combined_loss", "training", "loss", "min", "loss", "CE − λ · surrogate"),
    Column("diversity_score", "training", "diversity", "max", "d(S)",
           "mean d(S) of the sets sampled on the last diversity step"),
    Column("poly_score", "training", "quality", "max", "f(S)",
           "mean f(S) = mean quality × d(S) of the sets sampled on the last diversity step"),
    Column("sample_quality", "training", "quality", "max", "r",
           "mean checker score of the samples of the last diversity step"),
    Column("diversity_grad_share", "training", "other", None, "grad share",
           "‖∇(λ·term)‖ / (‖∇CE‖ + ‖∇(λ·term)‖) on the last diversity step"),
    Column("mean_diversity_score", "training", "diversity", "max", "mean d(S)",
           "mean of diversity_score over the run's diversity steps"),
    Column("mean_diversity_grad_share", "training", "other", None, "mean grad share",
           "mean of diversity_grad_share over the run's diversity steps"),
    # --- evaluation: quality ---------------------------------------------------------------------
    Column("quality_mean", "evaluation", "quality", "max", "quality",
           "mean checker score over all samples"),
    # --- evaluation: diversity within a prompt (the headline) --------------------------------------
    Column("semantic_diversity_per_prompt", "evaluation", "diversity", "max", "sem div",
           "1 − mean pairwise cosine of MiniLM embeddings, " + _PER_PROMPT, "per_prompt", True),
    Column("distinct_2_per_prompt", "evaluation", "diversity", "max", "dist-2",
           "distinct bigrams / bigram occurrences, " + _PER_PROMPT, "per_prompt", True),
    Column("self_bleu_per_prompt", "evaluation", "diversity", "min", "self-BLEU",
           "Self-BLEU-4 against the same prompt's other samples, " + _PER_PROMPT + "; lower = "
           "more diverse", "per_prompt", True),
    Column("distinct_1_per_prompt", "evaluation", "diversity", "max", "dist-1",
           "distinct unigrams / unigram occurrences, " + _PER_PROMPT, "per_prompt"),
    Column("distinct_classes", "evaluation", "diversity", "max", "classes",
           "equivalence classes among a prompt's samples (embedding cosine ≥ class_threshold "
           "joins two samples), mean over prompts", "per_prompt"),
    # --- evaluation: effective diversity (failed samples count 0; polychromic.metrics.effective) ------
    Column("effective_semantic_diversity_per_prompt", "evaluation", "diversity", "max",
           "eff sem div", "mean (1 − cosine) over all n(n−1) ordered pairs of a prompt's samples, "
           "a pair with a sample that fails the checker counting 0 (Shypula et al. 2025), "
           + _PER_PROMPT, "per_prompt"),
    Column("effective_distinct_classes", "evaluation", "diversity", "max", "eff classes",
           "equivalence classes (class_threshold) holding a sample that passes the checker ÷ n "
           "(Shypula et al. 2025's effective semantic diversity), mean over prompts",
           "per_prompt"),
    Column("utility_k", "evaluation", "diversity", "max", "utility_k",
           "NoveltyBench utility: (1−p)/(1−pᵏ) Σᵢ pⁱ⁻¹ · [sample i opens a new class] · "
           "checker score, p = 0.8, k = n, samples in sampling order, mean over prompts",
           "per_prompt"),
    # --- evaluation: diversity over the corpus (secondary) -----------------------------------------
    Column("semantic_diversity", "evaluation", "diversity", "max", "sem div (corpus)",
           "1 − mean pairwise cosine of MiniLM embeddings, " + _CORPUS, "corpus"),
    Column("distinct_1", "evaluation", "diversity", "max", "dist-1 (corpus)",
           "distinct unigrams / unigram occurrences, " + _CORPUS, "corpus"),
    Column("distinct_2", "evaluation", "diversity", "max", "dist-2 (corpus)",
           "distinct bigrams / bigram occurrences, " + _CORPUS, "corpus"),
    Column("self_bleu", "evaluation", "diversity", "min", "self-BLEU (corpus)",
           "Self-BLEU-4 against all other samples, " + _CORPUS + "; lower = more diverse",
           "corpus"),
    # --- evaluation: length --------------------------------------------------------------------
    Column("mean_tokens", "evaluation", "length", None, "tokens",
           "mean generated tokens per sample (distinct-n, Self-BLEU and checkers are "
           "length-sensitive)"),
    # --- cost and review -------------------------------------------------------------------------
    Column("train_seconds", "evaluation", "cost", "min", "train s", "training wall time"),
    Column("wall_seconds", "evaluation", "cost", "min", "wall s", "trial wall time"),
    Column("elapsed_seconds", "review", "cost", "min", "elapsed s", "trial wall time as recorded"),
    Column("gpu_hours", "review", "cost", "min", "GPU-h", "elapsed × GPUs / 3600"),
    Column("cost_usd", "review", "cost", "min", "cost $", "GPU-hours × price per GPU-hour"),
    Column("final_quality_loss", "review", "loss", "min", "final CE",
           "quality_loss at the last report"),
    Column("pareto", "review", "other", "max", "★", "not dominated on quality vs diversity"),
    Column("pareto_rank", "review", "other", "min", "rank", "non-dominated sorting level"),
)

CATALOG: dict[str, Column] = {c.name: c for c in _ENTRIES}
_PASS = re.compile(r"^pass@(\d+)$")
_FRONTIER = re.compile(r"^frontier_gain_(?P<y>.+)_at_(?P<x>.+)$")
_BEST_T = re.compile(r"^pass@(?P<k>\d+)_(?P<vs>vs_)?best_T$")
_DERIVED = re.compile(r"^(rel_delta_|delta_|significant_unadjusted_|significant_|mde_|headroom_|"
                      r"ceiling_|floor_|human_)?(?P<base>.+?)(_ci_low|_ci_high)?$")


def column(name: str) -> Column | None:
    """The catalog entry of ``name``; ``pass@k`` for any k."""
    if name in CATALOG:
        return CATALOG[name]
    m = _PASS.match(name)
    if m:
        return Column(name, "evaluation", "quality", "max", name,
                      f"unbiased pass@{m[1]} (Chen et al. 2021) per prompt, mean over prompts")
    m = _FRONTIER.match(name)
    if m and column(m["y"]) and column(m["x"]):
        y = column(m["y"])
        return Column(name, "review", y.family, y.better, f"{y.short} @ {short(m['x'])} vs T",
                      f"{m['y']} − the λ=0 baseline's temperature frontier at the trial's "
                      f"{m['x']} (monotone upper hull of the baseline's points at each frontier "
                      "temperature, linear between them; polychromic.stats.frontier)")
    m = _BEST_T.match(name)
    if m:
        k = m["k"]
        if m["vs"]:
            return Column(name, "review", "quality", "max", f"pass@{k} vs best T",
                          f"pass@{k} − the λ=0 baseline's largest pass@{k} over the frontier "
                          "temperatures (Chen et al. 2021: a baseline at its best temperature)")
        return Column(name, "review", "quality", "max", f"pass@{k} best T",
                      f"the λ=0 baseline's largest pass@{k} over the frontier temperatures")
    return None


def base_metric(name: str) -> str:
    """``delta_M``, ``delta_M_ci_low``, ``rel_delta_M``, ``mde_M``, ``headroom_M``, … → ``M``."""
    m = _DERIVED.match(name)
    return m["base"] if m and column(m["base"]) else name


def better(name: str) -> str | None:
    """``max``/``min`` when larger/smaller values of ``name`` (or of the metric it derives
    from: its delta, CI bound, MDE) are better, else None."""
    col = column(base_metric(name))
    return col.better if col else None


def names(stage: str | None = None, family: str | None = None,
          level: str | None = None, headline: bool | None = None) -> tuple[str, ...]:
    """Catalog names filtered by stage, family, level and headline flag, in catalog order."""
    return tuple(c.name for c in _ENTRIES
                 if (stage is None or c.stage == stage) and (family is None or c.family == family)
                 and (level is None or c.level == level)
                 and (headline is None or c.headline == headline))


def short(name: str) -> str:
    """Display name (``pass@k`` and unknown columns are shown as they are)."""
    col = column(name)
    return col.short if col else name


def is_diversity(name: str) -> bool:
    col = column(base_metric(name))
    return bool(col and col.family == "diversity")


def is_quality(name: str) -> bool:
    col = column(base_metric(name))
    return bool(col and col.family == "quality" and col.stage == "evaluation")


KNOBS = names(stage="knob")
TRAIN_METRICS = names(stage="training")
#: diversity metrics of the evaluation: within-prompt first (headline), then corpus-level
DIVERSITY = names(stage="evaluation", family="diversity")
HEADLINE_DIVERSITY = names(stage="evaluation", family="diversity", headline=True)
#: the evaluation metrics compared against the baseline (pass@k are added per study)
EVAL_METRICS = ("quality_mean", *DIVERSITY, "mean_tokens")
