// Starts `pipe lsp` for .pipe files. All language smarts live in the server; this file only finds
// the binary, reports clearly when it cannot, shows whether the server runs, restarts it when its
// settings change, and hosts the plan panel (whose picture the server draws).
import * as vscode from "vscode";
import {
  LanguageClient,
  LanguageClientOptions,
  ServerOptions,
  State,
  TransportKind,
} from "vscode-languageclient/node";
import { resolveServerPath } from "./resolve";
import { PlanPanel } from "./plan";

const PATH_SETTING = "pipelang.server.path";
const SECTION = "pipelang";

let client: LanguageClient | undefined;
let output: vscode.LogOutputChannel | undefined;
let status: vscode.StatusBarItem | undefined;
let planPanel: PlanPanel | undefined;

function workspaceRoot(): string | undefined {
  return vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
}

type ServerState = { kind: "starting" } | { kind: "running" } | { kind: "failed"; reason: string };

function showState(state: ServerState): void {
  if (!status) {
    return;
  }
  // The text is what a user (and the end-to-end test) reads; the icon alone would be ambiguous.
  switch (state.kind) {
    case "starting":
      status.text = "$(sync~spin) pipe lsp: starting";
      status.tooltip = "pipelang: the language server is starting";
      status.backgroundColor = undefined;
      break;
    case "running":
      status.text = "$(check) pipe lsp";
      status.tooltip = "pipelang: the language server is running. Click to restart it.";
      status.backgroundColor = undefined;
      break;
    case "failed":
      status.text = "$(error) pipe lsp: stopped";
      status.tooltip = `pipelang: the language server is not running (${state.reason}). Click to restart it.`;
      status.backgroundColor = new vscode.ThemeColor("statusBarItem.errorBackground");
      break;
  }
  status.show();
}

async function reportMissingBinary(configured: string, reason: string): Promise<void> {
  const open = "Open Settings";
  const choice = await vscode.window.showErrorMessage(
    `pipelang: cannot start the language server: ${reason}. ` +
      `Build or install the \`pipe\` binary (cargo install --path <repo>) and put it on PATH, ` +
      `or set "${PATH_SETTING}" to its path (now "${configured}").`,
    open,
  );
  if (choice === open) {
    await vscode.commands.executeCommand("workbench.action.openSettings", PATH_SETTING);
  }
}

async function startClient(): Promise<void> {
  const config = vscode.workspace.getConfiguration(SECTION);
  const configured = config.get<string>("server.path", "pipe");
  const extraArgs = config.get<string[]>("server.extraArgs", []);

  // Checked up front: otherwise the client reports a bare ENOENT spawn error and retries.
  const resolved = resolveServerPath(configured, { cwd: workspaceRoot() });
  if (!resolved.found) {
    showState({ kind: "failed", reason: resolved.reason });
    void reportMissingBinary(configured, resolved.reason);
    return;
  }

  // TransportKind.stdio makes the client append `--stdio`, as it does for every server; `pipe
  // lsp` accepts it.
  const serverOptions: ServerOptions = {
    command: resolved.command,
    args: ["lsp", ...extraArgs],
    transport: TransportKind.stdio,
  };
  output ??= vscode.window.createOutputChannel("pipelang", { log: true });
  const clientOptions: LanguageClientOptions = {
    documentSelector: [
      { scheme: "file", language: "pipe" },
      { scheme: "untitled", language: "pipe" },
    ],
    outputChannel: output,
  };

  // The client names itself in messages as "<name> server" ("pipelang server is not running"):
  // a name ending in "server" would read "server server".
  const started = new LanguageClient("pipelang", "pipelang", serverOptions, clientOptions);
  client = started;
  showState({ kind: "starting" });
  started.onDidChangeState((e) => {
    if (client !== started) {
      return;
    }
    if (e.newState === State.Running) {
      showState({ kind: "running" });
    } else if (e.newState === State.Stopped) {
      showState({ kind: "failed", reason: "it stopped" });
    }
  });
  try {
    await started.start();
    output.info(`started ${resolved.command} lsp ${extraArgs.join(" ")} --stdio`.replace(/ +/g, " "));
    planPanel?.refresh();
  } catch (err) {
    client = undefined;
    const message = err instanceof Error ? err.message : String(err);
    showState({ kind: "failed", reason: message });
    void vscode.window.showErrorMessage(
      `pipelang: the language server (${resolved.command} lsp) failed to start: ${message}. ` +
        `Check "${PATH_SETTING}" points at a pipe binary that has the \`lsp\` subcommand.`,
    );
  }
}

async function stopClient(): Promise<void> {
  const running = client;
  client = undefined;
  if (running) {
    await running.stop();
  }
}

async function restartClient(): Promise<void> {
  await stopClient();
  await startClient();
}

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  status = vscode.window.createStatusBarItem("pipelang.status", vscode.StatusBarAlignment.Left, 0);
  status.name = "pipelang language server";
  status.command = "pipelang.restartServer";
  planPanel = new PlanPanel(() => client);
  context.subscriptions.push(
    status,
    planPanel,
    vscode.commands.registerCommand("pipelang.restartServer", restartClient),
    vscode.commands.registerCommand("pipelang.showPlan", () => planPanel?.show()),
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (event.affectsConfiguration(`${SECTION}.server`)) {
        void restartClient();
      }
    }),
    { dispose: () => void stopClient() },
  );
  await startClient();
}

export async function deactivate(): Promise<void> {
  await stopClient();
}
