"""The synthetic referring world (imports nothing else of the project).

Public API::

    from synth import generate_clip, write_mp4, write_frames, read_mp4, caption_for, parse_caption
    clip = generate_clip(seed=0)            # Clip: .frames [T, H, W, 3] uint8 RGB, .objects, .fps, .truth_json()
"""

from synth.grammar import (
    Caption,
    MotionPhrase,
    NounPhrase,
    ParsedCaption,
    caption_for,
    motion_phrases,
    parse_caption,
)
from synth.render import BACKGROUNDS, COLOURS, PALETTE, SHAPES, SIZES
from synth.video_io import read_mp4, write_frames, write_mp4
from synth.world import Clip, ObjectTruth, concat_clips, generate_clip

__all__ = [
    "BACKGROUNDS",
    "COLOURS",
    "PALETTE",
    "SHAPES",
    "SIZES",
    "Caption",
    "Clip",
    "MotionPhrase",
    "NounPhrase",
    "ObjectTruth",
    "ParsedCaption",
    "caption_for",
    "concat_clips",
    "generate_clip",
    "motion_phrases",
    "parse_caption",
    "read_mp4",
    "write_frames",
    "write_mp4",
]
