"""Kubernetes kinds beyond the core ones in `streamkit.lint.k8s`, each in its own module.

Every module exposes `check_documents(docs, reports, budget)` over all manifests of one lint run
(some kinds refer to others: a Traefik IngressRoute names its Middlewares). `k8s.check_documents`
runs them after its own kinds.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from streamkit.lint.findings import Budget, Report
    from streamkit.lint.k8s import Doc

Checker = Callable[[list["Doc"], dict[Path, "Report"], "Budget"], None]


def checkers() -> list[Checker]:
    from streamkit.lint.kinds import aigateway, aws, istio, traefik_crd

    return [aigateway.check_documents, aws.check_documents, istio.check_documents, traefik_crd.check_documents]
