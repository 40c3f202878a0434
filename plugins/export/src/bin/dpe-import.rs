//! `dpe-import`: the `dpe import` command (behaviour in the library's `import` module).

fn main() {
    dpe_plugin::sdk::main::<dpe_export::import::ImportArgs>()
}
