"""Run with `pulumi preview --policy-pack policy` (or `pulumi up --policy-pack policy`)."""

from pulumi_policy import PolicyPack
from rules import POLICIES

PolicyPack(name="runtime-defense", policies=POLICIES)
