"""The CV assistant: retrieval over the skills catalog (embeddings or BM25), an optional OpenAI-compatible LLM, answers, job-description matching and role summaries."""

from .answers import AnswerResult, Assistant
from .job_match import JobMatch, match_job_description
from .llm import LLMClient, LLMError, LLMReplyError
from .quality import FULL_MATCH, PARTIAL_MATCH, match_quality
from .retrieval import EMBEDDING_INSTALL_HINT, METHODS, Retriever, SkillMatch, embedding_available, open_retriever
from .summary import RoleSummary, summarise_for_role

__all__ = [
    "EMBEDDING_INSTALL_HINT",
    "FULL_MATCH",
    "METHODS",
    "PARTIAL_MATCH",
    "AnswerResult",
    "Assistant",
    "JobMatch",
    "LLMClient",
    "LLMError",
    "LLMReplyError",
    "Retriever",
    "RoleSummary",
    "SkillMatch",
    "embedding_available",
    "match_job_description",
    "match_quality",
    "open_retriever",
    "summarise_for_role",
]
