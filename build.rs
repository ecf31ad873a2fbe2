//! Fails the build early, with a fix, when the pinned Luigi packages have not been installed yet:
//! they are embedded into the binary, and rust-embed's own error for a missing folder does not say why.

use std::path::Path;

fn main() {
    for file in [
        "node_modules/@luigi-project/core/luigi.js",
        "node_modules/@luigi-project/client/luigi-client.js",
    ] {
        println!("cargo:rerun-if-changed={file}");
        if !Path::new(file).exists() {
            panic!(
                "\n\n{file} is missing: portico embeds Luigi 2.31.0 from the npm packages pinned in \
                 package-lock.json.\nRun `npm ci` in the repository root (or use `make run` / `make test`, \
                 which do it for you).\n\n"
            );
        }
    }
    println!("cargo:rerun-if-changed=package-lock.json");
}
