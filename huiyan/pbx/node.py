"""A PBX node is a value: which Asterisk to talk to and how. Nothing in huiyan assumes there is only one."""

from __future__ import annotations

from dataclasses import dataclass

from huiyan.config.settings import Settings


@dataclass(frozen=True, slots=True)
class PbxNode:
    name: str
    ami_host: str
    ami_port: int
    ami_user: str
    ami_secret: str
    sip_host: str
    sip_port: int

    @classmethod
    def from_settings(cls, settings: Settings) -> "PbxNode":
        return cls(
            name=settings.node_name,
            ami_host="127.0.0.1",
            ami_port=settings.ami_port,
            ami_user="huiyan",
            ami_secret=settings.secret("ami"),
            sip_host=settings.sip_host,
            sip_port=settings.sip_port,
        )
