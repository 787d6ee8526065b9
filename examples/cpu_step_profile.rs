//! Per-kernel CPU time of one MLP 784-128-10 Adam training step (batch 128):
//! `cargo run --release --example cpu_step_profile`.
use kiln::backend::cpu::{Arenas, execute};
use kiln::program::StepScalars;
use kiln::*;
fn main() {
    let batch = 128;
    let mut m = Sequential::new(&[784])
        .add(Dense::new(128, Activation::Relu))
        .add(Dense::new(10, Activation::Softmax));
    m.compile(CompileOptions::new(Optimizer::adam(1e-3), Loss::SparseCategoricalCrossentropy, Device::Cpu))
        .unwrap();
    let p = m.planned_program(ProgramKind::Train, batch).unwrap();
    let layout = kiln::program::ResidentLayout { params_len: 102400, slots: 2, accum_len: 1024 };
    let mut a = Arenas::<f32>::new(&layout, p.work_len);
    for v in a.work.iter_mut() {
        *v = 0.1;
    }
    for (i, v) in a.params.iter_mut().enumerate() {
        *v = ((i % 13) as f32 - 6.0) * 0.01;
    }
    let reps = 200;
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
