//! `pipe`: the command line of pipelang. Each subcommand is a file in `cli/`; the figures
//! (`pipe plan --plot`, `pipe report --plot`) are drawn by `plot/`.

pub mod cli;
pub mod plot;
