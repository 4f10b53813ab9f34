"""Open a local page in headless Chromium and inspect it over the DevTools protocol.

Chromium's ``--remote-debugging-pipe`` reads NUL-separated JSON commands on fd 3 and answers on
fd 4, so no network port, websocket library or browser download is needed.
"""

from __future__ import annotations

import fcntl
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--mute-audio",
    "--remote-debugging-pipe",
)

PAGE_STATE = """JSON.stringify({
  images: [...document.images].map(i => ({src: i.src, complete: i.complete,
                                           width: i.naturalWidth, height: i.naturalHeight})),
  audios: [...document.querySelectorAll('audio')].map(a => ({src: a.src, ready: a.readyState,
           error: a.error ? a.error.code : null, duration: a.duration})),
  title: document.title,
  tables: document.querySelectorAll('table').length
})"""


def chromium_binary() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class _Pipe:
    def __init__(self, write_fd: int, read_fd: int) -> None:
        self.write_fd, self.read_fd = write_fd, read_fd
        self.messages: queue.Queue = queue.Queue()
        self.events: list[dict] = []
        self.next_id = 0
        threading.Thread(target=self._reader, daemon=True).start()

    def _reader(self) -> None:
        buffer = b""
        while True:
            try:
                chunk = os.read(self.read_fd, 1 << 16)
            except OSError:
                return
            if not chunk:
                return
            buffer += chunk
            while b"\0" in buffer:
                raw, buffer = buffer.split(b"\0", 1)
                self.messages.put(json.loads(raw))

    def send(
        self,
        method: str,
        params: dict | None = None,
        session: str | None = None,
        timeout: float = 30,
    ):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self.write_fd, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self.messages.get(timeout=max(0.1, deadline - time.monotonic()))
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, timeout: float = 30) -> dict:
        for event in self.events:
            if event.get("method") == method:
                return event
        deadline = time.monotonic() + timeout
        while True:
            event = self.messages.get(timeout=max(0.1, deadline - time.monotonic()))
            self.events.append(event)
            if event.get("method") == method:
                return event


def inspect_page(html_path: Path, settle_s: float = 20.0) -> dict:
    """Load ``html_path`` in headless Chromium; return the page state (images, audio elements)
    and the problems seen: JS exceptions, console/log errors, failed resource loads."""
    binary = chromium_binary()
    if binary is None:
        raise RuntimeError("chromium is not installed: apt-get install chromium")
    to_chrome_r, to_chrome_w = os.pipe()
    from_chrome_r, from_chrome_w = os.pipe()

    # Chromium expects commands on fd 3 and writes replies to fd 4. Move our ends above 10
    # first so the dup2 calls below cannot clobber each other; dup2 targets stay open across
    # exec, every other descriptor of ours is close-on-exec.
    high_r = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD_CLOEXEC, 10)
    high_w = fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD_CLOEXEC, 10)

    def child_fds() -> None:
        os.dup2(high_r, 3)
        os.dup2(high_w, 4)

    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.Popen(
            [binary, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            close_fds=False,
            preexec_fn=child_fds,
        )
        for fd in (to_chrome_r, from_chrome_w, high_r, high_w):
            os.close(fd)
        pipe = _Pipe(to_chrome_w, from_chrome_r)
        try:
            target = pipe.send("Target.createTarget", {"url": "about:blank"})["targetId"]
            session = pipe.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
                "sessionId"
            ]
            for domain in ("Runtime", "Log", "Network", "Page"):
                pipe.send(f"{domain}.enable", session=session)
            pipe.send("Page.navigate", {"url": html_path.resolve().as_uri()}, session=session)
            pipe.wait_for("Page.loadEventFired")
            deadline = time.monotonic() + settle_s
            while True:  # let audio metadata load (preload="metadata")
                state = json.loads(
                    pipe.send(
                        "Runtime.evaluate",
                        {"expression": PAGE_STATE, "returnByValue": True},
                        session=session,
                    )["result"]["value"]
                )
                pending = [a for a in state["audios"] if a["ready"] < 1 and a["error"] is None]
                if not pending or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            while not pipe.messages.empty():
                pipe.events.append(pipe.messages.get_nowait())
            problems = []
            for event in pipe.events:
                method, params = event.get("method"), event.get("params", {})
                if method == "Runtime.exceptionThrown":
                    problems.append(f"exception: {params['exceptionDetails'].get('text')}")
                elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                    problems.append(
                        f"log: {params['entry'].get('text')} {params['entry'].get('url', '')}"
                    )
                elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
                    problems.append("console.error")
                elif method == "Network.loadingFailed":
                    problems.append(f"load failed: {params.get('errorText')}")
            state["problems"] = problems
            try:
                pipe.send("Browser.close", timeout=5)
            except Exception:
                pass
            return state
        finally:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            os.close(to_chrome_w)
            os.close(from_chrome_r)
