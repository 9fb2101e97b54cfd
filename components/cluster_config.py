"""Configuration of the cluster the stack deploys to: ``kubeContext``, ``kubeconfig``."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import pulumi

from components.config_reader import ConfigReader

KEYS = ("kubeContext", "kubeconfig")


@dataclass(frozen=True)
class KubernetesTarget:
    """Which cluster the one explicit Kubernetes provider talks to."""

    context: str | None
    kubeconfig: pulumi.Output[str] | None  # a path or the file's contents, always secret
    # The same `kubeconfig` key for the program's own reading of the API server's address
    # (components/grafana_url.py): its path, or its contents (never shown).
    kubeconfig_path: str | None = None
    kubeconfig_contents: str | None = field(default=None, repr=False)
    kubeconfig_problem: bool = False  # the key is set but unusable (reported)


def read_kubernetes(r: ConfigReader) -> KubernetesTarget:
    context = r.raw("kubeContext")
    if context is not None and not context.strip():
        r.problem("kubeContext", context, "must name a context in your kubeconfig, e.g. minikube")
        context = None
    kubeconfig_text = r.raw("kubeconfig")
    if kubeconfig_text is None:
        return KubernetesTarget(context=context, kubeconfig=None)
    is_contents = "\n" in kubeconfig_text or kubeconfig_text.lstrip().startswith(("apiVersion", "{"))
    path = None if is_contents else os.path.expanduser(kubeconfig_text)
    if path is not None and not os.path.exists(path):
        r.problem(
            "kubeconfig",
            kubeconfig_text,
            "must be the path of an existing kubeconfig file or its contents; without it the stack uses "
            "$KUBECONFIG, else ~/.kube/config: `pulumi config rm kubeconfig`",
        )
        return KubernetesTarget(context=context, kubeconfig=None, kubeconfig_problem=True)
    return KubernetesTarget(
        context=context,
        kubeconfig=pulumi.Output.secret(path if path is not None else kubeconfig_text),
        kubeconfig_path=path,
        kubeconfig_contents=kubeconfig_text if path is None else None,
    )
