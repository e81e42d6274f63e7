"""Published numbers to compare against, cited as published (we have not reproduced them).

Sources: the project's ``benchmarks.md`` and ``videorefer_bench.md`` (Artemis paper Table 1 as copied by the DAM
and VideoRefer papers; VideoRefer paper Tables 1 and 5 and its repository README; DAM and PixelRefer papers).
HC-STVG scores are pycocoevalcap ×100; Bench-D scores are GPT-4o judge scores 0–5 (multi-frame mode unless
noted); Bench-Q scores are accuracy %.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PublishedRow:
    model: str
    scores: dict[str, float | None]
    source: str


HCSTVG_COLUMNS = ("BLEU@4", "METEOR", "ROUGE_L", "CIDEr", "SPICE")
_SAME = "Artemis paper Table 1, as copied by DAM / VideoRefer"


def _hc(model: str, values: tuple[float, ...], source: str) -> PublishedRow:
    return PublishedRow(model, dict(zip(HCSTVG_COLUMNS, values, strict=True)), source)


PUBLISHED_HCSTVG: tuple[PublishedRow, ...] = (
    _hc("Osprey-7B (image model, per frame)", (0.7, 12.0, 18.0, 1.2, 15.6), _SAME),
    _hc("Ferret-13B (image)", (0.5, 10.2, 17.0, 1.2, 11.2), _SAME),
    _hc("Shikra-7B (image)", (1.3, 11.5, 19.3, 3.1, 13.6), _SAME),
    _hc("Merlin-7B (5 key frames)", (3.3, 11.3, 26.0, 10.5, 20.1), _SAME),
    _hc(
        "Artemis-7B",
        (15.5, 18.0, 40.8, 53.2, 25.4),
        "Artemis paper (as copied by DAM, VideoRefer, PixelRefer)",
    ),
    _hc("VideoRefer-7B", (16.5, 18.7, 42.4, 68.6, 28.3), "VideoRefer paper"),
    _hc("DAM-8B", (19.8, 21.0, 45.9, 91.0, 31.4), "DAM paper"),
    _hc("PixelRefer-7B", (20.1, 21.1, 46.1, 97.4, 32.5), "PixelRefer paper"),
)

BENCH_D_COLUMNS = ("SC", "AD", "TD", "HD", "Avg")
_VR_T1 = "VideoRefer paper Table 1 (multi-frame)"

PUBLISHED_BENCH_D: tuple[PublishedRow, ...] = tuple(
    PublishedRow(m, dict(zip(BENCH_D_COLUMNS, v, strict=True)), _VR_T1)
    for m, v in (
        ("GPT-4o", (4.15, 3.31, 3.11, 2.43, 3.25)),
        ("GPT-4o-mini", (3.89, 3.18, 2.62, 2.50, 3.05)),
        ("InternVL2-26B", (4.08, 3.35, 3.08, 2.28, 3.20)),
        ("Qwen2-VL-7B", (3.30, 2.54, 2.22, 2.12, 2.55)),
        ("Osprey-7B", (3.30, 2.66, 2.10, 1.58, 2.41)),
        ("Ferret-7B", (3.20, 2.38, 1.97, 1.38, 2.23)),
        ("Artemis-7B", (3.42, 1.34, 1.39, 2.90, 2.26)),
        ("VideoRefer-7B", (4.44, 3.27, 3.10, 3.04, 3.46)),
    )
)

BENCH_Q_COLUMNS = ("Basic", "Sequential", "Relationship", "Reasoning", "Future", "Average")
_VR_Q = "VideoRefer paper Table 2"

PUBLISHED_BENCH_Q: tuple[PublishedRow, ...] = tuple(
    PublishedRow(m, dict(zip(BENCH_Q_COLUMNS, v, strict=True)), src)
    for m, v, src in (
        ("GPT-4o", (62.3, 74.5, 66.0, 88.0, 73.7, 71.3), _VR_Q),
        ("GPT-4o-mini", (57.6, 67.1, 56.5, 85.9, 75.4, 65.8), _VR_Q),
        ("InternVL2-26B", (58.5, 63.5, 53.4, 88.0, 78.9, 65.0), _VR_Q),
        ("Qwen2-VL-7B", (62.0, 69.6, 54.9, 87.3, 74.6, 66.0), _VR_Q),
        ("Osprey-7B", (45.9, 47.1, 30.0, 48.6, 23.7, 39.9), _VR_Q),
        ("Ferret-7B", (35.2, 44.7, 41.9, 70.4, 74.6, 48.8), _VR_Q),
        ("VideoRefer-7B (single-frame)", (75.4, 68.6, 59.3, 89.4, 78.1, 71.9), _VR_Q),
        ("VideoRefer-VideoLLaMA3-7B", (88.1, 77.7, 70.2, 88.8, 79.8, 80.1), "VideoRefer repository README"),
    )
)

# Bench-Q ``type`` strings -> report columns (only "Basic Questions" is confirmed by the README; the others
# are matched by their first word).
BENCH_Q_TYPE_PREFIX = {
    "basic": "Basic",
    "sequential": "Sequential",
    "relationship": "Relationship",
    "reasoning": "Reasoning",
    "future": "Future",
}

PUBLISHED = {
    "referring": PUBLISHED_HCSTVG,
    "videorefer-d": PUBLISHED_BENCH_D,
    "videorefer-q": PUBLISHED_BENCH_Q,
}
COLUMNS = {"referring": HCSTVG_COLUMNS, "videorefer-d": BENCH_D_COLUMNS, "videorefer-q": BENCH_Q_COLUMNS}
UNITS = {
    "referring": "pycocoevalcap ×100, HC-STVG",
    "videorefer-d": "GPT-4o judge, 0–5",
    "videorefer-q": "accuracy %",
}
