"""The skills catalog: canonical skill names and the aliases recruiters type.

The catalog is a YAML file the CV's owner edits (the packaged default is
``skills.yaml`` beside this module; point ``CV_ANALYTICS_SKILLS_FILE`` at your
own). The weekly report resolves questions against it; the sample assistant
and the jobs service match against it too::

    profile:                          # optional: who the CV is about
      name: Alex Morgan
      headline: Senior backend engineer
    skills:
      - name: Kubernetes
        aliases: [k8s, kube]          # matched whatever the case
        years: 5                      # optional: what the assistant tells recruiters
        projects: [payments platform on EKS]
        summary: Runs the team's clusters.
      - name: Go
        aliases: [golang]
        case_sensitive: [Go]          # "go" is an English verb: only "Go" counts

A skill's name is always one of its aliases (case-insensitively, unless it is
listed under ``case_sensitive``). Aliases match whole words: ``ts`` does not
match inside "tests", and ``node.js`` wins over ``node`` because the longest
alias at a position wins. ``years``, ``projects`` and ``summary`` are the
owner's evidence for a skill (the assistant quotes them); they do not change how
questions resolve, so they are not part of the :attr:`SkillsCatalog.fingerprint`.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from ..exceptions import ConfigurationError

#: The catalog shipped with the package.
DEFAULT_CATALOG_PATH = pathlib.Path(__file__).with_name("skills.yaml")
#: Environment variable naming the owner's catalog file.
SKILLS_FILE_VARIABLE = "CV_ANALYTICS_SKILLS_FILE"

# A match must not continue a word: nothing word-like before it, and after it
# no word character, no "+"/"#" (so "C" never matches inside "C++" or "C#"), and
# no ".x" (so "vue" does not match inside "vue.js" unless "vue.js" is an alias).
_BEFORE = r"(?<![\w.])"
_AFTER = r"(?![\w+#]|\.\w)"
_WORD = re.compile(r"[^\W\d_][\w+#.\-]*")
_SPACES = re.compile(r"\s+")
#: Longest text kept as a skill name when a ``sourcesUsed`` entry matches nothing in the catalog.
MAX_SOURCE_NAME = 60
#: Most years a skill may claim (a typo guard: 2015 is a year, not a duration).
MAX_YEARS = 60
_ENTRY_KEYS = ("name", "aliases", "case_sensitive", "years", "projects", "summary")
_PROFILE_KEYS = ("name", "headline", "summary")

#: Words that never name what a recruiter is asking about: English function
#: words and the filler of recruiter questions ("experience", "years", …).
QUESTION_STOPWORDS = frozenset(
    """
    a about above after again against all also am an and any are as ask asked at be been before being
    below between both but by can could did do does doing done down during each else ever few for from
    further get got had has have having he her here hers him his how i if in into is it its itself just
    know known knowledge like me mine more most much my myself need no nor not now of off on once only
    or other our out over own please really same she should so some such tell than that the their them
    then there these they this those through to too under until up use used uses using very via was we
    well were what when where which while who whom why will with work worked working works would yes yet
    you your yours yourself experience experienced experiences expertise familiar familiarity hands-on
    level good great strong skill skills skilled year years month months project projects professional
    professionally role roles job jobs team teams company companies background proficient proficiency
    done any anything something thing things example examples describe explain give tool tools technology
    technologies stack lot lots many kind kinds type types hi hello thanks thank ok okay sure much
    currently recent recently last long time times past production prod production-grade
    go say see show build built make made write wrote speak spoke talk think feel want
    """.split()
)


def _normalise(alias: str) -> str:
    return _SPACES.sub(" ", alias.strip())


_END = ""  # trie key marking the end of an alias
_GAP = " "  # trie key for the whitespace inside an alias: matches any run of it


def _trie_regex(node: dict[str, Any]) -> str:
    """A trie of aliases as a regular expression.

    One big ``a|b|c…`` alternation makes ``re`` try every alias at every
    position (~25 µs a query with a catalog of 300 aliases); a trie shares
    prefixes, so each position costs one character test. Greedy optional tails
    keep "longest alias wins": ``node(?:\\.js)?`` tries ``node.js`` first.
    """
    branches = sorted(k for k in node if k != _END)
    parts = [(r"\s+" if k == _GAP else re.escape(k)) + _trie_regex(node[k]) for k in branches]
    if not parts:
        return ""
    body = parts[0] if len(parts) == 1 else f"(?:{'|'.join(parts)})"
    if _END in node:
        return f"(?:{body})?" if len(parts) == 1 else f"{body}?"
    return body


def _pattern(aliases: Iterable[str], flags: int) -> re.Pattern[str] | None:
    trie: dict[str, Any] = {}
    for alias in set(aliases):
        node = trie
        for ch in alias.lower() if flags & re.IGNORECASE else alias:
            node = node.setdefault(_GAP if ch == " " else ch, {})
        node[_END] = {}
    if not trie:
        return None
    return re.compile(f"{_BEFORE}{_trie_regex(trie)}{_AFTER}", flags)


@dataclass(frozen=True)
class Skill:
    """One catalog entry: its canonical name, the aliases it is matched by, and the owner's evidence."""

    name: str
    aliases: tuple[str, ...] = ()
    years: float | None = None
    projects: tuple[str, ...] = ()
    summary: str | None = None

    @property
    def has_evidence(self) -> bool:
        """Whether the owner claims it (years, projects or a summary), rather than only naming it for the report."""
        return self.years is not None or bool(self.projects) or self.summary is not None

    @property
    def years_text(self) -> str | None:
        """``"6 years"``, ``"1 year"``, ``"2.5 years"``; None when the catalog gives none."""
        if self.years is None:
            return None
        return f"{self.years:g} {'year' if self.years == 1 else 'years'}"

    @property
    def evidence(self) -> str:
        """What the catalog says for it, in a line: ``"6 years; projects: X, Y"`` (empty when nothing)."""
        parts = []
        if self.years_text:
            parts.append(self.years_text)
        if self.projects:
            parts.append(f"projects: {', '.join(self.projects)}")
        return "; ".join(parts)


@dataclass(frozen=True)
class Profile:
    """Who the CV is about (the catalog's optional ``profile:``)."""

    name: str | None = None
    headline: str | None = None
    summary: str | None = None


@dataclass(frozen=True)
class SkillsCatalog:
    """Resolves free text and ``sourcesUsed`` entries to canonical skill names, and holds the owner's evidence."""

    skills: tuple[str, ...]
    fingerprint: str
    source: str = "<catalog>"
    entries: tuple[Skill, ...] = ()
    profile: Profile = field(default_factory=Profile)
    _by_name: dict[str, Skill] = field(default_factory=dict, repr=False)
    _folded: dict[str, str] = field(default_factory=dict, repr=False)
    _exact: dict[str, str] = field(default_factory=dict, repr=False)
    _folded_re: re.Pattern[str] | None = field(default=None, repr=False)
    _exact_re: re.Pattern[str] | None = field(default=None, repr=False)

    @classmethod
    def from_mapping(cls, data: Any, *, source: str = "<catalog>") -> SkillsCatalog:
        """Build a catalog from parsed YAML/JSON; raises :class:`ConfigurationError` naming the bad entry."""
        if not isinstance(data, Mapping) or not isinstance(data.get("skills"), list):
            raise ConfigurationError(f"skills catalog {source}: expected a mapping with a 'skills:' list")
        folded: dict[str, str] = {}
        exact: dict[str, str] = {}
        names: list[str] = []
        entries: list[Skill] = []
        for n, entry in enumerate(data["skills"], 1):
            where = f"skills catalog {source}, entry {n}"
            if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str) or not entry["name"].strip():
                raise ConfigurationError(f"{where}: each entry needs a non-empty 'name:'")
            name = _normalise(entry["name"])
            if name in names:
                raise ConfigurationError(f"{where}: skill {name!r} is listed twice; merge the two entries")
            names.append(name)
            aliases = _string_list(entry.get("aliases"), f"{where} ({name}), 'aliases'")
            sensitive = _string_list(entry.get("case_sensitive"), f"{where} ({name}), 'case_sensitive'")
            unknown = set(entry) - set(_ENTRY_KEYS)
            if unknown:
                raise ConfigurationError(
                    f"{where} ({name}): unknown key(s) {sorted(unknown)}; use {', '.join(_ENTRY_KEYS)}"
                )
            entries.append(
                Skill(
                    name=name,
                    aliases=tuple(dict.fromkeys(a for a in [*aliases, *sensitive] if a != name)),
                    years=_years_field(entry.get("years"), f"{where} ({name}), 'years'"),
                    projects=tuple(_string_list(entry.get("projects"), f"{where} ({name}), 'projects'")),
                    summary=_text_field(entry.get("summary"), f"{where} ({name}), 'summary'"),
                )
            )
            if name not in sensitive:
                aliases = [name, *aliases]
            for alias in aliases:
                _claim(folded, alias.casefold(), name, where)
            for alias in sensitive:
                _claim(exact, alias, name, where)
        fingerprint = hashlib.sha256(
            json.dumps([names, sorted(folded.items()), sorted(exact.items())], ensure_ascii=False).encode()
        ).hexdigest()[:16]
        return cls(
            skills=tuple(names),
            fingerprint=fingerprint,
            source=source,
            entries=tuple(entries),
            _by_name={entry.name: entry for entry in entries},
            profile=_profile(data.get("profile"), f"skills catalog {source}, 'profile'"),
            _folded=folded,
            _exact=exact,
            _folded_re=_pattern(folded, re.IGNORECASE),
            _exact_re=_pattern(exact, 0),
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> SkillsCatalog:
        """Read a catalog file (YAML, or JSON, which is YAML too)."""
        path = pathlib.Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigurationError(
                f"cannot read the skills catalog {path}: {exc.strerror or exc}; "
                f"fix {SKILLS_FILE_VARIABLE} or unset it to use the packaged catalog"
            ) from exc
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigurationError(f"skills catalog {path} is not valid YAML: {exc}") from exc
        return cls.from_mapping(data, source=str(path))

    def skill(self, name: str) -> Skill:
        """The entry of a canonical skill name (KeyError when the catalog has none)."""
        return self._by_name[name]

    @property
    def owner_skills(self) -> tuple[Skill, ...]:
        """The owner's skills: the entries with evidence, or every entry when none has any (a names-only catalog)."""
        return tuple(entry for entry in self.entries if entry.has_evidence) or self.entries

    # -- resolution -----------------------------------------------------------

    def _lookup(self, matched: str, folded: bool) -> str:
        table = self._folded if folded else self._exact
        found = table.get(matched.casefold() if folded else matched)
        if found is None:  # a multi-word alias matched across other whitespace
            key = _normalise(matched)
            found = table[key.casefold() if folded else key]
        return found

    def skills_in_text(self, text: str) -> list[str]:
        """Canonical skills named in ``text``, each once, in order of first appearance."""
        found: list[tuple[int, str]] = []
        for pattern, folded in ((self._folded_re, True), (self._exact_re, False)):
            if pattern is not None:
                found.extend((m.start(), self._lookup(m.group(), folded)) for m in pattern.finditer(text))
        found.sort()
        return list(dict.fromkeys(skill for _, skill in found))

    def resolve_source(self, source: str) -> list[str]:
        """Skills a ``sourcesUsed`` entry stands for.

        The whole entry as an alias first, then the aliases inside it; an entry
        the catalog knows nothing of is kept as a skill under its own (tidied)
        name, since sources are the CV's own labels.
        """
        name = _normalise(source)
        if not name:
            return []
        named = self.skill_named(name)
        if named is not None:
            return [named]
        return self.skills_in_text(name) or [name[:MAX_SOURCE_NAME]]

    def skill_named(self, text: str) -> str | None:
        """The skill ``text`` is, as a whole, the name or an alias of (None when it is neither)."""
        name = _normalise(text)
        return self._exact.get(name) or self._folded.get(name.casefold())

    def fallback_term(self, text: str) -> str | None:
        """The term a query names no catalog skill for, lower-cased.

        Among the words that are not stop words, the first that looks like a
        proper or technical name (a capital letter past the first word, a
        digit, ``+`` or ``#``) wins; otherwise the first such word.
        """
        first: str | None = None
        for n, m in enumerate(_WORD.finditer(text)):
            word = m.group().rstrip(".-")
            lowered = word.casefold()
            if len(lowered) < 2 or lowered in QUESTION_STOPWORDS:
                continue
            if (n > 0 and any(c.isupper() for c in word)) or any(c.isdigit() or c in "+#" for c in word):
                return lowered
            first = first or lowered
        return first


def _string_list(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str | int | float) for v in value):
        raise ConfigurationError(f"{where} must be a list of strings")
    items = [_normalise(str(v)) for v in value]
    if not all(items):
        raise ConfigurationError(f"{where} has an empty item")
    return items


def _years_field(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= MAX_YEARS:
        raise ConfigurationError(f"{where} must be a number of years from 0 to {MAX_YEARS}, got {value!r}")
    return float(value)


def _text_field(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigurationError(f"{where} must be text, got {type(value).__name__}")
    return _normalise(value) or None


def _profile(value: Any, where: str) -> Profile:
    if value is None:
        return Profile()
    if not isinstance(value, Mapping):
        raise ConfigurationError(f"{where} must be a mapping with {', '.join(_PROFILE_KEYS)}")
    unknown = set(value) - set(_PROFILE_KEYS)
    if unknown:
        raise ConfigurationError(f"{where}: unknown key(s) {sorted(unknown)}; use {', '.join(_PROFILE_KEYS)}")
    return Profile(**{key: _text_field(value.get(key), f"{where}, {key!r}") for key in _PROFILE_KEYS})


def _claim(table: dict[str, str], alias: str, name: str, where: str) -> None:
    owner = table.setdefault(alias, name)
    if owner != name:
        raise ConfigurationError(
            f"{where} ({name}): alias {alias!r} already belongs to {owner!r}; an alias must name one skill"
        )


def catalog_path(env: Mapping[str, str]) -> pathlib.Path:
    """The catalog file ``env`` names: ``CV_ANALYTICS_SKILLS_FILE``, else the packaged one.

    The wiring passes the process environment; nothing here reads it.
    """
    return pathlib.Path(env[SKILLS_FILE_VARIABLE]) if env.get(SKILLS_FILE_VARIABLE) else DEFAULT_CATALOG_PATH


def load_catalog(path: str | os.PathLike[str] | None = None) -> SkillsCatalog:
    """Load ``path``, or the packaged catalog."""
    return SkillsCatalog.load(path if path is not None else DEFAULT_CATALOG_PATH)
