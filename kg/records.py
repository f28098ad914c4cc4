"""Reading curated YAML so that every record remembers where it came from.

A bad record must fail the build naming the file, the line and the field, so mappings are loaded
as :class:`Record` objects that carry their own line and each key's line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class SourceError(ValueError):
    """A curated source record is invalid; the message names file, line and field."""

    def __init__(self, path: Path | str, line: int | None, field: str | None, message: str) -> None:
        self.path, self.line, self.field = str(path), line, field
        where = f"{self.path}:{line}" if line else self.path
        what = f" field '{field}':" if field else ""
        super().__init__(f"{where}:{what} {message}")


class Record(dict):
    """A YAML mapping that knows its file, its line and the line of each key."""

    path: str = ""
    line: int = 0
    field_lines: dict[str, int]

    def line_of(self, field: str) -> int:
        return self.field_lines.get(field, self.line)

    def error(self, field: str | None, message: str) -> SourceError:
        return SourceError(self.path, self.line_of(field) if field else self.line, field, message)


class _Loader(yaml.SafeLoader):
    """SafeLoader whose mappings are Records; dates stay strings so the build types them."""


def _construct_record(loader: _Loader, node: yaml.MappingNode):
    record = Record()
    record.path = loader.name
    record.line = node.start_mark.line + 1
    record.field_lines = {
        key.value: key.start_mark.line + 1 for key, _ in node.value if isinstance(key, yaml.ScalarNode)
    }
    yield record
    record.update(loader.construct_mapping(node, deep=True))


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_record)
_Loader.add_constructor(
    "tag:yaml.org,2002:timestamp", lambda loader, node: loader.construct_scalar(node)
)


def load_yaml(path: Path) -> Any:
    """Parse one curated file; a YAML syntax error becomes a SourceError with its line."""
    text = path.read_text(encoding="utf-8")
    loader = _Loader(text)
    loader.name = str(path)
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        raise SourceError(path, line, None, f"YAML syntax error: {exc.problem}") from exc
    finally:
        loader.dispose()


def fact(value: Any, default_source: str) -> tuple[Any, str]:
    """Split a curated fact into (value, source): either a bare value or {value, source}."""
    if isinstance(value, dict) and "value" in value:
        return value["value"], value.get("source", default_source)
    return value, default_source
