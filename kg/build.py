"""The build's old import path, kept for `from kg.build import ...` in medcode/cli.py and tests/conftest.py.

The build lives in kg.pipeline; the public way in is `from kg import build`. A module named `build`
shadows that function once imported (``kg.build`` becomes this module), so this one goes as soon as
those two files import from `kg`.
"""

from .pipeline import ALL_ICD10CM, CLASS_SUMMARY_QUERY, BuildResult, build

__all__ = ["ALL_ICD10CM", "CLASS_SUMMARY_QUERY", "BuildResult", "build"]
