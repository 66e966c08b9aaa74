// Finds the `pipe` binary before the language client starts it. Kept free of the `vscode` module so
// that it runs (and is tested) under plain Node.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

export type Resolution =
  | { found: true; command: string }
  | { found: false; reason: string };

export interface ResolveEnv {
  /** The PATH to search for bare names; defaults to process.env.PATH. */
  pathVar?: string;
  /** Base for relative paths such as `./target/debug/pipe` (the first workspace folder). */
  cwd?: string;
  platform?: NodeJS.Platform;
  /** Windows executable extensions; defaults to process.env.PATHEXT. */
  pathExt?: string;
}

function isExecutableFile(candidate: string, platform: NodeJS.Platform): boolean {
  try {
    if (!fs.statSync(candidate).isFile()) {
      return false;
    }
    // Windows has no execute bit: existence is all that can be checked there.
    if (platform !== "win32") {
      fs.accessSync(candidate, fs.constants.X_OK);
    }
    return true;
  } catch {
    return false;
  }
}

function expandHome(p: string): string {
  if (p === "~") {
    return os.homedir();
  }
  if (p.startsWith("~/") || p.startsWith("~\\")) {
    return path.join(os.homedir(), p.slice(2));
  }
  return p;
}

/**
 * Resolves the configured server path the way a shell would: a name without a directory part is
 * searched on PATH, anything else is a file path (relative ones against `env.cwd`).
 */
export function resolveServerPath(configured: string, env: ResolveEnv = {}): Resolution {
  const platform = env.platform ?? process.platform;
  const raw = expandHome(configured.trim());
  if (raw === "") {
    return { found: false, reason: "the setting is empty" };
  }

  const hasDirPart = raw.includes("/") || (platform === "win32" && raw.includes("\\"));
  if (hasDirPart) {
    const full = path.isAbsolute(raw) ? raw : path.resolve(env.cwd ?? process.cwd(), raw);
    return isExecutableFile(full, platform)
      ? { found: true, command: full }
      : { found: false, reason: `no executable file at ${full}` };
  }

  const pathVar = env.pathVar ?? process.env.PATH ?? "";
  const dirs = pathVar.split(platform === "win32" ? ";" : ":").filter((d) => d !== "");
  const exts =
    platform === "win32"
      ? ["", ...(env.pathExt ?? process.env.PATHEXT ?? ".EXE;.CMD;.BAT;.COM").split(";")]
      : [""];
  for (const dir of dirs) {
    for (const ext of exts) {
      const candidate = path.join(dir, raw + ext);
      if (isExecutableFile(candidate, platform)) {
        return { found: true, command: candidate };
      }
    }
  }
  return { found: false, reason: `"${raw}" is not on PATH` };
}
