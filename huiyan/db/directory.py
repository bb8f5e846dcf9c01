"""The SIP endpoints that pjsip.conf is rendered from, derived from active users and devices."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from huiyan.config.model import CallerClass, EndpointSpec
from huiyan.db.models import STAFF_ROLES, Device, DeviceKind, User

SOFTPHONE_VIDEO_STREAMS = 16


def device_endpoint(device: Device) -> EndpointSpec:
    # A kiosk stands in a public hall: whoever uses it is a citizen and may only reach the services.
    caller_class: CallerClass = "citizen" if device.kind == DeviceKind.KIOSK else "terminal"
    return EndpointSpec(
        name=device.extension,
        password=device.sip_password,
        caller_class=caller_class,
        webrtc=device.kind == DeviceKind.BROWSER,
        display_name=device.display_name,
        # A SIP client that takes several video streams (an SFU room sends it one per participant); one
        # that cannot declines the extra streams of the re-INVITE (RFC 3264) and still has its own.
        max_video_streams=SOFTPHONE_VIDEO_STREAMS if device.kind == DeviceKind.SOFTPHONE else 1,
    )


def user_endpoint(user: User) -> EndpointSpec:
    return EndpointSpec(
        name=user.extension,
        password=user.sip_password,
        caller_class="staff",
        webrtc=True,
        display_name=user.display_name or user.username,
    )


def endpoints(session: Session) -> list[EndpointSpec]:
    """Every SIP endpoint the PBX should have, ordered by extension."""
    specs = [
        user_endpoint(u)
        for u in session.scalars(select(User).where(User.active.is_(True)))
        if u.role in STAFF_ROLES
    ]
    specs += [device_endpoint(d) for d in session.scalars(select(Device).where(Device.active.is_(True)))]
    return sorted(specs, key=lambda s: s.name)
