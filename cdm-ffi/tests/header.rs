//! The committed header, `include/tee_cdm.h`, is what cbindgen generates from the sources
//! today. Run with `TEE_CDM_BLESS=1` to rewrite it after changing the C API.

use std::path::Path;

#[test]
fn committed_header_matches_a_fresh_generation() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config =
        cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("cbindgen.toml parses");
    let bindings = cbindgen::Builder::new()
        .with_crate(crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header");
    let mut fresh = Vec::new();
    bindings.write(&mut fresh);
    let fresh = String::from_utf8(fresh).expect("the header is UTF-8");

    let path = crate_dir.join("include/tee_cdm.h");
    if std::env::var_os("TEE_CDM_BLESS").is_some() {
        std::fs::write(&path, &fresh).expect("write include/tee_cdm.h");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != fresh {
        let first_difference = committed
            .lines()
            .zip(fresh.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| committed.lines().count().min(fresh.lines().count()));
        panic!(
            "include/tee_cdm.h is out of date (first difference at line {}): regenerate it with \
             `TEE_CDM_BLESS=1 cargo test -p cdm-ffi --test header` and commit it",
            first_difference + 1
        );
    }
}
