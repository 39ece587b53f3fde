#!/usr/bin/env python3
"""Look at nanolab's status page in headless Chromium (tests/it/status.rs).

Opens URL, waits until the topology is drawn and a link's label shows a
rate above zero (the page updates itself in place: a marker set on the
window must survive, so it was not reloaded), saves a screenshot, and
prints one JSON object: the texts of the drawing, the link labels, the
sparkline count, whether the page kept its marker.

usage: look.py URL OUT_DIR
"""
import json
import re
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

url, out = sys.argv[1], sys.argv[2]
opts = webdriver.ChromeOptions()
opts.binary_location = "/usr/bin/chromium"
for a in ["--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1800"]:
    opts.add_argument(a)
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
result = {}
try:
    driver.get(url)
    driver.execute_script("window.__kept = 'yes';")
    moving = re.compile(r"\u2192 ([0-9.]+[kMG]?) f/s")
    deadline = time.time() + 40
    rates = []
    while time.time() < deadline:
        labels = [t.text for t in driver.find_elements(By.CSS_SELECTOR, "svg.topology text.rate")]
        rates = [m.group(1) for m in (moving.search(l) for l in labels) if m]
        graphs = driver.find_elements(By.CSS_SELECTOR, "svg.spark polyline")
        if any(r not in ("0", "0.0") for r in rates) and graphs:
            break
        time.sleep(0.5)
    svg = driver.find_element(By.CSS_SELECTOR, "svg.topology")
    result["texts"] = [t.get_attribute("textContent") for t in svg.find_elements(By.TAG_NAME, "text")]
    result["rate_labels"] = [t.get_attribute("textContent") for t in svg.find_elements(By.CSS_SELECTOR, "text.rate")]
    result["sparklines"] = len(driver.find_elements(By.CSS_SELECTOR, "svg.spark polyline"))
    result["kept"] = driver.execute_script("return window.__kept || null;")
    result["tables"] = driver.find_element(By.ID, "lab").text
    driver.save_screenshot(out + "/status.png")
finally:
    driver.quit()
print(json.dumps(result))
