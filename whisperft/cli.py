"""The ``whisperft`` command line: thin Typer commands over the stages.

Errors print one line and exit 2 (usage/config) or 1 (runtime); ``--debug`` shows tracebacks.
Each command imports its stage inside its body: the stages import torch and transformers,
and ``whisperft --help`` should not wait seconds for them.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from whisperft.errors import UsageError, WhisperftError
from whisperft.evaluate.request import METRICS, EvalRequest
from whisperft.export.request import ExportRequest
from whisperft.extras import missing_extra
from whisperft.label.request import LabelRequest
from whisperft.log import setup_logging
from whisperft.prepare.request import PrepareRequest
from whisperft.serve_request import ServeRequest
from whisperft.text import CT2_BEAMS, PYTORCH_BEAMS
from whisperft.train.request import PlanRequest, SweepRequest
from whisperft.transcribe.request import TranscribeRequest

app = typer.Typer(
    name="whisperft",
    help="Fine-tune OpenAI Whisper to a language, then evaluate it and transcribe with it.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
)
logger = logging.getLogger("whisperft")
BEAMS_HELP = (
    f"Beam width; 1 is greedy. Default: {CT2_BEAMS} on a CTranslate2 folder, {PYTORCH_BEAMS} on PyTorch, "
    "the same in transcribe and eval (BENCHMARKS.md, beam_size_*)."
)
_state: dict[str, Any] = {"debug": False}


def _quiet_transformers() -> None:
    """transformers' info logs and progress bars off, kept with --debug."""
    if not _state["debug"]:
        from whisperft.models import quiet_transformers

        quiet_transformers()


def _print_version(value: bool) -> None:
    if value:
        from whisperft import __version__

        typer.echo(f"whisperft {__version__}")
        raise typer.Exit()


@app.callback(epilog="Start here: whisperft doctor, then whisperft configs. Every command takes --help.")
def main(
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks and debug logs.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    _state["debug"] = debug
    setup_logging(debug)


def _fail(exc: BaseException) -> None:
    if _state["debug"]:
        raise exc
    if isinstance(exc, WhisperftError):
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(exc.exit_code)
    if isinstance(exc, KeyboardInterrupt):
        typer.echo("interrupted", err=True)
        raise typer.Exit(130)
    typer.echo(f"error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)", err=True)
    raise typer.Exit(1)


def _run(fn: Any, *args: Any, transformers: bool = True, **kwargs: Any) -> Any:
    try:
        if transformers:
            _quiet_transformers()
        return fn(*args, **kwargs)
    except typer.Exit:
        raise
    except Exception as exc:
        _fail(exc)
    except KeyboardInterrupt as exc:
        _fail(exc)


def _counter(total: int | None, label: str) -> Any:
    """A transient progress bar on stderr, and its advance function. Off when stderr is no terminal: rich
    would leave a blank line where the bar was, ahead of the results or the error line."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    progress = Progress(*columns, console=console, transient=True, disable=not console.is_terminal)
    task = progress.add_task(label, total=total)
    return progress, (lambda n: progress.advance(task, n))


@app.command(epilog="Example: whisperft prepare --lang sv --source cv-corpus/sv-SE --model small --out data/sv")
def prepare(
    lang: Annotated[str, typer.Option("--lang", help="Language: sv, swedish, sv-SE ...")],
    source: Annotated[
        str | None,
        typer.Option(
            help="Common Voice folder or .tar.gz, .csv/.tsv/.jsonl manifest, audiofolder, save_to_disk folder, "
            "or hub:NAME[:CONFIG]. Default: FLEURS for --lang."
        ),
    ] = None,
    model: Annotated[str, typer.Option(help="Model whose tokenizer and feature size to use.")] = PrepareRequest.model,
    out: Annotated[Path | None, typer.Option(help="Feature store folder (default data/<lang>).")] = None,
    max_duration: Annotated[
        float, typer.Option(help="Skip clips longer than this (seconds).")
    ] = PrepareRequest.max_duration,
    num_proc: Annotated[int | None, typer.Option(help="Worker processes (default: all cores).")] = None,
    min_chars_per_second: Annotated[
        float, typer.Option(help="Skip clips with fewer letters/digits per second of audio (implausible_rate).")
    ] = PrepareRequest.min_chars_per_second,
    max_chars_per_second: Annotated[
        float, typer.Option(help="Skip clips with more letters/digits per second (truncated or mislabelled).")
    ] = PrepareRequest.max_chars_per_second,
    audio: Annotated[
        str | None,
        typer.Option(help="Also keep each clip's audio (opus, ~12 MB/h; or flac, lossless) for data.augment."),
    ] = None,
    align_model: Annotated[
        str,
        typer.Option(
            help="Long recordings: the model that transcribes them to align their text (a fine-tune in "
            "the language aligns better; a CTranslate2 folder runs faster-whisper)."
        ),
    ] = PrepareRequest.align_model,
    max_cer: Annotated[
        float,
        typer.Option(
            help="Long recordings: keep a sentence only where its text and the transcript differ by at "
            "most this CER (0-1)."
        ),
    ] = PrepareRequest.max_cer,
) -> None:
    """Decode, filter and featurize speech data into a compact feature store.

    A folder of long recordings, each beside its text (chapter01.mp3 + chapter01.txt), is cut into
    clips at pauses, where the text matches what was read (docs/long-recordings.md)."""

    def go() -> None:
        from whisperft.prepare.run import prepare as run

        _note_new_language(lang)
        request = PrepareRequest(
            source=source,
            lang=lang,
            model=model,
            out=out,
            max_duration=max_duration,
            num_proc=num_proc,
            min_chars_per_second=min_chars_per_second,
            max_chars_per_second=max_chars_per_second,
            audio=audio,
            align_model=align_model,
            max_cer=max_cer,
        )
        progress, tick = _counter(None, "prepare")
        with progress:
            result = run(request, progress=tick)
        for split, rep in result.report.items():
            skipped = ", ".join(f"{k} {v}" for k, v in rep["skipped"].items()) or "none"
            typer.echo(
                f"{split}: read {rep['read']}, kept {rep['kept']} ({rep['hours'] * 60:.1f} min), skipped: {skipped}"
            )
        if result.alignment:
            a = result.alignment
            typer.echo(
                f"long recordings: {a['hours_recovered'] * 60:.1f} min recovered as clips of "
                f"{a['hours_recorded'] * 60:.1f} min recorded ({a['hours_speech'] * 60:.1f} min of speech, "
                f"{a['hours_not_in_text'] * 60:.1f} min not in the text)"
            )
        typer.echo(f"feature store: {result.out} (report: {result.out / 'prepare_report.json'})")

    _run(go)


def _note_new_language(lang: str) -> None:
    """Say when ``--lang`` names a language Whisper has no token for: "se" is Northern Sami, not Swedish."""
    from whisperft.languages import get_language

    language = get_language(lang)  # a note only: the stage decides the language
    if not language.whisper:
        typer.echo(
            f"note: --lang {lang} is {language.name} ({language.code}), which Whisper has no token for; "
            "training gives it one (language_token)",
            err=True,
        )


@app.command(epilog="Example: whisperft train configs/small-1000.yaml train.max_steps=2000 train.learning_rate=3e-5")
def train(
    config: Annotated[Path, typer.Argument(help="YAML config, or a shipped config's name (whisperft configs).")],
    overrides: Annotated[
        list[str] | None, typer.Argument(help="Dotted overrides: train.max_steps=20 model=base")
    ] = None,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="No progress bar.")] = False,
) -> None:
    """Fine-tune (or resume fine-tuning) as a YAML config says."""

    def go() -> None:
        from whisperft.config import find_config, load_config
        from whisperft.train.loop import train as run

        path = find_config(config)
        cfg = load_config(path, overrides or [])
        result = run(cfg, str(path), progress=not no_progress and sys.stderr.isatty())
        best = f", best WER {result.best_wer:.4f} at step {result.best_step}" if result.best_wer is not None else ""
        typer.echo(f"trained {result.steps} steps in {result.seconds:.0f} s{best}; model: {result.final_dir}")
        if result.out_of_time:
            typer.echo(
                f"train.time_budget {cfg.train.time_budget} used up at step {result.steps} of "
                f"{cfg.train.max_steps}: checkpoint saved, final/ holds the best model so far. "
                "Run the same command again to continue."
            )

    _run(go)


@app.command(epilog="Example: whisperft plan configs/small-1000.yaml --gpu-memory 16GB")
def plan(
    config: Annotated[Path, typer.Argument(help="YAML config, or a shipped config's name (whisperft configs).")],
    overrides: Annotated[list[str] | None, typer.Argument(help="Dotted overrides, as for train.")] = None,
    gpu_memory: Annotated[
        str | None, typer.Option(help="The GPU's memory, e.g. 16GB. Default: this machine's GPU, else 16GB.")
    ] = None,
    gpus: Annotated[
        int, typer.Option(min=1, help="GPUs for the sharded rows (ZeRO-2, ZeRO-3, FSDP).")
    ] = PlanRequest.gpus,
) -> None:
    """Estimate a run's peak GPU memory for each method, precision and checkpointing, and the largest batch;
    then per GPU when N GPUs shard the training state."""

    def go() -> None:
        from whisperft.train.plan import run_plan

        report = run_plan(
            PlanRequest(config=config, overrides=tuple(overrides or ()), gpu_memory=gpu_memory, gpus=gpus)
        )
        _print_plan(report)
        _print_shards(report)

    _run(go)


def _print_plan(report: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    from whisperft.train.plan import describe

    cfg, mc, rows, tokens, why = report.cfg, report.model, report.rows, report.tokens, report.why
    budget, where = report.budget, report.where
    gb = 1024**3
    params = rows[0].estimate.weights / (6 if rows[0].plan.precision in ("fp16", "bf16") else 4)
    typer.echo(
        f"{cfg.model.name}: {params / 1e6:.1f} M parameters, encoder window "
        f"{mc.max_source_positions / 50:.1f} s, labels up to {tokens} tokens ({why})"
    )
    batch = cfg.train.batch_size
    table = Table(title=f"Estimated peak GPU memory (GB) at batch {batch}; {budget / gb:.0f} GB ({where})")
    for col in ("plan", "weights", "grads + optimizer", "per example", f"batch {batch}", "largest batch"):
        table.add_column(col, justify="left" if col == "plan" else "right")
    for r in rows:
        e = r.estimate
        fits = "" if r.at_batch <= budget else " (too big)"
        table.add_row(
            describe(r.plan) + ("  <- this config" if r.is_config else ""),
            f"{e.weights / gb:.2f}",
            f"{(e.gradients + e.optimizer) / gb:.2f}",
            f"{e.activations_per_example / gb:.3f}",
            f"{r.at_batch / gb:.1f}{fits}",
            str(r.largest_batch) if r.largest_batch else "none fits",
        )
    Console(width=120).print(table)
    typer.echo(
        "An estimate: weights, gradients, optimizer state and saved activations, plus 10% for the allocator "
        'and 0.5 GB for CUDA; within 5% of measured CPU steps (docs/levers.md, "Memory planning").'
    )


def _print_shards(report: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    from whisperft.train.plan import SHARDINGS

    cfg, rows, gpus, budget = report.cfg, report.shards, report.gpus, report.budget
    gb = 1024**3
    batch = cfg.train.batch_size
    table = Table(title=f"This config per GPU over {gpus} GPU{'s' * (gpus > 1)} (GB) at batch {batch} per GPU")
    for col in ("sharding", "weights", "grads + optimizer", f"batch {batch}", "largest batch", "accelerate config"):
        table.add_column(col, justify="left" if col in ("sharding", "accelerate config") else "right")
    for r in rows:
        name, path = SHARDINGS[r.strategy]
        e = r.estimate
        fits = "" if r.at_batch <= budget else " (too big)"
        table.add_row(
            name,
            f"{e.weights / gb:.2f}",
            f"{(e.gradients + e.optimizer) / gb:.2f}",
            f"{r.at_batch / gb:.1f}{fits}",
            str(r.largest_batch) if r.largest_batch else "none fits",
            path or "accelerate launch (multi-GPU)",
        )
    Console(width=140).print(table)
    typer.echo(
        "Sharded rows follow the ZeRO paper's accounting, plus the layers FSDP and ZeRO-3 gather "
        "(docs/several-gpus.md)."
    )


@app.command(
    epilog="Examples: whisperft sweep small-1000 train.learning_rate=1e-5,3e-5 train.batch_size=8,16\n\n"
    "whisperft sweep small-1000 'train.learning_rate=loguniform(1e-6,1e-4)' --search optuna --trials 16 "
    "--address auto"
)
def sweep(
    config: Annotated[Path, typer.Argument(help="YAML config, or a shipped config's name (whisperft configs).")],
    params: Annotated[
        list[str] | None,
        typer.Argument(
            help="Swept keys (key=v1,v2 or key=uniform|loguniform|randint(low,high)) and fixed overrides "
            "for every trial (key=value)."
        ),
    ] = None,
    search: Annotated[str, typer.Option(help="grid, random or optuna (TPE).")] = SweepRequest.search,
    trials: Annotated[
        int | None, typer.Option(help="Samples for random and optuna (default 8); repeats of the grid (default 1).")
    ] = None,
    concurrent: Annotated[
        int | None, typer.Option(help="At most this many trials at once (default: one per GPU, else per CPU).")
    ] = None,
    address: Annotated[
        str | None, typer.Option(help="Join the Ray cluster of this node (auto, or HOST:6379), not a local Ray.")
    ] = None,
    asha: Annotated[bool, typer.Option(help="Stop trials early on validation WER (ASHA).")] = SweepRequest.asha,
    out: Annotated[Path | None, typer.Option(help="The sweep's folder. Default: train.output_dir + '-sweep'.")] = None,
) -> None:
    """Train one config at many points on Ray Tune, one run folder each; sweep.csv and sweep.png. Rerun to resume."""

    def go() -> int:
        from whisperft.train.sweep import sweep as run_sweep
        from whisperft.train.sweep_results import SWEEP_CSV, SWEEP_PLOT

        request = SweepRequest(
            config=config,
            args=tuple(params or ()),
            search=search,
            trials=trials,
            concurrent=concurrent,
            address=address,
            asha=asha,
            out=out,
            debug=_state["debug"],
        )
        result = run_sweep(request)
        rows, folder = result.rows, result.folder
        for r in rows:
            typer.echo(f"{r['trial']}: dev WER {r['dev_wer'] or '-'}%  {r['status']}")
        typer.echo(f"results: {folder / SWEEP_CSV}   plot: {folder / SWEEP_PLOT}   Ray: {folder / 'ray'}")
        return 1 if any(r["status"].startswith("failed") for r in rows) else 0

    code = _run(go)
    if code:
        raise typer.Exit(code)


@app.command("eval", epilog="Example: whisperft eval --model runs/small-1000/final --data data/sv --split test")
def eval_cmd(
    data: Annotated[
        str,
        typer.Option(
            help="Feature store (a folder, or an fsspec URL: hf://datasets/user/store, s3://..., gs://...), "
            "or any source prepare accepts."
        ),
    ],
    model: Annotated[
        str | None,
        typer.Option(
            help="Model spec: size, Hub id, folder, run folder, bundled:NAME, or a CTranslate2 folder "
            "(whisperft export; evaluated batched through ctranslate2). Default: newest run."
        ),
    ] = None,
    split: Annotated[str | None, typer.Option(help="Split (default: test, else validation).")] = None,
    lang: Annotated[str | None, typer.Option(help="Language (default: the store's).")] = None,
    batch_size: Annotated[int, typer.Option(min=1)] = EvalRequest.batch_size,
    num_beams: Annotated[int | None, typer.Option(min=1, help=BEAMS_HELP)] = None,
    max_samples: Annotated[int | None, typer.Option(min=1, help="Evaluate only the first N utterances.")] = None,
    max_new_tokens: Annotated[int | None, typer.Option(min=1, help="Cap on tokens generated per utterance.")] = None,
    out: Annotated[
        Path, typer.Option(help="metrics.json to write (or a folder to write it in); predictions.jsonl goes beside it.")
    ] = Path(METRICS),
    trust_pickle: Annotated[bool, typer.Option("--trust-pickle", help="Allow pickle (*.bin) weights.")] = False,
    report: Annotated[
        bool,
        typer.Option(
            "--report",
            help="Also write report.html beside metrics.json: worst utterances aligned, frequent substitutions, "
            "WER by clip duration.",
        ),
    ] = False,
) -> None:
    """Measure WER and CER of a model on a dataset."""

    def go() -> None:
        from whisperft.evaluate.run import run_eval

        request = EvalRequest(
            model=model,
            data=data,
            split=split,
            lang=lang,
            batch_size=batch_size,
            num_beams=num_beams,
            max_samples=max_samples,
            max_new_tokens=max_new_tokens,
            out=out,
            trust_pickle=trust_pickle,
            report=report,
        )
        progress, tick = _counter(None, "eval")

        def total(n: int) -> None:  # the bar's total, known once the data is open
            progress.update(progress.task_ids[0], total=n)

        with progress:
            result = run_eval(request, progress=tick, on_start=total)
        _print_eval(result)
        metrics = request.metrics_path
        typer.echo(f"metrics: {metrics}" + (f"   report: {metrics.with_name('report.html')}" if report else ""))

    _run(go)


@app.command(
    epilog="Example: whisperft label radio/ --model bundled:base --lang es --out data/radio-labels, then "
    "whisperft prepare --lang es --source data/radio-labels/manifest.csv"
)
def label(
    audio: Annotated[list[str], typer.Argument(help="Recordings without text: files or folders.")],
    out: Annotated[Path, typer.Option(help="Folder for clips/, manifest.csv and rejected.csv.")],
    model: Annotated[
        str | None,
        typer.Option(
            help="The teacher: a model spec, run or CTranslate2 folder (on faster-whisper with the ct2 extra). "
            "Default: newest run."
        ),
    ] = None,
    lang: Annotated[str | None, typer.Option(help="The recordings' language. Default: the model's own.")] = None,
    batch_size: Annotated[int, typer.Option(min=1)] = LabelRequest.batch_size,
    num_beams: Annotated[int | None, typer.Option(min=1, help=BEAMS_HELP)] = None,
    max_clip_seconds: Annotated[
        float, typer.Option(help="Longest clip, cut at pauses.")
    ] = LabelRequest.max_clip_seconds,
    min_avg_logprob: Annotated[
        float, typer.Option(help="Reject a label whose mean token log-probability is lower (low_confidence).")
    ] = LabelRequest.min_avg_logprob,
    max_no_speech_prob: Annotated[
        float, typer.Option(help="With a low log-probability, reject as no_speech above this <|nospeech|> probability.")
    ] = LabelRequest.max_no_speech_prob,
    max_compression_ratio: Annotated[
        float, typer.Option(help="Reject a label that repeats itself more (repetition).")
    ] = LabelRequest.max_compression_ratio,
    compute_type: Annotated[str, typer.Option(help="CTranslate2 models only.")] = LabelRequest.compute_type,
    trust_pickle: Annotated[bool, typer.Option("--trust-pickle", help="Allow pickle (*.bin) weights.")] = False,
) -> None:
    """Pseudo-label recordings that have no text: clips cut at pauses, each transcribed and kept in manifest.csv
    (for prepare --source) or listed in rejected.csv with its reason."""

    def go() -> None:
        from whisperft.label.run import label as run_label

        request = LabelRequest(
            audio=tuple(audio),
            model=model,
            out=out,
            lang=lang,
            batch_size=batch_size,
            num_beams=num_beams,
            compute_type=compute_type,
            max_clip_seconds=max_clip_seconds,
            min_avg_logprob=min_avg_logprob,
            max_no_speech_prob=max_no_speech_prob,
            max_compression_ratio=max_compression_ratio,
            trust_pickle=trust_pickle,
            quiet=not _state["debug"],
        )
        result = run_label(request)
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(result.rejected.items())) or "none"
        typer.echo(
            f"kept {result.kept} clips ({result.seconds_kept / 60:.1f} min) of {result.files} files; "
            f"rejected {sum(result.rejected.values())}: {reasons}"
        )
        typer.echo(f"manifest: {result.manifest}   rejected: {result.rejected_manifest}")

    _run(go, transformers=False)


@app.command(
    epilog="Example: whisperft transcribe talk.mp3 --model runs/small-1000/final --format srt --output-dir subs"
)
def transcribe(
    audio: Annotated[list[str], typer.Argument(help="Audio files or folders.")],
    model: Annotated[
        str | None, typer.Option(help="Model spec, or a CTranslate2 folder. Default: the newest run under ./runs.")
    ] = None,
    lang: Annotated[
        str | None,
        typer.Option(help="Language code, or auto to detect. Default: the model's own (a fine-tune's), else auto."),
    ] = None,
    format: Annotated[str, typer.Option("--format", help="txt, srt, vtt or json.")] = TranscribeRequest.format,
    output_dir: Annotated[Path | None, typer.Option(help="Write <name>.<format> files here.")] = None,
    batch_size: Annotated[int, typer.Option(min=1)] = TranscribeRequest.batch_size,
    num_beams: Annotated[int | None, typer.Option(min=1, help=BEAMS_HELP)] = None,
    task: Annotated[str, typer.Option(help="transcribe or translate.")] = TranscribeRequest.task,
    timestamps: Annotated[
        bool | None,
        typer.Option(
            help="Timestamped segments inside each chunk (default: on for srt, vtt and json, off for txt); "
            "--no-timestamps: one segment per chunk."
        ),
    ] = None,
    trust_pickle: Annotated[bool, typer.Option("--trust-pickle", help="Allow pickle (*.bin) weights.")] = False,
    compute_type: Annotated[
        str, typer.Option(help="CTranslate2 models only: default (as exported), int8, int8_float32, float32...")
    ] = TranscribeRequest.compute_type,
) -> None:
    """Transcribe audio of any length to text or subtitles. A CTranslate2 model folder takes the fast path."""

    def go() -> int:
        from whisperft.transcribe.run import transcribe as run_transcribe

        result = run_transcribe(
            TranscribeRequest(
                audio=tuple(audio),
                model=model,
                lang=lang,
                format=format,
                output_dir=output_dir,
                batch_size=batch_size,
                num_beams=num_beams,
                task=task,
                timestamps=timestamps,
                trust_pickle=trust_pickle,
                compute_type=compute_type,
                quiet=not _state["debug"],
            )
        )
        for _f, msg in result.errors:
            typer.echo(f"error: {msg}", err=True)
        for t in [] if result.written else result.transcripts:
            typer.echo((f"{t.file}: " if result.files > 1 else "") + t.text)
        for source, target in result.written:
            typer.echo(f"{source} -> {target}")
        return 1 if result.errors else 0

    code = _run(go, transformers=False)
    if code:
        raise typer.Exit(code)


@app.command(epilog="Example: whisperft serve --model runs/small-1000/final --compare bundled:base")
def serve(
    model: Annotated[
        str | None, typer.Option(help="Model spec, or a CTranslate2 folder. Default: the newest run under ./runs.")
    ] = None,
    compare: Annotated[str | None, typer.Option(help="A second model, shown side by side with its time.")] = None,
    host: Annotated[
        str, typer.Option(help="Address to bind; 0.0.0.0 opens the app to your network.")
    ] = ServeRequest.host,
    port: Annotated[int, typer.Option(min=1, max=65535)] = ServeRequest.port,
    lang: Annotated[
        str | None,
        typer.Option(help="The language the page starts with, or auto. Default: the model's own, else auto."),
    ] = None,
    dataset_dir: Annotated[
        Path, typer.Option(help="Where the Record tab adds clips (a Common Voice style folder).")
    ] = ServeRequest.dataset_dir,
    max_upload_mb: Annotated[int, typer.Option(min=1, help="Largest upload accepted.")] = ServeRequest.max_upload_mb,
    max_seconds: Annotated[float, typer.Option(min=1, help="Longest audio transcribed.")] = ServeRequest.max_seconds,
    compute_type: Annotated[
        str, typer.Option(help="CTranslate2 models only: default, int8, float32...")
    ] = ServeRequest.compute_type,
    trust_pickle: Annotated[bool, typer.Option("--trust-pickle", help="Allow pickle (*.bin) weights.")] = False,
    review: Annotated[
        Path | None, typer.Option(help="A whisperft label folder: a Review tab to accept, correct or drop its labels.")
    ] = None,
) -> None:
    """A web app (Gradio) to try a model: microphone or upload, timestamps, SRT, compare, record a dataset."""

    def go() -> None:
        request = ServeRequest(
            model=model,
            compare=compare,
            host=host,
            port=port,
            lang=lang,
            dataset_dir=dataset_dir,
            max_upload_mb=max_upload_mb,
            max_seconds=max_seconds,
            compute_type=compute_type,
            trust_pickle=trust_pickle,
            review=review,
            quiet=not _state["debug"],
        )
        try:
            from whisperft.serve import run_serve  # deferred: gradio takes seconds to import
        except ImportError as exc:
            raise missing_extra("whisperft serve", ["gradio"], f"({exc.name} is missing)") from None
        run_serve(request)

    _run(go, transformers=False)


@app.command("import-ct2", epilog="Example: whisperft import-ct2 faster-whisper-small/ small-hf/")
def import_ct2_cmd(
    ct2_dir: Annotated[Path, typer.Argument(help="A CTranslate2 / faster-whisper model folder.")],
    out_dir: Annotated[Path, typer.Argument(help="Where to write the Hugging Face model folder.")],
) -> None:
    """Convert a CTranslate2 Whisper model into a Hugging Face model folder."""

    def go() -> None:
        from whisperft.models.ct2_format import import_ct2

        if not ct2_dir.is_dir():
            raise UsageError(f"{ct2_dir} is not a folder")
        typer.echo(f"converted: {import_ct2(ct2_dir, out_dir)}")

    _run(go)


@app.command(epilog="Example: whisperft export runs/small-1000 small-ggml --to ggml --quantization q5_0")
def export(
    model: Annotated[str, typer.Argument(help="Model spec to export.")],
    out: Annotated[Path, typer.Argument(help="Output folder.")],
    to: Annotated[
        str,
        typer.Option(
            "--to",
            help="Target: ct2 (faster-whisper), ggml (whisper.cpp), onnx (onnxruntime, optimum's layout) or "
            "openai (openai-whisper's load_model).",
        ),
    ] = ExportRequest.to,
    quantization: Annotated[
        str | None,
        typer.Option(
            help="ct2: int8 (default), int8_float16, int8_float32, float16, bfloat16, float32; ggml: f16 "
            "(default), q8_0, q5_0; onnx: float32 (default), int8; openai: float16 (default), float32."
        ),
    ] = None,
    verify_audio: Annotated[list[Path] | None, typer.Option(help="Clips for the parity check.")] = None,
    lang: Annotated[str | None, typer.Option(help="Language for the parity check (default: the model's).")] = None,
    no_verify: Annotated[bool, typer.Option("--no-verify", help="Skip the parity check.")] = False,
) -> None:
    """Export a model for another Whisper client, and check that it transcribes as the model does there."""

    def go() -> None:
        from whisperft.export.run import export as run_export

        request = ExportRequest(
            model=model,
            out=out,
            to=to,
            quantization=quantization,
            verify_audio=tuple(verify_audio) if verify_audio else None,
            lang=lang,
            verify=not no_verify,
        )
        res = run_export(request)
        if res.parity_wer is not None:
            typer.echo(
                f"parity: {100 * res.parity_wer:.1f}% WER between the HF model's and the export's outputs on "
                f"{len(res.pairs)} clips (tolerance {100 * res.tolerance:.0f}%)"
            )
        typer.echo(f"exported ({to}, {res.quantization}): {res.out}")

    _run(go)


@app.command(epilog="Example: whisperft languages Kyrgyz nan-tw;  whisperft languages | grep -i swedish")
def languages(
    names: Annotated[
        list[str] | None, typer.Argument(help="Codes, locales or names to look up (default: Whisper's list).")
    ] = None,
) -> None:
    """List Whisper's language codes with their Common Voice locale and FLEURS config, or look some up."""

    def go() -> None:
        from whisperft.languages import LANGUAGES, get_language

        for lang in [get_language(n) for n in names] if names else LANGUAGES.values():
            line = f"{lang.code:5} {lang.name:16} cv={lang.common_voice:8} fleurs={lang.fleurs or '-'}"
            if not lang.whisper:
                line += "  (no Whisper token: trains under a related language's, see language_token)"
            typer.echo(line)
        if not names:
            typer.echo(
                "Any other language (ISO 639 code, Common Voice locale or name: eo, gn, ky-KG, Uyghur) trains "
                "under a related language's token: see language_token."
            )

    _run(go, transformers=False)


PrivateOption = Annotated[bool, typer.Option("--private", help="Create the repository private.")]
DryRunOption = Annotated[bool, typer.Option("--dry-run", help="List what would be uploaded, with sizes; offline.")]


def _print_upload(plan: Any, private: bool, dry_run: bool) -> None:
    from whisperft.publish import human_size

    verb = "would push" if dry_run else "pushing"
    typer.echo(
        f"{verb} {len(plan.files)} files ({human_size(plan.total_bytes)}) to {plan.repo_type} repo "
        f"{plan.repo_id} ({'private' if private else 'public'}):"
    )
    width = max(len(f) for f, _ in plan.files)
    for name, size in plan.files:
        typer.echo(f"  {name:{width}}  {human_size(size):>9}")


@app.command(epilog="Example: whisperft push runs/small-1000 --repo-id you/whisper-small-sv --dry-run")
def push(
    model: Annotated[str, typer.Argument(help="A run folder (its final/) or a model folder.")],
    repo_id: Annotated[str, typer.Option(help="Hub repository: user/name or org/name.")],
    private: PrivateOption = False,
    dry_run: DryRunOption = False,
) -> None:
    """Upload a fine-tuned model (weights, processor, model card, curves) to the Hugging Face Hub."""

    def go() -> None:
        from whisperft.models.registry import resolve_model
        from whisperft.publish import model_upload, upload

        path = Path(resolve_model(model))
        if not path.is_dir():
            raise UsageError(f"{model} is not a local model folder or run")
        plan = model_upload(path, repo_id)
        _print_upload(plan, private, dry_run)
        if not dry_run:
            typer.echo(f"pushed: {upload(plan, private)}")

    _run(go)


@app.command("push-store", epilog="Example: whisperft push-store data/sv --repo-id you/cv-sv-features --dry-run")
def push_store(
    store: Annotated[Path, typer.Argument(help="A feature store folder (from whisperft prepare).")],
    repo_id: Annotated[str, typer.Option(help="Hub dataset repository: user/name or org/name.")],
    private: PrivateOption = False,
    dry_run: DryRunOption = False,
) -> None:
    """Upload a prepared feature store as a Hub dataset, with a dataset card; train from hf://datasets/REPO."""

    def go() -> None:
        from whisperft.data.store import FeatureStore
        from whisperft.publish import dataset_card, store_upload, upload

        plan = store_upload(store, repo_id)
        card = dataset_card(FeatureStore(store), repo_id)
        _print_upload(plan, private, dry_run)
        typer.echo(f"  README.md (the dataset card, written by whisperft, {len(card.encode())} B)")
        if not dry_run:
            typer.echo(f"pushed: {upload(plan, private, card)}")

    _run(go, transformers=False)


@app.command(epilog="Example: whisperft doctor")
def doctor() -> None:
    """Report what this machine has for each stage: torch and CUDA, ffmpeg and espeak-ng, disk, the Hub, extras."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from whisperft.doctor import run_checks

    marks = {"ok": "[green]ok[/]", "missing": "[red]missing[/]", "warn": "[yellow]warn[/]", "info": "-"}
    table = Table(show_header=False, box=None)
    for check in run_checks():
        table.add_row(escape(check.name), marks[check.status], escape(check.detail))
    Console().print(table)


@app.command(epilog="Example: whisperft configs, then whisperft train small-1000 train.max_steps=3000")
def configs() -> None:
    """List the shipped training configs, one line each (train NAME uses one from any folder)."""
    from whisperft.config import load_config, shipped_configs

    for name, path in shipped_configs().items():
        cfg = load_config(path)
        t = cfg.train
        about = next((ln[1:].strip() for ln in path.read_text().splitlines()[1:] if ln.startswith("#")), "")
        typer.echo(
            f"{name:12} {cfg.model.name:13} {cfg.language:3} {t.max_steps:>5} steps  lr {t.learning_rate:<9.3g} "
            f"batch {t.batch_size}x{t.gradient_accumulation_steps}  {about}"
        )


def _print_eval(result: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{result.model} on {result.extra.get('split')} ({result.language})")
    for col in ("utterances", "audio (min)", "WER", "CER", "WER norm", "CER norm", "S / D / I", "runaway"):
        table.add_column(col, justify="right")
    rates = (result.wer, result.cer, result.wer_normalized, result.cer_normalized)
    runaway = result.extra.get("token_limit_hits", 0) + result.extra.get("repetition_stops", 0)
    table.add_row(
        str(result.num_utterances),
        f"{result.audio_seconds / 60:.1f}",
        *("n/a" if r is None else f"{100 * r:.2f}%" for r in rates),
        f"{result.extra.get('substitutions')} / {result.extra.get('deletions')} / {result.extra.get('insertions')}",
        str(runaway),
    )
    console = Console()
    console.print(table)
    for note in result.extra.get("notes", []):
        console.print(f"note: {note}")
    if runaway:
        console.print(
            f"runaway: {result.extra.get('token_limit_hits')} utterances reached their token limit and "
            f"{result.extra.get('repetition_stops')} were stopped repeating themselves; the model loops "
            "(predictions.jsonl: stop)"
        )
    if result.headline == "cer":
        console.print("headline metric: CER (this language is written without spaces)")


def run() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    run()
