"""`query_ui()` for the SPARQL page's editor template; kept here until it moves beside the SPARQL surface."""

from __future__ import annotations

from typing import Any

from .views import bp


@bp.app_context_processor
def _query_ui() -> dict[str, Any]:
    """`query_ui()` for the sparql page: the YASGUI configuration, or None without the assets."""
    from ..assets import query_ui_config  # imported late: `python -m server.assets` runs it as __main__

    return {"query_ui": query_ui_config}
