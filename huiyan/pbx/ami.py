"""AMI client for one PBX node: login, actions with timeouts, typed events, reconnect with backoff."""

from __future__ import annotations

import asyncio
import codecs
import inspect
import logging
from collections.abc import Sequence, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from panoramisk import Manager
from panoramisk.actions import Action
from panoramisk.ami_protocol import AMIProtocol
from panoramisk.message import Message

from huiyan.bus import EventBus
from huiyan.pbx.events import (
    AmiConnected,
    AmiDisconnected,
    AmiEvent,
    ClientEvent,
    parse_event,
)
from huiyan.pbx.node import PbxNode

__all__ = [
    "AmiClient",
    "AmiResponse",
    "AmiSubscription",
    "AmiError",
    "AmiConnectError",
    "AmiAuthError",
    "AmiNotConnected",
    "AmiTimeout",
    "AmiActionError",
    "backoff_delays",
]

log = logging.getLogger(__name__)

EventCallback = Callable[[ClientEvent], Any]
E = TypeVar("E", bound=AmiEvent)


class AmiError(Exception):
    """Base class of every AMI failure."""


class AmiConnectError(AmiError):
    """The node's AMI port could not be reached, or the connection closed during login."""


class AmiAuthError(AmiError):
    """Asterisk refused our Login (wrong user or secret, or an ACL in manager.conf)."""


class AmiNotConnected(AmiError):
    """No live AMI connection: the action was not sent, or the connection dropped before it was answered."""


class AmiTimeout(AmiError, TimeoutError):
    """No answer in time. The action may still have run on Asterisk."""


class AmiActionError(AmiError):
    """Asterisk answered `Response: Error`; `str(err)` is Asterisk's Message."""

    def __init__(self, message: str, response: AmiResponse) -> None:
        super().__init__(message)
        self.response = response


@dataclass(frozen=True, slots=True)
class AmiResponse:
    """The `Response:` message to one action. Repeated headers (e.g. Output) are joined by newlines."""

    node: str
    action: str
    fields: dict[str, str] = field(hash=False)

    def get(self, key: str, default: str = "") -> str:
        value = self.fields.get(key)
        if value is not None:
            return value
        lowered = key.lower()
        return next((v for k, v in self.fields.items() if k.lower() == lowered), default)

    def __getitem__(self, key: str) -> str:
        sentinel = "\0missing"
        value = self.get(key, sentinel)
        if value is sentinel:
            raise KeyError(key)
        return value

    @property
    def response(self) -> str:
        return self.get("Response")

    @property
    def message(self) -> str:
        return self.get("Message")

    @property
    def success(self) -> bool:
        return self.response.lower() in ("success", "follows", "goodbye")


def backoff_delays(initial: float, maximum: float, factor: float = 2.0) -> Iterator[float]:
    """initial, initial*factor, ... capped at maximum, forever."""
    delay = initial
    while True:
        yield min(delay, maximum)
        delay = min(delay * factor, maximum)


def _flatten(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "\n".join(str(v) for v in value)
    return "" if value is None else str(value)


def _headers(message: Mapping[str, Any]) -> dict[str, str]:
    # panoramisk stores a response body as a pseudo-header named "content" in every Message; it is not AMI.
    return {str(k): _flatten(v) for k, v in message.items() if k != "content"}


def _header_value(key: str, value: Any) -> str:
    text = ("true" if value else "false") if isinstance(value, bool) else str(value)
    # A CR/LF would let text from a web form (a caller name, a variable) inject extra AMI headers or actions.
    if "\r" in text or "\n" in text:
        raise ValueError(f"AMI header {key!r} must not contain CR or LF: {text!r}")
    return text


def _encode_fields(fields: Mapping[str, Any]) -> dict[str, str | list[str]]:
    out: dict[str, str | list[str]] = {}
    for key, value in fields.items():
        if value is None:
            continue
        if isinstance(value, Mapping):
            # Originate/Setvar style: Variable={"A": "1"} -> repeated "Variable: A=1" headers.
            out[key] = [_header_value(key, f"{k}={v}") for k, v in value.items()]
        elif isinstance(value, (list, tuple)):
            out[key] = [_header_value(key, v) for v in value]
        else:
            out[key] = _header_value(key, value)
    return out


class _Protocol(AMIProtocol):
    """panoramisk's protocol with two fixes: UTF-8 split across TCP reads, and loss reported with its origin."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        # panoramisk decodes each chunk with errors='ignore', silently dropping a multi-byte character
        # (a Chinese caller name) cut by a TCP segment boundary; decode incrementally instead.
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def data_received(self, data: bytes) -> None:
        text = self._decoder.decode(data)
        if text:
            super().data_received(text.encode("utf-8"))

    def connection_lost(self, exc: Any) -> None:
        # Also reached from handle_message on a Shutdown event, with the event as `exc`.
        if not self.closed:
            self.close()
            factory = self.factory
            if isinstance(factory, _Manager):
                factory.protocol_lost(self, exc)


class _Manager(Manager):
    """panoramisk's Manager with its own reconnect and ping disabled; AmiClient drives both."""

    def __init__(self, client: AmiClient, **config: Any) -> None:
        super().__init__(protocol_factory=_Protocol, **config)
        self._client = client
        # Replaying unanswered actions after a reconnect could run an Originate twice; we fail them instead.
        self.callbacks["FullyBooted"].remove(self.send_awaiting_actions)

    def ping(self) -> None:
        # panoramisk's ping never checks the answer, so it cannot notice a dead peer; AmiClient pings instead.
        pass

    def connection_lost(self, exc: Any) -> None:
        # panoramisk would reconnect every reconnect_timeout seconds forever, with no backoff and no way to stop.
        self.protocol_lost(self.protocol, exc)

    def protocol_lost(self, protocol: Any, exc: Any) -> None:
        self._connected = False
        self.authenticated = False
        if self.pinger is not None:
            self.pinger.cancel()
            self.pinger = None
        if protocol is self.protocol:
            self._client._on_connection_lost(_describe_loss(exc))


def _describe_loss(exc: Any) -> str:
    if isinstance(exc, Message):
        return f"Asterisk is shutting down ({exc.get('Shutdown', '?')}, restart={exc.get('Restart', '?')})"
    if exc is None:
        return "connection closed by Asterisk"
    return f"connection lost: {exc!r}"


class AmiSubscription:
    """Async iterator over one client's events; a slow reader loses its oldest events, never blocks the client."""

    _CLOSED = object()

    def __init__(self, client: AmiClient, maxsize: int) -> None:
        self._client = client
        self._queue: asyncio.Queue[Any] = asyncio.Queue(maxsize)
        self._closed = False

    def _put(self, event: ClientEvent) -> None:
        if self._closed:
            return
        if self._queue.full():
            self._queue.get_nowait()
        self._queue.put_nowait(event)

    async def get(self, timeout: float | None = None) -> ClientEvent:
        if self._closed and self._queue.empty():
            raise StopAsyncIteration
        try:
            async with asyncio.timeout(timeout):
                item = await self._queue.get()
        except TimeoutError:
            raise AmiTimeout(f"no AMI event from node {self._client.node.name} within {timeout}s") from None
        if item is self._CLOSED:
            raise StopAsyncIteration
        return item

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._client._subscriptions.discard(self)
        if self._queue.full():
            self._queue.get_nowait()
        self._queue.put_nowait(self._CLOSED)

    def __aiter__(self) -> AmiSubscription:
        return self

    async def __anext__(self) -> ClientEvent:
        return await self.get()

    async def __aenter__(self) -> AmiSubscription:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


class AmiClient:
    """One AMI connection to one `PbxNode`, kept alive across Asterisk restarts.

    Events (typed `AmiEvent`s plus our `AmiConnected`/`AmiDisconnected`) go to `on_event` callbacks,
    `subscribe()` iterators and the `EventBus`, in that order.
    """

    def __init__(
        self,
        node: PbxNode,
        bus: EventBus | None = None,
        *,
        reconnect: bool = True,
        backoff_initial: float = 0.5,
        backoff_max: float = 10.0,
        action_timeout: float = 10.0,
        connect_timeout: float = 5.0,
        ping_interval: float | None = 20.0,
        events: Sequence[str] | None = None,
    ) -> None:
        self.node = node
        self.bus = bus
        # Event names (or name regexes) to receive; None = every event. Asterisk then drops the rest
        # before they reach us: per call that is ~130 events less to parse on the controller's loop.
        self.events = tuple(events) if events is not None else None
        self.reconnect = reconnect
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.action_timeout = action_timeout
        self.connect_timeout = connect_timeout
        self.ping_interval = ping_interval
        self._manager = _Manager(
            self,
            host=node.ami_host,
            port=node.ami_port,
            username=node.ami_user,
            secret=node.ami_secret,
            events="on",
            log=logging.getLogger(f"{__name__}.panoramisk"),
        )
        self._manager.register_event("*", self._on_message)
        self._callbacks: list[EventCallback] = []
        self._subscriptions: set[AmiSubscription] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._pending: dict[str, Action] = {}  # ActionID -> Action; panoramisk Actions are dicts, not hashable
        self._connected = False
        self._fully_booted = False
        self._early: list[AmiEvent] = []
        self._closing = False
        self._lost: asyncio.Future[str] | None = None
        self._runner: asyncio.Task[None] | None = None
        self._first: asyncio.Future[None] | None = None
        self._up: asyncio.Event | None = None
        self.last_error: str | None = None

    def __repr__(self) -> str:
        state = "connected" if self._connected else "disconnected"
        return f"<AmiClient {self.node.name} {self.node.ami_host}:{self.node.ami_port} {state}>"

    # ---- connection -------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Logged in over a live TCP connection."""
        return self._connected

    @property
    def fully_booted(self) -> bool:
        """Asterisk has sent FullyBooted on this connection (all modules loaded)."""
        return self._connected and self._fully_booted

    async def connect(self, wait: bool = True, timeout: float | None = 30.0) -> None:
        """Connect and log in; afterwards the client reconnects by itself if `reconnect` is set.

        wait=False: raise AmiConnectError at once if Asterisk is unreachable.
        wait=True: keep retrying with backoff (e.g. while Asterisk boots) until `timeout`, then AmiTimeout.
        Wrong credentials raise AmiAuthError either way.
        """
        if self._closing:
            raise AmiError(f"AMI client for node {self.node.name} is closed")
        if self._connected:
            return
        if self._runner is None:
            self._first = asyncio.get_running_loop().create_future()
            self._up = self._up or asyncio.Event()
            self._runner = asyncio.create_task(self._run(wait), name=f"ami-{self.node.name}")
        elif self._first is None or self._first.done():
            # Lost after a successful login and reconnecting in the background: just wait for it.
            if not wait:
                raise AmiNotConnected(f"AMI of node {self.node.name} is reconnecting: {self.last_error}")
            await self.wait_connected(timeout)
            return
        try:
            async with asyncio.timeout(timeout):
                await asyncio.shield(self._first)
        except TimeoutError:
            if self._connected:  # logged in just as the deadline hit
                return
            await self._stop_runner()
            raise AmiTimeout(
                f"AMI of node {self.node.name} at {self.node.ami_host}:{self.node.ami_port} "
                f"not reachable within {timeout}s (last error: {self.last_error})"
            ) from None

    async def wait_connected(self, timeout: float | None = None) -> None:
        """Wait until logged in (useful after an Asterisk restart)."""
        if self._connected:
            return
        if self._up is None:
            self._up = asyncio.Event()
        try:
            async with asyncio.timeout(timeout):
                await self._up.wait()
        except TimeoutError:
            raise AmiTimeout(
                f"AMI of node {self.node.name} not connected within {timeout}s (last error: {self.last_error})"
            ) from None

    async def close(self) -> None:
        """Log off, stop reconnecting, fail pending actions, end subscriptions."""
        if self._closing:
            return
        self._closing = True
        if self._connected:
            try:
                await self._request("Logoff", {}, timeout=1.0, as_list=False)
            except AmiError:
                pass
        self._drop("closed by client")
        await self._stop_runner()
        for sub in list(self._subscriptions):
            sub.close()
        for task in list(self._tasks):
            task.cancel()

    async def __aenter__(self) -> AmiClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _stop_runner(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None and runner is not asyncio.current_task():
            runner.cancel()
            try:
                await runner
            except (asyncio.CancelledError, AmiError):
                pass
        self._drop("connect cancelled")
        # A connect() still waiting for the first login must not sit out its whole timeout.
        self._settle_first(AmiNotConnected(f"AMI client for node {self.node.name} closed while connecting"))

    async def _run(self, wait_first: bool) -> None:
        delays = backoff_delays(self.backoff_initial, self.backoff_max)
        first = True
        failures = 0
        try:
            while not self._closing:
                try:
                    lost = await self._open()
                except AmiError as err:
                    self.last_error = str(err)
                    if first and (isinstance(err, AmiAuthError) or not wait_first):
                        self._settle_first(err)
                        return
                    # Once per outage at warning level; an Asterisk down for an hour should not flood the log.
                    log.log(logging.WARNING if failures == 0 else logging.DEBUG, "AMI %s: %s", self.node.name, err)
                    failures += 1
                else:
                    delays = backoff_delays(self.backoff_initial, self.backoff_max)
                    first = False
                    failures = 0
                    self._settle_first(None)
                    await self._hold(lost)
                    if not self.reconnect or self._closing:
                        return
                delay = next(delays)
                log.debug("AMI %s: reconnecting in %.3gs", self.node.name, delay)
                await asyncio.sleep(delay)
        finally:
            if self._runner is asyncio.current_task():
                self._runner = None

    def _settle_first(self, error: AmiError | None) -> None:
        if self._first is not None and not self._first.done():
            if error is None:
                self._first.set_result(None)
            else:
                self._first.set_exception(error)
                # connect() may already have given up; don't warn about an unretrieved exception.
                self._first.exception()

    async def _open(self) -> asyncio.Future[str]:
        """TCP connect and Login; returns a future that resolves with the reason when the connection is lost."""
        loop = asyncio.get_running_loop()
        m = self._manager
        m.loop = loop
        node = self.node
        where = f"node {node.name} at {node.ami_host}:{node.ami_port}"
        try:
            # Opened here rather than by Manager.connect(), whose failure path schedules its own retry loop.
            async with asyncio.timeout(self.connect_timeout):
                transport, protocol = await loop.create_connection(
                    m.config["protocol_factory"], node.ami_host, node.ami_port, ssl=m.config["ssl"]
                )
        except (OSError, TimeoutError) as err:
            raise AmiConnectError(f"cannot reach AMI of {where}: {err or 'timeout'}") from None
        self._lost = lost = loop.create_future()
        self._fully_booted = False
        self._early = []
        opened: asyncio.Future[tuple[Any, Any]] = loop.create_future()
        opened.set_result((transport, protocol))
        m.connection_made(opened)  # panoramisk sends Login from here
        login: asyncio.Future[Message] = m.authenticated_future
        # Never cancel `login`: panoramisk's done-callback calls result() on it.
        done, _ = await asyncio.wait({login, lost}, timeout=self.connect_timeout, return_when=asyncio.FIRST_COMPLETED)
        if login in done:
            resp = login.result()
            if not resp.success:
                self._drop("login refused")
                raise AmiAuthError(
                    f"AMI login to {where} as {node.ami_user!r} refused: {_flatten(resp.get('Message')) or resp}"
                )
        elif lost in done:
            raise AmiConnectError(f"AMI of {where} closed the connection during login: {lost.result()}")
        else:
            self._drop("no answer to Login")
            raise AmiConnectError(f"AMI of {where} did not answer Login within {self.connect_timeout}s")
        self._connected = True
        self.last_error = None
        if self.events is not None:
            # One whitelist filter; action responses (list items) are not filtered by Asterisk.
            names = "|".join(self.events)
            await self._request("Filter", {"Operation": "Add", "Filter": f"Event: ({names})[[:space:]]"},
                                timeout=self.action_timeout, as_list=False)
        if self._up is not None:
            self._up.set()
        log.info("AMI %s: logged in to %s:%s as %s", node.name, node.ami_host, node.ami_port, node.ami_user)
        self._emit(AmiConnected(node.name))
        early, self._early = self._early, []
        for event in early:
            self._emit(event)
        return lost

    async def _hold(self, lost: asyncio.Future[str]) -> None:
        """Wait for the connection to end, pinging so a silently dead peer is noticed too."""
        while not lost.done():
            await asyncio.wait({lost}, timeout=self.ping_interval)
            if lost.done() or self.ping_interval is None:
                continue
            try:
                await self._request("Ping", {}, timeout=min(self.action_timeout, self.ping_interval), as_list=False)
            except AmiTimeout:
                self._drop(f"no answer to Ping within {min(self.action_timeout, self.ping_interval)}s")
            except AmiNotConnected:
                pass

    def _drop(self, reason: str) -> None:
        """Close the current connection on purpose (panoramisk reports no loss for a close we asked for)."""
        protocol = self._manager.protocol
        if protocol is not None and not getattr(protocol, "closed", True):
            protocol.close()
        self._on_connection_lost(reason)

    def _on_connection_lost(self, reason: str) -> None:
        if self._closing:
            reason = "closed by client"
        was_connected = self._connected
        self._connected = False
        self._fully_booted = False
        if self._up is not None:
            self._up.clear()
        self._manager.awaiting_actions.clear()
        pending, self._pending = self._pending, {}
        for act in pending.values():
            if not act.future.done():
                act.future.set_exception(
                    AmiNotConnected(
                        f"AMI connection to node {self.node.name} lost before {act['Action']} was answered: {reason}"
                    )
                )
                act.future.exception()  # the waiter may already be gone
        if self._lost is not None and not self._lost.done():
            self._lost.set_result(reason)
        if was_connected:
            self.last_error = reason
            level = logging.INFO if self._closing else logging.WARNING
            log.log(level, "AMI %s: disconnected: %s", self.node.name, reason)
            self._emit(AmiDisconnected(self.node.name, reason))

    # ---- actions ----------------------------------------------------------------------------------

    async def action(self, name: str, /, timeout: float | None = None, **fields: Any) -> AmiResponse:
        """Send one action and return its Response. Raises AmiActionError on `Response: Error`.

        Header values: str/int, bool (true/false), list (repeated header), dict (repeated `Key: k=v`).
        `timeout` is ours; Asterisk's own `Timeout` header (Originate) is spelt with a capital T.
        Actions that answer with an event list return only the first Response here; use action_list().
        """
        resp = await self._request(name, fields, timeout=timeout, as_list=False)
        if not resp.success:
            raise AmiActionError(f"{name} failed on node {self.node.name}: {resp.message or resp.response}", resp)
        return resp

    async def action_list(self, name: str, /, timeout: float | None = None, **fields: Any) -> list[dict[str, str]]:
        """Send a list action (CoreShowChannels, BridgeList, PJSIPShowEndpoints...) and return the list items.

        Each item is the event's headers (with Event and ActionID); the final ...Complete event is not included.
        """
        resp, items = await self._request_list(name, fields, timeout=timeout)
        return [item for item in items if not item.get("Event", "").endswith("Complete")]

    async def command(self, cli: str, timeout: float | None = None) -> str:
        """Run a CLI command and return its output (Asterisk 22 sends it as `Output:` headers)."""
        resp = await self._request("Command", {"Command": cli}, timeout=timeout, as_list=False)
        output = resp.get("Output")
        if not output and "__content__" in resp.fields:
            # Asterisk before 14 answered `Response: Follows` with raw text instead of Output headers.
            output = resp.fields["__content__"].replace("--END COMMAND--", "").rstrip()
        if not resp.success:
            raise AmiActionError(f"command {cli!r} failed on node {self.node.name}: {output or resp.message}", resp)
        return output

    async def _request_list(
        self, name: str, fields: Mapping[str, Any], timeout: float | None
    ) -> tuple[AmiResponse, list[dict[str, str]]]:
        # as_list=None lets panoramisk detect the list from `EventList: start`; forcing as_list=True would
        # hang on an error answer, which has no ...Complete event to end the list.
        result = await self._send(name, fields, timeout=timeout, as_list=None)
        messages = result if isinstance(result, list) else [result]
        resp = self._response(name, messages[0])
        if not resp.success:
            raise AmiActionError(f"{name} failed on node {self.node.name}: {resp.message or resp.response}", resp)
        items = [_headers(msg) for msg in messages[1:]]
        return resp, items

    async def _request(self, name: str, fields: Mapping[str, Any], timeout: float | None, as_list: bool) -> AmiResponse:
        result = await self._send(name, fields, timeout=timeout, as_list=as_list)
        message = result[0] if isinstance(result, list) else result
        return self._response(name, message)

    def _response(self, name: str, message: Message) -> AmiResponse:
        fields = _headers(message)
        content = message.get("content", "") if isinstance(message, Message) else ""
        if content:
            fields["__content__"] = _flatten(content)
        return AmiResponse(self.node.name, name, fields)

    async def _send(self, name: str, fields: Mapping[str, Any], timeout: float | None, as_list: bool | None) -> Any:
        if not self._connected:
            raise AmiNotConnected(
                f"AMI of node {self.node.name} is not connected; {name} not sent"
                + (f" (last error: {self.last_error})" if self.last_error else "")
            )
        headers = _encode_fields(fields)
        act = Action({"Action": name, **headers}, as_list=as_list)
        self._pending[act.action_id] = act
        future = self._manager.send_action(act, as_list=as_list)
        limit = self.action_timeout if timeout is None else timeout
        try:
            async with asyncio.timeout(limit):
                return await future
        except TimeoutError:
            raise AmiTimeout(f"{name} on node {self.node.name}: no answer within {limit}s") from None
        finally:
            self._pending.pop(act.action_id, None)
            # panoramisk keeps unanswered actions in protocol.responses until the connection closes.
            responses = getattr(self._manager.protocol, "responses", {})
            responses.pop(act.id, None)
            responses.pop(act.action_id, None)

    # ---- events -----------------------------------------------------------------------------------

    def _on_message(self, _manager: Manager, message: Message) -> None:
        event = parse_event(self.node.name, _headers(message))
        if event.name == "FullyBooted":
            self._fully_booted = True
        if not self._connected:
            # FullyBooted rides in the same packet as the Login answer; listeners should see AmiConnected first.
            self._early.append(event)
            return
        self._emit(event)

    def _emit(self, event: ClientEvent) -> None:
        for callback in list(self._callbacks):
            try:
                result = callback(event)
                if inspect.isawaitable(result):
                    task = asyncio.ensure_future(result)
                    self._tasks.add(task)
                    task.add_done_callback(self._task_done)
            except Exception:  # a broken listener must not break the connection
                log.exception("AMI %s: event callback %r failed", self.node.name, callback)
        for sub in list(self._subscriptions):
            sub._put(event)
        if self.bus is not None:
            self.bus.publish(event)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("AMI %s: async event callback failed", self.node.name, exc_info=task.exception())

    def on_event(self, callback: EventCallback) -> Callable[[], None]:
        """Call `callback(event)` for every event (a returned awaitable runs as a task); returns an unsubscriber."""
        self._callbacks.append(callback)

        def remove() -> None:
            if callback in self._callbacks:
                self._callbacks.remove(callback)

        return remove

    def subscribe(self, maxsize: int = 1000) -> AmiSubscription:
        """`async for event in client.subscribe(): ...` (or `async with client.subscribe() as events`)."""
        sub = AmiSubscription(self, maxsize)
        self._subscriptions.add(sub)
        return sub

    def wait_event(
        self,
        match: type[E] | str | Callable[[ClientEvent], bool],
        predicate: Callable[[Any], bool] | None = None,
        *,
        timeout: float = 10.0,
    ) -> Awaitable[Any]:
        """Start listening now, return an awaitable for the first matching event (AmiTimeout if none).

        `match` is an event class (AmiEvent subclass, AmiConnected...), an AMI event name, or a predicate.
        Listening starts when this is called, so an event caused by an action sent next is not missed:
            hung_up = client.wait_event(Hangup, lambda e: e.uniqueid == uid)
            await client.action("Hangup", Channel=name)
            await hung_up
        """
        if isinstance(match, type):
            cls = match
            first: Callable[[Any], bool] = lambda e: isinstance(e, cls)
        elif isinstance(match, str):
            wanted = match.lower()
            first = lambda e: isinstance(e, AmiEvent) and e.name.lower() == wanted
        else:
            first = match
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        def check(event: ClientEvent) -> None:
            if not future.done() and first(event) and (predicate is None or predicate(event)):
                future.set_result(event)

        remove = self.on_event(check)
        return self._await_event(future, remove, timeout, match)

    async def _await_event(
        self, future: asyncio.Future[Any], remove: Callable[[], None], timeout: float, match: Any
    ) -> Any:
        try:
            async with asyncio.timeout(timeout):
                return await future
        except TimeoutError:
            what = getattr(match, "__name__", match)
            raise AmiTimeout(f"no {what} event from node {self.node.name} within {timeout}s") from None
        finally:
            remove()
