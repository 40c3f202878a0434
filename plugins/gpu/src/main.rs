//! The executable form of `dpe gpu` (`dpe-gpu`); the library form is `libdpe_gpu.so`. Both run
//! the same `dpe_gpu::run`.

fn main() {
    dpe_plugin::run_plugin(dpe_gpu::manifest, dpe_gpu::run)
}
