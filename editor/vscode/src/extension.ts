// Starts `pipe lsp` for .pipe files. All language smarts live in the server; this file only finds
// the binary, reports clearly when it cannot, and restarts the server when its settings change.
import * as vscode from "vscode";
import {
  LanguageClient,
  LanguageClientOptions,
  ServerOptions,
  TransportKind,
} from "vscode-languageclient/node";
import { resolveServerPath } from "./resolve";

const PATH_SETTING = "pipelang.server.path";
const SECTION = "pipelang";

let client: LanguageClient | undefined;
let output: vscode.OutputChannel | undefined;

function workspaceRoot(): string | undefined {
  return vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
}

async function reportMissingBinary(configured: string, reason: string): Promise<void> {
  const open = "Open Settings";
  const choice = await vscode.window.showErrorMessage(
    `pipelang: cannot start the language server: ${reason}. ` +
      `Build or install the \`pipe\` binary (cargo install --path <repo>) and put it on PATH, ` +
      `or set "${PATH_SETTING}" to its absolute path (now "${configured}").`,
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
    void reportMissingBinary(configured, resolved.reason);
    return;
  }

  const serverOptions: ServerOptions = {
    command: resolved.command,
    args: ["lsp", ...extraArgs],
    transport: TransportKind.stdio,
  };
  output ??= vscode.window.createOutputChannel("pipelang");
  const clientOptions: LanguageClientOptions = {
    documentSelector: [
      { scheme: "file", language: "pipe" },
      { scheme: "untitled", language: "pipe" },
    ],
    outputChannel: output,
  };

  client = new LanguageClient("pipelang", "pipelang language server", serverOptions, clientOptions);
  try {
    await client.start();
    output.appendLine(`started ${resolved.command} lsp ${extraArgs.join(" ")}`.trimEnd());
  } catch (err) {
    client = undefined;
    const message = err instanceof Error ? err.message : String(err);
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
  context.subscriptions.push(
    vscode.commands.registerCommand("pipelang.restartServer", restartClient),
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
