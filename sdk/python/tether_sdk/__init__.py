"""Tether's Python SDK: a thin, idiomatic layer over the bindings
componentize-py generates from the contract (`wit/extension.wit`).

An extension subclasses `Extension` as a class named `Lifecycle` in its
`app.py`, and declares its commands with `@command`::

    import tether_sdk as tether

    class Lifecycle(tether.Extension):
        def on_enable(self):
            tether.log.info("enabled")

        @tether.command("greet")
        def greet(self, args):
            return "hello " + tether.settings.get("name", "world")

Settings are a read-only mapping of JSON values; the key-value store is a
mutable mapping of strings; `http` speaks the host's outbound HTTP, which
reaches only origins the manifest declares and the operator allows.
Raising `tether.Error(code, message)` fails the call with that code.
"""

import json
from collections.abc import Mapping, MutableMapping

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import host, outbound_http, types

__all__ = [
    "Error", "Extension", "command", "settings", "protected_settings", "kv",
    "log", "status", "http", "machine", "report_document",
]


class Error(Exception):
    """A failure with a short stable code (`invalid-argument`,
    `unknown-command`, ...) and a message for people."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message




def _raise_from(err: Err):
    value = err.value
    raise Error(getattr(value, "code", "error"), getattr(value, "message", str(value)))


class _Settings(Mapping):
    """The extension's settings, each decoded from JSON. The host has no
    listing of them: look keys up (`get`, `[]`, `in`)."""

    def __init__(self, read):
        self._read = read

    def __getitem__(self, key):
        raw = self._read(key)
        if raw is None:
            raise KeyError(key)
        return json.loads(raw)

    def __iter__(self):
        return iter(())

    def __len__(self):
        return 0

    def __contains__(self, key):
        return self._read(key) is not None


settings = _Settings(host.setting)
protected_settings = _Settings(host.protected_setting)


class _KeyValue(MutableMapping):
    """The extension's private store: string keys to string values, kept by
    the host across calls and restarts, removed with the extension."""

    def __getitem__(self, key):
        value = host.kv_get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __setitem__(self, key, value):
        try:
            host.kv_set(key, value)
        except Err as e:
            _raise_from(e)

    def __delitem__(self, key):
        try:
            existed = host.kv_delete(key)
        except Err as e:
            _raise_from(e)
        if not existed:
            raise KeyError(key)

    def __iter__(self):
        return iter(host.kv_list())

    def __len__(self):
        return len(host.kv_list())


kv = _KeyValue()


class _Log:
    """Lines in the host's log, tagged with the extension's id."""

    def trace(self, message: str):
        host.log(types.Level.TRACE, message)

    def debug(self, message: str):
        host.log(types.Level.DEBUG, message)

    def info(self, message: str):
        host.log(types.Level.INFO, message)

    def warn(self, message: str):
        host.log(types.Level.WARN, message)

    def error(self, message: str):
        host.log(types.Level.ERROR, message)


log = _Log()


class _Status:
    """The extension's status, as `tether extension show` and the cloud
    see it."""

    def transitioning(self, message: str):
        host.report_status(types.StatusState.TRANSITIONING, message)

    def success(self, message: str):
        host.report_status(types.StatusState.SUCCESS, message)

    def warning(self, message: str):
        host.report_status(types.StatusState.WARNING, message)

    def error(self, message: str):
        host.report_status(types.StatusState.ERROR, message)


status = _Status()


class Response:
    def __init__(self, raw):
        self.status = raw.status
        self.headers = dict(raw.headers)
        self.body = bytes(raw.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self):
        return json.loads(self.body)


class _Http:
    """Outbound HTTP through the host: declared and granted origins only,
    within the call's deadline and the host's size caps."""

    def request(self, method: str, url: str, headers=None, body=None) -> Response:
        if isinstance(body, str):
            body = body.encode("utf-8")
        request = outbound_http.Request(
            method=method,
            url=url,
            headers=list((headers or {}).items()),
            body=body,
        )
        try:
            return Response(outbound_http.send(request))
        except Err as e:
            _raise_from(e)

    def get(self, url: str, headers=None) -> Response:
        return self.request("GET", url, headers)

    def post(self, url: str, body, headers=None) -> Response:
        if not isinstance(body, (bytes, str)):
            body = json.dumps(body)
            headers = {"content-type": "application/json", **(headers or {})}
        return self.request("POST", url, headers, body)


http = _Http()


def machine() -> dict:
    """The machine this extension runs on: its registration and status."""
    m = host.machine()
    return {
        "resourceId": m.resource_id,
        "name": m.name,
        "location": m.location,
        "osType": m.os_type,
        "osName": m.os_name,
        "vmId": m.vm_id,
        "tenantId": m.tenant_id,
        "status": m.status.name.lower().replace("_", "-"),
    }


def report_document(document: dict):
    """Reports one JSON object (at most 256 KiB) with the status."""
    try:
        host.report_document(json.dumps(document))
    except Err as e:
        _raise_from(e)


def command(name: str):
    """Marks a method of an `Extension` as the command `name`; it gets the
    arguments as a list and returns a string, or anything JSON can hold."""

    def mark(method):
        method._tether_command = name
        return method

    return mark


def _guard(call):
    try:
        return call()
    except Error as e:
        raise Err(types.Error(code=e.code, message=e.message))
    except Err:
        raise
    except Exception as e:  # a bug in the extension: fail the call, say what
        raise Err(types.Error(code="failed", message=f"{type(e).__name__}: {e}"))


class Extension(exports.Lifecycle):
    """The lifecycle with nothing to do; override `on_install`,
    `on_enable`, `on_disable`, `on_update(from_version)`, `on_uninstall`,
    and mark commands with `@command`."""

    _tether_commands: dict = {}

    def on_install(self):
        pass

    def on_enable(self):
        pass

    def on_disable(self):
        pass

    def on_update(self, from_version: str):
        pass

    def on_uninstall(self):
        pass

    def install(self):
        _guard(self.on_install)

    def enable(self):
        _guard(self.on_enable)

    def disable(self):
        _guard(self.on_disable)

    def update(self, from_version):
        _guard(lambda: self.on_update(from_version))

    def uninstall(self):
        _guard(self.on_uninstall)

    def __init_subclass__(cls, **kwargs):
        # The command table is made when the class is defined: at build
        # time, in the snapshot componentize-py takes, so a call only looks
        # its command up.
        super().__init_subclass__(**kwargs)
        cls._tether_commands = {
            name: method
            for method in (getattr(cls, a, None) for a in dir(cls))
            if (name := getattr(method, "_tether_command", None)) is not None
        }

    def invoke(self, command, args):
        def run():
            method = type(self)._tether_commands.get(command)
            if method is None:
                raise Error("unknown-command", f"no command `{command}`")
            out = method(self, list(args))
            return out if isinstance(out, str) else json.dumps(out)

        return _guard(run)
