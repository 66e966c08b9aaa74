// Where the grammar and indentation tests find real recipes. Inside the repository: every recipe in
// pipelines/. In a copy of editor/vscode alone: the copy of the reference recipe in test/recipes/
// (kept equal to pipelines/kimi_vl.pipe by a test below), or PIPELANG_RECIPES=DIR.
const fs = require("fs");
const path = require("path");

const bundled = path.join(__dirname, "recipes");
const repo = path.resolve(__dirname, "..", "..", "..", "pipelines");

function recipeDir() {
  if (process.env.PIPELANG_RECIPES) {
    return path.resolve(process.env.PIPELANG_RECIPES);
  }
  return fs.existsSync(path.join(repo, "kimi_vl.pipe")) ? repo : bundled;
}

const dir = recipeDir();
const recipes = fs.readdirSync(dir).filter((f) => f.endsWith(".pipe"));

module.exports = { dir, recipes, bundled, repo };
