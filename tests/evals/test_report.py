from __future__ import annotations

import json

from PIL import Image

from evals.report import build_report


def test_report_places_runs_beside_published(tmp_path):
    ref = tmp_path / "ref_run"
    ref.mkdir()
    (ref / "metrics.json").write_text(
        json.dumps(
            {
                "task": "referring",
                "scores": {"BLEU_4": 0.1234, "METEOR": 0.2, "ROUGE_L": 0.3, "CIDEr": 0.456},
                "unavailable": {"SPICE": "CoreNLP jars missing"},
                "counts": {"scored": 42},
            }
        )
    )
    q = tmp_path / "q_run"
    q.mkdir()
    (q / "metrics.json").write_text(
        json.dumps(
            {
                "task": "videorefer-q",
                "official": {
                    "per_type": {"Basic Questions": {"correct": 1, "total": 2, "accuracy": 0.5}},
                    "overall": 0.25,
                    "total": 4,
                },
            }
        )
    )
    files = build_report([ref, q], tmp_path / "report", labels=["tiny", "agent"])
    md = files.markdown.read_text()
    assert "| Artemis-7B | 15.5 | 18.0 | 40.8 | 53.2 | 25.4 | Artemis paper" in md
    assert "as published" in md
    assert "| **ours: tiny** | **12.3** | **20.0** | **30.0** | **45.6** | **n/a** |" in md
    assert "SPICE n/a: CoreNLP jars missing" in md and "(n=42)" in md
    assert "| **ours: agent** | **50.0** | **n/a** | **n/a** | **n/a** | **n/a** | **25.0** |" in md
    assert set(files.charts) == {"referring", "videorefer-q"}
    for png in files.charts.values():
        with Image.open(png) as im:
            assert im.format == "PNG" and im.size[0] > 300
