"""MkDocs hook: the repository's root pages (README.md, BENCHMARKS.md, ...) become pages of the site, and the
links between them and docs/ are rewritten so that each link works both on GitHub and in the built site."""

from __future__ import annotations

import re
from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parent.parent
ROOT_PAGES = {  # site page -> the root file it is built from
    "index.md": "README.md",
    "benchmarks.md": "BENCHMARKS.md",
    "contributing.md": "CONTRIBUTING.md",
    "changelog.md": "CHANGELOG.md",
    "architecture.md": "ARCHITECTURE.md",
}
SITE_NAME = {name: page for page, name in ROOT_PAGES.items()}
ROOT_LINK = re.compile(r"\]\((\.\./)?(" + "|".join(re.escape(n) for n in SITE_NAME) + r")(#[^)]*)?\)")
DOCS_LINK = re.compile(r"\]\(docs/([^)]*)\)")


def on_files(files, config):
    for page, name in ROOT_PAGES.items():
        files.append(File.generated(config, page, abs_src_path=str(ROOT / name)))
    return files


def on_page_markdown(markdown, page, config, files):
    from_root = page.file.src_uri in ROOT_PAGES

    def root_link(m: re.Match) -> str:
        up, name, anchor = m.groups()
        if bool(up) == from_root:  # ../X.md from a root page, or X.md from docs/: not a root page's link
            return m.group(0)
        return f"]({SITE_NAME[name]}{anchor or ''})"

    markdown = ROOT_LINK.sub(root_link, markdown)
    return DOCS_LINK.sub(r"](\1)", markdown) if from_root else markdown
