"""The offline docs site: built by tools/docs.sh (what `make docs` runs) and opened in headless Chromium."""
import os
import re
from pathlib import Path

import pytest

from conftest import ROOT, chromium_dom, run, visible_text

LIBRARY = sorted(p for p in (ROOT / "nbs").glob("[0-9]*.ipynb"))


def page_of(notebook: Path) -> str:
    "The page nbdev makes of a notebook: its name without the ordering prefix (`01a_clean` -> `clean.html`)."
    return re.sub(r"^\d+[a-z]?_", "", notebook.stem) + ".html"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site") / "_docs"
    # Executing every notebook again would double the suite's time (nbdev_test already runs them all): the site is
    # built from one executed lesson, which is what the output and math checks need; the rest render unexecuted.
    run(["bash", "tools/docs.sh", str(out)], timeout=600, env={**os.environ, "DOCS_EXECUTE": "00_tour.ipynb"})
    return out


def test_every_module_has_a_page_listed_in_the_sidebar(site):
    index = chromium_dom((site / "index.html").as_uri())
    sidebar = index[index.index('class="sidebar-tree"'):]
    for notebook in LIBRARY:
        page = page_of(notebook)
        assert (site / page).is_file(), f"no page {page} for {notebook.name}"
        assert f'href="{page}"' in sidebar, f"{page} missing from the sidebar"
    assert 'href="lessons/tour.html"' in sidebar


def test_core_page_shows_a_signature_and_its_docstring(site):
    text = visible_text(chromium_dom((site / "core.html").as_uri()))
    assert "def seed_everything( seed:int, # the one seed for Python, NumPy, torch and JAX" in text
    assert "Seed Python, NumPy and torch (CPU and every GPU); return a JAX PRNG key" in text
    assert "def content_hash(" in text and "Hex SHA-256 of a file" in text
    assert "[source]" not in text and "{target=" not in text


def test_search_finds_the_core_page_offline(site):
    dom = chromium_dom((site / "search.html").as_uri() + "?q=seed_everything", wait_ms=10000)
    results = dom[dom.index('id="search-results"'):]
    assert 'href="core.html' in results, visible_text(results)[:500]


def test_executed_outputs_are_on_the_pages(site):
    tour = (site / "lessons" / "tour.html").read_text()
    assert "<img" in tour and "test accuracy" in tour


def test_math_renders_offline_with_vendored_mathjax(site):
    dom = chromium_dom((site / "lessons" / "tour.html").as_uri(), wait_ms=10000)
    assert "_static/mathjax/tex-chtml.js" in dom, "MathJax is not vendored: the page would need a CDN"
    assert "<mjx-container" in dom, "MathJax did not typeset the tour's formulas"
