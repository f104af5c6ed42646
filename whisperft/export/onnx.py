"""``whisperft export --to onnx``: an HF Whisper folder -> ONNX graphs in optimum's layout, run by onnxruntime.

The folder holds what optimum's ``ORTModelForSpeechSeq2Seq`` (``use_merged=False``) loads (by its file
and tensor names; not run here, see docs/deploy.md): ``encoder_model.onnx`` (input_features -> last_hidden_state),
``decoder_model.onnx`` (input_ids, encoder_hidden_states -> logits, present.N.{decoder,encoder}.{key,value})
and ``decoder_with_past_model.onnx`` (input_ids, past_key_values.N.* -> logits, present.N.decoder.*), beside
the model's config, generation config, tokenizer and feature extractor. optimum's own exporter (optimum-onnx
0.1) requires transformers < 4.58, so the graphs are traced here with ``torch.onnx.export`` from modules that
call the model's own layers; ``--quantization int8`` is onnxruntime's ``quantize_dynamic`` (8-bit weights,
per output channel).

The decoders' weights are ONNX external data, stored once for both (``decoder_model.onnx_data``). An
encoder whose weights pass protobuf's 2 GiB (medium in float32, large-v3, turbo) keeps them in
``encoder_model.onnx_data`` beside it, as onnx-community's exports do; onnxruntime, optimum and
transformers.js read them from there.

A model trained with a short ``audio_context_s`` keeps its window: its encoder takes
``2 * max_source_positions`` frames, and its preprocessor_config.json says so (``chunk_length``).
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import AutoConfig

from whisperft.errors import WhisperftError
from whisperft.export.parity import check_client
from whisperft.export.standard import ExportResult, parity_code
from whisperft.export.targets import check_request
from whisperft.extras import missing_extra
from whisperft.io import staged_dir
from whisperft.models.decode import RepetitionStop
from whisperft.models.registry import load_model, load_processor
from whisperft.models.whisper import context_frames, decoder_prefix, feature_extractor_for
from whisperft.text import COMPRESSION_RATIO_THRESHOLD, FALLBACK_TEMPERATURES, compression_ratio

ENCODER, DECODER, DECODER_WITH_PAST = "encoder_model.onnx", "decoder_model.onnx", "decoder_with_past_model.onnx"
SHARED_DATA = "decoder_model.onnx_data"  # the weights both decoders hold, stored once (``share_weights``)
ENCODER_DATA = "encoder_model.onnx_data"  # the encoder's weights, when they pass PROTOBUF_LIMIT
OPSET = 17
PROTOBUF_LIMIT = 2**31  # bytes: the largest ONNX graph file that holds its own weights
MAX_NEW_TOKENS = 224  # where OnnxWhisper stops a decode that never ends, as openai-whisper does (448 // 2)


class _Encoder(torch.nn.Module):
    def __init__(self, model: Any) -> None:
        super().__init__()
        self.encoder = model.model.encoder

    def forward(self, input_features: torch.Tensor) -> torch.Tensor:
        return self.encoder(input_features).last_hidden_state


class _Decoder(torch.nn.Module):
    """Whisper's decoder with its key/value caches as plain tensors (B, heads, positions, head_dim).

    Without past: (input_ids, encoder_hidden_states) -> (logits, per layer self key, self value, cross key,
    cross value). With past: (input_ids, per layer self key, self value, cross key, cross value) -> (logits,
    per layer self key, self value). Each step runs the model's own layers (projections, norms, MLP).
    """

    def __init__(self, model: Any, with_past: bool) -> None:
        super().__init__()
        self.decoder, self.with_past = model.model.decoder, with_past
        self.heads = int(model.config.decoder_attention_heads)
        # (d_model, vocab): the output projection, stored once; Whisper ties it to the token embeddings, so
        # tokens are embedded by gathering its columns (a traced Linear would store a transposed second copy)
        self.out_t = torch.nn.Parameter(model.proj_out.weight.detach().T.contiguous(), requires_grad=False)
        self.tied = torch.equal(model.proj_out.weight, model.get_input_embeddings().weight)

    def _split(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, D) -> (B, H, T, D / H)
        return x.view(x.shape[0], x.shape[1], self.heads, -1).transpose(1, 2)

    def _attend(self, attn: Any, h: torch.Tensor, key: torch.Tensor, value: torch.Tensor, causal: bool) -> Any:
        q = self._split(attn.q_proj(h) * attn.scaling)
        weights = q @ key.transpose(2, 3)
        if causal and h.shape[1] > 1:  # the prompt attends causally; one new token sees all of the past
            t = h.shape[1]
            mask = torch.triu(torch.full((t, t), float("-inf"), device=h.device), diagonal=1)
            weights = weights + torch.cat([torch.zeros(t, key.shape[2] - t, device=h.device), mask], dim=1)
        out = torch.softmax(weights, dim=-1) @ value
        return attn.out_proj(out.transpose(1, 2).reshape(h.shape[0], h.shape[1], -1))

    def forward(self, input_ids: torch.Tensor, *states: torch.Tensor) -> tuple[torch.Tensor, ...]:
        dec = self.decoder
        past = 0 if not self.with_past else states[0].shape[2]
        positions = torch.arange(input_ids.shape[1], device=input_ids.device) + past
        tokens = self.out_t[:, input_ids].permute(1, 2, 0) if self.tied else dec.embed_tokens(input_ids)
        h = tokens + dec.embed_positions.weight[positions]
        presents: list[torch.Tensor] = []
        for i, layer in enumerate(dec.layers):
            sa = layer.self_attn
            k, v = self._split(sa.k_proj(h_in := layer.self_attn_layer_norm(h))), self._split(sa.v_proj(h_in))
            if self.with_past:
                k, v = torch.cat([states[4 * i], k], dim=2), torch.cat([states[4 * i + 1], v], dim=2)
                ck, cv = states[4 * i + 2], states[4 * i + 3]
            else:
                ca, enc = layer.encoder_attn, states[0]
                ck, cv = self._split(ca.k_proj(enc)), self._split(ca.v_proj(enc))
            h = h + self._attend(sa, h_in, k, v, causal=True)
            h = h + self._attend(layer.encoder_attn, layer.encoder_attn_layer_norm(h), ck, cv, causal=False)
            h = h + layer.fc2(layer.activation_fn(layer.fc1(layer.final_layer_norm(h))))
            presents += [k, v] if self.with_past else [k, v, ck, cv]
        return (dec.layer_norm(h) @ self.out_t, *presents)


def _state_names(prefix: str, layers: int, cross: bool) -> list[str]:
    kinds = ("decoder", "encoder") if cross else ("decoder",)
    return [f"{prefix}.{i}.{kind}.{kv}" for i in range(layers) for kind in kinds for kv in ("key", "value")]


def export_onnx(
    model_path: str,
    out: str | Path,
    quantization: str = "float32",
    verify_audio: list[np.ndarray] | None = None,
    language: str | None = None,
) -> ExportResult:
    """Write the three ONNX graphs and the model's configs to ``out``, then check that onnxruntime
    transcribes ``verify_audio`` as the HF model does.

    ``quantization``: float32, or int8 (onnxruntime's dynamic quantization of the weights). Raises
    UsageError for another value, WhisperftError when the export or the parity check fails (nothing is
    written then).
    """
    quantization, lang, out = check_request("onnx", quantization), parity_code(language), Path(out)
    model = load_model(model_path, attn_implementation="eager").eval()
    processor = load_processor(model_path)
    processor.feature_extractor = feature_extractor_for(model.config)
    with staged_dir(out) as tmp:
        with tempfile.TemporaryDirectory(prefix="whisperft-onnx-") as work:
            graphs = _trace(model, Path(work))
            graphs = _quantize(graphs, Path(work)) if quantization == "int8" else graphs
            store_encoder(graphs[0], tmp / ENCODER)
            share_weights(graphs[1:], tmp / SHARED_DATA)
        model.config.save_pretrained(tmp)
        model.generation_config.save_pretrained(tmp)
        processor.save_pretrained(tmp)
        processor.feature_extractor.to_json_file(str(tmp / "preprocessor_config.json"))  # what optimum reads
        parity = None
        if verify_audio:
            runner = OnnxWhisper(tmp)
            parity = check_client(
                model_path,
                verify_audio,
                lang,
                quantization,
                "onnxruntime",
                lambda clips, token: runner.transcribe(clips, token, fallback=False),
                MAX_NEW_TOKENS,
            )
    return ExportResult.checked(out, quantization, parity)


def store_encoder(graph: Path, target: Path) -> None:
    """Write the encoder ``graph`` (its weights inside it, or in files beside it, as the exporter left
    them) to ``target``: one file while its weights are under ``PROTOBUF_LIMIT``, else the graph and its
    weights in one external data file, ``ENCODER_DATA``, beside it (ONNX's external data format)."""
    import onnx  # deferred: an optional extra

    proto = onnx.load(str(graph))  # with its external data, if the exporter wrote any
    size = sum(len(t.raw_data) for t in proto.graph.initializer)
    if size < PROTOBUF_LIMIT:
        onnx.save_model(proto, str(target))
        return
    onnx.save_model(
        proto,
        str(target),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=ENCODER_DATA,
        size_threshold=1024,
    )


@torch.inference_mode()
def _trace(model: Any, folder: Path) -> list[Path]:
    """Trace the encoder and both decoders into ``folder``; returns the three paths."""
    cfg = model.config
    layers, frames = int(cfg.decoder_layers), context_frames(cfg)
    features = torch.zeros(1, int(cfg.num_mel_bins), frames)
    hidden = model.model.encoder(features).last_hidden_state
    prompt = torch.tensor([[int(cfg.decoder_start_token_id)] * 4])
    first = _Decoder(model, with_past=False)(prompt, hidden)
    batch, seq, past = {0: "batch_size"}, {0: "batch_size", 1: "decoder_sequence_length"}, "past_sequence_length"
    state_axes = {0: "batch_size", 2: past}
    present_first = _state_names("present", layers, cross=True)
    graphs = {
        ENCODER: (
            _Encoder(model),
            (features,),
            ["input_features"],
            ["last_hidden_state"],
            {"input_features": batch, "last_hidden_state": batch},
        ),
        DECODER: (
            _Decoder(model, with_past=False),
            (prompt, hidden),
            ["input_ids", "encoder_hidden_states"],
            ["logits", *present_first],
            {
                "input_ids": seq,
                "encoder_hidden_states": batch,
                "logits": seq,
                **{n: (state_axes if ".decoder." in n else batch) for n in present_first},
            },
        ),
        DECODER_WITH_PAST: (
            _Decoder(model, with_past=True),
            (prompt[:, :1], *first[1:]),
            ["input_ids", *_state_names("past_key_values", layers, cross=True)],
            ["logits", *_state_names("present", layers, cross=False)],
            {
                "input_ids": batch,
                "logits": batch,
                **{
                    n: (state_axes if ".decoder." in n else batch)
                    for n in _state_names("past_key_values", layers, cross=True)
                },
                **{n: state_axes for n in _state_names("present", layers, cross=False)},
            },
        ),
    }
    paths = []
    for name, (module, args, inputs, outputs, axes) in graphs.items():
        path = folder / name
        try:
            torch.onnx.export(
                module,
                args,
                str(path),
                input_names=inputs,
                output_names=outputs,
                dynamic_axes=axes,
                opset_version=OPSET,
                dynamo=False,
                do_constant_folding=True,
            )
        except Exception as exc:  # the exporter raises many types; one line names the graph
            raise WhisperftError(f"ONNX export of {name} failed: {exc}") from None
        paths.append(path)
    return paths


def _quantize(graphs: list[Path], folder: Path) -> list[Path]:
    """onnxruntime's dynamic quantization: MatMul weights to int8, activations quantized at run time."""
    from onnxruntime.quantization import QuantType, quantize_dynamic  # deferred: an optional extra

    out = folder / "int8"
    out.mkdir(exist_ok=True)
    for path in graphs:
        # external data format: reads and writes a graph of any size
        quantize_dynamic(
            str(path),
            str(out / path.name),
            weight_type=QuantType.QInt8,
            per_channel=True,
            use_external_data_format=True,
        )
    return [out / path.name for path in graphs]


def share_weights(graphs: list[Path], data: Path, min_bytes: int = 1024) -> None:
    """Write ``graphs`` (by name) into ``data``'s folder, the weights they hold alike stored once, in the
    external data file ``data`` beside them.

    Both decoders carry every decoder weight (the two graphs differ only in their cache inputs); ONNX
    external data lets each tensor point at (offset, length) in a shared file, so the folder holds them
    once. Tensors are matched by content (sha256), as the exporter names folded constants per graph.
    Tensors under ``min_bytes`` stay inside their graph.
    """
    import onnx  # deferred: an optional extra
    from onnx.external_data_helper import set_external_data

    offsets: dict[str, tuple[int, int]] = {}
    with open(data, "wb") as blob:
        models = [onnx.load(str(path)) for path in graphs]
        for model in models:
            for tensor in model.graph.initializer:
                raw = tensor.raw_data
                if len(raw) < min_bytes:
                    continue
                key = hashlib.sha256(raw).hexdigest()
                if key not in offsets:
                    pad = -blob.tell() % 64  # aligned, as onnx's own writer does for mmap
                    blob.write(b"\0" * pad)
                    offsets[key] = (blob.tell(), len(raw))
                    blob.write(raw)
                offset, length = offsets[key]
                set_external_data(tensor, data.name, offset, length)
                tensor.ClearField("raw_data")
    for model, path in zip(models, graphs, strict=True):
        onnx.save_model(model, str(data.parent / path.name))


class OnnxWhisper:
    """An exported folder run by plain onnxruntime: greedy decoding with the key/value cache, the
    generation config's suppressed tokens, and the folder's tokenizer and feature extractor; as in the
    other engines, a row that loops stops at once (``RepetitionStop``) and is sampled again at each
    fallback temperature in turn (``text.FALLBACK_TEMPERATURES``) until it no longer repeats itself.

    whisperft's tests and ``make bench`` run the exported graphs through it; optimum's
    ``ORTModelForSpeechSeq2Seq`` runs the same graphs in its own loop.
    """

    def __init__(self, folder: str | Path, threads: int = 0) -> None:
        try:
            import onnxruntime as ort  # deferred: an optional extra, slow to import
        except ImportError:
            raise missing_extra("the ONNX export", ["onnxruntime"]) from None
        folder = Path(folder)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        providers = ["CPUExecutionProvider"]
        self.encoder, self.decoder, self.decoder_with_past = (
            ort.InferenceSession(str(folder / name), options, providers=providers)
            for name in (ENCODER, DECODER, DECODER_WITH_PAST)
        )
        self.processor = load_processor(str(folder))
        self.config = AutoConfig.from_pretrained(str(folder))
        gen = json.loads((folder / "generation_config.json").read_text(encoding="utf-8"))
        self.eot = int(gen["eos_token_id"])
        self.suppress = [int(t) for t in gen.get("suppress_tokens") or []]
        self.begin_suppress = [int(t) for t in gen.get("begin_suppress_tokens") or []]
        self.past_names = [i.name for i in self.decoder_with_past.get_inputs()[1:]]

    def generate(
        self,
        features: np.ndarray,
        prompt: list[int],
        max_new_tokens: int = MAX_NEW_TOKENS,
        temperature: float = 0.0,
        stop_repeats: bool = False,
        seed: int = 0,
    ) -> list[list[int]]:
        """Token ids after ``prompt`` for each row of (B, n_mels, frames) float32 features: greedy, or
        sampled at ``temperature`` (numpy's generator seeded with ``seed``). ``stop_repeats``: a row ends
        (without <|endoftext|>) as soon as it loops by ``text.runaway_stop``'s rule."""
        hidden = self.encoder.run(None, {"input_features": features.astype(np.float32)})[0]
        ids = np.array([prompt] * len(features), dtype=np.int64)
        logits, *states = self.decoder.run(None, {"input_ids": ids, "encoder_hidden_states": hidden})
        cross = [s for i, s in enumerate(states) if i % 4 >= 2]
        out: list[list[int]] = [[] for _ in features]
        done = np.zeros(len(features), dtype=bool)
        rng, stop, history = np.random.default_rng(seed), RepetitionStop(), []
        for step in range(max_new_tokens):
            last = logits[:, -1, :].astype(np.float64)
            last[:, self.suppress + (self.begin_suppress if step == 0 else [])] = -np.inf
            token = last.argmax(axis=-1) if temperature <= 0 else _sample(last / temperature, rng)
            for row, t in enumerate(token):
                if not done[row]:
                    out[row].append(int(t))
            done |= token == self.eot
            if stop_repeats:
                history.append(token)
                done |= stop(torch.from_numpy(np.stack(history, axis=1))).numpy()
            if done.all():
                break
            selfs = [s for i, s in enumerate(states) if i % 4 < 2] if step == 0 else states
            feed = {"input_ids": token[:, None].astype(np.int64)}
            for layer in range(len(cross) // 2):
                names = self.past_names[4 * layer : 4 * layer + 4]
                feed.update(
                    zip(
                        names,
                        (selfs[2 * layer], selfs[2 * layer + 1], cross[2 * layer], cross[2 * layer + 1]),
                        strict=True,
                    )
                )
            logits, *states = self.decoder_with_past.run(None, feed)
        return out

    def transcribe(self, clips: list[np.ndarray], token: str, fallback: bool = True) -> list[str]:
        """Texts of 16 kHz float32 clips (each within the model's window), prompted with language ``token``.

        ``fallback``: a row that loops (stopped by the repetition rule, cut at ``MAX_NEW_TOKENS``, or with a
        compression ratio over ``COMPRESSION_RATIO_THRESHOLD``) is sampled again at each fallback
        temperature until it does not; the last try stands. False: greedy only (what the parity check
        compares with the HF model's greedy decoding)."""
        fe = self.processor.feature_extractor
        feats = fe([np.asarray(c, dtype=np.float32) for c in clips], sampling_rate=16000, return_tensors="np")
        features = feats["input_features"]
        tok = self.processor.tokenizer
        prompt = [int(self.config.decoder_start_token_id), *decoder_prefix(tok, self.config, token, "transcribe")]
        ids = self.generate(features, prompt, stop_repeats=fallback)
        texts = [tok.decode([t for t in row if t < self.eot]).strip() for row in ids]
        if not fallback:
            return texts
        looping = [k for k, row in enumerate(ids) if self._loops(row, texts[k])]
        for temperature in FALLBACK_TEMPERATURES:
            if not looping:
                break
            again = self.generate(features[looping], prompt, temperature=temperature, stop_repeats=True)
            for k, row in zip(looping, again, strict=True):
                texts[k] = tok.decode([t for t in row if t < self.eot]).strip()
            looping = [k for k, row in zip(looping, again, strict=True) if self._loops(row, texts[k])]
        return texts

    def _loops(self, row: list[int], text: str) -> bool:
        """Whether a decoded row repeats itself: it did not end with <|endoftext|> (the repetition stop or
        the token cap ended it), or its text compresses past ``COMPRESSION_RATIO_THRESHOLD``."""
        return not row or row[-1] != self.eot or compression_ratio(text) > COMPRESSION_RATIO_THRESHOLD


def _sample(logits: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One token per row of (B, vocab) logits, drawn from their softmax (-inf: never)."""
    weights = np.exp(logits - logits.max(axis=-1, keepdims=True))
    weights /= weights.sum(axis=-1, keepdims=True)
    return np.array([rng.choice(len(w), p=w) for w in weights])
