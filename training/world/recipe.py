"""The recipe of the shipped tiny world model, step by step (run by ``artemis train world``).

    artemis train world                  # every step, in order
    artemis train world --step stage3    # one step: data | vision | init | stage1 | stage2 | stage3 | front | blind | eval | ship

Working files go to ``data/world/`` and ``runs/world/`` under the repository root (both git-ignored; the YAMLs of
``training/configs/world/`` name the same paths), the shipped files to ``models/artemis-tiny-world/``. Every
model-training command runs in a fresh Python process on the CPU with one thread (``OMP_NUM_THREADS=1`` unless
set), as the shipped model was trained: steps vision..stage3 took 39.5 min on the 2-core machine (stops 15-16)
and reproduced ``models/artemis-tiny-world/model.safetensors`` bit for bit.

The ``eval`` step scores with ``evals.world``, which training/ does not import: the caller hands it in as
``evaluate`` (``artemis train world`` does).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
DATA = Path("data/world")
RUNS = Path("runs/world")
CONFIGS = Path("training/configs/world")
SHIP_DIR = Path("models/artemis-tiny-world")
EVAL_VIDEOS = 250
EVAL_CLIPS = 250
EVAL_COMBO_QUERIES = 30
SHIPPED_FILES = (
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "preprocessor_config.json",
    "artemis_processor.json",
)
SHIPPED_IF_PRESENT = ("generation_config.json", "special_tokens_map.json")


class Evaluate(Protocol):
    """Scores the checkpoint ``model_dir`` on held-out clips of data-set seed ``seed``; writes JSON to ``out``."""

    def __call__(self, model_dir: Path, out: Path, *, seed: int, clips: int, combo_queries: int) -> None: ...


CommandRunner = Callable[[Sequence[str], Path], None]


def run_command(argv: Sequence[str], cwd: Path) -> None:
    """Run ``argv`` in ``cwd`` in a fresh process, one CPU thread unless ``OMP_NUM_THREADS`` says otherwise."""
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    logger.info("$ %s", " ".join(argv))
    subprocess.run(list(argv), cwd=cwd, env=env, check=True)


@dataclass(frozen=True)
class WorldRecipe:
    """The recipe's settings. ``root`` is where the relative paths (``data/world``, ``runs/world``, the YAMLs)
    resolve; ``run`` runs one command (``python -m MODULE ...``) there; ``evaluate`` is the ``eval`` step."""

    root: Path = REPO_ROOT
    train_seed: int = 1
    eval_seed: int = 9999
    num_videos: int = 2000
    num_big_videos: int = 6000
    python: str = sys.executable
    run: CommandRunner = run_command
    evaluate: Evaluate | None = None

    def module(self, module: str, *args: str | Path) -> None:
        """``python -m module args...`` in a fresh process, from ``root``."""
        self.run([self.python, "-m", module, *map(str, args)], self.root)


def _data(r: WorldRecipe) -> None:
    from synth.build import write_dataset  # the renderer only here: `artemis train --help` lists STEPS
    from training.world.data import filter_dataset

    # Training clips (seed 1), 3x as many of the same seed for the last fine-tuning (its first num_videos are the
    # training clips) and the held-out evaluation clips (seed 9999, never trained on).
    train = write_dataset(r.root / DATA / "train", r.num_videos, r.train_seed, num_long_videos=0)
    big = write_dataset(r.root / DATA / "train_big", r.num_big_videos, r.train_seed, num_long_videos=0)
    held_out = write_dataset(r.root / DATA / "eval", EVAL_VIDEOS, r.eval_seed, num_long_videos=0)
    logger.info("data sets: train %s, train_big %s, eval %s", train.counts, big.counts, held_out.counts)
    # Remove every clip holding an object of a held-out colour x shape x motion combination.
    for name in ("train", "train_big"):
        logger.info("%s: held-out combinations removed: %s", name, filter_dataset(r.root / DATA / name))


def _vision(r: WorldRecipe) -> None:
    # A random tower's region features carry colour but not shape, and a random region encoder buries what they
    # carry: pre-train the tiny CLIP tower AND the region encoder together on the world's box labels (colour,
    # shape, size, box, displacement direction), through the model's own region path.
    r.module("training.world.init", "--data", DATA / "train", "--out", RUNS / "init_random", "--no-center")
    r.module(
        "training.world.probe",
        *("--model", RUNS / "init_random", "--clips", "200", "--out", RUNS / "probe_random.json"),
    )
    r.module(
        "training.world.region_pretrain",
        *("--model", RUNS / "init_random", "--out", RUNS / "region" / "region.safetensors"),
        *("--clips", "2000", "--val-clips", "100", "--epochs", "12", "--lr", "3e-3"),
    )


def _init(r: WorldRecipe) -> None:
    r.module(
        "training.world.init",
        *("--data", DATA / "train", "--out", RUNS / "init"),
        *("--vision-from", RUNS / "region" / "region.safetensors", "--feature-cache", RUNS / "feature_cache"),
    )


def _stage1(r: WorldRecipe) -> None:
    r.module("training.train", CONFIGS / "stage1_pretrain.yaml")


def _stage2(r: WorldRecipe) -> None:
    r.module("training.train", CONFIGS / "stage2_finetune.yaml")


def _stage3(r: WorldRecipe) -> None:
    r.module(
        "training.world.init",
        *("--recenter", RUNS / "stage2" / "final", "--region-pretrained", "--data", DATA / "train"),
        *("--feature-cache", RUNS / "feature_cache", "--out", RUNS / "stage2" / "final_centred"),
    )
    r.module("training.train", CONFIGS / "stage3_referring.yaml")


def _front(r: WorldRecipe) -> None:
    # Stage 3b (not in the paper): the stage-3 model fine-tuned on "front" tracked frames (the first two close
    # together), which its config then uses at inference.
    r.module("training.train", CONFIGS / "stage3_front.yaml")


def _big(r: WorldRecipe) -> None:
    # Stage 3b again on 3x the clips (data/world/train_big): the shipped model.
    r.module("training.train", CONFIGS / "stage3_front_big.yaml")


def _blind(r: WorldRecipe) -> None:
    # Region-blind baseline: the same stage 3 command with one flag (every <region> token zero for the whole run).
    r.module(
        "training.train",
        CONFIGS / "stage3_referring.yaml",
        *("model.region_blind=true", f"run.output_dir={RUNS / 'stage3_blind'}", "run.save_steps=500"),
    )


def _eval(r: WorldRecipe) -> None:
    if r.evaluate is None:
        raise ValueError(
            "the eval step scores with evals.world, which training/ does not import: give WorldRecipe(evaluate=...) "
            "or run `artemis train world --step eval`"
        )
    for model, out in (
        ("stage3", "eval_stage3.json"),
        ("stage3_front", "eval_front.json"),
        ("stage3_front_big", "eval_model.json"),
        ("stage3_blind", "eval_blind.json"),
    ):
        r.evaluate(
            r.root / RUNS / model / "final",
            r.root / RUNS / out,
            seed=r.eval_seed,
            clips=EVAL_CLIPS,
            combo_queries=EVAL_COMBO_QUERIES,
        )


def _ship(r: WorldRecipe) -> None:
    src, dst = r.root / RUNS / "stage3_front_big" / "final", r.root / SHIP_DIR
    dst.mkdir(parents=True, exist_ok=True)
    for name in SHIPPED_FILES:
        shutil.copyfile(src / name, dst / name)
    for name in SHIPPED_IF_PRESENT:
        if (src / name).is_file():
            shutil.copyfile(src / name, dst / name)
    logger.info("shipped %s -> %s", src, dst)


_STEPS: dict[str, Callable[[WorldRecipe], None]] = {
    "data": _data,
    "vision": _vision,
    "init": _init,
    "stage1": _stage1,
    "stage2": _stage2,
    "stage3": _stage3,
    "front": _front,
    "big": _big,
    "blind": _blind,
    "eval": _eval,
    "ship": _ship,
}
STEPS: tuple[str, ...] = tuple(_STEPS)


def selected_steps(step: str = "all") -> tuple[str, ...]:
    """The steps ``step`` names, in recipe order: all of :data:`STEPS` for ``"all"``, else that one step."""
    if step == "all":
        return STEPS
    if step not in STEPS:
        raise ValueError(f"unknown step {step!r}; allowed: all, {', '.join(STEPS)}")
    return (step,)


def run_recipe(recipe: WorldRecipe, step: str = "all") -> tuple[str, ...]:
    """Run ``step`` (or every step, in order) of the recipe; returns the steps run."""
    steps = selected_steps(step)
    for name in steps:
        logger.info("world recipe: step %s", name)
        _STEPS[name](recipe)
    return steps
