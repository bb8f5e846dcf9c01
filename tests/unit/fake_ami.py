"""A fake Asterisk AMI server on localhost: real TCP and AMI framing, a tiny channel/bridge model, no Asterisk."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from huiyan.pbx.node import PbxNode

EOL = "\r\n"
Message = dict[str, Any]  # header -> value (a list value is sent as repeated headers)
Handler = Callable[["FakeAmi", Message], "list[Message] | Awaitable[list[Message]]"]

SNAPSHOT_KEYS = (
    "Channel", "ChannelState", "ChannelStateDesc", "CallerIDNum", "CallerIDName", "ConnectedLineNum",
    "ConnectedLineName", "Language", "AccountCode", "Context", "Exten", "Priority", "Uniqueid", "Linkedid",
)
STATE_CODES = {"Down": "0", "Rsrvd": "1", "OffHook": "2", "Dialing": "3", "Ring": "4", "Ringing": "5", "Up": "6",
               "Busy": "7"}


def encode(message: Message) -> bytes:
    lines: list[str] = []
    for key, value in message.items():
        for v in value if isinstance(value, list) else [value]:
            lines.append(f"{key}: {v}")
    return (EOL.join(lines) + EOL + EOL).encode("utf-8")


def _get(message: Message, key: str, default: str = "") -> str:
    lowered = key.lower()
    return next((v for k, v in message.items() if k.lower() == lowered), default)


@dataclass(eq=False)
class _Session:
    writer: asyncio.StreamWriter
    authed: bool = False
    events: bool = True

    def send(self, message: Message) -> None:
        if not self.writer.is_closing():
            self.writer.write(encode(message))


@dataclass
class FakeChannel:
    uniqueid: str
    name: str
    state: str = "Ring"
    caller_id_num: str = ""
    caller_id_name: str = ""
    context: str = "default"
    exten: str = "s"
    linkedid: str = ""
    bridge_id: str = ""

    def snapshot(self) -> Message:
        return {
            "Channel": self.name,
            "ChannelState": STATE_CODES.get(self.state, "0"),
            "ChannelStateDesc": self.state,
            "CallerIDNum": self.caller_id_num or "<unknown>",
            "CallerIDName": self.caller_id_name or "<unknown>",
            "ConnectedLineNum": "<unknown>",
            "ConnectedLineName": "<unknown>",
            "Language": "en",
            "AccountCode": "",
            "Context": self.context,
            "Exten": self.exten,
            "Priority": "1",
            "Uniqueid": self.uniqueid,
            "Linkedid": self.linkedid or self.uniqueid,
        }


@dataclass
class FakeBridge:
    id: str
    type: str = "basic"
    technology: str = "simple_bridge"
    channels: list[str] = field(default_factory=list)

    def snapshot(self) -> Message:
        return {
            "BridgeUniqueid": self.id,
            "BridgeType": self.type,
            "BridgeTechnology": self.technology,
            "BridgeCreator": "<unknown>",
            "BridgeName": "<unknown>",
            "BridgeNumChannels": str(len(self.channels)),
            "BridgeVideoSourceMode": "none",
        }


class FakeAmi:
    """Speaks enough AMI for the client and tracker: Login, Ping, Logoff, Command, CoreShowChannels,
    BridgeList, BridgeInfo, Originate, Hangup; anything else answers Invalid/unknown command.

    Knobs for failure tests: `silent` (action names never answered), `mute` (answer nothing),
    `reject` (accept TCP then close at once), `stop()`/`start()` (Asterisk down/up on the same port).
    """

    def __init__(self, user: str = "huiyan", secret: str = "s3cret",
                 banner: str = "Asterisk Call Manager/9.0.0") -> None:
        self.users = {user: secret}
        self.user, self.secret = user, secret
        self.banner = banner
        self.host = "127.0.0.1"
        self.port = 0
        self.channels: dict[str, FakeChannel] = {}
        self.bridges: dict[str, FakeBridge] = {}
        self.handlers: dict[str, Handler] = {}
        self.commands: dict[str, str] = {"core show uptime": "System uptime: 1 minute, 2 seconds"}
        self.silent: set[str] = set()
        self.mute = False
        self.reject = False
        self.requests: list[Message] = []
        self.accepts: list[float] = []
        self.logins = 0
        self._server: asyncio.Server | None = None
        self._sessions: set[_Session] = set()
        self._ids = itertools.count(1)
        self._tasks: set[asyncio.Task[Any]] = set()

    # ---- lifecycle --------------------------------------------------------------------------------

    async def start(self) -> FakeAmi:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        """Asterisk goes away: no listener, every session closed."""
        if self._server is not None:
            self._server.close()
        await self.drop_sessions()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def drop_sessions(self) -> None:
        for session in list(self._sessions):
            session.writer.close()
        self._sessions.clear()
        await asyncio.sleep(0)

    async def __aenter__(self) -> FakeAmi:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
        for task in list(self._tasks):
            task.cancel()

    def node(self, name: str = "pbx1", secret: str | None = None) -> PbxNode:
        return PbxNode(
            name=name, ami_host=self.host, ami_port=self.port, ami_user=self.user,
            ami_secret=self.secret if secret is None else secret, sip_host=self.host, sip_port=5060,
        )

    def handle(self, action: str, handler: Handler) -> None:
        """Answer `action` with `handler(server, request) -> [messages]` (ActionID is added for you)."""
        self.handlers[action.lower()] = handler

    @property
    def session_count(self) -> int:
        return sum(1 for s in self._sessions if s.authed)

    def actions(self, name: str) -> list[Message]:
        return [r for r in self.requests if _get(r, "Action").lower() == name.lower()]

    # ---- sending ----------------------------------------------------------------------------------

    def emit(self, event: str, **fields: Any) -> None:
        """Send an event to every logged-in session (like Asterisk's manager_event)."""
        message: Message = {"Event": event, "Privilege": "call,all", **fields}
        for session in list(self._sessions):
            if session.authed and session.events:
                session.send(message)

    async def emit_split(self, event: str, cut: int, pause: float = 0.05, **fields: Any) -> None:
        """Send one event in two TCP writes cut at byte `cut` (to split a multi-byte character)."""
        data = encode({"Event": event, "Privilege": "call,all", **fields})
        for session in list(self._sessions):
            if session.authed:
                session.writer.write(data[:cut])
                await session.writer.drain()
                await asyncio.sleep(pause)
                session.writer.write(data[cut:])
                await session.writer.drain()

    # ---- channel / bridge model (each change emits the events Asterisk would) ---------------------

    def uid(self) -> str:
        return f"1700000000.{next(self._ids)}"

    def new_channel(self, name: str, *, state: str = "Ring", uniqueid: str | None = None, quiet: bool = False,
                    **attrs: Any) -> FakeChannel:
        channel = FakeChannel(uniqueid=uniqueid or self.uid(), name=name, state=state, **attrs)
        self.channels[channel.uniqueid] = channel
        if not quiet:
            self.emit("Newchannel", **channel.snapshot())
        return channel

    def set_state(self, uniqueid: str, state: str, *, quiet: bool = False) -> None:
        channel = self.channels[uniqueid]
        channel.state = state
        if not quiet:
            self.emit("Newstate", **channel.snapshot())

    def hangup(self, uniqueid: str, *, cause: int = 16, cause_txt: str = "Normal Clearing",
               quiet: bool = False) -> None:
        channel = self.channels[uniqueid]
        if channel.bridge_id:
            self.leave_bridge(channel.bridge_id, uniqueid, quiet=quiet)
        del self.channels[uniqueid]
        if not quiet:
            self.emit("Hangup", **channel.snapshot(), Cause=str(cause), **{"Cause-txt": cause_txt})

    def create_bridge(self, *, bridge_id: str | None = None, type: str = "basic", technology: str = "simple_bridge",
                      quiet: bool = False) -> FakeBridge:
        bridge = FakeBridge(id=bridge_id or f"bridge-{next(self._ids)}", type=type, technology=technology)
        self.bridges[bridge.id] = bridge
        if not quiet:
            self.emit("BridgeCreate", **bridge.snapshot())
        return bridge

    def enter_bridge(self, bridge_id: str, uniqueid: str, *, quiet: bool = False) -> None:
        bridge, channel = self.bridges[bridge_id], self.channels[uniqueid]
        bridge.channels.append(uniqueid)
        channel.bridge_id = bridge_id
        if not quiet:
            self.emit("BridgeEnter", **bridge.snapshot(), **channel.snapshot())

    def leave_bridge(self, bridge_id: str, uniqueid: str, *, quiet: bool = False) -> None:
        bridge, channel = self.bridges[bridge_id], self.channels[uniqueid]
        bridge.channels.remove(uniqueid)
        channel.bridge_id = ""
        if not quiet:
            self.emit("BridgeLeave", **bridge.snapshot(), **channel.snapshot())

    def destroy_bridge(self, bridge_id: str, *, quiet: bool = False) -> None:
        bridge = self.bridges[bridge_id]
        for uniqueid in list(bridge.channels):
            self.leave_bridge(bridge_id, uniqueid, quiet=quiet)
        del self.bridges[bridge_id]
        if not quiet:
            self.emit("BridgeDestroy", **bridge.snapshot())

    # ---- protocol ---------------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepts.append(asyncio.get_running_loop().time())
        if self.reject:
            writer.close()
            return
        session = _Session(writer)
        self._sessions.add(session)
        writer.write(f"{self.banner}{EOL}".encode())
        buffer = b""
        try:
            while not writer.is_closing():
                data = await reader.read(4096)
                if not data:
                    break
                buffer += data
                while b"\r\n\r\n" in buffer:
                    raw, buffer = buffer.split(b"\r\n\r\n", 1)
                    await self._handle(session, self._parse(raw.decode("utf-8")))
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            self._sessions.discard(session)
            writer.close()

    @staticmethod
    def _parse(raw: str) -> Message:
        message: Message = {}
        for line in raw.split(EOL):
            key, sep, value = line.partition(":")
            if not sep:
                continue
            key, value = key.strip(), value.strip()
            if key in message:
                old = message[key]
                message[key] = (old if isinstance(old, list) else [old]) + [value]
            else:
                message[key] = value
        return message

    async def _handle(self, session: _Session, request: Message) -> None:
        self.requests.append(request)
        if self.mute:
            return
        action = _get(request, "Action").lower()
        if action in {s.lower() for s in self.silent}:
            return
        action_id = _get(request, "ActionID")
        tag: Message = {"ActionID": action_id} if action_id else {}
        if action == "login":
            if self.users.get(_get(request, "Username")) == _get(request, "Secret"):
                session.authed = True
                session.events = _get(request, "Events", "on").lower() not in ("off", "no")
                self.logins += 1
                session.send({"Response": "Success", **tag, "Message": "Authentication accepted"})
                if session.events:
                    session.send({"Event": "FullyBooted", "Privilege": "system,all", "Uptime": "61",
                                  "LastReload": "61", "Status": "Fully Booted"})
            else:
                # Asterisk answers and then drops the session.
                session.send({"Response": "Error", **tag, "Message": "Authentication failed"})
                session.writer.close()
            return
        if not session.authed:
            session.send({"Response": "Error", **tag, "Message": "Permission denied"})
            return
        handler = self.handlers.get(action) or getattr(self, f"_action_{action}", None)
        if handler is None:
            name = _get(request, "Action")
            replies = [{"Response": "Error", "Message": f"Invalid/unknown command: {name}. "
                        "Use Action: ListCommands to show available commands."}]
        elif action in self.handlers:
            result = handler(self, request)
            replies = await result if isinstance(result, Awaitable) else result
        else:
            replies = handler(request)
        for reply in replies:
            session.send({**reply, **tag})
        if action == "logoff":
            session.writer.close()

    @staticmethod
    def _list(start_message: str, items: list[Message], complete: str, **complete_fields: Any) -> list[Message]:
        return [
            {"Response": "Success", "EventList": "start", "Message": start_message},
            *items,
            {"Event": complete, "EventList": "Complete", "ListItems": str(len(items)), **complete_fields},
        ]

    def _action_ping(self, request: Message) -> list[Message]:
        return [{"Response": "Success", "Ping": "Pong", "Timestamp": "1700000000.000000"}]

    def _action_logoff(self, request: Message) -> list[Message]:
        return [{"Response": "Goodbye", "Message": "Thanks for all the fish."}]

    def _action_command(self, request: Message) -> list[Message]:
        cli = _get(request, "Command")
        if cli not in self.commands:
            return [{"Response": "Error", "Message": "Command output follows",
                     "Output": f"No such command '{cli}' (type 'core show help {cli}' for other possible commands)"}]
        return [{"Response": "Success", "Message": "Command output follows", "Output": self.commands[cli].split("\n")}]

    def _action_coreshowchannels(self, request: Message) -> list[Message]:
        items = [
            {"Event": "CoreShowChannel", **c.snapshot(), "BridgeId": c.bridge_id, "Application": "Dial",
             "ApplicationData": "", "Duration": "00:00:05"}
            for c in self.channels.values()
        ]
        return self._list("Channels will follow", items, "CoreShowChannelsComplete")

    def _action_bridgelist(self, request: Message) -> list[Message]:
        items = [{"Event": "BridgeListItem", **b.snapshot()} for b in self.bridges.values()]
        return self._list("Bridge listing will follow", items, "BridgeListComplete")

    def _action_bridgeinfo(self, request: Message) -> list[Message]:
        bridge = self.bridges.get(_get(request, "BridgeUniqueid"))
        if bridge is None:
            return [{"Response": "Error", "Message": f"Bridge {_get(request, 'BridgeUniqueid')} not found"}]
        items = [{"Event": "BridgeInfoChannel", **self.channels[u].snapshot()} for u in bridge.channels]
        return self._list("Bridge channel listing will follow", items, "BridgeInfoComplete", **bridge.snapshot())

    def _action_confbridgelist(self, request: Message) -> list[Message]:
        return [{"Response": "Error", "Message": "No active conferences."}]

    def _action_hangup(self, request: Message) -> list[Message]:
        name = _get(request, "Channel")
        channel = next((c for c in self.channels.values() if c.name == name), None)
        if channel is None:
            return [{"Response": "Error", "Message": "No such channel"}]
        self.hangup(channel.uniqueid)
        return [{"Response": "Success", "Message": "Channel Hungup"}]

    def _action_originate(self, request: Message) -> list[Message]:
        """Async Originate: queued now, OriginateResponse (same ActionID) a little later, like Asterisk."""
        action_id = _get(request, "ActionID")
        channel = self.new_channel(_get(request, "Channel") + "-00000001", state="Down",
                                   uniqueid=_get(request, "ChannelId") or None)

        async def answer_later() -> None:
            await asyncio.sleep(0.05)
            self.set_state(channel.uniqueid, "Up")
            self.emit("OriginateResponse", ActionID=action_id, Response="Success", Channel=channel.name,
                      Context=_get(request, "Context"), Exten=_get(request, "Exten"), Reason="4",
                      Uniqueid=channel.uniqueid, CallerIDNum="<unknown>", CallerIDName="<unknown>")

        task = asyncio.get_running_loop().create_task(answer_later())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return [{"Response": "Success", "Message": "Originate successfully queued"}]
