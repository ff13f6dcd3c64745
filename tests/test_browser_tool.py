"""The browser tool: search, open, find with cursors and line numbers, over local documents (HTML, PDF,
Markdown) and over SearXNG (replayed responses in its documented JSON format, served over real HTTP)."""

import json
import threading

import pytest

from backend.tools.browser import BrowserTool
from backend.tools.docs import LocalDocs, index_folder, read_document
from backend.tools.searxng import SearxngSearch
from backend.tools.toolbox import ToolContext
from storage.documents import Documents
from tests.support.replay_server import RECORDED, ReplayServer, Reply

CTX = ToolContext(threading.Event(), deadline=float("inf"))


@pytest.fixture
def docs(repo, tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "license.md").write_text("# License\n\nSome words.\ngpt-oss is released under the Apache 2.0 license.\n")
    (folder / "guide.html").write_text("<html><head><title>Guide</title></head><body><nav>menu</nav><article>"
                                       "<h1>Guide</h1><p>Reasoning effort can be low, medium or high.</p>"
                                       "</article></body></html>")
    (folder / "notes.txt").write_text("Harmony has three channels: analysis, commentary and final.\n")
    (folder / "skip.bin").write_bytes(b"\x00\x01")
    documents = Documents(repo)
    return folder, documents


def browser(backend):
    session = BrowserTool(backend).bind({})
    return lambda method, **args: session.run(method, json.dumps(args), CTX)


def test_indexing_reads_each_kind_and_only_changed_files_again(docs):
    folder, documents = docs
    assert index_folder(folder, documents) == {"added": 3, "unchanged": 0, "removed": 0, "failed": 0}
    assert index_folder(folder, documents)["unchanged"] == 3
    (folder / "notes.txt").unlink()
    assert index_folder(folder, documents)["removed"] == 1 and documents.count() == 2
    title, text = read_document(folder / "guide.html")
    assert title == "Guide" and "low, medium or high" in text


def test_links_out_of_the_folder_are_never_indexed(docs, tmp_path):
    folder, documents = docs
    secret = tmp_path / "users.json"
    secret.write_text('{"alice": "pbkdf2_sha256$600000$salt$hash"}')
    (tmp_path / "private").mkdir()
    (tmp_path / "private" / "keys.md").write_text("# keys\n\nsk-secret")
    (folder / "leak.txt").symlink_to(secret)
    (folder / "inner").symlink_to(tmp_path / "private", target_is_directory=True)
    (folder / "sub").mkdir()
    (folder / "sub" / "real.md").write_text("# Real\n\nkept")
    assert index_folder(folder, documents)["added"] == 4  # the three, and sub/real.md
    assert not LocalDocs(documents).search("pbkdf2_sha256", 5) and not LocalDocs(documents).search("sk-secret", 5)


def test_a_pdf_is_read(tmp_path):
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(width=200, height=200)
    writer.add_metadata({"/Title": "Empty report"})
    with open(tmp_path / "report.pdf", "wb") as f:
        writer.write(f)
    assert read_document(tmp_path / "report.pdf")[0] == "Empty report"


def test_search_open_find_with_cursors_and_line_numbers(docs):
    folder, documents = docs
    index_folder(folder, documents)
    run = browser(LocalDocs(documents))
    found = run("search", query="apache license")
    assert found.summary == "1 result" and found.text.startswith("[0] Search results for 'apache license'")
    assert "【0†License†doc/" in found.text
    opened = run("open", id=0)
    assert opened.text.startswith("[1] License") and "L3: gpt-oss is released under the Apache 2.0 license." in opened.text
    assert opened.pages[0]["cursor"] == 1 and opened.pages[0]["url"].startswith("doc/")
    scrolled = run("open", cursor=1, loc=3, num_lines=1)
    assert "L3:" in scrolled.text and "L0:" not in scrolled.text
    match = run("find", pattern="APACHE")
    assert match.summary == "1 match" and "【1†L3】" in match.text


@pytest.mark.parametrize("method, args, error", [
    ("open", {"id": 5}, "no page is open yet"), ("find", {"pattern": "x"}, "no page is open yet"),
    ("fly", {}, "no function 'fly'"), ("search", {"q": "wrong name"}, "wrong arguments"),
    ("open", {"id": "doc/999"}, "no document")])
def test_bad_calls_are_errors_for_the_model(docs, method, args, error):
    result = browser(LocalDocs(docs[1]))(method, **args)
    assert result.status == "error" and error in result.text


def test_searxng_search_and_open_a_page(tmp_path):
    server = ReplayServer()
    try:
        page = f"{server.url}/harmony.html"
        body = (RECORDED / "searxng_search.json").read_text().replace("PAGE_URL", page)
        server.route("/search?q=harmony&format=json", Reply([body], content_type="application/json"))
        server.route("/harmony.html", Reply(["<html><head><title>Harmony</title></head><body><article><p>"
                                             "The harmony format has channels for reasoning.</p></article></body>"
                                             "</html>"], content_type="text/html"))
        run = browser(SearxngSearch(server.url, allow_private=True))  # the replay server is on 127.0.0.1
        found = run("search", query="harmony", topn=5)
        assert found.summary == "2 results" and f"【0†OpenAI Harmony format†{page}】" in found.text
        opened = run("open", id=0)
        assert "channels for reasoning" in opened.text and opened.pages[0]["url"] == page
    finally:
        server.close()


def test_searxng_that_does_not_answer_is_an_error_for_the_model():
    result = browser(SearxngSearch("http://127.0.0.1:9"))("search", query="x")
    assert result.status == "error" and "--searxng-url" in result.text


def test_exa_search_open_a_hit_and_an_address():
    from backend.tools.exa import ExaSearch

    server = ReplayServer()
    try:
        server.route("/search", Reply([(RECORDED / "exa_search.json").read_text()], content_type="application/json"))
        server.route("/contents", Reply([(RECORDED / "exa_contents.json").read_text()],
                                        content_type="application/json"))
        run = browser(ExaSearch("test-key", base_url=server.url))
        found = run("search", query="harmony format", topn=2)
        assert found.summary == "2 results" and "【0†The harmony response format†https://example.org/harmony】" in found.text
        assert server.requests[0][1] == {"query": "harmony format", "numResults": 2,
                                         "contents": {"text": {"maxCharacters": 20000}}}
        opened = run("open", id=0)  # its text came with the hit: no second request
        assert "L1: It has three channels" in opened.text and len(server.requests) == 1
        other = run("open", id="https://example.org/new")
        assert "through /contents" in other.text and server.requests[1][1]["urls"] == ["https://example.org/new"]
    finally:
        server.close()


@pytest.mark.parametrize("address", ["http://127.0.0.1:7860/", "http://169.254.169.254/latest/meta-data/",
                                     "http://10.0.0.1/", "http://[::1]/", "file:///etc/passwd"])
def test_the_browser_never_opens_the_servers_own_network(address):
    result = browser(SearxngSearch("http://127.0.0.1:9"))("open", id=address)
    assert result.status == "error" and ("private network" in result.text or "not a web address" in result.text)


@pytest.mark.parametrize("address", ["http://100.100.100.200/latest/meta-data/", "http://[::ffff:127.0.0.1]/",
                                     "http://0.0.0.0:7860/", "http://192.0.2.1/"])
def test_only_globally_routable_addresses_are_opened(address):
    result = browser(SearxngSearch("http://127.0.0.1:9"))("open", id=address)
    assert result.status == "error" and "private network" in result.text


def test_a_public_page_that_redirects_inward_is_refused():
    """Each redirect is checked as the first address was (httpx followed them unchecked before)."""
    import httpx

    asked = []

    def serve(request):
        asked.append(str(request.url))
        if request.url.host == "93.184.216.34":
            return httpx.Response(302, headers={"location": "http://127.0.0.1:7860/config"})
        return httpx.Response(200, text="<html><body>the app's own config</body></html>")

    client = httpx.Client(transport=httpx.MockTransport(serve), follow_redirects=True)
    result = browser(SearxngSearch("http://127.0.0.1:9", client=client))("open", id="http://93.184.216.34/go")
    assert result.status == "error" and "private network" in result.text
    assert asked == ["http://93.184.216.34/go"]  # the inward address was never requested
