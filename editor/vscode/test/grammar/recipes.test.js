// Every recipe the project ships must highlight cleanly: no token flagged illegal, every declared
// stage named as one, and the tokenizer back at top level (all blocks closed) at the end of the file.
// The assertion fixtures beside this file pin individual scopes; this catches a grammar change that
// derails on real files.
const { test } = require("node:test");
const assert = require("node:assert/strict");
const fs = require("fs");
const path = require("path");
const vsctm = require("vscode-textmate");
const oniguruma = require("vscode-oniguruma");

const root = path.resolve(__dirname, "..", "..");
const { dir: pipelines, recipes, bundled, repo } = require("../recipes");

async function loadGrammar() {
  const wasm = fs.readFileSync(require.resolve("vscode-oniguruma/release/onig.wasm")).buffer;
  await oniguruma.loadWASM(wasm);
  const registry = new vsctm.Registry({
    onigLib: Promise.resolve({
      createOnigScanner: (sources) => new oniguruma.OnigScanner(sources),
      createOnigString: (s) => new oniguruma.OnigString(s),
    }),
    loadGrammar: async () => {
      const file = path.join(root, "syntaxes", "pipe.tmLanguage.json");
      return vsctm.parseRawGrammar(fs.readFileSync(file, "utf8"), file);
    },
  });
  return registry.loadGrammar("source.pipe");
}

test("there are recipes to check", () => {
  assert.ok(recipes.length > 0, `no .pipe files under ${pipelines}`);
});

test("the extension's copy of the reference recipe is the repository's", (t) => {
  const original = path.join(repo, "kimi_vl.pipe");
  if (!fs.existsSync(original)) {
    t.diagnostic(`outside the repository: ${original} is not there to compare with`);
    return;
  }
  assert.equal(
    fs.readFileSync(path.join(bundled, "kimi_vl.pipe"), "utf8"),
    fs.readFileSync(original, "utf8"),
    "copy pipelines/kimi_vl.pipe to editor/vscode/test/recipes/",
  );
});

for (const name of recipes) {
  test(`${name} highlights cleanly`, async () => {
    const grammar = await loadGrammar();
    const text = fs.readFileSync(path.join(pipelines, name), "utf8");
    let stack = vsctm.INITIAL;
    const declaredStages = [];
    const stageNameTokens = [];
    text.split(/\r?\n/).forEach((line, i) => {
      const declared = /^\s*stage\s+([A-Za-z_]\w*)/.exec(line);
      if (declared) declaredStages.push(declared[1]);
      const result = grammar.tokenizeLine(line, stack);
      stack = result.ruleStack;
      for (const token of result.tokens) {
        const tokenText = line.slice(token.startIndex, token.endIndex);
        const illegal = token.scopes.find((s) => s.startsWith("invalid."));
        assert.equal(illegal, undefined, `${name}:${i + 1}: "${tokenText}" is ${illegal}`);
        if (token.scopes.includes("entity.name.function.stage.pipe")) stageNameTokens.push(tokenText);
      }
    });
    assert.deepEqual(stageNameTokens, declaredStages);
    assert.equal(stack.depth, 1, `${name}: a block is still open at the end (rule depth ${stack.depth})`);
  });
}
