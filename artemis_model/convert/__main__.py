"""``python -m artemis_model.convert``: the same options as ``artemis convert``."""

from artemis_model.convert.converter import main

raise SystemExit(main())
