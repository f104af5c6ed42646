"""Export stage: a saved Whisper -> the formats other clients run, each parity-checked in its own client.

One module per target: ``ct2`` (faster-whisper), ``ggml`` (whisper.cpp), ``onnx`` (onnxruntime, optimum's
layout) and ``openai`` (openai-whisper); ``standard`` makes the stock-Whisper copy the first three need
(30 s window, Whisper's language tokens) and ``parity`` compares transcripts. ``targets`` lists the
targets, ``request`` holds an ``ExportRequest``, and ``run.export`` is the stage's entry.
"""
