// The resolver decides between "start the server" and "tell the user which setting to fix", so each
// branch is exercised against real files in a temporary directory.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { resolveServerPath } from "../resolve";

function tempDirWithBinary(mode: number): { dir: string; bin: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pipelang-resolve-"));
  const bin = path.join(dir, "pipe");
  fs.writeFileSync(bin, "#!/bin/sh\n");
  fs.chmodSync(bin, mode);
  return { dir, bin };
}

test("a bare name is found on PATH", () => {
  const { dir, bin } = tempDirWithBinary(0o755);
  const res = resolveServerPath("pipe", { pathVar: `/nonexistent:${dir}`, platform: "linux" });
  assert.deepEqual(res, { found: true, command: bin });
});

test("a bare name missing from PATH is reported with the name", () => {
  const res = resolveServerPath("pipe", { pathVar: "/nonexistent", platform: "linux" });
  assert.equal(res.found, false);
  assert.match(!res.found ? res.reason : "", /"pipe" is not on PATH/);
});

test("a file without the execute bit does not count", () => {
  const { dir } = tempDirWithBinary(0o644);
  const res = resolveServerPath("pipe", { pathVar: dir, platform: "linux" });
  assert.equal(res.found, false);
});

test("an absolute path must exist", () => {
  const { bin } = tempDirWithBinary(0o755);
  assert.deepEqual(resolveServerPath(bin, { platform: "linux" }), { found: true, command: bin });
  const missing = resolveServerPath(bin + "-gone", { platform: "linux" });
  assert.equal(missing.found, false);
  assert.match(!missing.found ? missing.reason : "", /no executable file at .*pipe-gone/);
});

test("a relative path resolves against the workspace folder", () => {
  const { dir, bin } = tempDirWithBinary(0o755);
  const res = resolveServerPath("./pipe", { cwd: dir, platform: "linux" });
  assert.deepEqual(res, { found: true, command: bin });
});

test("a directory is not a binary", () => {
  const { dir } = tempDirWithBinary(0o755);
  assert.equal(resolveServerPath(dir, { platform: "linux" }).found, false);
});

test("an empty setting is reported as such", () => {
  const res = resolveServerPath("  ", { platform: "linux" });
  assert.deepEqual(res, { found: false, reason: "the setting is empty" });
});
