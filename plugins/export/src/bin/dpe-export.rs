//! `dpe-export`: the `dpe export` command (behaviour in the library's `export` module).

fn main() {
    dpe_plugin::run_plugin(dpe_export::export::manifest, dpe_export::export::run)
}
