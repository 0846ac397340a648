"""Static proof of the Terraform modules and examples under infra/terraform.

No cloud is touched. The budget rules live in `streamkit lint` alone (streamkit/lint/terraform.py,
rules SK1-SK10); this file keeps only what lint cannot express. What is checked:
- every .tf file parses with lint's reader (python-hcl2);
- lint finds nothing in every shipped config against the app's own defaults (app.settings.Settings),
  and follows the budget when it changes; its negative controls are tests/negative/lint/terraform/,
  each caught by exactly its rule (tests/lint/test_negative_controls.py);
- every validation block rejects a bad value and accepts a good one (streamkit/lint/hcl.py
  evaluates the conditions; where terraform is installed, Terraform itself must agree);
- checkov finds nothing that is not waived with a reason next to the waiver;
- `terraform fmt -check` and `terraform validate` where a terraform (or tofu) binary is installed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from app.routes import router
from app.settings import Settings
from streamkit.lint import terraform
from streamkit.lint.findings import Budget
from streamkit.lint.hcl import Unsupported, evaluate, resolve
from streamkit.lint.rules import SSE_PATHS
from tests.conftest import ON_CI

ROOT = Path(__file__).resolve().parents[2]
TF_ROOT = ROOT / "infra" / "terraform"
NEGATIVE_ROOT = ROOT / "tests" / "negative" / "lint" / "terraform"
CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"

SHIPPED = [
    "modules/aws-alb",
    "modules/gcp-lb",
    "modules/azure-appgw",
    "examples/aws",
    "examples/gcp",
    "examples/azure",
    "examples/cloudflare",
]
MODULES = [d for d in SHIPPED if d.startswith("modules/")]
# Optional: a Terraform provider filesystem mirror (for `terraform validate` without network).
PLUGIN_MIRROR_ENV = "STREAMKIT_TF_PLUGIN_MIRROR"
TERRAFORM_PARALLEL = 4  # concurrent `terraform plan` runs (each is short and mostly waits on startup)
TOOL_TIMEOUT = 300  # seconds; checkov over all configs takes a few seconds, generous for a busy machine


# ------------------------------------------------------------------------------------------------
# The app's side of the budget: defaults only (environment variables must not change the checks).
# ------------------------------------------------------------------------------------------------


def app_default(name: str) -> Any:
    return Settings.model_fields[name].default


APP_BUDGET = Budget(
    ping=app_default("ping_interval"),
    max_stream=app_default("max_stream_seconds"),
    keepalive=app_default("keepalive"),
    drain=app_default("drain_seconds"),
)

# Module input -> the app setting whose default it must equal.
APP_SETTING_OF_INPUT = {
    "ping_interval_seconds": "ping_interval",
    "max_stream_seconds": "max_stream_seconds",
    "drain_seconds": "drain_seconds",
    "target_port": "port",
    "health_check_port": "port",
    "backend_port": "port",
}

# ------------------------------------------------------------------------------------------------
# Parsing (lint's reader) and a merged view of one directory
# ------------------------------------------------------------------------------------------------


def run(
    args: list[str], cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=TOOL_TIMEOUT, check=False)


def venv_tool(path: Path) -> Path:
    """A tool from one of the extra venvs of mk/terraform.mk: skip locally, fail under CI."""
    if path.exists():
        return path
    message = f"{path.relative_to(ROOT)} is missing (`make deps` creates it, see mk/terraform.mk)"
    if ON_CI:
        pytest.fail(message)
    pytest.skip(message)


@dataclass
class Config:
    """All .tf files of one directory, merged the way Terraform merges a module (lint's Module),
    with the full variable and output specs that the README tables and validation tests need."""

    directory: str
    module: terraform.Module

    @property
    def variables(self) -> dict[str, dict[str, Any]]:
        return {name: spec for _, name, spec in self.module.blocks("variable")}

    @property
    def outputs(self) -> dict[str, dict[str, Any]]:
        return {name: spec for _, name, spec in self.module.blocks("output")}

    @property
    def modules(self) -> dict[str, dict[str, Any]]:
        return {name: spec for _, name, spec in self.module.blocks("module")}

    def scope(self, overrides: dict[str, Any] | None = None) -> Any:
        return self.module.scope_with(overrides or {})

    def validations(self) -> Iterator[tuple[str, str, str]]:
        """(variable, condition, error_message) of every validation block."""
        for name, spec in self.variables.items():
            for block in spec.get("validation", []):
                yield name, block["condition"], block["error_message"]


@pytest.fixture(scope="module")
def configs() -> dict[str, Config]:
    return load_configs()


def load_configs() -> dict[str, Config]:
    """Every directory with .tf files under infra/terraform."""
    by_dir, parsed, texts, errors = terraform.read(sorted(TF_ROOT.rglob("*.tf")))
    assert not errors.findings, [f.message for f in errors.findings]
    return {
        str(directory.relative_to(TF_ROOT)): Config(
            str(directory.relative_to(TF_ROOT)), terraform.module(files, parsed, texts)
        )
        for directory, files in by_dir.items()
    }


def lint_rules(directory: Path, budget: Budget) -> set[str]:
    """The rules `streamkit lint` (its library) finds broken in one Terraform directory."""
    findings = terraform.check(sorted(directory.glob("*.tf")), budget)
    return {finding.rule.name for finding in findings}


# ------------------------------------------------------------------------------------------------
# Tests: layout, parsing, defaults
# ------------------------------------------------------------------------------------------------


def test_parses_with_python_hcl2(configs: dict[str, Config]) -> None:
    assert sorted(configs) == sorted(SHIPPED)
    for module in MODULES:
        names = {p.name for p in (TF_ROOT / module).iterdir()}
        assert {"main.tf", "variables.tf", "outputs.tf", "versions.tf", "README.md"} <= names, module


DOCS_BEGIN, DOCS_END = "<!-- BEGIN_TF_DOCS -->", "<!-- END_TF_DOCS -->"


def _cell(value: Any) -> str:
    return f"`{json.dumps(value)}`".replace("|", "\\|")


def docs_tables(config: Config) -> str:
    """The Inputs and Outputs tables of a module README (the terraform-docs layout)."""
    lines = ["## Inputs", "", "| Name | Description | Type | Default | Required |", "|---|---|---|---|:---:|"]
    for name, spec in config.variables.items():
        default = _cell(spec["default"]) if "default" in spec else "n/a"
        kind = spec["type"][2:-1] if spec["type"].startswith("${") else spec["type"]
        required = "no" if "default" in spec else "yes"
        lines.append(f"| `{name}` | {spec['description']} | `{kind}` | {default} | {required} |")
    lines += ["", "## Outputs", "", "| Name | Description |", "|---|---|"]
    lines += [f"| `{name}` | {spec['description']} |" for name, spec in config.outputs.items()]
    return "\n".join([DOCS_BEGIN, *lines, DOCS_END])


@pytest.mark.parametrize("module", MODULES)
def test_readme_tables_match_the_module(configs: dict[str, Config], module: str) -> None:
    """Like terraform-docs in CI: the README's inputs/outputs tables are the variables and outputs."""
    readme = (TF_ROOT / module / "README.md").read_text()
    start, end = readme.index(DOCS_BEGIN), readme.index(DOCS_END) + len(DOCS_END)
    assert readme[start:end] == docs_tables(configs[module]), "run `.venv/bin/python -m tests.static.test_terraform`"


def write_readme_tables() -> None:
    """Rewrite the generated tables of every module README (like `terraform-docs --output-mode inject`)."""
    configs = load_configs()
    for module in MODULES:
        readme = TF_ROOT / module / "README.md"
        text = readme.read_text()
        start, end = text.index(DOCS_BEGIN), text.index(DOCS_END) + len(DOCS_END)
        readme.write_text(text[:start] + docs_tables(configs[module]) + text[end:])


def test_every_variable_and_output_is_described_and_typed(configs: dict[str, Config]) -> None:
    for directory in SHIPPED:
        config = configs[directory]
        for name, spec in config.variables.items():
            assert spec.get("description") and spec.get("type"), f"{directory}: variable {name}"
        for name, spec in config.outputs.items():
            assert spec.get("description"), f"{directory}: output {name}"


def test_module_defaults_match_app_settings(configs: dict[str, Config]) -> None:
    """The budget inputs default to the app's own defaults (read from app.settings, not copied)."""
    checked = 0
    for directory in [*MODULES, "examples/cloudflare"]:
        for name, spec in configs[directory].variables.items():
            if name in APP_SETTING_OF_INPUT:
                assert spec["default"] == app_default(APP_SETTING_OF_INPUT[name]), f"{directory}: {name}"
                checked += 1
    assert checked >= 3 * 4 + 1


def test_app_environment_outputs_name_app_settings(configs: dict[str, Config]) -> None:
    for module in MODULES:
        config = configs[module]
        environment = resolve(config.outputs["app_environment"]["value"], config.scope())
        assert {key.lower() for key in environment} <= set(Settings.model_fields), module
        assert environment["KEEPALIVE"] == resolve(config.outputs["app_keepalive_seconds"]["value"], config.scope())


def test_app_default_keepalive_fits_aws_and_azure_but_not_gcp(configs: dict[str, Config]) -> None:
    """The app's default KEEPALIVE works behind the kit's ALB and App Gateway defaults; behind GCP's
    fixed 600 s backend keep-alive it must be raised (the module says so in its output)."""
    needed = {m: resolve(configs[m].outputs["app_keepalive_seconds"]["value"], configs[m].scope()) for m in MODULES}
    assert needed["modules/aws-alb"] <= app_default("keepalive")
    assert needed["modules/azure-appgw"] <= app_default("keepalive")
    assert needed["modules/gcp-lb"] > terraform.GCP_KEEPALIVE > app_default("keepalive")


def test_examples_use_copyable_sources(configs: dict[str, Config]) -> None:
    """Each example calls its module by the path a user gets after copying the module folder."""
    for cloud, module in [("aws", "aws-alb"), ("gcp", "gcp-lb"), ("azure", "azure-appgw")]:
        calls = configs[f"examples/{cloud}"].modules
        assert len(calls) == 1, cloud
        (call,) = calls.values()
        assert call["source"] == f"./modules/streamkit-{module}", cloud
        assert "version" not in call, "a local source takes no version"
        for name, setting in APP_SETTING_OF_INPUT.items():
            if name in call:
                assert call[name] == app_default(setting), f"examples/{cloud}: {name}"
    route_paths = {getattr(route, "path", None) for route in router.routes}
    assert set(SSE_PATHS) <= route_paths, "SSE_PATHS must name the app's streaming endpoints"


# ------------------------------------------------------------------------------------------------
# Tests: the budget rules on shipped configs and on negative controls
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("directory", SHIPPED)
def test_budget_invariants_hold(directory: str) -> None:
    assert lint_rules(TF_ROOT / directory, APP_BUDGET) == set()


def test_budget_rules_follow_the_app_budget() -> None:
    """The same shipped module fails once the app's ping interval, longest stream or drain window
    outgrows it (the modules' defaults are sized for the app's defaults)."""
    budget = APP_BUDGET
    alb, gcp, appgw = (TF_ROOT / "modules" / name for name in ("aws-alb", "gcp-lb", "azure-appgw"))
    assert lint_rules(alb, Budget(40, budget.max_stream, budget.keepalive, drain=budget.drain)) == {"idle-timeout"}
    assert lint_rules(gcp, Budget(budget.ping, 7200, budget.keepalive, drain=budget.drain)) == {"total-timeout"}
    assert lint_rules(appgw, Budget(budget.ping, budget.max_stream, budget.keepalive, drain=600)) == {"drain"}


# ------------------------------------------------------------------------------------------------
# Tests: validation blocks reject a bad value and accept a good one
# ------------------------------------------------------------------------------------------------

# (directory, variable) -> (good inputs, bad inputs); every other input keeps its default.
VALIDATION_CASES: dict[tuple[str, str], tuple[list[dict[str, Any]], list[dict[str, Any]]]] = {
    ("modules/aws-alb", "target_port"): ([{"target_port": 8000}], [{"target_port": 0}, {"target_port": 70000}]),
    ("modules/aws-alb", "target_type"): ([{"target_type": "instance"}], [{"target_type": "lambda"}]),
    ("modules/aws-alb", "target_protocol"): ([{"target_protocol": "HTTPS"}], [{"target_protocol": "TCP"}]),
    ("modules/aws-alb", "ping_interval_seconds"): ([{"ping_interval_seconds": 5}], [{"ping_interval_seconds": 0}]),
    ("modules/aws-alb", "max_stream_seconds"): ([{"max_stream_seconds": 600}], [{"max_stream_seconds": 0}]),
    ("modules/aws-alb", "drain_seconds"): ([{"drain_seconds": 0}], [{"drain_seconds": -1}]),
    ("modules/aws-alb", "idle_timeout_seconds"): (
        [{"idle_timeout_seconds": 31}, {"idle_timeout_seconds": 4000}],
        [{"idle_timeout_seconds": 30}, {"idle_timeout_seconds": 4001}],
    ),
    ("modules/aws-alb", "client_keep_alive_seconds"): (
        [{"client_keep_alive_seconds": 3600}],
        [{"client_keep_alive_seconds": 1800}],
    ),
    ("modules/aws-alb", "deregistration_delay_seconds"): (
        [{"deregistration_delay_seconds": 25}],
        [{"deregistration_delay_seconds": 24}, {"deregistration_delay_seconds": 3601}],
    ),
    ("modules/gcp-lb", "backend_protocol"): ([{"backend_protocol": "HTTPS"}], [{"backend_protocol": "HTTP2"}]),
    ("modules/gcp-lb", "health_check_port"): ([{"health_check_port": 1}], [{"health_check_port": 65536}]),
    ("modules/gcp-lb", "ping_interval_seconds"): ([{"ping_interval_seconds": 30}], [{"ping_interval_seconds": 0}]),
    ("modules/gcp-lb", "max_stream_seconds"): ([{"max_stream_seconds": 1800}], [{"max_stream_seconds": 0}]),
    ("modules/gcp-lb", "drain_seconds"): ([{"drain_seconds": 0}], [{"drain_seconds": -1}]),
    ("modules/gcp-lb", "timeout_sec"): (
        [{"timeout_sec": 3600}, {"timeout_sec": 86400}],
        [{"timeout_sec": 30}, {"timeout_sec": 86401}],
    ),
    ("modules/gcp-lb", "connection_draining_timeout_sec"): (
        [{"connection_draining_timeout_sec": 25}],
        [{"connection_draining_timeout_sec": 0}],
    ),
    ("modules/azure-appgw", "sku_name"): ([{"sku_name": "WAF_v2"}], [{"sku_name": "Standard_Medium"}]),
    ("modules/azure-appgw", "backend_port"): ([{"backend_port": 443}], [{"backend_port": 0}]),
    ("modules/azure-appgw", "backend_protocol"): ([{"backend_protocol": "Https"}], [{"backend_protocol": "Tcp"}]),
    ("modules/azure-appgw", "ping_interval_seconds"): ([{"ping_interval_seconds": 10}], [{"ping_interval_seconds": 0}]),
    ("modules/azure-appgw", "max_stream_seconds"): ([{"max_stream_seconds": 60}], [{"max_stream_seconds": 0}]),
    ("modules/azure-appgw", "drain_seconds"): ([{"drain_seconds": 0}], [{"drain_seconds": -1}]),
    ("modules/azure-appgw", "request_timeout_seconds"): (
        [{"request_timeout_seconds": 31}],
        [{"request_timeout_seconds": 30}, {"request_timeout_seconds": 86401}],
    ),
    ("modules/azure-appgw", "drain_timeout_seconds"): (
        [{"drain_timeout_seconds": 25}],
        [{"drain_timeout_seconds": 24}, {"drain_timeout_seconds": 3601}],
    ),
    ("examples/cloudflare", "ping_interval_seconds"): ([{"ping_interval_seconds": 49}], [{"ping_interval_seconds": 0}]),
    ("examples/cloudflare", "proxy_read_timeout_seconds"): (
        [{"proxy_read_timeout_seconds": 100}, {"proxy_read_timeout_seconds": 6000}],
        [{"proxy_read_timeout_seconds": 30}, {"proxy_read_timeout_seconds": 6001}],
    ),
}


def _condition_holds(config: Config, variable: str, inputs: dict[str, Any]) -> bool:
    (condition,) = [c for name, c, _ in config.validations() if name == variable]
    assert condition.startswith("${") and condition.endswith("}"), condition
    result = evaluate(condition[2:-1], config.scope(inputs))
    assert isinstance(result, bool), condition
    return result


def test_every_validation_block_has_cases(configs: dict[str, Config]) -> None:
    blocks = {(d, name) for d, c in configs.items() for name, _, _ in c.validations()}
    assert blocks == set(VALIDATION_CASES)
    for directory, config in configs.items():
        names = [name for name, _, _ in config.validations()]
        assert len(names) == len(set(names)), f"{directory}: one validation block per variable"


@pytest.mark.parametrize(("directory", "variable"), sorted(VALIDATION_CASES))
def test_validation_blocks(configs: dict[str, Config], directory: str, variable: str) -> None:
    good, bad = VALIDATION_CASES[directory, variable]
    config = configs[directory]
    assert _condition_holds(config, variable, {}), "the defaults must pass"
    for inputs in good:
        assert _condition_holds(config, variable, inputs), inputs
    for inputs in bad:
        assert not _condition_holds(config, variable, inputs), inputs


def terraform_binary() -> str | None:
    return shutil.which("terraform") or shutil.which("tofu")


def _skip_without_terraform() -> str:
    binary = terraform_binary()
    if binary is None:
        # Allowed under CI too: terraform is a static checker here, not a proxy under test.
        reason = "neither terraform nor tofu is on PATH: skipping Terraform's own checks"
        print(reason)
        pytest.skip(reason)
    return binary


def _dummy(type_expression: str) -> Any:
    """A value of the given variable type, for required inputs that no condition reads."""
    if "list" in type_expression or "set" in type_expression:
        return ["x"]
    if "map" in type_expression or "object" in type_expression:
        return {}
    return {"number": 1, "bool": False}.get(type_expression, "x")


def test_validation_blocks_agree_with_terraform(configs: dict[str, Config], tmp_path: Path) -> None:
    """Terraform itself rejects every bad sample and accepts every good one (`terraform plan` on a
    copy of variables.tf alone: no providers, no network)."""
    binary = _skip_without_terraform()
    env = {**os.environ, "TF_CLI_CONFIG_FILE": os.devnull, "TF_IN_AUTOMATION": "1"}
    samples = [
        (directory, variable, inputs, accepted)
        for (directory, variable), (good, bad) in sorted(VALIDATION_CASES.items())
        for inputs, accepted in [*((i, True) for i in good), *((i, False) for i in bad)]
    ]

    def plan(index: int) -> str | None:
        """None if Terraform agrees with the sample, else what went wrong."""
        directory, variable, inputs, accepted = samples[index]
        config = configs[directory]
        work = tmp_path / str(index)
        work.mkdir()
        shutil.copy(TF_ROOT / directory / "variables.tf", work / "variables.tf")
        required = {n: _dummy(s["type"]) for n, s in config.variables.items() if "default" not in s}
        (work / "inputs.tfvars.json").write_text(json.dumps({**required, **inputs}))
        done = run(
            [binary, "plan", "-input=false", "-no-color", "-lock=false", "-var-file=inputs.tfvars.json"],
            cwd=work,
            env=env,
        )
        if accepted:
            return None if done.returncode == 0 else f"{directory} {inputs} rejected: {done.stderr}"
        (message,) = [m for name, _, m in config.validations() if name == variable]
        if done.returncode != 0 and " ".join(message.split()) in " ".join(done.stderr.split()):
            return None
        return f"{directory} {inputs} not rejected by the {variable} block: {done.stderr}"

    with ThreadPoolExecutor(max_workers=TERRAFORM_PARALLEL) as pool:
        problems = [p for p in pool.map(plan, range(len(samples))) if p]
    assert problems == []


# ------------------------------------------------------------------------------------------------
# Tests: checkov (offline), terraform fmt and validate
# ------------------------------------------------------------------------------------------------

WAIVER = re.compile(r"#checkov:skip=(?P<check>[A-Z0-9_]+):(?P<reason>.*)")


def test_checkov_waivers_carry_a_reason() -> None:
    waivers = [m for p in TF_ROOT.rglob("*.tf") for m in WAIVER.finditer(p.read_text())]
    assert waivers, "the modules waive some checks; the pattern must find them"
    for waiver in waivers:
        assert len(waiver["reason"].split()) >= 6, f"{waiver['check']}: say why it is waived"


def test_checkov_offline() -> None:
    checkov = venv_tool(CHECKOV)
    done = run(
        [str(checkov), "-d", str(TF_ROOT), "--framework", "terraform", "--skip-download", "--quiet", "-o", "json"]
    )
    report = json.loads(done.stdout)
    reports = report if isinstance(report, list) else [report]
    summary = reports[0]["summary"]
    failed = [(c["check_id"], c["resource"], c["file_path"]) for r in reports for c in r["results"]["failed_checks"]]
    assert failed == [], failed
    assert summary["parsing_errors"] == 0
    assert summary["passed"] > 0
    assert done.returncode == 0, done.stderr[-2000:]


def test_terraform_fmt() -> None:
    binary = _skip_without_terraform()
    for target in (TF_ROOT, NEGATIVE_ROOT):
        done = run(
            [binary, "fmt", "-check", "-recursive", "-diff", str(target)],
            env={**os.environ, "TF_CLI_CONFIG_FILE": os.devnull},
        )
        assert done.returncode == 0, f"run `terraform fmt -recursive {target.relative_to(ROOT)}`:\n{done.stdout}"


def _cli_config(tmp_path: Path) -> str | None:
    """A CLI config that installs providers from the mirror in $STREAMKIT_TF_PLUGIN_MIRROR, if set."""
    mirror = os.environ.get(PLUGIN_MIRROR_ENV)
    if not mirror:
        return os.environ.get("TF_CLI_CONFIG_FILE")
    config = tmp_path / "terraformrc"
    config.write_text(f'provider_installation {{\n  filesystem_mirror {{\n    path = "{mirror}"\n  }}\n}}\n')
    return str(config)


@pytest.mark.parametrize("directory", SHIPPED)
def test_terraform_validate(directory: str, tmp_path: Path) -> None:
    """`terraform validate` on a copy laid out as the README tells users: example files next to
    modules/streamkit-<module>. Needs the providers: without network or a mirror
    ($STREAMKIT_TF_PLUGIN_MIRROR) `terraform init` cannot install them, and the test says so."""
    binary = _skip_without_terraform()
    work = tmp_path / "root"
    shutil.copytree(TF_ROOT / directory, work)
    if directory.startswith("examples/"):
        for module in MODULES:
            shutil.copytree(TF_ROOT / module, work / "modules" / f"streamkit-{Path(module).name}")
    env = {**os.environ, "TF_IN_AUTOMATION": "1"}
    cli_config = _cli_config(tmp_path)
    if cli_config:
        env["TF_CLI_CONFIG_FILE"] = cli_config
    init = run([binary, "init", "-backend=false", "-input=false", "-no-color"], cwd=work, env=env)
    if init.returncode != 0:
        errors = [line.strip() for line in init.stderr.splitlines() if line.strip().startswith("Error:")]
        reason = f"terraform init cannot install the providers here (set {PLUGIN_MIRROR_ENV}): {errors[:1]}"
        print(reason)
        pytest.skip(reason)
    done = run([binary, "validate", "-no-color"], cwd=work, env=env)
    assert done.returncode == 0, done.stdout + done.stderr


# ------------------------------------------------------------------------------------------------
# Tests: the condition evaluator itself (streamkit/lint/hcl.py)
# ------------------------------------------------------------------------------------------------

SCOPE: dict[str, dict[str, Any]] = {
    "var": {"ping": 15, "idle": 60, "proto": "HTTP", "on": True},
    "local": {"margin": 15},
}


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("var.idle > 2 * var.ping", True),
        ("var.idle > 4 * var.ping", False),
        ("var.idle >= 4 * var.ping", True),
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("10 - 4 - 3", 3),
        ("var.idle / 4 == var.ping", True),
        ("var.idle + local.margin", 75),
        ("-var.ping < 0", True),
        ('contains(["HTTP", "HTTPS"], var.proto)', True),
        ('contains(["HTTP2", "GRPC"], var.proto)', False),
        ('var.proto == "HTTP" && var.idle <= 4000', True),
        ('var.proto != "HTTP" || var.idle < 10', False),
        ("true || 1 > 2 && false", True),
        ("!var.on", False),
        ("max(var.ping, 20, 3)", 20),
        ("min(var.ping, 20)", 15),
        ('"a \\"quoted\\" word"', 'a "quoted" word'),
        ("[1, 2, 3]", [1, 2, 3]),
        ("1.5 * 2", 3.0),
    ],
)
def test_evaluator(expression: str, expected: Any) -> None:
    assert evaluate(expression, SCOPE) == expected


@pytest.mark.parametrize(
    "expression",
    [
        "var.idle > 2 ? 1 : 0",  # conditional expression: outside the subset
        "length(var.proto)",  # unknown function
        "var.missing > 1",  # unknown variable
        "each.value",  # unknown reference root
        '"${var.proto}-x"',  # template
        "var.idle > ",  # incomplete
        "var.idle 2",  # trailing token
        "var.proto > 1",  # comparing a string by order
        "var.idle && true",  # a number used as a bool
    ],
)
def test_evaluator_rejects_what_it_does_not_know(expression: str) -> None:
    with pytest.raises(Unsupported):
        evaluate(expression, SCOPE)


def test_resolve_handles_hcl2_serialization() -> None:
    assert resolve("${var.idle}", SCOPE) == 60
    assert resolve("${var.proto}-app", SCOPE) == "${var.proto}-app"
    assert resolve("${var.proto}-${var.idle}", SCOPE) == "${var.proto}-${var.idle}"
    assert resolve({"a": ["${local.margin}", 2]}, SCOPE) == {"a": [15, 2]}


def test_file_headers_name_existing_tests() -> None:
    """Every copyable file says which test proves it, and that test exists."""
    named = re.compile(r"tests/static/test_terraform\.py::(\w+)")
    for path in TF_ROOT.rglob("*.tf"):
        tests = named.findall(path.read_text())
        assert tests, f"{path.relative_to(ROOT)}: no 'Proven by' test in the header"
        for test in tests:
            assert callable(globals().get(test)), f"{path.relative_to(ROOT)} names a missing test {test}"


if __name__ == "__main__":
    write_readme_tables()
