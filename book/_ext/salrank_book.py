"""Small fixes to the book's HTML, loaded through ``sphinx.local_extensions`` in _config.yml.

* sphinx-thebe registers its inline configuration script once per read phase; when Jupyter
  Book runs that phase twice the page declares ``const THEBE_JS_URL`` twice, a JavaScript
  error in every page's console. Identical scripts are emitted once.
"""

from __future__ import annotations


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
    app.connect("html-page-context", _dedupe_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
