"""The skills catalog: canonical skill names and the aliases recruiters type.

The catalog is a YAML file the CV's owner edits (the packaged default is
``skills.yaml`` beside this module; point ``CV_ANALYTICS_SKILLS_FILE`` at your
own). The weekly report resolves questions against it; the sample assistant
and the jobs service match against it too::

    skills:
      - name: Kubernetes
        aliases: [k8s, kube]          # matched whatever the case
      - name: Go
        aliases: [golang]
        case_sensitive: [Go]          # "go" is an English verb: only "Go" counts

A skill's name is always one of its aliases (case-insensitively, unless it is
listed under ``case_sensitive``). Aliases match whole words: ``ts`` does not
match inside "tests", and ``node.js`` wins over ``node`` because the longest
alias at a position wins.
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

# Words that never name what a recruiter is asking about: English function
# words and the filler of recruiter questions ("experience", "years", …).
_STOPWORDS = frozenset(
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
class SkillsCatalog:
    """Resolves free text and ``sourcesUsed`` entries to canonical skill names."""

    skills: tuple[str, ...]
    fingerprint: str
    source: str = "<catalog>"
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
            unknown = set(entry) - {"name", "aliases", "case_sensitive"}
            if unknown:
                raise ConfigurationError(
                    f"{where} ({name}): unknown key(s) {sorted(unknown)}; use name, aliases, case_sensitive"
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
        if name in self._exact:
            return [self._exact[name]]
        if name.casefold() in self._folded:
            return [self._folded[name.casefold()]]
        return self.skills_in_text(name) or [name[:MAX_SOURCE_NAME]]

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
            if len(lowered) < 2 or lowered in _STOPWORDS:
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
        raise ConfigurationError(f"{where} has an empty alias")
    return items


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
