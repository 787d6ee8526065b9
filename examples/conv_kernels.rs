//! Times the CPU image kernels alone at mnist-cnn's shapes:
//! `cargo run --release --example conv_kernels`.
use kiln::backend::cpu::conv;
use kiln::program::{Padding, Window2d};
use std::time::Instant;

fn time(name: &str, bytes: usize, mut f: impl FnMut()) {
    f();
    let reps = 20;
    let t = Instant::now();
    for _ in 0..reps {
        f();
    }
    let dt = t.elapsed().as_secs_f64() / reps as f64;
    println!("{name:40} {:8.1} us  {:6.1} GB/s", dt * 1e6, bytes as f64 / dt / 1e9);
}

fn main() {
    let c1 = Window2d::new([128, 13, 13, 32], (3, 3), (1, 1), (1, 1), Padding::Valid).unwrap();
    let p1 = Window2d::new([128, 26, 26, 32], (2, 2), (2, 2), (1, 1), Padding::Valid).unwrap();
    let l1 = Window2d::new([128, 28, 28, 1], (3, 3), (1, 1), (1, 1), Padding::Valid).unwrap();
    let cols: Vec<f32> = (0..c1.positions() * c1.patch_len()).map(|i| (i % 7) as f32).collect();
    let mut x = vec![0f32; c1.input_len()];
    time("col2im 13x13x32 k3", 4 * (cols.len() + x.len()), || conv::col2im(&c1, &cols, &mut x));
    let mut cols2 = vec![0f32; c1.positions() * c1.patch_len()];
    time("im2col 13x13x32 k3", 4 * (cols2.len() + x.len()), || conv::im2col(&c1, &x, &mut cols2));
    let xi: Vec<f32> = (0..l1.input_len()).map(|i| (i % 13) as f32).collect();
    let mut cl = vec![0f32; l1.positions() * l1.patch_len()];
    time("im2col 28x28x1 k3", 4 * (cl.len() + xi.len()), || conv::im2col(&l1, &xi, &mut cl));
    let xp: Vec<f32> = (0..p1.input_len()).map(|i| ((i * 7919) % 101) as f32).collect();
    let dy: Vec<f32> = vec![1.0; p1.positions() * p1.channels];
    let mut dx = vec![0f32; p1.input_len()];
    let mut y = vec![0f32; dy.len()];
    time("copy 11MB (reference)", 8 * xp.len(), || dx.copy_from_slice(&xp));
    time("sum 11MB (reference)", 4 * xp.len(), || {
        std::hint::black_box(xp.iter().sum::<f32>());
    });
    time("max_pool 26x26x32", 4 * (xp.len() + y.len()), || conv::max_pool(&p1, &xp, &mut y));
    time("max_pool_grad 26x26x32", 4 * (2 * xp.len() + dy.len()), || {
        conv::max_pool_grad(&p1, true, &xp, &dy, &mut dx)
    });
}
