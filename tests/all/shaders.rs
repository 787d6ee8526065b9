//! Every WGSL file parses and validates with naga (no GPU needed), as kiln loads it.
use std::path::Path;

fn validate(src: &str) -> Result<naga::valid::ModuleInfo, String> {
    use naga::valid::{Capabilities, ValidationFlags, Validator};
    let module = naga::front::wgsl::parse_str(src).map_err(|e| e.emit_to_string(src))?;
    let mut v = Validator::new(ValidationFlags::all(), Capabilities::default());
    v.validate(&module).map_err(|e| e.emit_to_string(src))
}

/// Every shader file validates as kiln loads it: shaders/common.wgsl (validated alone too),
/// the functions generated from the activation and binary tables, then the file.
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
            let file = path.file_name().and_then(|f| f.to_str()).unwrap_or_default();
            let Some(module) = kiln::backend::gpu::shader_source(file) else {
                panic!("{} is not a shader kiln compiles", path.display());
            };
            assert!(
                module.starts_with(&common) && module.ends_with(&src),
                "{file}: common + generated + file"
            );
            if let Err(e) = validate(module) {
                panic!("{} (after common.wgsl and the generated functions) is invalid:\n{e}", path.display());
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

/// The members (name, byte offset, size) of the struct bound at group 0, binding 4 of `src`.
fn params_struct(src: &str) -> Result<Vec<(String, usize, usize)>, String> {
    let module = naga::front::wgsl::parse_str(src).map_err(|e| e.emit_to_string(src))?;
    let (_, var) = module
        .global_variables
        .iter()
        .find(|(_, v)| v.binding.as_ref().is_some_and(|b| b.group == 0 && b.binding == 4))
        .ok_or("no variable at @group(0) @binding(4)")?;
    let naga::TypeInner::Struct { members, .. } = &module.types[var.ty].inner else {
        return Err("binding 4 is not a struct".into());
    };
    Ok(members
        .iter()
        .map(|m| {
            let size = module.types[m.ty].inner.size(module.to_ctx()) as usize;
            (m.name.clone().unwrap_or_default(), m.offset as usize, size)
        })
        .collect())
}

/// Every shader family's `#[repr(C)]` parameter struct (backend/gpu/params.rs) equals the WGSL
/// `struct Params` of each file it is bound to, member by member: name, offset and size. (A
/// field moved in one WGSL file fails this test; tried with `cols` and `len` swapped in
/// shaders/elementwise.wgsl.)
#[test]
fn gpu_parameter_structs_match_their_wgsl_declarations() {
    let layouts = kiln::backend::gpu::params_layouts();
    let mut files: Vec<&str> = layouts.iter().map(|(f, _, _)| *f).collect();
    files.sort();
    files.dedup();
    assert_eq!(files.len(), 15, "every shader file has a parameter struct: {files:?}");
    assert_eq!(files.len(), layouts.len(), "one struct per file");
    for (file, name, fields) in layouts {
        let src = kiln::backend::gpu::shader_source(file).expect("a shader kiln compiles");
        let wgsl = params_struct(src).unwrap_or_else(|e| panic!("{file}: {e}"));
        let rust: Vec<(String, usize, usize)> =
            fields.iter().map(|f| (f.name.to_string(), f.offset, f.size)).collect();
        assert_eq!(rust, wgsl, "{name} (Rust, left) against struct Params of shaders/{file} (right)");
    }
}

/// The comparison above sees a reordered field.
#[test]
fn the_parameter_reflection_sees_a_swapped_field() {
    let src = kiln::backend::gpu::shader_source("softmax.wgsl").expect("softmax.wgsl");
    let swapped = src.replacen("    rows: u32,\n    cols: u32,", "    cols: u32,\n    rows: u32,", 1);
    assert_ne!(swapped, src, "the declaration was found");
    let names = |s: &str| params_struct(s).unwrap().into_iter().map(|m| m.0).collect::<Vec<_>>();
    assert_eq!(&names(src)[..2], ["rows", "cols"]);
    assert_eq!(&names(&swapped)[..2], ["cols", "rows"]);
}
