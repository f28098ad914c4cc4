"""CMS NCCI edit tables, read from the files a user gives (`medcode build --ncci DIR`), as graph resources.

CMS publishes the tables quarterly; they cannot be fetched here, so the build reads what it is given,
in CMS's layouts (README, domain notes §2.4):

- **PTP** (procedure-to-procedure) edits: tab-separated text, one file per part (`ccipra-v321r0-f1.txt`
  practitioner, `ccioph-v321r0-f1.txt` outpatient hospital). A copyright preamble and a header spread
  over several lines, then rows: Column 1, Column 2, `*` (in existence prior to 1996), Effective Date and
  Deletion Date (YYYYMMDD, `*` = none), Modifier (0, 1, 9), PTP Edit Rationale.
- **MUE** (medically unlikely edit) tables: CSV (`MCR_MUE_PractitionerServices_Eff_01-01-2026.csv`). A
  quoted preamble, then the header `HCPCS/CPT Code`, `<Setting> Services MUE Values`, `MUE Adjudication
  Indicator` (`2 Date of Service Edit: Policy`), `MUE Rationale`; the header names the setting.

A PTP row becomes an mc:CodePairEdit exactly like a curated edit (column 1, column 2, modifier
indicator, dates, rationale, dcterms:source), plus the table it belongs to (mc:serviceSetting), so one
query finds both. An MUE row becomes an mc:UnitsEdit (mc:mueCode, mc:mueValue, adjudication indicator,
rationale, setting, source). Each file is an mc:PublicSource. A code the graph does not describe gets
its identity (class, notation, code system, a label naming the file). A row that does not fit its
layout fails the build naming the file, the line and the field.

Every code-pair edit, curated or read here, also gets its mc:pairKey (`pair_key_triples`): an IRI
naming both codes, which the claim check looks a claim's pairs up by (one index lookup a pair, where
starting from a code meant scanning the thousands of edits a column 1 code can have).
"""

from __future__ import annotations

import csv
import datetime
import hashlib
import io
import re
from collections.abc import Container, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from rdflib import Literal, URIRef
from rdflib.namespace import RDF, RDFS, SKOS, XSD
from rdflib.term import Node

from .namespaces import DCTERMS, ID, ID_BASE, MC, pair_key
from .records import SourceError

Triple = tuple[URIRef, URIRef, Node]
#: a PTP file's setting, from the start of its name (as CMS names the files)
PTP_FILES = {"ccipra": "practitioner", "ccioph": "outpatient-hospital"}
#: an MUE table's setting, from its header ("Practitioner Services MUE Values")
MUE_HEADERS = {"practitioner": "practitioner", "outpatient hospital": "outpatient-hospital",
               "dme supplier": "dme-supplier"}
SETTING_NODES = {"practitioner": MC.PractitionerServices, "outpatient-hospital": MC.OutpatientHospitalServices,
                 "dme-supplier": MC.DMESupplierServices}
SETTING_TITLES = {"practitioner": "practitioner services", "outpatient-hospital": "outpatient hospital services",
                  "dme-supplier": "DME supplier services"}
CODE = re.compile(r"^(?:(?P<cpt>[0-9]{4}[0-9A-Z])|(?P<hcpcs>[A-V][0-9]{4}))$")
YYYYMMDD = re.compile(r"^\d{8}$")
#: an MUE table's fields and a word of each field's header
MUE_COLUMNS = (("code", "hcpcs"), ("value", "mue values"), ("indicator", "adjudication"), ("rationale", "rationale"))
PTP_BASIS = "NCCI PTP edit"


@dataclass(frozen=True)
class PairEdit:
    """One row of a PTP file: column 1 is payable, column 2 denied unless the modifier indicator allows."""

    column1: str
    column2: str
    effective: datetime.date
    deleted: datetime.date | None
    modifier_indicator: str
    rationale: str
    setting: str
    file: Path
    line: int


@dataclass(frozen=True)
class UnitsEdit:
    """One row of an MUE table: the most units of a code (per line or date of service) in one setting."""

    code: str
    value: int
    adjudication_indicator: str
    rationale: str
    setting: str
    file: Path
    line: int


@dataclass(frozen=True)
class Tables:
    """What a directory of NCCI files holds."""

    files: tuple[tuple[Path, str, str], ...]  # (file, "ptp" or "mue", setting)
    pair_edits: tuple[PairEdit, ...]
    units_edits: tuple[UnitsEdit, ...]


def _text(path: Path) -> str:
    """A CMS file's text: UTF-8 where it is, else Windows-1252 (the preamble's copyright signs)."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


def _code(path: Path, line: int, field: str, value: str) -> str:
    code = value.strip().upper()
    if not CODE.match(code):
        raise SourceError(path, line, field, f"'{value}' is not a CPT or HCPCS Level II code")
    return code


def _date(path: Path, line: int, field: str, value: str) -> datetime.date:
    value = value.strip()
    try:
        if not YYYYMMDD.match(value):
            raise ValueError
        return datetime.date(int(value[:4]), int(value[4:6]), int(value[6:]))
    except ValueError:
        raise SourceError(path, line, field, f"'{value}' is not a date (YYYYMMDD)") from None


def read_ptp(path: Path, setting: str) -> Iterator[PairEdit]:
    """The edits of one PTP file: the rows start at the first line below the `Column 1 / Column 2` header
    that has a first column (the header's continuation lines leave it empty); above it is preamble."""
    header = started = False
    for number, line in enumerate(_text(path).splitlines(), 1):
        cells = line.split("\t")
        if not started:
            started = header and bool(cells[0].strip())
            header = header or ("Column 1" in line and "Column 2" in line)
            if not started:
                continue
        if not line.strip():
            continue
        if len(cells) < 6:
            raise SourceError(path, number, None, "a PTP row has 7 tab-separated columns (Column 1 ... Rationale)")
        indicator = cells[5].strip()
        if indicator not in ("0", "1", "9"):
            raise SourceError(path, number, "Modifier", f"'{indicator}' is not a modifier indicator (0, 1, 9)")
        yield PairEdit(_code(path, number, "Column 1", cells[0]), _code(path, number, "Column 2", cells[1]),
                       _date(path, number, "Effective Date", cells[3]),
                       None if cells[4].strip() in ("*", "") else _date(path, number, "Deletion Date", cells[4]),
                       indicator, cells[6].strip() if len(cells) > 6 else "", setting, path, number)
    if not header:
        raise SourceError(path, 1, None, "not an NCCI PTP file: no 'Column 1 / Column 2' header")


def _mue_header(path: Path, rows: Iterator[list[str]]) -> tuple[str, dict[str, int]]:
    """The setting and the column of each field, from the header row below the preamble."""
    for cells in rows:
        names = [" ".join(c.split()).lower() for c in cells]
        values = next((n for n in names if n.endswith("mue values")), None)
        if values is None:
            continue
        setting = next((s for key, s in MUE_HEADERS.items() if values.startswith(key)), None)
        if setting is None:
            raise SourceError(path, None, values, "is not a practitioner, outpatient hospital or DME supplier table")
        columns = {field: next((i for i, n in enumerate(names) if key in n), -1) for field, key in MUE_COLUMNS}
        if min(columns.values()) < 0:
            raise SourceError(path, None, None, "the MUE header needs HCPCS/CPT Code, MUE Values, MUE Adjudication "
                                                "Indicator and MUE Rationale")
        return setting, columns
    raise SourceError(path, None, None, "not an NCCI MUE table: no '... MUE Values' header")


def read_mue(path: Path) -> tuple[str, list[UnitsEdit]]:
    """The setting and the rows of one MUE table."""
    reader = csv.reader(io.StringIO(_text(path), newline=""))
    setting, col = _mue_header(path, reader)
    return setting, list(_mue_rows(path, reader, setting, col))


def _mue_rows(path: Path, reader, setting: str, col: dict[str, int]) -> Iterator[UnitsEdit]:
    for cells in reader:
        if not any(c.strip() for c in cells):
            continue
        number = reader.line_num
        if len(cells) <= max(col.values()):
            raise SourceError(path, number, None, f"an MUE row has {max(col.values()) + 1} columns")
        value, indicator = cells[col["value"]].strip(), cells[col["indicator"]].strip()[:1]
        if not value.isdigit():
            raise SourceError(path, number, "MUE Values", f"'{value}' is not a number of units")
        if indicator not in ("1", "2", "3"):
            raise SourceError(path, number, "MUE Adjudication Indicator",
                              f"'{cells[col['indicator']]}' does not start with 1, 2 or 3")
        yield UnitsEdit(_code(path, number, "HCPCS/CPT Code", cells[col["code"]]), int(value), indicator,
                        cells[col["rationale"]].strip(), setting, path, number)


def _unique(edits: Iterable[PairEdit | UnitsEdit], key) -> None:
    seen: dict[tuple, PairEdit | UnitsEdit] = {}
    for edit in edits:
        first = seen.setdefault(key(edit), edit)
        if first is not edit:
            raise SourceError(edit.file, edit.line, None, f"the same edit as {first.file.name}:{first.line}")


def read_ncci(directory: Path) -> Tables:
    """Every PTP (.txt) and MUE (.csv) file of `directory`; any other .txt or .csv there is an error."""
    files, pairs, units = [], [], []
    for path in sorted(p for p in Path(directory).iterdir() if p.suffix.lower() in (".txt", ".csv")):
        prefix = next((key for key in PTP_FILES if path.name.lower().startswith(key)), None)
        if path.suffix.lower() == ".txt" and prefix:
            pairs += read_ptp(path, PTP_FILES[prefix])
            files.append((path, "ptp", PTP_FILES[prefix]))
        elif path.suffix.lower() == ".csv":
            setting, found_units = read_mue(path)
            units += found_units
            files.append((path, "mue", setting))
        else:
            raise SourceError(path, None, None, "not a PTP file CMS names ccipra-* (practitioner) or ccioph-* "
                                                "(outpatient hospital)")
    if not files:
        raise SourceError(directory, None, None, "no NCCI PTP (.txt) or MUE (.csv) files here")
    _unique(pairs, lambda e: (e.setting, e.column1, e.column2, e.effective))
    _unique(units, lambda e: (e.setting, e.code))
    return Tables(tuple(files), tuple(pairs), tuple(units))


def source_node(path: Path) -> URIRef:
    """The IRI of one NCCI file as a source (…/id/source/ncci/ccipra-v321r0-f1)."""
    return ID[f"source/ncci/{path.stem.lower()}"]


def _code_node(code: str) -> tuple[URIRef, str]:
    system = "cpt" if CODE.match(code)["cpt"] else "hcpcs"
    return URIRef(f"{ID_BASE}{system}/{code}"), system


def _source_triples(path: Path, kind: str, setting: str) -> Iterator[Triple]:
    node = source_node(path)
    title = f"CMS NCCI {'PTP edits' if kind == 'ptp' else 'MUE table'}, {SETTING_TITLES[setting]} ({path.name})"
    yield node, RDF.type, MC.PublicSource
    yield node, SKOS.notation, Literal(path.stem)
    yield node, DCTERMS.title, Literal(title, lang="en")
    yield node, RDFS.label, Literal(title, lang="en")
    yield node, MC.fileName, Literal(path.name)
    yield node, DCTERMS.isPartOf, ID["source/NCCI"]


def _code_triples(code: str, source: URIRef) -> Iterator[Triple]:
    """The identity of a code only an NCCI file names (CPT descriptors are not ours to copy)."""
    node, system = _code_node(code)
    scheme = URIRef(ID_BASE + system)
    yield node, RDF.type, MC.CPTCode if system == "cpt" else MC.HCPCSCode
    yield node, SKOS.notation, Literal(code)
    yield node, SKOS.inScheme, scheme
    yield node, SKOS.prefLabel, Literal(f"{'CPT' if system == 'cpt' else 'HCPCS'} {code} (named by an NCCI edit file)",
                                        lang="en")
    yield node, DCTERMS.source, source


def _pair_triples(edit: PairEdit) -> Iterator[Triple]:
    node = ID[f"edit/ncci/{edit.setting}/{edit.column1}_{edit.column2}/{edit.effective:%Y%m%d}"]
    yield node, RDF.type, MC.CodePairEdit
    yield node, MC.column1, _code_node(edit.column1)[0]
    yield node, MC.column2, _code_node(edit.column2)[0]
    yield node, MC.modifierIndicator, ID[f"valueset/ptp-modifier-indicator/{edit.modifier_indicator}"]
    yield node, MC.effectiveDate, Literal(edit.effective.isoformat(), datatype=XSD.date)
    if edit.deleted:
        yield node, MC.deletionDate, Literal(edit.deleted.isoformat(), datatype=XSD.date)
    if edit.rationale:
        yield node, MC.rationale, Literal(edit.rationale)
    yield node, MC.editBasis, Literal(PTP_BASIS)
    yield node, MC.serviceSetting, SETTING_NODES[edit.setting]
    yield node, DCTERMS.source, source_node(edit.file)


def _units_triples(edit: UnitsEdit) -> Iterator[Triple]:
    node = ID[f"mue/{edit.setting}/{edit.code}"]
    yield node, RDF.type, MC.UnitsEdit
    yield node, MC.mueCode, _code_node(edit.code)[0]
    yield node, MC.mueValue, Literal(edit.value, datatype=XSD.integer)
    yield node, MC.mueAdjudicationIndicator, ID[f"valueset/mue-adjudication-indicator/{edit.adjudication_indicator}"]
    if edit.rationale:
        yield node, MC.rationale, Literal(edit.rationale)
    yield node, MC.serviceSetting, SETTING_NODES[edit.setting]
    yield node, DCTERMS.source, source_node(edit.file)


def ncci_triples(tables: Tables, known: Container[URIRef] = frozenset()) -> Iterator[Triple]:
    """The asserted triples of the tables; `known` are the code IRIs the graph already describes."""
    for path, kind, setting in tables.files:
        yield from _source_triples(path, kind, setting)
    named: dict[str, Path] = {}
    for edit in tables.pair_edits:
        named.setdefault(edit.column1, edit.file)
        named.setdefault(edit.column2, edit.file)
        yield from _pair_triples(edit)
    for edit in tables.units_edits:
        named.setdefault(edit.code, edit.file)
        yield from _units_triples(edit)
    for code, path in named.items():
        if _code_node(code)[0] not in known:
            yield from _code_triples(code, source_node(path))


def pair_key_triples(triples: Iterable[Triple]) -> Iterator[Triple]:
    """The mc:pairKey of every mc:CodePairEdit among `triples` (curated or from NCCI files)."""
    columns: dict[Node, dict[URIRef, Node]] = {}
    for s, p, o in triples:
        if p in (MC.column1, MC.column2):
            columns.setdefault(s, {})[p] = o
    for edit, codes in columns.items():
        if len(codes) == 2:
            yield edit, MC.pairKey, pair_key(str(codes[MC.column1]), str(codes[MC.column2]))


def describe(tables: Tables) -> list[dict[str, object]]:
    """What the snapshot's meta.json records of each file: its name, table, setting, rows and SHA-256."""
    rows: dict[Path, int] = {}
    for edit in (*tables.pair_edits, *tables.units_edits):
        rows[edit.file] = rows.get(edit.file, 0) + 1
    return [{"file": path.name, "table": kind, "setting": setting, "rows": rows.get(path, 0),
             "source": str(source_node(path)), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
            for path, kind, setting in tables.files]
