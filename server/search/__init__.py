"""`/search`: code-native lookup over every code of the snapshot (CPT, HCPCS, modifiers, all of ICD-10-CM).

One query understands exact codes (``G89.3``), codes typed without their dot (``g893``), ranges
(``62360-62370``), prefixes (``G35*``) and words in labels, descriptors and ICD-10-CM inclusion terms
("tumor associated pain" -> G89.3), ranked (every query word that matches counts first, then BM25 over
the labels) and typo-tolerant (edit distance 1, or 2 for long words). The index is a SQLite FTS5 file
written once per snapshot (`kg.search_index`); a process opens it read-only and searches at once.
Modules: `text` reads a query, `index` opens the file and answers codes, `words` ranks words,
`lifecycle` picks (or writes) the file, `views` is the page.
"""

from __future__ import annotations

from .index import Entry, SearchIndex
from .lifecycle import get_index
from .views import bp

__all__ = ["Entry", "SearchIndex", "bp", "get_index"]
