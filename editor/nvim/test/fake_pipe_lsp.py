#!/usr/bin/env python3
"""A stand-in for `pipe lsp` that checks the end-to-end harness itself, not pipelang.

scripts/test-editor.sh runs e2e.lua against it before (and without) the real server: once as a
well-behaved server, which must pass, and once per FAKE_PIPE_MODE that breaks one promise, each of
which must make e2e.lua fail. That shows the harness really reads what Neovim received.

It speaks just enough LSP for e2e.lua: diagnostics (undeclared names in `train`, `freeze` and
`after`), hover on declared names, and go to definition. Positions assume ASCII text.
"""
import json
import os
import re
import sys

MODE = os.environ.get("FAKE_PIPE_MODE", "good")
DECL = re.compile(r"^\s*(model|data|schedule|stage|profile|pipeline)\s+([A-Za-z_]\w*)")
WORD = re.compile(r"[A-Za-z_]\w*")
REFS = re.compile(r"^\s*(?:train|freeze)\s*=\s*\[([^\]]*)\]|^\s*stage\s+\w+\s+after\s+([^{]*)")

docs = {}


def read_message(stream):
    length = None
    while True:
        line = stream.readline()
        if not line:
            return None
        line = line.decode("ascii").strip()
        if not line:
            break
        key, _, value = line.partition(":")
        if key.lower() == "content-length":
            length = int(value)
    return json.loads(stream.read(length))


def send(message):
    body = json.dumps(message).encode("utf-8")
    sys.stdout.buffer.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
    sys.stdout.buffer.flush()


def declarations(text):
    found = {}
    for line_no, line in enumerate(text.splitlines()):
        m = DECL.match(line)
        if m and m.group(2) not in found:
            found[m.group(2)] = (m.group(1), line_no, m.start(2), m.end(2))
    return found


def diagnostics(text):
    decls = declarations(text)
    out = []
    for line_no, line in enumerate(text.splitlines()):
        m = REFS.match(line)
        if not m:
            continue
        group = 1 if m.group(1) is not None else 2
        for w in WORD.finditer(m.group(group)):
            if w.group(0) not in decls:
                start = m.start(group) + w.start()
                diag = {
                    "range": {
                        "start": {"line": line_no, "character": start},
                        "end": {"line": line_no, "character": start + len(w.group(0))},
                    },
                    "severity": 1,
                    "source": "pipe",
                    "message": f"undeclared name `{w.group(0)}`",
                }
                if MODE != "no-code":
                    diag["code"] = "P0201"
                out.append(diag)
    if MODE == "error-everywhere":
        out.append({
            "range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 1}},
            "severity": 1, "code": "P0001", "source": "pipe", "message": "spurious",
        })
    return out


def publish(uri):
    send({
        "jsonrpc": "2.0",
        "method": "textDocument/publishDiagnostics",
        "params": {"uri": uri, "diagnostics": diagnostics(docs[uri])},
    })


def word_at(uri, pos):
    lines = docs[uri].splitlines()
    if pos["line"] >= len(lines):
        return None
    for w in WORD.finditer(lines[pos["line"]]):
        if w.start() <= pos["character"] <= w.end():
            return w.group(0)
    return None


def handle(msg):
    method = msg.get("method")
    params = msg.get("params") or {}
    if method == "initialize":
        return {
            "capabilities": {
                "textDocumentSync": 1,
                "hoverProvider": True,
                "definitionProvider": True,
            },
            "serverInfo": {"name": "fake-pipe-lsp"},
        }
    if method == "shutdown":
        return None
    if method == "textDocument/didOpen":
        doc = params["textDocument"]
        docs[doc["uri"]] = doc["text"]
        publish(doc["uri"])
    elif method == "textDocument/didChange":
        uri = params["textDocument"]["uri"]
        docs[uri] = params["contentChanges"][-1]["text"]
        publish(uri)
    elif method == "textDocument/hover":
        uri = params["textDocument"]["uri"]
        word = word_at(uri, params["position"])
        decl = declarations(docs[uri]).get(word)
        if MODE == "empty-hover" or not decl:
            return None
        return {"contents": {"kind": "markdown", "value": f"**{decl[0]} `{word}`**"}}
    elif method == "textDocument/definition":
        uri = params["textDocument"]["uri"]
        word = word_at(uri, params["position"])
        decl = declarations(docs[uri]).get(word)
        if not decl:
            return None
        line = decl[1] + (1 if MODE == "wrong-definition" else 0)
        return [{
            "uri": uri,
            "range": {
                "start": {"line": line, "character": decl[2]},
                "end": {"line": line, "character": decl[3]},
            },
        }]
    return None


def main():
    if sys.argv[1:] != ["lsp"]:
        sys.stderr.write("usage: fake_pipe_lsp.py lsp\n")
        return 2
    while True:
        msg = read_message(sys.stdin.buffer)
        if msg is None or msg.get("method") == "exit":
            return 0
        if MODE == "mute":
            continue
        result = handle(msg)
        if "id" in msg and "method" in msg:
            send({"jsonrpc": "2.0", "id": msg["id"], "result": result})


if __name__ == "__main__":
    sys.exit(main())
