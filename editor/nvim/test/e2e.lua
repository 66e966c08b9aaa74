-- End-to-end test of `pipe lsp` in a real Neovim (0.10+), through editor/nvim's own setup.
--
--   nvim --headless -u NONE -l editor/nvim/test/e2e.lua <pipe-binary> <good.pipe> <broken.pipe>
--
-- Asserts on what Neovim itself received from the server:
--   * diagnostics published for the broken file, with at least one error whose code looks like P0123;
--   * diagnostics published for the good file, with no error among them;
--   * a hover on a stage name in the good file with non-empty markdown;
--   * go to definition from a model used in a `train = [...]` list to its `model NAME` declaration;
--   * the server exits after shutdown.
-- Positions are found by searching the buffer text, never hard-coded. Exits 0 when all hold; prints
-- `e2e FAIL: ...` and exits 1 on the first failure or timeout.
--
-- Environment: PIPE_E2E_TIMEOUT_MS (default 15000) bounds each wait; PIPE_E2E_LEGACY=1 takes the
-- Neovim 0.10 code path of editor/nvim even on 0.11.

local TIMEOUT_MS = tonumber(vim.env.PIPE_E2E_TIMEOUT_MS) or 15000

local script_dir = vim.fs.dirname(vim.fs.normalize(vim.fn.fnamemodify(arg[0], ":p")))
local plugin_root = vim.fs.dirname(script_dir) -- editor/nvim

local log_path = vim.lsp.get_log_path()
local log_offset = vim.fn.getfsize(log_path)

local function say(msg)
  io.stdout:write(msg .. "\n")
end

local function fail(msg)
  error({ e2e = msg }, 0)
end

-- What the server wrote to stderr lands in Neovim's LSP log: show this run's part on failure.
local function log_tail()
  local f = io.open(log_path, "r")
  if not f then
    return ""
  end
  if log_offset > 0 then
    f:seek("set", log_offset)
  end
  local text = f:read("*a") or ""
  f:close()
  local lines = vim.split(text, "\n", { trimempty = true })
  return table.concat(vim.list_slice(lines, math.max(1, #lines - 30)), "\n")
end

local function wait_for(what, predicate)
  if not vim.wait(TIMEOUT_MS, predicate, 20) then
    fail(("timed out after %d ms waiting for %s"):format(TIMEOUT_MS, what))
  end
end

local function check_args()
  local pipe_bin, good, broken = arg[1], arg[2], arg[3]
  if not (pipe_bin and good and broken) then
    fail("usage: nvim --headless -u NONE -l e2e.lua <pipe-binary> <good.pipe> <broken.pipe>")
  end
  if vim.fn.executable(pipe_bin) ~= 1 then
    fail(("the pipe binary %q is not executable"):format(pipe_bin))
  end
  for _, file in ipairs({ good, broken }) do
    if vim.fn.filereadable(file) ~= 1 then
      fail(("cannot read %s"):format(file))
    end
  end
  return vim.fn.fnamemodify(pipe_bin, ":p"), vim.fn.fnamemodify(good, ":p"), vim.fn.fnamemodify(broken, ":p")
end

-- Records every publishDiagnostics as sent, so that an empty list (a clean file) is told apart
-- from nothing published yet.
local published = {}
local function record_diagnostics()
  local original = vim.lsp.handlers["textDocument/publishDiagnostics"]
  vim.lsp.handlers["textDocument/publishDiagnostics"] = function(err, result, ctx, config)
    if result and result.uri then
      published[vim.uri_to_fname(result.uri)] = result.diagnostics
    end
    return original(err, result, ctx, config)
  end
end

local function open(file)
  vim.cmd.edit(vim.fn.fnameescape(file))
  local buf = vim.api.nvim_get_current_buf()
  if vim.bo[buf].filetype ~= "pipe" then
    fail(("%s got filetype %q, not \"pipe\": editor/nvim's filetype detection did not apply"):format(
      file,
      vim.bo[buf].filetype
    ))
  end
  return buf
end

local function client_for(buf, file)
  local client
  wait_for("the pipelang client to attach to " .. file, function()
    client = vim.lsp.get_clients({ bufnr = buf, name = "pipelang" })[1]
    return client ~= nil and client.initialized
  end)
  return client
end

local function describe(diag)
  return ("%d:%d %s [%s] %s"):format(
    diag.range.start.line + 1,
    diag.range.start.character + 1,
    ({ "error", "warning", "info", "hint" })[diag.severity or 1] or "?",
    tostring(diag.code),
    diag.message
  )
end

local function errors_in(diags)
  return vim.tbl_filter(function(d)
    return d.severity == nil or d.severity == vim.lsp.protocol.DiagnosticSeverity.Error
  end, diags)
end

-- Finds the first match of a Lua pattern in the buffer. The pattern holds a position capture `()`
-- right before the name capture; returns the 0-based line, the 0-based byte column of the name and
-- the name.
local function find(buf, pattern, what)
  for i, line in ipairs(vim.api.nvim_buf_get_lines(buf, 0, -1, false)) do
    local start, _, col, capture = line:find(pattern)
    if start then
      return i - 1, col - 1, capture
    end
  end
  fail(("no %s in the buffer (pattern %q)"):format(what, pattern))
end

-- LSP positions count UTF-16 code units; let Neovim convert from the cursor.
local function position_params(buf, client, line, byte_col)
  vim.api.nvim_set_current_buf(buf)
  vim.api.nvim_win_set_cursor(0, { line + 1, byte_col })
  return vim.lsp.util.make_position_params(0, client.offset_encoding)
end

local function request(buf, client, method, params)
  local responses, err = vim.lsp.buf_request_sync(buf, method, params, TIMEOUT_MS)
  if not responses then
    fail(("%s: no response within %d ms (%s)"):format(method, TIMEOUT_MS, tostring(err)))
  end
  local response = responses[client.id]
  if not response then
    fail(method .. ": the pipelang client sent no response")
  end
  if response.err then
    fail(("%s: the server answered with an error: %s"):format(method, vim.inspect(response.err)))
  end
  return response.result
end

local function check_diagnostics(good, broken)
  wait_for("diagnostics published for " .. broken, function()
    return published[broken] ~= nil
  end)
  wait_for("diagnostics published for " .. good .. " (an empty list counts)", function()
    return published[good] ~= nil
  end)

  local coded = vim.tbl_filter(function(d)
    return type(d.code) == "string" and d.code:match("^P%d%d%d%d$") ~= nil
  end, errors_in(published[broken]))
  for _, d in ipairs(published[broken]) do
    say("  broken: " .. describe(d))
  end
  if #coded == 0 then
    fail(("no error with a code like P0123 among the %d diagnostics of %s"):format(#published[broken], broken))
  end

  local good_errors = errors_in(published[good])
  if #good_errors > 0 then
    fail(("%d error(s) on the good file, first: %s"):format(#good_errors, describe(good_errors[1])))
  end
  say(("ok diagnostics: %d error(s) with codes on the broken file, none on the good file"):format(#coded))
end

local function markdown_of(contents)
  if type(contents) == "table" and contents.kind ~= nil then
    return contents.kind == "markdown" and contents.value or nil, contents.kind
  end
  return nil, "a MarkedString (deprecated); expected MarkupContent"
end

local function check_hover(buf, client)
  local line, col, name = find(buf, "^%s*stage%s+()([%a_][%w_]*)", "stage declaration")
  local result = request(buf, client, "textDocument/hover", position_params(buf, client, line, col + 1))
  if result == nil or result == vim.NIL then
    fail(("hover on stage %q (line %d) returned nothing"):format(name, line + 1))
  end
  local text, kind = markdown_of(result.contents)
  if not text then
    fail(("hover on stage %q is not markdown: %s"):format(name, tostring(kind)))
  end
  if vim.trim(text) == "" then
    fail(("hover on stage %q is empty markdown"):format(name))
  end
  say(("ok hover on stage %s:\n    %s"):format(name, text:gsub("\n", "\n    ")))
end

-- Definition results may be a Location, a list of Locations or a list of LocationLinks.
local function first_location(result)
  if result == nil or result == vim.NIL then
    return nil
  end
  if result.uri or result.targetUri then
    result = { result }
  end
  local loc = result[1]
  if not loc then
    return nil
  end
  return loc.uri or loc.targetUri, loc.range or loc.targetSelectionRange or loc.targetRange
end

-- The first model declared (`llm` in the reference recipe) and its first use in a stage's
-- `train = [...]` list.
local function find_model_reference(buf)
  local decl_line, _, name = find(buf, "^%s*model%s+()([%a_][%w_]*)%s*=", "declaration `model NAME = ...`")
  for i, line in ipairs(vim.api.nvim_buf_get_lines(buf, 0, -1, false)) do
    local list_start, list_end = line:find("^%s*train%s*=%s*%b[]")
    if list_start then
      local col = line:find("%f[%w_]" .. vim.pesc(name) .. "%f[^%w_]")
      if col and col <= list_end then
        return name, decl_line, i - 1, col - 1
      end
    end
  end
  fail(("model %q is declared but no `train = [...]` list names it"):format(name))
end

local function check_definition(buf, client, good)
  local name, decl_line, ref_line, ref_col = find_model_reference(buf)
  local result =
    request(buf, client, "textDocument/definition", position_params(buf, client, ref_line, ref_col + 1))
  local uri, range = first_location(result)
  if not uri then
    fail(("go to definition of %q (line %d) returned no location"):format(name, ref_line + 1))
  end
  if vim.uri_to_fname(uri) ~= good then
    fail(("definition of %q points to %s, not %s"):format(name, vim.uri_to_fname(uri), good))
  end
  if range.start.line ~= decl_line then
    fail(("definition of %q points to line %d, but `model %s` is declared on line %d"):format(
      name,
      range.start.line + 1,
      name,
      decl_line + 1
    ))
  end
  say(("ok definition: %s on line %d -> `model %s` on line %d"):format(name, ref_line + 1, name, decl_line + 1))
end

local function check_shutdown(client)
  vim.lsp.stop_client(client.id)
  wait_for("the server to exit after shutdown", function()
    return vim.lsp.get_client_by_id(client.id) == nil
  end)
  say("ok shutdown")
end

local function main()
  local pipe_bin, good, broken = check_args()
  say(("nvim %s, server %s lsp"):format(tostring(vim.version()), pipe_bin))

  vim.opt.runtimepath:prepend(plugin_root)
  vim.opt.hidden = true
  vim.opt.swapfile = false
  vim.cmd("filetype on")
  record_diagnostics()
  if vim.env.PIPE_E2E_LEGACY == "1" then
    -- Exercise the Neovim 0.10 path (FileType + vim.lsp.start) on a newer Neovim.
    vim.lsp.enable = nil
    say("legacy setup: vim.lsp.start from a FileType autocommand")
  end
  require("pipelang").setup({ cmd = { pipe_bin, "lsp" } })

  local broken_buf = open(broken)
  local good_buf = open(good)
  client_for(broken_buf, broken)
  local client = client_for(good_buf, good)

  check_diagnostics(good, broken)
  check_hover(good_buf, client)
  check_definition(good_buf, client, good)
  check_shutdown(client)
end

local ok, err = xpcall(main, function(e)
  if type(e) == "table" and e.e2e then
    return e.e2e
  end
  return debug.traceback(tostring(e), 2)
end)
if not ok then
  io.stderr:write("e2e FAIL: " .. tostring(err) .. "\n")
  local tail = log_tail()
  if tail ~= "" then
    io.stderr:write("--- LSP log (" .. log_path .. ") ---\n" .. tail .. "\n")
  end
  os.exit(1)
end
say("e2e PASS")
os.exit(0)
