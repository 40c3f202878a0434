//! The executable form of `dpe gpu` (`dpe-gpu`); the library form is `libdpe_gpu.so`. Both run
//! the same `dpe_gpu::Cli` through the SDK.

fn main() {
    dpe_plugin::sdk::main::<dpe_gpu::Cli>()
}
