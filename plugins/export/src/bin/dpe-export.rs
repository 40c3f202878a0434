//! `dpe-export`: the `dpe export` command (behaviour in the library's `export` module).

fn main() {
    dpe_plugin::sdk::main::<dpe_export::export::ExportArgs>()
}
