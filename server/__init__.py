"""The medcode-kg web app: SPARQL protocol, linked-data pages, search, API, exports and FHIR over one snapshot."""

from .app import DEFAULTS, create_app

__all__ = ["DEFAULTS", "create_app"]
