"""`streamkit lint` as a CI step: exit codes, flags that move the budget, JSON and human output."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.settings import Settings
from streamkit.cli import main
from streamkit.lint import caddy
from tests.lint.helpers import NEGATIVE, REPO, lint_json, rule_names

INFRA = REPO / "infra"
NGINX = INFRA / "nginx" / "streamkit.conf"
DEBIAN_SITE = NEGATIVE / "lint" / "nginx" / "debian-default-site.conf"
# A plain streaming nginx site for any app (issue 21, acceptance 7: it must pass).
PLAIN_STREAMING_SITE = """server {
    listen 80;
    location / {
        proxy_pass http://127.0.0.1:8000;
        proxy_buffering off;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_read_timeout 3600s;
    }
}
"""


def test_shipped_infra_is_clean(capsys: pytest.CaptureFixture[str]) -> None:
    """Acceptance: every config the kit ships passes every rule with the app's default budget."""
    code, report = lint_json(capsys, str(INFRA))
    assert report["findings"] == []
    assert code == 0
    assert set(report["checked"]) >= {"nginx", "caddy", "envoy", "traefik", "haproxy", "kubernetes", "terraform"}


def test_budget_defaults_come_from_the_app_settings(capsys: pytest.CaptureFixture[str]) -> None:
    _, report = lint_json(capsys, str(NGINX))
    settings = Settings()
    assert report["budget"] == {
        "ping_interval": settings.ping_interval,
        "max_stream": settings.max_stream_seconds,
        "keepalive": settings.keepalive,
    }


@pytest.mark.parametrize(
    ("flag", "value", "rule"),
    [
        ("--ping", "7200", "idle-timeout"),  # proxy_read_timeout 3600s no longer outlives a ping
        ("--keepalive", "30", "keepalive"),  # the 60 s upstream pool outlives the app's keep-alive
    ],
)
def test_flags_move_the_budget(flag: str, value: str, rule: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, report = lint_json(capsys, flag, value, str(NGINX))
    assert code == 1 and rule_names(report) == {rule}


def test_max_stream_flag(capsys: pytest.CaptureFixture[str]) -> None:
    control = NEGATIVE / "lint" / "terraform" / "total-timeout.tf"
    assert lint_json(capsys, "--max-stream", "20", str(control))[0] == 0  # 30 s default covers a 20 s stream
    assert lint_json(capsys, "--max-stream", "40", str(control))[0] == 1


@pytest.mark.parametrize("argv", [["lint"], ["lint", "--ping", "0", "X"], ["lint", "--max-stream", "x", "X"]])
def test_bad_usage_exits_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        raise SystemExit(main([str(NGINX) if arg == "X" else arg for arg in argv]))
    assert exited.value.code == 2


def test_missing_path_and_unknown_file_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, report = lint_json(capsys, str(tmp_path / "nope.conf"))
    assert code == 2 and report["not_checked"] == [
        {"file": str(tmp_path / "nope.conf"), "why": "no such file or directory"}
    ]
    readme = tmp_path / "README.md"
    readme.write_text("# not a config\n")
    code, report = lint_json(capsys, str(readme))
    assert code == 2 and "not a config format" in report["not_checked"][0]["why"]


def test_unparseable_config_exits_2_with_crossplanes_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.conf"
    broken.write_text("server {\n    location / {\n        proxy_pass http://127.0.0.1:8000;\n")
    code, report = lint_json(capsys, str(broken))
    assert code == 2 and report["checked"] == {}
    [entry] = report["not_checked"]
    assert entry["file"] == str(broken) and "unexpected end of file" in entry["why"], entry


def test_nothing_checkable_in_a_directory_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "notes.txt").write_text("hello\n")
    (tmp_path / "blob.conf").write_bytes(b"\xff\xfe server {")
    code, report = lint_json(capsys, str(tmp_path))
    assert code == 2
    assert {e["file"]: e["why"] for e in report["not_checked"]} == {
        str(tmp_path / "blob.conf"): "not UTF-8 text",
        str(tmp_path / "notes.txt"): "not a config format streamkit lint reads",
    }
    (tmp_path / "site.conf").write_text(PLAIN_STREAMING_SITE)
    code, report = lint_json(capsys, str(tmp_path))
    assert code == 0 and len(report["not_checked"]) == 2  # the others are listed, the site is checked


def test_missing_caddy_binary_is_an_error_not_a_pass(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(caddy, "caddy_binary", lambda: None)
    code, report = lint_json(capsys, str(INFRA / "caddy" / "Caddyfile"))
    assert code == 2
    assert "caddy binary was not found" in report["not_checked"][0]["why"]


def test_human_output_names_file_line_rule_fix_and_docs(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["lint", str(DEBIAN_SITE)])
    out = capsys.readouterr().out
    assert code == 1
    assert f"{DEBIAN_SITE}:15  location /  SK1 buffering" in out
    assert "fix:     add `proxy_buffering off;` to this location" in out
    assert "docs:    https://nginx.org/en/docs/http/ngx_http_proxy_module.html#proxy_buffering" in out
    # HTTP/1.0 is about streamkit's own app: a note, unless --app streamkit.
    assert f"{DEBIAN_SITE}:15  location /  note: SK6 http1" in out
    # /metrics is advice for an app that serves it on its public port: a note, dropped for streamkit's.
    assert f"{DEBIAN_SITE}:15  location /  note: SK7 metrics" in out and "advice for an app that serves" in out
    # nginx cannot bound a vanished client (SK10): said once, as a note, whatever the app.
    assert "nginx  note: SK10 dead-peer" in out and "net.ipv4.tcp_retries2" in out
    assert "1 finding(s), 3 note(s): 1 config file(s) checked (nginx 1)" in out
    assert main(["lint", "--app", "streamkit", str(DEBIAN_SITE)]) == 1
    out = capsys.readouterr().out
    assert "2 finding(s), 1 note(s): 1 config file(s) checked (nginx 1)" in out and "SK7" not in out


def test_app_rules_fail_for_the_kits_infra_and_are_notes_elsewhere(capsys: pytest.CaptureFixture[str]) -> None:
    """--app auto: the kit's own infra/ runs streamkit, so its app rules fail the run; told the app
    behind is another one, the same finding is a note and the run passes."""
    code, report = lint_json(capsys, "--keepalive", "30", str(NGINX))
    assert code == 1 and [f["severity"] for f in report["findings"]] == ["error"]
    code, report = lint_json(capsys, "--keepalive", "30", "--app", "other", str(NGINX))
    assert code == 0 and [(f["rule"]["name"], f["severity"]) for f in report["findings"]] == [("keepalive", "note")]
