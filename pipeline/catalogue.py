"""Canonical indicator catalogue and the matcher that maps printed labels and names onto it.

The catalogue is data (``models/catalogue/``): a hierarchy of 一级/二级 labels with their printed variants
and a list of 三级 indicators with stable ids, a canonical name, 二级 parent(s), aliases, a typical unit and
optional number-slot patterns. This module loads it and answers three questions:

- which canonical 一级/二级 label a (possibly OCR-damaged) label cell is (``match_level1``/``match_level2``),
  repairing damage only when a single label explains it;
- which catalogue entry an indicator name is (``match_indicator``): accept, review with candidates, or
  none (a new indicator, kept as printed);
- which 二级 label a row's own content points at (``content_evidence``).

Scores are in [0, 1]. Accepting is only allowed above ``ACCEPT`` *and* with a clear margin over the next
entry, so two plausible entries always go to review: a wrong accept is a silent error, a review is not.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import math
import os
import re
import threading
import unicodedata
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rapidfuzz import fuzz, process

from pipeline.datamodel import CatalogueMatch

log = logging.getLogger(__name__)

# Decision thresholds for indicator names (see tests/test_catalogue.py for the measured precision).
ACCEPT = 0.90
REVIEW = 0.70
MARGIN = 0.05
# An exact match on the name with its parenthetical remark removed ("预算执行率(计算方法…)") is a strong hint,
# not proof: the remark may be what tells two indicators apart ("满意度（学生）").
STRIPPED_SCORE = 0.85
# Dropping the first character is the commonest defect of dumps and crops ("升九城市…", "级指标").
DROP_FIRST_SCORE = 0.95
# Dropping the last character ("资金到位") keeps the stem but may lose what tells two entries apart.
DROP_LAST_SCORE = 0.85
# A candidate outside the printed 二级 block must beat in-block ones by this much.
BLOCK_PENALTY = 0.04
# Weights of the character-level and the jieba-token-level similarity.
W_CHAR = 0.75
W_TOKEN = 0.25
MAX_CANDIDATES = 3
# The lowest character ratio from which a perfect word agreement could still reach ACCEPT.
_ACCEPTABLE_CHAR = (ACCEPT - W_TOKEN) / W_CHAR
_CACHE_SIZE = 50_000

ENV_MODELS = "FORMRESCUE_MODELS"
ENV_CATALOGUE = "FORMRESCUE_CATALOGUE"


class CatalogueError(ValueError):
    """The catalogue files are malformed (missing column, unknown parent, duplicate id …)."""


@dataclass(frozen=True, slots=True)
class LabelMatch:
    """Outcome of matching a 一级/二级 label cell: ``canonical`` is set when accepted."""

    decision: str  # "accept" | "review" | "none"
    canonical: str | None
    score: float
    candidates: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True, slots=True)
class Entry:
    """One 三级 indicator of the catalogue. ``level2`` lists its 二级 parents, the usual one first."""

    id: str
    name: str
    level2: tuple[str, ...]
    aliases: tuple[str, ...] = ()
    unit: str = ""
    slots: tuple[str, ...] = ()
    since: str = ""
    source: str = "shipped"


@dataclass(frozen=True, slots=True)
class Label:
    """A 一级 (level 1), 二级 (level 2) or column-header ("header") label of the hierarchy."""

    id: str
    level: str
    name: str
    parent: str | None = None  # canonical name of the 一级 parent of a 二级 label
    aliases: tuple[str, ...] = ()
    review_aliases: tuple[str, ...] = ()
    since: str = ""


# --------------------------------------------------------------------------------------------------
# Normalisation
# --------------------------------------------------------------------------------------------------

# OCR confusions folded on both sides of a comparison (the key is never shown to anyone).
_FOLD = str.maketrans(
    {
        "己": "已",
        "巳": "已",
        "〇": "0",
        "○": "0",
        "o": "0",
        "l": "1",
        "i": "1",
        "|": "1",
        "丨": "1",
    }
)
# Confusions that are only safe inside label cells, whose vocabulary is tiny: 指示 is a real word elsewhere.
_LABEL_FOLD = str.maketrans({"示": "标", "栎": "标", "际": "标"})
_TAG = re.compile(r"<\s*/?\s*[a-zA-Z][a-zA-Z0-9]*(?:\s[^<>]*)?/?\s*>")
_ENUM = re.compile(
    r"^(?:指标\s*\d+\s*[:：.、]?"  # 指标1 (placeholder numbering of templates)
    r"|\d{1,2}\s*[.、．)]|\(\s*\d{1,2}\s*\)|[一二三四五六七八九十]{1,2}\s*[、.．])\s*"
)
_CIRCLED_CHARS = frozenset(
    [chr(c) for c in range(0x2460, 0x2474)]
    + [chr(c) for c in range(0x24F5, 0x24FF)]
    + [chr(c) for c in range(0x2776, 0x2780)]
)
_PAREN = re.compile(r"[(\[【]([^()\[\]【】]*)[)\]】]")
_HAS_PAREN = re.compile(r"[(\[【]")
# What a parenthetical may hold and still be no part of the name: weights, units (lists of them), the
# template's value placeholders ("(**月**日前)") and formula notes ("(计算方法为:结余数/预算数)").
_NOISE_WORDS = re.compile(
    r"万元|亿元|元|人次|个|次|人|天|日|年|月|前|篇|家|户|项|件|场|期|份|册|台|套|辆|条|公里|平方米|亩|吨|小时|分钟|"
    r"百分比|分|单位|[\d.%‰*/、,，:：\s×-]"
)
_FORMULA_NOTE = re.compile(r"^\s*(?:计算方法|计算公式|公式|计算口径|口径|说明|注)")


def _noise_paren(content: str) -> bool:
    return not _NOISE_WORDS.sub("", content) or bool(_FORMULA_NOTE.match(content))


_WEIGHT_TAIL = re.compile(r"\d+(?:\.\d+)?\s*分?\s*$")
_DIGITS = re.compile(r"\d+")
# Numbers as printed in names: Arabic, or Chinese numerals of a date ("二〇二二年十二月").
_NUMBER = re.compile(r"\d+|[0零一二三四五六七八九十]+(?=[年月日])")
# A negation turns an indicator into its opposite ("验收不合格率"): never accepted fuzzily.
_NEGATION = frozenset("不未非无没")


# Wordings that mean the same indicator in these forms; applied to both sides of a comparison.
_SATISFACTION = re.compile(r"满意率|满意程度")
_ANNUAL = re.compile(r"^(?:本年度|全年|年度)(?![内底])(?=.{4})")
# A target printed into the name cell: "预算执行率达到90%以上" (the key has lost % and ≥ already).
_TARGET_TAIL = re.compile(
    r"(?:达到|不低于|不少于|不高于|不超过|高于|超过|大于|低于|小于|等于)?\d+(?:及?以[上下]|以内)?$"
)


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold().translate(_FOLD)


_NOT_ALNUM = re.compile(r"[\W_]+")


def _alnum(text: str) -> str:
    return _NOT_ALNUM.sub("", text)


def _prepare(text: str) -> str:
    if "<" in text:
        text = _TAG.sub("", text)
    text = text.strip()
    if text[:1] in _CIRCLED_CHARS:
        text = text[1:]  # before NFKC, which turns ① into a bare 1
    text = unicodedata.normalize("NFKC", text).strip()
    return _ENUM.sub("", text, count=1)


def _canon(key: str) -> str:
    if "满意" in key:
        key = _SATISFACTION.sub("满意度", key)
    if key.startswith(("年度", "全年", "本年度")):
        key = _ANNUAL.sub("", key, count=1)
    return key


def name_keys(text: str) -> tuple[str, str]:
    """(full key, key without remarks) of an indicator name, for comparison only.

    NFKC, OCR folds (己/已, O/〇/0, l/I/1), enumerators ("指标1", "1.", "①"), weight/unit remarks
    ("(%)", "（万元）"), punctuation and whitespace removed; 满意率 read as 满意度 and a leading 年度/全年
    dropped (every indicator of the form is annual). The second key also loses other parenthetical
    remarks and a target printed into the name ("达到90%以上"): a hint for review, never proof.
    """
    text = _prepare(text)
    if not _HAS_PAREN.search(text):
        full_key = _canon(_alnum(_fold(text)))
        stripped_key = _TARGET_TAIL.sub("", full_key) if full_key[-1:].isdigit() else full_key
        return full_key, stripped_key or full_key
    full = _PAREN.sub(lambda m: "" if _noise_paren(m.group(1)) else m.group(1), text)
    stripped = _PAREN.sub("", text)
    full_key = _canon(_alnum(_fold(full)))
    stripped_key = _TARGET_TAIL.sub("", _canon(_alnum(_fold(stripped))))
    return full_key, stripped_key or full_key


def name_key(text: str) -> str:
    return name_keys(text)[0]


def _raw_key(text: str) -> str:
    """The name key before synonym folding (what a lost first character is lost from)."""
    text = _prepare(text)
    return _alnum(_fold(_PAREN.sub(lambda m: "" if _noise_paren(m.group(1)) else m.group(1), text)))


def label_key(text: str) -> str:
    """Key of a label cell: like a name key, with a trailing weight ("产出指标(50分)", "产出指标50") removed."""
    text = _prepare(text)
    text = _PAREN.sub(lambda m: "" if _noise_paren(m.group(1)) else m.group(1), text)
    key = _alnum(_fold(text))
    if not key.isdigit():
        key = _WEIGHT_TAIL.sub("", key)
    return key


def _mask(key: str) -> str:
    return _NUMBER.sub("#", key)


def _slot_key(pattern: str) -> str:
    return "#".join(name_key(part) for part in pattern.split("{n}"))


# --------------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------------


def models_dir() -> Path:
    """``$FORMRESCUE_MODELS`` or the repository's ``models/``."""
    env = os.environ.get(ENV_MODELS)
    if env:
        return Path(env)
    import pipeline  # local import: the package is the anchor, not this module's location on disk

    return Path(pipeline.__file__).resolve().parent.parent / "models"


def _split(value: str | None) -> tuple[str, ...]:
    if not value:
        return ()
    return tuple(part.strip() for part in value.split("|") if part.strip())


def _read_csv(path: Path, required: Sequence[str]) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        header = [h.strip() for h in (reader.fieldnames or [])]
        missing = [c for c in required if c not in header]
        if missing:
            raise CatalogueError(f"{path}: missing column(s) {', '.join(missing)}")
        rows = []
        for row in reader:
            clean = {(k or "").strip(): (v or "").strip() for k, v in row.items() if k is not None}
            if any(clean.values()) and not clean.get("id", "").startswith("#"):
                rows.append(clean)
        return rows


def _read_hierarchy(path: Path) -> list[Label]:
    rows = _read_csv(path, ("id", "level", "name"))
    by_id = {r["id"]: r for r in rows}
    if len(by_id) != len(rows):
        raise CatalogueError(f"{path}: duplicate label id")
    labels = []
    for r in rows:
        level = r["level"]
        if level not in ("1", "2", "header"):
            raise CatalogueError(f"{path}: label {r['id']}: level must be 1, 2 or header, not {level!r}")
        parent = None
        if level == "2":
            parent_row = by_id.get(r.get("parent", ""))
            if parent_row is None or parent_row["level"] != "1":
                raise CatalogueError(f"{path}: label {r['id']}: parent {r.get('parent')!r} is not a 一级 label id")
            parent = parent_row["name"]
        labels.append(
            Label(
                id=r["id"],
                level=level,
                name=r["name"],
                parent=parent,
                aliases=_split(r.get("aliases")),
                review_aliases=_split(r.get("review_aliases")),
                since=r.get("since", ""),
            )
        )
    return labels


def _read_indicators(path: Path, source: str) -> list[Entry]:
    rows = _read_csv(path, ("id", "name", "level2"))
    entries = []
    seen: set[str] = set()
    for r in rows:
        if r["id"] in seen:
            raise CatalogueError(f"{path}: duplicate id {r['id']}")
        seen.add(r["id"])
        if not r["name"]:
            raise CatalogueError(f"{path}: entry {r['id']} has no name")
        entries.append(
            Entry(
                id=r["id"],
                name=r["name"],
                level2=_split(r["level2"]),
                aliases=_split(r.get("aliases")),
                unit=r.get("unit", ""),
                slots=_split(r.get("slot")),
                since=r.get("since", ""),
                source=source,
            )
        )
    return entries


def _digest(*paths: Path) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(p.read_bytes())
    return h.hexdigest()[:8]


def _read_version(directory: Path, *data: Path) -> str:
    vfile = directory / "VERSION"
    if vfile.is_file():
        text = vfile.read_text(encoding="utf-8").strip()
        if text:
            return text
    return "sha-" + _digest(*[p for p in data if p.is_file()])


# --------------------------------------------------------------------------------------------------
# jieba: one dedicated tokenizer per set of user dictionaries, created on first use
# --------------------------------------------------------------------------------------------------

_TOKENIZERS: dict[tuple[str, ...], Any] = {}
_TOKENIZER_LOCK = threading.Lock()


def _tokenizer(userdicts: tuple[str, ...]) -> Any:
    with _TOKENIZER_LOCK:
        tk = _TOKENIZERS.get(userdicts)
        if tk is None:
            import jieba  # heavy; and its import adds a DEBUG stderr handler we silence right away

            logging.getLogger("jieba").setLevel(logging.WARNING)
            tk = jieba.Tokenizer()
            tk.initialize()
            for path in userdicts:
                tk.load_userdict(path)
            _TOKENIZERS[userdicts] = tk
        return tk


# Token codes: every distinct token of the catalogue becomes one character of plane 15, unknown query
# tokens one of plane 16, so a plain character ratio over code strings is a word-level similarity.
_VOCAB_BASE = 0xF0000
_UNKNOWN_BASE = 0x100000
_VOCAB_SIZE = _UNKNOWN_BASE - _VOCAB_BASE


_SIG_BITS: dict[str, int] = {}


def _signature(key: str) -> int:
    """64-bit set of the key's characters (hashed): popcount(a & b) bounds the characters a and b share."""
    sig = 0
    for ch in key:
        bit = _SIG_BITS.get(ch)
        if bit is None:
            bit = _SIG_BITS.setdefault(ch, 1 << ((ord(ch) * 2654435761 >> 8) & 63))
        sig |= bit
    return sig


# --------------------------------------------------------------------------------------------------
# The catalogue
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Scored:
    entry: int
    score: float
    how: str


class Catalogue:
    """The loaded catalogue with its precomputed indexes. Build with :meth:`load`; immutable afterwards
    (apart from internal caches), so one instance can be shared by threads of one process."""

    version: str

    def __init__(
        self,
        entries: Sequence[Entry],
        labels: Sequence[Label],
        version: str,
        learned_aliases: Iterable[tuple[str, str]] = (),
        userdicts: Sequence[str | Path] = (),
        sources: Sequence[str | Path] = (),
    ) -> None:
        self.version = version
        self.sources = tuple(str(s) for s in sources)
        self._entries = tuple(entries)
        self._labels = tuple(labels)
        self._userdicts = tuple(str(p) for p in userdicts)
        self._by_id = {e.id: i for i, e in enumerate(self._entries)}
        self._label_by_id = {lab.id: lab for lab in self._labels}
        self._check_hierarchy()
        self._learned: tuple[tuple[str, str], ...] = ()
        self.stale_aliases: tuple[tuple[str, str], ...] = ()
        self._build_labels()
        self._build_index()
        self._add_learned(learned_aliases)
        self._finish_index()
        self._cache: dict[tuple[str, str | None], CatalogueMatch] = {}
        self._label_cache: dict[tuple[str, str, str | None], LabelMatch] = {}
        self._tok_vocab: dict[str, str] = {}
        self._tok_cache: dict[str, str] = {}
        self._tk: Any = None
        self._lock = threading.RLock()

    # ---- construction ------------------------------------------------------------------------

    @classmethod
    def load(
        cls,
        path: str | Path | None = None,
        learned_aliases: Iterable[tuple[str, str]] = (),
    ) -> Catalogue:
        """Load a catalogue.

        ``path`` (else ``$FORMRESCUE_CATALOGUE``, else ``models/catalogue``) is either a directory holding
        ``indicators.csv`` (+ optional ``hierarchy.csv``, ``VERSION``, ``userdict.txt``) that replaces the
        shipped catalogue, or a single CSV of entries added to the shipped one (an equal id overrides the
        shipped entry). ``learned_aliases`` are (printed variant, id) pairs confirmed by reviewers; they are
        kept apart from the files and never written to them.
        """
        shipped_dir = models_dir() / "catalogue"
        if path is None:
            env = os.environ.get(ENV_CATALOGUE)
            path = Path(env) if env else shipped_dir
        path = Path(path)
        jieba_dict = models_dir() / "jieba" / "userdict.txt"
        userdicts: list[Path] = [jieba_dict] if jieba_dict.is_file() else []
        if path.is_dir():
            ind = path / "indicators.csv"
            if not ind.is_file():
                raise CatalogueError(f"{path}: no indicators.csv")
            hier = path / "hierarchy.csv"
            if not hier.is_file():
                hier = shipped_dir / "hierarchy.csv"
            source = "shipped" if path.resolve() == shipped_dir.resolve() else "user"
            entries = _read_indicators(ind, source)
            version = _read_version(path, ind, hier)
            if (path / "userdict.txt").is_file() and path.resolve() != shipped_dir.resolve():
                userdicts.append(path / "userdict.txt")
            return cls(entries, _read_hierarchy(hier), version, learned_aliases, userdicts, (ind, hier))
        if path.is_file():
            base_ind = shipped_dir / "indicators.csv"
            hier = shipped_dir / "hierarchy.csv"
            merged = {e.id: e for e in _read_indicators(base_ind, "shipped")}
            for e in _read_indicators(path, "user"):
                merged[e.id] = e
            version = f"{_read_version(shipped_dir, base_ind, hier)}+{path.stem}-{_digest(path)}"
            return cls(
                list(merged.values()),
                _read_hierarchy(hier),
                version,
                learned_aliases,
                userdicts,
                (base_ind, hier, path),
            )
        raise CatalogueError(f"catalogue not found: {path}")

    def with_learned_aliases(self, learned_aliases: Iterable[tuple[str, str]]) -> Catalogue:
        """A new catalogue with these learned aliases in addition to the ones already held."""
        return Catalogue(
            self._entries,
            self._labels,
            self.version,
            (*self._learned, *learned_aliases),
            self._userdicts,
            self.sources,
        )

    def _check_hierarchy(self) -> None:
        level2_names = {lab.name for lab in self._labels if lab.level == "2"}
        for e in self._entries:
            if not e.level2:
                raise CatalogueError(f"entry {e.id} has no 二级 parent")
            unknown = [p for p in e.level2 if p not in level2_names]
            if unknown:
                raise CatalogueError(f"entry {e.id}: unknown 二级 parent(s) {', '.join(unknown)}")

    def _build_labels(self) -> None:
        # level -> list of (canonical, accepted form keys, review form keys)
        self._label_forms: dict[str, list[tuple[str, tuple[str, ...], tuple[str, ...]]]] = {}
        self._label_exact: dict[str, dict[str, set[str]]] = {}
        self._label_review: dict[str, dict[str, set[str]]] = {}
        self._parent: dict[str, str] = {}
        self._children: dict[str, list[str]] = {}
        for lab in self._labels:
            forms = tuple(dict.fromkeys(k for k in (label_key(t) for t in (lab.name, *lab.aliases)) if k))
            review = tuple(dict.fromkeys(k for k in (label_key(t) for t in lab.review_aliases) if k))
            self._label_forms.setdefault(lab.level, []).append((lab.name, forms, review))
            for k in forms:
                self._label_exact.setdefault(lab.level, {}).setdefault(k, set()).add(lab.name)
            for k in review:
                self._label_review.setdefault(lab.level, {}).setdefault(k, set()).add(lab.name)
            if lab.level == "2" and lab.parent:
                self._parent[lab.name] = lab.parent
                self._children.setdefault(lab.parent, []).append(lab.name)

    def _build_index(self) -> None:
        # key -> entry indices; sets while building, tuples once built (see _finish_index)
        self._exact: dict[str, set[int]] = {}
        self._slot_exact: dict[str, set[int]] = {}
        self._suffix: dict[str, set[int]] = {}
        self._prefix: dict[str, set[int]] = {}
        self._choice_keys: list[str] = []
        self._choice_entry: list[int] = []
        self._slot_keys: list[str] = []
        self._slot_entry: list[int] = []
        for i, e in enumerate(self._entries):
            for text in (e.name, *e.aliases):
                self._add_key(name_key(text), i, _raw_key(text))
            for pattern in e.slots:
                key = _slot_key(pattern)
                if key:
                    self._slot_exact.setdefault(key, set()).add(i)
                    self._slot_keys.append(key)
                    self._slot_entry.append(i)

    def _add_key(self, key: str, entry: int, raw: str = "") -> None:
        if not key:
            return
        # The first/last character is lost from the form as printed, before any synonym folding.
        for form in {key, raw or key}:
            if len(form) >= 4:
                # Losing a negation is no OCR accident to repair: "不超预算" without 不 means the opposite.
                if form[0] not in _NEGATION:
                    self._suffix.setdefault(_canon(form[1:]), set()).add(entry)
                if form[-1] not in _NEGATION:
                    self._prefix.setdefault(_canon(form[:-1]), set()).add(entry)
        if entry in self._exact.get(key, ()):
            return
        self._exact.setdefault(key, set()).add(entry)
        self._choice_keys.append(key)
        self._choice_entry.append(entry)

    def _add_learned(self, learned: Iterable[tuple[str, str]]) -> None:
        kept: list[tuple[str, str]] = []
        stale: list[tuple[str, str]] = []
        self._learned_exact: dict[str, int] = {}
        for variant, entry_id in learned:
            variant, entry_id = str(variant), str(entry_id)
            if entry_id in self._by_id:
                key = name_key(variant)
                if key:
                    # A reviewer's decision wins over a shipped alias that says otherwise.
                    self._learned_exact[key] = self._by_id[entry_id]
                    if key not in self._exact:  # also a fuzzy target, unless a shipped form says otherwise
                        self._add_key(key, self._by_id[entry_id])
                    kept.append((variant, entry_id))
            elif entry_id in self._label_by_id:
                lab = self._label_by_id[entry_id]
                key = label_key(variant)
                if key:
                    self._label_exact.setdefault(lab.level, {})[key] = {lab.name}
                    kept.append((variant, entry_id))
            else:
                stale.append((variant, entry_id))
        if stale:
            log.warning("%d learned alias(es) point at ids not in catalogue %s; ignored", len(stale), self.version)
        self._learned = tuple(kept)
        self.stale_aliases = tuple(stale)

    def _finish_index(self) -> None:
        # Tuples instead of sets: thousands fewer objects for the garbage collector to walk.
        for table in (self._exact, self._slot_exact, self._suffix, self._prefix):
            for key, ids in table.items():
                table[key] = tuple(sorted(ids))  # type: ignore[assignment]
        # Keys sorted by length: a length window is then a slice of every array below.
        order = sorted(range(len(self._choice_keys)), key=lambda i: len(self._choice_keys[i]))
        self._choice_keys = [self._choice_keys[i] for i in order]
        self._choice_entry = [self._choice_entry[i] for i in order]
        keys = self._choice_keys
        self._sigs = np.array([_signature(k) for k in keys], dtype=np.uint64)
        self._lens = np.array([len(k) for k in keys], dtype=np.int32)
        self._half_need = self._lens * (REVIEW / 2)
        self._windows: dict[int, tuple[int, int]] = {}
        self._key_digits = [tuple(_DIGITS.findall(k)) for k in keys]
        # 二级 label -> the entries filed under it (for blocking)
        block: dict[str, set[int]] = {}
        for i, e in enumerate(self._entries):
            for parent in e.level2:
                block.setdefault(parent, set()).add(i)
        self._block = {label: frozenset(ids) for label, ids in block.items()}

    # ---- read-only views ---------------------------------------------------------------------

    @property
    def entries(self) -> tuple[Entry, ...]:
        return self._entries

    @property
    def labels(self) -> tuple[Label, ...]:
        return self._labels

    @property
    def key_count(self) -> int:
        """Number of distinct (entry, printed form) keys the fuzzy search runs over."""
        return len(self._choice_keys)

    @property
    def learned_aliases(self) -> tuple[tuple[str, str], ...]:
        return self._learned

    def __repr__(self) -> str:
        return f"Catalogue(version={self.version!r}, entries={len(self._entries)}, learned={len(self._learned)})"

    def problems(self) -> list[str]:
        """What makes names unmatchable: a printed form (name, alias or slot) shared by several entries."""
        out = []
        for table in (self._exact, self._slot_exact):
            for key, ids in sorted(table.items()):
                if len(ids) > 1:
                    names = ", ".join(sorted(self._entries[i].id for i in ids))
                    out.append(f"{key!r} belongs to {names}")
        return out

    def entry(self, entry_id: str) -> Entry | None:
        i = self._by_id.get(entry_id)
        return None if i is None else self._entries[i]

    def level1_names(self) -> tuple[str, ...]:
        return tuple(lab.name for lab in self._labels if lab.level == "1")

    def level2_names(self, level1: str | None = None) -> tuple[str, ...]:
        if level1 is None:
            return tuple(lab.name for lab in self._labels if lab.level == "2")
        return tuple(self._children.get(level1, ()))

    def level1_of(self, level2: str) -> str | None:
        """The 一级 label a 二级 label belongs to (数量指标→产出指标, 经济成本指标→成本指标)."""
        if level2 in self._parent:
            return self._parent[level2]
        m = self.match_level2(level2)
        return self._parent.get(m.canonical) if m.decision == "accept" and m.canonical else None

    # ---- labels ------------------------------------------------------------------------------

    def match_level1(self, text: str) -> LabelMatch:
        """A 一级 label cell ('产出指标(50分)', '效益', '满意度指标') to its canonical name."""
        return self._match_label(text, "1", None)

    def match_level2(self, text: str, level1: str | None = None) -> LabelMatch:
        """A 二级 label cell ('数量指示', '社会效益指', '服务对象满意度') to its canonical name.

        With ``level1`` the repair of damaged labels prefers that 一级's children; an undamaged label is
        accepted as printed even when it belongs elsewhere (the caller checks the hierarchy).
        """
        if level1 is not None and level1 not in self._children:
            m1 = self.match_level1(level1)
            level1 = m1.canonical if m1.decision == "accept" else None
        return self._match_label(text, "2", level1)

    def match_header(self, text: str) -> LabelMatch:
        """A column header cell ('一级指标', '年度指标值', damaged '级指标') to its canonical header."""
        return self._match_label(text, "header", None)

    def label_kind(self, text: str) -> str | None:
        """'level1', 'level2' or 'header' when the cell is such a label (accepted or to review), else None.

        Only cells carrying 指/标 or a header word count: a bare '满意度' or '成本' is also a real 三级
        name, so without the column context it is not called a label. A doubtful match counts only when
        the cell ends like a label ('级指标', '社会效益指'), so '年度指标完成率' stays an indicator name.
        """
        key = label_key(text) if text else ""
        if not key:
            return None
        matches = (
            ("header", self.match_header(text)),
            ("level1", self.match_level1(text)),
            ("level2", self.match_level2(text)),
        )
        for kind, m in matches:
            if m.decision == "accept" and (kind == "header" or "指" in key or key.endswith("标")):
                return kind
        if key.endswith(("指标", "指", "标", "指示")):
            # a doubtful label: the level labels first, the column headers are the lesser suspicion
            for kind, m in sorted(matches, key=lambda km: km[0] == "header"):
                if m.decision == "review":
                    return kind
        return None

    def is_label(self, text: str) -> bool:
        """True for a 一级/二级 label cell or a column header ('绩效指标', '一级指标'), not an indicator name."""
        return self.label_kind(text) is not None

    def _match_label(self, text: str, level: str, parent: str | None) -> LabelMatch:
        ck = (text, level, parent)
        hit = self._label_cache.get(ck)
        if hit is None:
            hit = self._match_label_uncached(text, level, parent)
            if len(self._label_cache) >= _CACHE_SIZE:
                self._label_cache.clear()
            self._label_cache[ck] = hit
        return hit

    def _match_label_uncached(self, text: str, level: str, parent: str | None) -> LabelMatch:
        key = label_key(text) if text else ""
        if not key:
            return LabelMatch("none", None, 0.0)
        exact = self._label_exact.get(level, {})
        found = exact.get(key)
        if found:
            if len(found) == 1:
                return LabelMatch("accept", next(iter(found)), 1.0, ((next(iter(found)), 1.0),))
            return LabelMatch("review", None, 0.9, tuple((n, 0.9) for n in sorted(found)))
        review = self._label_review.get(level, {}).get(key)
        if review:
            return LabelMatch("review", None, 0.8, tuple((n, 0.8) for n in sorted(review)))
        folded = key.translate(_LABEL_FOLD)
        if folded != key and folded in exact and len(exact[folded]) == 1:
            name = next(iter(exact[folded]))
            return LabelMatch("accept", name, 0.97, ((name, 0.97),))
        forms = self._label_forms.get(level, [])
        if parent is not None and level == "2":
            children = set(self._children.get(parent, ()))
            in_block = [f for f in forms if f[0] in children]
        else:
            in_block = forms
        for pool, penalty in ((in_block, 0.0), (forms, 0.1)):
            repaired = self._repair_label(folded, pool)
            if repaired is not None:
                names, score = repaired
                if len(names) == 1 and penalty == 0.0:
                    return LabelMatch("accept", names[0], score, ((names[0], score),))
                return LabelMatch("review", None, score - penalty, tuple((n, score - penalty) for n in names))
            if pool is forms:
                break
        # A label of another level printed here ('效益指标' in the 二级 column) is not a repair case.
        if any(key in table for lvl, table in self._label_exact.items() if lvl != level):
            return LabelMatch("none", None, 0.0)
        # Anything else that looks like a label goes to a person with the nearest labels.
        scored: list[tuple[str, float]] = []
        for name, fkeys, _ in forms:
            s = max((fuzz.ratio(folded, f) / 100 for f in fkeys), default=0.0)
            if s >= REVIEW:
                scored.append((name, round(s, 4)))
        scored.sort(key=lambda t: -t[1])
        if scored:
            return LabelMatch("review", None, scored[0][1], tuple(scored[:MAX_CANDIDATES]))
        return LabelMatch("none", None, 0.0)

    @staticmethod
    def _repair_label(
        key: str, pool: Sequence[tuple[str, tuple[str, ...], tuple[str, ...]]]
    ) -> tuple[list[str], float] | None:
        """Damage one label explains: a lost character or two at the ends, or one character misread."""
        if len(key) < 3:
            return None
        lost: list[str] = []
        misread: list[str] = []
        for name, fkeys, _ in pool:
            for f in fkeys:
                if len(f) <= len(key):
                    if len(f) == len(key) and len(f) >= 4 and sum(a != b for a, b in zip(f, key, strict=True)) == 1:
                        misread.append(name)
                    continue
                allowed = 1 if len(f) <= 5 else 2
                if len(f) - len(key) <= allowed and key in f:
                    lost.append(name)
        for names, score in ((lost, 0.93), (misread, 0.9)):
            uniq = list(dict.fromkeys(names))
            if uniq:
                return uniq, score
        return None

    # ---- indicator names ---------------------------------------------------------------------

    def warm_up(self) -> None:
        """Load the jieba tokenizer now (~1 s): otherwise the first name that needs a fuzzy match pays it."""
        if self._tk is None:
            self._tk = _tokenizer(self._userdicts)

    def match_indicator(self, name: str, level2: str | None = None) -> CatalogueMatch:
        """Map a 三级 indicator name to a catalogue entry: accept, review (with candidates) or none."""
        ck = (name, level2)
        hit = self._cache.get(ck)
        if hit is None:
            hit = self._match_indicator(name, level2)
            if len(self._cache) >= _CACHE_SIZE:
                self._cache.clear()
            self._cache[ck] = hit
        return hit

    def match_indicators(
        self, names: Iterable[str], level2s: Iterable[str | None] | None = None
    ) -> list[CatalogueMatch]:
        names = list(names)
        l2 = list(level2s) if level2s is not None else [None] * len(names)
        return [self.match_indicator(n, b) for n, b in zip(names, l2, strict=True)]

    def _block_of(self, level2: str | None) -> frozenset[int] | None:
        if not level2:
            return None
        if level2 in self._block:
            return self._block[level2]
        m = self.match_level2(level2)
        if m.decision == "accept" and m.canonical:
            return self._block.get(m.canonical, frozenset())
        return None

    def _match_indicator(self, name: str, level2: str | None) -> CatalogueMatch:
        full, stripped = name_keys(name) if name else ("", "")
        if not full:
            return CatalogueMatch("none")
        block = self._block_of(level2)
        found: dict[int, _Scored] = {}

        def offer(entry: int, score: float, how: str) -> None:
            cur = found.get(entry)
            if cur is None or score > cur.score:
                found[entry] = _Scored(entry, score, how)

        learned = self._learned_exact.get(full)
        if learned is not None:
            return self._result([_Scored(learned, 1.0, "learned")], block)
        for i in self._exact.get(full, ()):
            offer(i, 1.0, "exact")
        masked = _mask(full)
        has_digits = masked != full
        if has_digits:
            for i in self._slot_exact.get(masked, ()):
                offer(i, 1.0, "slot")
        if found:
            return self._result(list(found.values()), block)
        if stripped != full and stripped:
            for i in self._exact.get(stripped, ()):
                offer(i, STRIPPED_SCORE, "stripped")
        for i in self._suffix.get(full, ()):
            # three characters left are too few to be sure of the one that was lost (按时完成/及时完成)
            offer(i, DROP_FIRST_SCORE if len(full) >= 4 else DROP_LAST_SCORE, "drop_first")
        for i in self._prefix.get(full, ()):
            offer(i, DROP_LAST_SCORE, "drop_last")
        if len(full) >= 3:
            # an entry a lost first character explains already scores above any fuzzy score it could get
            done = {e for e, sc in found.items() if sc.score >= DROP_FIRST_SCORE}
            for entry, score in self._fuzzy(full, has_digits, skip=done):
                offer(entry, score, "fuzzy")
            if has_digits and self._slot_keys:
                hits = process.extract(
                    masked, self._slot_keys, scorer=fuzz.ratio, limit=MAX_CANDIDATES, score_cutoff=REVIEW * 100
                )
                scores = self._combine(masked, [(key, char / 100) for key, char, _ in hits])
                for (_key, _char, j), score in zip(hits, scores, strict=True):
                    offer(self._slot_entry[j], score, "fuzzy_slot")
        return self._result(list(found.values()), block)

    def _fuzzy(self, key: str, has_digits: bool, skip: Collection[int] = ()) -> list[tuple[int, float]]:
        """Fuzzy candidates (entry, combined score).

        Two cheap bounds skip most keys before rapidfuzz runs: the length window a character ratio of
        REVIEW allows (keys are sorted by length) and a 64-bit character signature. Both are exact for
        every key that could take or block an accept (those need a character ratio >= 0.8); a key below a
        character ratio of REVIEW could at most have been a weak review candidate.
        """
        n = len(key)
        window = self._windows.get(n)
        if window is None:
            lo = int(np.searchsorted(self._lens, math.ceil(n * REVIEW / (2 - REVIEW) - 1e-9), side="left"))
            hi = int(np.searchsorted(self._lens, int(n * (2 - REVIEW) / REVIEW + 1e-9), side="right"))
            window = self._windows.setdefault(n, (lo, hi))
        lo, hi = window
        if hi <= lo:
            return []
        sig = _signature(key)
        spare = n - sig.bit_count()  # repeats and hash collisions inside the key
        # ratio >= REVIEW needs LCS >= REVIEW·(n + m)/2, and LCS <= shared + spare.
        shared = np.bitwise_count(self._sigs[lo:hi] & np.uint64(sig))
        ok = np.flatnonzero(shared >= self._half_need[lo:hi] + (n * REVIEW / 2 - spare))
        if ok.size == 0:
            return []
        keys = self._choice_keys
        pos = (ok + lo).tolist()
        hits = process.extract(key, [keys[i] for i in pos], scorer=fuzz.ratio, limit=12, score_cutoff=REVIEW * 100)
        # Best-scoring key per entry, at most MAX_CANDIDATES + 1 entries: only they can decide.
        best: dict[int, tuple[str, int, float]] = {}
        for choice, char, j in hits:
            ci = pos[j]
            entry = self._choice_entry[ci]
            if entry not in best and entry not in skip:
                best[entry] = (choice, ci, char / 100)
                if len(best) > MAX_CANDIDATES:
                    break
        q_digits = tuple(_DIGITS.findall(key)) if has_digits else ()
        q_neg = _NEGATION.intersection(key)
        scores = self._combine(key, [(choice, char) for choice, _, char in best.values()])
        out: list[tuple[int, float]] = []
        for (entry, (choice, ci, _)), score in zip(best.items(), scores, strict=True):
            if self._key_digits[ci] != q_digits or q_neg != _NEGATION.intersection(choice):
                # Numbers in a name without a slot are part of its identity ("12345热线"), and a negation
                # flips its meaning: a person decides.
                score = min(score, ACCEPT - 0.01)
            out.append((entry, score))
        return out

    # ---- scoring -----------------------------------------------------------------------------

    def _tokens(self, key: str, *, learn: bool) -> str:
        cached = self._tok_cache.get(key) if learn else None
        if cached is not None:
            return cached
        self.warm_up()
        codes = []
        unknown: dict[str, str] = {}
        with self._lock:
            for tok in self._tk.cut(key, HMM=False):
                code = self._tok_vocab.get(tok)
                if code is None:
                    if learn and len(self._tok_vocab) < _VOCAB_SIZE:
                        code = chr(_VOCAB_BASE + len(self._tok_vocab))
                        self._tok_vocab[tok] = code
                    else:
                        code = unknown.setdefault(tok, chr(_UNKNOWN_BASE + len(unknown)))
                codes.append(code)
            out = "".join(codes)
            if learn:
                self._tok_cache[key] = out
        return out

    def _combine(self, query: str, choices: Sequence[tuple[str, float]]) -> list[float]:
        """Score of the query against each (choice, character ratio): W_CHAR·character ratio +
        W_TOKEN·jieba-token ratio, or the character ratio capped below ACCEPT when that is higher."""
        if all(char == 1.0 for _, char in choices):
            return [1.0] * len(choices)
        if max((char for _, char in choices), default=0.0) < _ACCEPTABLE_CHAR:
            # No word agreement could lift any of them to ACCEPT, and each is worth a review already:
            # the decision is made, so skip the tokenizer and report the character scores.
            return [min(char, ACCEPT - 0.01) for _, char in choices]
        # Candidate keys first, so the query's words they share already have a code; then one cut of the query.
        tok_choices = [self._tokens(choice, learn=True) for choice, _ in choices]
        tok_query = self._tokens(query, learn=False)
        out = []
        for (_, char), tok in zip(choices, tok_choices, strict=True):
            combined = 1.0 if char == 1.0 else W_CHAR * char + W_TOKEN * fuzz.ratio(tok_query, tok) / 100
            # OCR damage breaks words, so a close string with poor word agreement is still worth a review,
            # but only character and word agreement together can accept.
            out.append(combined if combined >= ACCEPT else max(combined, min(char, ACCEPT - 0.01)))
        return out

    def _result(self, found: list[_Scored], block: frozenset[int] | None) -> CatalogueMatch:
        if not found:
            return CatalogueMatch("none")
        scored = []
        for s in found:
            score = s.score
            if block is not None and s.entry not in block and s.how not in ("exact", "learned", "slot"):
                score -= BLOCK_PENALTY
            scored.append((min(1.0, max(0.0, score)), s))
        # Among several exact hits (an alias shared by two entries), the printed 二级 decides.
        exact = [(sc, s) for sc, s in scored if s.how in ("exact", "learned", "slot")]
        if len(exact) > 1 and block is not None:
            inside = [(sc, s) for sc, s in exact if s.entry in block]
            if len(inside) == 1:
                scored = inside + [(sc - 2 * BLOCK_PENALTY, s) for sc, s in scored if s.entry not in block]
        scored.sort(key=lambda t: (-t[0], self._entries[t[1].entry].id))
        top_score, top = scored[0]
        second = scored[1][0] if len(scored) > 1 else 0.0
        cands = tuple(
            (self._entries[s.entry].id, self._entries[s.entry].name, round(sc, 4))
            for sc, s in scored[:MAX_CANDIDATES]
            if sc >= REVIEW - 0.1
        )
        entry = self._entries[top.entry]
        if top_score >= ACCEPT and top_score - second >= MARGIN:
            return CatalogueMatch("accept", entry.id, entry.name, round(top_score, 4), cands)
        if top_score >= REVIEW:
            return CatalogueMatch("review", None, None, round(top_score, 4), cands)
        return CatalogueMatch("none", None, None, round(top_score, 4), ())

    # ---- level-2 evidence from a row's own content -------------------------------------------

    def content_evidence(self, name: str, target: str | None, actual: str | None) -> dict[str, float]:
        """二级 label -> evidence weight in [0, 1] from the row's own text. Empty dict = no evidence.

        Clues: units of the values (次/家/篇 → 数量指标, 天/月 → 时效指标, 元/万元 → 成本指标), key words of
        the name (合格率/达标 → 质量指标, 及时/按时/dates → 时效指标, 预算/成本 → 成本指标, 满意 →
        服务对象满意度指标 …) and the catalogue parent of a name the catalogue matches. Weights of several
        clues for one label combine as independent evidence (1 − Π(1 − w)).
        """
        weights: dict[str, list[float]] = {}

        def add(label: str, w: float) -> None:
            if label in self._parent:
                weights.setdefault(label, []).append(w)

        nm = unicodedata.normalize("NFKC", name or "")
        values = " ".join(unicodedata.normalize("NFKC", v) for v in (target, actual) if v)
        for pattern, label, w in _NAME_CLUES:
            if pattern.search(nm):
                add(label, w)
        for pattern, label, w in _VALUE_CLUES:
            if pattern.search(values):
                add(label, w)
        if nm.strip():
            m = self.match_indicator(nm)
            if m.decision == "accept" and m.entry_id:
                parents = self._entries[self._by_id[m.entry_id]].level2
                for k, parent in enumerate(parents):
                    add(parent, 0.9 if k == 0 else 0.6)
            elif m.decision == "review" and m.candidates:
                e = self.entry(m.candidates[0][0])
                if e is not None:
                    add(e.level2[0], 0.4)
        out = {}
        for label, ws in weights.items():
            p = 1.0
            for w in ws:
                p *= 1.0 - w
            out[label] = round(1.0 - p, 4)
        return out


_QTY_UNITS = (
    r"(?:人次|次|家|篇|个|人|场|项|件|台|套|册|份|期|批次|批|户|辆|名|所|座|处|条|门|卷"
    r"|公里|千米|平方米|㎡|亩|吨|万人|课时|本|张|间|部|棵|株|只|头)"
)
_TIME_UNITS = r"(?:天|日|工作日|小时|分钟|个月|周)"
_DATE = r"(?:\d{4}\s*年\s*\d{1,2}\s*月|\d{1,2}\s*月\s*\d{1,2}\s*日|\d{1,2}\s*月底|年底|月底|年内|季度内|前完成|之前)"

_NAME_CLUES: tuple[tuple[re.Pattern[str], str, float], ...] = (
    (re.compile(r"满意"), "服务对象满意度指标", 0.9),
    (re.compile(r"数量|人次|次数|人数|场次|户数|个数|篇数|批次|规模|里程|面积"), "数量指标", 0.5),
    # 高质量 (发展) is a slogan, not a quality measure
    (
        re.compile(r"合格|达标|(?<!高)质量|优良|验收|准确|完好|合规|规范性|符合|正常运行|通过率|出勤率"),
        "质量指标",
        0.55,
    ),
    (re.compile(r"及时|按时|按期|时间|时限|期限|进度|(?<!全)周期|时效|限时|" + _DATE), "时效指标", 0.6),
    (re.compile(r"预算|成本|费用|经费|造价|单价|节支|结余|超支|控制在"), "成本指标", 0.6),
    (re.compile(r"收入|增收|产值|税收|经济效益|投资额|消费|融资规模|融资额|融资金额|营业|利润"), "经济效益指标", 0.4),
    (
        re.compile(r"社会|群众|公众(?!号)|知名度|美誉度|影响力|认知度|认可度|宣传效果|就业|获得感|安全感|知晓"),
        "社会效益指标",
        0.35,
    ),
    (re.compile(r"生态|环境|绿化|排放|污染|节能|减排|水质|空气|垃圾|森林|碳"), "生态效益指标", 0.5),
    (re.compile(r"可持续|长效|长期|持续(?!时间)|机制|使用年限"), "可持续影响指标", 0.45),
    (re.compile(r"社会成本|负面影响"), "社会成本指标", 0.5),
    (re.compile(r"生态环境成本|环境成本|污染治理成本"), "生态环境成本指标", 0.5),
)
_VALUE_CLUES: tuple[tuple[re.Pattern[str], str, float], ...] = (
    (re.compile(r"\d\s*" + _QTY_UNITS), "数量指标", 0.6),
    (re.compile(r"\d\s*" + _TIME_UNITS + r"|" + _DATE + r"|及时|按时|按期"), "时效指标", 0.6),
    (re.compile(r"\d\s*(?:万元|元|亿元)"), "成本指标", 0.7),
    (re.compile(r"合格|达标|优良|符合"), "质量指标", 0.5),
    (re.compile(r"满意"), "服务对象满意度指标", 0.6),
)
