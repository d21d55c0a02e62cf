"""Name -> policy class, so the CLI, configs and the server share one list of methods."""

from __future__ import annotations

from tandem.policies.base import Policy

POLICIES: dict[str, type[Policy]] = {}


def register(cls: type[Policy]) -> type[Policy]:
    if cls.name in POLICIES and POLICIES[cls.name] is not cls:
        raise ValueError(f"a policy named {cls.name!r} is already registered")
    POLICIES[cls.name] = cls
    return cls


def get_policy(name: str) -> type[Policy]:
    try:
        return POLICIES[name]
    except KeyError:
        raise ValueError(f"unknown method {name!r}; choose one of: {', '.join(POLICIES)}") from None
