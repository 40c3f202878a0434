//! `dpe-import`: the `dpe import` command (behaviour in the library's `import` module).

fn main() {
    dpe_plugin::run_plugin(dpe_export::import::manifest, dpe_export::import::run)
}
