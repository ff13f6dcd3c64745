"""The browser tool's local documents: a folder's files as text, searchable (full-text on SQLite's
FTS5 with bm25 ranking; elsewhere every word must appear, most mentions first)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, func, select, text

from storage.repository import Repository, fts_query
from storage.schema import Document


@dataclass
class DocumentHit:
    id: int
    source: str
    title: str
    snippet: str


@dataclass
class StoredDocument:
    id: int
    source: str
    title: str
    text: str


class Documents:
    def __init__(self, repo: Repository):
        self.repo = repo

    def fingerprints(self) -> dict[str, str]:
        with self.repo.session() as s:
            return dict(s.execute(select(Document.source, Document.fingerprint)).all())

    def put(self, source: str, title: str, body: str, fingerprint: str) -> None:
        """Add or replace one document (and its full-text entry)."""
        with self.repo.writing() as s:
            old = s.scalar(select(Document).where(Document.source == source))
            if old is not None:
                self._unindex(s, old)
                s.delete(old)
                s.flush()
            doc = Document(source=source, title=title[:300], text=body, fingerprint=fingerprint)
            s.add(doc)
            s.flush()
            if self.repo.fts:
                s.execute(text("INSERT INTO documents_fts(rowid, title, text) VALUES (:id, :title, :text)"),
                          {"id": doc.id, "title": doc.title, "text": body})

    def remove_except(self, sources: set[str]) -> int:
        """Drop documents whose file is gone; returns how many."""
        with self.repo.writing() as s:
            gone = s.scalars(select(Document).where(Document.source.not_in(sources))).all() if sources else \
                s.scalars(select(Document)).all()
            for doc in gone:
                self._unindex(s, doc)
            if gone:
                s.execute(delete(Document).where(Document.id.in_([d.id for d in gone])))
            return len(gone)

    def _unindex(self, s, doc: Document) -> None:
        if self.repo.fts:
            s.execute(text("INSERT INTO documents_fts(documents_fts, rowid, title, text) "
                           "VALUES ('delete', :id, :title, :text)"), {"id": doc.id, "title": doc.title, "text": doc.text})

    def count(self) -> int:
        with self.repo.session() as s:
            return s.scalar(select(func.count(Document.id)))

    def search(self, query: str, limit: int = 10) -> list[DocumentHit]:
        words = query.split()
        if not words:
            return []
        with self.repo.session() as s:
            if self.repo.fts:
                sql = text("""SELECT d.id, d.source, d.title, snippet(documents_fts, 1, '', '', '…', 24)
                              FROM documents_fts JOIN documents d ON d.id = documents_fts.rowid
                              WHERE documents_fts MATCH :match ORDER BY bm25(documents_fts) LIMIT :limit""")
                rows = s.execute(sql, {"match": " OR ".join(fts_query(w) for w in words), "limit": limit}).all()
                return [DocumentHit(*row) for row in rows]
            return self._search_plain(s, words, limit)

    @staticmethod
    def _search_plain(s, words: list[str], limit: int) -> list[DocumentHit]:
        def escaped(word):
            return "%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        cond = None
        for word in words:
            c = Document.text.ilike(escaped(word), escape="\\") | Document.title.ilike(escaped(word), escape="\\")
            cond = c if cond is None else cond | c
        docs = s.scalars(select(Document).where(cond).limit(200)).all()
        lowered = [w.lower() for w in words]
        scored = sorted(docs, key=lambda d: -sum((d.title + " " + d.text).lower().count(w) for w in lowered))
        return [DocumentHit(d.id, d.source, d.title, _snippet(d.text, lowered)) for d in scored[:limit]]

    def get(self, doc_id: int) -> StoredDocument | None:
        with self.repo.session() as s:
            doc = s.get(Document, doc_id)
            return StoredDocument(doc.id, doc.source, doc.title, doc.text) if doc else None

    def by_source(self, source: str) -> StoredDocument | None:
        with self.repo.session() as s:
            doc = s.scalar(select(Document).where(Document.source == source))
            return StoredDocument(doc.id, doc.source, doc.title, doc.text) if doc else None


def _snippet(body: str, words: list[str], width: int = 160) -> str:
    low = body.lower()
    at = min((i for i in (low.find(w) for w in words) if i >= 0), default=0)
    start = max(at - width // 3, 0)
    return ("…" if start else "") + " ".join(body[start:start + width].split()) + "…"
