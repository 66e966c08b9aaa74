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

interface Item {
  text: string;
  command?: string;
  shown: boolean;
}

function installFakeVscode(settings: Record<string, unknown>): { shown: Shown[]; commands: string[]; items: Item[] } {
  const shown: Shown[] = [];
  const commands: string[] = [];
  const items: Item[] = [];
  const event = () => ({ dispose() {} });
  const fake = {
    StatusBarAlignment: { Left: 1, Right: 2 },
    ThemeColor: class {
      constructor(readonly id: string) {}
    },
    workspace: {
      workspaceFolders: undefined,
      onDidChangeTextDocument: event,
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
      createOutputChannel: () => ({ appendLine() {}, info() {}, dispose() {} }),
      createStatusBarItem: () => {
        const item: Item & { show(): void; dispose(): void } = {
          text: "",
          shown: false,
          show() {
            this.shown = true;
          },
          dispose() {},
        };
        items.push(item);
        return item;
      },
      onDidChangeTextEditorSelection: event,
      onDidChangeActiveTextEditor: event,
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
        State: { Stopped: 1, Starting: 3, Running: 2 },
        LanguageClient: class {
          constructor() {
            throw new Error("LanguageClient constructed although the binary is missing");
          }
        },
      };
    }
    return original.call(this, request, ...rest);
  };
  return { shown, commands, items };
}

test("a missing server binary is reported with the setting to change", async () => {
  const { shown, commands, items } = installFakeVscode({ "server.path": "/nonexistent/dir/pipe" });
  const extension = require("../extension") as typeof import("../extension");
  const subscriptions: { dispose(): void }[] = [];
  await extension.activate({ subscriptions } as never);

  assert.equal(shown.length, 1, "exactly one error message");
  assert.match(shown[0].message, /pipelang\.server\.path/);
  assert.match(shown[0].message, /\/nonexistent\/dir\/pipe/);
  assert.deepEqual(shown[0].items, ["Open Settings"]);
  assert.ok(commands.includes("pipelang.restartServer"));
  assert.ok(commands.includes("pipelang.showPlan"));
  // The status item says the server is not running, and a click restarts it.
  assert.equal(items.length, 1);
  assert.ok(items[0].shown);
  assert.match(items[0].text, /pipe lsp: stopped/);
  assert.equal(items[0].command, "pipelang.restartServer");
  await extension.deactivate();
});
