"""The course as a website (`make site`, tools/website.py): built from the committed notebooks, nothing run.

The fast tests hold the staging to its promises (the home page is the README with the notebook table from the
road and the reference table from its generator; solutions stay collapsed; each explorer says how to run it
live; the committed notebooks are never changed). The slow ones build the whole site with warnings as errors
and read the HTML: one page per notebook in course order, every picture there, no broken internal link, every
notebook searchable. The browser one opens the built site in Chromium, searches it, and leaves screenshots in
build/site-screenshots/ for a person to look at.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import threading
from pathlib import Path
from urllib.parse import unquote, urlsplit

import nbformat
import pytest
from playwright import sync_api  # the dev extra: `make .venv` installs it

from helpers.results import reference_table, references
from tools import course, website

ROOT = Path(__file__).resolve().parents[1]

PAGES = website.pages()
REPO = course.repository()
README = (ROOT / "README.md").read_text(encoding="utf-8")
SCREENSHOTS = ROOT / "build" / "site-screenshots"


def _read(page: website.Page) -> nbformat.NotebookNode:
    return nbformat.read(page.path, as_version=4)


def _solutions(nb) -> list:
    return [c for c in nb.cells if c.metadata.get("jupyter", {}).get("source_hidden")]


# ---------------------------------------------------------------------------------------------- staging (fast)
def test_the_pages_are_the_road_in_order():
    assert [p.stem for p in PAGES] == [e["stem"] for e in course.road()]
    assert {p.path.name for p in PAGES} == {p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")}
    for page in PAGES:
        assert page.title.startswith(f"{page.number} · "), page.title


def test_the_home_page_is_the_readme_with_generated_tables():
    home = website.home_page(README, PAGES, REPO, reference_table())
    # The README's words are there: who it is for, the two commands, the data and its licences.
    for words in ("**Who it is for:**", "make lab", "make test", "## Data", "CC BY-SA 3.0", "MIT"):
        assert words in home, words
    # The notebook table follows the road, with each notebook's page, what it leaves with, and its links.
    rows = [line for line in home.splitlines() if re.match(r"^\| \d\d \|", line)]
    assert [r.split("|")[1].strip() for r in rows] == [p.number for p in PAGES]
    what = website.leaves_with(README)
    for row, page in zip(rows, PAGES):
        assert f"]({page.rel})" in row and what[page.rel] in row, row
        for url in course.open_links(page.rel, REPO).values():
            assert f"({url})" in row
    toctree = re.search(r"```\{toctree\}\n(.*?)```", home, re.S).group(1)
    assert re.findall(r"^notebooks/(\S+)$", toctree, re.M) == [p.stem for p in PAGES]
    # The reference table comes from its generator, the one that writes the README's.
    assert reference_table() in home
    # Links to repository files point at GitHub; no relative link is left that is not a notebook page.
    assert f"(https://github.com/{REPO}/blob/main/CONTRIBUTING.md)" in home
    for target in re.findall(r"\]\(([^)\s]+)\)", home):
        assert re.match(r"https?://|#|notebooks/[^/]+\.ipynb$", target), target


def test_the_home_page_takes_the_reference_table_from_the_generator_not_from_the_readme():
    stale = README.replace("| `start/train_images` |", "| `start/a_stale_row` |")
    assert stale != README
    home = website.home_page(stale, PAGES, REPO, reference_table())
    assert "a_stale_row" not in home and "`start/train_images`" in home


def test_a_notebook_missing_from_the_readme_table_is_named():
    page = PAGES[-1]
    without = "\n".join(line for line in README.splitlines() if f"]({page.rel})" not in line)
    with pytest.raises(website.SiteError, match=re.escape(page.rel)):
        website.home_page(without, PAGES, REPO, reference_table())


def test_a_notebook_off_the_road_or_a_road_entry_without_a_notebook_is_named(tmp_path):
    (tmp_path / "tools").mkdir()
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "tools" / "course.toml").write_text(
        '[[notebook]]\nnumber = "00"\nstem = "00_start_here"\nslug = "start"\nbudget_s = 60\n', encoding="utf-8")
    with pytest.raises(website.SiteError, match="00_start_here.*does not exist"):
        website.pages(tmp_path)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# 00 · Start here")])
    nbformat.write(nb, tmp_path / "notebooks" / "00_start_here.ipynb")
    assert [p.title for p in website.pages(tmp_path)] == ["00 · Start here"]
    nbformat.write(nb, tmp_path / "notebooks" / "01_stray.ipynb")
    with pytest.raises(website.SiteError, match="01_stray.ipynb.*tools/course.toml"):
        website.pages(tmp_path)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.slug)
def test_a_staged_page_collapses_solutions_and_links_out_and_leaves_the_notebook_alone(page):
    nb = _read(page)
    before = nbformat.writes(nb)
    staged = website.stage_notebook(nb, page, REPO)
    assert nbformat.writes(nb) == before, "staging must not change the notebook it copies"
    links = staged.cells[1].source
    for url in course.open_links(page.rel, REPO).values():
        assert url in links
    assert f"</{website.ORIGINALS}/{page.stem}.ipynb>" in links
    solutions = _solutions(staged)
    assert len(solutions) == len(_solutions(nb)) > 0
    for cell in solutions:
        assert "hide-input" in cell.metadata["tags"]
        assert cell.metadata["mystnb"]["code_prompt_show"] == website.SOLUTION_PROMPT
    explorers = [i for i, c in enumerate(staged.cells) if website.explorer_summary(c)]
    for i in explorers:
        note = staged.cells[i + 1]
        assert note.cell_type == "markdown" and "Live in Jupyter only" in note.source and "make lab" in note.source
    assert len(staged.cells) == len(nb.cells) + 1 + len(explorers)


def test_every_explorer_of_the_course_is_recognised():
    found = {p.number: [website.explorer_summary(c)[0] for c in _read(p).cells if website.explorer_summary(c)]
             for p in PAGES}
    assert found["03"] == ["quadratic_lr_explorer"]
    assert found["04"] == ["lr_explorer", "batch_size_explorer"]
    assert found["07"] == ["graph_explorer"]
    assert found["15"] == ["temperature_explorer"]
    # A cell that imports from helpers.widgets and shows a picture is an explorer the site must recognise.
    for page in PAGES:
        for cell in _read(page).cells:
            shows_picture = any("image/png" in o.get("data", {}) for o in cell.get("outputs", []))
            if cell.cell_type == "code" and "helpers.widgets import" in cell.source and shows_picture:
                assert website.explorer_summary(cell), f"{page.stem}: an explorer's output is not recognised"


def test_markdown_escaping_keeps_an_explorer_summary_literal():
    assert website._escape_md("lr *1* · $x$ [a](b) <c>") == r"lr \*1\* · \$x\$ \[a\]\(b\) \<c\>"


def test_staged_files_are_written_only_when_they_change(tmp_path):
    path = tmp_path / "a" / "page.md"
    assert website.write_if_changed(path, b"one")
    os.utime(path, (1, 1))
    assert not website.write_if_changed(path, b"one") and path.stat().st_mtime == 1
    assert website.write_if_changed(path, b"two") and path.read_bytes() == b"two"
    assert [p.name for p in path.parent.iterdir()] == ["page.md"], "no temporary file is left behind"


# ---------------------------------------------------------------------------------------------- the built site (slow)
@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The whole site, built from scratch with warnings as errors (a warning fails the build)."""
    pytest.importorskip("sphinx", reason="the site needs the docs extra: `make site` installs it")
    pytest.importorskip("myst_nb", reason="the site needs the docs extra: `make site` installs it")
    return website.build(tmp_path_factory.mktemp("website") / "site", fresh=True)


@functools.lru_cache(maxsize=None)
def _soup(path: Path):
    """The parsed page (parsed once per test session: the pages are large); read it, never change it."""
    from bs4 import BeautifulSoup  # pulled in by the docs extra (pydata-sphinx-theme)

    return BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")


def _page_html(site: Path, page: website.Page) -> Path:
    return site / "notebooks" / f"{page.stem}.html"


@pytest.mark.slow
def test_one_page_per_notebook_in_course_order(site):
    for page in PAGES:
        assert _page_html(site, page).is_file(), page.stem
    nav = [a["href"] for a in _soup(site / "index.html").select("nav.bd-links a.reference.internal")]
    assert [h for h in nav if h.startswith("notebooks/")] == [f"notebooks/{p.stem}.html" for p in PAGES]
    for page, following in zip(PAGES, PAGES[1:]):
        nxt = _soup(_page_html(site, page)).find("link", rel="next")
        assert nxt and nxt["href"] == f"{following.stem}.html", f"after {page.stem} comes {following.stem}"
    title = _soup(_page_html(site, PAGES[0])).find("h1").get_text(" ", strip=True)
    assert PAGES[0].title in title


@pytest.mark.slow
def test_every_picture_of_every_output_is_there(site):
    for page in PAGES:
        pictures = sum("image/png" in o.get("data", {}) for c in _read(page).cells for o in c.get("outputs", []))
        html = _page_html(site, page)
        shown = [img["src"] for img in _soup(html).select(".cell_output img")]
        assert len(shown) == pictures, f"{page.stem}: {pictures} pictures in the notebook, {len(shown)} on its page"
        for src in shown:
            assert (html.parent / unquote(src)).is_file(), f"{page.stem}: missing {src}"


@pytest.mark.slow
def test_no_broken_internal_link(site):
    ids: dict[Path, set[str]] = {}
    broken = []
    # _static/ holds the themes' own template fragments (Jinja source, not pages): only the pages are read.
    for html in sorted(h for h in site.rglob("*.html") if "_static" not in h.relative_to(site).parts):
        soup = _soup(html)
        ids[html] = {tag["id"] for tag in soup.find_all(id=True)}
        for tag in soup.find_all(["a", "link", "img", "script"]):
            url = tag.get("href") or tag.get("src")
            if not url or re.match(r"^[a-z][a-z0-9+.-]*:|^//", url):
                continue
            parts = urlsplit(url)
            target = (html.parent / unquote(parts.path)).resolve() if parts.path else html
            if target.is_dir():
                target = target / "index.html"
            if not target.is_file():
                broken.append(f"{html.relative_to(site)} → {url}")
            elif parts.fragment and target.suffix == ".html":
                if target not in ids:
                    ids[target] = {t["id"] for t in _soup(target).find_all(id=True)}
                if unquote(parts.fragment) not in ids[target]:
                    broken.append(f"{html.relative_to(site)} → {url} (no such anchor)")
    assert not broken, "broken internal links:\n" + "\n".join(broken)


@pytest.mark.slow
def test_each_notebook_page_links_out_keeps_solutions_collapsed_and_explains_its_explorers(site):
    for page in PAGES:
        nb = _read(page)
        soup = _soup(_page_html(site, page))
        hrefs = {a["href"] for a in soup.find_all("a", href=True)}
        assert set(course.open_links(page.rel, REPO).values()) <= hrefs, page.stem
        download = [a["href"] for a in soup.select("a.download") if a["href"].endswith(f"/{page.stem}.ipynb")]
        assert len(download) == 1, f"{page.stem}: no download link"
        offered = (_page_html(site, page).parent / download[0]).read_bytes()
        assert offered == page.path.read_bytes(), "the download is the committed notebook, byte for byte"
        collapsed = soup.select("details.hide.above-input")
        assert len(collapsed) == len(_solutions(nb))
        assert all(d.summary.get_text(strip=True).startswith(website.SOLUTION_PROMPT) for d in collapsed)
        assert not any(d.has_attr("open") for d in collapsed), "solutions start collapsed"
        explorers = sum(bool(website.explorer_summary(c)) for c in nb.cells)
        assert len(soup.find_all(string=re.compile("Live in Jupyter only"))) == explorers, page.stem


@pytest.mark.slow
def test_the_home_page_shows_the_reference_numbers_and_the_notebooks(site):
    soup = _soup(site / "index.html")
    text = soup.get_text(" ")
    for name in references():
        assert name in text, name
    for page in PAGES:
        assert soup.find("a", href=f"notebooks/{page.stem}.html"), page.stem


@pytest.mark.slow
def test_the_search_index_holds_a_word_from_every_notebook(site):
    from sphinx.search.en import SearchEnglish

    raw = (site / "searchindex.js").read_text(encoding="utf-8")
    index = json.loads(raw[raw.index("(") + 1: raw.rindex(")")])
    stem = SearchEnglish({}).stem
    for page in PAGES:
        doc = index["docnames"].index(f"notebooks/{page.stem}")
        # A word from the notebook's last cell (its answers), so the whole page is indexed, not just its top.
        last = [c for c in _read(page).cells if c.cell_type == "markdown"][-1].source
        words = sorted(set(re.findall(r"\b[a-z]{8,}\b", last)))
        assert words, page.stem
        hits = [w for w in words if doc in _docs(index["terms"].get(stem(w)))]
        assert hits, f"{page.stem}: none of {words[:5]} is in the search index"
    backprop = index["docnames"].index("notebooks/" + next(p.stem for p in PAGES if p.slug == "backprop"))
    word = stem("backpropagation")
    assert backprop in _docs(index["terms"].get(word)) | _docs(index["titleterms"].get(word))


def _docs(entry) -> set[int]:
    return set() if entry is None else {entry} if isinstance(entry, int) else set(entry)


# ---------------------------------------------------------------------------------------------- a real browser
@pytest.fixture
def served(site):
    """The built site over HTTP on 127.0.0.1 (a random free port), as a static host serves it."""
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.slow
@pytest.mark.browser
def test_a_reader_opens_the_home_page_a_notebook_and_searches(served):
    from test_browser import CHROMIUM, CHROMIUM_ARGS  # the browser test's Chromium and its launch flags

    if not CHROMIUM.exists():
        pytest.skip("needs Debian's Chromium at /usr/bin/chromium: `apt-get install -y chromium`")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    backprop = next(p for p in PAGES if p.slug == "backprop")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(30_000)
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))

            page.goto(f"{served}/index.html", wait_until="domcontentloaded")
            page.get_by_role("heading", level=1, name="Pixels to GPUs").wait_for()
            sidebar = page.locator("nav.bd-links a.reference.internal")
            assert sidebar.filter(has_text=backprop.title).count() == 1
            page.screenshot(path=str(SCREENSHOTS / "home.png"))

            page.locator("article a", has_text=backprop.short_title).first.click()
            page.wait_for_url(f"**/notebooks/{backprop.stem}.html")
            page.get_by_role("heading", level=1, name=backprop.title).wait_for()
            assert page.locator("a", has_text="open in Colab").count() == 1
            images = page.locator(".cell_output img")
            assert images.count() > 0
            assert page.evaluate("Array.from(document.querySelectorAll('.cell_output img'))"
                                 ".every(img => img.complete && img.naturalWidth > 0)"), "a picture did not load"
            solution = page.locator("details.hide.above-input").first
            assert not solution.locator("pre").first.is_visible(), "a solution shows before it is opened"
            solution.locator("summary").click()
            assert solution.locator("pre").first.is_visible()
            page.wait_for_timeout(600)  # the theme fades an opened <details> in: let the screenshot show it whole
            page.screenshot(path=str(SCREENSHOTS / "notebook.png"))
            explorer_note = page.locator(".admonition", has_text="Live in Jupyter only").first
            explorer_note.scroll_into_view_if_needed()
            page.screenshot(path=str(SCREENSHOTS / "explorer.png"))

            page.goto(f"{served}/search.html?q=backpropagation", wait_until="domcontentloaded")
            results = page.locator("#search-results li")
            results.first.wait_for()
            assert results.filter(has_text=backprop.title).count() >= 1
            page.screenshot(path=str(SCREENSHOTS / "search.png"))
            assert not errors, f"JavaScript errors on the site: {errors}"
        finally:
            browser.close()
