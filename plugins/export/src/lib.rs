//! `dpe export` and `dpe import`: turn a dpe project's live environment into something others
//! can run — a readable Dockerfile with a lock, a lock alone, an image, or one archive file —
//! and bring an archive back as a project that starts without building.
//!
//! The two commands are two binaries of this crate (`dpe-export`, `dpe-import`) sharing these
//! modules. Everything that touches the engine goes through `dpe docker …`; everything about the
//! environment (its image, volume, user) comes from `dpe jupyter spec PROJECT --json`.

pub mod archive;
pub mod docker;
pub mod dockerfile;
pub mod error;
pub mod export;
pub mod extract;
pub mod image;
pub mod import;
pub mod lock;
pub mod names;
pub mod probe;
pub mod progress;
pub mod save_stream;
