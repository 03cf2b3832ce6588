"""Shared fixtures: the tiny model (real Llama architecture, SmolLM2 tokenizer) and a tiny
search space. Nothing here loads from a model hub."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("RAY_TRAIN_V2_ENABLED", "1")

ROOT = Path(__file__).resolve().parent.parent

TINY_SETTINGS = {
    "model": "tiny",
    "task": "chitchat",
    "steps": 4,
    "batch_size": 2,
    "max_length": 48,
    "report_every": 2,
    "n_generations": 3,
    "compute_every_n_steps": 2,
    "max_examples_for_diversity": 2,
    "max_new_tokens": 8,
    "learning_rate": 0.01,
    "n_eval_prompts": 4,
    "n_eval_samples": 10,
    "eval_max_new_tokens": 8,
    "eval_batch_prompts": 2,
    "max_failures": 1,
}


@pytest.fixture(scope="session")
def tiny_model_path() -> str:
    from polychromic.model import resolve_model_path

    return resolve_model_path("tiny")
