"""The evaluate stage: WER/CER of a model on a prepared split (see ARCHITECTURE.md). Its entry is
``evaluate.run.run_eval``, which takes an ``evaluate.request.EvalRequest``."""
