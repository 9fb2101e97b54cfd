"""Configuration of the cluster the stack deploys to: ``kubeContext``, ``kubeconfig``."""

from __future__ import annotations

import os
from dataclasses import dataclass

import pulumi

from components.config_reader import ConfigReader

KEYS = ("kubeContext", "kubeconfig")


@dataclass(frozen=True)
class KubernetesTarget:
    """Which cluster the one explicit Kubernetes provider talks to."""

    context: str | None
    kubeconfig: pulumi.Output[str] | None  # a path or the file's contents, always secret


def read_kubernetes(r: ConfigReader) -> KubernetesTarget:
    context = r.raw("kubeContext")
    if context is not None and not context.strip():
        r.problem("kubeContext", context, "must name a context in your kubeconfig, e.g. minikube")
        context = None
    kubeconfig_text = r.raw("kubeconfig")
    kubeconfig = None
    if kubeconfig_text is not None:
        is_contents = "\n" in kubeconfig_text or kubeconfig_text.lstrip().startswith(("apiVersion", "{"))
        if not is_contents and not os.path.exists(os.path.expanduser(kubeconfig_text)):
            r.problem("kubeconfig", kubeconfig_text, "must be the path of an existing kubeconfig file or its contents")
        else:
            path_or_contents = kubeconfig_text if is_contents else os.path.expanduser(kubeconfig_text)
            kubeconfig = pulumi.Output.secret(path_or_contents)
    return KubernetesTarget(context=context, kubeconfig=kubeconfig)
