"""Which routes `streamkit lint` looks at, what each finding names, and the tiers of rules.

Every proxying route is checked by default (a streaming route at `/a2a/` next to a correct
`location /` is found); `--stream-path` narrows the check; findings of different files are never
merged; nginx site files without an extension, regex locations written `~/x` and includes of
absent files are read the way nginx reads them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.lint.helpers import REPO, lint_json, rule_names
from tests.lint.test_cli import PLAIN_STREAMING_SITE

GOOD = """
        proxy_pass http://127.0.0.1:8000;
        proxy_buffering off;
        proxy_http_version 1.1;
        proxy_read_timeout 3600s;"""
# The same site with one more route whose buffering is left on (nginx's default).
TWO_ROUTES = f"""server {{
    listen 80;
    location / {{{GOOD}
    }}
    location /a2a/ {{
        proxy_pass http://127.0.0.1:9000;
        proxy_http_version 1.1;
        proxy_read_timeout 3600s;
    }}
}}
"""


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_plain_streaming_site_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 21 acceptance 7: a plain streaming nginx config for any app exits 0 (the advice about
    /metrics is a note); the same site with buffering left on fails."""
    code, report = lint_json(capsys, str(write(tmp_path, "site.conf", PLAIN_STREAMING_SITE)))
    assert code == 0, report["findings"]
    assert {f["severity"] for f in report["findings"]} <= {"note"}
    buffered = PLAIN_STREAMING_SITE.replace("proxy_buffering off;", "proxy_buffering on;")
    code, report = lint_json(capsys, str(write(tmp_path, "buffered.conf", buffered)))
    assert code == 1 and rule_names(report) - {"metrics"} == {"buffering"}


def test_every_proxying_route_is_checked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    site = write(tmp_path, "site.conf", TWO_ROUTES)
    code, report = lint_json(capsys, str(site))
    failing = [f for f in report["findings"] if f["severity"] == "error"]
    assert code == 1
    assert [(f["rule"]["name"], f["file"], f["line"], f["route"]) for f in failing] == [
        ("buffering", str(site), 9, "location /a2a/")
    ]


def test_stream_path_narrows_the_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    site = str(write(tmp_path, "site.conf", TWO_ROUTES))
    assert lint_json(capsys, "--stream-path", "/v1/", site)[0] == 0  # `location /` serves /v1/: fine
    code, report = lint_json(capsys, "--stream-path", "/v1/", "--stream-path", "/a2a/tasks", site)
    assert code == 1 and {f["route"] for f in report["findings"] if f["severity"] == "error"} == {"location /a2a/"}
    assert report["stream_paths"] == ["/v1/", "/a2a/tasks"]


def test_same_mistake_in_two_files_is_reported_twice(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Acceptance 2: findings of different files are never merged (and a fixed file stays clean)."""
    broken = PLAIN_STREAMING_SITE.replace("proxy_buffering off;", "")
    one, two = write(tmp_path, "one.conf", broken), write(tmp_path, "two.conf", broken)
    fixed = write(tmp_path, "fixed.conf", PLAIN_STREAMING_SITE)
    code, report = lint_json(capsys, str(one), str(two), str(fixed))
    assert code == 1
    assert sorted(f["file"] for f in report["findings"] if f["rule"]["name"] == "buffering") == [str(one), str(two)]


def test_sites_available_directory_of_extensionless_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Acceptance 2: Debian's sites-available/ holds sites without an extension; each is read."""
    sites = tmp_path / "sites-available"
    write(sites, "default", PLAIN_STREAMING_SITE)
    broken = write(sites, "chat.example.com", PLAIN_STREAMING_SITE.replace("3600s", "10s"))
    write(sites, "README", "not nginx\n")
    code, report = lint_json(capsys, str(sites))
    assert report["checked"] == {"nginx": [str(sites / "chat.example.com"), str(sites / "default")]}
    assert code == 1
    assert [(f["file"], f["rule"]["name"]) for f in report["findings"] if f["severity"] == "error"] == [
        (str(broken), "idle-timeout")
    ]


@pytest.mark.parametrize(
    ("location", "flagged"), [("~/api", True), ("~ /api", True), ("~ ^/api", False), ("/api", False)]
)
def test_regex_location_glued_to_its_modifier(
    location: str, flagged: bool, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`location ~/api` is a regex (matches /v2/api/x too), not a prefix: with --stream-path
    /v2/api/chat only the regex forms take that path."""
    site = f"server {{\n    location {location} {{\n        proxy_pass http://127.0.0.1:8000;\n    }}\n}}\n"
    code, report = lint_json(capsys, "--stream-path", "/v2/api/chat", str(write(tmp_path, "r.conf", site)))
    assert ("buffering" in rule_names(report)) is flagged
    assert code == (1 if flagged else 0)


def test_absent_include_warns_and_lints_the_rest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    site = PLAIN_STREAMING_SITE.replace(
        "    listen 80;", "    listen 80;\n    include /etc/nginx/snippets/absent-snakeoil.conf;"
    ).replace("proxy_read_timeout 3600s;", "proxy_read_timeout 5s;")
    code, report = lint_json(capsys, str(write(tmp_path, "inc.conf", site)))
    warnings = [f for f in report["findings"] if f["severity"] == "warning"]
    assert len(warnings) == 1 and "/etc/nginx/snippets/absent-snakeoil.conf" in warnings[0]["message"]
    assert warnings[0]["line"] == 3
    assert code == 1 and rule_names(report) - {"metrics"} == {"config", "idle-timeout"}


def test_json_names_rule_severity_file_line_route(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    site = write(tmp_path, "site.conf", TWO_ROUTES)
    _, report = lint_json(capsys, "--app", "streamkit", str(site))
    for finding in report["findings"]:
        assert {"rule", "severity", "file", "line", "route", "message", "fix", "docs"} <= finding.keys()
        assert finding["severity"] == "error" and finding["file"] == str(site)
    # --app streamkit: no SK7, the app's public port has no /metrics (tests/lint/test_negative_controls.py)
    assert rule_names(report) == {"buffering"}


def test_stream_path_narrows_envoy_routes_and_traefik_middlewares(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Envoy: a short route timeout on a route that does not stream is left alone under
    --stream-path; Traefik: a compress middleware only on a non-streaming router likewise."""
    envoy = REPO / "tests" / "corpus" / "configs" / "envoy" / "seldon-60s-hardwired.yaml"  # timeout 60s on /v2/
    code, report = lint_json(capsys, str(envoy))
    assert code == 1 and [f["route"] for f in report["findings"] if f["severity"] == "error"] == [
        "route {'prefix': '/v2/'}"
    ]
    assert lint_json(capsys, "--stream-path", "/stream", str(envoy))[0] == 0
    assert lint_json(capsys, "--stream-path", "/v2/models/m/infer", str(envoy))[0] == 1
    traefik = write(
        tmp_path,
        "dynamic.yml",
        "http:\n  routers:\n    assets:\n      rule: PathPrefix(`/assets`)\n      middlewares: [gz]\n"
        "      service: app\n    api:\n      rule: PathPrefix(`/v1`)\n      service: app\n"
        "  middlewares:\n    gz:\n      compress: {}\n"
        "  services:\n    app:\n      loadBalancer:\n        servers:\n          - url: http://127.0.0.1:8000\n",
    )
    assert rule_names(lint_json(capsys, str(traefik))[1]) - {"keepalive"} == {"compression"}
    code, report = lint_json(capsys, "--stream-path", "/v1/chat", str(traefik))
    assert code == 0 and rule_names(report) - {"keepalive"} == set()
    assert lint_json(capsys, "--stream-path", "/assets/live", str(traefik))[0] == 1


def test_internal_locations_are_not_client_routes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An auth_request target (`internal;`) proxies a subrequest, not a stream: not checked; the
    same location without `internal;` is a route clients reach, and is."""
    auth = "    location = /_auth {\n        internal;\n        proxy_pass http://127.0.0.1:9000/check;\n    }\n"
    site = PLAIN_STREAMING_SITE.replace("    listen 80;\n", "    listen 80;\n" + auth)
    assert lint_json(capsys, str(write(tmp_path, "a.conf", site)))[0] == 0
    code, report = lint_json(capsys, str(write(tmp_path, "b.conf", site.replace("        internal;\n", ""))))
    assert code == 1 and {f["route"] for f in report["findings"] if f["severity"] == "error"} == {"location = /_auth"}
