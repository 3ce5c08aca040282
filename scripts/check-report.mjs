// Opens the study's index.html in headless Chromium (playwright-core, Debian's /usr/bin/chromium)
// and checks it: no request leaves file:/data:, every <img> decodes to a picture that is not one
// flat colour, every figure holds one, no console errors, no <script>, the ten experiment
// sections, every model's row of the MSE table with every number in a sane range, each of
// the seed's observations present and judged, and every trained model's graph (the unpooling
// CAEs' with their three index links); then saves a full-page screenshot.
//
//   node scripts/check-report.mjs REPORT.html SCREENSHOT.png
//
// Env: CHROMIUM (default /usr/bin/chromium), REPORT_CHECK_MODULES (a node_modules folder holding
// playwright-core; default .cache/report-check/node_modules), REPORT_CHECK_MIN_IMAGES (raises the
// minimum of 50 images; it cannot lower it).
// Prints one line "report ok: ..." and exits 0, or prints every failure and exits 1.

import { createRequire } from "node:module";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const EXPERIMENTS = ["pca", "ae", "hidden", "non-digit", "sparse", "denoise", "manifold", "cae-unpool", "cae-deconv", "cae-deconv-unpool", "probe"];
// The Representations section (id "probe") must show each of its kinds of figure.
const PROBE_FIGURES = ["_map.svg", "_interpolation.png", "_per_digit.svg"];
// A full `all` run draws far more; the floor only rises from outside.
const MIN_IMAGES = Math.max(50, Number(process.env.REPORT_CHECK_MIN_IMAGES) || 0);
// Every model whose test MSE the report must list (report.rs's REFERENCE, plus the plain h900
// AE that the sparse section compares against).
const MODELS = ["pca", "ae", "h64", "h128", "h256", "h900", "sparse-0.001", "sparse-0.1", "sparse-1", "denoise-0.1",
  "denoise-0.3", "denoise-0.7", "manifold", "cae-unpool", "cae-deconv", "cae-deconv-unpool"];
// The seed's observations (report.rs's `orderings`), each of which must be listed and judged.
const OBSERVATIONS = [
  "error falls as h grows", "error rises with lambda", "error rises with sigma", "sparse codes are sparser",
  "the deep AE beats PCA", "CAE: deconv+unpool < unpool < deconv",
];
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
  const facts = await page.evaluate(async ({ experiments, models, observations, probeFigures }) => {
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
    // The MSE table: model, this run, reference, from, mean |code|. A number is a number in
    // full (Number("") is 0, so cells are matched, not converted); each lies in a sane range:
    // a test MSE per pixel of [0, 1] images is above 0 and below 0.25 (an all-zero output
    // scores about 0.11, the worst constant 1), a mean |code| is finite and not negative.
    const table = document.querySelector("table");
    const rows = table ? [...table.querySelectorAll("tr")].filter((tr) => tr.querySelector("td")) : [];
    // Over several seeds a cell reads "mean ± sd": the mean is the number checked.
    const number = (cell) => {
      const s = cell.split(" ± ")[0];
      return /^[0-9]+(\.[0-9]+)?(e-?[0-9]+)?$/.test(s) ? Number(s) : NaN;
    };
    const badRows = [];
    const listed = [];
    for (const tr of rows) {
      const cells = [...tr.querySelectorAll("td")].map((td) => td.textContent.trim());
      const [model, mse, ref, from, code] = cells;
      const problems = [];
      if (cells.length !== 5) problems.push(`${cells.length} cells, not 5`);
      if (!model) problems.push("no model");
      if (!(number(mse) > 0 && number(mse) < 0.25)) problems.push(`test MSE "${mse}"`);
      // The seed or the PyTorch peer gives a reference for every model but h900.
      if (model === "h900" ? ref || from : !(number(ref) > 0 && number(ref) < 0.25 && ["seed", "PyTorch peer"].includes(from)))
        problems.push(`reference "${ref}" from "${from}"`);
      // PCA has no code activation; every network does.
      if (model === "pca" ? code : !(number(code) >= 0 && number(code) < 1e3)) problems.push(`mean |code| "${code}"`);
      if (problems.length) badRows.push(`${model || "?"}: ${problems.join(", ")}`);
      listed.push(model);
    }
    const missingModels = models.filter((m) => !listed.includes(m));
    const duplicated = listed.filter((m, i) => listed.indexOf(m) !== i);
    // The observations: one list item each, judged "holds:" or "does not hold:".
    const items = [...document.querySelectorAll("li")].map((li) => li.textContent.trim());
    const judged = (li) => /^(holds|holds within noise|does not hold): /.test(li);
    const missingObservations = observations.filter((o) => !items.some((li) => judged(li) && li.includes(o)));
    const unjudged = items.filter((li) => !judged(li));
    // Each picture drawn onto a canvas and read back: a blank or single-colour image is a
    // figure that shows nothing. (data: images leave the canvas readable.)
    const flat = [];
    const unreadable = [];
    imgs.forEach((img, i) => {
      if (!img.naturalWidth || !img.naturalHeight) return; // counted as broken above
      const name = img.alt || `image #${i}`;
      const canvas = document.createElement("canvas");
      canvas.width = Math.min(img.naturalWidth, 1024);
      canvas.height = Math.min(img.naturalHeight, 1024);
      const ctx = canvas.getContext("2d", { willReadFrequently: true });
      ctx.fillStyle = "#fff";
      ctx.fillRect(0, 0, canvas.width, canvas.height);
      ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
      let data;
      try {
        data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
      } catch (e) {
        unreadable.push(`${name} (${e.message})`);
        return;
      }
      let differs = false;
      for (let p = 4; p < data.length && !differs; p += 4) {
        differs = data[p] !== data[0] || data[p + 1] !== data[1] || data[p + 2] !== data[2];
      }
      if (!differs) flat.push(name);
    });
    // Every trained model's tape (NAME.graph.svg, drawn by src/graph): loaded, and in each
    // unpooling CAE's graph, one dashed index link per unpool (three).
    const graphs = models.filter((m) => m !== "pca").map((m) => [m, imgs.find((img) => img.alt === `${m}.graph.svg`)]);
    const graphless = graphs.filter(([, img]) => !img || !img.naturalWidth).map(([m]) => m);
    const unlinked = graphs
      .filter(([m, img]) => img && ["cae-unpool", "cae-deconv-unpool"].includes(m))
      .filter(([, img]) => {
        const text = atob(img.getAttribute("src").split(",")[1]);
        return (text.match(/stroke-dasharray/g) ?? []).length !== 3 || (text.match(/>max_unpool2d</g) ?? []).length !== 3;
      })
      .map(([m]) => m);
    const alts = [...document.images].map((img) => img.alt);
    const probeMissing = probeFigures.filter((k) => !alts.some((a) => a.endsWith(k)));
    const figures = [...document.querySelectorAll("figure")];
    const uncaptioned = figures.filter((f) => !f.querySelector("figcaption")?.textContent.trim()).length;
    const imageless = figures.filter((f) => f.querySelectorAll("img").length !== 1).length;
    const loose = imgs.filter((img) => !img.closest("figure")).length;
    // Every experiment section has at least one figure before the next heading.
    const empty = sections.filter((id) => {
      let el = document.getElementById(id).nextElementSibling;
      while (el && !/^H[1-6]$/.test(el.tagName)) {
        if (el.tagName === "FIGURE" || el.querySelector?.("img")) return false;
        el = el.nextElementSibling;
      }
      return true;
    });
    return {
      probeMissing,
      images: imgs.length, png, svg, broken, invisible, overflowing, nonLocal,
      scripts: document.querySelectorAll("script").length,
      iframes: document.querySelectorAll("iframe, object, embed, link[rel=stylesheet], link[rel=preload]").length,
      sections: sections.length, missing, empty,
      headings: document.querySelectorAll("h2").length,
      rows: rows.length, badRows, missingModels, duplicated, missingObservations, unjudged, flat, unreadable,
      figures: figures.length, uncaptioned, imageless, loose, graphless, unlinked,
      title: document.title,
      height: document.documentElement.scrollHeight,
    };
  }, { experiments: EXPERIMENTS, models: MODELS, observations: OBSERVATIONS, probeFigures: PROBE_FIGURES });

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
  if (facts.badRows.length) failures.push(`MSE table rows with a missing or unlikely cell: ${facts.badRows.slice(0, 5).join(" | ")}`);
  if (facts.missingModels.length) failures.push(`models missing from the MSE table: ${facts.missingModels.join(", ")}`);
  if (facts.duplicated.length) failures.push(`models listed twice in the MSE table: ${facts.duplicated.join(", ")}`);
  if (facts.missingObservations.length) failures.push(`observations missing or not judged: ${facts.missingObservations.join(" | ")}`);
  if (facts.unjudged.length) failures.push(`list items that judge nothing: ${facts.unjudged.slice(0, 5).join(" | ")}`);
  if (facts.flat.length) failures.push(`${facts.flat.length} images are one flat colour: ${facts.flat.slice(0, 10).join(", ")}`);
  if (facts.unreadable.length) failures.push(`${facts.unreadable.length} images could not be read back: ${facts.unreadable.slice(0, 5).join(", ")}`);
  if (facts.graphless.length) failures.push(`models without their graph (NAME.graph.svg): ${facts.graphless.join(", ")}`);
  if (facts.unlinked.length) failures.push(`graphs without one dashed index link per unpool: ${facts.unlinked.join(", ")}`);
  if (facts.probeMissing.length) failures.push(`Representations figures missing: ${facts.probeMissing.join(", ")}`);
  if (facts.uncaptioned) failures.push(`${facts.uncaptioned} figures have no caption`);
  if (facts.imageless) failures.push(`${facts.imageless} figures do not hold exactly one image`);
  if (facts.loose) failures.push(`${facts.loose} images stand outside any figure`);
  if (facts.figures !== facts.images) failures.push(`${facts.figures} figures for ${facts.images} images`);
  // One heading for the table, one for the observations, one per experiment.
  if (facts.headings !== EXPERIMENTS.length + 2) failures.push(`${facts.headings} section headings, expected ${EXPERIMENTS.length + 2}`);

  await page.screenshot({ path: shot, fullPage: true, timeout: TIMEOUT_MS });
  summary =
    `report ok: ${facts.images} images loaded (${facts.png} PNG, ${facts.svg} SVG), ` +
    `${facts.sections}/${EXPERIMENTS.length} experiment sections, ${facts.rows} MSE rows (${MODELS.length} models), ` +
    `${OBSERVATIONS.length} observations judged, ${MODELS.length - 1} model graphs, no flat image, ` +
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
