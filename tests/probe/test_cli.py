"""`streamkit probe` end to end, as a user runs it: exit codes, the report, JSON and PNG files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from streamkit.cli import main
from streamkit.local import free_port
from streamkit.probe.verdict import CHECK_NAMES
from tests.probe.conftest import APP_PING_INTERVAL, NAIVE_PING_INTERVAL, PACED_NO_STAMPS

CLI_TIMEOUT = 60.0  # seconds for one probe run, start-up included (the host is shared)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def probe(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streamkit.cli", "probe", *args],
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        env={"COLUMNS": "100", "PATH": "/usr/bin:/bin"},
    )


def test_passing_run_writes_json_and_png(app_url: str, tmp_path: Path) -> None:
    out, png = tmp_path / "report.json", tmp_path / "timeline.png"
    result = probe(
        f"{app_url}/v1/chat/stream?prompt=hi&tokens=10",
        "--ping-interval",
        str(APP_PING_INTERVAL),
        "--json-out",
        str(out),
        "--plot",
        str(png),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "STREAMS" in result.stdout and "✘" not in result.stdout
    report = json.loads(out.read_text())
    assert report["ok"] is True and report["verdict"] == "STREAMS"
    assert [c["name"] for c in report["checks"]] == list(CHECK_NAMES)
    assert len(report["events"]) == 12 and all(e["arrival"] > 0 for e in report["events"])
    assert png.read_bytes().startswith(PNG_MAGIC)


def test_unreachable_exits_2() -> None:
    result = probe(f"http://127.0.0.1:{free_port()}/", "--timeout", "5")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "could not connect" in result.stdout


def test_buffered_stream_fails_with_a_fix(naive_url: str) -> None:
    result = probe(f"{naive_url}/s?buffer=1&n=10", "--ping-interval", str(NAIVE_PING_INTERVAL))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "BUFFERED: all 10 events arrived together" in result.stdout
    assert "proxy_buffering off;" in result.stdout


# The next tests run in-process through the console script's entry point (`main`), which saves an
# interpreter start each; the subprocess tests above cover the real process boundary.


def test_post_body_and_json_to_stdout(app_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    body = {
        "model": "streamkit-fake",
        "stream": True,
        "messages": [{"role": "user", "content": "hi"}],
        "fake": {"tokens": 10},
    }
    assert main(["probe", f"{app_url}/v1/chat/completions", "--json", json.dumps(body), "--json-out", "-"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True
    assert "[DONE]" in next(c["detail"] for c in report["checks"] if c["name"] == "terminal_event")


def test_plot_without_timestamps(naive_url: str, tmp_path: Path) -> None:
    png = tmp_path / "no-stamps.png"
    assert main(["probe", f"{naive_url}/s?{PACED_NO_STAMPS}", "--plot", str(png)]) == 0
    assert png.read_bytes().startswith(PNG_MAGIC)


def test_http_error_is_a_failed_check(app_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["probe", f"{app_url}/v1/chat/stream"]) == 1  # missing prompt: 400
    assert "NO STREAM" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--json", "{not json"], "Expecting property name"),
        (["--header", "no-colon"], "NAME:VALUE"),
        (["--cacert", "/nonexistent/ca.pem"], "no such file"),
    ],
)
def test_bad_usage_exits_2(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    # In-process through the same entry point as the console script (no server is contacted).
    assert main(["probe", "http://127.0.0.1:1/", *args]) == 2
    assert message in capsys.readouterr().err
