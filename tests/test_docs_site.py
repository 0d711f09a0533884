"""The offline docs site: built by tools/docs.sh (what `make docs` runs) and opened in headless Chromium."""
import importlib
import inspect
import json
import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import unquote

import pytest

from conftest import ROOT, chromium_dom, run, visible_text

LIBRARY = sorted(p for p in (ROOT / "nbs").glob("[0-9]*.ipynb"))


def page_of(notebook: Path) -> str:
    "The page nbdev makes of a notebook: its name without the ordering prefix (`01a_clean` -> `clean.html`)."
    return re.sub(r"^\d+[a-z]?_", "", notebook.stem) + ".html"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site") / "_docs"
    # Executing every notebook again would double the suite's time (the notebook and lesson tests run them all): the
    # site is built from one executed lesson, which is what the output and math checks need; the rest render
    # unexecuted.
    run(["bash", "tools/docs.sh", str(out)], timeout=900, env={**os.environ, "DOCS_EXECUTE": "00_tour.ipynb"})
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


PAGE_LINK = re.compile(r'(?:href|src)="([^"]+)"')


def broken_targets(page: Path, dom: str) -> list[str]:
    "The links and images of a page's DOM that point at a file of the site that is not there."
    broken = []
    for target in PAGE_LINK.findall(dom):
        if target.startswith(("http:", "https:", "mailto:", "data:", "#", "javascript:", "about:")):
            continue
        path = unquote(target.removeprefix("file://").split("#")[0].split("?")[0])
        if path and not (Path(path) if target.startswith("file://") else page.parent / path).exists():
            broken.append(target)
    return broken


def test_every_page_opens_in_chromium_without_a_broken_link_a_missing_image_or_an_error(site):
    "Every page rendered headless: links and images resolve, and no output shows a traceback unless it is marked."
    pages = sorted(site.rglob("*.html"))
    with ThreadPoolExecutor(2) as pool:
        doms = dict(zip(pages, pool.map(lambda page: chromium_dom(page.as_uri()), pages)))
    problems = [f"{page.relative_to(site)}: broken {target}" for page, dom in doms.items()
                for target in broken_targets(page, dom)]
    problems += [f"{page.relative_to(site)}: a traceback in an output" for page, dom in doms.items()
                 if "Traceback (most recent call last)" in dom and "tag_raises-exception" not in dom]
    assert len(pages) > 50 and not problems, "\n".join(problems[:20])
    assert "<img" in doms[site / "lessons" / "tour.html"]                # the executed page's figure is on it


def test_search_indexes_the_main_names_of_every_module(site):
    """Each library page is found by the first classes and functions of its module's `__all__` (as Sphinx's English
    search stems them)."""
    from sphinx.search.en import SearchEnglish
    index = json.loads((site / "searchindex.js").read_text().removeprefix("Search.setIndex(").removesuffix(")"))
    stem, missing = SearchEnglish({}).stem, []
    for notebook in LIBRARY:
        module = importlib.import_module(f"workbench.{page_of(notebook).removesuffix('.html')}")
        page = index["docnames"].index(page_of(notebook).removesuffix(".html"))
        main = [name for name in getattr(module, "__all__", [])
                if inspect.isclass(getattr(module, name)) or inspect.isfunction(getattr(module, name))][:3]
        for name in main:
            found = [index[kind].get(stem(name.lower()), []) for kind in ("terms", "titleterms")]
            if not any(page in (f if isinstance(f, list) else [f]) for f in found):
                missing.append(f"{name} ({page_of(notebook)})")
    assert not missing, f"the search does not find: {', '.join(missing)}"


WIDGETS = '''import ipywidgets as w, matplotlib.pyplot as plt
out = w.Output()
with out:
    plt.plot([1, 2, 3]); plt.show()
w.VBox([w.HTML("<b>drift report</b>"), w.IntSlider(3, description="window"), w.Dropdown(options=["a", "b"],
        value="b", description="slice"), w.Button(description="retrain"), out])'''


def test_widgets_render_from_their_saved_state_not_as_an_empty_box(tmp_path):
    "A widget executed as the docs build executes it becomes static HTML: its plot, text and values, controls disabled."
    import sys

    import nbformat
    sys.path.insert(0, str(ROOT / "tools"))
    from docs_prepare import prepare
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(WIDGETS)],
                                  metadata={"kernelspec": {"name": "workbench", "display_name": "workbench",
                                                           "language": "python"}})
    nbformat.write(nb, tmp_path / "w.ipynb")
    run([ROOT / ".venv" / "bin" / "jupyter", "nbconvert", "--to", "notebook", "--execute", "--inplace",
         "--log-level=ERROR", tmp_path / "w.ipynb"],
        env={**os.environ, "MPLBACKEND": "module://matplotlib_inline.backend_inline"}, timeout=300)
    executed = json.loads((tmp_path / "w.ipynb").read_text())
    assert "application/vnd.jupyter.widget-view+json" in executed["cells"][0]["outputs"][0]["data"]
    page = prepare(executed, "https://example.org/", {}, "")
    data = page["cells"][0]["outputs"][0]["data"]
    assert "application/vnd.jupyter.widget-view+json" not in data and "widgets" not in page["metadata"]
    shown = data["text/html"]
    assert '<img src="data:image/png;base64,' in shown and "<b>drift report</b>" in shown
    assert 'window <input disabled value="3">' in shown and "slice <select disabled><option>b</option>" in shown
    assert "<button disabled>retrain</button>" in shown
