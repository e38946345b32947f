"""cv.match's function: a job description against the owner's skills, by each retrieval method."""

from __future__ import annotations

import pytest

from cv_analytics.assistant import FULL_MATCH, Retriever, match_job_description
from cv_analytics.skills import SkillsCatalog

JOB_DESCRIPTION = """Senior Backend Engineer (Payments)

We are looking for a senior engineer to join our platform team in Berlin.

Requirements:
- 5+ years of Python or Go in production
- Strong PostgreSQL and Redis skills
- Experience with Kubernetes (EKS) and Terraform; Pulumi is a plus
- Event streaming with Kafka or RabbitMQ
- CI/CD with GitHub Actions or Jenkins
- Familiarity with Java or Kotlin microservices
- Snowflake and dbt for analytics

Nice to have: Rust, GraphQL, PCI DSS, Spanish.
"""

#: named in the description and the owner's, whichever the method
NAMED_AND_OWNED = {"Python", "Go", "PostgreSQL", "Redis", "Kubernetes", "Terraform", "Kafka", "CI/CD",
                   "GitHub Actions", "Microservices", "GraphQL"}
#: named in the description, not the owner's: Java, Rust and Spanish are in the catalog (for the
#: report) without evidence; the rest only the packaged vocabulary knows
MISSING = ["RabbitMQ", "Jenkins", "Java", "Kotlin", "Snowflake", "dbt", "Rust", "Spanish", "Pulumi", "PCI DSS"]


def test_a_job_description_gives_matched_skills_with_evidence_missing_ones_and_a_score(
    catalog: SkillsCatalog, retriever: Retriever
):
    result = match_job_description(catalog, retriever, JOB_DESCRIPTION)
    matched = {m.skill: m for m in result.matched}
    assert NAMED_AND_OWNED <= matched.keys()
    assert all(matched[name].score == 1.0 for name in NAMED_AND_OWNED)
    assert matched["PostgreSQL"].evidence == "8 years; projects: payments ledger"
    assert all(m.score >= FULL_MATCH for m in result.matched)
    assert [m.score for m in result.matched] == sorted((m.score for m in result.matched), reverse=True)
    assert result.missing == MISSING
    assert not matched.keys() & set(MISSING)
    # 11 of 21 requirements covered: 80 % of 52.4 plus 20 % of the best similarities (1.0)
    assert result.score == pytest.approx(100 * (0.8 * 11 / 21 + 0.2), abs=0.05)
    assert result.method == retriever.method


def test_the_same_description_gives_the_same_result(catalog: SkillsCatalog, retriever: Retriever):
    assert match_job_description(catalog, retriever, JOB_DESCRIPTION) == match_job_description(
        catalog, retriever, JOB_DESCRIPTION
    )


def test_a_description_the_owner_fits_better_scores_higher(catalog: SkillsCatalog, retriever: Retriever):
    fits = "Backend engineer: Python, FastAPI, PostgreSQL, AWS Lambda, SQS and DynamoDB; Terraform."
    does_not = "iOS engineer: Swift, Objective-C, SwiftUI, Xcode, Core Data and Firebase."
    good, bad = (match_job_description(catalog, retriever, jd) for jd in (fits, does_not))
    assert good.missing == [] and good.score > 90
    assert {"Swift", "Objective-C", "Firebase", "iOS"} <= set(bad.missing)
    assert bad.score < 30 < good.score


def test_to_dict_is_camel_case_json(catalog: SkillsCatalog, bm25: Retriever):
    data = match_job_description(catalog, bm25, "Kafka and Pulumi").to_dict()
    assert data == {
        "score": data["score"],
        "matched": [{"skill": "Kafka", "score": 1.0, "evidence": "4 years; projects: order events streaming"}],
        "missing": ["Pulumi"],
        "method": "bm25",
    }
    assert data["score"] == pytest.approx(100 * (0.8 * 1 / 2 + 0.2))


def test_a_description_naming_nothing_technical_scores_by_similarity_alone(catalog: SkillsCatalog, bm25: Retriever):
    result = match_job_description(catalog, bm25, "A friendly team, a nice office and good coffee.")
    assert result.missing == [] and result.matched == [] and result.score == 0.0


@pytest.mark.parametrize("text", ["", "   \n  "])
def test_a_blank_description_is_refused(catalog: SkillsCatalog, bm25: Retriever, text: str):
    with pytest.raises(ValueError, match="empty"):
        match_job_description(catalog, bm25, text)


@pytest.mark.parametrize(
    "text",
    [
        JOB_DESCRIPTION * 200,  # ~100 KB
        "<script>alert(1)</script> Kafka",
        "Python • Kafka • Kubernetes ▪ Pulumi ◦ 日本語 🚀",
        "-\n" * 50_000,
    ],
)
def test_hostile_descriptions_cost_at_most_themselves(catalog: SkillsCatalog, retriever: Retriever, text: str):
    result = match_job_description(catalog, retriever, text)
    assert 0 <= result.score <= 100
    assert len(result.missing) == len(set(result.missing))
