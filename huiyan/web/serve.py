"""Serves the built browser clients (see build.py) from huiyan's own HTTP server: no CDN, nothing else.

Pages: /call (citizen, phone-first; `?service=12348&option=1&lang=en` or `?entry=<slug>` (a QR entry point)
preselect), /agent (agent console), /wall (supervisor wall), /rooms (meeting and dispatch console),
/checkin (the community-correction subject's check-in page);
their scripts and styles under /web/assets/. All public: they are static files, every action they take
goes through the API with its own access rules. Files are revalidated on each load (ETag), so a new
build is picked up at once.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.responses import FileResponse, RedirectResponse

from huiyan.api.access import PUBLIC

router = APIRouter(tags=["web"], dependencies=[Depends(PUBLIC)])

NOT_BUILT = "the browser clients are not built here: run `huiyan setup`"
TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".map": "application/json",
         ".html": "text/html; charset=utf-8", ".svg": "image/svg+xml", ".png": "image/png"}
HEADERS = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
PAGE_HEADERS = {
    **HEADERS,
    # Only our own scripts, styles, API and the PBX's SIP WebSocket; camera and microphone for this origin only.
    "Content-Security-Policy": "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data: blob:; "
                               "media-src 'self' blob:; style-src 'self'; script-src 'self'; frame-ancestors 'none'",
    "Permissions-Policy": "camera=(self), microphone=(self)",
    "Referrer-Policy": "no-referrer",
}


def web_dir(request: Request) -> Path:
    return Path(request.app.state.huiyan.settings.data_dir) / "web"


def _file(root: Path, rel: str, headers: dict[str, str]) -> FileResponse:
    if not (root / "BUILD").is_file():
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, NOT_BUILT)
    base = root.resolve()
    path = (base / rel).resolve()
    if not path.is_relative_to(base) or not path.is_file() or path.name == "BUILD":
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no such file: {rel}")
    return FileResponse(path, media_type=TYPES.get(path.suffix, "application/octet-stream"), headers=headers)


@router.get("/", include_in_schema=False)
def root() -> RedirectResponse:
    return RedirectResponse("/call", status.HTTP_307_TEMPORARY_REDIRECT)


@router.get("/call", response_class=FileResponse, summary="Citizen video-call page (市民视频呼叫)")
def citizen_page(request: Request) -> FileResponse:
    """`?service=<number>&option=<digit>` or `?entry=<slug>` (a QR entry point) preselects a service;
    `lang=en` English."""
    return _file(web_dir(request), "call.html", PAGE_HEADERS)


@router.get("/agent", response_class=FileResponse, summary="Agent console (坐席工作台)")
def agent_page(request: Request) -> FileResponse:
    return _file(web_dir(request), "agent.html", PAGE_HEADERS)


@router.get("/wall", response_class=FileResponse, summary="Supervisor wall (班长监控墙)")
def wall_page(request: Request) -> FileResponse:
    """Queues, waiting calls, live calls and agents live; listen / whisper / barge (supervisors, admins)."""
    return _file(web_dir(request), "wall.html", PAGE_HEADERS)


@router.get("/rooms", response_class=FileResponse, summary="Meeting and dispatch console (会议与指挥调度)")
def rooms_page(request: Request) -> FileResponse:
    """Rooms, live participants and meeting control, joining from the browser, one-click dispatch.
    `?room=<id>` opens a room."""
    return _file(web_dir(request), "rooms.html", PAGE_HEADERS)


@router.get("/admin", response_class=FileResponse, summary="Admin console: directory (管理控制台)")
def admin_page(request: Request) -> FileResponse:
    """Organisation tree, users and roles, devices (presence, CSV import, allocation plan), queues, rooms."""
    return _file(web_dir(request), "admin.html", PAGE_HEADERS)


@router.get("/recordings", response_class=FileResponse, summary="Recordings: search, play, download (录音录像)")
def recordings_page(request: Request) -> FileResponse:
    return _file(web_dir(request), "recordings.html", PAGE_HEADERS)


@router.get("/reports", response_class=FileResponse, summary="Reports with charts (统计报表)")
def reports_page(request: Request) -> FileResponse:
    """Hotline per day (answered/abandoned, service level, abandon rate, per organisation), check-ins per month."""
    return _file(web_dir(request), "reports.html", PAGE_HEADERS)


@router.get("/checkin", response_class=FileResponse, summary="Subject check-in page (社区矫正视频点验)")
def checkin_page(request: Request) -> FileResponse:
    """Phone-first: subject number + PIN or a one-time code (`?code=` prefills it), geolocation, the recorded
    video call with the liveness digits, snapshots, the outcome. `lang=en` English."""
    headers = {**PAGE_HEADERS, "Permissions-Policy": "camera=(self), microphone=(self), geolocation=(self)"}
    return _file(web_dir(request), "checkin.html", headers)


@router.get("/web/{path:path}", response_class=FileResponse, summary="Static files of the browser clients")
def web_file(path: str, request: Request) -> FileResponse:
    return _file(web_dir(request), path, HEADERS)
