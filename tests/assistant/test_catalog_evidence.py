"""The catalog's evidence for the assistant (years, projects, summary, profile): read, checked, kept apart from resolution."""

from __future__ import annotations

import pytest
import yaml

from cv_analytics.exceptions import ConfigurationError
from cv_analytics.skills import DEFAULT_CATALOG_PATH, Profile, Skill, SkillsCatalog


def test_the_packaged_catalog_reads_like_a_cv(catalog: SkillsCatalog):
    assert catalog.profile.name == "Alex Morgan" and catalog.profile.headline and catalog.profile.summary
    python = catalog.skill("Python")
    assert python.years == 9 and "feature store ETL" in python.projects and python.summary
    assert python.evidence == "9 years; projects: cv-analytics event pipeline, payments reconciliation service, feature store ETL"
    owned = {s.name for s in catalog.owner_skills}
    assert {"Python", "TypeScript", "Kubernetes", "English"} <= owned
    assert not {"Java", "Haskell", "Cassandra"} & owned  # named for the report, not claimed


def test_evidence_does_not_change_the_fingerprint_the_report_resolves_by():
    plain = SkillsCatalog.from_mapping({"skills": [{"name": "Go", "aliases": ["golang"]}]})
    rich = SkillsCatalog.from_mapping(
        {"profile": {"name": "A"}, "skills": [{"name": "Go", "aliases": ["golang"], "years": 3, "projects": ["x"]}]}
    )
    assert plain.fingerprint == rich.fingerprint
    assert plain.skills_in_text("golang?") == rich.skills_in_text("golang?") == ["Go"]
    assert plain.owner_skills == (Skill("Go", ("golang",)),)  # a names-only catalog: every entry counts
    assert plain.profile == Profile()


@pytest.mark.parametrize(
    ("years", "evidence"), [(1, "1 year"), (2.5, "2.5 years"), (0, "0 years"), (None, "")]
)
def test_years_are_worded_for_people(years, evidence: str):
    catalog = SkillsCatalog.from_mapping({"skills": [{"name": "Go", "years": years}]})
    assert catalog.skill("Go").evidence == evidence


def test_skill_named_takes_a_whole_name_or_alias_only(catalog: SkillsCatalog):
    assert catalog.skill_named("k8s") == "Kubernetes"
    assert catalog.skill_named("  POSTGRES ") == "PostgreSQL"
    assert catalog.skill_named("go") is None  # case-sensitive: only "Go"
    assert catalog.skill_named("Event-Driven Architecture") is None  # contains an alias, is none


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"name": "Go", "years": "three"}, "entry 1 (Go), 'years' must be a number of years from 0 to 60, got 'three'"),
        ({"name": "Go", "years": -1}, "entry 1 (Go), 'years' must be a number of years"),
        ({"name": "Go", "years": 2015}, "got 2015"),
        ({"name": "Go", "years": True}, "'years' must be a number"),
        ({"name": "Go", "projects": {"a": 1}}, "entry 1 (Go), 'projects' must be a list of strings"),
        ({"name": "Go", "projects": ["ok", ""]}, "entry 1 (Go), 'projects' has an empty item"),
        ({"name": "Go", "summary": ["a"]}, "entry 1 (Go), 'summary' must be text, got list"),
        ({"name": "Go", "evidence": "x"}, "unknown key(s) ['evidence']; use name, aliases, case_sensitive, years, projects, summary"),
    ],
)
def test_bad_evidence_is_refused_naming_the_entry_and_field(tmp_path, entry: dict, message: str):
    path = tmp_path / "skills.yaml"
    path.write_text(yaml.safe_dump({"skills": [entry]}))
    with pytest.raises(ConfigurationError) as info:
        SkillsCatalog.load(path)
    assert message in str(info.value) and str(path) in str(info.value)


@pytest.mark.parametrize(
    ("profile", "message"),
    [
        ("Alex", "'profile' must be a mapping with name, headline, summary"),
        ({"nick": "A"}, "'profile': unknown key(s) ['nick']"),
        ({"name": 3}, "'profile', 'name' must be text, got int"),
    ],
)
def test_a_bad_profile_is_refused_naming_the_field(profile, message: str):
    with pytest.raises(ConfigurationError, match="skills catalog tests") as info:
        SkillsCatalog.from_mapping({"profile": profile, "skills": [{"name": "Go"}]}, source="tests")
    assert message in str(info.value)


def test_the_packaged_catalog_file_is_the_default():
    assert SkillsCatalog.load(DEFAULT_CATALOG_PATH).profile.name == "Alex Morgan"
