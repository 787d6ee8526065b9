//! Optimizer kernels against updates computed by hand from the Keras formulas.
use kiln::backend::cpu::kernels::{adam_update, sgd_update};

#[test]
fn sgd_plain_momentum_and_nesterov_match_hand_computed_steps() {
    let g = [0.5f64, -1.0];
    // Plain: p -= lr g.
    let (mut p, mut v) = ([1.0f64, 2.0], [0.0f64; 2]);
    sgd_update(0.1, 0.0, false, &mut p, &g, &mut v);
    assert_eq!(p, [0.95, 2.1]);
    // Momentum 0.9, two steps: v1 = -lr g, p1 = p0 + v1; v2 = 0.9 v1 - lr g, p2 = p1 + v2.
    let (mut p, mut v) = ([1.0f64, 2.0], [0.0f64; 2]);
    sgd_update(0.1, 0.9, false, &mut p, &g, &mut v);
    sgd_update(0.1, 0.9, false, &mut p, &g, &mut v);
    let v2 = [0.9 * -0.05 - 0.05, 0.9 * 0.1 + 0.1];
    assert!(
        (p[0] - (1.0 - 0.05 + v2[0])).abs() < 1e-12 && (p[1] - (2.0 + 0.1 + v2[1])).abs() < 1e-12,
        "{p:?}"
    );
    // Nesterov, one step: v1 = -lr g; p1 = p0 + 0.9 v1 - lr g.
    let (mut p, mut v) = ([1.0f64, 2.0], [0.0f64; 2]);
    sgd_update(0.1, 0.9, true, &mut p, &g, &mut v);
    assert!((p[0] - (1.0 + 0.9 * -0.05 - 0.05)).abs() < 1e-12, "{p:?}");
}

#[test]
fn adam_matches_hand_computed_steps() {
    let (lr, b1, b2, eps) = (0.01f64, 0.9, 0.999, 1e-7);
    let grads = [[0.3f64], [-0.2], [0.5]];
    let (mut p, mut m, mut v) = ([1.0f64], [0.0f64], [0.0f64]);
    let (mut pe, mut me, mut ve) = (1.0f64, 0.0f64, 0.0f64);
    for (t, g) in grads.iter().enumerate() {
        let t = t as i32 + 1;
        adam_update(lr, t as u32, b1, b2, eps, &mut p, g, &mut m, &mut v);
        me = b1 * me + (1.0 - b1) * g[0];
        ve = b2 * ve + (1.0 - b2) * g[0] * g[0];
        let alpha = lr * (1.0 - b2.powi(t)).sqrt() / (1.0 - b1.powi(t));
        pe -= alpha * me / (ve.sqrt() + eps);
        assert!((p[0] - pe).abs() < 1e-12, "step {t}: {} vs {pe}", p[0]);
    }
    // The first Adam step moves each weight by about lr, whatever the gradient's scale.
    let (mut p, mut m, mut v) = ([0.0f64], [0.0f64], [0.0f64]);
    adam_update(lr, 1, b1, b2, eps, &mut p, &[1234.0], &mut m, &mut v);
    assert!((p[0] + lr).abs() < 1e-9);
}
