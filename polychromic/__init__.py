"""polychromic: components for diversity-aware (polychromic) LoRA fine-tuning studies.

Training loss = SFT cross-entropy − λ · (score-function surrogate of the polychromic set
objective). See README.md for the objective, the metrics and their exact definitions.
"""

__version__ = "0.1.0"
