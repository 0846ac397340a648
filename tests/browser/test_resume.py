"""Chromium's own EventSource resumes a resumable stream after the connection is cut mid-answer
(issue 19, acceptance 1): Chromium -> the shipped nginx config -> the app (in-memory log).

The cut: nginx is stopped (SIGTERM: fast shutdown, open connections closed) and started again on the
same port. EventSource reconnects by itself after `retry:` with `Last-Event-ID`; the rendered text
must equal the uninterrupted answer and the upstream must have seen one generation. Negative
control: the same page and cut without `resumable=1` restart the answer (a second generation).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser

from streamkit.proxies import PROXIES
from tests.app.conftest import RunningApp, start
from tests.conftest import Processes
from tests.e2e.conftest import installed, tls  # noqa: F401  (the shared test CA fixture)
from tests.e2e.harness import Tls, proxy_values
from tests.resume.conftest import expected_text, metric, records_of, stream_path

TOKENS, RATE = 40, 20
CUT_AFTER = 8  # tokens rendered before the connection is cut
RETRY_MS = 500  # the app's `retry:` hint here (kit default 3000 ms), so the test waits less

LISTEN = """
(path) => {
  window.__got = []; window.__opens = 0; window.__ended = null;
  const source = new EventSource(path);
  source.onopen = () => { window.__opens += 1; };
  source.addEventListener("token", (e) => { window.__got.push(JSON.parse(e.data).delta); });
  source.addEventListener("done", () => { window.__ended = "done"; source.close(); });
  source.addEventListener("error", (e) => { if (e.data) { window.__ended = "error"; source.close(); } });
}
"""


@pytest.fixture(scope="module")
def resume_app(module_processes: Processes, tmp_path_factory: pytest.TempPathFactory) -> RunningApp:
    return start(module_processes, tmp_path_factory.mktemp("browser-resume"), RETRY_MS=str(RETRY_MS))


@pytest.mark.browser
@pytest.mark.parametrize("resumable", [True, False], ids=["resumable", "control_not_resumable"])
def test_cut_mid_answer_resumes_in_chromium(
    browser: Browser, resume_app: RunningApp, tls: Tls, processes: Processes, tmp_path: Path,  # noqa: F811
    resumable: bool,
) -> None:
    nginx = installed(PROXIES["nginx"])
    values = proxy_values(nginx, resume_app.url.removeprefix("http://"), tls)
    edge = processes.add(nginx.start(tmp_path / "nginx-1", values, label="resume"))
    prompt = f"browser-resume-{resumable}"
    expected = expected_text(resume_app.url, prompt, TOKENS)
    before = records_of(resume_app.records)
    resumed_before = metric(resume_app.url, "streamkit_resumes_total", result="resumed")
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"http://{values['listen']}/")
        page.evaluate(LISTEN, stream_path(prompt, TOKENS, RATE, resumable=resumable))
        page.wait_for_function(f"window.__got.length >= {CUT_AFTER}", timeout=10_000)
        edge.stop()  # the cut: every connection through the proxy closes mid-answer
        processes.add(nginx.start(tmp_path / "nginx-2", values, label="resume-again"))
        page.wait_for_function("window.__ended !== null", timeout=20_000)
        rendered = "".join(page.evaluate("window.__got"))
        opens = page.evaluate("window.__opens")
        ended = page.evaluate("window.__ended")
    finally:
        context.close()
    generations = records_of(resume_app.records) - before
    assert opens == 2 and ended == "done"  # one automatic reconnect, then the end
    if resumable:
        assert rendered == expected  # no token missing or repeated
        assert len(generations) == 1  # the upstream saw exactly one generation
        assert metric(resume_app.url, "streamkit_resumes_total", result="resumed") == resumed_before + 1
    else:
        assert rendered != expected and rendered.endswith(expected)  # the answer restarted
        assert len(generations) == 2
