//! Per-kernel CPU time of one Adam training step of a preset (batch 128 by default):
//! `cargo run --release --example cpu_step_profile -- [mlp|cnn|mnist-cnn|resnet-small|MODEL.toml] [batch]`.
//! (`mlp` on 784 features, `mnist-cnn` and model files on 28×28×1, `cnn` on 8×8×1; 10 classes.)
use kiln::backend::cpu::{Arenas, execute};
use kiln::program::{Arena, ResidentLayout, StepScalars};
use kiln::*;
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let name = args.get(1).map_or("mlp", |s| s.as_str());
    let batch: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(128);
    let shape: &[usize] = match name {
        "mnist-cnn" | "resnet-small" => &[28, 28, 1],
        "cnn" => &[8, 8, 1],
        n if n.ends_with(".toml") || n.ends_with(".json") => &[28, 28, 1],
        _ => &[784],
    };
    let mut m = match name.ends_with(".toml") || name.ends_with(".json") {
        true => kiln::model::spec::load_model_file(std::path::Path::new(name)).unwrap().into_model(shape, 0),
        false => kiln::cli::preset(name, shape, 10, 0).unwrap(),
    };
    m.compile(CompileOptions::new(Optimizer::adam(1e-3), Loss::SparseCategoricalCrossentropy, Device::Cpu))
        .unwrap();
    let p = m.planned_program(ProgramKind::Train, batch).unwrap();
    let end = |a: Arena| {
        p.steps.iter().flat_map(|s| &s.args).filter(|b| b.arena == a).map(|b| b.offset + b.len).max()
    };
    let layout = ResidentLayout {
        params_len: end(Arena::Params).unwrap_or(64),
        slots: 2,
        accum_len: end(Arena::Accum).unwrap_or(64),
    };
    let mut a = Arenas::<f32>::new(&layout, p.work_len);
    for (i, v) in a.work.iter_mut().enumerate() {
        *v = (i % 10) as f32 * 0.1;
    }
    for (i, v) in a.params.iter_mut().enumerate() {
        *v = ((i % 13) as f32 - 6.0) * 0.01;
    }
    let reps = if name == "mlp" { 200 } else { 10 };
    let mut times = vec![0f64; p.steps.len()];
    for _ in 0..reps {
        for (i, s) in p.steps.iter().enumerate() {
            let t = std::time::Instant::now();
            execute(std::slice::from_ref(s), &mut a, StepScalars { lr: 1e-3, t: 1 });
            times[i] += t.elapsed().as_secs_f64();
        }
    }
    let total: f64 = times.iter().sum();
    for (s, t) in p.steps.iter().zip(&times) {
        println!("{:8.1} us  {:?}", t / reps as f64 * 1e6, s.kernel);
    }
    println!(
        "total {:.1} us/step -> {:.0} samples/s",
        total / reps as f64 * 1e6,
        batch as f64 * reps as f64 / total
    );
}
