"""Run in the optimum venv (``make install`` builds ``.venv-optimum``: optimum-onnx and its own transformers):
load an ONNX export with ``ORTModelForSpeechSeq2Seq`` and transcribe 16 kHz clips through transformers'
``pipeline``, as a user deploying the export does. argv: the folder, a language, .npy clips. Prints JSON:
the texts and the versions that ran."""

import json
import sys
from importlib.metadata import version

import numpy as np
from optimum.onnxruntime import ORTModelForSpeechSeq2Seq
from transformers import AutoProcessor, pipeline

folder, language, clips = sys.argv[1], sys.argv[2], sys.argv[3:]
model = ORTModelForSpeechSeq2Seq.from_pretrained(folder, use_merged=False)
processor = AutoProcessor.from_pretrained(folder)
asr = pipeline("automatic-speech-recognition", model=model, tokenizer=processor.tokenizer,
               feature_extractor=processor.feature_extractor)  # fmt: skip
texts = []
for clip in clips:
    audio = {"raw": np.load(clip).astype(np.float32), "sampling_rate": 16000}
    texts.append(asr(audio, generate_kwargs={"language": language, "task": "transcribe"})["text"].strip())
versions = {name: version(name) for name in ("transformers", "optimum-onnx", "onnxruntime")}
print(json.dumps({"texts": texts, "model": type(model).__name__, "versions": versions}))
