"""The report in a real browser: headless Chromium (Debian's ``chromium``) loads index.html.

Chromium is driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``: JSON
messages ended by NUL on file descriptors 3 and 4), so no websocket library and no browser
download are needed. Where no Chromium is installed the tests are skipped (``.ci/run``
installs it where it can).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import time

import pytest

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))
                 if p), None)
BASH = shutil.which("bash")
pytestmark = pytest.mark.skipif(CHROMIUM is None or BASH is None,
                                reason="no headless Chromium installed")

WIDTH, HEIGHT = 1280, 900

# what the page looks like once laid out: every <img> decoded, every figure's box and drawing
_INSPECT = """
(() => {
  const figures = [...document.querySelectorAll('figure')].map(f => {
    const drawing = f.querySelector('summary > svg, summary > img');
    const r = drawing.getBoundingClientRect(), fr = f.getBoundingClientRect();
    return {wide: f.classList.contains('wide'), kind: drawing.tagName.toLowerCase(),
            width: r.width, height: r.height, figWidth: fr.width,
            overflow: f.scrollWidth - f.clientWidth,
            natural: drawing.tagName === 'IMG' ? drawing.naturalWidth
                     : drawing.width.baseVal.value};
  });
  const images = [...document.images].map(i => ({complete: i.complete,
    naturalWidth: i.naturalWidth, naturalHeight: i.naturalHeight}));
  const body = document.querySelector('h1').getBoundingClientRect().width;  // content width
  const s = document.querySelector('figure summary');
  s.parentElement.open = true;
  const big = s.getBoundingClientRect(), pos = getComputedStyle(s).position;
  s.parentElement.open = false;
  return JSON.stringify({figures, images, body, lightbox: {width: big.width,
    height: big.height, position: pos}, innerWidth: window.innerWidth,
    external: [...document.querySelectorAll('[src],[href]')].map(
      e => e.getAttribute('src') || e.getAttribute('href')).filter(
      u => !u.startsWith('data:') && !u.startsWith('#'))});
})()
"""


class _DevTools:
    """A minimal DevTools-protocol client over Chromium's debugging pipe."""

    def __init__(self, proc, to_browser: int, from_browser: int):
        self.proc, self.out, self.inp = proc, to_browser, from_browser
        self.next_id, self.buffer, self.events = 0, b"", []

    def _read(self, deadline: float) -> dict:
        while b"\0" not in self.buffer:
            if time.monotonic() > deadline:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self.inp, 1 << 16)
            if not chunk:
                raise RuntimeError("Chromium closed the debugging pipe")
            self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(message)

    def send(self, method: str, params=None, session=None, timeout: float = 60.0) -> dict:
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self.out, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, timeout: float = 60.0) -> dict:
        deadline = time.monotonic() + timeout
        for i, event in enumerate(self.events):
            if event.get("method") == method:
                return self.events.pop(i)
        while True:
            event = self._read(deadline)
            if event.get("method") == method:
                return event
            self.events.append(event)


def _above_9(fd: int) -> int:
    new = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
    os.close(fd)
    return new


def render(index_html) -> tuple[dict, list[str]]:
    """Load ``index_html`` in headless Chromium; return the page inspection and the console
    errors (console.error calls, uncaught exceptions, failed loads logged by the browser)."""
    to_r, to_w = os.pipe()  # we write commands into to_w, Chromium reads fd 3
    from_r, from_w = os.pipe()  # Chromium writes fd 4, we read from_r
    # bash hands our pipe ends to Chromium as its fds 3 and 4 (moved above 9 first, so they
    # cannot be 3 or 4 themselves)
    to_r, from_w = (_above_9(fd) for fd in (to_r, from_w))
    redirect = f'exec "$0" "$@" 3<&{to_r} 4>&{from_w} {to_r}<&- {from_w}>&-'
    profile = tempfile.TemporaryDirectory()  # a fresh browser profile, outside the report
    proc = subprocess.Popen(
        [BASH, "-c", redirect, CHROMIUM, "--headless", "--remote-debugging-pipe", "--no-sandbox",
         "--disable-gpu", "--no-first-run", "--disable-extensions",
         f"--window-size={WIDTH},{HEIGHT}", f"--user-data-dir={profile.name}", "about:blank"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        pass_fds=(to_r, from_w))
    os.close(to_r)
    os.close(from_w)
    cdp = _DevTools(proc, to_w, from_r)
    try:
        target = cdp.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = cdp.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            cdp.send(f"{domain}.enable", session=session)
        cdp.send("Emulation.setDeviceMetricsOverride", {"width": WIDTH, "height": HEIGHT,
                                                        "deviceScaleFactor": 1, "mobile": False},
                 session=session)
        cdp.send("Page.navigate", {"url": index_html.resolve().as_uri()}, session=session)
        cdp.wait_for("Page.loadEventFired")
        result = cdp.send("Runtime.evaluate", {"expression": _INSPECT, "returnByValue": True},
                          session=session)
        if "exceptionDetails" in result:
            raise RuntimeError(result["exceptionDetails"])
        page = json.loads(result["result"]["value"])
        errors = []
        for e in cdp.events:
            p = e.get("params", {})
            if e.get("method") == "Runtime.consoleAPICalled" and p.get("type") == "error":
                errors.append(" ".join(str(a.get("value")) for a in p.get("args", [])))
            elif e.get("method") == "Runtime.exceptionThrown":
                errors.append(p["exceptionDetails"].get("text", "exception"))
            elif e.get("method") == "Log.entryAdded" and p["entry"]["level"] == "error":
                errors.append(p["entry"]["text"])
        return page, errors
    finally:
        try:
            cdp.send("Browser.close", timeout=10)
        except (RuntimeError, TimeoutError, OSError):
            pass
        os.close(to_w)
        os.close(from_r)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        profile.cleanup()


def _check(page: dict, errors: list[str], n_figures: int) -> None:
    assert errors == []
    assert page["external"] == []
    assert len(page["figures"]) == n_figures
    # every image decodes, with a non-zero size
    assert all(i["complete"] and i["naturalWidth"] > 0 and i["naturalHeight"] > 0
               for i in page["images"])
    for f in page["figures"]:
        assert f["width"] > 0 and f["height"] > 0, f
        # no figure narrower than its content: nothing spills out of the figure's box ...
        assert f["overflow"] <= 1 and f["width"] <= f["figWidth"] + 1, f
        # ... and a drawing is shrunk only when the page is narrower than it
        assert f["width"] >= min(f["natural"], page["body"]) - 2, f
        if f["wide"]:  # multi-panel figures span the page
            assert f["width"] >= page["body"] - 2, f
    # a click opens a figure over the whole window
    assert page["lightbox"]["position"] == "fixed"
    assert page["lightbox"]["width"] >= 0.95 * page["innerWidth"]


def test_report_renders_in_headless_chromium(tmp_path):
    """A small report (line plots, a multi-panel figure, an image): images decode, figures
    fit their boxes, multi-panel figures span the page, no console errors."""
    import numpy as np

    from bayesdl.report import Section, write_report
    from bayesdl.viz import new_figure

    figures = []
    for ncols in (1, 3):
        fig, axes = new_figure(1, ncols, width=3.2)
        for ax in axes[0]:
            ax.plot(np.linspace(0, 1, 20), np.linspace(0, 1, 20) ** 2)
        figures.append((f"{ncols} panel(s)", fig))
    fig, axes = new_figure(1, 2, width=4.0)
    axes[0, 0].imshow(np.random.default_rng(0).random((16, 16)))
    figures.append(("an image", fig))
    index = write_report(tmp_path, [("s", Section(title="S", figures=figures))])
    page, errors = render(index)
    _check(page, errors, 3)
    assert [f["kind"] for f in page["figures"]] == ["svg", "svg", "img"]
    assert [f["wide"] for f in page["figures"]] == [False, True, True]


@pytest.mark.slow
def test_whole_quick_demo_renders_in_headless_chromium(tmp_path):
    from bayesdl.cli import main

    assert main(["demo", "--quick", "--out", str(tmp_path)]) == 0
    page, errors = render(tmp_path / "index.html")
    html = (tmp_path / "index.html").read_text()
    _check(page, errors, html.count("<figure"))


@pytest.mark.slow
def test_the_browser_check_sees_a_broken_image_and_a_console_error(tmp_path):
    index = tmp_path / "index.html"
    index.write_text('<!doctype html><html><body><h1>x</h1><figure><details><summary>'
                     '<img src="data:image/png;base64,AAAA"></summary></details></figure>'
                     '<script>console.error("boom")</script></body></html>')
    page, errors = render(index)
    assert any("boom" in e for e in errors)
    assert page["images"][0]["naturalWidth"] == 0
