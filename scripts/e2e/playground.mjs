// Drives the playground page (GET /) in headless Chromium against a running server.
// Environment: BASE_URL (loopback only), IMAGE (a corpus file), BAD_IMAGE (a file the
// server refuses), DROP_IMAGE (a small PNG to drag and drop; optional), SCREENSHOT (PNG
// path), USER_DATA_DIR (a fresh, empty directory), CHROMIUM (optional).
// Exits non-zero on the first failed check.

import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { basename } from "node:path";
import { chromium } from "playwright-core";

const { BASE_URL, IMAGE, BAD_IMAGE, SCREENSHOT, USER_DATA_DIR } = process.env;
const DROP_IMAGE = process.env.DROP_IMAGE || new URL("../../test-images/png-palette-8bit.png", import.meta.url).pathname;
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const STEP_MS = 60_000;

const base = new URL(BASE_URL);
if (!["127.0.0.1", "localhost", "[::1]"].includes(base.hostname)) {
  throw new Error(`BASE_URL must be loopback, not ${BASE_URL}`);
}

const problems = [];
let stepName = "";
let expectFailedLoads = false;
const step = (name) => {
  stepName = name;
  console.log(`- ${name}`);
};
function check(cond, message) {
  if (!cond) throw new Error(message);
}

const context = await chromium.launchPersistentContext(USER_DATA_DIR, {
  executablePath: CHROMIUM,
  headless: true,
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
  viewport: { width: 1240, height: 900 },
  deviceScaleFactor: 1,
  timeout: STEP_MS,
});

try {
  // Nothing may leave loopback: anything else is refused and fails the run.
  await context.route("**/*", (route) => {
    const url = new URL(route.request().url());
    if (url.host === base.host || url.protocol === "data:" || url.protocol === "blob:") {
      return route.continue();
    }
    problems.push(`request off the server: ${url.href}`);
    return route.abort();
  });
  const page = context.pages()[0] || (await context.newPage());
  page.setDefaultTimeout(STEP_MS);
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => {
    // The error steps provoke 4xx answers, which Chromium logs as failed loads.
    const expected = expectFailedLoads && /status of 4\d\d/.test(m.text());
    if (m.type() === "error" && !expected) {
      problems.push(`console error: ${m.text()}`);
    }
  });

  step("open the page");
  const resp = await page.goto(`${BASE_URL}/`);
  check(resp.status() === 200, `GET / answered ${resp.status()}`);
  check((await page.title()) === "progimage playground", "unexpected title");
  const csp = resp.headers()["content-security-policy"] || "";
  check(csp.startsWith("default-src 'self'"), `CSP: ${csp}`);

  step(`upload ${basename(IMAGE)} through the file input`);
  const expectedId = createHash("sha256").update(readFileSync(IMAGE)).digest("hex");
  await page.setInputFiles("#file", IMAGE);
  await page.waitForFunction(() => document.getElementById("meta-id")?.textContent.length === 64);
  const shownId = await page.textContent("#meta-id");
  check(shownId === expectedId, `shown id ${shownId} is not the file's SHA-256 ${expectedId}`);

  step("metadata, ASCII art and variants appear");
  const rows = await page.$$eval("#meta-rows tr", (trs) => trs.map((tr) => tr.textContent));
  check(rows.some((r) => r.startsWith("size") && /\d+ × \d+ px/.test(r)), `metadata: ${rows}`);
  await page.waitForFunction(() => {
    const lines = document.getElementById("ascii").textContent.split("\n").filter(Boolean);
    return lines.length > 5 && lines.every((l) => l.length === 100);
  });
  await page.waitForFunction(
    () => {
      const figs = [...document.querySelectorAll("figure.variant")];
      return figs.length >= 4 && figs.every((f) => f.dataset.loaded === "1");
    },
    null,
    { timeout: 120_000 },
  );
  const widths = await page.$$eval("figure.variant img", (imgs) => imgs.map((i) => i.naturalWidth));
  check(widths.every((w) => w > 0 && w <= 300), `variant widths ${widths}`);
  check((await page.$$(".variant .err")).length === 0, "a variant shows an error");

  step("edit the transform: the URL and the image follow");
  await page.fill("#f-h", "320");
  await page.selectOption("#f-fit", "cover");
  await page.fill("#f-w", "480");
  const want = `/image/${expectedId}/w_480,h_320,fit_cover.webp`;
  await page.waitForFunction((u) => document.getElementById("result-url").textContent === u, want);
  await page.waitForFunction(
    (u) => {
      const img = document.getElementById("result-img");
      return img && img.dataset.url === u && img.complete && img.naturalWidth > 0;
    },
    want,
  );
  const size = await page.$eval("#result-img", (i) => [i.naturalWidth, i.naturalHeight]);
  check(size[0] === 480 && size[1] === 320, `result is ${size}, wanted 480×320`);
  check(!(await page.isVisible("#result-error")), "an error is shown for a good transform");

  step("coloured ASCII art loads in its frame");
  await page.check("#ascii-colour");
  const frame = page.frameLocator("#ascii-frame");
  await frame.locator("pre span").first().waitFor();
  const spans = await frame.locator("pre span").count();
  check(spans > 10, `coloured ASCII has ${spans} colour runs`);
  await page.uncheck("#ascii-colour");
  await page.waitForSelector("#ascii:not(.hidden)");

  step(`screenshot to ${SCREENSHOT}`);
  await page.waitForFunction(() =>
    [...document.images].every((i) => i.complete && i.naturalWidth > 0),
  );
  await page.screenshot({ path: SCREENSHOT, fullPage: true });

  step("a bad transform shows the server's error");
  expectFailedLoads = true;
  await page.fill("#f-blur", "500");
  await page.waitForSelector("#result-error:not(.hidden)");
  const error = await page.textContent("#result-error");
  check(/^400 bad_transform: .*blur/.test(error), `error text: ${error}`);
  check((await page.textContent("#result-url")).includes("blur_500"), "URL lacks blur_500");

  step("a refused upload shows the server's error");
  await page.setInputFiles("#file", BAD_IMAGE);
  await page.waitForSelector("#upload-error:not(.hidden)");
  const uploadError = await page.textContent("#upload-error");
  check(/^415 unsupported_format: /.test(uploadError), `upload error text: ${uploadError}`);

  step("clearing the bad value brings the result back");
  await page.fill("#f-blur", "");
  await page.waitForSelector("#result-error.hidden", { state: "attached" });
  await page.waitForFunction(() => {
    const urlText = document.getElementById("result-url")?.textContent || "";
    return !urlText.includes("blur_500");
  });
  // Let any load still in flight for the refused URL finish before errors count again.
  await page.waitForLoadState("networkidle");
  expectFailedLoads = false;

  step("drag and drop another image");
  const dropped = readFileSync(DROP_IMAGE);
  const droppedId = createHash("sha256").update(dropped).digest("hex");
  await page.evaluate(
    ([b64, name]) => {
      const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const data = new DataTransfer();
      data.items.add(new File([bytes], name, { type: "image/png" }));
      const target = document.getElementById("drop");
      for (const type of ["dragenter", "dragover", "drop"]) {
        target.dispatchEvent(new DragEvent(type, { dataTransfer: data, bubbles: true, cancelable: true }));
      }
    },
    [dropped.toString("base64"), basename(DROP_IMAGE)],
  );
  await page.waitForFunction((id) => document.getElementById("meta-id")?.textContent === id, droppedId);
  check(!(await page.isVisible("#upload-error")), "the upload error is still shown after a good upload");

  check(problems.length === 0, problems.join("\n"));
  console.log("playground e2e: all checks passed");
} catch (e) {
  console.error(`FAILED at "${stepName}": ${e.message}`);
  if (problems.length) console.error(problems.join("\n"));
  process.exitCode = 1;
} finally {
  await context.close().catch(() => {});
}
