"""The recipe of the shipped tiny world model (``models/artemis-tiny-world``), run by ``artemis train world``.

- :mod:`training.world.data`: the training data without the held-out colour x shape x motion combinations;
- :mod:`training.world.init`: tokenizer, tiny architecture, initial checkpoint, data-dependent centring;
- :mod:`training.world.probe`: the linear probe of a frozen tower's region features (colour, shape);
- :mod:`training.world.region_pretrain`: the vision tower + region encoder pre-training on the world's box labels;
- :mod:`training.world.recipe`: every step in order (data, vision, init, stages 1-3, baseline, eval, ship).

Each module but the recipe is also a command (``python -m training.world.init --help``); the stages themselves are
``training/train.py`` with ``training/configs/world/*.yaml``.
"""
