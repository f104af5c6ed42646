"""The prepare stage: a speech source -> a feature store (see ARCHITECTURE.md). Its entry is
``prepare.run.prepare``, which takes a ``prepare.request.PrepareRequest``."""
