"""The book's local Sphinx extension (loaded through ``sphinx.local_extensions`` in _config.yml).

* **Offline math.** MathJax 3 is served from the build (``_static/mathjax/``), copied from the
  ``sphinx-mathjax-offline`` package, and ``mathjax_path`` points at it: no CDN at view time.
* **The live GT explorer.** Pages that contain :data:`salrank.viz.explorer.EXPLORER_CLASS` load
  ``_static/salrank-vega.js`` (Vega + Vega-Lite + vega-embed, bundled offline by
  ``vl-convert-python`` once per Altair/vl-convert version and kept next to the doctrees).
* **Readable pages.** ``book/_static/salrank.css`` (wide tables scroll) on every page.
* **Fresh executions.** :func:`book_cache.fingerprint` (salrank's sources and embedded sample,
  the benchmark records, the versions of the packages that compute the results, and the resolved
  settings) is the config value ``salrank_fingerprint`` (when it changes, Sphinx
  re-reads every page) and, when ``execute_notebooks`` is ``cache``, names the jupyter-cache
  folder used (``_build/.jupyter_cache/<fingerprint>``): a page is reused only when neither the
  notebook nor anything it depends on changed.
* **Results at a glance.** The ``salrank-headlines`` directive becomes a table of the
  :func:`salrank.viz.report.headline` outputs of the executed pages (read from
  ``_build/jupyter_execute`` or, when the book is built from executed notebooks, from the
  notebooks themselves), in the table of contents' order; the page is rewritten on every build.
* sphinx-thebe registers its inline configuration script once per read phase; when Jupyter
  Book runs that phase twice the page declares ``const THEBE_JS_URL`` twice, a JavaScript
  error in every page's console. Identical scripts are emitted once.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from docutils import nodes
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

logger = logging.getLogger(__name__)

MATHJAX_ENTRY = "mathjax/tex-chtml.js"
CSS_FILE = "salrank.css"


def _mathjax_static_dir() -> Path | None:
    """The folder holding ``mathjax/`` in the ``sphinx-mathjax-offline`` package (its import name
    has hyphens, so it is located, not imported)."""
    spec = importlib.util.find_spec("sphinx-mathjax-offline")
    if spec is None or not spec.submodule_search_locations:
        return None
    static = Path(next(iter(spec.submodule_search_locations))) / "static"
    return static if (static / MATHJAX_ENTRY).is_file() else None


def _vega_static_dir(app) -> Path:
    """A folder next to the doctrees holding ``salrank-vega.js``, rebuilt when the versions of
    Altair / vl-convert change (the bundle takes a few seconds to make)."""
    import altair
    import vl_convert

    from salrank.viz.explorer import VEGA_BUNDLE, vega_bundle

    folder = Path(app.doctreedir).parent / "salrank_static" / "files"  # copied into _static
    folder.mkdir(parents=True, exist_ok=True)
    stamp = folder.parent / "versions.txt"
    versions = f"altair {altair.__version__}, vl-convert {vl_convert.__version__}, scoped\n"
    bundle = folder / VEGA_BUNDLE
    if not bundle.is_file() or not stamp.is_file() or stamp.read_text() != versions:
        bundle.write_text(vega_bundle(), encoding="utf-8")
        stamp.write_text(versions)
    return folder


def _configure(app, config) -> None:
    static = list(config.html_static_path)
    mathjax = _mathjax_static_dir()
    if mathjax is None:
        logger.warning("sphinx-mathjax-offline is not installed: equations load MathJax from a CDN")
    else:
        static.append(str(mathjax))
        config.mathjax_path = MATHJAX_ENTRY
    static.append(str(_vega_static_dir(app)))
    config.html_static_path = static


def _fingerprint(app, config) -> None:
    """Record the fingerprint of what the pages depend on; with ``nb_execution_mode = "cache"``,
    use the jupyter-cache of that fingerprint (see :mod:`book_cache`)."""
    from book_cache import cache_folder, fingerprint

    config.salrank_fingerprint = current = fingerprint()
    if config.nb_execution_mode != "cache":
        return
    base = config.nb_execution_cache_path or str(Path(app.outdir).parent / ".jupyter_cache")
    folder = cache_folder(base, current)
    config.nb_execution_cache_path = str(folder)
    logger.info(f"salrank: fingerprint {current[:16]} (salrank's files, benchmarks, package versions, settings), cache {folder}")


def _page_assets(app, pagename, templatename, context, doctree) -> None:
    from salrank.viz.explorer import EXPLORER_CLASS, VEGA_BUNDLE

    if EXPLORER_CLASS in (context.get("body") or ""):
        app.add_js_file(VEGA_BUNDLE)


class headlines_placeholder(nodes.General, nodes.Element):
    """Replaced by the headline table once every page has been read."""


class HeadlinesDirective(SphinxDirective):
    has_content = False

    def run(self):
        self.env.salrank_headline_docs = getattr(self.env, "salrank_headline_docs", set()) | {self.env.docname}
        return [headlines_placeholder("")]


def _headline_pages_outdated(app, env, added, changed, removed):
    """The results page is re-read (and so rewritten) on every build: its table depends on the
    other pages' outputs."""
    return sorted(getattr(env, "salrank_headline_docs", set()) - set(removed))


def _toc_order(env) -> list[str]:
    order, seen = [], set()

    def walk(doc):
        for child in env.toctree_includes.get(doc, []):
            if child not in seen:
                seen.add(child)
                order.append(child)
                walk(child)

    walk(env.config.root_doc)
    return order


def _headline_records(app, docname: str) -> list[dict]:
    from salrank.viz.report import HEADLINE_MIME

    executed = Path(app.outdir).parent / "jupyter_execute" / f"{docname}.ipynb"
    source = Path(app.env.doc2path(docname))
    records = []
    for path in (executed, source):
        if path.suffix != ".ipynb" or not path.is_file():
            continue
        notebook = json.loads(path.read_text(encoding="utf-8"))
        for cell in notebook.get("cells", []):
            for output in cell.get("outputs", []):
                record = output.get("data", {}).get(HEADLINE_MIME)
                if isinstance(record, dict):
                    records.append(record)
        if records:
            break
    return records


def _fill_headlines(app, doctree, docname) -> None:
    placeholders = list(doctree.findall(headlines_placeholder))
    if not placeholders:
        return
    columns = ["page", "quantity", "ours", "paper", "profile", "protocol"]
    headers = ["Page", "Quantity", "Ours", "Paper", "Profile", "Protocol"]
    rows = []
    for other in _toc_order(app.env):
        for record in _headline_records(app, other):
            rows.append((other, record))
    if not rows:
        content = nodes.paragraph(text="No page has recorded a headline yet (build the book with its notebooks executed).")
    else:
        table = nodes.table(classes=["salrank-headlines"])
        group = nodes.tgroup(cols=len(columns))
        table += group
        for _ in columns:
            group += nodes.colspec(colwidth=1)
        head = nodes.thead()
        group += head
        row = nodes.row()
        for title in headers:
            row += nodes.entry("", nodes.paragraph(text=title))
        head += row
        body = nodes.tbody()
        group += body
        for other, record in rows:
            row = nodes.row()
            for column in columns:
                value = record.get(column)
                text = "-" if value in (None, "", "nan") else str(value)
                para = nodes.paragraph()
                if column == "page":
                    uri = app.builder.get_relative_uri(docname, other)
                    para += nodes.reference("", text, refuri=uri, internal=True)
                else:
                    para += nodes.Text(text)
                row += nodes.entry("", para, classes=["ours"] if column == "ours" else [])
            body += row
        content = table
    for placeholder in placeholders:
        placeholder.replace_self(content.deepcopy())


def _dedupe_scripts(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for script in scripts:
        attributes = getattr(script, "attributes", {}) or {}
        # an inline script's filename is None or "" depending on how it was registered
        key = (getattr(script, "filename", str(script)) or None, tuple(sorted(attributes.items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    scripts[:] = unique


def setup(app):
    app.add_config_value("salrank_fingerprint", "", "env")
    app.add_node(headlines_placeholder)
    app.add_directive("salrank-headlines", HeadlinesDirective)
    app.connect("env-get-outdated", _headline_pages_outdated)
    app.connect("doctree-resolved", _fill_headlines)
    app.connect("config-inited", _configure, priority=900)
    app.connect("config-inited", _fingerprint, priority=900)
    app.add_css_file(CSS_FILE)
    app.connect("html-page-context", _page_assets, priority=500)
    app.connect("html-page-context", _dedupe_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
