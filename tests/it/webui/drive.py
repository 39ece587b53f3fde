#!/usr/bin/env python3
"""Drive the GNS3 3.0.x controller's built-in web UI with headless Chromium.

Run by tests/it/webui.rs (which builds the lab on a nanolab compute and
installs selenium into a venv under target/); it can also be run by hand
against any controller whose project has started nodes.

Steps (each timed, each reported PASS/FAIL):
  a  log in through the UI's login form
  b  open the project from the projects list (fallback: direct URL)
  c  check every node is drawn on the map and shown as started
  e  screenshot of the topology (taken before the console widget covers it)
  d  open a PC's web console (right-click -> "Web console", the in-page
     xterm widget; then "Web console in new tab") and read the VPCS prompt

Parameters come from argv or the environment:
  --url      / GNS3_URL        controller URL (default http://127.0.0.1:3080)
  --user     / GNS3_USER       (default admin)
  --password / GNS3_PASSWORD   (default admin)
  --project  / GNS3_PROJECT    project id (required)
  --project-name / GNS3_PROJECT_NAME  name shown in the projects list
                               (optional; if absent the project is opened by URL)
  --nodes    / GNS3_NODES      comma list NAME=ID of nodes that must be started,
                               e.g. PC1=<id>,PC2=<id>,SW1=<id> (required)
  --console  / GNS3_CONSOLE    NAME of the node whose web console to open
                               (default: the first node)
  --ping     / GNS3_PING       optional address to ping from the console widget
                               (typed into the xterm; waits for the replies)
  --out      / GNS3_OUT        output directory (required)
  --chromedriver / CHROMEDRIVER  (default /usr/bin/chromedriver)
  --chromium / CHROMIUM        (default /usr/bin/chromium)

Exit status 0 iff every step passed. Writes <out>/topology.png,
<out>/console.png, <out>/console-tab.png, <out>/browser.log, <out>/result.json.
"""
import argparse
import json
import os
import sys
import time
import traceback

from selenium import webdriver
from selenium.common.exceptions import (ElementClickInterceptedException,
                                        NoSuchElementException, TimeoutException)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.actions.action_builder import ActionBuilder
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

# Installed before any page script runs: keeps every byte that console
# websockets (/nodes/<id>/console/ws) deliver, per URL, so a failing
# console can be told apart from a failing terminal renderer.
WS_TAP = r"""
(() => {
  const Orig = window.WebSocket;
  window.__ws = [];
  class Tapped extends Orig {
    constructor(url, protocols) {
      super(url, protocols);
      const rec = {url: String(url).replace(/token=[^&]*/, 'token=...'),
                   opened: false, closed: null, error: false, rx: '', tx: ''};
      window.__ws.push(rec);
      this.addEventListener('open', () => { rec.opened = true; });
      this.addEventListener('error', () => { rec.error = true; });
      this.addEventListener('close', (e) => { rec.closed = e.code + ' ' + e.reason; });
      this.addEventListener('message', (e) => {
        if (!rec.url.includes('/console/ws')) return;
        if (typeof e.data === 'string') rec.rx += e.data;
        else if (e.data instanceof ArrayBuffer) {
          const b = new Uint8Array(e.data);
          if (rec.rx === '') rec.rx_head_hex = Array.from(b.slice(0, 24), x => x.toString(16).padStart(2, '0')).join(' ');
          rec.rx += new TextDecoder().decode(b);
        }
      });
      const send = this.send.bind(this);
      this.send = (d) => {
        if (rec.url.includes('/console/ws'))
          rec.tx += (typeof d === 'string') ? d : new TextDecoder().decode(d);
        return send(d);
      };
    }
  }
  window.WebSocket = Tapped;
})();
"""

# Reads what an xterm.js terminal shows. This web UI renders xterm with the
# canvas renderer, so there is no text in .xterm-rows; instead select the
# whole terminal (xterm's own selection, made by a mouse drag from Python)
# and fire a synthetic 'copy' event at it: xterm's copy handler puts the
# selection text into the event's DataTransfer.
XTERM_COPY = r"""
const term = arguments[0];
const dt = new DataTransfer();
const ev = new ClipboardEvent('copy', {clipboardData: dt, bubbles: true, cancelable: true});
term.dispatchEvent(ev);
return dt.getData('text/plain');
"""


def arg(p, name, env, default=None, **kw):
    p.add_argument(name, default=os.environ.get(env, default), **kw)


def parse():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    arg(p, "--url", "GNS3_URL", "http://127.0.0.1:3080")
    arg(p, "--user", "GNS3_USER", "admin")
    arg(p, "--password", "GNS3_PASSWORD", "admin")
    arg(p, "--project", "GNS3_PROJECT")
    arg(p, "--project-name", "GNS3_PROJECT_NAME")
    arg(p, "--nodes", "GNS3_NODES")
    arg(p, "--console", "GNS3_CONSOLE")
    arg(p, "--ping", "GNS3_PING", help="optional: an address to ping from the web console")
    arg(p, "--out", "GNS3_OUT")
    arg(p, "--chromedriver", "CHROMEDRIVER", "/usr/bin/chromedriver")
    arg(p, "--chromium", "CHROMIUM", "/usr/bin/chromium")
    a = p.parse_args()
    if not a.project or not a.nodes or not a.out:
        p.error("--project, --nodes and --out are required")
    a.url = a.url.rstrip("/")
    a.node_map = dict(kv.split("=", 1) for kv in a.nodes.split(","))
    a.console = a.console or next(iter(a.node_map))
    return a


class Run:
    def __init__(self, a):
        self.a = a
        self.results = {}
        self.t0 = time.time()
        os.makedirs(a.out, exist_ok=True)
        o = webdriver.ChromeOptions()
        o.binary_location = a.chromium
        for x in ("--headless=new", "--no-sandbox", "--window-size=1600,1000",
                  "--disable-dev-shm-usage", "--disable-gpu"):
            o.add_argument(x)
        o.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.d = webdriver.Chrome(service=Service(a.chromedriver), options=o)
        self.d.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": WS_TAP})
        self.browser_log = []

    def log(self, *m):
        print(f"[{time.time() - self.t0:6.2f}s]", *m, flush=True)

    def wait(self, secs=30):
        return WebDriverWait(self.d, secs, poll_frequency=0.2)

    def step(self, key, title, fn):
        t = time.time()
        self.log(f"step {key}: {title} ...")
        try:
            detail = fn()
            ok = True
        except Exception as e:  # noqa: BLE001 - report and carry on
            detail = f"{type(e).__name__}: {e}".strip()
            traceback.print_exc()
            ok = False
            try:
                self.d.save_screenshot(os.path.join(self.a.out, f"fail-{key}.png"))
            except Exception:
                pass
        dt = time.time() - t
        self.results[key] = {"ok": ok, "seconds": round(dt, 2), "detail": detail}
        self.log(f"step {key}: {'PASS' if ok else 'FAIL'} in {dt:.2f}s: {detail}")
        return ok

    # a ------------------------------------------------------------------
    def login(self):
        d, a = self.d, self.a
        d.get(a.url + "/")
        # / redirects to /static/web-ui/controller/1/login?returnUrl=...
        user = self.wait().until(EC.element_to_be_clickable(
            (By.CSS_SELECTOR, "app-login input[formcontrolname=username]")))
        user.clear()
        user.send_keys(a.user)
        pw = d.find_element(By.CSS_SELECTOR, "app-login input[formcontrolname=password]")
        pw.clear()
        pw.send_keys(a.password)
        d.find_element(By.CSS_SELECTOR, "app-login button.loginButton").click()
        self.wait().until(EC.url_matches(r"/controller/\d+/projects"))
        self.wait().until(EC.presence_of_element_located((By.CSS_SELECTOR, "app-projects")))
        self.controller_base = d.current_url.split("/projects")[0]
        return f"logged in, at {d.current_url}"

    # b ------------------------------------------------------------------
    def open_project(self):
        d, a = self.d, self.a
        how = "direct URL"
        if a.project_name:
            xp = ("//app-projects//a[contains(@class,'table-link')]"
                  f"[normalize-space()='{a.project_name}']")
            try:
                self.wait(15).until(EC.element_to_be_clickable((By.XPATH, xp))).click()
                self.wait(15).until(EC.url_contains("/project/" + a.project))
                how = "projects list link a.table-link"
            except TimeoutException:
                self.log("project not found in list, opening by URL")
        if how == "direct URL":
            d.get(f"{self.controller_base}/project/{a.project}")
        self.wait(30).until(EC.presence_of_element_located((By.CSS_SELECTOR, "app-project-map svg g.nodes")))
        return f"opened via {how}: {d.current_url}"

    # c ------------------------------------------------------------------
    def check_nodes(self):
        d, a = self.d, self.a
        for name, nid in a.node_map.items():
            self.wait(30).until(EC.presence_of_element_located(
                (By.CSS_SELECTOR, f'g.node[node_id="{nid}"]')))
        # The map draws no per-node status; the "Map topology" summary panel
        # (app-topology-summary) has one .nodeRow per node with an
        # <svg><rect class="status_started" fill="green"> before the name.
        js = r"""
          const out = {};
          for (const row of document.querySelectorAll('app-topology-summary .summaryContent .nodeRow')) {
            const name = row.firstElementChild.textContent.trim();
            const r = row.querySelector('rect');
            out[name] = r ? r.getAttribute('class') + '/' + r.getAttribute('fill') : 'none';
          }
          return out;"""
        want = {n: "status_started/green" for n in a.node_map}
        last = {}

        def all_started(_):
            nonlocal last
            last = d.execute_script(js)
            return all(last.get(n) == v for n, v in want.items())
        try:
            self.wait(30).until(all_started)
        except TimeoutException:
            raise AssertionError(f"summary shows {last}, want {want}")
        # Link ends: with port labels integrated, a started end is a
        # rect.status_started (green stroke), a stopped one rect.status_stopped.
        ends = d.execute_script(r"""
          const c = s => document.querySelectorAll('app-project-map svg ' + s).length;
          return {started: c('.status_started'), stopped: c('.status_stopped'),
                  suspended: c('.status_suspended')};""")
        labels = [e.text for e in d.find_elements(By.CSS_SELECTOR, "g.node text.label, g.node text")]
        return f"map nodes {sorted(a.node_map)} drawn (labels {labels}); summary {last}; link ends {ends}"

    # e ------------------------------------------------------------------
    def screenshot(self):
        path = os.path.join(self.a.out, "topology.png")
        svg = self.d.find_element(By.CSS_SELECTOR, "app-project-map")
        self.d.save_screenshot(path)
        svg.screenshot(os.path.join(self.a.out, "topology-map.png"))
        return f"saved {path} ({os.path.getsize(path)} bytes) and topology-map.png"

    # d ------------------------------------------------------------------
    def node_menu(self, nid, item, done=None):
        """Right-click node `nid` on the map and click menu item `item`;
        `done(driver)` tells the click took effect (default: menu closing)."""
        d = self.d
        target = d.find_element(By.CSS_SELECTOR, f'g.node[node_id="{nid}"] g.node_body')
        xp = ("//div[contains(@class,'mat-menu-panel')]//button[contains(@class,'mat-menu-item')]"
              f"[.//span[normalize-space()='{item}']]")
        # The mat-menu opens with an animation (scale/opacity); a click while
        # it runs is either intercepted by the item's own <span> or lost.
        # So wait for the panel to be fully opaque and unscaled, click, and
        # check the menu closed (it does on a handled item click); retry.
        settled = ("const p = document.querySelector('.cdk-overlay-container .mat-menu-panel');"
                   "if (!p) return false; const s = getComputedStyle(p);"
                   "return s.opacity === '1' && (s.transform === 'none' || s.transform === 'matrix(1, 0, 0, 1, 0, 0)');")
        menu_open = "return !!document.querySelector('.cdk-overlay-container .mat-menu-panel');"
        # Closing has begun once the panel is gone or fading. (After "in new
        # tab" the fade-out stalls, as the page loses focus to the new tab,
        # so the panel can stay in the DOM at partial opacity for a while.)
        closing = ("const p = document.querySelector('.cdk-overlay-container .mat-menu-panel');"
                   "return !p || getComputedStyle(p).opacity !== '1';")
        for attempt in range(3):
            if d.execute_script(menu_open):
                ActionChains(d).send_keys(Keys.ESCAPE).perform()
                self.wait(5).until(lambda _: not d.execute_script(menu_open))
            ActionChains(d).context_click(target).perform()
            self.wait(10).until(lambda _: d.execute_script(settled))
            try:
                d.find_element(By.XPATH, xp).click()
            except ElementClickInterceptedException:
                self.log(f"menu click on {item!r} intercepted, retrying")
                continue
            try:
                self.wait(5).until(done or (lambda _: d.execute_script(closing)))
                return
            except TimeoutException:
                self.log(f"menu still open after clicking {item!r}, retrying")
        raise AssertionError(f"could not click node menu item {item!r}")

    def read_xterm(self, term):
        """Select the (visible part of the) terminal with a mouse drag and
        copy the selection."""
        d = self.d
        screen = term.find_element(By.CSS_SELECTOR, ".xterm-screen")
        # From the top-left cell to the bottom-right corner of the part of
        # .xterm-screen inside the viewport (the full-window console is 2px
        # wider than the viewport and pointer moves outside it fail), in
        # viewport coordinates.
        x0, y0, x1, y1 = (int(v) for v in d.execute_script(
            "const r = arguments[0].getBoundingClientRect();"
            "return [r.left, r.top, Math.min(r.right, innerWidth - 20),"
            "        Math.min(r.bottom, innerHeight - 20)];", screen))
        ab = ActionBuilder(d)
        ab.pointer_action.move_to_location(x0 + 2, y0 + 2)
        ab.pointer_action.pointer_down()
        ab.pointer_action.move_to_location(x1 - 2, y1 - 2)
        ab.pointer_action.pointer_up()
        ab.perform()
        text = d.execute_script(XTERM_COPY, term)
        # Drop the selection again with a plain click inside the terminal.
        ab = ActionBuilder(d)
        ab.pointer_action.move_to_location(x0 + 5, y0 + 5)
        ab.pointer_action.click()
        ab.perform()
        return text

    def wait_text(self, term, prompt, count=1, secs=20):
        last = ""
        end = time.time() + secs
        while time.time() < end:
            last = self.read_xterm(term)
            if last.count(prompt) >= count:
                return last
            time.sleep(0.5)
        raise AssertionError(f"no {count}x {prompt!r} in terminal; it shows {last!r}; "
                             f"websockets: {self.ws_state()}")

    def ws_state(self):
        return self.d.execute_script("return window.__ws || []")

    def type_enter(self, term):
        ta = term.find_element(By.CSS_SELECTOR, "textarea.xterm-helper-textarea")
        ta.send_keys(Keys.ENTER)

    def console_widget(self):
        try:
            return self._console_widget()
        finally:
            # Close the widget (its window X, the last "close" icon button in
            # app-console-wrapper) so it does not cover the map/nodes.
            closers = self.d.find_elements(
                By.XPATH, "//app-console-wrapper//mat-icon[normalize-space()='close']/ancestor::button[1]")
            if closers:
                try:
                    closers[-1].click()
                except Exception as e:  # noqa: BLE001
                    self.log(f"could not close the console widget: {e}")

    def _console_widget(self):
        a = self.a
        nid = a.node_map[a.console]
        prompt = a.console + ">"
        t = time.time()
        self.node_menu(nid, "Web console", done=lambda d: d.find_elements(
            By.CSS_SELECTOR, "app-console-wrapper app-web-console"))
        term = self.wait(15).until(EC.visibility_of_element_located(
            (By.CSS_SELECTOR, "app-console-wrapper app-web-console .xterm")))
        t_open = time.time() - t
        text = self.wait_text(term, prompt)
        t_prompt = time.time() - t
        n = text.count(prompt)
        self.type_enter(term)
        text = self.wait_text(term, prompt, n + 1)
        t_echo = time.time() - t
        ping = ""
        if a.ping:
            # VPCS 0.5b2 prints "<ip> icmp_seq=N ttl=64 time=0.123 ms" per
            # reply (0.8 prefixes "84 bytes from "), "... timeout" otherwise.
            ta = term.find_element(By.CSS_SELECTOR, "textarea.xterm-helper-textarea")
            ta.send_keys(f"ping {a.ping} -c 2" + Keys.ENTER)
            text = self.wait_text(term, prompt, n + 2, secs=30)
            replies = [ln.strip() for ln in text.splitlines()
                       if a.ping in ln and "icmp_seq=" in ln and "time=" in ln]
            if not replies:
                raise AssertionError(f"no ping replies from {a.ping} in {text!r}")
            ping = f"; ping {a.ping} -c 2 -> {replies}"
        self.d.save_screenshot(os.path.join(self.a.out, "console.png"))
        ws = [w for w in self.ws_state() if "/console/ws" in w["url"]]
        tail = [ln for ln in text.splitlines() if ln.strip()][-3:]
        return (f"xterm shown after {t_open:.2f}s, prompt {prompt!r} after {t_prompt:.2f}s, "
                f"Enter -> new prompt after {t_echo:.2f}s; last lines {tail}; "
                f"ws {[(w['url'].split('?')[0], w['opened'], w['closed'], len(w['rx'])) for w in ws]}"
                + ping)

    def console_tab(self):
        a, d = self.a, self.d
        nid = a.node_map[a.console]
        prompt = a.console + ">"
        main = d.current_window_handle
        before = set(d.window_handles)
        t = time.time()
        self.node_menu(nid, "Web console in new tab",
                       done=lambda _: len(set(d.window_handles) - before) >= 1)
        self.wait(10).until(lambda _: len(set(d.window_handles) - before) == 1)
        d.switch_to.window((set(d.window_handles) - before).pop())
        try:
            # The route is /static/web-ui/controller/<c>/project/<p>/nodes/<n>,
            # a bare xterm (app-web-console-full-window) filling the tab.
            term = self.wait(20).until(EC.visibility_of_element_located(
                (By.CSS_SELECTOR, "app-web-console-full-window .xterm")))
            url = d.current_url
            try:
                text = self.wait_text(term, prompt)
            except AssertionError:
                # For diagnosis: reload the tab with the websocket tap in it.
                d.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": WS_TAP})
                d.refresh()
                term = self.wait(20).until(EC.visibility_of_element_located(
                    (By.CSS_SELECTOR, "app-web-console-full-window .xterm")))
                text = self.wait_text(term, prompt)
                self.log("prompt only seen after reloading the console tab")
            t_prompt = time.time() - t
            n = text.count(prompt)
            self.type_enter(term)
            self.wait_text(term, prompt, n + 1)
            t_echo = time.time() - t
            d.save_screenshot(os.path.join(self.a.out, "console-tab.png"))
        finally:
            try:
                self.browser_log += [dict(e, tab="console") for e in d.get_log("browser")]
            except Exception:
                pass
            d.close()
            d.switch_to.window(main)
        return (f"{url}: prompt {prompt!r} after {t_prompt:.2f}s, "
                f"Enter -> new prompt after {t_echo:.2f}s")

    def run(self):
        a = self.a
        ok = self.step("a", "log in through the login form", self.login)
        ok = ok and self.step("b", "open the project", self.open_project)
        ok = ok and self.step("c", "nodes drawn and shown started", self.check_nodes)
        if ok:
            self.step("e", "screenshot of the topology", self.screenshot)
            self.step("d1", f"web console widget of {a.console}", self.console_widget)
            self.step("d2", f"web console in new tab of {a.console}", self.console_tab)
        try:
            self.browser_log += self.d.get_log("browser")
        except Exception:
            pass
        with open(os.path.join(a.out, "browser.log"), "w") as f:
            for e in self.browser_log:
                f.write(json.dumps(e) + "\n")
        try:
            ws = self.ws_state()
        except Exception:
            ws = []
        with open(os.path.join(a.out, "websockets.json"), "w") as f:
            json.dump(ws, f, indent=1)
        with open(os.path.join(a.out, "result.json"), "w") as f:
            json.dump(self.results, f, indent=1)
        return all(r["ok"] for r in self.results.values()) and set(self.results) == {"a", "b", "c", "e", "d1", "d2"}


def main():
    a = parse()
    r = Run(a)
    try:
        ok = r.run()
    finally:
        r.d.quit()
    r.log("ALL PASS" if ok else "SOME STEP FAILED", json.dumps({k: v["ok"] for k, v in r.results.items()}))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
