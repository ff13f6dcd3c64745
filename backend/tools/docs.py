"""A folder of Markdown, text, HTML and PDF files as the browser tool's offline search backend.

`index_folder` reads the folder into the app's database (re-reading only files whose size or
modification time changed, dropping files that are gone); `LocalDocs` searches it with the
database's full-text search and opens documents by id. Page text comes from maintained
extractors (trafilatura for HTML, pypdf for PDF), never from regexes.
"""

from __future__ import annotations

import logging
from pathlib import Path

from backend.tools.browser import Hit, Page
from storage.documents import Documents

log = logging.getLogger(__name__)

SUFFIXES = {".md", ".markdown", ".txt", ".rst", ".html", ".htm", ".pdf"}
MAX_FILE_BYTES = 20 * 2**20
MAX_FILES = 5_000


def extract_html(html: str) -> tuple[str | None, str]:
    """(title, main text) of an HTML page."""
    import trafilatura

    body = trafilatura.extract(html, include_links=False, include_tables=True, favor_recall=True) or ""
    meta = trafilatura.extract_metadata(html)
    title = meta.title if meta is not None and meta.title else None
    if not body.strip():  # a page too small for trafilatura's main-content heuristics: all its text
        import lxml.html

        body = "\n".join(line.strip() for line in lxml.html.fromstring(html).text_content().splitlines()
                         if line.strip())
    return title, body


def read_document(path: Path) -> tuple[str, str]:
    """(title, text) of one file."""
    suffix = path.suffix.lower()
    if suffix == ".pdf":
        from pypdf import PdfReader

        reader = PdfReader(str(path))
        body = "\n".join((page.extract_text() or "") for page in reader.pages)
        title = (reader.metadata.title if reader.metadata and reader.metadata.title else None)
        return title or path.stem, body
    raw = path.read_text(encoding="utf-8", errors="replace")
    if suffix in (".html", ".htm"):
        title, body = extract_html(raw)
        return title or path.stem, body
    heading = next((line.lstrip("#").strip() for line in raw.splitlines() if line.startswith("# ")), None)
    return heading or path.stem, raw


def index_folder(folder: Path, documents: Documents, progress=None) -> dict:
    """Bring the index up to date with the folder; returns counts (added, unchanged, removed, failed)."""
    known = documents.fingerprints()
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in SUFFIXES and _inside(p, folder))[:MAX_FILES]
    counts = {"added": 0, "unchanged": 0, "removed": 0, "failed": 0}
    for i, path in enumerate(files):
        source = path.relative_to(folder).as_posix()
        stat = path.stat()
        fingerprint = f"{stat.st_size}:{stat.st_mtime_ns}"
        if known.get(source) == fingerprint:
            counts["unchanged"] += 1
            continue
        if stat.st_size > MAX_FILE_BYTES:
            log.warning("browser docs: %s is larger than %d MiB, left out", source, MAX_FILE_BYTES // 2**20)
            counts["failed"] += 1
            continue
        try:
            title, body = read_document(path)
        except Exception as exc:  # one unreadable file must not stop the others
            log.warning("browser docs: could not read %s (%s)", source, exc)
            counts["failed"] += 1
            continue
        documents.put(source, title, body, fingerprint)
        counts["added"] += 1
        if progress is not None:
            progress(f"Indexing documents for the browser tool: {source}", (i + 1) / len(files))
    counts["removed"] = documents.remove_except({p.relative_to(folder).as_posix() for p in files})
    return counts


def _inside(path: Path, folder: Path) -> bool:
    """A regular file of the folder itself: no symbolic link (to a users file, a key, /etc) anywhere on
    its way, so only what the deployment put there is indexed and served to every user."""
    if path.is_symlink() or not path.is_file():
        return False
    relative = path.relative_to(folder)
    return not any((folder / Path(*relative.parts[:i])).is_symlink() for i in range(1, len(relative.parts)))


class LocalDocs:
    """Search backend over the indexed folder. A document's address is `doc/<id>` (served by the app)."""

    source = "docs"

    def __init__(self, documents: Documents):
        self.documents = documents

    def search(self, query: str, topn: int) -> list[Hit]:
        return [Hit(h.title, f"doc/{h.id}", h.snippet) for h in self.documents.search(query, topn)]

    def fetch(self, url: str) -> Page:
        doc = None
        tail = url.rsplit("doc/", 1)[-1]
        if tail.isdigit():
            doc = self.documents.get(int(tail))
        if doc is None:
            doc = self.documents.by_source(url)
        if doc is None:
            raise LookupError(f"no document {url!r} (open a result of a search)")
        return Page(doc.title, f"doc/{doc.id}", doc.text)
