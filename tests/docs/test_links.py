"""The README and docs/ link only inside the repository, and every link resolves.

A newcomer who clones the repository has nothing beside it: a link to a sibling folder or a
page elsewhere would be a dead end (or a page that says something else by then)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.services.base import REPO

pytestmark = pytest.mark.unit

LINK = re.compile(r"\]\(([^)\s]+)\)")
PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]


def links(page: Path) -> list[str]:
    """The link targets of a markdown page, code blocks and code spans left out."""
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.DOTALL)
    text = re.sub(r"`[^`\n]*`", "", text)
    return LINK.findall(text)


def bad_links(page: Path, root: Path) -> tuple[list[str], list[str]]:
    """Links that leave the repository (a URL, or a path above ``root``) and dead ones."""
    outside, dead = [], []
    for target in links(page):
        path = target.split("#", 1)[0]
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):
            outside.append(target)
        elif path:
            resolved = (page.parent / path).resolve()
            if not resolved.is_relative_to(root):
                outside.append(target)
            elif not resolved.exists():
                dead.append(target)
    return outside, dead


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_link_is_a_file_of_the_repository(page: Path) -> None:
    outside, dead = bad_links(page, REPO)
    assert outside == [], f"{page.relative_to(REPO)} links outside the repository"
    assert dead == [], f"{page.relative_to(REPO)} links to files the repository lacks"


def test_the_check_catches_a_link_outside_and_a_dead_one(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "docs").mkdir(parents=True)
    page = repo / "docs" / "page.md"
    page.write_text(
        "[a](../../shared/DESIGN.md) [b](https://example.org) [c](page.md#x) [d](gone.md)\n"
        "`[e](in-code.md)`\n```\n[f](in-block.md)\n```\n"
    )
    assert bad_links(page, repo) == (["../../shared/DESIGN.md", "https://example.org"], ["gone.md"])
