"""``whisperft transcribe`` with a PyTorch Whisper: audio of any length to timestamped segments.

Audio is cut at pauses (``chunking``) into chunks that fit the encoder window, and the chunks
of all files are decoded together in batches, with timestamps, temperature fallback, a
compression-ratio check and no-speech detection. Silence, and chunks in which Silero VAD (``vad``,
the detector of the CTranslate2 path) finds no speech, are never sent to the model, so they cannot
turn into hallucinated text.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from whisperft.audio import SAMPLE_RATE
from whisperft.features import FRAMES_PER_SECOND, HOP_LENGTH, log_mel_batch, pad_features
from whisperft.languages import Decoding, decode_language, prompt_language, reported_language, token_languages
from whisperft.models.decode import RepetitionStop, decoder_limit
from whisperft.models.whisper import context_frames, detect_languages, is_multilingual, own_language
from whisperft.text import (
    COMPRESSION_RATIO_THRESHOLD,
    FALLBACK_TEMPERATURES,
    LOG_PROB_FLOOR,
    NO_SPEECH_PROB,
    PYTORCH_BEAMS,
    token_limit,
)
from whisperft.transcribe.chunking import speech_chunks
from whisperft.transcribe.decoding import DecodeOptions, Transcription
from whisperft.transcribe.subtitles import Segment
from whisperft.transcribe.vad import has_speech


class Transcriber:
    """A loaded model with its processor, ready to transcribe batches of audio."""

    default_beams = PYTORCH_BEAMS

    def __init__(self, model: Any, processor: Any, device: str | None = None, name: str | None = None) -> None:
        self.model = model.eval()
        self.processor = processor
        self.tokenizer = processor.tokenizer
        if device:
            self.model.to(device)
        self.n_mels = int(model.config.num_mel_bins)
        self.window = context_frames(model.config)  # mel frames per encoder window
        self.own = own_language(model)  # the language it was fine-tuned for, if any
        self.name = name or str(getattr(model, "name_or_path", "") or "this model")  # the spec, for messages
        self.languages = token_languages(self.tokenizer.get_vocab().__contains__)

    @property
    def multilingual(self) -> bool:
        return is_multilingual(self.model.config)

    def detect_language(self, features: torch.Tensor) -> list[str]:
        """Token codes detected from one window of features per item (``reported_language`` names them)."""
        if not self.multilingual:
            return ["en"] * features.shape[0]
        return detect_languages(self.model, self.tokenizer, features[..., : self.window])

    def _features(self, clips: list[np.ndarray]) -> torch.Tensor:
        return pad_features(log_mel_batch(clips, self.n_mels), self.window)

    @torch.inference_mode()
    def _decode(
        self,
        features: torch.Tensor,
        langs: list[str | None],
        task: str,
        num_beams: int,
        timestamps: bool,
        seconds: float | None = None,
        frames: list[int] | None = None,
    ) -> list[list[Segment]]:
        """Decode windows; per window its segments, with times relative to it.

        Without timestamps (how the standard recipe fine-tunes) a window is one segment, whose
        end is filled in by the caller. ``seconds``: the longest chunk's audio, which bounds the
        tokens generated (``text.token_limit``), so a model that loops stops early. ``frames``: each
        window's mel frames of audio, given when the segments should carry word timestamps (the
        cross-attention DTW then stops where the audio does).
        """
        kwargs: dict[str, Any] = {
            "return_timestamps": timestamps or frames is not None,
            "return_segments": True,
            "num_beams": num_beams,
            "no_speech_threshold": NO_SPEECH_PROB,
            "logprob_threshold": LOG_PROB_FLOOR,
            "compression_ratio_threshold": COMPRESSION_RATIO_THRESHOLD,
            "temperature": (0.0, *FALLBACK_TEMPERATURES),
        }
        if seconds is not None:
            kwargs["max_new_tokens"] = min(token_limit(seconds, timestamps), decoder_limit(self.model))
        if num_beams == 1:  # a looping greedy row stops at once (and may then fail the compression-ratio check)
            from transformers import StoppingCriteriaList  # deferred: slow to import

            kwargs["stopping_criteria"] = StoppingCriteriaList([RepetitionStop()])
        if self.multilingual:
            kwargs["task"] = task
            prompts = [prompt_language(t) for t in langs]
            kwargs["language"] = prompts if len(set(prompts)) > 1 else prompts[0]
        if frames is not None:
            kwargs["return_token_timestamps"] = True
            mask = torch.arange(features.shape[-1])[None, :] < torch.tensor(frames)[:, None]
            kwargs["attention_mask"] = mask.long().to(self.model.device)
        dtype = next(self.model.parameters()).dtype
        try:
            out = self.model.generate(features.to(self.model.device, dtype), **kwargs)
        except IndexError:
            # transformers 5.24 cannot time the words of a batch in which the temperature fallback decodes
            # some rows again (IndexError in _extract_token_timestamps): decode its rows one by one, and
            # a row that still fails without word times (align then skips its sentences as not_read)
            if frames is None:
                raise
            if features.shape[0] > 1:
                rows = [
                    self._decode(
                        features[b : b + 1], langs[b : b + 1], task, num_beams, timestamps, seconds, frames[b : b + 1]
                    )
                    for b in range(features.shape[0])
                ]
                return [r[0] for r in rows]
            return self._decode(features, langs, task, num_beams, True, seconds, None)
        results = []
        for b in range(features.shape[0]):
            segs = []
            if timestamps or frames is not None:
                for seg in out["segments"][b]:
                    text = _clean(self.tokenizer.decode(seg["tokens"], skip_special_tokens=True))
                    if text:
                        words = self._words(seg) if frames is not None else []
                        segs.append(Segment(float(seg["start"]), float(seg["end"]), text, words))
            else:
                sequences = out["sequences"] if isinstance(out, dict) else out
                text = _clean(self.tokenizer.decode(sequences[b], skip_special_tokens=True))
                if text:
                    segs.append(Segment(0.0, float("inf"), text))
            results.append(segs)
        return results

    def _words(self, seg: dict[str, Any]) -> list[tuple[float, float, str]]:
        """(start, end, word) of a generated segment, from its token timestamps (the time each token
        starts; a word ends where the next token starts). A word is a token that opens with a space and
        the tokens up to the next such one; special tokens (timestamps, end of text) only give times."""
        ids, times = seg["tokens"].tolist(), seg["token_timestamps"].tolist()
        special = self.tokenizer.convert_tokens_to_ids("<|endoftext|>")
        groups: list[list[int]] = []
        for k, tok in enumerate(ids):
            if tok >= special:
                continue
            piece = self.tokenizer.decode([tok])
            if not groups or piece.startswith(" ") or groups[-1][-1] != k - 1:
                groups.append([k])
            else:
                groups[-1].append(k)
        words = []
        for g in groups:
            text = self.tokenizer.decode([ids[k] for k in g]).strip()
            end = times[g[-1] + 1] if g[-1] + 1 < len(times) else float(seg["end"])
            if text:
                words.append((round(float(times[g[0]]), 3), round(float(max(end, times[g[0]])), 3), text))
        return words

    def decoding(self, requested: str | None) -> Decoding:
        """The language this model decodes ``requested`` in (``languages.decode_language``)."""
        return decode_language(requested, self.own, self.multilingual, self.languages, self.name)

    def transcribe(self, audios: list[np.ndarray], options: DecodeOptions) -> list[Transcription]:
        """Transcribe 16 kHz recordings of any length, one ``Transcription`` each.

        Each recording is cut at pauses into chunks that fit the encoder window, and the chunks of all
        recordings are decoded together in batches of ``options.batch_size``; timestamps are shifted
        back. With ``options.decoding.detect``, the language of each recording is detected on its first
        chunk.
        """
        window_s = self.window / FRAMES_PER_SECOND
        chunks = [speech_chunks(a, max_seconds=window_s) for a in audios]
        chunks = [[(a, b) for a, b in cs if has_speech(x[a:b])] for x, cs in zip(audios, chunks, strict=True)]
        jobs = [(i, a, b) for i, cs in enumerate(chunks) for a, b in cs]
        chosen, batch_size = options.decoding, options.batch_size
        langs: list[str | None] = [None] * len(audios)  # token codes to prompt with
        reported: list[str | None] = [None] * len(audios)
        if chosen.detect:
            firsts = [next(((a, b) for j, a, b in jobs if j == i), None) for i in range(len(audios))]
            todo = [i for i, f in enumerate(firsts) if f is not None]
            for k in range(0, len(todo), batch_size):
                part = todo[k : k + batch_size]
                feats = self._features([audios[i][firsts[i][0] : firsts[i][1]] for i in part])  # type: ignore[index]
                for i, code in zip(part, self.detect_language(feats), strict=True):
                    langs[i], reported[i] = code, reported_language(code, self.own)
        else:
            reported = [chosen.language] * len(audios)
            langs = [chosen.token] * len(audios)
        segments: list[list[Segment]] = [[] for _ in audios]
        jobs.sort(key=lambda j: j[2] - j[1])
        for k in range(0, len(jobs), batch_size):
            part = jobs[k : k + batch_size]
            feats = self._features([audios[i][a:b] for i, a, b in part])
            seconds = max(b - a for _, a, b in part) / SAMPLE_RATE  # jobs are sorted: the batch's are alike
            frames = [(b - a) // HOP_LENGTH for _, a, b in part] if options.words else None
            prompts = [langs[i] or "en" for i, _, _ in part]
            beams = options.num_beams or self.default_beams
            decoded = self._decode(feats, prompts, options.task, beams, options.timestamps, seconds, frames)
            for (i, a, b), segs in zip(part, decoded, strict=True):
                offset, end = a / SAMPLE_RATE, b / SAMPLE_RATE
                for seg in segs:
                    start = round(offset + seg.start, 3)
                    if start < end:
                        stop = round(min(offset + max(seg.end, seg.start), end), 3)
                        moved = [(round(offset + w0, 3), round(min(offset + w1, end), 3), w) for w0, w1, w in seg.words]
                        segments[i].append(Segment(start, stop, seg.text, moved))
        results = []
        for i, segs in enumerate(segments):
            segs.sort(key=lambda s: s.start)
            results.append(Transcription(reported[i], " ".join(s.text for s in segs), segs))
        return results


def _clean(text: str) -> str:
    return " ".join(text.replace("\u200b", " ").split())
