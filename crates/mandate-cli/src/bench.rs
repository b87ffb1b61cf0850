//! bench
pub(crate) fn mpc(_n: usize) -> crate::output::CliResult { todo!() }
