"""The label stage: recordings without text -> clips cut at pauses, pseudo-labelled by a model, with the
signals that say how far to trust each label (see ARCHITECTURE.md). Its entry is ``label.run.label``,
which takes a ``label.request.LabelRequest``."""
