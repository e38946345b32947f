"""The owner's skills catalog: canonical skill names and the aliases recruiters type.

Below the parts that use it (insights and reporting, the jobs service and the
sample assistant): it knows nothing of stores or queues.
"""

from .catalog import (
    DEFAULT_CATALOG_PATH,
    QUESTION_STOPWORDS,
    SKILLS_FILE_VARIABLE,
    Profile,
    Skill,
    SkillsCatalog,
    catalog_path,
    load_catalog,
)

__all__ = [
    "DEFAULT_CATALOG_PATH",
    "QUESTION_STOPWORDS",
    "SKILLS_FILE_VARIABLE",
    "Profile",
    "Skill",
    "SkillsCatalog",
    "catalog_path",
    "load_catalog",
]
