"""``whisperft transcribe``'s stage: one ``TranscribeRequest`` in, a ``TranscribeResult`` out.

The request is checked whole before any model loads (every usage error at once); the model's language
is then decided once (``load.decide_language``) and carried to the decoder in ``DecodeOptions``.
"""

from __future__ import annotations

from whisperft.errors import ConfigError, UsageError
from whisperft.transcribe.decoding import DecodeOptions
from whisperft.transcribe.files import collect_audio, transcribe_files, write_transcripts
from whisperft.transcribe.load import decide_language, load_engine, spec_or_newest
from whisperft.transcribe.request import TranscribeRequest, TranscribeResult


def transcribe(request: TranscribeRequest) -> TranscribeResult:
    """Transcribe the request's audio. Raises ConfigError (exit 2) listing every problem of the request,
    UsageError when no audio is found or the model cannot decode the language, WhisperftError when the
    model cannot be loaded; an undecodable file is an entry of ``errors``, and the others go on."""
    problems = request.problems()
    if problems:
        raise ConfigError(problems)
    files = collect_audio(list(request.audio))
    if not files:
        raise UsageError(f"no audio files found in {', '.join(request.audio)}")
    spec = spec_or_newest(request.model)
    engine = load_engine(spec, request.compute_type, request.trust_pickle, quiet=request.quiet)
    decoding = decide_language(engine, request.lang)
    options = DecodeOptions(decoding, request.task, request.num_beams, request.batch_size, request.timestamped)
    transcripts, errors = transcribe_files(engine, files, options)
    written = []
    if request.output_dir is not None or request.format != "txt":
        written = write_transcripts(transcripts, request.format, request.output_dir)
    return TranscribeResult(transcripts, errors, written, len(files))
