"""The course's own tools, importable as one package (`from tools import course`) by the tests and by each other.

Run them from the repository's root: `python tools/course.py check`, `python -m tools.website`. pytest finds the
package through `pythonpath = ["."]` in pyproject.toml.
"""
