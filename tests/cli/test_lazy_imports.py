"""``artemis --help`` stays fast: importing the CLI loads neither torch nor transformers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_cli_import_loads_no_heavy_module():
    code = (
        "import sys, cli.main; "
        "print(','.join(m for m in ('torch', 'transformers', 'artemis_model.convert') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_convert_dtype_names_match_the_converter():
    from artemis_model.convert import DTYPES
    from cli.convert import DTYPE_NAMES

    assert sorted(DTYPE_NAMES) == sorted(DTYPES)
