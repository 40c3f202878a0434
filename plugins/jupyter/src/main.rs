//! `dpe-jupyter`: the executable dpe runs for `dpe jupyter …`. Everything lives in the library;
//! this file only hands the manifest and the entry point to the plugin protocol.

fn main() {
    dpe_plugin::run_plugin(dpe_jupyter::manifest, dpe_jupyter::run)
}
