// End-to-end test in real VS Code: code-server (the VS Code 1.100 workbench, from npm) with the
// packaged .vsix installed, driven by Playwright in Debian's Chromium. It asserts what a user sees
// (highlighting, squiggles, the Problems panel, hovers, completion, formatting, quick fixes, the
// plan panel), reading the workbench's DOM and the files it saves, never the extension's insides.
//
//   node test/e2e/vscode.mjs --pipe PIPE --vsix FILE.vsix --code-server DIR --recipe kimi_vl.pipe
//        [--chromium /usr/bin/chromium] [--artifacts DIR]
//
// Every missing tool is an error (exit 1), never a skip. Screenshots of a failure, the plan panel
// and the logs go to --artifacts. Prints "vscode e2e: N passed, N failed".
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);

function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i += 2) {
    if (!argv[i].startsWith("--") || argv[i + 1] === undefined) {
      throw new Error(`bad argument ${argv[i]}: expected --name value pairs`);
    }
    out[argv[i].slice(2)] = argv[i + 1];
  }
  return out;
}

const args = parseArgs(process.argv.slice(2));
const artifacts = path.resolve(args.artifacts ?? "vscode-e2e-artifacts");
const chromiumPath = args.chromium ?? "/usr/bin/chromium";
const timeoutMs = Number(process.env.PIPE_E2E_TIMEOUT_MS ?? 30000);

function need(name, value, what) {
  if (!value) {
    throw new Error(`--${name} is required (${what})`);
  }
  if (!fs.existsSync(value)) {
    throw new Error(`${what} not found at ${value}: run scripts/install-test-tools.sh (and build pipe, package the .vsix)`);
  }
  return path.resolve(value);
}

const pipeBin = need("pipe", args.pipe, "the pipe binary");
const vsix = need("vsix", args.vsix, "the packaged extension");
const csDir = need("code-server", args["code-server"], "code-server");
const recipe = need("recipe", args.recipe, "the reference recipe");
need("chromium", chromiumPath, "Debian's chromium");
const csEntry = need("code-server", path.join(csDir, "out", "node", "entry.js"), "code-server's entry.js");
let chromium;
try {
  ({ chromium } = require("playwright-core"));
} catch (err) {
  throw new Error(`playwright-core is not installed (npm ci in editor/vscode): ${err.message}`);
}

fs.mkdirSync(artifacts, { recursive: true });
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "pipelang-vscode-e2e-"));
const ws = path.join(tmp, "ws");
fs.mkdirSync(ws);
const goodText = fs.readFileSync(recipe, "utf8");
const good = path.join(ws, "kimi_vl.pipe");
const broken = path.join(ws, "broken.pipe");
fs.writeFileSync(good, goodText);
// A model name misspelt in one stage: an undeclared name with a did-you-mean fix.
// (`llmm`: close enough to `llm` for the checker to know the fix.)
const brokenText = goodText.replace("stage text_pretrain {\n  train  = [llm]", "stage text_pretrain {\n  train  = [llmm]");
if (brokenText === goodText) {
  throw new Error(`cannot break ${recipe}: no 'stage text_pretrain {\\n  train  = [llm]' left to mutate`);
}
fs.writeFileSync(broken, brokenText);
const lines = goodText.split("\n");
/** 1-based line and column of `needle` on the first line holding `lineHas`. */
function where(lineHas, needle = lineHas) {
  const i = lines.findIndex((l) => l.includes(lineHas));
  if (i < 0) {
    throw new Error(`the recipe has no line with '${lineHas}'`);
  }
  return { line: i + 1, col: lines[i].indexOf(needle) + 1 };
}

const userDir = path.join(tmp, "user");
const extDir = path.join(tmp, "extensions");
fs.mkdirSync(path.join(userDir, "User"), { recursive: true });
fs.writeFileSync(
  path.join(userDir, "User", "settings.json"),
  JSON.stringify(
    {
      "pipelang.server.path": pipeBin,
      "workbench.startupEditor": "none",
      "workbench.tips.enabled": false,
      "workbench.enableExperiments": false,
      "security.workspace.trust.enabled": false,
      "telemetry.telemetryLevel": "off",
      "update.mode": "none",
      "extensions.autoCheckUpdates": false,
      "extensions.autoUpdate": false,
      "files.autoSave": "off",
      "editor.hover.delay": 100,
      "editor.minimap.enabled": false,
      "editor.inlayHints.enabled": "on",
      "window.restoreWindows": "none",
    },
    null,
    2,
  ),
);
const csEnv = { ...process.env, XDG_CONFIG_HOME: path.join(tmp, "config"), XDG_DATA_HOME: path.join(tmp, "data") };
const csArgs = ["--user-data-dir", userDir, "--extensions-dir", extDir, "--disable-telemetry", "--disable-update-check"];

const results = [];
let page;
let browser;
let server;
let serverLog = "";

async function step(name, fn) {
  const started = Date.now();
  try {
    await fn();
    results.push({ name, ok: true });
    console.log(`ok   ${name} (${((Date.now() - started) / 1000).toFixed(1)}s)`);
  } catch (err) {
    results.push({ name, ok: false });
    console.log(`FAIL ${name}: ${err.stack ?? err}`);
    if (page) {
      const shot = path.join(artifacts, `failure-${results.length}-${name.replace(/[^a-z0-9]+/gi, "_")}.png`);
      await page.screenshot({ path: shot }).catch(() => {});
      console.log(`     screenshot: ${shot}`);
    }
  }
}

async function until(what, fn, ms = timeoutMs) {
  const deadline = Date.now() + ms;
  let last;
  while (Date.now() < deadline) {
    try {
      last = await fn();
      if (last) {
        return last;
      }
    } catch (err) {
      last = err.message;
    }
    await new Promise((r) => setTimeout(r, 150));
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? ` (last: ${last})` : ""}`);
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on("error", reject);
  });
}

// ---------------------------------------------------------------- workbench helpers

async function palette(label) {
  await page.keyboard.press("F1");
  const input = page.locator(".quick-input-widget input");
  await input.waitFor({ state: "visible", timeout: timeoutMs });
  await input.fill(`>${label}`);
  const row = page.locator(".quick-input-list .monaco-list-row", { hasText: label }).first();
  await row.waitFor({ state: "visible", timeout: timeoutMs });
  // The exact command, not a longer one that shares its prefix ("Format Document With...").
  const rows = page.locator(".quick-input-list .monaco-list-row");
  const n = await rows.count();
  for (let i = 0; i < n; i++) {
    const text = (await rows.nth(i).locator(".label-name").first().textContent())?.trim();
    if (text === label) {
      await rows.nth(i).click();
      return;
    }
  }
  throw new Error(`no command named exactly '${label}' in the palette`);
}

async function open(file) {
  await page.keyboard.press("Escape");
  // The Explorer, not Quick Open: Quick Open ranks recently opened files first.
  await page
    .locator(".explorer-folders-view .monaco-list-row", { hasText: path.basename(file) })
    .first()
    .click();
  await until(`${path.basename(file)} to be the active editor`, async () =>
    (await page.locator(".tab.active").first().textContent())?.includes(path.basename(file)),
  );
  await page.locator(".editor-instance .monaco-editor .view-lines").first().waitFor();
}

async function cursor() {
  return (await page.locator('[id="status.editor.selection"]').textContent())?.trim() ?? "";
}

async function goTo(line, col) {
  await page.keyboard.press("Escape");
  await page.keyboard.press("Control+G");
  const input = page.locator(".quick-input-widget input");
  await input.waitFor({ state: "visible", timeout: timeoutMs });
  await input.fill(`:${line}:${col}`);
  await page.keyboard.press("Enter");
  await until(`the cursor at Ln ${line}, Col ${col}`, async () => (await cursor()).startsWith(`Ln ${line}, Col ${col}`));
}

async function save() {
  await page.keyboard.press("Control+S");
  await until("the editor to be saved", async () => (await page.locator(".tab.active.dirty").count()) === 0);
}

function problems() {
  return page.locator(".markers-panel .monaco-list-row");
}

// The Problems rows that match `text`, through the panel's own filter box: the list is
// virtualised, so a row pushed below the panel's edge (by other files' notes, say) is not in
// the page at all. The filter is cleared afterwards.
async function problemsMatching(text) {
  const filter = page.getByPlaceholder("Filter (e.g. text").first();
  await filter.fill(text);
  await new Promise((r) => setTimeout(r, 300));
  const rows = await problems().allTextContents();
  await filter.fill("");
  return rows;
}

async function squiggles() {
  return page.locator(".editor-instance .monaco-editor .squiggly-error").count();
}

// ---------------------------------------------------------------- the run

async function main() {
  const installed = spawnSync(process.execPath, [csEntry, ...csArgs, "--install-extension", vsix], {
    env: csEnv,
    encoding: "utf8",
  });
  fs.writeFileSync(path.join(artifacts, "install-extension.log"), `${installed.stdout}\n${installed.stderr}`);
  if (installed.status !== 0 || !fs.readdirSync(extDir).some((d) => d.startsWith("pipelang.pipelang-"))) {
    throw new Error(`code-server --install-extension ${vsix} failed:\n${installed.stdout}\n${installed.stderr}`);
  }

  const port = await freePort();
  server = spawn(process.execPath, [csEntry, ...csArgs, "--auth", "none", "--bind-addr", `127.0.0.1:${port}`, ws], {
    env: csEnv,
    stdio: ["ignore", "pipe", "pipe"],
  });
  server.stdout.on("data", (d) => (serverLog += d));
  server.stderr.on("data", (d) => (serverLog += d));
  await until("code-server to listen", async () => serverLog.includes("HTTP server listening"), 60000);

  browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    // Only loopback: nothing of the browser may try to reach out.
    args: [
      "--no-sandbox",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--disable-quic",
      "--disable-dev-shm-usage",
      "--no-first-run",
    ],
  });
  const context = await browser.newContext({ viewport: { width: 1600, height: 1000 } });
  page = await context.newPage();
  page.setDefaultTimeout(timeoutMs);
  await page.goto(`http://127.0.0.1:${port}/?folder=${encodeURIComponent(ws)}`);
  await page.locator(".monaco-workbench").waitFor({ timeout: 60000 });

  await step("the .pipe file is highlighted by the grammar", async () => {
    await open(good);
    const stagePos = where("stage text_pretrain {");
    await goTo(stagePos.line, 1);
    // Tokenization runs after the text shows: wait until `stage` and its name are told apart.
    await until("`stage` and the stage name in different colours", async () => {
      const spans = await page.locator(".editor-instance .view-line span span").evaluateAll((els) =>
        els.map((e) => ({ text: e.textContent, cls: e.className })),
      );
      const keyword = spans.find((x) => x.text === "stage");
      const name = spans.find((x) => x.text === "text_pretrain");
      return new Set(spans.map((x) => x.cls)).size >= 5 && keyword && name && keyword.cls !== name.cls;
    });
  });

  await step("the status bar says the server runs", async () => {
    await until("'pipe lsp' in the status bar, running", async () => {
      const item = page.locator(".statusbar-item", { hasText: "pipe lsp" }).first();
      return (await item.textContent())?.trim() === "pipe lsp";
    });
  });

  await step("a broken file shows a squiggle and a Problems entry with its code", async () => {
    await open(broken);
    const at = where("stage text_pretrain {");
    await goTo(at.line + 1, 13);
    await until("an error squiggle", async () => (await squiggles()) > 0);
    await page.keyboard.press("Control+Shift+M");
    await until("the P0101 entry in Problems", async () => {
      const texts = await problems().allTextContents();
      return texts.some((t) => t.includes("P0101") && t.includes("llmm"));
    });
  });

  await step("the quick fix 'change to `llm`' repairs the broken file", async () => {
    const at = where("stage text_pretrain {");
    await page.locator(".editor-instance .monaco-editor .view-lines").first().click();
    await goTo(at.line + 1, 13);
    await page.keyboard.press("Control+.");
    const fix = page.locator(".action-widget .action-item, .action-widget .monaco-list-row", { hasText: "change to `llm`" }).first();
    await fix.waitFor({ state: "visible" });
    // The menu takes keys, not clicks (a pointer block covers it): move to the fix, apply it.
    for (let i = 0; i < 6 && !((await fix.getAttribute("class")) ?? "").includes("focused"); i++) {
      await page.keyboard.press("ArrowDown");
    }
    await page.keyboard.press("Enter");
    await until("the squiggle to clear", async () => (await squiggles()) === 0);
    await save();
    const text = fs.readFileSync(broken, "utf8");
    if (text !== goodText) {
      throw new Error("the fixed file differs from the reference recipe");
    }
  });

  await step("hovering a stage shows its plan", async () => {
    await open(good);
    const at = where("stage joint_pretrain after", "joint_pretrain");
    await goTo(at.line, at.col + 2);
    await page.keyboard.press("Control+K");
    await page.keyboard.press("Control+I");
    // Several hover widgets live in the DOM (most hidden): any one showing the plan will do.
    await until("the stage hover", async () =>
      (await page.locator(".monaco-hover-content").allTextContents()).some(
        (t) => t.includes("joint_pretrain") && t.includes("steps") && t.includes("tokens per step"),
      ),
    );
    await page.keyboard.press("Escape");
  });

  await step("go to definition jumps to the stage's declaration", async () => {
    const at = where("stage joint_pretrain after text_pretrain", "text_pretrain");
    await goTo(at.line, at.col + 1);
    await page.keyboard.press("F12");
    const decl = where("stage text_pretrain {", "text_pretrain");
    await until(`the cursor on line ${decl.line}`, async () => (await cursor()).startsWith(`Ln ${decl.line},`));
  });

  await step("completion offers the server's names, and a digit pops no word list", async () => {
    const at = where("stage text_pretrain {");
    await goTo(at.line + 1, lines[at.line].length + 1);
    await page.keyboard.press("End");
    await page.keyboard.press("Enter");
    await page.keyboard.type("lo");
    await page.keyboard.press("Control+Space");
    const suggest = page.locator(".suggest-widget.visible .monaco-list-row");
    await until("'loss' among the suggestions", async () => (await suggest.allTextContents()).some((t) => t.startsWith("loss")));
    await page.keyboard.press("Escape");
    await page.keyboard.press("Control+Z");
    await page.keyboard.press("Control+Z");
    // A digit where the server has nothing to offer: VS Code's word list must stay away.
    const budget = where("  budget = 5.2T");
    await goTo(budget.line, lines[budget.line - 1].length + 1);
    await page.keyboard.type("0");
    await new Promise((r) => setTimeout(r, 1200));
    const shown = await page.locator(".suggest-widget.visible").count();
    await page.keyboard.press("Escape");
    await page.keyboard.press("Control+Z");
    if (shown > 0) {
      throw new Error("a suggestion list popped up after typing a digit");
    }
  });

  await step("a typed error appears and clears", async () => {
    const at = where("stage text_pretrain {");
    await goTo(at.line + 1, lines[at.line].indexOf("llm") + 4);
    await page.keyboard.type("x");
    await until("a squiggle under `llmx`", async () => (await squiggles()) > 0);
    await until("the P0101 entry in Problems", async () =>
      (await problemsMatching("llmx")).some((t) => t.includes("P0101") && t.includes("llmx")),
    );
    await goTo(at.line + 1, lines[at.line].indexOf("llm") + 5);
    await page.keyboard.press("Backspace");
    await until("the squiggle to clear", async () => (await squiggles()) === 0);
  });

  await step("format document restores the layout", async () => {
    const at = where("  budget = 5.2T");
    await goTo(at.line, 1);
    await page.keyboard.type("      ");
    await palette("Format Document");
    // The format edit lands asynchronously: save until the file on disk is the reference again.
    await until("the saved file to be the reference again", async () => {
      await page.keyboard.press("Control+S");
      await new Promise((r) => setTimeout(r, 300));
      return fs.readFileSync(good, "utf8") === goodText;
    });
  });

  await step("pipelang: Show Plan opens the plan beside the file, following the cursor and edits", async () => {
    const at = where("stage joint_pretrain after");
    await goTo(at.line + 2, 3);
    await palette("pipelang: Show Plan");
    const planFrame = async () => {
      for (const f of page.frames()) {
        if ((await f.locator("#plan").count().catch(() => 0)) > 0) {
          return f;
        }
      }
      return false;
    };
    const frame = await until("the plan webview", planFrame);
    await until("the plan's stages, joint_pretrain highlighted", async () => {
      const stages = await frame.locator("#plan svg g.stage").count();
      const current = await frame.locator("#plan svg g.stage.current").getAttribute("data-stage", { timeout: 500 });
      return stages === 6 && current === "joint_pretrain";
    });
    for (const panel of ["learning rate", "data mixture", "seq_len", "RoPE base", "batch"]) {
      if ((await frame.locator(`#plan svg g.panel[data-panel="${panel}"]`).count()) !== 1) {
        throw new Error(`the plan has no '${panel}' panel`);
      }
    }
    await page.locator(".editor-instance .monaco-editor .view-lines").first().click();
    const long = where("stage joint_long_context after");
    await goTo(long.line + 1, 3);
    await until("joint_long_context highlighted", async () =>
      (await frame.locator("#plan svg g.stage.current").getAttribute("data-stage", { timeout: 500 })) === "joint_long_context",
    );
    await page.screenshot({ path: path.join(artifacts, "plan-panel.png") });
    // An error: the panel keeps the last good plan and says so; the fix brings it back.
    const train = where("stage text_pretrain {");
    await goTo(train.line + 1, lines[train.line].indexOf("llm") + 4);
    await page.keyboard.type("x");
    await until("the panel to say it shows the last good plan", async () =>
      ((await frame.locator("#message").textContent()) ?? "").includes("last version without errors"),
    );
    await page.keyboard.press("Backspace");
    await until("the message to clear", async () => ((await frame.locator("#message").textContent()) ?? "") === "");
  });
}

let crashed;
try {
  await main();
} catch (err) {
  crashed = err;
  console.log(`FAIL setting up VS Code: ${err.stack ?? err}`);
  if (page) {
    await page.screenshot({ path: path.join(artifacts, "failure-setup.png") }).catch(() => {});
  }
} finally {
  fs.writeFileSync(path.join(artifacts, "code-server.log"), serverLog);
  await browser?.close().catch(() => {});
  server?.kill();
  fs.rmSync(tmp, { recursive: true, force: true });
}
const passed = results.filter((r) => r.ok).length;
const failed = results.length - passed + (crashed ? 1 : 0);
console.log(`artifacts: ${artifacts}`);
console.log(`vscode e2e: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
