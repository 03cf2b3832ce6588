"""The base model and sampling from it: ``loading`` (resolve, convert, quantize, LoRA),
``sampling`` (temperature/top-p settings and per-sample seeds), ``backends`` (HF ``generate``
and vLLM behind one interface). torch lives here and below training/evaluation.
"""
