"""The train stage: setup -> fit -> save, with exact resume (see ARCHITECTURE.md). Its entry is
``train.loop.train``; ``train.plan.run_plan`` (``whisperft plan``) takes a ``train.request.PlanRequest``."""
