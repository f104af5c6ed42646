"""``whisperft transcribe`` on a CTranslate2 model, through faster-whisper.

``transcribe --model FOLDER`` takes this path when FOLDER is a CTranslate2 model (what
``whisperft export`` writes, or any faster-whisper model folder). faster-whisper does the work
exactly as its ``BatchedInferencePipeline`` does: Silero VAD, chunks of up to 30 s, its feature
extractor, batched greedy or beam decoding. What whisperft adds around it:

- the chunks of several files share batches (faster-whisper batches within one file), grouped by
  language, so a folder of short clips decodes as fast as one long recording;
- ``--lang auto`` detects the language per file;
- a chunk whose greedy decoding loops (the batched pipeline has no fallback) is decoded again;
- with timestamps, the rest of a chunk after its last segment is decoded on from there: the batched
  pipeline drops a chunk's unfinished last segment and whatever follows a segment the model ended the
  chunk at (faster-whisper#1427, #1179), where its sequential mode would seek on;
- the tokens a chunk may take are bounded by its duration (``text.token_limit``), so a model that
  loops stops early; chunks go to batches shortest first, so a batch's chunks are alike;
- per-file errors, our output formats and exit codes (``files.transcribe_files``).

Nothing here imports torch or transformers: a 1-second clip is done in about two seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from whisperft.audio import SAMPLE_RATE
from whisperft.errors import WhisperftError
from whisperft.extras import missing_extra
from whisperft.languages import Decoding, decode_language, reported_language, token_languages
from whisperft.models.ct2_decode import MAX_LENGTH, ct2_runtime, folder_language
from whisperft.text import (
    COMPRESSION_RATIO_THRESHOLD,
    CT2_BEAMS,
    FALLBACK_TEMPERATURES,
    LOG_PROB_FLOOR,
    NO_SPEECH_PROB,
    token_limit,
)
from whisperft.transcribe.decoding import DecodeOptions, Transcription
from whisperft.transcribe.subtitles import Segment

NO_REPEAT_NGRAM = 10  # tokens: the redo of a looping chunk may not repeat a 10-token sequence
LANGUAGE_PAD = -1.5  # faster-whisper appends one frame of this before detecting the language
# Seconds of a chunk after its last segment that are decoded again. Each VAD region carries 0.4 s of pad
# at both ends (VadOptions.speech_pad_ms), so a tail of 0.8 s can be silence; a dropped sentence is longer.
MIN_TAIL_S = 1.0
MAX_SEEKS = 4  # times one chunk is decoded on from its last segment


def _bounded(options: Any, seconds: float, timestamps: bool) -> Any:
    """``options`` with ``max_new_tokens`` bounded for chunks of at most ``seconds`` of speech
    (``text.token_limit``), and within the decoder's 448 positions less a 4-token prompt."""
    return replace(options, max_new_tokens=min(token_limit(seconds, timestamps), MAX_LENGTH - 4))


@dataclass
class _Plan:
    """One recording cut by the VAD: its speech regions and the padded features of each chunk."""

    speech: list[dict]  # speech regions in samples, as faster-whisper's VAD returns them
    features: list[np.ndarray]  # (n_mels, frames) per chunk, not yet padded to the window
    metadata: list[dict]  # per chunk: offset and duration in VAD-joined seconds


def _keeping_encoder_output(base: type) -> type:
    """faster-whisper's BatchedInferencePipeline, keeping the last batch's encoder output (the redo of a
    looping chunk then costs no second encoder pass)."""

    class Pipeline(base):  # type: ignore[misc, valid-type]
        encoded: Any = None

        def generate_segment_batched(self, features: np.ndarray, tokenizer: Any, options: Any) -> Any:
            self.encoded, output = super().generate_segment_batched(features, tokenizer, options)
            return self.encoded, output

    return Pipeline


class FasterWhisperTranscriber:
    """A faster-whisper model (int8 on CPUs, float16 on GPUs as exported) that transcribes batches of files."""

    default_beams = CT2_BEAMS  # faster-whisper's own default

    def __init__(
        self, folder: str | Path, compute_type: str = "default", device: str | None = None, name: str | None = None
    ) -> None:
        _, device, threads = ct2_runtime(folder, device)
        try:
            import faster_whisper  # deferred: an optional extra, and slow to import
            from faster_whisper import transcribe as fw_transcribe  # deferred: as above
            from faster_whisper import vad  # deferred: as above
        except ImportError:
            raise missing_extra(f"{folder} (a CTranslate2 model)", ["faster_whisper"]) from None
        try:
            self.model = faster_whisper.WhisperModel(
                str(folder), device=device, compute_type=compute_type, cpu_threads=threads
            )
        except (RuntimeError, ValueError) as exc:
            raise WhisperftError(f"cannot load the CTranslate2 model {folder}: {exc}") from None
        self.own = folder_language(folder)
        self.name = name or str(folder)  # the spec, for messages
        vocabulary = self.model.hf_tokenizer
        self.languages = token_languages(lambda token: vocabulary.token_to_id(token) is not None)
        self.pipeline = _keeping_encoder_output(faster_whisper.BatchedInferencePipeline)(self.model)
        self._fw = fw_transcribe
        self._vad = vad

    @property
    def multilingual(self) -> bool:
        return bool(self.model.model.is_multilingual)

    def _plan(self, audio: np.ndarray) -> _Plan:
        """faster-whisper's own chunking: Silero VAD regions joined into chunks of at most one window."""
        window = self.model.feature_extractor.chunk_length
        options = self._vad.VadOptions(max_speech_duration_s=window, min_silence_duration_ms=160)
        speech = self._vad.get_speech_timestamps(audio, options)
        if not speech:
            return _Plan([], [], [])
        chunks, metadata = self._vad.collect_chunks(audio, speech, max_duration=window)
        return _Plan(speech, [self.model.feature_extractor(c)[..., :-1] for c in chunks], metadata)

    def decoding(self, requested: str | None) -> Decoding:
        """The language this model decodes ``requested`` in (``languages.decode_language``)."""
        return decode_language(requested, self.own, self.multilingual, self.languages, self.name)

    def _language(self, plan: _Plan, chosen: Decoding) -> Decoding:
        """The language one recording decodes in: ``chosen``, or detected when ``chosen.detect``."""
        if not chosen.detect:
            return chosen
        if not self.multilingual:
            return Decoding("en", "en")
        pad = np.full((self.model.model.n_mels, 1), LANGUAGE_PAD, dtype=np.float32)
        code, _, _ = self.model.detect_language(features=np.concatenate([*plan.features, pad], axis=1))
        return Decoding(reported_language(str(code), self.own), str(code))

    def _options(self, tokenizer: Any, num_beams: int, timestamps: bool, words: bool = False) -> Any:
        """``BatchedInferencePipeline.transcribe``'s defaults, with our beam size and timestamp mode."""
        return self._fw.TranscriptionOptions(
            beam_size=num_beams,
            best_of=5,
            patience=1,
            length_penalty=1,
            repetition_penalty=1,
            no_repeat_ngram_size=0,
            log_prob_threshold=LOG_PROB_FLOOR,
            no_speech_threshold=NO_SPEECH_PROB,
            compression_ratio_threshold=COMPRESSION_RATIO_THRESHOLD,
            condition_on_previous_text=False,
            prompt_reset_on_temperature=0.5,
            temperatures=[0.0],
            initial_prompt=None,
            prefix=None,
            suppress_blank=True,
            suppress_tokens=self._fw.get_suppressed_tokens(tokenizer, [-1]),
            without_timestamps=not timestamps,
            max_initial_timestamp=0.0,
            word_timestamps=words,
            prepend_punctuations="\"'“¿([{-",
            append_punctuations="\"'.。,，!！?？:：”)]}、",
            multilingual=False,
            max_new_tokens=None,
            clip_timestamps=[],
            hallucination_silence_threshold=None,
            hotwords=None,
        )

    def transcribe(self, audios: list[np.ndarray], options: DecodeOptions) -> list[Transcription]:
        """Transcribe 16 kHz recordings of any length, one ``Transcription`` each. A fine-tune's language
        is the one ``whisperft export`` recorded in the folder; word timestamps (``options.words``) come
        from faster-whisper's cross-attention DTW over the alignment heads."""
        plans = [self._plan(a) for a in audios]
        chosen = [self._language(p, options.decoding) if p.features else None for p in plans]
        langs = [c.token if c else None for c in chosen]
        segments: list[list[Segment]] = [[] for _ in audios]
        batch_size, timestamps, beams = options.batch_size, options.timestamps, options.num_beams or self.default_beams
        for lang in dict.fromkeys(code for code in langs if code):
            tokenizer = self._fw.Tokenizer(self.model.hf_tokenizer, self.multilingual, task=options.task, language=lang)
            settings = self._options(tokenizer, beams, timestamps, options.words)
            jobs = [(i, k) for i, p in enumerate(plans) if langs[i] == lang for k in range(len(p.features))]
            jobs.sort(key=lambda j: plans[j[0]].metadata[j[1]]["duration"])
            for start in range(0, len(jobs), batch_size):
                part = jobs[start : start + batch_size]
                feats = np.stack([self._fw.pad_or_trim(plans[i].features[k]) for i, k in part])
                metadata = [plans[i].metadata[k] for i, k in part]
                bounded = _bounded(settings, max(m["duration"] for m in metadata), timestamps)
                self.pipeline.last_speech_timestamp = 0.0  # batches are not in time order: no carry-over
                out = self.pipeline.forward(feats, tokenizer, metadata, bounded)
                self._redo_repeats(feats, metadata, out, tokenizer, bounded)
                if timestamps:
                    self._seek_tails([plans[i].features[k] for i, k in part], metadata, out, tokenizer, settings)
                for (i, _), segs in zip(part, out, strict=True):
                    segments[i].extend(self._restore(plans[i], segs))
        results = []
        for c, segs in zip(chosen, segments, strict=True):
            segs.sort(key=lambda s: s.start)
            results.append(Transcription(c.language if c else None, " ".join(s.text for s in segs), segs))
        return results

    def _redo_repeats(
        self, feats: np.ndarray, metadata: list[dict], out: list[list[dict]], tokenizer: Any, options: Any
    ) -> None:
        """Decode again each chunk whose greedy output repeats itself (gzip compression ratio over 2.4):
        faster-whisper's batched pipeline keeps such loops, which cost a chunk's worth of words. First
        greedy with long n-grams barred from repeating (one cheap pass), then, if it still loops,
        faster-whisper's temperature fallback. The redone chunk is one segment."""
        threshold = options.compression_ratio_threshold
        for j, segs in enumerate(out):
            if self._fw.get_compression_ratio(" ".join(seg["text"] for seg in segs)) <= threshold:
                continue
            encoded = self._encoded_row(feats, j)
            prompt = self.model.get_prompt(tokenizer, [], without_timestamps=True)
            bound = self.model.max_length if options.max_new_tokens is None else len(prompt) + options.max_new_tokens
            result = self.model.model.generate(
                encoded,
                [prompt],
                beam_size=options.beam_size,
                max_length=bound,
                suppress_blank=True,
                suppress_tokens=options.suppress_tokens,
                no_repeat_ngram_size=NO_REPEAT_NGRAM,
            )[0]
            text = tokenizer.decode(result.sequences_ids[0])
            if self._fw.get_compression_ratio(text) > threshold:
                retry = replace(options, temperatures=list(FALLBACK_TEMPERATURES), best_of=1)
                result, *_ = self.model.generate_with_fallback(encoded, prompt, tokenizer, retry)
                text = tokenizer.decode(result.sequences_ids[0])
            start = metadata[j]["offset"]
            out[j] = [{"text": text, "start": start, "end": start + metadata[j]["duration"]}]

    def _seek_tails(
        self, features: list[np.ndarray], metadata: list[dict], out: list[list[dict]], tokenizer: Any, options: Any
    ) -> None:
        """Decode on from the end of each chunk's last segment while ``MIN_TAIL_S`` or more of the chunk is
        left, as faster-whisper's sequential ``transcribe`` seeks on (at most ``MAX_SEEKS`` times, and
        only while a pass moves on). ``features``: each chunk's (n_mels, frames), not padded. What a
        pass decodes joins the chunk's segments unless faster-whisper's no-speech rule rejects it."""
        fps = self.model.frames_per_second
        live = list(range(len(out)))
        for _ in range(MAX_SEEKS):
            ends = {j: metadata[j]["offset"] + metadata[j]["duration"] for j in live}
            seeks = {j: max([seg["end"] for seg in out[j]] + [metadata[j]["offset"]]) for j in live}
            todo = [j for j in live if ends[j] - seeks[j] >= MIN_TAIL_S]
            if not todo:
                return
            cut = [round((seeks[j] - metadata[j]["offset"]) * fps) for j in todo]
            feats = np.stack([self._fw.pad_or_trim(features[j][:, c:]) for j, c in zip(todo, cut, strict=True)])
            meta = [{"offset": seeks[j], "duration": ends[j] - seeks[j]} for j in todo]
            bounded = _bounded(options, max(m["duration"] for m in meta), True)
            self.pipeline.last_speech_timestamp = 0.0
            live = []
            for j, segs in zip(todo, self.pipeline.forward(feats, tokenizer, meta, bounded), strict=True):
                heard = [seg for seg in segs if seg["text"].strip() and seg["end"] > seeks[j]]
                silent = bool(segs) and segs[0]["no_speech_prob"] > NO_SPEECH_PROB
                if heard and not (silent and segs[0]["avg_logprob"] < LOG_PROB_FLOOR):
                    out[j].extend(heard)
                    live.append(j)

    def _encoded_row(self, feats: np.ndarray, j: int) -> Any:
        """Row ``j`` of the batch's encoder output, kept from the batched pass (on a GPU: encoded again)."""
        kept = getattr(self.pipeline, "encoded", None)
        if kept is not None and kept.device == "cpu" and kept.shape[0] == feats.shape[0]:
            return self._fw.get_ctranslate2_storage(np.asarray(kept)[j : j + 1])
        return self.model.encode(feats[j : j + 1])

    def _restore(self, plan: _Plan, segs: list[dict]) -> list[Segment]:
        """Segments with times on the original recording (the VAD joined its speech regions)."""
        times = self._vad.SpeechTimestampsMap(plan.speech, SAMPLE_RATE)
        out = []
        for seg in segs:
            text = " ".join(seg["text"].split())
            if text:
                start = round(times.get_original_time(seg["start"]), 3)
                end = max(start, round(times.get_original_time(seg["end"], is_end=True), 3))
                words = [
                    (
                        round(times.get_original_time(w["start"]), 3),
                        round(times.get_original_time(w["end"], is_end=True), 3),
                        w["word"].strip(),
                    )
                    for w in seg.get("words") or []
                    if w["word"].strip()
                ]
                scores = (seg.get("avg_logprob"), seg.get("no_speech_prob"))
                out.append(Segment(start, end, text, words, *(None if x is None else float(x) for x in scores)))
        return out
