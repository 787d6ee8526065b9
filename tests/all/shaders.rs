//! Every WGSL file parses and validates with naga (no GPU needed), as kiln loads it.
use std::path::Path;

fn validate(src: &str) -> Result<naga::valid::ModuleInfo, String> {
    use naga::valid::{Capabilities, ValidationFlags, Validator};
    let module = naga::front::wgsl::parse_str(src).map_err(|e| e.emit_to_string(src))?;
    let mut v = Validator::new(ValidationFlags::all(), Capabilities::default());
    v.validate(&module).map_err(|e| e.emit_to_string(src))
}

/// Every shader file validates as kiln loads it: shaders/common.wgsl (validated alone too),
/// then the file.
#[test]
fn every_shader_file_validates_with_naga() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let common = std::fs::read_to_string(dir.join("common.wgsl")).expect("shaders/common.wgsl is readable");
    if let Err(e) = validate(&common) {
        panic!("shaders/common.wgsl is invalid:\n{e}");
    }
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).expect("shaders/ is readable") {
        let path = entry.expect("directory entry").path();
        if path.extension().is_some_and(|e| e == "wgsl") && !path.ends_with("common.wgsl") {
            let src = std::fs::read_to_string(&path).expect("shader is readable");
            assert!(src.starts_with("//"), "{} must start with a header comment", path.display());
            if let Err(e) = validate(&format!("{common}{src}")) {
                panic!("{} (after common.wgsl) is invalid:\n{e}", path.display());
            }
            checked += 1;
        }
    }
    assert!(checked >= 6, "expected at least 6 shader files, found {checked}");
}

#[test]
fn broken_shaders_are_rejected() {
    assert!(validate("fn broken( { return 1; }").is_err(), "parse error");
    let store_to_read_only = "@group(0) @binding(0) var<storage, read> x: array<f32>;\n\
        @compute @workgroup_size(1) fn main() { x[0] = 1.0; }";
    assert!(validate(store_to_read_only).is_err(), "validation error");
}
