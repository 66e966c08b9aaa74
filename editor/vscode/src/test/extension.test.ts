// Loads the compiled extension against a stand-in `vscode` module (VS Code itself cannot run here)
// to check what a user sees when the server binary is missing: an error naming the setting, and
// no attempt to spawn anything.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import Module = require("module");

interface Shown {
  message: string;
  items: string[];
}

function installFakeVscode(settings: Record<string, unknown>): { shown: Shown[]; commands: string[] } {
  const shown: Shown[] = [];
  const commands: string[] = [];
  const fake = {
    workspace: {
      workspaceFolders: undefined,
      getConfiguration: () => ({
        get: <T>(key: string, fallback: T): T => (key in settings ? (settings[key] as T) : fallback),
      }),
      onDidChangeConfiguration: () => ({ dispose() {} }),
    },
    window: {
      showErrorMessage: async (message: string, ...items: string[]) => {
        shown.push({ message, items });
        return undefined;
      },
      createOutputChannel: () => ({ appendLine() {}, dispose() {} }),
    },
    commands: {
      registerCommand: (name: string) => {
        commands.push(name);
        return { dispose() {} };
      },
      executeCommand: async () => undefined,
    },
  };
  const loader = Module as unknown as { _load: (request: string, ...rest: unknown[]) => unknown };
  const original = loader._load;
  loader._load = function (request: string, ...rest: unknown[]) {
    if (request === "vscode") {
      return fake;
    }
    if (request === "vscode-languageclient/node") {
      // The client must never be constructed when the binary is missing.
      return {
        TransportKind: { stdio: 0 },
        LanguageClient: class {
          constructor() {
            throw new Error("LanguageClient constructed although the binary is missing");
          }
        },
      };
    }
    return original.call(this, request, ...rest);
  };
  return { shown, commands };
}

test("a missing server binary is reported with the setting to change", async () => {
  const { shown, commands } = installFakeVscode({ "server.path": "/nonexistent/dir/pipe" });
  const extension = require("../extension") as typeof import("../extension");
  const subscriptions: { dispose(): void }[] = [];
  await extension.activate({ subscriptions } as never);

  assert.equal(shown.length, 1, "exactly one error message");
  assert.match(shown[0].message, /pipelang\.server\.path/);
  assert.match(shown[0].message, /\/nonexistent\/dir\/pipe/);
  assert.deepEqual(shown[0].items, ["Open Settings"]);
  assert.ok(commands.includes("pipelang.restartServer"));
  await extension.deactivate();
});
