"""The feature store that ``prepare`` writes and ``train``/``eval`` read.

Layout of a store folder::

    store.json               format, n_mels, tokenizer and source facts
    prepare_report.json      read / kept / skipped-by-reason / hours per split (read = kept + skipped)
    <split>/frames.f16       all clips' real log-mel frames, float16, time-major, concatenated
    <split>/labels.i32       all clips' text token ids, int32, concatenated
    <split>/index.npz        per-clip offsets, lengths, pad values and durations
    <split>/rows.jsonl       per-clip id and transcript
    <split>/audio.bin        optional (prepare --audio): each clip's 16 kHz audio, Opus or FLAC, concatenated
    <split>/_COMPLETE        written last; a split without it is never read

Only the frames that hold audio are stored (see features.py), as float16: a 5 s
clip takes 80 KB instead of the 960 KB of a padded float32 array. Writes stream
to disk, so memory stays flat whatever the dataset size, and a store is built in
a hidden temp folder and renamed into place when complete.

Augmentation that works on the waveform (noise, speed, pitch, gain) needs the audio itself, so
``prepare --audio opus`` keeps it too: Opus at its default of about 26 kb/s adds about 12 MB per
hour of speech to the 58 MB of log-mel frames (``--audio flac``, lossless: about 68 MB).
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from whisperft.errors import UsageError, WhisperftError
from whisperft.io import atomic_write_json, is_complete, mark_complete

STORE_FORMAT = 1
STORE_META = "store.json"
AUDIO_FORMATS = {"opus": ("OGG", "OPUS"), "flac": ("FLAC", "PCM_16")}  # prepare --audio: soundfile's names
REPORT = "prepare_report.json"


@dataclass
class Example:
    """One stored utterance."""

    id: str
    text: str
    frames: np.ndarray  # (T, n_mels) float16
    pad_value: float
    labels: np.ndarray  # int32 text token ids, no special tokens
    duration: float
    audio: bytes = b""  # the clip's 16 kHz audio, encoded (prepare --audio), or nothing


def encode_audio(audio: np.ndarray, fmt: str, sample_rate: int = 16_000) -> bytes:
    """A clip as Opus (in Ogg) or FLAC bytes, for a store's audio track."""
    container, subtype = AUDIO_FORMATS[fmt]
    buf = io.BytesIO()
    sf.write(buf, np.clip(audio, -1.0, 1.0), sample_rate, format=container, subtype=subtype)
    return buf.getvalue()


class SplitWriter:
    """Appends examples to one split folder, streaming."""

    def __init__(self, folder: Path, n_mels: int) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.n_mels = n_mels
        self._frames = open(self.folder / "frames.f16", "wb")  # noqa: SIM115
        self._labels = open(self.folder / "labels.i32", "wb")  # noqa: SIM115
        self._rows = open(self.folder / "rows.jsonl", "w", encoding="utf-8")  # noqa: SIM115
        self._audio = open(self.folder / "audio.bin", "wb")  # noqa: SIM115 - removed on close when unused
        self._audio_off: list[int] = []
        self._audio_bytes: list[int] = []
        self._apos = 0
        self._frame_off: list[int] = []
        self._n_frames: list[int] = []
        self._label_off: list[int] = []
        self._n_labels: list[int] = []
        self._pad: list[float] = []
        self._dur: list[float] = []
        self._fpos = 0
        self._lpos = 0

    def __len__(self) -> int:
        return len(self._n_frames)

    @property
    def seconds(self) -> float:
        return float(sum(self._dur))

    def add(self, ex: Example) -> None:
        frames = np.ascontiguousarray(ex.frames, dtype=np.float16)
        if frames.ndim != 2 or frames.shape[1] != self.n_mels:
            raise WhisperftError(f"example {ex.id}: frames of shape {frames.shape}, expected (T, {self.n_mels})")
        labels = np.ascontiguousarray(ex.labels, dtype=np.int32)
        self._frames.write(frames.tobytes())
        self._labels.write(labels.tobytes())
        self._rows.write(json.dumps({"id": ex.id, "text": ex.text}, ensure_ascii=False) + "\n")
        self._frame_off.append(self._fpos)
        self._n_frames.append(len(frames))
        self._label_off.append(self._lpos)
        self._n_labels.append(len(labels))
        self._pad.append(float(ex.pad_value))
        self._dur.append(float(ex.duration))
        self._fpos += len(frames)
        self._lpos += len(labels)
        self._audio.write(ex.audio)
        self._audio_off.append(self._apos)
        self._audio_bytes.append(len(ex.audio))
        self._apos += len(ex.audio)

    def close(self) -> None:
        for fh in (self._frames, self._labels, self._rows, self._audio):
            fh.close()
        audio = {}
        if self._apos:
            audio = {
                "audio_offset": np.asarray(self._audio_off, np.int64),
                "audio_bytes": np.asarray(self._audio_bytes, np.int64),
            }
        else:
            (self.folder / "audio.bin").unlink()
        np.savez(
            self.folder / "index.npz",
            frame_offset=np.asarray(self._frame_off, dtype=np.int64),
            n_frames=np.asarray(self._n_frames, dtype=np.int32),
            label_offset=np.asarray(self._label_off, dtype=np.int64),
            n_labels=np.asarray(self._n_labels, dtype=np.int32),
            pad_value=np.asarray(self._pad, dtype=np.float32),
            duration=np.asarray(self._dur, dtype=np.float32),
            **audio,
        )
        mark_complete(self.folder, {"examples": len(self), "seconds": self.seconds})


class Split:
    """Read-only, memory-mapped access to one split of a store."""

    def __init__(self, folder: Path, n_mels: int) -> None:
        self.folder = Path(folder)
        if not is_complete(self.folder):
            raise WhisperftError(f"{self.folder} is incomplete (no _COMPLETE marker); rerun whisperft prepare")
        idx = np.load(self.folder / "index.npz")
        self.frame_offset = idx["frame_offset"]
        self.n_frames = idx["n_frames"]
        self.label_offset = idx["label_offset"]
        self.n_labels = idx["n_labels"]
        self.pad_value = idx["pad_value"]
        self.duration = idx["duration"]
        self.audio_offset = idx.get("audio_offset")
        self.audio_bytes = idx.get("audio_bytes")
        self.n_mels = n_mels
        self._frames = self._map(self.folder / "frames.f16", np.float16, n_mels)
        self._labels = self._map(self.folder / "labels.i32", np.int32, None)
        self._audio: np.ndarray | None = None  # mapped on first use
        with open(self.folder / "rows.jsonl", encoding="utf-8") as fh:
            rows = [json.loads(line) for line in fh]
        self.ids = [r["id"] for r in rows]
        self.texts = [r["text"] for r in rows]

    @staticmethod
    def _map(path: Path, dtype: Any, width: int | None) -> np.ndarray:
        if path.stat().st_size == 0:
            return np.zeros((0, width) if width else (0,), dtype=dtype)
        arr = np.memmap(path, dtype=dtype, mode="r")
        return arr.reshape(-1, width) if width else arr

    def __len__(self) -> int:
        return len(self.n_frames)

    @property
    def seconds(self) -> float:
        return float(self.duration.sum())

    @property
    def has_audio(self) -> bool:
        return self.audio_offset is not None

    def audio(self, i: int) -> np.ndarray:
        """Clip ``i``'s 16 kHz audio, decoded from the store's audio track (prepare --audio)."""
        if self.audio_offset is None or self.audio_bytes is None:
            raise UsageError(f"{self.folder} has no audio track; prepare the store again with --audio opus")
        if self._audio is None:
            self._audio = self._map(self.folder / "audio.bin", np.uint8, None)
        o, n = int(self.audio_offset[i]), int(self.audio_bytes[i])
        audio, _ = sf.read(io.BytesIO(self._audio[o : o + n].tobytes()), dtype="float32")
        return audio

    def frames(self, i: int) -> np.ndarray:
        o = int(self.frame_offset[i])
        return self._frames[o : o + int(self.n_frames[i])]

    def labels(self, i: int) -> np.ndarray:
        o = int(self.label_offset[i])
        return self._labels[o : o + int(self.n_labels[i])]

    def __getitem__(self, i: int) -> Example:
        return Example(
            id=self.ids[i],
            text=self.texts[i],
            frames=self.frames(i),
            pad_value=float(self.pad_value[i]),
            labels=np.asarray(self.labels(i)),
            duration=float(self.duration[i]),
        )


class FeatureStore:
    """A prepared store: its metadata and splits."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        meta_path = self.folder / STORE_META
        if not meta_path.is_file():
            raise UsageError(f"{self.folder} is not a whisperft feature store (no {STORE_META}); run whisperft prepare")
        if not is_complete(self.folder):
            raise WhisperftError(f"{self.folder} is incomplete (no _COMPLETE marker); rerun whisperft prepare")
        self.meta: dict[str, Any] = json.loads(meta_path.read_text(encoding="utf-8"))
        if self.meta.get("format") != STORE_FORMAT:
            raise WhisperftError(f"{self.folder}: store format {self.meta.get('format')}, expected {STORE_FORMAT}")
        self.n_mels = int(self.meta["n_mels"])

    @staticmethod
    def is_store(folder: str | Path) -> bool:
        return (Path(folder) / STORE_META).is_file()

    @property
    def splits(self) -> list[str]:
        return list(self.meta.get("splits", []))

    def split(self, name: str) -> Split:
        if name not in self.splits:
            raise UsageError(f"{self.folder} has no split {name!r}; it has {', '.join(self.splits) or 'none'}")
        return Split(self.folder / name, self.n_mels)

    @property
    def language(self) -> str | None:
        return self.meta.get("language")


def write_meta(folder: Path, meta: dict[str, Any]) -> None:
    atomic_write_json(Path(folder) / STORE_META, {"format": STORE_FORMAT, **meta})
