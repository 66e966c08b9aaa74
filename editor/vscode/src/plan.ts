// The plan panel: the server's `pipelang/plan` picture of the active .pipe file, beside it,
// redrawn as the file changes and as the cursor moves between stages. The server draws; this only
// asks again at the right moments and keeps the answers in order.
import * as vscode from "vscode";
import type { LanguageClient } from "vscode-languageclient/node";

export const PLAN_REQUEST = "pipelang/plan";

interface PlanResult {
  version: number;
  svg: string | null;
  stage: string | null;
  stale: boolean;
  message: string | null;
}

export class PlanPanel implements vscode.Disposable {
  private panel: vscode.WebviewPanel | undefined;
  private document: vscode.TextDocument | undefined;
  private timer: NodeJS.Timeout | undefined;
  private asked = 0;
  private readonly subscriptions: vscode.Disposable[] = [];

  constructor(private readonly client: () => LanguageClient | undefined) {
    this.subscriptions.push(
      vscode.workspace.onDidChangeTextDocument((e) => {
        if (e.document === this.document) {
          this.schedule(150);
        }
      }),
      vscode.window.onDidChangeTextEditorSelection((e) => {
        if (e.textEditor.document === this.document) {
          this.schedule(60);
        }
      }),
      vscode.window.onDidChangeActiveTextEditor((editor) => {
        if (editor?.document.languageId === "pipe" && editor.document !== this.document) {
          this.document = editor.document;
          this.schedule(0);
        }
      }),
    );
  }

  show(): void {
    const editor = vscode.window.activeTextEditor;
    if (editor?.document.languageId === "pipe") {
      this.document = editor.document;
    }
    if (!this.document) {
      void vscode.window.showInformationMessage("pipelang: open a .pipe file to see its plan.");
      return;
    }
    if (this.panel) {
      this.panel.reveal(vscode.ViewColumn.Beside, true);
    } else {
      this.panel = vscode.window.createWebviewPanel(
        "pipelang.plan",
        "Plan",
        { viewColumn: vscode.ViewColumn.Beside, preserveFocus: true },
        { enableScripts: true, retainContextWhenHidden: true },
      );
      this.panel.webview.html = page(this.panel.webview.cspSource);
      this.panel.onDidDispose(() => {
        this.panel = undefined;
      });
    }
    this.schedule(0);
  }

  /** Asks again, e.g. after the server restarted. */
  refresh(): void {
    if (this.panel) {
      this.schedule(0);
    }
  }

  private schedule(delayMs: number): void {
    if (!this.panel) {
      return;
    }
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.update(), delayMs);
  }

  private async update(): Promise<void> {
    const panel = this.panel;
    const document = this.document;
    const client = this.client();
    if (!panel || !document) {
      return;
    }
    panel.title = `Plan: ${document.uri.path.split("/").pop()}`;
    if (!client || !client.isRunning()) {
      void panel.webview.postMessage({ message: "the pipelang language server is not running", svg: null });
      return;
    }
    const editor = vscode.window.visibleTextEditors.find((e) => e.document === document);
    const ticket = ++this.asked;
    try {
      const result = await client.sendRequest<PlanResult>(PLAN_REQUEST, {
        textDocument: { uri: document.uri.toString() },
        position: editor?.selection.active,
      });
      // An older answer arriving after a newer one must not overwrite it.
      if (ticket === this.asked) {
        void panel.webview.postMessage(result);
      }
    } catch (err) {
      if (ticket === this.asked) {
        const message = err instanceof Error ? err.message : String(err);
        void panel.webview.postMessage({ message: `cannot get the plan: ${message}`, svg: null });
      }
    }
  }

  dispose(): void {
    clearTimeout(this.timer);
    this.panel?.dispose();
    for (const s of this.subscriptions) {
      s.dispose();
    }
  }
}

// The SVG arrives from our own server, but it holds names from the file: it is inserted as an
// SVG document parsed by DOMParser (no script runs from it) under a CSP that allows no scripts
// but the page's own.
function page(cspSource: string): string {
  const nonce = Array.from({ length: 24 }, () => Math.floor(Math.random() * 36).toString(36)).join("");
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src ${cspSource} data:; style-src 'unsafe-inline'; script-src 'nonce-${nonce}';">
<style>
  body { margin: 0; padding: 8px; background: #fff; color: #222; font-family: sans-serif; }
  #message { font-size: 13px; margin: 4px 0 8px; color: #8a5a00; }
  #message:empty { display: none; }
  #plan svg { width: 100%; height: auto; }
</style></head>
<body><div id="message">waiting for the language server…</div><div id="plan"></div>
<script nonce="${nonce}">
  const plan = document.getElementById("plan");
  const message = document.getElementById("message");
  window.addEventListener("message", (event) => {
    const r = event.data;
    message.textContent = r.message || "";
    if (!r.svg) { plan.replaceChildren(); return; }
    const svg = new DOMParser().parseFromString(r.svg, "image/svg+xml").documentElement;
    plan.replaceChildren(document.importNode(svg, true));
    plan.dataset.stage = r.stage || "";
    plan.dataset.version = String(r.version);
  });
</script></body></html>`;
}
