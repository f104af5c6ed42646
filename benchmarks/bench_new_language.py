"""A language Whisper was never taught: a proxy language's token against a new token, on bundled base.

For Esperanto (Latin script) and Kyrgyz (Cyrillic), neither of which has a Whisper token,
demo/corpus.py writes 200 sentences from a small grammar and espeak-ng speaks them (random voice
variants, speeds, reverb and noise, 48 kHz mp3 as Common Voice ships), split by sentence: 150 to
train on (two renderings each), 10 to validate, 40 to test. Bundled base is then fine-tuned twice
with configs/new-language.yaml, the same steps and seed:

- proxy (``language_token: auto``): under the token of the language base detects most often on
  the training clips;
- new (``language_token: new``): with an added ``<|eo|>`` token, its embedding copied from that proxy's.

Before fine-tuning, base is evaluated with the proxy's token (the best it can do: it has no other).
Both fine-tunes are evaluated with no --lang (the model's own), and on the 10 validation sentences
every 5 steps: the grammar's small vocabulary is learnt within about 20 steps, so how fast each
token gets there says more than where both end. Part of make bench (slow: two trainings
of about 10 minutes per language on 2 cores).

    python -m benchmarks.bench_new_language                    # eo and ky
    python -m benchmarks.bench_new_language --langs eo
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import yaml

from benchmarks.common import DATA, ROOT, cli, emit, prepared, setup

sys.path.insert(0, str(ROOT / "demo"))
import corpus

LANGS = ("eo", "ky")
VARIANTS = {"proxy": "language_token=auto", "new": "language_token=new"}
CONFIG = "configs/new-language.yaml"
METRICS = ("wer", "cer", "wer_normalized", "cer_normalized")
EVAL_EVERY = 5  # steps between validation WERs: the grammar's sentences are learnt within 20 steps


def scores(model: str, store: Path, out: Path, *args: str) -> dict[str, float]:
    """WER and CER in percent of ``model`` on ``store``'s test split; metrics and report in ``out``."""
    metrics = out / "metrics.json"
    if not metrics.is_file():
        cli("eval", "--model", model, "--data", str(store), "--split", "test", "--out", str(metrics), "--report", *args)
    values = json.loads(metrics.read_text())
    return {k: round(100 * values[k], 1) for k in METRICS}


def curve(run: Path) -> dict[int, float]:
    """Validation WER (normalized, percent) by step: how fast each token learns the language."""
    rows = [json.loads(x) for x in (run / "train_log.jsonl").read_text().splitlines() if x.strip()]
    return {r["step"]: round(100 * r["eval_wer_normalized"], 1) for r in rows if "eval_wer_normalized" in r}


def proxy_votes(store: Path) -> dict[str, int]:
    """How often bundled base detects each language on the training clips (what ``auto`` picks from)."""
    from whisperft.data.store import FeatureStore
    from whisperft.models.registry import load_model, load_processor, resolve_model
    from whisperft.train.language_token import detect_proxy

    path = resolve_model("bundled:base")
    model = load_model(path).eval()
    counts = detect_proxy(model, load_processor(path).tokenizer, FeatureStore(store).split("train"))
    return dict(counts.most_common())


def run_language(lang: str, variants: list[str]) -> dict:
    root = DATA / "new-language" / lang
    source = corpus.build(root / "corpus", train_variants=2, n_dev=10, n_test=40, seed=20, lang=lang)
    store = prepared(source, lang, root / "store")
    votes = proxy_votes(store)
    proxy = next(iter(votes))
    before = scores("bundled:base", store, root / "before", "--lang", proxy)
    result: dict = {"votes": votes, "proxy_language": proxy, "before": before}
    for name in variants:
        run = root / name
        shutil.rmtree(run, ignore_errors=True)
        shutil.rmtree(root / f"{name}-test", ignore_errors=True)
        seconds, peak_mb = cli("train", CONFIG, f"language={lang}", f"data.store={store}", f"train.output_dir={run}",
                               f"train.eval_steps={EVAL_EVERY}", "--no-progress", VARIANTS[name],
                               peak=True)  # fmt: skip
        chosen = yaml.safe_load((run / "final" / "config.yaml").read_text())["language_token"]
        result[name] = {"test": scores(str(run / "final"), store, root / f"{name}-test"), "train_s": round(seconds),
                        "peak_mb": round(peak_mb), "language_token": chosen, "curve": curve(run)}  # fmt: skip
        print(lang, name, result[name], flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--langs", nargs="+", default=list(LANGS), choices=LANGS)
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    args = parser.parse_args()
    setup()
    cfg = yaml.safe_load((ROOT / CONFIG).read_text())["train"]
    for lang in args.langs:
        r = run_language(lang, args.variants)
        fields = {f"before_{k}": v for k, v in r["before"].items()}
        for name in VARIANTS:
            if name in r:
                fields.update({f"{name}_{k}": v for k, v in r[name]["test"].items()})
                fields.update({f"{name}_train_s": r[name]["train_s"], f"{name}_peak_mb": r[name]["peak_mb"],
                               f"{name}_validation_wer_by_step": r[name]["curve"]})  # fmt: skip
        proxy_wer = r["proxy"]["test"]["wer_normalized"] if "proxy" in r else None
        new_wer = r["new"]["test"]["wer_normalized"] if "new" in r else None
        emit(
            f"new_language_{lang}",
            target="fine-tuning learns a language Whisper lacks; choose proxy or new token by WER",
            reference_proxy_wer_normalized=proxy_wer,
            ours_new_wer_normalized=new_wer,
            ratio=round(proxy_wer / new_wer, 2) if proxy_wer is not None and new_wer else None,
            proxy_language=r["proxy_language"],
            votes=r["votes"],
            **fields,
            peak_rss_mb=max((r[v]["peak_mb"] for v in VARIANTS if v in r), default=None),
            setting=f"{CONFIG} (bundled base, {cfg['max_steps']} steps of {cfg['batch_size']} packed 30 s windows, "
            f"lr {cfg['learning_rate']:g}) with language={lang}; espeak-ng speech of demo/corpus.py's grammar: "
            "150 train sentences x 2 renderings, 40 test sentences; before: base prompted with the proxy's token",
        )
        (DATA / "new-language" / f"result-{lang}.json").write_text(json.dumps(r, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
