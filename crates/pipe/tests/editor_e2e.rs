//! The editor tests, with Neovim and real VS Code (code-server in headless Chromium) driving the
//! real `pipe lsp`: runs scripts/test-editor.sh with PIPE_BIN set to this build's binary. Missing tools fail the test (they are installed by
//! scripts/install-test-tools.sh); they never skip it.

use std::path::Path;
use std::process::Command;

#[test]
fn editor_tests_pass_against_this_pipe_binary() {
    let root = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    let nvim = std::env::var_os("NVIM").map_or(root.join(".tools/bin/nvim"), Into::into);
    let tsc = root.join("editor/vscode/node_modules/.bin/tsc");
    let code_server = root.join(".tools/code-server/node_modules/code-server/out/node/entry.js");
    let chromium = Path::new("/usr/bin/chromium").to_path_buf();
    for tool in [&nvim, &tsc, &code_server, &chromium] {
        assert!(
            tool.exists(),
            "{} is missing: run `bash scripts/install-test-tools.sh` once, then run the tests again",
            tool.display()
        );
    }
    let out = Command::new("bash")
        .arg(root.join("scripts/test-editor.sh"))
        .env("PIPE_BIN", env!("CARGO_BIN_EXE_pipe"))
        .current_dir(root)
        .output()
        .expect("cannot run bash scripts/test-editor.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "scripts/test-editor.sh failed:\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    assert!(
        stdout.contains("e2e PASS"),
        "the real-server Neovim test did not run:\n{stdout}"
    );
    assert!(
        stdout.contains("vscode e2e: ") && stdout.contains("--- ok: VS Code e2e"),
        "the real-VS-Code test did not run or did not pass:\n{stdout}"
    );
    assert!(stdout.contains(", 0 failed"), "{stdout}");
}
