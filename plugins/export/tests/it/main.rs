//! End-to-end tests of `dpe export` and `dpe import`: the real dpe, the real jupyter plugin
//! and the real engine (docker tests skip with a reason where no engine answers, and fail in
//! CI). Each docker test works in its own sandbox workspace and removes what it created, even
//! when it fails.

mod archive;
mod cli;
mod dockerfile;
mod hostile;
mod support;
