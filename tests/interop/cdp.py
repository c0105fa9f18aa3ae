"""A minimal Chrome DevTools Protocol driver for headless Chromium, over --remote-debugging-pipe
(file descriptors 3 and 4, NUL-terminated JSON messages), so tests can type into forms, click
and keep cookies across pages without chromedriver or a websocket library.

    with Browser(workdir) as br:
        br.goto("http://127.0.0.1:9644/")
        br.type_into("user", "alice"); br.click("sign-in"); br.wait_load()
        br.screenshot(path); br.dom()

Every wait is bounded (timeout in seconds, times SLOW); a browser that does not answer fails
the test instead of hanging it.
"""
import base64
import fcntl
import json
import os
import select
import subprocess
import time

CHROMIUM = "/usr/bin/chromium"


class CdpError(Exception):
    pass


class Browser:
    def __init__(self, workdir, width=1280, height=800, slow=1.0):
        self.workdir, self.width, self.height, self.slow = workdir, width, height, slow
        self.proc = None
        self.next_id = 0
        self.buf = b""
        self.events = []
        self.session = None

    def __enter__(self):
        to_child_r, self.to_child = os.pipe()
        self.from_child, from_child_w = os.pipe()

        def fds():
            # Move both ends above 4 first, so placing them at 3 and 4 cannot clobber either.
            a = fcntl.fcntl(to_child_r, fcntl.F_DUPFD, 10)
            b = fcntl.fcntl(from_child_w, fcntl.F_DUPFD, 10)
            os.dup2(a, 3)
            os.dup2(b, 4)
        argv = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                "--remote-debugging-pipe", "--no-first-run", "--no-default-browser-check",
                "--user-data-dir=" + os.path.join(self.workdir, "cdp-profile"),
                "--window-size=%d,%d" % (self.width, self.height), "about:blank"]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(self.workdir, "chromium.log"), "wb"),
                                     close_fds=False, preexec_fn=fds, cwd=self.workdir)
        os.close(to_child_r)
        os.close(from_child_w)
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.call("Target.attachToTarget",
                                 {"targetId": target, "flatten": True})["sessionId"]
        self.call("Page.enable")
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": self.width, "height": self.height, "deviceScaleFactor": 1,
                   "mobile": False})
        return self

    def __exit__(self, *exc):
        try:
            self.call("Browser.close", session=False, timeout=5)
        except Exception:
            pass
        for fd in (self.to_child, self.from_child):
            try:
                os.close(fd)
            except OSError:
                pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def _read_message(self, deadline):
        while b"\0" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CdpError("chromium did not answer in time")
            r, _, _ = select.select([self.from_child], [], [], left)
            if r:
                chunk = os.read(self.from_child, 1 << 20)
                if not chunk:
                    raise CdpError("chromium closed its pipe")
                self.buf += chunk
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method, params=None, session=True, timeout=20):
        """Sends one command (to the page's session unless session=False) and returns its
        result; events read meanwhile are kept for wait_event."""
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        os.write(self.to_child, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout * self.slow
        while True:
            m = self._read_message(deadline)
            if m.get("id") == self.next_id:
                if "error" in m:
                    raise CdpError("%s: %s" % (method, m["error"]))
                return m.get("result", {})
            if "method" in m:
                self.events.append(m)

    def wait_event(self, name, timeout=20):
        deadline = time.monotonic() + timeout * self.slow
        while True:
            for i, ev in enumerate(self.events):
                if ev["method"] == name:
                    del self.events[i]
                    return ev.get("params", {})
            self.events.append(self._read_message(deadline))

    def eval(self, expression):
        r = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                           "awaitPromise": True})
        if "exceptionDetails" in r:
            raise CdpError("script failed: %r" % r["exceptionDetails"])
        return r["result"].get("value")

    def goto(self, url):
        self.events = [e for e in self.events if e["method"] != "Page.loadEventFired"]
        self.call("Page.navigate", {"url": url})
        self.wait_load()

    def wait_load(self, timeout=20):
        self.wait_event("Page.loadEventFired", timeout)

    def wait_ready(self, timeout=20):
        """Waits until the console's script marked the page drawn (body data-ready)."""
        deadline = time.monotonic() + timeout * self.slow
        while time.monotonic() < deadline:
            if self.eval("document.body && document.body.getAttribute('data-ready')") == "true":
                return
            time.sleep(0.1)
        raise CdpError("the page was not drawn in time: %s" % self.url())

    def url(self):
        return self.eval("location.href")

    def dom(self):
        return self.eval("document.documentElement.outerHTML")

    def text(self):
        return self.eval("document.body.innerText")

    def type_into(self, element_id, text):
        """Focuses the element and types text as keyboard input."""
        self.eval("document.getElementById(%s).focus()" % json.dumps(element_id))
        self.call("Input.insertText", {"text": text})

    def click(self, element_id):
        """A real mouse click at the element's centre."""
        box = self.eval("(() => { const r = document.getElementById(%s).getBoundingClientRect();"
                        " return [r.x + r.width / 2, r.y + r.height / 2]; })()"
                        % json.dumps(element_id))
        self.events = [e for e in self.events if e["method"] != "Page.loadEventFired"]
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", {"type": kind, "x": box[0], "y": box[1],
                                                   "button": "left", "clickCount": 1})

    def screenshot(self, path):
        data = self.call("Page.captureScreenshot", {"format": "png"})["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
