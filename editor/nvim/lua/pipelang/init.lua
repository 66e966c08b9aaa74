-- Registers `pipe lsp` for *.pipe files in Neovim 0.10+.
--
-- Neovim 0.11 has vim.lsp.config/vim.lsp.enable, which also handles buffers already open and
-- re-attaching after :edit; 0.10 only has vim.lsp.start, called from a FileType autocommand.
local M = {}

M.defaults = {
  -- The server command; the first element is looked up on PATH unless it is a path.
  cmd = { "pipe", "lsp" },
  -- Files that mark a project root; without one, the file's own directory is the root.
  root_markers = { ".git", "Cargo.toml" },
  settings = {},
}

local function root_dir_for(bufnr, markers)
  local path = vim.api.nvim_buf_get_name(bufnr)
  local found = vim.fs.find(markers, { path = vim.fs.dirname(path), upward = true })[1]
  return found and vim.fs.dirname(found) or vim.fs.dirname(path)
end

local warned = false
local function server_available(cmd)
  if vim.fn.executable(cmd[1]) == 1 then
    return true
  end
  if not warned then
    warned = true
    vim.notify(
      ("pipelang: `%s` is not executable, so `pipe lsp` cannot start. Install the pipe binary "
        .. "(cargo install --path <repo>) or pass its path: require('pipelang').setup({ cmd = { '/path/to/pipe', 'lsp' } })"):format(
        cmd[1]
      ),
      vim.log.levels.ERROR
    )
  end
  return false
end

--- Sets up filetype detection, buffer options and the language server.
--- @param opts? { cmd?: string[], root_markers?: string[], settings?: table }
function M.setup(opts)
  opts = vim.tbl_deep_extend("force", M.defaults, opts or {})

  vim.filetype.add({ extension = { pipe = "pipe" } })

  local group = vim.api.nvim_create_augroup("pipelang", { clear = true })
  vim.api.nvim_create_autocmd("FileType", {
    group = group,
    pattern = "pipe",
    callback = function(args)
      vim.bo[args.buf].commentstring = "// %s"
      vim.bo[args.buf].comments = "://"
    end,
  })

  if vim.lsp.config and vim.lsp.enable then
    vim.lsp.config("pipelang", {
      cmd = opts.cmd,
      filetypes = { "pipe" },
      root_markers = opts.root_markers,
      settings = opts.settings,
    })
    if server_available(opts.cmd) then
      vim.lsp.enable("pipelang")
    end
    return
  end

  vim.api.nvim_create_autocmd("FileType", {
    group = group,
    pattern = "pipe",
    callback = function(args)
      if not server_available(opts.cmd) then
        return
      end
      vim.lsp.start({
        name = "pipelang",
        cmd = opts.cmd,
        root_dir = root_dir_for(args.buf, opts.root_markers),
        settings = opts.settings,
      }, { bufnr = args.buf })
    end,
  })
end

return M
