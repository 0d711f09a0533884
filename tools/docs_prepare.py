"""Turn nbdev's processed notebooks (`_proc/`, made for Quarto) into a myst-nb source tree for Sphinx.

What changes: the front-matter cell becomes an H1 title and a description; `#| echo: false` becomes
myst-nb's `remove-input` tag; pandoc-style link attributes and source links to the (absent) online
repository go; absolute links to the docs host become relative; pages are named as nbdev names them
(`output-file: core.html` -> `core.ipynb`); the home page gets the toctree that builds the sidebar; ipywidgets are
rendered from the state the execution saved as static HTML (their plots, text and values, controls disabled), since
the live widget manager would have to come from a CDN and an offline page would show an empty box.
"""
import configparser
import html
import json
import posixpath
import re
import shutil
import sys
from pathlib import Path

import yaml

SOURCE_LINK = re.compile(r"^\[source\]\([^)]*\)\{[^}]*\}\s*$", re.M)
LINK_ATTRS = re.compile(r"(\]\([^)]*\))\{[^}]*\}")


def settings() -> configparser.SectionProxy:
    cfg = configparser.ConfigParser(delimiters=["="])
    cfg.read("settings.ini")
    return cfg["DEFAULT"]


LINK = re.compile(r"\]\(([^)\s]+)\)")
RULE = re.compile(r"^\s*---\s*\n")


def fix_link(target: str, host: str, pages: dict[str, str], folder: str = "") -> str:
    """Docs-host URLs become root-relative; `x.html` and source notebook names (relative to the page's `folder`, or to
    the root with a leading `/`) become the page's notebook."""
    from_host = target.startswith(host)
    if from_host:  # nbdev's links to a symbol: its anchor lives in a rendered output, not a section
        target = "/" + target[len(host):].partition("#")[0]
    path, sep, anchor = target.partition("#")
    if "://" in path or not path.endswith((".html", ".ipynb")):
        return target
    key = path.lstrip("/") if path.startswith("/") else posixpath.normpath(posixpath.join(folder, path))
    if key in pages:
        page = pages[key]
        path = "/" + page if path.startswith("/") else posixpath.relpath(page, folder or ".")
    else:
        path = path.removesuffix(".html") + ".ipynb"
    return path + sep + anchor


def fix_text(text: str, host: str, pages: dict[str, str], folder: str = "") -> str:
    text = RULE.sub("", SOURCE_LINK.sub("", text), count=1)
    text = LINK_ATTRS.sub(r"\1", text)
    return LINK.sub(lambda m: f"]({fix_link(m.group(1), host, pages, folder)})", text)


def front_matter_cell(cell: dict) -> dict:
    "The markdown title cell for nbdev's raw front matter."
    meta = yaml.safe_load("".join(cell["source"]).strip().strip("-")) or {}
    title = str(meta.get("title", "")).lstrip("# ").strip()
    text = f"# {title}\n\n> {meta['description']}" if meta.get("description") else f"# {title}"
    return {"cell_type": "markdown", "metadata": {}, "source": text}


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
BOXES = {"VBoxModel": "column", "BoxModel": "column", "AccordionModel": "column", "TabModel": "column",
         "GridBoxModel": "row wrap", "HBoxModel": "row"}


def static_output(output: dict) -> str:
    "One saved output (of an Output widget) as HTML."
    data = output.get("data", {})
    if "image/png" in data:
        return f'<img src="data:image/png;base64,{"".join(data["image/png"]).strip()}" alt="a plot">'
    if "text/html" in data:
        return "".join(data["text/html"])
    text = "".join(output.get("text", "")) or "".join(data.get("text/plain", ""))
    return f"<pre>{html.escape(text)}</pre>" if text else ""


def static_widget(model_id: str, state: dict) -> str:
    "A widget and its children, from the saved widget state, as static HTML (what it showed when it was saved)."
    model = state.get(model_id)
    if model is None:
        return ""
    name, st = model["model_name"], model["state"]
    label = html.escape(str(st.get("description", "")))
    if name in BOXES:
        children = "".join(static_widget(c.removeprefix("IPY_MODEL_"), state) for c in st.get("children", []))
        return f'<div style="display:flex;flex-flow:{BOXES[name]};gap:4px">{children}</div>'
    if name == "OutputModel":
        return "".join(static_output(o) for o in st.get("outputs", []))
    if name in ("HTMLModel", "HTMLMathModel"):
        return str(st.get("value", ""))
    if name == "LabelModel":
        return f"<span>{html.escape(str(st.get('value', '')))}</span>"
    if name in ("ButtonModel", "ToggleButtonModel"):
        return f"<button disabled>{label}</button>"
    if "_options_labels" in st:
        chosen = st.get("index")
        chosen = [chosen] if isinstance(chosen, int) else chosen or []
        value = ", ".join(html.escape(str(st["_options_labels"][i])) for i in chosen)
        return f"<label>{label} <select disabled><option>{value}</option></select></label>"
    if "value" in st:
        return f'<label>{label} <input disabled value="{html.escape(str(st["value"]))}"></label>'
    return ""


def static_widgets(nb: dict) -> None:
    "Replace every widget view in `nb` by static HTML made from the saved widget state; drop that state."
    saved = nb.get("metadata", {}).pop("widgets", {}).get("application/vnd.jupyter.widget-state+json", {})
    state = saved.get("state", {})
    for cell in nb["cells"]:
        for output in cell.get("outputs", []):
            view = output.get("data", {}).pop(WIDGET_VIEW, None)
            if view is not None:
                shown = static_widget(view["model_id"], state)
                if shown:
                    output["data"]["text/html"] = (f'<div class="widget-static" title="the widget as it was saved: '
                                                   f'run the notebook to use it">{shown}</div>')


def prepare(nb: dict, host: str, pages: dict[str, str], folder: str = "") -> dict:
    "`nb` (a page in `folder`) with nbdev's Quarto conventions turned into myst-nb ones."
    static_widgets(nb)
    cells = []
    for cell in nb["cells"]:
        if cell["cell_type"] == "raw" and "".join(cell["source"]).startswith("---"):
            cell = front_matter_cell(cell)
        source = "".join(cell["source"])
        if "WARNING: THIS FILE WAS AUTOGENERATED" in source:
            continue
        cell.pop("has_sd", None)
        cell.setdefault("id", f"cell{len(cells)}")
        if cell["cell_type"] == "code":
            if re.search(r"^#\|\s*echo:\s*false", source, re.M):
                cell["metadata"]["tags"] = sorted({*cell["metadata"].get("tags", []), "remove-input"})
            source = "\n".join(l for l in source.splitlines() if not l.startswith("#|"))
            for output in cell.get("outputs", []):
                output.get("metadata", {}).pop("has_sd", None)
                data = output.get("data", {})
                if "text/markdown" in data:
                    data["text/markdown"] = fix_text("".join(data["text/markdown"]), host, pages, folder)
        else:
            source = fix_text(source, host, pages, folder)
        cell["source"] = source
        cells.append(cell)
    nb["cells"] = cells
    return nb


def page_name(rel: Path, nb: dict) -> str:
    "The page nbdev would make of notebook `rel` (its front matter's `output-file`), without suffix."
    first = nb["cells"][0] if nb["cells"] else {}
    if first.get("cell_type") == "raw":
        output_file = (yaml.safe_load("".join(first["source"]).strip().strip("-")) or {}).get("output-file")
        if output_file:
            return (rel.parent / Path(output_file).stem).as_posix()
    return rel.with_suffix("").as_posix()


def toctree(caption: str, pages: list[str]) -> str:
    return f"```{{toctree}}\n:caption: {caption}\n:maxdepth: 1\n\n" + "\n".join(pages) + "\n```"


def main(src: str, dst: str) -> None:
    src, dst = Path(src), Path(dst)
    shutil.rmtree(dst, ignore_errors=True)
    s = settings()
    host = s["doc_host"].rstrip("/") + "/" + s["doc_baseurl"].strip("/") + "/"
    notebooks = {path: json.loads(path.read_text()) for path in sorted(src.rglob("*.ipynb"))}
    pages = {path.relative_to(src).as_posix(): page_name(path.relative_to(src), nb) + ".ipynb"
             for path, nb in notebooks.items()}
    course = course_sections(notebooks.get(src / "lessons" / "index.ipynb"), pages)   # before its links are rewritten
    library, lessons = [], []
    for path, nb in notebooks.items():
        nb = prepare(nb, host, pages, path.relative_to(src).parent.as_posix().removeprefix("."))
        rel = Path(pages[path.relative_to(src).as_posix()]).with_suffix("")
        if rel.as_posix() != "index":
            (lessons if rel.parts[0] == "lessons" else library).append(rel.as_posix())
        out = dst / rel.with_suffix(".ipynb")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(nb, indent=1))
    index = dst / "index.ipynb"
    nb = json.loads(index.read_text())
    listed = {page for _, section in course for page in section}
    rest = [page for page in lessons if page not in listed and page != "lessons/index"]
    for caption, pages_ in [*course, ("More lessons", rest), ("Library", library)]:
        if pages_:
            nb["cells"].append({"cell_type": "markdown", "id": f"toc-{len(nb['cells'])}", "metadata": {},
                                "source": toctree(caption, pages_)})
    index.write_text(json.dumps(nb, indent=1))


def course_sections(course_map: dict | None, pages: dict[str, str]) -> list[tuple[str, list[str]]]:
    """The sidebar by course section, from the course map (`nbs/lessons/index.ipynb`): each `## N. Section` heading with
    the lessons it lists (not those it points into, marked "(in …)"), each under the first that lists it; the map
    itself first."""
    if course_map is None:
        return []
    text = "\n".join("".join(c["source"]) for c in course_map["cells"] if c["cell_type"] == "markdown")
    sections, seen = [("Course", ["lessons/index"])], set()
    for heading, body in re.findall(r"^## (.+?)\n(.*?)(?=^## |\Z)", text, flags=re.M | re.S):
        rows = [row for row in body.splitlines() if "| (in " not in row]      # "(in training)": a part of a lesson
        names = re.findall(r"\]\(([\w.-]+\.ipynb)\)", "\n".join(rows))
        linked = [pages[f"lessons/{name}"].removesuffix(".ipynb") for name in names if f"lessons/{name}" in pages]
        fresh = [page for page in dict.fromkeys(linked) if page not in seen]
        seen.update(fresh)
        if fresh:
            sections.append((heading.strip(), fresh))
    return sections


if __name__ == "__main__":
    main(*sys.argv[1:3])
