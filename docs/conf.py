"""Sphinx configuration of the fastnn documentation.

Build: ``sphinx-build -W --keep-going -b html docs docs/_build/html``; doctests of the
guide and the docstrings: ``sphinx-build -W -b doctest docs docs/_build/doctest``.
The site builds and reads offline: no extension loads anything from the network
(no intersphinx, no MathJax), and the theme's CSS, JS and fonts ship with it.
"""

import fastnn

project = "fastnn"
author = "the fastnn developers"
copyright = "the fastnn developers"
version = release = fastnn.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.doctest",
    "numpydoc",
]

templates_path = ["_templates"]
exclude_patterns = ["_build"]
default_role = "literal"  # `x` in the guide reads as code, as in the docstrings

# -- API reference -------------------------------------------------------------------
autosummary_generate = True
autosummary_imported_members = False
autodoc_typehints = "none"  # the numpydoc sections give the types, with shapes
autodoc_member_order = "bysource"
numpydoc_show_class_members = False  # the class template lists the members
numpydoc_xref_param_type = False

# -- doctests ------------------------------------------------------------------------
doctest_global_setup = """
import numpy as np
import fastnn
np.set_printoptions(precision=4, suppress=True)
"""

# -- HTML ----------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"fastnn {release}"
html_theme_options = {
    "navbar_end": ["theme-switcher", "navbar-icon-links"],
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version", "theme-version"],
}
html_show_sourcelink = False
html_math_renderer = None  # no MathJax from a CDN; the docs write formulas as code
