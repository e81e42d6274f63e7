"""GPU benchmark (not a test), issue #23: Artemis-7B shapes on one GPU, plain ``generate`` vs the fast path.

The model has the shapes of Artemis-7B -- CLIP ViT-L/14-224 (24 layers, width 1024), the region encoder, Vicuna-7B
(hidden 4096, 32 layers, 32 heads, intermediate 11008, vocabulary 32003) -- with **random weights**, built directly
on the device in ``--dtype`` (bf16 by default; no CPU copy, nothing is read from disk or downloaded). The prompt
comes from the tiny BPE tokenizer of :mod:`artemis_model.tiny` (the LM's placeholder ids are set to its ids):
the ``train`` template gives ~430 positions, as Vicuna's does. The video is synthetic, already decoded
(:class:`~artemis_model.video.array.ArrayVideo`): ``--frames`` frames with 8 moving targets visible throughout.
Answers are compared as token ids (the processor's ``batch_decode`` is replaced by one that prints the ids) and
every generation makes exactly ``--new-tokens`` tokens (``min_new_tokens``), greedy.

Generation modes (:class:`~artemis_model.types.GenerationOptions`): ``plain`` (dynamic KV cache, eager: what
``generate`` does by default), ``static`` (transformers' ``StaticCache``, eager), ``compiled`` (``StaticCache`` +
``torch.compile`` of the decoding step with ``mode="reduce-overhead"``, i.e. CUDA graphs). Printed, per mode:

1. bandwidth: device copy bandwidth (a big ``copy_``), bytes read per decoded token (LM weights without the
   embedding table, plus the KV cache), hence the bandwidth limit in ms per token (measured and nominal);
2. components: frame preprocessing (CPU), vision tower over the global frames, region tokens (CLIP over the RoI
   frames + fuse + RoIAlign + K-means), in ms;
3. one referring answer: end to end from the decoded frames (``prepare_targets`` + ``generate_prepared``), the
   prefill (a 1-token generation), decode ms/token and its ratio to the bandwidth limit, the first call (compile)
   time, identical tokens vs ``plain``, peak memory;
4. 8 targets of one video (prefix sharing, batch 8) end to end vs one target;
5. answers/s with 1, 8, 32 concurrent requests of different videos batched across conversations (generation
   only, and end to end with each request's preparation).

Figures go to stdout and to ``--out-dir`` (``gpu_artemis7b_<device>_<date>.txt`` and ``.json``, rewritten after
every figure: a run stopped half way keeps what it measured). Sections that would not fit in ``--budget-s`` are
skipped (and say so); a failing section prints its error and the rest go on.

Why this fast path first: the plain path's ~25-30 ms per token on a 7B model is kernel-launch overhead (hundreds
of small kernels per token, each waiting on Python), which CUDA graphs remove; transformers' static KV cache +
``torch.compile(mode="reduce-overhead")`` is the ecosystem's way to get them for an unmodified HF model, keeps
the exact model code (so identical greedy tokens are testable on the CPU) and needs nothing beyond the device
image. A serving engine (vLLM, SGLang) would need a port of the model (the scattered video / region embeddings,
the region encoder) and is not on the device image; it is the next step only if these figures miss the goals
(decode > 2x the bandwidth limit, or too few answers/s with many users).

    python benchmarks/gpu_artemis7b.py --out-dir "$OUT"                  # CUDA machine, < 8 min on an H100
    .venv/bin/python benchmarks/gpu_artemis7b.py --dry-run                # same code path: tiny config on the CPU
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # everything is built in memory: never touch the hub
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from transformers import AutoModelForImageTextToText, CLIPImageProcessor  # noqa: E402

from artemis_model.configuration_artemis import ArtemisConfig  # noqa: E402
from artemis_model.features import FeatureCache  # noqa: E402
from artemis_model.generation import PreparedTarget, StaticCachePool, generate_prepared  # noqa: E402
from artemis_model.pipeline import TargetRequest, prepare_targets  # noqa: E402
from artemis_model.processing_artemis import PLACEHOLDER_TOKENS, ArtemisProcessor  # noqa: E402
from artemis_model.selection import choose_track_frames  # noqa: E402
from artemis_model.tiny import tiny_config, tiny_tokenizer  # noqa: E402
from artemis_model.types import GenerationOptions, Track  # noqa: E402
from artemis_model.video import sample_global_indices  # noqa: E402
from artemis_model.video.array import ArrayVideo  # noqa: E402

NOMINAL_BANDWIDTH = {  # bytes/s, from the vendors' data sheets (HBM)
    "H100 PCIe": 2.0e12,
    "H100 NVL": 3.9e12,
    "H100": 3.35e12,  # SXM
    "H200": 4.8e12,
    "A100-SXM4-80GB": 2.04e12,
    "A100 80GB PCIe": 1.94e12,
}
QUESTIONS = (
    None,
    "What is the <region> doing?",
    "Describe where the <region> goes and what it does after it stops near the edge of the screen.",
)
GOALS = {
    "one answer end to end s": 0.6,
    "decode ms/token / bandwidth limit": 2.0,
    "vision + region tokens ms": 100.0,
    "8 targets / 1 target": 1.5,
    "peak memory GB at batch 1": 20.0,
}


class Report:
    """Figures printed as they come and written to ``<stem>.txt`` / ``<stem>.json`` after each one."""

    def __init__(self, stem: Path) -> None:
        self.lines: list[str] = []
        self.figures: dict[str, Any] = {}
        self.txt, self.json = stem.with_suffix(".txt"), stem.with_suffix(".json")
        stem.parent.mkdir(parents=True, exist_ok=True)

    def line(self, text: str) -> None:
        print(text, flush=True)
        self.lines.append(text)
        self.txt.write_text("\n".join(self.lines) + "\n")

    def put(self, key: str, value: Any, text: str | None = None) -> None:
        self.figures[key] = value
        self.json.write_text(json.dumps(self.figures, indent=1, default=str) + "\n")
        self.line(f"{key}: {text if text is not None else value}")


# ---- device, timing ---------------------------------------------------------------------------------------------
def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], Any], device: torch.device) -> tuple[Any, float]:
    """``fn()`` and its wall seconds, the device's queued work included."""
    synchronize(device)
    start = time.perf_counter()
    out = fn()
    synchronize(device)
    return out, time.perf_counter() - start


def repeat(fn: Callable[[], Any], device: torch.device, repeats: int) -> tuple[Any, float, float]:
    """Last result, median and min seconds of ``repeats`` calls."""
    times, out = [], None
    for _ in range(repeats):
        out, t = timed(fn, device)
        times.append(t)
    return out, statistics.median(times), min(times)


def peak_gb(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 1e9 if device.type == "cuda" else None


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def nominal_bandwidth(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, value in NOMINAL_BANDWIDTH.items():  # most specific names first
        if key in name:
            return value
    return None


def measure_bandwidth(device: torch.device, nbytes: int, iters: int = 10) -> float:
    """Device memory bandwidth in bytes/s: a ``copy_`` of ``nbytes`` reads and writes them once each."""
    src = torch.empty(nbytes // 2, dtype=torch.float16, device=device).fill_(1.0)
    dst = torch.empty_like(src)
    dst.copy_(src)  # warm-up
    synchronize(device)
    start = time.perf_counter()
    for _ in range(iters):
        dst.copy_(src)
    synchronize(device)
    return 2 * nbytes * iters / (time.perf_counter() - start)


# ---- model, processor, data -------------------------------------------------------------------------------------
def build(dry_run: bool, device: torch.device, dtype: torch.dtype, attn: str) -> tuple[Any, ArtemisProcessor]:
    """Random-weight Artemis on ``device`` in ``dtype`` (7B shapes, or the tiny config for ``dry_run``)."""
    tokenizer = tiny_tokenizer()
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in PLACEHOLDER_TOKENS}
    placeholder_ids = {
        "image_token_id": ids["<image>"],
        "video_token_id": ids["<video>"],
        "region_token_id": ids["<region>"],
    }
    if dry_run:
        config = tiny_config()
    else:  # ArtemisConfig's defaults are Artemis-7B (CLIP ViT-L/14-224 + Vicuna-7B, vocabulary 32003)
        config = ArtemisConfig(**placeholder_ids)
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForImageTextToText.from_config(config, dtype=dtype, attn_implementation=attn)
    model.eval()
    size = config.vision_config.image_size
    image_processor = CLIPImageProcessor(
        size={"shortest_edge": size}, crop_size={"height": size, "width": size}
    )
    proc = ArtemisProcessor.from_config(config, tokenizer, image_processor)
    # Answers as token ids: the identical-tokens check is exact (the LM's 32003 ids exceed the tiny vocabulary).
    proc.batch_decode = lambda ids, **_: [" ".join(str(int(i)) for i in row) for row in ids]  # type: ignore[method-assign]
    return model, proc


def make_video(
    num_frames: int, width: int, height: int, targets: int, seed: int = 0
) -> tuple[np.ndarray, list[Track]]:
    """``[T, H, W, 3]`` uint8 frames with ``targets`` moving squares, visible on every frame, and their tracks."""
    rng = np.random.default_rng(seed)
    frames = np.repeat(rng.integers(40, 200, size=(1, height, width, 3), dtype=np.uint8), num_frames, axis=0)
    side = max(4, min(width, height) // 6)
    start = rng.uniform([0, 0], [width - side, height - side], size=(targets, 2))
    end = rng.uniform([0, 0], [width - side, height - side], size=(targets, 2))
    colours = rng.integers(0, 255, size=(targets, 3), dtype=np.uint8)
    boxes: list[list[tuple[float, float, float, float]]] = [[] for _ in range(targets)]
    for t in range(num_frames):
        a = t / max(1, num_frames - 1)
        for k in range(targets):
            x, y = np.round(start[k] * (1 - a) + end[k] * a).astype(int)
            frames[t, y : y + side, x : x + side] = colours[k]
            boxes[k].append((float(x), float(y), float(x + side), float(y + side)))
    return frames, [Track(boxes=tuple(b), width=width, height=height) for b in boxes]


def answer_diff(answers: Sequence[str], reference: Sequence[str]) -> tuple[int, int | None]:
    """(rows equal to ``reference``, first differing token position over all rows or ``None``)."""
    equal, first = 0, None
    for a, b in zip(answers, reference, strict=True):
        if a == b:
            equal += 1
            continue
        ta, tb = a.split(), b.split()
        k = next((i for i, (x, y) in enumerate(zip(ta, tb, strict=False)) if x != y), min(len(ta), len(tb)))
        first = k if first is None else min(first, k)
    return equal, first


# ---- the benchmark ------------------------------------------------------------------------------------------------
class Bench:
    def __init__(self, args: argparse.Namespace, report: Report) -> None:
        self.args = args
        self.r = report
        self.device = torch.device(args.device)
        self.deadline = time.monotonic() + args.budget_s
        self.new = args.new_tokens
        self.modes: dict[str, GenerationOptions] = {
            "plain": GenerationOptions(max_new_tokens=self.new),
            "static": GenerationOptions(max_new_tokens=self.new, cache="static"),
            "compiled": GenerationOptions(max_new_tokens=self.new, cache="static", compile=True),
        }
        self.modes = {m: o for m, o in self.modes.items() if m in args.modes}
        self.single_e2e: dict[str, float] = {}
        self.static_caches = StaticCachePool()  # kept between calls: CUDA graphs replay on their buffers
        self.concurrency_reference: dict[int, list[str]] = {}

    # -- helpers
    def left(self) -> float:
        return self.deadline - time.monotonic()

    def section(self, name: str, fn: Callable[[], None], needs_s: float) -> None:
        self.r.line(f"\n== {name} ==")
        if self.left() < needs_s:
            self.r.put(
                f"{name}: skipped",
                True,
                f"SKIPPED: {self.left():.0f} s of the budget left, needs ~{needs_s:.0f} s",
            )
            return
        start = time.monotonic()
        try:
            fn()
        except Exception as exc:  # one failing section must not hide the others' figures
            self.r.put(f"{name}: error", f"{type(exc).__name__}: {exc}")
            self.r.line("".join(traceback.format_exc().splitlines(keepends=True)[-12:]))
        self.r.line(f"({name}: {time.monotonic() - start:.1f} s)")

    def generate(
        self, prepared: Sequence[PreparedTarget], options: GenerationOptions, **kwargs: Any
    ) -> list[str]:
        return generate_prepared(
            self.model,
            self.proc,
            prepared,
            options,
            extra_generate_kwargs={"min_new_tokens": options.max_new_tokens},
            static_caches=self.static_caches,
            **kwargs,
        )

    def prepare(
        self, requests: Sequence[TargetRequest], timings: dict[str, float] | None = None
    ) -> list[PreparedTarget]:
        self.feature_cache = FeatureCache(max_bytes=0)  # a throw-away cache: every call encodes its frames
        return prepare_targets(
            self.model, self.proc, self.video, requests, cache=self.feature_cache, timings=timings
        )

    def request(self, k: int, question: str | None = None) -> TargetRequest:
        track = self.tracks[k % len(self.tracks)]
        return TargetRequest(box=track.boxes[self.key], frame_idx=self.key, track=track, question=question)

    # -- sections
    def setup(self) -> None:
        a, r, dev = self.args, self.r, self.device
        r.put(
            "device",
            str(torch.cuda.get_device_name(dev))
            if dev.type == "cuda"
            else f"cpu ({torch.get_num_threads()} threads)",
        )
        r.put(
            "versions",
            f"torch {torch.__version__}, transformers {transformers.__version__}, python {sys.version.split()[0]}",
        )
        r.put("dtype / attention", f"{a.dtype} / {a.attn}")
        # inductor and triton build their kernel launchers with it
        compiler = shutil.which("cc") or shutil.which("gcc")
        r.put("C compiler (torch.compile)", compiler or "none found: the compiled mode will fail")
        (self.model, self.proc), t_build = timed(
            lambda: build(a.dry_run, dev, getattr(torch, a.dtype), a.attn), dev
        )
        cfg = self.model.config
        lm = self.model.language_model
        count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
        r.put("build s", round(t_build, 2))
        r.put(
            "parameters M",
            {
                "total": round(count(self.model) / 1e6, 1),
                "language model": round(count(lm) / 1e6, 1),
                "vision tower": round(count(self.model.vision_tower) / 1e6, 1),
                "region encoder": round(count(self.model.region_encoder) / 1e6, 1),
            },
        )
        r.put("weights GB on device", round(peak_gb(dev) or 0.0, 2) if dev.type == "cuda" else None)
        self.frames, self.tracks = make_video(a.frames, a.width, a.height, targets=8)
        self.video = ArrayVideo(self.frames)
        _ = self.video.content_hash  # hashed once, as a video already known to the service
        self.key = a.frames // 10
        prompt = self.prepare_prompt_len()
        r.put("prompt positions", prompt)
        r.put(
            "video",
            f"{a.frames} frames {a.width}x{a.height}, {cfg.num_temporal_tokens} global frames sampled, key frame "
            f"{self.key}, {cfg.num_tracked_boxes} tracked boxes per target, {self.new} new tokens",
        )
        self.prompt_len = prompt

    def prepare_prompt_len(self) -> int:
        from artemis_model.processing_artemis import render_prompt
        from artemis_model.prompts import normalize_question, referring_prompt

        text = render_prompt(referring_prompt(normalize_question(None), self.model.config.num_region_tokens))
        return int(self.proc([text])["input_ids"].shape[1])

    def bandwidth(self) -> None:
        r, dev, lm = self.r, self.device, self.model.language_model
        nbytes = (2 << 30) if dev.type == "cuda" else (64 << 20)
        bw = measure_bandwidth(dev, nbytes)
        weight_bytes = sum(p.numel() * p.element_size() for p in lm.parameters())
        embed = lm.get_input_embeddings().weight
        tc = self.model.config.text_config
        head_dim = tc.hidden_size // tc.num_attention_heads
        kv_per_position = 2 * tc.num_hidden_layers * tc.num_key_value_heads * head_dim * embed.element_size()
        kv_bytes = kv_per_position * (self.prompt_len + self.new // 2)  # the mean cache read by a decode step
        per_token = weight_bytes - embed.numel() * embed.element_size() + kv_bytes
        self.per_token_bytes = per_token
        nominal = nominal_bandwidth(dev)
        r.put("copy bandwidth GB/s", round(bw / 1e9, 1))
        r.put("nominal bandwidth GB/s", None if nominal is None else round(nominal / 1e9, 1))
        r.put("LM weights GB", round(weight_bytes / 1e9, 3))
        r.put("bytes read per decoded token GB (weights - embedding table + KV)", round(per_token / 1e9, 3))
        self.limit_ms = per_token / bw * 1e3
        r.put("bandwidth limit ms/token (measured copy bandwidth)", round(self.limit_ms, 3))
        r.put(
            "bandwidth limit ms/token (nominal)",
            None if nominal is None else round(per_token / nominal * 1e3, 3),
        )

    def components(self) -> None:
        a, r, dev, m, p = self.args, self.r, self.device, self.model, self.proc
        cfg = m.config
        track = self.tracks[0]
        global_idx = sample_global_indices(a.frames, cfg.num_temporal_tokens)
        tracked = choose_track_frames(track.visible_frames, cfg.num_tracked_boxes)
        roi = [self.key, *tracked]
        pixels, t_pre = timed(
            lambda: (
                p.preprocess_frames(self.frames[global_idx]),
                p.preprocess_frames(self.frames[roi], purpose="region"),
            ),
            dev,
        )
        px_global, px_roi = (x.to(dev) for x in pixels)
        frame_ids = torch.arange(len(roi))[None]  # [1, 1 + n]
        boxes = p.normalize_boxes([track.boxes[f] for f in roi], a.width, a.height)[None]  # [1, 1 + n, 4]
        with torch.no_grad():
            vision = lambda: m.encode_video_frames(px_global, batch_size=a.vision_batch)  # noqa: E731
            region = lambda: m.build_region_features(px_roi, frame_ids, boxes)  # noqa: E731
            vision(), region()  # warm-up
            _, t_vision, _ = repeat(vision, dev, a.repeats)
            _, t_region, _ = repeat(region, dev, a.repeats)
        r.put(
            "preprocess ms (CPU, global + RoI frames)",
            round(t_pre * 1e3, 1),
            f"{t_pre * 1e3:.1f} ({len(global_idx)} + {len(roi)} frames)",
        )
        r.put("vision tower ms (global frames -> video features)", round(t_vision * 1e3, 1))
        r.put(
            "region tokens ms (CLIP + fuse over the RoI frames, RoIAlign, K-means)", round(t_region * 1e3, 1)
        )
        r.put("vision + region tokens ms", round((t_vision + t_region) * 1e3, 1))

    def single(self) -> None:
        r, dev, new = self.r, self.device, self.new
        req = [self.request(0)]
        prepared = self.prepare(req)  # the same inputs for every mode
        reference = None
        for mode, opts in self.modes.items():
            if self.left() < (90 if mode == "compiled" and not self.args.dry_run else 10):
                r.put(f"single {mode}: skipped", True, "SKIPPED (budget)")
                continue
            _, t_first = timed(lambda opts=opts: self.generate(prepared, opts), dev)  # warm-up / compile
            answers, t_gen, t_gen_min = repeat(
                lambda opts=opts: self.generate(prepared, opts), dev, self.args.repeats
            )
            one = GenerationOptions(max_new_tokens=1, cache=opts.cache, compile=opts.compile)
            _, t_prefill, _ = repeat(lambda one=one: self.generate(prepared, one), dev, self.args.repeats)
            decode_ms = (t_gen - t_prefill) / (new - 1) * 1e3
            reset_peak(dev)
            timings: dict[str, float] = {}

            def e2e(opts: GenerationOptions = opts, timings: dict[str, float] = timings) -> list[str]:
                return self.generate(self.prepare(req, timings), opts)

            e2e_answers, t_e2e, _ = repeat(e2e, dev, self.args.repeats)
            self.single_e2e[mode] = t_e2e
            if reference is None:
                reference = answers
            equal, first = answer_diff(answers + e2e_answers, reference + reference)
            r.put(
                f"single {mode}",
                {
                    "end to end s": round(t_e2e, 3),
                    "generate s": round(t_gen, 3),
                    "generate min s": round(t_gen_min, 3),
                    "prefill (1 token) ms": round(t_prefill * 1e3, 1),
                    "decode ms/token": round(decode_ms, 2),
                    "decode / bandwidth limit": round(decode_ms / self.limit_ms, 2),
                    "first call s (warm-up, compile)": round(t_first, 2),
                    "prepare s (pipeline: features, region)": {k: round(v, 3) for k, v in timings.items()},
                    "frames through CLIP / the region fuse": (
                        f"{self.feature_cache.stats.vision_frames} / {self.feature_cache.stats.region_frames}"
                    ),
                    "peak memory GB": None if peak_gb(dev) is None else round(peak_gb(dev), 2),
                    "tokens identical to plain": f"{equal}/2"
                    + ("" if first is None else f" (first difference at token {first})"),
                },
            )

    def targets8(self) -> None:
        r, dev = self.r, self.device
        reqs = [self.request(k) for k in range(8)]
        reference = None
        for mode, opts in self.modes.items():
            if mode == "static" or self.left() < (60 if mode == "compiled" and not self.args.dry_run else 10):
                continue
            prepared = self.prepare(reqs)
            self.generate(prepared, opts, batch_size=8, strategy="prefix")  # warm-up / compile at batch 8
            answers, t, _ = repeat(
                lambda opts=opts: self.generate(self.prepare(reqs), opts, batch_size=8, strategy="prefix"),
                dev,
                self.args.repeats,
            )
            reference = reference or answers
            equal, first = answer_diff(answers, reference)
            one = self.single_e2e.get(mode)
            r.put(
                f"8 targets {mode}",
                {
                    "end to end s": round(t, 3),
                    "1 target end to end s": None if one is None else round(one, 3),
                    "8 / 1": None if one is None else round(t / one, 2),
                    "tokens identical to plain": f"{equal}/8"
                    + ("" if first is None else f" (first difference at token {first})"),
                },
            )

    def concurrency(self) -> None:
        r, dev, a = self.r, self.device, self.args
        most = max(a.concurrency)
        prepared: list[PreparedTarget] = []
        start = time.perf_counter()
        # one conversation each: its own video features (no prefix shared), its own question
        for k in range(most):
            prepared += self.prepare([self.request(k, QUESTIONS[k % len(QUESTIONS)])])
        synchronize(dev)
        per_request = (time.perf_counter() - start) / most
        r.put("preparation s per request (features + region tokens)", round(per_request, 3))
        for mode, opts in self.modes.items():
            if mode == "static":
                continue
            for n in a.concurrency:
                if self.left() < (45 if mode == "compiled" and not a.dry_run else 10):
                    r.put(f"concurrent {n} {mode}: skipped", True, "SKIPPED (budget)")
                    continue
                rows = prepared[:n]
                self.generate(rows, opts, batch_size=n)  # warm-up / compile at this batch size
                answers, t, _ = repeat(
                    lambda rows=rows, opts=opts, n=n: self.generate(rows, opts, batch_size=n), dev, a.repeats
                )
                ref = self.concurrency_reference.setdefault(n, answers)
                equal, first = answer_diff(answers, ref)
                r.put(
                    f"concurrent {n} {mode}",
                    {
                        "generate s": round(t, 3),
                        "answers/s (generation)": round(n / t, 2),
                        "answers/s (end to end, preparation serial)": round(n / (n * per_request + t), 2),
                        "new tokens/s": round(n * self.new / t, 1),
                        "tokens identical to plain": f"{equal}/{n}"
                        + ("" if first is None else f" (first difference at token {first})"),
                    },
                )

    def goals(self) -> None:
        f, r = self.r.figures, self.r
        fast = "compiled" if "compiled" in self.modes else "static"
        single = f.get(f"single {fast}", {})
        t8 = f.get(f"8 targets {fast}", {})
        got = {
            "one answer end to end s": single.get("end to end s"),
            "decode ms/token / bandwidth limit": single.get("decode / bandwidth limit"),
            "vision + region tokens ms": f.get("vision + region tokens ms"),
            "8 targets / 1 target": t8.get("8 / 1"),
            "peak memory GB at batch 1": single.get("peak memory GB"),
        }
        note = " (dry run: shapes are tiny, figures mean nothing)" if self.args.dry_run else ""
        r.line(f"\n== goals of #23, fast path = {fast}{note} ==")
        for name, limit in GOALS.items():
            value = got[name]
            verdict = "n/a" if value is None else ("MET" if value <= limit else "NOT MET")
            r.put(f"goal {name} <= {limit}", value, f"{value} -> {verdict}")
        identical = [
            v.get("tokens identical to plain", "") for k, v in f.items() if isinstance(v, dict) and fast in k
        ]
        r.put("goal greedy tokens identical to plain", identical)

    def run(self) -> None:
        dry = self.args.dry_run
        self.section("setup", self.setup, 0)
        if not hasattr(self, "model"):
            return
        self.section("bandwidth", self.bandwidth, 5)
        if not hasattr(self, "limit_ms"):
            self.limit_ms = float("nan")
        self.section("components (batch 1)", self.components, 5)
        self.section("one referring answer", self.single, 5 if dry else 60)
        self.section("8 targets of one video", self.targets8, 5 if dry else 30)
        self.section("concurrent requests", self.concurrency, 5 if dry else 30)
        self.goals()


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dry-run", action="store_true", help="tiny config on the CPU (float32), small sizes"
    )
    parser.add_argument("--device", default=None, help="default: cuda, or cpu with --dry-run")
    parser.add_argument(
        "--dtype",
        default=None,
        choices=["bfloat16", "float16", "float32"],
        help="default: bfloat16 (dry run: float32)",
    )
    parser.add_argument(
        "--attn",
        default="sdpa",
        choices=["sdpa", "eager", "flash_attention_2"],
        help="attention implementation",
    )
    parser.add_argument(
        "--modes", default="plain,static,compiled", help="comma-separated subset of plain,static,compiled"
    )
    parser.add_argument("--new-tokens", type=int, default=None, help="default 64 (dry run: 8)")
    parser.add_argument("--frames", type=int, default=None, help="video length (default 200; dry run 40)")
    parser.add_argument("--width", type=int, default=None)
    parser.add_argument("--height", type=int, default=None)
    parser.add_argument("--concurrency", default="1,8,32", help="comma-separated concurrent request counts")
    parser.add_argument(
        "--repeats", type=int, default=None, help="timed repeats per figure (default 3; dry run 1)"
    )
    parser.add_argument(
        "--vision-batch", type=int, default=32, help="frames per vision tower call (components)"
    )
    parser.add_argument(
        "--budget-s", type=float, default=440.0, help="sections that would not fit are skipped"
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (dry run default: 1)")
    parser.add_argument(
        "--out-dir", type=Path, default=None, help="default benchmarks/results (dry run: a temp dir)"
    )
    args = parser.parse_args(argv)
    dry = args.dry_run
    args.device = args.device or ("cpu" if dry else "cuda")
    args.dtype = args.dtype or ("float32" if dry else "bfloat16")
    args.frames = args.frames or (40 if dry else 200)
    args.width = args.width or (64 if dry else 320)
    args.height = args.height or (48 if dry else 240)
    args.repeats = args.repeats or (1 if dry else 3)
    args.new_tokens = args.new_tokens or (8 if dry else 64)
    args.threads = args.threads or (1 if dry else None)
    args.modes = [m for m in args.modes.split(",") if m]
    unknown = sorted(set(args.modes) - {"plain", "static", "compiled"})
    if unknown or "plain" not in args.modes:
        parser.error(
            f"--modes {','.join(args.modes)}: allowed plain,static,compiled, and plain is required (the reference)"
        )
    args.concurrency = [int(n) for n in args.concurrency.split(",") if n]
    if args.new_tokens < 2 or any(n < 1 for n in args.concurrency) or args.repeats < 1:
        parser.error("--new-tokens must be >= 2, --concurrency entries and --repeats >= 1")
    if args.out_dir is None:
        args.out_dir = (
            Path(tempfile.gettempdir()) / "gpu_artemis7b_dryrun" if dry else Path(__file__).parent / "results"
        )
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: CUDA is not available here (use --dry-run for the CPU path)")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.monotonic()
    device = "dryrun_cpu" if args.dry_run else args.device.split(":")[0]
    if args.device.startswith("cuda"):
        name = torch.cuda.get_device_name(torch.device(args.device)).lower()
        device = next((k for k in ("h200", "h100", "a100") if k in name), device)
    report = Report(args.out_dir / f"gpu_artemis7b_{device}_{datetime.date.today().isoformat()}")
    report.put("command", " ".join(sys.argv))
    Bench(args, report).run()
    report.put("total s", round(time.monotonic() - started, 1))
    print(f"written: {report.txt} and {report.json}")


if __name__ == "__main__":
    main()
