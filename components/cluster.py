"""The one explicit Kubernetes provider every resource in the stack is deployed through."""

from __future__ import annotations

import pulumi_kubernetes as k8s

from components.config import KubernetesTarget


def kubernetes_provider(target: KubernetesTarget) -> k8s.Provider:
    """A provider bound to the configured context or kubeconfig, never the ambient default."""
    return k8s.Provider("kubernetes", context=target.context, kubeconfig=target.kubeconfig)
