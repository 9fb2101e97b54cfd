"""Which pods read a Secret (tests/support/references.py), on pod specs written here: every
way a pod can read one counts, a projected volume's secret source included."""

from references import secrets_mounted, secrets_read
from rendering import Obj, Workload


def pod(spec):
    owner = Obj("test", {"kind": "Pod", "metadata": {"name": "p", "namespace": "apps"}, "spec": spec})
    return Workload(owner, spec, {}, 1)


def test_every_way_a_pod_reads_a_secret_counts():
    spec = {
        "volumes": [
            {"name": "a", "secret": {"secretName": "mounted"}},
            {"name": "b", "projected": {"sources": [{"secret": {"name": "projected"}}, {"configMap": {"name": "cm"}}]}},
            {"name": "c", "configMap": {"name": "not-a-secret"}},
        ],
        "initContainers": [{"name": "init", "envFrom": [{"secretRef": {"name": "init-env-from"}}]}],
        "containers": [
            {
                "name": "c",
                "envFrom": [{"secretRef": {"name": "env-from"}}, {"configMapRef": {"name": "cm-env"}}],
                "env": [
                    {"name": "X", "valueFrom": {"secretKeyRef": {"name": "env-key", "key": "k"}}},
                    {"name": "Y", "valueFrom": {"configMapKeyRef": {"name": "cm-key", "key": "k"}}},
                    {"name": "Z", "value": "plain"},
                ],
            }
        ],
    }
    assert secrets_mounted(spec) == {"mounted", "projected"}
    assert secrets_read(pod(spec)) == {"mounted", "projected", "init-env-from", "env-from", "env-key"}
