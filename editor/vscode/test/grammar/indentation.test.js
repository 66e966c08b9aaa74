// VS Code indents with language-configuration.json's rules as you type. Replaying those rules over
// each shipped recipe must reproduce the recipe's own two-space layout, line for line.
const { test } = require("node:test");
const assert = require("node:assert/strict");
const fs = require("fs");
const path = require("path");

const config = require("../../language-configuration.json");
const increase = new RegExp(config.indentationRules.increaseIndentPattern);
const decrease = new RegExp(config.indentationRules.decreaseIndentPattern);
const { dir: pipelines, recipes } = require("../recipes");

test("the rules open and close blocks", () => {
  assert.ok(increase.test("stage a after b {"));
  assert.ok(increase.test("  mix {   // a comment"));
  assert.ok(increase.test("  train = ["));
  assert.ok(!increase.test("  phase p { budget = 50% }"), "a block closed on its line");
  assert.ok(!increase.test("  x = 1 // {"), "a brace inside a comment");
  assert.ok(decrease.test("  }"));
  assert.ok(!decrease.test("  x = 1"));
});

for (const name of recipes) {
  test(`typing ${name} reproduces its indentation`, () => {
    const lines = fs.readFileSync(path.join(pipelines, name), "utf8").split(/\r?\n/);
    let level = 0;
    lines.forEach((line, i) => {
      if (line.trim() === "") return;
      // A `then` continuation is aligned under its value (by hand, and by `pipe fmt`), not by
      // the indentation rules.
      if (/^\s+then\b/.test(line)) return;
      if (decrease.test(line)) level -= 1;
      const actual = line.length - line.trimStart().length;
      assert.equal(actual, 2 * level, `${name}:${i + 1}: ${JSON.stringify(line)}`);
      if (increase.test(line)) level += 1;
    });
    assert.equal(level, 0, `${name}: blocks left open at the end`);
  });
}
