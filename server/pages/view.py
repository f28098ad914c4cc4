"""Links as pages show them: local paths for the graph's own IRIs, labels fetched in bulk per request."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from flask import current_app, request

from ..codes import curie
from ..store import get_store
from .labels import ICD_LEVELS, STANDARD_LABELS
from .terms import (
    BILLABLE,
    LABEL,
    NOTATION,
    PREF,
    TITLE,
    TYPE,
    Term,
    chunks,
    iri_list,
    natural,
    properties_of,
    select_terms,
    valid_iri,
)
from .vocab import vocab

SHARED = "medcode.pages.shared-labels"
MAX_SHARED = 5000  # bounded: the graph's vocabulary terms are a few hundred


@dataclass
class Link:
    """What a template needs to show one resource: where it is, its code and its name."""

    iri: str
    href: str | None
    notation: str = ""
    label: str = ""
    billable: bool | None = None
    level: str = ""

    @property
    def text(self) -> str:
        return self.label or self.notation or curie(self.iri)


def by_notation(link: Link) -> list:
    """Sort key for links: notation in natural order, the IRI for those without one."""
    return natural(link.notation or link.iri)


def public_base() -> str:
    """The PUBLIC_BASE setting, with its trailing slash: the IRIs served under this app's paths."""
    base = current_app.config["PUBLIC_BASE"]
    return base if base.endswith("/") else base + "/"


def local_href(iri: str) -> str | None:
    """A local path for IRIs under PUBLIC_BASE; other http(s) IRIs stay absolute."""
    base = public_base()
    if iri.startswith(base):
        return request.script_root + "/" + quote(iri[len(base):], safe="/#:@!$&'()*+,;=-._~")
    if iri.startswith(("http://", "https://")):
        return iri
    return None


def _fallback(iri: str) -> str:
    base = public_base()
    if iri.startswith(base + "id/"):
        return iri[len(base) + 3:]
    return curie(iri)


def _shared() -> dict[str, dict[str, list[Term]]]:
    """The loaded facts of IRIs outside PUBLIC_BASE/id/ for the live snapshot (a new one starts anew)."""
    etag = get_store().etag
    kept = current_app.extensions.get(SHARED)
    if kept is None or kept[0] != etag:
        kept = (etag, {})
        current_app.extensions[SHARED] = kept
    return kept[1]


class View:
    """Per-request label cache and link builder, handed to templates as `V`."""

    def __init__(self) -> None:
        self.vocab = vocab()
        self.info: dict[str, dict[str, list[Term]]] = {}
        self.lock = threading.Lock()  # loads may run side by side (fanout.gather)

    def load(self, iris: Iterable[str], extra: tuple[str, ...] = ()) -> None:
        """Fetch notation, labels, billable flag and types (plus `extra` properties) for many IRIs at once.

        What is not a resource of the graph's own (ontology terms, standard vocabulary: every page
        links to the same few) is read once per snapshot and kept (`_shared`)."""
        props = (NOTATION, PREF, LABEL, TITLE, BILLABLE, TYPE, *extra)
        with self.lock:
            todo = sorted({i for i in iris if valid_iri(i) and (extra or i not in self.info)})
        shared = _shared() if not extra else {}
        found: dict[str, dict[str, list[Term]]] = {iri: shared[iri] for iri in todo if iri in shared}
        todo = [iri for iri in todo if iri not in found]
        found.update({iri: {} for iri in todo})
        for chunk in chunks(todo):
            rows = select_terms(f"SELECT ?x ?p ?v WHERE {{ {properties_of(iri_list(chunk), props)} }}")
            for row in rows:
                vals = found[row["x"].value].setdefault(row["p"].value, [])
                if row["v"] not in vals:
                    vals.append(row["v"])
        if not extra and len(shared) < MAX_SHARED:
            own = public_base() + "id/"
            shared.update((iri, found[iri]) for iri in todo if not iri.startswith(own))
        with self.lock:
            for iri, props_found in found.items():
                info = self.info.setdefault(iri, {})
                for prop, vals in props_found.items():
                    kept = info.setdefault(prop, [])
                    kept.extend(v for v in vals if v not in kept)

    def values(self, iri: str, prop: str) -> list[Term]:
        return self.info.get(iri, {}).get(prop, [])

    def first(self, iri: str, prop: str) -> str:
        """The English (or untagged) value, else any value, else ''."""
        vals = self.values(iri, prop)
        for v in vals:
            if v.lang in ("en", ""):
                return v.value
        return vals[0].value if vals else ""

    def link(self, iri: str) -> Link:
        """The link to `iri`, with what `load` fetched for it (else the vocabulary's or a standard label)."""
        info = self.info.get(iri)
        if info is None:
            label = self.vocab.labels.get(iri) or STANDARD_LABELS.get(iri, "")
            return Link(iri, local_href(iri), "", label or curie(iri))
        label = self.first(iri, PREF) or self.first(iri, LABEL) or self.first(iri, TITLE) or \
            self.vocab.labels.get(iri, "") or STANDARD_LABELS.get(iri, "")
        billable = self.first(iri, BILLABLE)
        level = next((ICD_LEVELS[t.value] for t in self.values(iri, TYPE) if t.value in ICD_LEVELS), "")
        return Link(iri, local_href(iri), self.first(iri, NOTATION), label or _fallback(iri),
                    None if not billable else billable == "true", level)

    def prop(self, iri: str) -> Link:
        """The link to a property, named by the ontology's label."""
        return Link(iri, local_href(iri), "", self.vocab.label(iri))

    def curie(self, iri: str) -> str:
        """The shared CURIE of `iri`, for templates."""
        return curie(iri)

    def notation_key(self, iri: str) -> list:
        """Sort key: the resource's notation in natural order (G89.2 before G89.10)."""
        return natural(self.link(iri).notation)

    @staticmethod
    def url(**changes: object) -> str:
        """The current URL with some query parameters changed (None removes one)."""
        args = {k: v for k, v in request.args.items()}
        for k, v in changes.items():
            if v is None:
                args.pop(k, None)
            else:
                args[k] = str(v)
        return request.script_root + request.path + ("?" + urlencode(args) if args else "")
