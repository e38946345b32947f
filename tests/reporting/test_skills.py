"""The skills catalog: aliases, word boundaries, case rules, and clear errors for a bad file."""

from __future__ import annotations

import pytest

from cv_analytics.exceptions import ConfigurationError
from cv_analytics.wiring import Settings, load_skills_catalog
from cv_analytics.skills import (
    DEFAULT_CATALOG_PATH,
    SKILLS_FILE_VARIABLE,
    SkillsCatalog,
    catalog_path,
    load_catalog,
)


@pytest.fixture(scope="module")
def packaged() -> SkillsCatalog:
    return SkillsCatalog.load(DEFAULT_CATALOG_PATH)


@pytest.mark.parametrize(
    ("text", "skills"),
    [
        ("k8s and TS?", ["Kubernetes", "TypeScript"]),
        ("What is your experience with TypeScript?", ["TypeScript"]),
        ("Do you know Go?", ["Go"]),
        ("let's go to the next question", []),  # "go" is a verb: Go is case-sensitive
        ("golang in production", ["Go"]),
        ("Node.js or plain node?", ["Node.js"]),  # the longest alias wins, each skill once
        ("C++ and C# and .NET", ["C++", "C#", ".NET"]),
        ("ASP.NET MVC", [".NET"]),
        ("our tests are green", []),  # "ts" does not match inside a word
        ("vue.js and React", ["Vue", "React"]),
        ("machine   learning pipelines", ["Machine Learning", "CI/CD"]),  # aliases match across whitespace
        ("the REST of it", ["REST"]),
        ("the rest of it", []),
        ("", []),
    ],
)
def test_packaged_catalog_resolves_what_recruiters_type(packaged: SkillsCatalog, text: str, skills: list[str]):
    assert packaged.skills_in_text(text) == skills


def test_sources_resolve_by_alias_and_unknown_labels_are_kept(packaged: SkillsCatalog):
    assert packaged.resolve_source("typescript") == ["TypeScript"]
    assert packaged.resolve_source("  Kubernetes  ") == ["Kubernetes"]
    assert packaged.resolve_source("AWS Lambda & SQS") == ["AWS Lambda", "SQS"]
    assert packaged.resolve_source("Internal Tooling") == ["Internal Tooling"]
    assert packaged.resolve_source("   ") == []


@pytest.mark.parametrize(
    ("text", "term"),
    [
        ("Tell me about Zig", "zig"),
        ("What is your experience with Salesforce in production?", "salesforce"),
        ("do you have experience with abap or cobol", "abap"),
        ("What about COBOL85?", "cobol85"),
        ("hello", None),
        ("What do you think?", None),
    ],
)
def test_fallback_term_picks_the_word_the_question_is_about(packaged: SkillsCatalog, text: str, term: str | None):
    assert packaged.fallback_term(text) == term


def test_catalog_file_from_the_environment_overrides_the_packaged_one(tmp_path, monkeypatch):
    own = tmp_path / "mine.yaml"
    own.write_text("skills:\n  - name: Elm\n    aliases: [elm-lang]\n")
    monkeypatch.setenv(SKILLS_FILE_VARIABLE, str(own))
    assert catalog_path({SKILLS_FILE_VARIABLE: str(own)}) == own
    assert catalog_path({}) == DEFAULT_CATALOG_PATH
    catalog = load_skills_catalog(Settings.from_env())
    assert catalog.skills == ("Elm",)
    assert catalog.skills_in_text("any elm-lang?") == ["Elm"]
    assert catalog.fingerprint != SkillsCatalog.load(DEFAULT_CATALOG_PATH).fingerprint


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("skills: [{name: Go, aliases: [golang]}, {name: Golang, aliases: [golang]}]", "alias 'golang' already belongs to 'Go'"),
        ("skills: [{aliases: [x]}]", "entry 1: each entry needs a non-empty 'name:'"),
        ("skills: [{name: A}, {name: A}]", "skill 'A' is listed twice"),
        ("skills: [{name: A, alias: [b]}]", "unknown key(s) ['alias']"),
        ("skills: [{name: A, aliases: {b: c}}]", "must be a list of strings"),
        ("- just a list", "expected a mapping with a 'skills:' list"),
        ("skills: [unclosed", "is not valid YAML"),
    ],
)
def test_a_bad_catalog_file_is_refused_with_a_message_naming_the_problem(tmp_path, content: str, message: str):
    path = tmp_path / "skills.yaml"
    path.write_text(content)
    with pytest.raises(ConfigurationError) as info:
        SkillsCatalog.load(path)
    assert message in str(info.value)
    assert str(path) in str(info.value)


def test_a_missing_catalog_file_says_how_to_fix_it(tmp_path):
    with pytest.raises(ConfigurationError, match=SKILLS_FILE_VARIABLE):
        SkillsCatalog.load(tmp_path / "nope.yaml")
