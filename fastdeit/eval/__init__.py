"""Top-1 / top-5 evaluation, per head for distilled models."""

from fastdeit.eval.evaluate import evaluate

__all__ = ["evaluate"]
