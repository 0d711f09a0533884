"Sphinx settings for the offline docs site (see tools/docs.sh)."
import configparser
import os
from pathlib import Path

_cfg = configparser.ConfigParser(delimiters=["="])
_cfg.read(Path(__file__).resolve().parents[2] / "settings.ini")
_s = _cfg["DEFAULT"]

project = _s["title"]
author = _s["author"]
copyright = _s["copyright"]
release = _s["version"]
extensions = ["myst_nb"]
nb_execution_mode = "off"           # tools/docs.sh executed the notebooks already
nb_render_markdown_format = "myst"  # markdown outputs (show_doc, tables) with MyST's extensions, not bare CommonMark
myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 3            # show_doc headings are link targets, as in nbdev's Quarto site
html_theme = "furo"
html_title = f"{project} {release}"
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
suppress_warnings = ["mystnb.unknown_mime_type", "myst.header"]
_static = os.environ.get("WORKBENCH_DOCS_STATIC", "")
if _static and (Path(_static) / "mathjax" / "tex-chtml.js").exists():  # vendored by tools/docs.sh
    html_static_path = [_static]
    mathjax_path = "mathjax/tex-chtml.js"
