// Opens the study's index.html in headless Chromium (playwright-core, Debian's /usr/bin/chromium)
// and checks it: no request leaves file:/data:, every <img> decodes, no console errors, no
// <script>, the ten experiment sections, the Representations section with its maps, interpolations
// and per-digit bars, and a filled MSE table; then saves a full-page screenshot.
//
//   node scripts/check-report.mjs REPORT.html SCREENSHOT.png
//
// Env: CHROMIUM (default /usr/bin/chromium), REPORT_CHECK_MODULES (a node_modules folder holding
// playwright-core; default .cache/report-check/node_modules), REPORT_CHECK_MIN_IMAGES (default 50).
// Prints one line "report ok: ..." and exits 0, or prints every failure and exits 1.

import { createRequire } from "node:module";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const EXPERIMENTS = ["pca", "ae", "hidden", "non-digit", "sparse", "denoise", "manifold", "cae-unpool", "cae-deconv", "cae-deconv-unpool", "probe"];
// The Representations section (id "probe") must show each of its kinds of figure.
const PROBE_FIGURES = ["_map.svg", "_interpolation.png", "_per_digit.svg"];
const MIN_IMAGES = Number(process.env.REPORT_CHECK_MIN_IMAGES ?? 50);
const TIMEOUT_MS = 90_000;

const [reportArg, shotArg] = process.argv.slice(2);
if (!reportArg || !shotArg) {
  console.error("usage: node scripts/check-report.mjs REPORT.html SCREENSHOT.png");
  process.exit(2);
}
const report = resolve(reportArg);
const shot = resolve(shotArg);
try {
  statSync(report);
} catch {
  console.error(`report check FAILED: no report at ${report}`);
  process.exit(1);
}

const here = dirname(fileURLToPath(import.meta.url));
const modules = resolve(process.env.REPORT_CHECK_MODULES ?? join(here, "..", ".cache", "report-check", "node_modules"));
let chromium;
try {
  ({ chromium } = createRequire(join(modules, "_"))("playwright-core"));
} catch (e) {
  console.error(`report check FAILED: cannot load playwright-core from ${modules} (${e.message.split("\n")[0]}); run scripts/check-report.sh, which installs it`);
  process.exit(1);
}

const failures = [];
const consoleErrors = [];
const blocked = new Set(); // non-local URLs the page asked for
const profile = mkdtempSync(join(tmpdir(), "report-check-profile-"));
let browser;
let summary;
try {
  // A fresh profile, and none of Chromium's own traffic (refused by a closed network anyway).
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
    viewport: { width: 1280, height: 900 },
    timeout: TIMEOUT_MS,
  });
  browser = context;
  const local = (url) => url.startsWith("file:") || url.startsWith("data:");
  // Every request that is not file: or data: is refused and counted, whoever makes it.
  await context.route("**/*", (route) => {
    const url = route.request().url();
    if (local(url)) return route.continue();
    blocked.add(url);
    return route.abort("blockedbyclient");
  });
  context.on("request", (req) => {
    const url = req.url();
    if (!local(url)) blocked.add(url);
  });
  const page = context.pages()[0] ?? (await context.newPage());
  page.on("websocket", (ws) => blocked.add(ws.url()));
  page.on("console", (msg) => {
    if (msg.type() === "error") consoleErrors.push(msg.text());
  });
  page.on("pageerror", (err) => consoleErrors.push(`page error: ${err.message}`));
  page.on("crash", () => failures.push("the page crashed"));

  const response = await page.goto(pathToFileURL(report).href, { waitUntil: "load", timeout: TIMEOUT_MS });
  if (response && !response.ok()) failures.push(`loading the page answered ${response.status()}`);

  // Wait for every image to decode (data: URIs decode asynchronously), then measure.
  const facts = await page.evaluate(async ([experiments, probeKinds]) => {
    const imgs = [...document.images];
    await Promise.all(imgs.map((img) => img.decode().catch(() => {})));
    const vw = document.documentElement.clientWidth;
    const broken = [];
    const invisible = [];
    const overflowing = [];
    const nonLocal = [];
    let png = 0;
    let svg = 0;
    imgs.forEach((img, i) => {
      const name = img.alt || `image #${i}`;
      const src = img.getAttribute("src") ?? "";
      if (src.startsWith("data:image/png")) png++;
      else if (src.startsWith("data:image/svg+xml")) svg++;
      else nonLocal.push(`${name} (${src.slice(0, 60)})`);
      if (!img.complete || img.naturalWidth === 0 || img.naturalHeight === 0) broken.push(name);
      const box = img.getBoundingClientRect();
      if (box.width < 1 || box.height < 1) invisible.push(name);
      if (box.right > vw + 0.5) overflowing.push(name);
    });
    const sections = experiments.filter((id) => {
      const el = document.getElementById(id);
      return el && /^H[1-6]$/.test(el.tagName);
    });
    const missing = experiments.filter((id) => !sections.includes(id));
    // The MSE table: the first table; a header row and rows of model, number, ...
    const table = document.querySelector("table");
    const rows = table ? [...table.querySelectorAll("tr")].filter((tr) => tr.querySelector("td")) : [];
    const badRows = rows
      .filter((tr) => {
        const cells = [...tr.querySelectorAll("td")].map((td) => td.textContent.trim());
        return cells.length < 2 || !cells[0] || !Number.isFinite(parseFloat(cells[1]));
      })
      .map((tr) => tr.textContent.trim().slice(0, 60));
    const figures = [...document.querySelectorAll("figure")];
    const uncaptioned = figures.filter((f) => !f.querySelector("figcaption")?.textContent.trim()).length;
    // Every experiment section has at least one figure before the next heading.
    const empty = sections.filter((id) => {
      let el = document.getElementById(id).nextElementSibling;
      while (el && !/^H[1-6]$/.test(el.tagName)) {
        if (el.tagName === "FIGURE" || el.querySelector?.("img")) return false;
        el = el.nextElementSibling;
      }
      return true;
    });
    const alts = imgs.map((img) => img.alt);
    const probeMissing = probeKinds.filter((k) => !alts.some((a) => a.endsWith(k)));
    return {
      probeMissing,
      images: imgs.length, png, svg, broken, invisible, overflowing, nonLocal,
      scripts: document.querySelectorAll("script").length,
      iframes: document.querySelectorAll("iframe, object, embed, link[rel=stylesheet], link[rel=preload]").length,
      sections: sections.length, missing, empty,
      headings: document.querySelectorAll("h2").length,
      rows: rows.length, badRows,
      figures: figures.length, uncaptioned,
      title: document.title,
      height: document.documentElement.scrollHeight,
    };
  }, [EXPERIMENTS, PROBE_FIGURES]);

  if (facts.images < MIN_IMAGES) failures.push(`only ${facts.images} images (expected at least ${MIN_IMAGES})`);
  if (facts.broken.length) failures.push(`${facts.broken.length} images did not load: ${facts.broken.slice(0, 10).join(", ")}`);
  if (facts.invisible.length) failures.push(`${facts.invisible.length} images render with no area: ${facts.invisible.slice(0, 10).join(", ")}`);
  if (facts.overflowing.length) failures.push(`${facts.overflowing.length} images stick out of the page: ${facts.overflowing.slice(0, 10).join(", ")}`);
  if (facts.nonLocal.length) failures.push(`${facts.nonLocal.length} images are not embedded PNG/SVG data: URIs: ${facts.nonLocal.slice(0, 5).join(", ")}`);
  if (facts.scripts) failures.push(`the page has ${facts.scripts} <script> elements`);
  if (facts.iframes) failures.push(`the page has ${facts.iframes} iframe/object/embed/external stylesheet elements`);
  if (facts.missing.length) failures.push(`experiment headings missing: ${facts.missing.join(", ")}`);
  if (facts.empty.length) failures.push(`experiment sections without a figure: ${facts.empty.join(", ")}`);
  if (facts.rows === 0) failures.push("the MSE table has no rows");
  if (facts.badRows.length) failures.push(`MSE table rows without a model and a number: ${facts.badRows.slice(0, 5).join(" | ")}`);
  if (facts.probeMissing.length) failures.push(`Representations figures missing: ${facts.probeMissing.join(", ")}`);
  if (facts.uncaptioned) failures.push(`${facts.uncaptioned} figures have no caption`);

  await page.screenshot({ path: shot, fullPage: true, timeout: TIMEOUT_MS });
  summary =
    `report ok: ${facts.images} images loaded (${facts.png} PNG, ${facts.svg} SVG), ` +
    `${facts.sections}/${EXPERIMENTS.length} experiment sections, ${facts.rows} MSE rows, ` +
    `${facts.figures} captioned figures, 0 scripts, 0 network requests, 0 console errors, ` +
    `page ${facts.height}px tall; screenshot ${shot}`;
} catch (e) {
  failures.push(`the browser run failed: ${e.message.split("\n")[0]}`);
} finally {
  await browser?.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
}

if (blocked.size) failures.push(`the page tried the network (${blocked.size} URLs, all blocked): ${[...blocked].slice(0, 5).join(", ")}`);
if (consoleErrors.length) failures.push(`${consoleErrors.length} console errors: ${consoleErrors.slice(0, 5).join(" | ")}`);

if (failures.length) {
  for (const f of failures) console.error(`report check FAILED: ${f}`);
  process.exit(1);
}
console.log(summary);
