//! `dpe-jupyter`: the executable dpe runs for `dpe jupyter …`. Everything lives in the library;
//! this file only hands the command line to the SDK's entry point.

fn main() {
    dpe_plugin::sdk::main::<dpe_jupyter::Cli>()
}
